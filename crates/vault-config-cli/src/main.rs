//! `vault-config`: the command line that replaces the shell scripts teams
//! keep around Vault (`source vault_env.sh`, `rotate_secret.sh`, a health
//! check), on the vault-config library's env contract, auth methods, TLS,
//! retries and redaction. `vault-config --help` tells the rest.

// The supervisor's task nests the library's request futures deeply enough
// that proving them `Send` needs more than the default 128 steps.
#![recursion_limit = "256"]

mod cli;
mod env;
mod exec;
mod exit;
mod format;
mod naming;
mod read;
mod rotate;
mod status;
mod target;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error; values never reach them.
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAULT_CONFIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,vault_config_cli=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vault-config: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Env(args) => env::run(args).await,
            Command::Exec(args) => exec::run(args).await,
            Command::Rotate(args) => rotate::run(args).await,
            Command::Status(args) => status::run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("vault-config: {failure}");
            ExitCode::from(failure.kind.code())
        }
    }
}
