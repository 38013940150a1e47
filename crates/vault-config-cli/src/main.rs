//! `vault-config`: the command line that replaces the shell scripts teams
//! keep around Vault (`source vault_env.sh`, `rotate_secret.sh`, a health
//! check), on the vault-config library's env contract, auth methods, TLS,
//! retries and redaction. `vault-config --help` tells the rest.

// The supervisor's task nests the library's request futures deeply enough
// that proving them `Send` needs more than the default 128 steps.
#![recursion_limit = "256"]

mod cli;
mod dotfile;
mod env;
mod exec;
mod exit;
mod files;
mod format;
mod import;
mod merge;
mod naming;
mod policy;
mod process;
mod read;
mod refs;
mod rotate;
mod start;
mod status;
mod target;
mod to_file;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{Cli, Command};
use crate::exit::Result;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error; values never reach them.
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAULT_CONFIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,vault_config_cli=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour only for a person at a terminal: container logs and pipes
        // get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
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
        let result = match cli.command {
            // exec passes signals on to its child, and ends when the child does.
            Command::Exec(args) => exec::run(args).await,
            Command::Env(args) => until_signal(env::run(args)).await,
            Command::Rotate(args) => until_signal(rotate::run(args)).await,
            Command::Import(args) => until_signal(import::run(args)).await,
            Command::Status(args) => until_signal(status::run(args)).await,
            Command::Policy(args) => until_signal(policy::run(args)).await,
        };
        // The one way out of every command, failed or not: the tokens logins
        // made for this run are revoked (never a token the user gave).
        read::logout_all().await;
        result
    });
    // Not held up by a read of standard input a signal interrupted.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("vault-config: {failure}");
            ExitCode::from(failure.kind.code())
        }
    }
}

/// `work`, unless SIGINT, SIGTERM or SIGHUP comes first: then it is dropped
/// and the code is 128+N, so that the tokens this run logged in for are
/// still revoked on the way out.
async fn until_signal(work: impl Future<Output = Result<u8>>) -> Result<u8> {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return work.await;
    };
    let code = tokio::select! {
        result = work => return result,
        _ = int.recv() => 128 + 2,
        _ = term.recv() => 128 + 15,
        _ = hup.recv() => 128 + 1,
    };
    eprintln!("vault-config: stopped by a signal");
    Ok(code)
}
