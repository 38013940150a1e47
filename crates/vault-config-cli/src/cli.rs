//! The command line, as clap parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Secrets from Vault or OpenBao into a shell, a supervised process, a
/// rotation, a status report or the policy to grant them; a dotenv file's
/// secrets into Vault.
///
/// Vault is reached through the same environment as the vault-config library:
/// VAULT_ADDR (or VAULT_ADDRS for a cluster), VAULT_TOKEN or VAULT_AUTH_METHOD
/// with its credentials (AppRole, JWT, Kubernetes), VAULT_NAMESPACE,
/// VAULT_CACERT and the TLS settings, VAULT_KV_MOUNT; each VAULT_X unset is
/// read as OpenBao's BAO_X. Paths are relative to the KV mount (`app-prod`,
/// not `secret/data/app-prod`); a path on a mount of another secrets engine
/// (`database/creds/app` on a `database` mount, as the mount's type says) is
/// read as leased credentials. A token a login (AppRole, JWT, Kubernetes)
/// made for a run is revoked when it ends (unless `env` printed leased
/// credentials, which would end with it); VAULT_TOKEN never is.
///
/// Exit codes: 0 ok; 1 another failure; 2 a usage error; 3 a configuration
/// error (the Vault settings); 10 vault_connection_failed (unreachable,
/// timeout, TLS); 11 vault_sealed; 12 vault_authentication_failed; 13
/// permission denied; 14 not found; 15 invalid (a key conflict, such as a
/// key `import` finds in Vault with another value, a key that is
/// not a variable name under --strict, a name that runs code such as
/// LD_PRELOAD or PATH without --allow-name, a value the --format cannot
/// hold); 126/127 the command could not be
/// started. `exec` otherwise exits with its child's code (128+N for signal N).
#[derive(Debug, Parser)]
#[command(name = "vault-config", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the keys of KV paths as shell assignments (or dotenv, docker
    /// --env-file lines, or JSON).
    ///
    /// eval "$(vault-config env app-prod database)"
    ///
    /// eval "$(vault-config env --env-file .env)"   # its vault://PATH#KEY values resolved
    ///
    /// Nothing is printed unless every path was read: no half-exported
    /// environment. Values come back byte for byte after `eval` (POSIX sh
    /// single quotes). Names that make programs run code (LD_PRELOAD, PATH,
    /// BASH_ENV...) are refused unless --allow-name.
    Env(EnvArgs),
    /// Run a command with secrets in its environment, and restart (or signal)
    /// it when one of its values changes in Vault.
    ///
    /// vault-config exec --secret app-prod --secret database/creds/app -- ./server
    ///
    /// vault-config exec --env-file .env -- ./server   # its vault://PATH#KEY values resolved
    ///
    /// The child starts only once every secret was read, with them in its
    /// environment (never on its command line). Token and lease renewals and
    /// writes of the same values never restart it; a value that changed does,
    /// once per --debounce. The child runs in a process group of its own,
    /// which gets the forwarded signals, and is ended (SIGKILL after
    /// --kill-timeout) on a restart and when vault-config exits; the exit
    /// code is the child's.
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
    /// Copy the keys of a dotenv file into a KV secret, keeping the keys it
    /// has, then read them back and verify them.
    ///
    /// vault-config import .env --path database --keys DB_USER,DB_PASSWORD --rewrite
    ///
    /// FILE is read by dotenvy (comments, `export `, single and double
    /// quotes, the escapes \\ \' \" \n, multi-line quoted values, `#` and `=`
    /// in values, empty values). A value that dotenvy and python-dotenv read
    /// differently is refused with exit 15 naming its line and key: a `$`
    /// outside single quotes or a `${` inside them, a backslash outside
    /// double quotes, `\$`, quotes around part of a value, an unquoted value
    /// starting with `#` (`KEY= # note`), a carriage return inside a value
    /// (a CRLF file's multi-line value). So is a key assigned twice. A
    /// value that already is a `vault://` reference is skipped. A FILE or a
    /// --keys key that is not there: exit 14.
    ///
    /// The keys are merged into PATH, check-and-set against the version read
    /// on KV v2 (read again and retried if someone else wrote in between).
    /// A key PATH holds with another value is a conflict: nothing is
    /// written, exit 15 names the key, unless --overwrite. Keys PATH already
    /// holds with the same values make no new version. KV v1 has no
    /// check-and-set: the keys are read, merged and written (a write made
    /// by someone else in between may be lost, a warning says so), then read
    /// back and compared all the same. The token needs create, read and
    /// update on MOUNT/data/PATH (MOUNT/PATH on KV v1).
    ///
    /// With --rewrite, once Vault holds every value, FILE is rewritten with
    /// `vault://PATH#KEY` in place of each imported value: every other byte
    /// (comments, order, `export `, other keys) is kept, and the new file
    /// replaces the old one whole (temporary file, fsync, rename) with its
    /// mode and owner (a link's target is rewritten). No value is ever
    /// printed.
    Import(ImportArgs),
    /// Show the Vault contract, the server's seal and HA state, the token's
    /// TTL and policies, and, for each PATH, whether it exists and what the
    /// token may do on it. The exit code names the first problem found.
    Status(StatusArgs),
    /// Print the least-privilege Vault policy (HCL) for the paths `env` and
    /// `exec` are given.
    ///
    /// Read on a KV secret's data and metadata; read on leased credentials
    /// plus the renewal and revocation of their own leases.
    ///
    /// vault-config policy app-prod database/creds/app | bao policy write app -
    ///
    /// Leased or KV, and the KV version, come from Vault's mount table (the
    /// token needs to see the mounts). A policy grants whole paths: PATH#KEY
    /// grants PATH. What was decided for each path goes to standard error.
    Policy(PolicyArgs),
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
    /// `NAME="value"` lines (`'value'` for one with a `$`) that dotenvy,
    /// python-dotenv and docker compose's env_file read back byte for byte;
    /// a value no quoting keeps whole in all three is refused.
    Dotenv,
    /// `NAME=value` lines for `docker run --env-file`, which takes the rest
    /// of the line as it is (no quotes); a value with a line break is refused.
    Docker,
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
    /// Pass on NAME although it is one of the names that make programs run
    /// code (LD_*, DYLD_*, BASH_ENV, PROMPT_COMMAND, PATH, HOME, IFS,
    /// NODE_OPTIONS, PYTHONPATH, PERL5OPT, JAVA_TOOL_OPTIONS, GIT_SSH_COMMAND,
    /// EDITOR...: the README lists them), which are otherwise refused with
    /// exit 15; repeat for more.
    #[arg(long = "allow-name", value_name = "NAME")]
    pub allow_names: Vec<String>,
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
    /// Print FILE's variables too, each `vault://PATH#KEY` reference (PATH
    /// relative to the KV mount; leased credentials as for a PATH) replaced
    /// by its value and every other value as written. FILE is read as
    /// `import` reads it, with the same refusals; a reference that cannot be
    /// resolved is an error naming its variable, file and line, and nothing
    /// is printed. A name a PATH argument defines too gets the PATH's value;
    /// a later FILE's over an earlier one's. FILE's names are printed as
    /// written (no --prefix). Repeat for more.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<std::path::PathBuf>,
    /// KV paths (every key) or `PATH#KEY` (one key).
    #[arg(value_name = "PATH[#KEY]", required_unless_present = "env_files")]
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
    /// (`database/creds/app`, on a mount that is not KV); repeat for more.
    #[arg(
        long = "secret",
        value_name = "PATH[#KEY]",
        required_unless_present_any = ["to_files", "env_files"]
    )]
    pub secrets: Vec<String>,
    /// A dotenv file whose variables the child gets: each value as written,
    /// or, for a `vault://PATH#KEY` reference (PATH relative to the KV
    /// mount; leased credentials as for --secret, one lease per path), the
    /// value read from Vault and watched like a --secret one (a change
    /// restarts or signals the child). Variables of the inherited
    /// environment whose value is a reference are resolved too (unless
    /// --pristine). A reference that cannot be resolved stops the child
    /// from starting, naming its variable, file and line; it is never
    /// passed on as written. FILE is read as `import` reads it, with the
    /// same refusals. Which value a name gets: --secret over FILE (a later
    /// FILE over an earlier) over the inherited environment. Repeat for more.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<std::path::PathBuf>,
    /// Write the value of PATH#KEY to the file DEST (mode 0600, through a
    /// temporary file in DEST's folder renamed over it: never half-written)
    /// before the child starts, and again before each signal or restart;
    /// removed when vault-config exits unless --keep-files. Repeat for more.
    #[arg(long = "to-file", value_name = "PATH#KEY=DEST")]
    pub to_files: Vec<String>,
    /// Leave the --to-file files in place when vault-config exits.
    #[arg(long)]
    pub keep_files: bool,
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
    /// After the debounce, wait a random time in [0, DURATION) more before
    /// the restart (or signal), so that a fleet rotated at once does not
    /// restart at once. A write reaches the child within --interval (+10%
    /// jitter) + --debounce + --splay.
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub splay: Duration,
    /// The signal that asks the child's process group to stop, before a
    /// restart (and what is left of the group when the child exits).
    #[arg(long, value_parser = parse_signal, default_value = "TERM")]
    pub kill_signal: nix::sys::signal::Signal,
    /// How long the child's process group may take to stop (after
    /// --kill-signal, or a SIGTERM, SIGINT or SIGQUIT passed on) before
    /// SIGKILL to the whole group.
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
pub struct ImportArgs {
    /// The dotenv file (`.env`).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// The KV path to import into (`database`).
    #[arg(long, value_name = "PATH")]
    pub path: String,
    /// Import only these keys [default: every key of FILE].
    #[arg(long, value_name = "K1,K2,...", value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Print, for each key, whether PATH lacks it (new), holds it (same) or
    /// holds another value (differs); write nothing.
    #[arg(long, conflicts_with = "rewrite")]
    pub dry_run: bool,
    /// Replace the values PATH holds for keys of FILE (otherwise a
    /// conflict: nothing written, exit 15).
    #[arg(long)]
    pub overwrite: bool,
    /// After a verified import, put `vault://PATH#KEY` in FILE in place of
    /// each imported value, keeping every other byte.
    #[arg(long)]
    pub rewrite: bool,
    /// How many times to retry a check-and-set conflict.
    #[arg(long, default_value_t = 10)]
    pub cas_retries: u32,
    #[command(flatten)]
    pub mount: MountArg,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON: a health endpoint's shape (`{"secrets": {"vault_enabled",
    /// "vault_connected"}}`) and the rest.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub mount: MountArg,
    /// KV paths (or leased credentials, not read) to check.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub mount: MountArg,
    /// The paths of FILE's `vault://PATH#KEY` references too, as `env
    /// --env-file` and `exec --env-file` read them. Repeat for more.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<std::path::PathBuf>,
    /// The paths, as `env` and `exec --secret` take them.
    #[arg(value_name = "PATH[#KEY]", required_unless_present = "env_files")]
    pub targets: Vec<String>,
}
