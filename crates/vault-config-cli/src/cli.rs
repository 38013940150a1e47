//! The command line, as clap parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Secrets from Vault or OpenBao into a shell, a supervised process, a
/// rotation or a status report.
///
/// Vault is reached through the same environment as the vault-config library:
/// VAULT_ADDR (or VAULT_ADDRS for a cluster), VAULT_TOKEN or VAULT_AUTH_METHOD
/// with its credentials (AppRole, JWT, Kubernetes), VAULT_NAMESPACE,
/// VAULT_CACERT and the TLS settings, VAULT_KV_MOUNT; each VAULT_X unset is
/// read as OpenBao's BAO_X. Paths are relative to the KV mount (`app-prod`,
/// not `secret/data/app-prod`); a path with a `creds` or `static-creds`
/// segment (`database/creds/app`) is read as leased credentials.
///
/// Exit codes: 0 ok; 1 another failure; 2 a usage error; 3 a configuration
/// error (the Vault settings); 10 vault_connection_failed (unreachable,
/// timeout, TLS); 11 vault_sealed; 12 vault_authentication_failed; 13
/// permission denied; 14 not found; 15 invalid (a key conflict, a key that is
/// not a variable name under --strict); 126/127 the command could not be
/// started. `exec` otherwise exits with its child's code (128+N for signal N).
#[derive(Debug, Parser)]
#[command(name = "vault-config", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the keys of KV paths as shell assignments (or dotenv, or JSON).
    ///
    /// eval "$(vault-config env app-prod database)"
    ///
    /// Nothing is printed unless every path was read: no half-exported
    /// environment. Values come back byte for byte after `eval` (POSIX sh
    /// single quotes).
    Env(EnvArgs),
    /// Run a command with secrets in its environment, and restart (or signal)
    /// it when one of its values changes in Vault.
    ///
    /// vault-config exec --secret app-prod --secret database/creds/app -- ./server
    ///
    /// The child starts only once every secret was read, with them in its
    /// environment (never on its command line). Token and lease renewals and
    /// writes of the same values never restart it; a value that changed does,
    /// once per --debounce. Signals are forwarded; the exit code is the
    /// child's.
    Exec(ExecArgs),
    /// Write a new value for one key of a KV secret, keep the others, read it
    /// back and verify it.
    ///
    /// vault-config rotate app-prod MACHINE_SECRET_TOKEN --generate
    ///
    /// KV v2 writes check-and-set against the version read, retried on a
    /// conflict, so operators rotating keys of one path at once lose nothing.
    /// The value is never printed unless --print.
    Rotate(RotateArgs),
    /// Show the Vault contract, the server's seal and HA state, the token's
    /// TTL and policies, and, for each PATH, whether it exists and what the
    /// token may do on it. The exit code names the first problem found.
    Status(StatusArgs),
}

/// Where the secrets are.
#[derive(Debug, Args)]
pub struct MountArg {
    /// The KV mount the paths are on [default: VAULT_KV_MOUNT, else `secret`].
    #[arg(long, value_name = "MOUNT")]
    pub mount: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `export NAME='value'` lines for `eval` or `source`.
    Sh,
    /// `NAME=value` lines for `docker --env-file` (values with a newline are refused).
    Dotenv,
    /// One JSON object, `{"NAME": "value"}`.
    Json,
}

/// How secrets become variable names, shared by `env` and `exec`.
#[derive(Debug, Args)]
pub struct NamingArgs {
    /// Put P before every variable name.
    #[arg(long, value_name = "P", default_value = "")]
    pub prefix: String,
    /// Refuse keys that are not variable names instead of replacing each
    /// character other than A-Z, a-z, 0-9 and _ with _.
    #[arg(long)]
    pub strict: bool,
    /// When two paths define one name, let the later one win instead of failing.
    #[arg(long)]
    pub last_wins: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Sh)]
    pub format: Format,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub mount: MountArg,
    /// KV paths (every key) or `PATH#KEY` (one key).
    #[arg(value_name = "PATH[#KEY]", required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnChange {
    /// Stop the child (the stop signal, then SIGKILL after --kill-timeout) and start it again.
    Restart,
    /// Send the child a signal (for children that reload on their own).
    Signal(nix::sys::signal::Signal),
    /// Leave the child alone.
    None,
}

/// Parses `restart`, `signal:HUP` or `none`.
pub fn parse_on_change(s: &str) -> Result<OnChange, String> {
    match s {
        "restart" => Ok(OnChange::Restart),
        "none" => Ok(OnChange::None),
        _ => match s.strip_prefix("signal:") {
            Some(name) => parse_signal(name).map(OnChange::Signal),
            None => Err(format!(
                "`{s}` is not an action; use restart, signal:NAME (signal:HUP) or none"
            )),
        },
    }
}

/// Parses `HUP`, `SIGHUP` or `1`.
pub fn parse_signal(name: &str) -> Result<nix::sys::signal::Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper.clone()
    } else {
        format!("SIG{upper}")
    };
    if let Ok(n) = upper.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| format!("`{name}` is not a signal number"));
    }
    full.parse()
        .map_err(|_| format!("`{name}` is not a signal; use a name such as HUP, TERM, USR1"))
}

/// Parses `200ms`, `30s`, `1m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it as 200ms, 30s, 1m"))
}

/// Parses `--mode` and VAULT_MODE as the library does (`required`,
/// `fallback`, and their other names `strict`, `env`).
pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.parse::<vault_config::FallbackMode>()? {
        vault_config::FallbackMode::Fallback => Ok(Mode::Fallback),
        _ => Ok(Mode::Required),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wait for Vault up to --start-timeout, then fail.
    Required,
    /// Start on the parent's environment when Vault is down, and pick Vault
    /// up when it returns.
    Fallback,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A KV path (every key), `PATH#KEY` (one key), or leased credentials
    /// (`database/creds/app`); repeat for more.
    #[arg(long = "secret", value_name = "PATH[#KEY]", required = true)]
    pub secrets: Vec<String>,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub mount: MountArg,
    /// How often to check Vault for changes (KV v2 metadata reads).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub interval: Duration,
    /// What to do when a value the child received changes:
    /// restart, signal:NAME (signal:HUP) or none.
    #[arg(long, value_parser = parse_on_change, default_value = "restart")]
    pub on_change: OnChange,
    /// Changes within this long of the first make one restart.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub debounce: Duration,
    /// The signal that asks the child to stop, before a restart.
    #[arg(long, value_parser = parse_signal, default_value = "TERM")]
    pub kill_signal: nix::sys::signal::Signal,
    /// How long the child may take to stop before SIGKILL.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub kill_timeout: Duration,
    /// Vault down at start: `required` retries for --start-timeout then
    /// fails; `fallback` starts the child on the parent's environment.
    #[arg(long, value_parser = parse_mode, env = "VAULT_MODE", default_value = "required")]
    pub mode: Mode,
    /// How long `--mode required` waits for Vault at start.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub start_timeout: Duration,
    /// Start the child with the secrets only, not the parent's environment.
    #[arg(long)]
    pub pristine: bool,
    /// Pass the parent's Vault credentials (VAULT_TOKEN, VAULT_SECRET_ID,
    /// ...) on to the child; by default they are removed from its environment.
    #[arg(long)]
    pub keep_vault_credentials: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Charset {
    /// A-Z, a-z, 0-9.
    Alnum,
    /// 0-9, a-f.
    Hex,
    /// A-Z, a-z, 0-9, - and _ (URL-safe base64's alphabet).
    Base64url,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").args(["value_stdin", "generate"])))]
pub struct RotateArgs {
    /// The KV path (`app-prod`).
    pub path: String,
    /// The key to rotate (`MACHINE_SECRET_TOKEN`).
    pub key: String,
    /// Refused: a value typed on the command line ends up in shell history
    /// and in `ps`. Use --value-stdin.
    #[arg(hide = true)]
    pub value: Option<String>,
    /// Read the new value from standard input (one trailing newline is dropped).
    #[arg(long)]
    pub value_stdin: bool,
    /// Generate the new value with the operating system's CSPRNG.
    #[arg(long)]
    pub generate: bool,
    /// How many characters to generate.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(8..=4096), requires = "generate")]
    pub length: u16,
    /// Which characters to generate from.
    #[arg(long, value_enum, default_value_t = Charset::Alnum, requires = "generate")]
    pub charset: Charset,
    /// Print the new value on standard output (the report goes to standard error).
    #[arg(long)]
    pub print: bool,
    /// How many times to retry a check-and-set conflict.
    #[arg(long, default_value_t = 10)]
    pub cas_retries: u32,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON: the seeds' health shape (`{"secrets": {"vault_enabled",
    /// "vault_connected"}}`) and the rest.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub mount: MountArg,
    /// KV paths to check.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}
