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
//! child exits (or fails to start). Sent to the background (Ctrl-Z, `bg`),
//! vault-config leaves the terminal to the shell, restarts included, and
//! gives it to the child again after `fg`. vault-config reaps every orphan the kernel hands it: as PID
//! 1 (a container's entrypoint) all of them, and elsewhere (on Linux, where
//! it is a child subreaper) those of the child's tree, so that the processes
//! of a stopped group are gone when it checks, not zombies of a slow init.
//!
//! Here: the supervising loop, and what the child gets (`--secret` over the
//! `--env-file` files over the inherited environment, `refs::layer`). The
//! watcher's start is `start`, the process group, reaper, terminal and
//! signals are `process`, the `--to-file` files `to_file`.

use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};
use vault_config::{WatchOptions, Watcher};
use zeroize::Zeroizing;

use crate::cli::{ExecArgs, NamingArgs, OnChange};
use crate::exit::{Failure, Kind, Result, LOG};
use crate::naming::{variables, Var};
use crate::process::{
    group_alive, is_stop, signal_code, signal_group, Event, Reaper, Signals, Terminal,
};
use crate::read;
use crate::refs::{self, Sources};
use crate::start::{mappings, Start, Values};
use crate::target::Target;
use crate::to_file::{Files, ToFile};

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
                // `fg` of the running job gives the terminal to vault-config's
                // group without a signal (bash sends SIGCONT only to a
                // stopped job): it goes on to the child.
                () = tokio::time::sleep(TERMINAL_CHECK), if self.terminal.is_some() => {
                    if let Some(terminal) = &self.terminal {
                        terminal.hand_to(child.pid);
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
        if let Some(terminal) = &self.terminal {
            terminal.take_at_start(&mut command);
        }
        let spawned = self.reaper.spawn(&mut command);
        if let (Err(_), Some(terminal)) = (&spawned, &self.terminal) {
            // The child took the terminal before its exec failed: its group
            // is gone, and the terminal comes back.
            terminal.take_back(terminal.own);
        }
        let pid = spawned.map_err(|e| {
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
            terminal.take_back(child.pid);
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
        if matches!(sig, Signal::SIGTTIN | Signal::SIGTTOU) {
            // It touched the terminal just before it got it, or while
            // vault-config's group held it (`fg` of the running job): it
            // goes on in the foreground. Only when the shell holds the
            // terminal does the job stop, as a shell's job would.
            terminal.hand_to(child.pid);
            if terminal.foreground() == Some(child.pid) {
                signal_group(child.pid, Signal::SIGCONT);
                return;
            }
        }
        terminal.take_back(child.pid);
        // Returns once continued: by `fg` (the terminal is vault-config's
        // again) or `bg`.
        let _ = nix::sys::signal::raise(Signal::SIGSTOP);
        terminal.hand_to(child.pid);
        signal_group(child.pid, Signal::SIGCONT);
    }
}

/// How often, at a terminal, vault-config looks whether its group was given
/// the terminal (`fg`) while the child runs.
const TERMINAL_CHECK: Duration = Duration::from_millis(250);

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
    use std::collections::BTreeMap;

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
