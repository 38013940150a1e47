//! `vault-config exec`: a child process with secrets in its environment,
//! restarted (or signalled) when a value it received changes in Vault.
//!
//! The library's watcher does the watching: it publishes only when a value
//! changed, so token and lease renewals and same-value writes never reach
//! this loop; new leased credentials do.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use vault_config::{Mapping, VaultClient, VaultProvider, WatchOptions, Watcher};

use crate::cli::{ExecArgs, Mode, OnChange};
use crate::exit::{Failure, Kind, Result};
use crate::naming::{variables, Var};
use crate::read;
use crate::target::Target;

/// What the watcher publishes: each target's value under `t<index>`.
type Values = BTreeMap<String, Value>;

/// The parent's Vault credentials, kept from the child unless asked.
const CREDENTIALS: &[&str] = &[
    "VAULT_TOKEN",
    "BAO_TOKEN",
    "VAULT_SECRET_ID",
    "BAO_SECRET_ID",
    "VAULT_APPROLE_SECRET_ID",
    "VAULT_WRAPPED_SECRET_ID",
    "BAO_WRAPPED_SECRET_ID",
];

/// The longest wait between attempts to reach Vault at start.
const MAX_START_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the command; returns the exit code `vault-config` exits with.
pub async fn run(args: ExecArgs) -> Result<u8> {
    let targets = Target::parse_all(&args.secrets)?;
    let client = read::client(args.mount.mount.as_deref())?;
    let mappings = mappings(&targets)?;
    let options = WatchOptions::default()
        .interval(args.interval)
        .revoke_on_shutdown(true);
    let start = Start {
        client: client.clone(),
        mappings,
        options,
    };

    // Secrets first; the child only after.
    let (mut watcher, mut late) = match start.first(&args).await? {
        Some(watcher) => (Some(watcher), None),
        None => {
            // --mode fallback, Vault down: the parent's environment for now.
            let (tx, rx) = mpsc::channel(1);
            let retry = start.clone();
            tokio::spawn(async move {
                let watcher = retry.until_up().await;
                let _ = tx.send(watcher).await;
            });
            (None, Some(rx))
        }
    };
    let mut given = match &watcher {
        Some(w) => variables(
            &targets,
            &ordered(&w.current(), targets.len()),
            &args.naming,
        )?,
        None => Vec::new(),
    };
    let mut rx: Option<watch::Receiver<Arc<Values>>> = watcher.as_ref().map(Watcher::subscribe);
    let mut child = spawn(&args, &given)?;
    tracing::info!(
        pid = child.id(),
        variables = given.len(),
        "vault-config exec: started the command"
    );

    let mut signals = Signals::new()?;
    // When a change seen but not yet acted on is due.
    let mut due: Option<(Instant, Vec<Var>)> = None;
    let code = loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| Failure::new(Kind::Other, format!("waiting for the command: {e}")))?;
                break exit_code(status);
            }
            Some(sig) = signals.next() => forward(&child, sig),
            changed = changed(&mut rx) => {
                let Some(values) = changed else {
                    // The watcher stopped (it does not, while held): keep the child.
                    rx = None;
                    continue;
                };
                match variables(&targets, &ordered(&values, targets.len()), &args.naming) {
                    Ok(vars) if vars != given => {
                        let names = changed_names(&given, &vars);
                        tracing::info!(changed = %names.join(","), "vault-config exec: secrets changed");
                        let at = due.as_ref().map_or(Instant::now() + args.debounce, |(at, _)| *at);
                        due = Some((at, vars));
                    }
                    Ok(_) => due = None,
                    Err(e) => tracing::warn!(error = %e, "vault-config exec: the new values cannot be passed on; the command keeps the ones it has"),
                }
            }
            found = recv_late(&mut late) => {
                late = None;
                let Some(w) = found else { continue };
                tracing::info!("vault-config exec: Vault is back; the command gets its secrets");
                match variables(&targets, &ordered(&w.current(), targets.len()), &args.naming) {
                    Ok(vars) => due = Some((Instant::now() + args.debounce, vars)),
                    Err(e) => tracing::warn!(error = %e, "vault-config exec: the values cannot be passed on"),
                }
                rx = Some(w.subscribe());
                watcher = Some(w);
            }
            () = wait_due(&due) => {
                let Some((_, vars)) = due.take() else { continue };
                match &args.on_change {
                    OnChange::Restart => {
                        let stopped = stop(&mut child, args.kill_signal, args.kill_timeout).await;
                        tracing::info!(status = %stopped, "vault-config exec: stopped the command; starting it with the new values");
                        child = spawn(&args, &vars)?;
                        given = vars;
                    }
                    OnChange::Signal(sig) => {
                        forward(&child, *sig);
                        given = vars;
                    }
                    OnChange::None => {
                        tracing::info!("vault-config exec: --on-change none: the command keeps running as it is");
                        given = vars;
                    }
                }
            }
        }
    };
    if let Some(w) = watcher {
        // Leased credentials die with the command that used them.
        w.shutdown().await;
    }
    Ok(code)
}

/// One mapping per target, keyed `t<index>`: a whole secret fills a map.
fn mappings(targets: &[Target]) -> Result<Vec<Mapping>> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t.key.as_deref().unwrap_or("*");
            let m = if t.leased {
                Mapping::dynamic(format!("t{i}"), &t.path, key)
            } else {
                Mapping::from_parts(format!("t{i}"), &t.path, key)
            };
            m.map_err(Failure::from)
        })
        .collect()
}

/// The published values in target order.
fn ordered(values: &Values, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| values.get(&format!("t{i}")).cloned().unwrap_or(Value::Null))
        .collect()
}

/// The names whose values differ between `old` and `new` (never the values).
fn changed_names(old: &[Var], new: &[Var]) -> Vec<String> {
    let mut names: Vec<String> = new
        .iter()
        .filter(|n| !old.iter().any(|o| o.name == n.name && o.value == n.value))
        .map(|n| n.name.clone())
        .collect();
    names.extend(
        old.iter()
            .filter(|o| !new.iter().any(|n| n.name == o.name))
            .map(|o| o.name.clone()),
    );
    names
}

/// How the watcher is started.
#[derive(Clone)]
struct Start {
    client: VaultClient,
    mappings: Vec<Mapping>,
    options: WatchOptions,
}

impl Start {
    async fn attempt(&self) -> std::result::Result<Watcher<Values>, vault_config::Error> {
        VaultProvider::builder()
            .mappings(self.mappings.clone())
            .watch(&self.client, self.options)
            .await
    }

    /// The first watcher: retried with backoff while Vault is unreachable or
    /// sealed, for `--start-timeout` (`required`), or not at all (`fallback`:
    /// `None`, the command starts without secrets).
    async fn first(&self, args: &ExecArgs) -> Result<Option<Watcher<Values>>> {
        let deadline = Instant::now() + args.start_timeout;
        let mut wait = Duration::from_millis(200);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = match timeout(left.max(Duration::from_millis(1)), self.attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(Failure::new(
                        Kind::Connection,
                        format!(
                            "Vault did not answer within --start-timeout {}",
                            humantime::format_duration(args.start_timeout)
                        ),
                    ))
                }
            };
            let e = match outcome {
                Ok(watcher) => return Ok(Some(watcher)),
                Err(e) => read::explain(&self.client, e).await,
            };
            if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                return Err(e);
            }
            if args.mode == Mode::Fallback {
                tracing::warn!(error = %e, "vault-config exec: Vault is not available; starting the command on the parent's environment (--mode fallback) and retrying in the background");
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::new(
                    e.kind,
                    format!(
                        "{} (gave up after --start-timeout {})",
                        e.message,
                        humantime::format_duration(args.start_timeout)
                    ),
                ));
            }
            tracing::warn!(error = %e, retry_in = ?wait.min(left), "vault-config exec: Vault is not available yet; retrying");
            sleep(wait.min(left)).await;
            wait = (wait * 2).min(MAX_START_BACKOFF);
        }
    }

    /// A watcher once Vault answers (`--mode fallback`), however long it takes;
    /// `None` when Vault refuses for good (a policy, a missing secret).
    async fn until_up(&self) -> Option<Watcher<Values>> {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.attempt().await {
                Ok(watcher) => return Some(watcher),
                Err(e) => {
                    let e = read::explain(&self.client, e).await;
                    if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                        tracing::error!(error = %e, "vault-config exec: Vault answered, but the secrets cannot be read; the command keeps the parent's environment");
                        return None;
                    }
                }
            }
            sleep(wait).await;
            wait = (wait * 2).min(MAX_START_BACKOFF * 6);
        }
    }
}

/// Starts the command with `vars` in its environment.
fn spawn(args: &ExecArgs, vars: &[Var]) -> Result<Child> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err(Failure::new(Kind::Other, "no command to run after `--`"));
    };
    let mut command = Command::new(program);
    command.args(rest);
    if args.pristine {
        command.env_clear();
    } else if !args.keep_vault_credentials {
        for name in CREDENTIALS {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().map(|v| (&v.name, &v.value)));
    command.spawn().map_err(|e| {
        let (kind, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (Kind::CommandNotFound, "not found on PATH"),
            std::io::ErrorKind::PermissionDenied => (Kind::NotExecutable, "not executable"),
            _ => (Kind::Other, "could not be started"),
        };
        Failure::new(kind, format!("`{program}` {hint}: {e}"))
    })
}

/// Stops `child`: `sig`, then SIGKILL after `grace`.
async fn stop(child: &mut Child, sig: Signal, grace: Duration) -> String {
    forward(child, sig);
    let status = match timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::warn!(
                grace = %humantime::format_duration(grace),
                "vault-config exec: the command did not stop in time; SIGKILL"
            );
            let _ = child.start_kill();
            child.wait().await
        }
    };
    match status {
        Ok(status) => exit_code(status).to_string(),
        Err(e) => e.to_string(),
    }
}

/// Sends `sig` to `child`, if it still runs.
fn forward(child: &Child, sig: Signal) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    if let Err(e) = nix::sys::signal::kill(Pid::from_raw(pid), sig) {
        tracing::debug!(%sig, error = %e, "vault-config exec: could not signal the command");
    }
}

/// The code a shell would report for `status`: the exit code, or 128+N for
/// signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from((128 + sig) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

/// The signals passed on to the child.
struct Signals(Vec<(Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn new() -> Result<Self> {
        let kinds = [
            (Signal::SIGINT, SignalKind::interrupt()),
            (Signal::SIGTERM, SignalKind::terminate()),
            (Signal::SIGHUP, SignalKind::hangup()),
            (Signal::SIGQUIT, SignalKind::quit()),
            (Signal::SIGUSR1, SignalKind::user_defined1()),
            (Signal::SIGUSR2, SignalKind::user_defined2()),
        ];
        kinds
            .into_iter()
            .map(|(sig, kind)| {
                signal(kind)
                    .map(|stream| (sig, stream))
                    .map_err(|e| Failure::new(Kind::Other, format!("cannot catch {sig}: {e}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Signals)
    }

    /// The next signal that arrived.
    async fn next(&mut self) -> Option<Signal> {
        let waits = self.0.iter_mut().map(|(sig, stream)| {
            let sig = *sig;
            Box::pin(async move { stream.recv().await.map(|()| sig) })
        });
        futures_util::future::select_all(waits).await.0
    }
}

/// The next published values; never resolves without a watcher.
async fn changed(rx: &mut Option<watch::Receiver<Arc<Values>>>) -> Option<Arc<Values>> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// The watcher found after starting in fallback; never resolves otherwise.
async fn recv_late(
    late: &mut Option<mpsc::Receiver<Option<Watcher<Values>>>>,
) -> Option<Watcher<Values>> {
    match late {
        Some(rx) => rx.recv().await.flatten(),
        None => std::future::pending().await,
    }
}

/// Resolves when a change is due; never without one.
async fn wait_due(due: &Option<(Instant, Vec<Var>)>) {
    match due {
        Some((at, _)) => sleep_until(*at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_a_shells() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 128 + 15);
    }
}
