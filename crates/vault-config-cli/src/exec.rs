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

use crate::cli::{ExecArgs, Mode, NamingArgs, OnChange};
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
    "BAO_APPROLE_SECRET_ID",
    "VAULT_WRAPPED_SECRET_ID",
    "BAO_WRAPPED_SECRET_ID",
    "VAULT_APPROLE_WRAPPED_SECRET_ID",
    "BAO_APPROLE_WRAPPED_SECRET_ID",
];

/// The target of this command line's own log lines (the binary's crate is
/// named like the library's, so the default filter names this one).
pub const LOG: &str = "vault_config_cli";

/// The longest wait between attempts to reach Vault at start (and, under
/// `--mode fallback`, until it answers).
const MAX_START_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the command; returns the exit code `vault-config` exits with.
pub async fn run(args: ExecArgs) -> Result<u8> {
    let targets = Target::parse_all(&args.secrets)?;
    let client = read::client(args.mount.mount.as_deref())?;
    let mappings = mappings(&targets)?;
    // Replaced credentials outlive the child that used them by the time a
    // restart may take.
    let grace = args.debounce + args.kill_timeout + Duration::from_secs(5);
    let options = WatchOptions::default()
        .interval(args.interval)
        .revoke_on_shutdown(true)
        .revoke_replaced_leases_after(grace);
    let start = Start {
        client: client.clone(),
        mappings,
        options,
    };
    // Caught before anything starts, so that none is lost.
    let mut signals = Signals::new()?;

    // Secrets first; the child only after.
    let mut watcher = None;
    let mut late = None;
    match start.first(&args).await? {
        Some(w) => watcher = Some(w),
        None => {
            // --mode fallback, Vault down: the parent's environment for now.
            let (tx, rx) = mpsc::channel(1);
            let retry = start.clone();
            let task = tokio::spawn(async move {
                let found = retry.until_up().await;
                // A watcher nobody takes any more is dropped, and stops.
                let _ = tx.send(found).await;
            });
            late = Some((rx, task));
        }
    }
    let result = supervise(&args, &targets, &mut signals, &mut watcher, &mut late).await;
    if let Some((_, task)) = late {
        task.abort();
    }
    if let Some(w) = watcher {
        // Leased credentials die with the command that used them.
        w.shutdown().await;
    }
    result
}

/// The fallback search for Vault: its answer, and the task looking.
type Late = (
    mpsc::Receiver<Option<Watcher<Values>>>,
    tokio::task::JoinHandle<()>,
);

/// Starts the child and looks after it until it exits; returns its code.
async fn supervise(
    args: &ExecArgs,
    targets: &[Target],
    signals: &mut Signals,
    watcher: &mut Option<Watcher<Values>>,
    late: &mut Option<Late>,
) -> Result<u8> {
    let mut given = match watcher.as_ref() {
        Some(w) => vars_of(&w.current(), targets, &args.naming)?,
        None => Vec::new(),
    };
    let mut rx: Option<watch::Receiver<Arc<Values>>> = watcher.as_ref().map(Watcher::subscribe);
    let mut child = spawn(args, &given)?;
    tracing::info!(
        target: LOG,
        pid = child.id(),
        variables = given.len(),
        "vault-config exec: started the command"
    );
    // When a change seen but not yet acted on is due.
    let mut due: Option<Instant> = None;
    // A stop signal was passed on: the child is on its way out and is
    // never started again.
    let mut stopping = false;
    loop {
        tokio::select! {
            // The child's end first: a child that exits is never restarted.
            biased;
            status = child.wait() => {
                let status = status.map_err(|e| Failure::new(Kind::Other, format!("waiting for the command: {e}")))?;
                return Ok(exit_code(status));
            }
            Some(sig) = signals.next() => {
                forward(&child, sig);
                if matches!(sig, Signal::SIGINT | Signal::SIGTERM | Signal::SIGQUIT) {
                    stopping = true;
                    due = None;
                }
            }
            changed = changed(&mut rx) => {
                let Some(values) = changed else {
                    tracing::warn!(target: LOG, "vault-config exec: the watcher stopped; the command keeps the values it has");
                    rx = None;
                    continue;
                };
                match vars_of(&values, targets, &args.naming) {
                    Ok(vars) if vars != given => {
                        let names = changed_names(&given, &vars);
                        tracing::info!(target: LOG, changed = %names.join(","), "vault-config exec: secrets changed");
                        if !stopping {
                            due = Some(due.unwrap_or_else(|| Instant::now() + args.debounce));
                        }
                    }
                    Ok(_) => due = None,
                    Err(e) => tracing::warn!(target: LOG, error = %e, "vault-config exec: the new values cannot be passed on; the command keeps the ones it has"),
                }
            }
            found = recv_late(late) => {
                *late = None;
                let Some(w) = found else { continue };
                tracing::info!(target: LOG, "vault-config exec: Vault is back; the command gets its secrets");
                rx = Some(w.subscribe());
                *watcher = Some(w);
                if !stopping {
                    due = Some(Instant::now() + args.debounce);
                }
            }
            () = wait_due(due) => {
                due = None;
                // The newest values, however long the debounce was.
                let Some(current) = rx.as_mut().map(|rx| rx.borrow_and_update().clone()) else { continue };
                let vars = match vars_of(&current, targets, &args.naming) {
                    Ok(vars) => vars,
                    Err(e) => {
                        tracing::warn!(target: LOG, error = %e, "vault-config exec: the new values cannot be passed on");
                        continue;
                    }
                };
                if vars == given {
                    continue;
                }
                // Coming out of fallback, only a restart gives the child
                // an environment it never had.
                let action = if given.is_empty() && !vars.is_empty() {
                    OnChange::Restart
                } else {
                    args.on_change.clone()
                };
                match action {
                    OnChange::Restart => {
                        let stopped = stop(&mut child, args.kill_signal, args.kill_timeout).await;
                        tracing::info!(target: LOG, status = %stopped, "vault-config exec: stopped the command; starting it with the new values");
                        child = spawn(args, &vars)?;
                        given = vars;
                    }
                    OnChange::Signal(sig) => {
                        forward(&child, sig);
                        given = vars;
                    }
                    OnChange::None => {
                        tracing::info!(target: LOG, "vault-config exec: --on-change none: the command keeps running as it is");
                        given = vars;
                    }
                }
            }
        }
    }
}

/// One mapping per target, keyed `t<index>`: a whole secret fills a map.
/// No env fallback: a key Vault lacks is an error, not whatever the shell holds.
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
            m.map(Mapping::no_env).map_err(Failure::from)
        })
        .collect()
}

/// The variables of the published values, in target order.
fn vars_of(values: &Values, targets: &[Target], naming: &NamingArgs) -> Result<Vec<Var>> {
    let ordered: Vec<Value> = (0..targets.len())
        .map(|i| values.get(&format!("t{i}")).cloned().unwrap_or(Value::Null))
        .collect();
    variables(targets, &ordered, naming)
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
    /// A watcher whose first values hold every target: a secret Vault does
    /// not have fills no map entry, and is an error here as in `env`.
    async fn attempt(&self) -> Result<Watcher<Values>> {
        let watcher: Watcher<Values> = match VaultProvider::builder()
            .mappings(self.mappings.clone())
            .watch(&self.client, self.options)
            .await
        {
            Ok(watcher) => watcher,
            Err(e) => return Err(read::explain(&self.client, e).await),
        };
        let current = watcher.current();
        let missing = self
            .mappings
            .iter()
            .find(|m| !current.contains_key(m.key()));
        if let Some(m) = missing {
            let message = if m.is_whole_secret() {
                format!("no secret at {}", m.path())
            } else {
                format!("no key `{}` at {}", m.secret_key(), m.path())
            };
            watcher.shutdown().await;
            return Err(Failure::new(Kind::NotFound, message));
        }
        Ok(watcher)
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
                Err(_) if args.mode == Mode::Fallback => {
                    tracing::warn!(target: LOG, "vault-config exec: Vault did not answer; starting the command on the parent's environment (--mode fallback) and retrying in the background");
                    return Ok(None);
                }
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
                Err(e) => e,
            };
            if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                return Err(e);
            }
            if args.mode == Mode::Fallback {
                tracing::warn!(target: LOG, error = %e, "vault-config exec: Vault is not available; starting the command on the parent's environment (--mode fallback) and retrying in the background");
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
            tracing::warn!(target: LOG, error = %e, retry_in = ?wait.min(left), "vault-config exec: Vault is not available yet; retrying");
            sleep(wait.min(left)).await;
            wait = (wait * 2).min(MAX_START_BACKOFF);
        }
    }

    /// A watcher once Vault answers with the secrets (`--mode fallback`),
    /// however long it takes: a Vault that returns may still be being
    /// seeded or granted, so every failure is tried again, with backoff.
    async fn until_up(&self) -> Option<Watcher<Values>> {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.attempt().await {
                Ok(watcher) => return Some(watcher),
                Err(e) => {
                    if !matches!(e.kind, Kind::Connection | Kind::Sealed) {
                        tracing::warn!(target: LOG, error = %e, retry_in = ?wait, "vault-config exec: Vault answered, but the secrets cannot be read yet; the command keeps the parent's environment");
                    }
                }
            }
            sleep(wait).await;
            // The command runs without its secrets meanwhile: keep looking often.
            wait = (wait * 2).min(MAX_START_BACKOFF);
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
                target: LOG,
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
        tracing::debug!(target: LOG, %sig, error = %e, "vault-config exec: could not signal the command");
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
async fn recv_late(late: &mut Option<Late>) -> Option<Watcher<Values>> {
    match late {
        Some((rx, _)) => rx.recv().await.flatten(),
        None => std::future::pending().await,
    }
}

/// Resolves when a change is due; never without one.
async fn wait_due(due: Option<Instant>) {
    match due {
        Some(at) => sleep_until(at).await,
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

    #[test]
    fn targets_read_no_env_fallback() {
        // `port` would fall back to PORT, a name the library refuses by default.
        let targets =
            Target::parse_all(&["database#port".into(), "database/creds/app#username".into()])
                .unwrap();
        let mappings = mappings(&targets).unwrap();
        assert!(
            mappings.iter().all(|m| m.env_var(None).is_empty()),
            "{mappings:?}"
        );
    }
}
