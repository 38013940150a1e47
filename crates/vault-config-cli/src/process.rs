//! The child's process group and what becomes of it, for `exec`: signals
//! to the whole group, the exit code a shell would report, the reaper (the
//! child's events; as PID 1 or a child subreaper, every orphan), the
//! terminal handed to the child's group, and the signals caught to be
//! passed on. Uses nix, tokio and std, and the command line's error type.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, setpgid, tcgetpgrp, tcsetpgrp, Pid};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::exit::{Failure, Kind, Result, LOG};

/// Sends `sig` to every process of the group `pgid`.
pub fn signal_group(pgid: Pid, sig: Signal) {
    if let Err(e) = killpg(pgid, sig) {
        tracing::debug!(target: LOG, %sig, error = %e, "vault-config exec: could not signal the command's process group");
    }
}

/// Whether any process is left in the group `pgid`.
pub fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// SIGINT, SIGTERM and SIGQUIT ask for the end: passed on, and the child is
/// never started again.
pub fn is_stop(sig: Signal) -> bool {
    matches!(sig, Signal::SIGINT | Signal::SIGTERM | Signal::SIGQUIT)
}

/// The code a shell reports for a process killed by `sig`.
pub fn signal_code(sig: Signal) -> u8 {
    u8::try_from(128 + sig as i32).unwrap_or(1)
}

/// The code a shell would report for a waited-for process: the exit code,
/// or 128+N for signal N; `None` for a process that did not end.
pub fn exit_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(u8::try_from(code & 0xff).unwrap_or(1)),
        WaitStatus::Signaled(_, sig, _) => Some(signal_code(sig)),
        _ => None,
    }
}

/// What became of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It ended, with this code (128+N for signal N).
    Exited(u8),
    /// It was stopped by this signal.
    Stopped(Signal),
}

/// Waits for children: the command vault-config started, and every orphan
/// the kernel hands it (as PID 1, or as a child subreaper), reaped and
/// forgotten so that none is left a zombie. A task of its own reaps on
/// every SIGCHLD, whatever the supervising loop is busy with.
pub struct Reaper {
    shared: Arc<Reaped>,
    changes: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// Makes vault-config the child subreaper of its descendants (Linux): a
/// process of the child's tree whose parent exits is handed to
/// vault-config, not to PID 1, and is reaped at once when it exits.
#[cfg(target_os = "linux")]
pub fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
}

/// No subreapers here: orphans go to PID 1.
#[cfg(not(target_os = "linux"))]
pub fn become_subreaper() -> bool {
    false
}

/// What the reaping task and the supervising loop share.
pub struct Reaped {
    /// Reap every child (PID 1, a subreaper), not only the ones started here.
    all: bool,
    state: Mutex<ReapState>,
}

#[derive(Default)]
pub struct ReapState {
    /// Children started here that have not exited.
    watched: HashSet<Pid>,
    /// Their exit codes, until taken.
    exited: HashMap<Pid, u8>,
    /// Their last stop, until taken.
    stopped: HashMap<Pid, Signal>,
}

impl Reaper {
    pub fn new() -> Result<Reaper> {
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
    pub fn spawn(&self, command: &mut std::process::Command) -> std::io::Result<Pid> {
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
    pub async fn event(&self, pid: Pid) -> Event {
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
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ReapState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Collects what happened to children since the last SIGCHLD.
    pub fn reap(&self) {
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
    pub fn take(&self, pid: Pid) -> Option<Event> {
        let mut state = self.lock();
        if let Some(code) = state.exited.remove(&pid) {
            state.stopped.remove(&pid);
            return Some(Event::Exited(code));
        }
        state.stopped.remove(&pid).map(Event::Stopped)
    }
}

impl ReapState {
    pub fn record(&mut self, status: WaitStatus) {
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
pub struct Terminal {
    /// vault-config's own process group.
    pub own: Pid,
}

impl Terminal {
    /// The terminal on standard input, if vault-config's group is its
    /// foreground group (run from an interactive shell, not in the
    /// background, not under `setsid`).
    pub fn detect() -> Option<Terminal> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let own = getpgrp();
        (tcgetpgrp(&stdin).ok()? == own).then_some(Terminal { own })
    }

    /// The terminal's foreground group now.
    pub fn foreground(&self) -> Option<Pid> {
        tcgetpgrp(std::io::stdin()).ok()
    }

    /// Makes the group `pgid` (the child's) the terminal's foreground group,
    /// if vault-config's group holds it: not once the shell has put
    /// vault-config in the background (Ctrl-Z, `bg`), when the terminal is
    /// the shell's.
    pub fn hand_to(&self, pgid: Pid) {
        if self.foreground() == Some(self.own) {
            set_foreground(pgid);
        }
    }

    /// Makes the command's child take the terminal for its own group as it
    /// starts, before its program runs, as a shell does for a job (and on
    /// the same condition as [`Terminal::hand_to`], which vault-config calls
    /// too once the child is started): a program that looks at or reads its
    /// terminal at once finds it in the foreground already.
    #[allow(unsafe_code)]
    pub fn take_at_start(&self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // Made before the fork: nothing is allocated in the child.
        let stdin = std::io::stdin();
        let parent = self.own;
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let hook = move || {
            let this = Pid::from_raw(0);
            let _ = setpgid(this, this);
            if tcgetpgrp(&stdin) != Ok(parent) {
                return Ok(());
            }
            let mut old = SigSet::empty();
            let blocked =
                pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut old)).is_ok();
            let _ = tcsetpgrp(&stdin, getpgrp());
            if blocked {
                let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            }
            Ok(())
        };
        // SAFETY: the hook runs in the forked child before exec, where only
        // async-signal-safe calls are allowed. It makes the child the leader
        // of its group (setpgid; `process_group(0)` does the same), and
        // calls sigprocmask, getpgrp, tcgetpgrp and tcsetpgrp (ioctls on fd 0
        // through a handle made before the fork); it allocates nothing, takes
        // no lock and touches no state shared with other threads.
        unsafe {
            command.pre_exec(hook);
        }
    }

    /// Makes vault-config's group the terminal's foreground group again,
    /// after the child's group `pgid` stopped or ended, if that group held
    /// it (or a group of the child's that is gone now): not when the shell
    /// holds it, vault-config being in the background.
    pub fn take_back(&self, pgid: Pid) {
        match self.foreground() {
            Some(fg) if fg == pgid || !group_alive(fg) => set_foreground(self.own),
            _ => {}
        }
    }
}

/// `tcsetpgrp` on standard input, with SIGTTOU blocked: from a background
/// group (the child's has the terminal) the kernel would otherwise stop
/// vault-config for trying.
pub fn set_foreground(pgid: Pid) {
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

/// The signals passed on to the child.
pub struct Signals(Vec<(Signal, tokio::signal::unix::Signal)>);

impl Signals {
    pub fn new() -> Result<Self> {
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
    pub async fn next(&mut self) -> Option<Signal> {
        let waits = self.0.iter_mut().map(|(sig, stream)| {
            let sig = *sig;
            Box::pin(async move { stream.recv().await.map(|()| sig) })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// The next stop signal (SIGINT, SIGTERM, SIGQUIT); others, with no
    /// child to pass them to, are dropped.
    pub async fn next_stop(&mut self) -> Signal {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
