//! The watch task: [`State`] (what a watcher's background task holds) and
//! its loop (`run`: wait for the next poll, chore or command; `poll`; `chores`
//! between polls), and health bookkeeping. The work of a poll is in `work`,
//! leases and static roles in `leases`, publishing in `publish`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::backoff::{after, Backoff, RotationClock};
use super::certificates::Reissue;
use super::changes::Changes;
use super::health::Health;
use super::hub::{Hub, Subscription};
use super::lease_pool::PoolHold;
use super::options::WatchOptions;
use super::values::{prints, sources, Source};
use crate::base::unix_now;
use crate::client::transport::RIDE_FAILOVER;
use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::engines::lease::LeaseClock;
use crate::error::{Error, Result};
use crate::load::plan::Plan;
use crate::load::snapshot::Snapshot;
use crate::load::Loaded;
use crate::telemetry::outcome_of;

/// The background task's state: the plan it polls, the snapshot the
/// published config was made from, and the lease clocks.
pub(super) struct State<T> {
    pub(super) client: VaultClient,
    /// What a derive described (defaults, field names); `None` for mappings.
    pub(super) described: Option<Description>,
    pub(super) plan: Plan,
    /// What the config in force was made from. A poll builds a candidate from
    /// it; the candidate replaces it only once it made a valid config.
    pub(super) snapshot: Snapshot,
    /// A hash of each key's value in the published config.
    pub(super) prints: BTreeMap<String, u64>,
    /// Where each key's value in the published config came from.
    pub(super) sources: BTreeMap<String, Source>,
    /// Where health is published, and the next state of it: changes gather in
    /// `draft` and go out together in [`flush_health`](Self::flush_health).
    pub(super) health: watch::Sender<Health>,
    pub(super) draft: Health,
    /// Why the newest values were not published, until a config is.
    pub(super) held_back: Option<String>,
    /// The KV v2 reads whose metadata the policy denies: each poll reads
    /// their data (as for KV v1), and health lists them.
    pub(super) by_data: BTreeSet<usize>,
    /// Why leases are read anew instead of renewed (the policy denies
    /// renewal), until a renewal works.
    pub(super) renewal_denied: Option<String>,
    /// The KV v2 versions of the rotation held back, by read index, when
    /// every one of them was read and tried: while Vault's newest versions
    /// are exactly these, they are not read (nor counted) again, and the poll
    /// fails with the same error. A new write anywhere re-reads them all;
    /// a published config forgets them. KV v1 paths and static roles, which
    /// have no versions to compare, are read at every poll.
    pub(super) rejected: Option<(Changes, Error)>,
    /// The leases of the published config's leased reads, by read index.
    pub(super) leases: HashMap<usize, LeaseClock>,
    /// Replaced leases to revoke, and when.
    pub(super) revocations: Vec<(String, Instant)>,
    /// The static roles of the published config, by read index: when to read
    /// them again (just after Vault's next rotation), and that rotation.
    pub(super) rotations: HashMap<usize, RotationClock>,
    /// The certificates PKI roles issued for the published config, by read
    /// index: when to have each issued again.
    pub(super) reissues: HashMap<usize, Reissue>,
    /// The `certificate` texts of the identities in the published config:
    /// not checked for time again when the next config is made.
    pub(super) certificates_in_force: Vec<String>,
    /// Backoffs: polls, token renewal, lease work.
    pub(super) polls: Backoff,
    /// The failure now in health came from a chore (a renewal between polls).
    pub(super) chore_failed: bool,
    pub(super) token: Backoff,
    pub(super) lease_work: Backoff,
    pub(super) options: WatchOptions,
    /// This watcher's hold on the client's watch hub, which shares KV reads
    /// (metadata, and data at the current version) between its watchers.
    pub(super) hub: Subscription,
    /// The lease IDs this watcher holds in the client's lease pool.
    pub(super) pool: PoolHold,
    /// When the previous check of the KV paths began (at first: the load):
    /// the oldest answer the next check may take from the hub.
    pub(super) checked_at: Instant,
    pub(super) _config: std::marker::PhantomData<fn() -> T>,
}

/// What a [`Watcher`](super::Watcher) asks of its task.
pub(super) enum Command {
    Refresh(oneshot::Sender<Result<bool>>),
    Shutdown(oneshot::Sender<()>),
}

/// What a call of `work` is: a lease chore between polls, a poll on the
/// interval, or a poll asked for by [`Watcher::refresh`](super::Watcher::refresh)
/// (which never reuses another watcher's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    Chore,
    Poll,
    Refresh,
}

/// What woke the task.
enum Wake {
    Poll(Option<oneshot::Sender<Result<bool>>>),
    Chores,
    Stop,
}

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// The state after the first load (begun at `loaded_at`; `pool` holds
    /// the leases it shares), and the first config.
    pub(super) fn new(
        client: VaultClient,
        described: Option<Description>,
        (loaded, loaded_at, pool): (Loaded<T>, Instant, PoolHold),
        options: WatchOptions,
        health: watch::Sender<Health>,
    ) -> (Self, T) {
        let Loaded {
            config,
            plan,
            snapshot,
            provider,
        } = loaded;
        let draft = health.borrow().clone();
        // What a poll may read: shared with the client's other watchers.
        let hub = Hub::of(&client).subscribe(plan.reads());
        let mut state = State {
            client,
            described,
            plan,
            snapshot,
            prints: prints(&provider),
            sources: sources(&provider),
            health,
            draft,
            held_back: None,
            renewal_denied: None,
            by_data: BTreeSet::new(),
            rejected: None,
            leases: HashMap::new(),
            revocations: Vec::new(),
            rotations: HashMap::new(),
            reissues: HashMap::new(),
            certificates_in_force: Vec::new(),
            polls: Backoff::default(),
            chore_failed: false,
            token: Backoff::default(),
            lease_work: Backoff::default(),
            options,
            hub,
            pool,
            checked_at: loaded_at,
            _config: std::marker::PhantomData,
        };
        state.bookkeep();
        state.record_certificates(&provider);
        let shown = state.shown_sources();
        state.update_health(|h| h.sources = shown);
        let connected = state.snapshot.is_from_vault();
        if connected {
            state.client.telemetry().success_at(unix_now());
        }
        let token = state.client.auth_status();
        let address = state.client.address().map(str::to_owned);
        state.update_health(|h| {
            h.token = token;
            h.vault_connected = connected;
            if connected {
                h.last_success = Some(unix_now());
                h.vault_address = address;
            }
        });
        state.flush_health();
        (state, config)
    }

    pub(super) async fn run(
        mut self,
        tx: watch::Sender<Arc<T>>,
        mut inbox: mpsc::Receiver<Command>,
    ) {
        if !self.client.is_enabled() {
            // Nothing to poll: answer refreshes until the watcher goes away.
            while let Some(command) = inbox.recv().await {
                match command {
                    Command::Refresh(reply) => {
                        let _ = reply.send(Ok(false));
                    }
                    Command::Shutdown(reply) => {
                        let _ = reply.send(());
                        return;
                    }
                }
            }
            return;
        }
        let mut next_poll = after(self.options.delay(0));
        loop {
            // The earliest of: the next poll, the token's renewal, lease work;
            // each pushed back by its own failures.
            let now = Instant::now();
            let mut wake_at = next_poll;
            if let Some(due) = self.client.token_due_in() {
                wake_at = wake_at.min(self.token.ready_at(after(due)));
            }
            if let Some(due) = self.lease_due_at(now) {
                wake_at = wake_at.min(self.lease_work.ready_at(due));
            }
            let wake_at = wake_at.max(now + Duration::from_millis(10));
            let wake = tokio::select! {
                () = tokio::time::sleep_until(wake_at.into()) => {
                    if Instant::now() >= next_poll { Wake::Poll(None) } else { Wake::Chores }
                }
                command = inbox.recv() => match command {
                    Some(Command::Refresh(reply)) => Wake::Poll(Some(reply)),
                    Some(Command::Shutdown(reply)) => {
                        self.release(self.options.revoke_on_shutdown).await;
                        let _ = reply.send(());
                        return;
                    }
                    None => Wake::Stop,
                },
            };
            match wake {
                Wake::Stop => return,
                Wake::Poll(reply) => {
                    let asked = if reply.is_some() {
                        Work::Refresh
                    } else {
                        Work::Poll
                    };
                    let outcome = RIDE_FAILOVER.scope(false, self.poll(&tx, asked)).await;
                    match &outcome {
                        // Held back: Vault answered, its values are wrong.
                        Ok(_) => self.polls.ok(),
                        // Not while the config came from env: each such
                        // poll reads (and leases) everything again.
                        Err(e) if e.is_about_values() && self.snapshot.is_from_vault() => {
                            self.polls.ok()
                        }
                        Err(_) => self.polls.fail(&self.options),
                    }
                    next_poll = after(self.options.delay(self.polls.failures));
                    if let Some(reply) = reply {
                        let _ = reply.send(outcome);
                    }
                }
                Wake::Chores => RIDE_FAILOVER.scope(false, self.chores(&tx)).await,
            }
            if tx.is_closed() && inbox.is_closed() {
                return;
            }
        }
    }

    /// Between polls: renew the token and the leases when they are due,
    /// whatever the poll interval.
    pub(super) async fn chores(&mut self, tx: &watch::Sender<Arc<T>>) {
        let now = Instant::now();
        let token_due = self.client.token_due_in().is_some_and(|d| d.is_zero());
        let mut outcome = None;
        if token_due && self.token.ready_at(now) <= now {
            let result = self.client.refresh_token().await;
            match &result {
                Ok(()) => self.token.ok(),
                Err(_) => self.token.fail_renewal(&self.options),
            }
            outcome = Some(result);
        }
        if self
            .lease_due_at(now)
            .is_some_and(|due| self.lease_work.ready_at(due) <= now)
        {
            let result = self.work(tx, Work::Chore).await.map(|_| ());
            if outcome.as_ref().is_none_or(Result::is_ok) {
                outcome = Some(result);
            }
        }
        match outcome {
            Some(Err(e)) => {
                self.chore_failed = true;
                self.record_failure(&e);
            }
            // A chore that failed before went through: health recovers
            // without waiting for the next poll.
            Some(Ok(())) if self.chore_failed => {
                self.chore_failed = false;
                self.mark_connected();
            }
            _ => {}
        }
        let token = self.client.auth_status();
        self.update_health(|h| h.token = token);
        self.flush_health();
    }

    /// One check: returns whether a new config was published.
    pub(super) async fn poll(&mut self, tx: &watch::Sender<Arc<T>>, asked: Work) -> Result<bool> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "vault_config.poll",
            reads = self.plan.reads().len(),
            requests = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let sent = self.client.requests_sent();
        let result = self.work(tx, asked).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => outcome_of(e),
        };
        let took = started.elapsed();
        span.record("requests", self.client.requests_sent().saturating_sub(sent));
        span.record("outcome", outcome);
        span.record("duration_ms", took.as_secs_f64() * 1000.0);
        self.client.telemetry().poll(outcome, took, unix_now());
        match &result {
            Ok(_) => {
                self.chore_failed = false;
                self.update_health(|h| h.polls = h.polls.saturating_add(1));
                self.mark_connected();
            }
            Err(e) => {
                tracing::warn!(error = %e, "vault-config watcher: keeping the last good configuration");
                self.record_failure(e);
            }
        }
        let token = self.client.auth_status();
        self.update_health(|h| h.token = token);
        self.flush_health();
        result
    }

    /// A failed poll or chore in `health()`: an outage or a failed login is
    /// not connected; either way the error shows until a poll goes through.
    pub(super) fn record_failure(&mut self, e: &Error) {
        let disconnected = e.is_unavailable() || matches!(e, Error::Auth { .. });
        let text = e.to_string();
        let failovers = self.client.failovers();
        self.update_health(|h| {
            h.failovers = failovers;
            h.vault_connected = !disconnected;
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            h.last_error = Some(text);
            h.last_error_at = Some(unix_now());
        });
    }

    /// A poll went through: connected, the token as it is now, and no error
    /// but a held-back rotation's, which stays until a config is published.
    pub(super) fn mark_connected(&mut self) {
        let token = self.client.auth_status();
        let held_back = self
            .held_back
            .clone()
            .or_else(|| self.renewal_denied.clone())
            .or_else(|| self.reissue_error());
        let address = self.client.address().map(str::to_owned);
        let failovers = self.client.failovers();
        self.update_health(|h| {
            h.token = token;
            h.vault_address = address;
            h.failovers = failovers;
            h.vault_connected = true;
            h.last_success = Some(unix_now());
            h.consecutive_failures = 0;
            if h.last_error.is_some() && held_back.is_some() {
                h.last_error_at = Some(unix_now());
            }
            h.last_error = held_back;
        });
    }

    pub(super) fn update_health(&mut self, f: impl FnOnce(&mut Health)) {
        f(&mut self.draft);
    }

    /// Publishes the health gathered since the last flush, if it changed: one
    /// wake-up per poll for `subscribe_health`, never a half-updated state.
    pub(super) fn flush_health(&self) {
        let draft = &self.draft;
        self.health.send_if_modified(|h| {
            if h == draft {
                return false;
            }
            h.clone_from(draft);
            true
        });
    }
}
