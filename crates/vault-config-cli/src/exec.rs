//! `vault-config exec`: a child process with secrets in its environment (and,
//! with `--to-file`, in files), restarted (or signalled) when a value it
//! received changes in Vault.
//!
//! The library's watcher does the watching: it publishes only when a value
//! changed, so token and lease renewals and same-value writes never reach
//! this loop; new leased credentials do.
//!
//! The child runs in a process group of its own, so that a wrapper
//! (`sh -c 'server & wait'`, `npm start`) and everything it started are
//! signalled, stopped and, after `--kill-timeout`, killed together. When
//! standard input is a terminal whose foreground group is vault-config's, the
//! child's group takes the terminal, as a shell's job does: Ctrl-C, Ctrl-\
//! and Ctrl-Z reach the child and its children (not vault-config, which would
//! take them for a request to stop), and the terminal comes back when the
//! child exits. vault-config reaps every orphan the kernel hands it: as PID
//! 1 (a container's entrypoint) all of them, and elsewhere (on Linux, where
//! it is a child subreaper) those of the child's tree, so that the processes
//! of a stopped group are gone when it checks, not zombies of a slow init.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, tcgetpgrp, tcsetpgrp, Pid};
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use vault_config::{Mapping, VaultClient, VaultProvider, WatchOptions, Watcher};
use zeroize::Zeroizing;

use crate::cli::{ExecArgs, Mode, NamingArgs, OnChange};
use crate::exit::{Failure, Kind, Result};
use crate::naming::{variables, Var};
use crate::refs::{self, Sources};
use crate::target::Target;
use crate::{files, read};

/// What the watcher publishes: each `--secret` target's value under
/// `t<index>`, each `--to-file` one's under `f<index>`, each `vault://`
/// reference's (`--env-file`, the environment) under `r<index>`.
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

/// How long processes SIGKILL did not end are waited for before
/// vault-config gives up on them (a process stuck in the kernel, or a
/// zombie whose parent outside the group does not reap it).
const AFTER_SIGKILL: Duration = Duration::from_secs(5);

/// How often a process group whose leader has exited is checked for the
/// processes left in it (they send vault-config nothing when they exit).
const GROUP_POLL: Duration = Duration::from_millis(50);

/// The wait before writing `--to-file` files again after a failure.
const FILE_RETRY: Duration = Duration::from_secs(1);

/// Runs the command; returns the exit code `vault-config` exits with.
pub async fn run(args: ExecArgs) -> Result<u8> {
    let targets = Target::parse_all(&args.secrets)?;
    let files = ToFile::parse_all(&args.to_files)?;
    // The inherited environment reaches the child unless --pristine: its
    // references are resolved then.
    let sources = Sources::load(&args.env_files, !args.pristine, &args.naming)?;
    let ref_targets = sources.targets();
    if targets.is_empty() && files.is_empty() && ref_targets.is_empty() {
        return Err(Failure::new(
            Kind::Invalid,
            "nothing to read from Vault: no --secret, no --to-file, and no vault:// reference in the --env-file files or the environment",
        ));
    }
    let client = read::client(args.mount.mount.as_deref())?;
    let file_targets: Vec<Target> = files.iter().map(|f| f.target.clone()).collect();
    // Checked now; built again once Vault says which paths are leased.
    mappings(&targets, &file_targets, &ref_targets)?;
    // Replaced credentials outlive the child that used them by the time a
    // restart may take.
    let grace = args.debounce + args.splay + args.kill_timeout + Duration::from_secs(5);
    let options = WatchOptions::default()
        .interval(args.interval)
        .revoke_on_shutdown(true)
        .revoke_replaced_leases_after(grace);
    let start = Start {
        client: client.clone(),
        targets: targets.clone(),
        file_targets,
        sources: sources.clone(),
        options,
    };
    // Caught before anything starts, so that none is lost; and, as PID 1,
    // orphans are reaped from now on.
    let mut signals = Signals::new()?;
    let reaper = Reaper::new()?;

    // Secrets first; the child only after. A stop signal meanwhile: no child.
    let first = tokio::select! {
        first = start.first(&args) => first?,
        sig = signals.next_stop() => {
            tracing::info!(target: LOG, %sig, "vault-config exec: stopped before the command started; not starting it");
            return Ok(signal_code(sig));
        }
    };
    let mut watcher = None;
    let mut late = None;
    match first {
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
    let plan = Plan {
        targets,
        files: files.clone(),
        sources,
    };
    let mut supervisor = Supervisor {
        args: &args,
        plan: &plan,
        reaper,
        signals: &mut signals,
        terminal: Terminal::detect(),
        files: Files::new(files, args.keep_files),
    };
    let result = supervisor.supervise(&mut watcher, &mut late).await;
    supervisor.files.remove().await;
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

/// What the command line asks for, parsed.
struct Plan {
    targets: Vec<Target>,
    files: Vec<ToFile>,
    /// The `--env-file` variables and the environment's references.
    sources: Sources,
}

/// What the child was given: its variables, and the contents of its files.
#[derive(PartialEq, Eq)]
struct Given {
    vars: Vec<Var>,
    files: Vec<Zeroizing<String>>,
}

/// The published values, as the child would get them.
enum Resolved {
    /// Every target is there.
    Ready(Given),
    /// These targets (`PATH#KEY`, or `PATH`) are not in Vault any more.
    Vanished(Vec<String>),
}

/// The variables and file contents of the published values, or the targets
/// they lack (never passed on as empty values).
fn resolve(values: &Values, plan: &Plan, naming: &NamingArgs) -> Result<Resolved> {
    let vanished: Vec<String> = plan
        .targets
        .iter()
        .enumerate()
        .filter(|(i, _)| !values.contains_key(&format!("t{i}")))
        .map(|(_, t)| t.to_string())
        .chain(
            plan.files
                .iter()
                .enumerate()
                .filter(|(i, _)| !values.contains_key(&format!("f{i}")))
                .map(|(_, f)| f.target.to_string()),
        )
        .chain(
            plan.sources
                .references()
                .enumerate()
                .filter(|(i, _)| !values.contains_key(&format!("r{i}")))
                .map(|(_, (item, _))| item.describe()),
        )
        .collect();
    if !vanished.is_empty() {
        return Ok(Resolved::Vanished(vanished));
    }
    let ordered: Vec<Value> = (0..plan.targets.len())
        .map(|i| values.get(&format!("t{i}")).cloned().unwrap_or(Value::Null))
        .collect();
    let resolved: Vec<Value> = (0..plan.sources.references().count())
        .map(|i| values.get(&format!("r{i}")).cloned().unwrap_or(Value::Null))
        .collect();
    // --secret over the files over the environment.
    let vars = refs::layer(
        plan.sources.vars(&resolved)?,
        variables(&plan.targets, &ordered, naming)?,
    );
    let files = (0..plan.files.len())
        .map(|i| Zeroizing::new(text(values.get(&format!("f{i}")).unwrap_or(&Value::Null))))
        .collect();
    Ok(Resolved::Ready(Given { vars, files }))
}

/// A value as a file holds it: a string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What changed between `old` and `new`, by name (never a value).
fn changed_names(old: Option<&Given>, new: &Given, plan: &Plan) -> Vec<String> {
    let no_vars = Vec::new();
    let old_vars = old.map_or(&no_vars, |g| &g.vars);
    let mut names: Vec<String> = new
        .vars
        .iter()
        .filter(|n| {
            !old_vars
                .iter()
                .any(|o| o.name == n.name && o.value == n.value)
        })
        .map(|n| n.name.clone())
        .collect();
    names.extend(
        old_vars
            .iter()
            .filter(|o| !new.vars.iter().any(|n| n.name == o.name))
            .map(|o| o.name.clone()),
    );
    for (i, file) in plan.files.iter().enumerate() {
        if old.and_then(|g| g.files.get(i)) != new.files.get(i) {
            names.push(file.dest.display().to_string());
        }
    }
    names
}

/// One mapping per target, keyed `t<index>` (`--secret`), `f<index>`
/// (`--to-file`) or `r<index>` (a `vault://` reference): a whole secret
/// fills a map. No env fallback: a key Vault lacks is an error, not
/// whatever the shell holds.
fn mappings(
    targets: &[Target],
    file_targets: &[Target],
    ref_targets: &[Target],
) -> Result<Vec<Mapping>> {
    let keyed = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("t{i}"), t))
        .chain(
            file_targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("f{i}"), t)),
        )
        .chain(
            ref_targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("r{i}"), t)),
        );
    keyed
        .map(|(key, t)| {
            let secret_key = t.key.as_deref().unwrap_or("*");
            let m = if t.leased {
                Mapping::dynamic(key, &t.path, secret_key)
            } else {
                Mapping::from_parts(key, &t.path, secret_key)
            };
            m.map(Mapping::no_env).map_err(Failure::from)
        })
        .collect()
}

/// How the watcher is started.
#[derive(Clone)]
struct Start {
    client: VaultClient,
    /// `--secret` targets.
    targets: Vec<Target>,
    /// `--to-file` targets.
    file_targets: Vec<Target>,
    /// The references to read (and name in messages).
    sources: Sources,
    options: WatchOptions,
}

impl Start {
    /// A watcher whose first values hold every target: a secret Vault does
    /// not have fills no map entry, and is an error here as in `env`.
    async fn attempt(&self) -> Result<Watcher<Values>> {
        // Leased or KV: the mounts' types say (read::resolve).
        let all: Vec<Target> = self
            .targets
            .iter()
            .chain(&self.file_targets)
            .cloned()
            .chain(self.sources.targets())
            .collect();
        let resolved = read::resolve(&self.client, &all).await?;
        let (targets, rest) = resolved.split_at(self.targets.len());
        let (file_targets, ref_targets) = rest.split_at(self.file_targets.len());
        let mappings = mappings(targets, file_targets, ref_targets)?;
        let watcher: Watcher<Values> = match VaultProvider::builder()
            .mappings(mappings.clone())
            .watch(&self.client, self.options)
            .await
        {
            Ok(watcher) => watcher,
            Err(e) => {
                let failure = read::explain(&self.client, e).await;
                return Err(self.naming_references(failure));
            }
        };
        let current = watcher.current();
        let missing = mappings.iter().find(|m| !current.contains_key(m.key()));
        if let Some(m) = missing {
            let mut message = if m.is_whole_secret() {
                format!("no secret at {}", m.path())
            } else {
                format!("no key `{}` at {}", m.secret_key(), m.path())
            };
            let reference = m
                .key()
                .strip_prefix('r')
                .and_then(|i| i.parse::<usize>().ok());
            if let Some((item, _)) = reference.and_then(|i| self.sources.references().nth(i)) {
                message = format!("{}: cannot be resolved: {message}", item.describe());
            }
            watcher.shutdown().await;
            return Err(Failure::new(Kind::NotFound, message));
        }
        Ok(watcher)
    }

    /// `failure`, naming the references whose path it names (a path that
    /// cannot be read): where each was written.
    fn naming_references(&self, mut failure: Failure) -> Failure {
        let named: Vec<String> = self
            .sources
            .references()
            .filter(|(_, t)| failure.message.contains(&t.path))
            .map(|(item, _)| item.describe())
            .collect();
        if !named.is_empty() {
            failure.message = format!("{} (referenced by {})", failure.message, named.join(", "));
        }
        failure
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

/// The running command: the leader of a process group of its own (whose
/// id is the leader's pid).
struct Child {
    pid: Pid,
    /// The leader's exit code, once it exited.
    exit: Option<u8>,
    /// The group was ended: nothing is left to signal.
    ended: bool,
}

impl Drop for Child {
    /// Whatever way vault-config leaves (an error, a panic), the group does
    /// not outlive it.
    fn drop(&mut self) {
        if !self.ended {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
    }
}

/// Everything the supervising loop works with.
struct Supervisor<'a> {
    args: &'a ExecArgs,
    plan: &'a Plan,
    reaper: Reaper,
    signals: &'a mut Signals,
    terminal: Option<Terminal>,
    files: Files,
}

impl Supervisor<'_> {
    /// Starts the child and looks after it until it exits; returns its code.
    async fn supervise(
        &mut self,
        watcher: &mut Option<Watcher<Values>>,
        late: &mut Option<Late>,
    ) -> Result<u8> {
        let args = self.args;
        // What the child got; `None` while it runs on the parent's
        // environment (`--mode fallback`, Vault down at start).
        let mut applied: Option<Given> = match watcher.as_ref() {
            Some(w) => match resolve(&w.current(), self.plan, &args.naming)? {
                Resolved::Ready(given) => Some(given),
                // The watcher's first values hold every target (`Start::attempt`).
                Resolved::Vanished(missing) => {
                    return Err(Failure::new(
                        Kind::NotFound,
                        format!("not in Vault: {}", missing.join(", ")),
                    ))
                }
            },
            None => None,
        };
        if let Some(given) = &applied {
            self.files.write(&given.files).await?;
        }
        let mut rx: Option<watch::Receiver<Arc<Values>>> = watcher.as_ref().map(Watcher::subscribe);
        // Without Vault (--mode fallback), the files' literal values only.
        let literals = self.plan.sources.literals();
        let mut child = self.spawn(applied.as_ref().map_or(&literals, |g| &g.vars))?;
        // When a change seen but not yet acted on is due.
        let mut due: Option<Instant> = None;
        // A stop signal was passed on: the child is on its way out, is never
        // started again, and its group is killed at this instant.
        let mut stopping: Option<Signal> = None;
        let mut kill_at: Option<Instant> = None;
        // The targets a publish lacked, until they are back.
        let mut vanished: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                // The child's end first: a child that exits is never restarted.
                biased;
                event = self.reaper.event(child.pid) => match event {
                    Event::Exited(code) => {
                        self.exited(&mut child, code);
                        let deadline = kill_at.unwrap_or_else(|| Instant::now() + args.kill_timeout);
                        self.end_group(&mut child, args.kill_signal, deadline).await;
                        return Ok(code);
                    }
                    Event::Stopped(sig) => self.suspended(&child, sig),
                },
                Some(sig) = self.signals.next() => {
                    signal_group(child.pid, sig);
                    if is_stop(sig) {
                        stopping.get_or_insert(sig);
                        due = None;
                        kill_at.get_or_insert_with(|| Instant::now() + args.kill_timeout);
                    }
                }
                () = wait_due(kill_at) => {
                    kill_at = None;
                    tracing::warn!(
                        target: LOG,
                        signal = ?stopping,
                        kill_timeout = %humantime::format_duration(args.kill_timeout),
                        "vault-config exec: the command did not stop within --kill-timeout; SIGKILL to its process group"
                    );
                    signal_group(child.pid, Signal::SIGKILL);
                }
                changed = changed(&mut rx) => {
                    let Some(values) = changed else {
                        tracing::warn!(target: LOG, "vault-config exec: the watcher stopped; the command keeps the values it has");
                        rx = None;
                        continue;
                    };
                    match resolve(&values, self.plan, &args.naming) {
                        Ok(Resolved::Vanished(missing)) => {
                            tracing::warn!(
                                target: LOG,
                                missing = %missing.join(","),
                                "vault-config exec: no longer in Vault; the command keeps running with the values it has, and gets new ones once they are back"
                            );
                            vanished = missing;
                            due = None;
                        }
                        Ok(Resolved::Ready(given)) => {
                            if !vanished.is_empty() {
                                tracing::info!(target: LOG, back = %vanished.join(","), "vault-config exec: back in Vault");
                                vanished.clear();
                            }
                            if applied.as_ref() == Some(&given) {
                                due = None;
                                continue;
                            }
                            let names = changed_names(applied.as_ref(), &given, self.plan);
                            if stopping.is_some() {
                                tracing::info!(target: LOG, changed = %names.join(","), "vault-config exec: secrets changed; the command is stopping and is not started again");
                            } else if due.is_none() {
                                due = Some(self.schedule(&names));
                            }
                        }
                        Err(e) => tracing::warn!(target: LOG, error = %e, "vault-config exec: the new values cannot be passed on; the command keeps the ones it has"),
                    }
                }
                found = recv_late(late) => {
                    *late = None;
                    let Some(w) = found else { continue };
                    tracing::info!(target: LOG, "vault-config exec: Vault is back; the command gets its secrets");
                    rx = Some(w.subscribe());
                    *watcher = Some(w);
                    if stopping.is_none() {
                        due = Some(self.schedule(&[]));
                    }
                }
                () = wait_due(due) => {
                    due = None;
                    // The newest values, however long the debounce was.
                    let Some(current) = rx.as_mut().map(|rx| rx.borrow_and_update().clone()) else { continue };
                    let given = match resolve(&current, self.plan, &args.naming) {
                        Ok(Resolved::Ready(given)) => given,
                        // Warned when published; the command keeps its values.
                        Ok(Resolved::Vanished(_)) => continue,
                        Err(e) => {
                            tracing::warn!(target: LOG, error = %e, "vault-config exec: the new values cannot be passed on");
                            continue;
                        }
                    };
                    if applied.as_ref() == Some(&given) {
                        continue;
                    }
                    // The files first: the child reads them on the signal, or
                    // when it starts again.
                    if let Err(e) = self.files.write(&given.files).await {
                        tracing::warn!(target: LOG, error = %e, retry_in = ?FILE_RETRY, "vault-config exec: the command keeps running as it is until the files are written");
                        due = Some(Instant::now() + FILE_RETRY);
                        continue;
                    }
                    // Coming out of fallback, only a restart gives the child
                    // an environment it never had.
                    let action = if applied.is_none() {
                        OnChange::Restart
                    } else {
                        args.on_change.clone()
                    };
                    match action {
                        OnChange::Restart => {
                            tracing::info!(target: LOG, signal = %args.kill_signal, "vault-config exec: stopping the command to start it with the new values");
                            let deadline = Instant::now() + args.kill_timeout;
                            let stop = self.end_group(&mut child, args.kill_signal, deadline).await;
                            let code = child.exit.unwrap_or(1);
                            if let Some(sig) = stop {
                                tracing::info!(target: LOG, %sig, status = code, "vault-config exec: stopped while the command was being restarted; not starting it again");
                                return Ok(code);
                            }
                            tracing::info!(target: LOG, status = code, "vault-config exec: stopped the command; starting it with the new values");
                            child = self.spawn(&given.vars)?;
                        }
                        OnChange::Signal(sig) => {
                            tracing::info!(target: LOG, %sig, "vault-config exec: signalling the command's process group");
                            signal_group(child.pid, sig);
                        }
                        OnChange::None => {
                            tracing::info!(target: LOG, "vault-config exec: --on-change none: the command keeps running as it is");
                        }
                    }
                    applied = Some(given);
                }
            }
        }
    }

    /// When a change seen now is acted on: after `--debounce`, and a random
    /// part of `--splay`.
    fn schedule(&self, names: &[String]) -> Instant {
        let splay = random_below(self.args.splay);
        let wait = self.args.debounce + splay;
        tracing::info!(
            target: LOG,
            changed = %names.join(","),
            debounce_ms = millis(self.args.debounce),
            splay_ms = millis(splay),
            "vault-config exec: secrets changed; acting on them in {}",
            humantime::format_duration(Duration::from_millis(millis(wait)))
        );
        Instant::now() + wait
    }

    /// Starts the command with `vars` in its environment, in a process group
    /// of its own (given the terminal when vault-config has it).
    fn spawn(&self, vars: &[Var]) -> Result<Child> {
        let args = self.args;
        let Some((program, rest)) = args.command.split_first() else {
            return Err(Failure::new(Kind::Other, "no command to run after `--`"));
        };
        let mut command = std::process::Command::new(program);
        command.args(rest).process_group(0);
        if args.pristine {
            command.env_clear();
        } else if !args.keep_vault_credentials {
            for name in CREDENTIALS {
                command.env_remove(name);
            }
        }
        // An inherited reference reaches the child resolved, or not at all.
        for (item, _) in self.plan.sources.references() {
            command.env_remove(&item.name);
        }
        command.envs(vars.iter().map(|v| (&v.name, &v.value)));
        let pid = self.reaper.spawn(&mut command).map_err(|e| {
            let (kind, hint) = match e.kind() {
                std::io::ErrorKind::NotFound => (Kind::CommandNotFound, "not found on PATH"),
                std::io::ErrorKind::PermissionDenied => (Kind::NotExecutable, "not executable"),
                _ => (Kind::Other, "could not be started"),
            };
            Failure::new(kind, format!("`{program}` {hint}: {e}"))
        })?;
        if let Some(terminal) = &self.terminal {
            terminal.hand_to(pid);
            // Had it read the terminal before it was handed over, SIGTTIN
            // stopped it: it goes on now, in the foreground.
            signal_group(pid, Signal::SIGCONT);
        }
        tracing::info!(
            target: LOG,
            pid = pid.as_raw(),
            variables = vars.len(),
            files = self.plan.files.len(),
            "vault-config exec: started the command"
        );
        Ok(Child {
            pid,
            exit: None,
            ended: false,
        })
    }

    /// The leader of the child's group exited.
    fn exited(&self, child: &mut Child, code: u8) {
        child.exit = Some(code);
        if let Some(terminal) = &self.terminal {
            terminal.take_back();
        }
    }

    /// Ends the child's process group: `sig` (then SIGCONT, for a suspended
    /// process to act on it) to every process in it, SIGKILL to whatever is
    /// left at `deadline`. Returns once the leader exited and the group is
    /// empty (or SIGKILL could not empty it in [`AFTER_SIGKILL`]). Signals
    /// that arrive meanwhile go to the group too; the first stop signal
    /// among them is returned, so that no new child starts.
    async fn end_group(
        &mut self,
        child: &mut Child,
        sig: Signal,
        deadline: Instant,
    ) -> Option<Signal> {
        let pgid = child.pid;
        let mut stop = None;
        if child.exit.is_none() || group_alive(pgid) {
            if child.exit.is_some() {
                tracing::info!(target: LOG, %sig, "vault-config exec: the command exited; ending the processes left in its group");
            }
            signal_group(pgid, sig);
            if !matches!(sig, Signal::SIGKILL | Signal::SIGCONT) {
                signal_group(pgid, Signal::SIGCONT);
            }
        }
        let mut deadline = deadline;
        let mut killed = false;
        loop {
            if child.exit.is_some() && !group_alive(pgid) {
                break;
            }
            tokio::select! {
                biased;
                event = self.reaper.event(pgid), if child.exit.is_none() => {
                    if let Event::Exited(code) = event {
                        self.exited(child, code);
                    }
                }
                Some(received) = self.signals.next() => {
                    signal_group(pgid, received);
                    if is_stop(received) {
                        stop.get_or_insert(received);
                    }
                }
                () = sleep_until(deadline), if !killed || child.exit.is_some() => {
                    if killed {
                        tracing::warn!(target: LOG, "vault-config exec: processes of the command's group outlived SIGKILL; leaving them");
                        break;
                    }
                    tracing::warn!(
                        target: LOG,
                        kill_timeout = %humantime::format_duration(self.args.kill_timeout),
                        "vault-config exec: the command did not stop in time; SIGKILL to its process group"
                    );
                    signal_group(pgid, Signal::SIGKILL);
                    killed = true;
                    deadline = Instant::now() + AFTER_SIGKILL;
                }
                () = sleep(GROUP_POLL), if child.exit.is_some() => {}
            }
        }
        child.ended = true;
        stop
    }

    /// The child was stopped by `sig`. At a terminal (Ctrl-Z), vault-config
    /// stops too, so that the shell sees its job stopped; `fg` or `bg`
    /// continues both. Elsewhere a stopped child is left as it is.
    fn suspended(&self, child: &Child, sig: Signal) {
        let Some(terminal) = &self.terminal else {
            tracing::info!(target: LOG, %sig, "vault-config exec: the command was stopped");
            return;
        };
        if matches!(sig, Signal::SIGTTIN | Signal::SIGTTOU)
            && terminal.foreground() == Some(child.pid)
        {
            // It touched the terminal just before it got it.
            signal_group(child.pid, Signal::SIGCONT);
            return;
        }
        terminal.take_back();
        // Returns once continued: by `fg` (the terminal is vault-config's
        // again) or `bg`.
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
        if terminal.foreground() == Some(terminal.own) {
            terminal.hand_to(child.pid);
        }
        signal_group(child.pid, Signal::SIGCONT);
    }
}

/// Sends `sig` to every process of the group `pgid`.
fn signal_group(pgid: Pid, sig: Signal) {
    if let Err(e) = killpg(pgid, sig) {
        tracing::debug!(target: LOG, %sig, error = %e, "vault-config exec: could not signal the command's process group");
    }
}

/// Whether any process is left in the group `pgid`.
fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// SIGINT, SIGTERM and SIGQUIT ask for the end: passed on, and the child is
/// never started again.
fn is_stop(sig: Signal) -> bool {
    matches!(sig, Signal::SIGINT | Signal::SIGTERM | Signal::SIGQUIT)
}

/// The code a shell reports for a process killed by `sig`.
fn signal_code(sig: Signal) -> u8 {
    u8::try_from(128 + sig as i32).unwrap_or(1)
}

/// The code a shell would report for a waited-for process: the exit code,
/// or 128+N for signal N; `None` for a process that did not end.
fn exit_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(u8::try_from(code & 0xff).unwrap_or(1)),
        WaitStatus::Signaled(_, sig, _) => Some(signal_code(sig)),
        _ => None,
    }
}

/// `d` in whole milliseconds, for logs.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A random duration in `[0, max)`.
fn random_below(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return max / 2;
    }
    Duration::from_nanos(u64::from_le_bytes(bytes) % nanos)
}

/// What became of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// It ended, with this code (128+N for signal N).
    Exited(u8),
    /// It was stopped by this signal.
    Stopped(Signal),
}

/// Waits for children: the command vault-config started, and every orphan
/// the kernel hands it (as PID 1, or as a child subreaper), reaped and
/// forgotten so that none is left a zombie. A task of its own reaps on
/// every SIGCHLD, whatever the supervising loop is busy with.
struct Reaper {
    shared: Arc<Reaped>,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// Makes vault-config the child subreaper of its descendants (Linux): a
/// process of the child's tree whose parent exits is handed to
/// vault-config, not to PID 1, and is reaped at once when it exits.
#[cfg(target_os = "linux")]
fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// No subreapers here: orphans go to PID 1.
#[cfg(not(target_os = "linux"))]
fn become_subreaper() -> bool {
    false
}

/// What the reaping task and the supervising loop share.
struct Reaped {
    /// Reap every child (PID 1, a subreaper), not only the ones started here.
    all: bool,
    state: Mutex<ReapState>,
}

#[derive(Default)]
struct ReapState {
    /// Children started here that have not exited.
    watched: HashSet<Pid>,
    /// Their exit codes, until taken.
    exited: HashMap<Pid, u8>,
    /// Their last stop, until taken.
    stopped: HashMap<Pid, Signal>,
}

impl Reaper {
    fn new() -> Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())
            .map_err(|e| Failure::new(Kind::Other, format!("cannot catch SIGCHLD: {e}")))?;
        let all = std::process::id() == 1 || become_subreaper();
        let shared = Arc::new(Reaped {
            all,
            state: Mutex::default(),
        });
        let (tx, changes) = watch::channel(0u64);
        let reaped = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                reaped.reap();
                tx.send_modify(|n| *n = n.wrapping_add(1));
                if sigchld.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(Reaper {
            shared,
            changes,
            task,
        })
    }

    /// Starts `command`, and watches the child from its first instant (a
    /// child that ends at once is not missed, nor reaped as an orphan).
    fn spawn(&self, command: &mut std::process::Command) -> std::io::Result<Pid> {
        let mut state = self.shared.lock();
        // Waited for with waitpid by the reaping task, not through `Child`.
        #[allow(clippy::zombie_processes)]
        let child = command.spawn()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        // Under the lock: the task, which reaps under it too, sees the
        // child watched before it can see it exit.
        state.watched.insert(pid);
        Ok(pid)
    }

    /// The next event of the child `pid`.
    async fn event(&self, pid: Pid) -> Event {
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            if let Some(event) = self.shared.take(pid) {
                return event;
            }
            if changes.changed().await.is_err() {
                // The task is gone: nothing will come.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reaped {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReapState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Collects what happened to children since the last SIGCHLD.
    fn reap(&self) {
        let mut state = self.lock();
        let flags = Some(WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED);
        if self.all {
            loop {
                match waitpid(Pid::from_raw(-1), flags) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(status) => state.record(status),
                }
            }
            return;
        }
        let watched: Vec<Pid> = state.watched.iter().copied().collect();
        for pid in watched {
            loop {
                match waitpid(pid, flags) {
                    Ok(WaitStatus::StillAlive) => break,
                    Ok(status) => {
                        let ended = exit_code(status).is_some();
                        state.record(status);
                        if ended {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: LOG, pid = pid.as_raw(), error = %e, "vault-config exec: cannot wait for the command");
                        state.watched.remove(&pid);
                        state.exited.insert(pid, 1);
                        break;
                    }
                }
            }
        }
    }

    /// The next event of `pid`, if one happened: its end before a stop.
    fn take(&self, pid: Pid) -> Option<Event> {
        let mut state = self.lock();
        if let Some(code) = state.exited.remove(&pid) {
            state.stopped.remove(&pid);
            return Some(Event::Exited(code));
        }
        state.stopped.remove(&pid).map(Event::Stopped)
    }
}

impl ReapState {
    fn record(&mut self, status: WaitStatus) {
        if let Some(code) = exit_code(status) {
            let Some(pid) = status.pid() else { return };
            if self.watched.remove(&pid) {
                self.exited.insert(pid, code);
            } else {
                tracing::debug!(target: LOG, pid = pid.as_raw(), status = code, "vault-config exec: reaped an orphan");
            }
        } else if let WaitStatus::Stopped(pid, sig) = status {
            if self.watched.contains(&pid) {
                self.stopped.insert(pid, sig);
            }
        }
    }
}

/// The terminal vault-config was started in the foreground of: while the
/// child runs, the child's group is the terminal's foreground group.
struct Terminal {
    /// vault-config's own process group.
    own: Pid,
}

impl Terminal {
    /// The terminal on standard input, if vault-config's group is its
    /// foreground group (run from an interactive shell, not in the
    /// background, not under `setsid`).
    fn detect() -> Option<Terminal> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let own = getpgrp();
        (tcgetpgrp(&stdin).ok()? == own).then_some(Terminal { own })
    }

    /// The terminal's foreground group now.
    fn foreground(&self) -> Option<Pid> {
        tcgetpgrp(std::io::stdin()).ok()
    }

    /// Makes the group `pgid` the terminal's foreground group.
    fn hand_to(&self, pgid: Pid) {
        set_foreground(pgid);
    }

    /// Makes vault-config's group the terminal's foreground group again.
    fn take_back(&self) {
        set_foreground(self.own);
    }
}

/// `tcsetpgrp` on standard input, with SIGTTOU blocked: from a background
/// group (the child's has the terminal) the kernel would otherwise stop
/// vault-config for trying.
fn set_foreground(pgid: Pid) {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old)).is_ok();
    if let Err(e) = tcsetpgrp(std::io::stdin(), pgid) {
        tracing::debug!(target: LOG, error = %e, "vault-config exec: cannot hand the terminal over");
    }
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
}

/// One `--to-file PATH#KEY=DEST`.
#[derive(Debug, Clone)]
struct ToFile {
    target: Target,
    /// Absolute: written again and removed from wherever vault-config is.
    dest: PathBuf,
}

impl ToFile {
    /// Parses `PATH#KEY=DEST` (the first `=` after the `#` ends the key).
    fn parse(arg: &str) -> Result<ToFile> {
        let bad = |why: &str| {
            Failure::new(
                Kind::Invalid,
                format!("--to-file `{arg}`: {why}; write PATH#KEY=DEST (app#TLS_KEY=/run/secrets/tls.key)"),
            )
        };
        let hash = arg.find('#').ok_or_else(|| bad("no `#KEY`"))?;
        let eq = arg[hash..]
            .find('=')
            .map(|i| hash + i)
            .ok_or_else(|| bad("no `=DEST`"))?;
        let target = Target::parse(&arg[..eq])?;
        let dest = &arg[eq + 1..];
        if dest.is_empty() || dest.ends_with('/') {
            return Err(bad("DEST is not a file name"));
        }
        let dest = std::path::absolute(dest)
            .map_err(|e| bad(&format!("DEST cannot be made absolute ({e})")))?;
        if dest.file_name().is_none() {
            return Err(bad("DEST is not a file name"));
        }
        Ok(ToFile { target, dest })
    }

    /// Parses every argument; two for one DEST are refused.
    fn parse_all(args: &[String]) -> Result<Vec<ToFile>> {
        let files: Vec<ToFile> = args
            .iter()
            .map(|a| ToFile::parse(a))
            .collect::<Result<_>>()?;
        for (i, file) in files.iter().enumerate() {
            if files[..i].iter().any(|f| f.dest == file.dest) {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("--to-file names {} twice", file.dest.display()),
                ));
            }
        }
        Ok(files)
    }
}

/// The `--to-file` files: written whole, removed at exit unless kept.
struct Files {
    list: Vec<ToFile>,
    keep: bool,
    /// Written at least once (so removed at exit).
    written: Vec<bool>,
}

impl Files {
    fn new(list: Vec<ToFile>, keep: bool) -> Files {
        let written = vec![false; list.len()];
        Files {
            list,
            keep,
            written,
        }
    }

    /// Writes each file's content (in `--to-file` order); the first failure
    /// stops, naming the file and its key (never the value).
    async fn write(&mut self, contents: &[Zeroizing<String>]) -> Result<()> {
        for (i, (file, content)) in self.list.iter().zip(contents).enumerate() {
            let dest = file.dest.clone();
            let content = content.clone();
            let written = tokio::task::spawn_blocking(move || {
                files::replace(&dest, content.as_bytes(), 0o600, None)
            })
            .await
            .map_err(|e| {
                Failure::new(Kind::Other, format!("writing {}: {e}", file.dest.display()))
            })?;
            written.map_err(|e| {
                Failure::new(
                    Kind::Other,
                    format!(
                        "cannot write {} (--to-file {}): {e}",
                        file.dest.display(),
                        file.target
                    ),
                )
            })?;
            self.written[i] = true;
        }
        Ok(())
    }

    /// Removes the files written, unless `--keep-files`.
    async fn remove(&self) {
        if self.keep {
            return;
        }
        for (file, _) in self.list.iter().zip(&self.written).filter(|(_, w)| **w) {
            let dest = file.dest.clone();
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(dest)).await;
            if let Ok(Err(e)) = removed {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(target: LOG, file = %file.dest.display(), error = %e, "vault-config exec: cannot remove the --to-file file");
                }
            }
        }
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

    /// The next stop signal (SIGINT, SIGTERM, SIGQUIT); others, with no
    /// child to pass them to, are dropped.
    async fn next_stop(&mut self) -> Signal {
        loop {
            match self.next().await {
                Some(sig) if is_stop(sig) => return sig,
                Some(sig) => {
                    tracing::debug!(target: LOG, %sig, "vault-config exec: no command to pass the signal to yet");
                }
                None => std::future::pending::<()>().await,
            }
        }
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

/// Resolves at `due`; never without one.
async fn wait_due(due: Option<Instant>) {
    match due {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes_are_a_shells() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 7)), Some(7));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(128 + 15)
        );
        assert_eq!(exit_code(WaitStatus::Stopped(pid, Signal::SIGTSTP)), None);
    }

    #[test]
    fn targets_read_no_env_fallback() {
        // `port` would fall back to PORT, a name the library refuses by default.
        let targets =
            Target::parse_all(&["database#port".into(), "database/creds/app#username".into()])
                .unwrap();
        let files = ToFile::parse_all(&["app#TLS_KEY=/run/tls.key".into()]).unwrap();
        let refs = Target::parse_all(&["app#K".into()]).unwrap();
        let mappings = mappings(&targets, &[files[0].target.clone()], &refs).unwrap();
        assert_eq!(mappings.len(), 4);
        assert_eq!(mappings[3].key(), "r0");
        assert_eq!(mappings[2].key(), "f0");
        assert!(
            mappings.iter().all(|m| m.env_var(None).is_empty()),
            "{mappings:?}"
        );
    }

    #[test]
    fn to_file_arguments() {
        let f = ToFile::parse("app/tls#key.pem=/run/a=b/key.pem").unwrap();
        assert_eq!(f.target.to_string(), "app/tls#key.pem");
        assert_eq!(f.dest, std::path::Path::new("/run/a=b/key.pem"));
        let relative = ToFile::parse("app#K=out/k").unwrap();
        assert!(relative.dest.is_absolute() && relative.dest.ends_with("out/k"));
        for bad in ["app=/x", "app#K", "app#K=", "app#K=/run/", "#K=/x"] {
            assert_eq!(ToFile::parse(bad).unwrap_err().kind, Kind::Invalid, "{bad}");
        }
        let twice = ToFile::parse_all(&["a#K=/x".into(), "b#L=/x".into()]).unwrap_err();
        assert!(twice.message.contains("twice"), "{}", twice.message);
    }

    #[test]
    fn a_vanished_key_is_named_not_emptied() {
        let plan = Plan {
            targets: Target::parse_all(&["app#API_KEY".into(), "db".into()]).unwrap(),
            files: ToFile::parse_all(&["tls#key=/k".into()]).unwrap(),
            sources: Sources::default(),
        };
        let naming = NamingArgs {
            prefix: String::new(),
            strict: false,
            last_wins: false,
            allow_names: Vec::new(),
        };
        let mut values: Values = BTreeMap::new();
        values.insert("t1".into(), json!({"URL": "u"}));
        match resolve(&values, &plan, &naming).unwrap() {
            Resolved::Vanished(missing) => assert_eq!(missing, ["app#API_KEY", "tls#key"]),
            Resolved::Ready(_) => panic!("a vanished key must not be passed on"),
        }
        values.insert("t0".into(), json!("k"));
        values.insert("f0".into(), json!("pem"));
        let Resolved::Ready(given) = resolve(&values, &plan, &naming).unwrap() else {
            panic!("every target is there");
        };
        assert_eq!(given.vars.len(), 2);
        assert_eq!(given.files[0].as_str(), "pem");
    }

    #[test]
    fn splay_stays_below_its_bound() {
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(random_below(Duration::from_millis(3)) < Duration::from_millis(3));
        }
    }
}
