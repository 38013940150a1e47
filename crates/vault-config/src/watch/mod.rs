//! Hot reload: a [`Watcher`] keeps a typed config current with Vault and
//! publishes each new one on a `tokio::sync::watch` channel.
//!
//! # Usage
//!
//! [`VaultConfig::watch`](crate::VaultConfig::watch) loads the config once (with
//! the errors of [`load`](crate::VaultConfig::load)), then polls in a background
//! task. [`Watcher::subscribe`] gives a receiver that wakes on every published
//! config; [`Watcher::current`] is the config in force, always complete and valid.
//!
//! # Change notifications
//!
//! Each poll reads only the KV v2 metadata of each distinct path and re-reads
//! the data of paths whose version moved (KV v1 paths, which keep no metadata,
//! are re-read). A config is published only when a value changed. A rotation
//! that does not make a valid config, and an outage, are held back: the last
//! good config stays, [`Watcher::health`] says why, and polls back off.
//! Leases on dynamic credentials are renewed at two thirds of their duration,
//! and replaced before they expire when they can no longer be extended.
//!
//! Health is published on a channel of its own ([`Watcher::subscribe_health`]),
//! updated before a config is published: a subscriber woken by a new config
//! that then reads [`Watcher::health`] sees the poll that made it.
//!
//! # Closing
//!
//! The task ends when the watcher is dropped or [`Watcher::shutdown`] is
//! awaited; only `shutdown` can revoke leases
//! ([`WatchOptions::revoke_on_shutdown`]), since a drop cannot wait.

pub mod health;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zeroize::Zeroize;

use crate::base::{random_fraction, unix_now};
use crate::client::transport::RIDE_FAILOVER;
use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::engines::kv::{stale, KvSecret, KvVersion};
use crate::engines::lease::{LeaseClock, Rotation};
use crate::error::{Error, Result};
use crate::load::plan::{Plan, Read};
use crate::load::provider::{Origin, VaultProvider};
use crate::load::snapshot::{read_one, Freshness, Snapshot};
use crate::load::{extract, load_plan, Loaded};
use crate::telemetry::{outcome_of, Count};
use crate::watch::health::{Health, LeaseHealth, RotationHealth};
use tracing::Instrument;

/// How a [`Watcher`] polls.
///
/// ```
/// use std::time::Duration;
/// use vault_config::WatchOptions;
/// let options = WatchOptions::default().interval(Duration::from_secs(5));
/// assert_eq!(options.effective_max_backoff(), Duration::from_secs(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    interval: Duration,
    jitter: f64,
    max_backoff: Option<Duration>,
    revoke_grace: Option<Duration>,
    revoke_on_shutdown: bool,
    lease_lead: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(30),
            jitter: 0.1,
            max_backoff: None,
            revoke_grace: None,
            revoke_on_shutdown: false,
            lease_lead: None,
        }
    }
}

impl WatchOptions {
    /// Time between polls (30 s unless set).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Spread each wait by up to ± this fraction of itself, so a fleet does not
    /// poll in lockstep (0.1 unless set; 0 turns it off; at most 0.5).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.5)
        } else {
            0.0
        };
        self
    }

    /// The longest wait between polls while Vault fails (ten intervals, at most
    /// 5 minutes, unless set).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = Some(max);
        self
    }

    /// When dynamic credentials are replaced, revoke the old lease this long
    /// after the new config is published, so in-flight work on the old
    /// credentials can finish. Unset (the default): the old lease simply expires.
    pub fn revoke_replaced_leases_after(mut self, grace: Duration) -> Self {
        self.revoke_grace = Some(grace);
        self
    }

    /// Replace leased credentials that can no longer be extended (not
    /// renewable, or at the role's `max_ttl`) this long before they expire,
    /// so connections on the old ones have time to move.
    ///
    /// Unless set: a third of the lease's first duration, or the
    /// [`revoke_replaced_leases_after`](Self::revoke_replaced_leases_after)
    /// grace and a second when that is longer, so the old credentials stay
    /// valid through the grace. Either way at most half the lease's first
    /// duration, so a short lease is not replaced over and over: a grace
    /// longer than that is cut short by Vault's own expiry.
    pub fn replace_leases_before(mut self, lead: Duration) -> Self {
        self.lease_lead = Some(lead);
        self
    }

    /// Revoke the leases the watcher holds when it is [shut down](Watcher::shutdown)
    /// (off by default; dropping a watcher never revokes, since it cannot wait).
    pub fn revoke_on_shutdown(mut self, revoke: bool) -> Self {
        self.revoke_on_shutdown = revoke;
        self
    }

    /// The poll interval in force (what [`interval`](Self::interval) set, at least 10 ms).
    pub fn effective_interval(&self) -> Duration {
        self.interval
    }

    /// The backoff cap in force: what [`max_backoff`](Self::max_backoff) set,
    /// else ten intervals capped at 5 minutes; never less than the interval.
    pub fn effective_max_backoff(&self) -> Duration {
        self.max_backoff
            .unwrap_or_else(|| {
                self.interval
                    .saturating_mul(10)
                    .min(Duration::from_secs(300))
            })
            .max(self.interval)
    }

    /// The wait before the next poll after `failures` failed polls in a row.
    fn delay(&self, failures: u32) -> Duration {
        let base = if failures == 0 {
            self.interval
        } else {
            self.interval
                .saturating_mul(1u32 << failures.min(16))
                .min(self.effective_max_backoff())
        };
        let spread = (random_fraction() * 2.0 - 1.0) * self.jitter;
        // Saturating: a huge user interval must not panic the task.
        let jittered =
            Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + spread)).unwrap_or(base);
        if failures == 0 {
            jittered
        } else {
            // The cap is the longest wait, jitter included.
            jittered.min(self.effective_max_backoff())
        }
    }

    /// The wait before retrying a token or lease renewal after `failures`
    /// failed tries: 1 s doubling, at most 30 s (and the backoff cap), so a
    /// credential is renewed soon after Vault is back, whatever the interval.
    fn renewal_delay(&self, failures: u32) -> Duration {
        let spread = 1.0 + random_fraction() * self.jitter;
        Duration::from_secs(1)
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(Duration::from_secs(30))
            .min(self.effective_max_backoff())
            .mul_f64(spread)
    }
}

enum Command {
    Refresh(oneshot::Sender<Result<bool>>),
    Shutdown(oneshot::Sender<()>),
}

/// A typed configuration kept current with Vault.
///
/// Made by [`VaultConfig::watch`](crate::VaultConfig::watch). Its background
/// task ends when the watcher is dropped or [`shutdown`](Self::shutdown).
pub struct Watcher<T> {
    rx: watch::Receiver<Arc<T>>,
    health: watch::Receiver<Health>,
    commands: Option<mpsc::Sender<Command>>,
    task: Option<JoinHandle<()>>,
}

impl<T> fmt::Debug for Watcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Watcher<T> {
    /// Loads once (as `load` does: its errors are this one's), then starts polling.
    pub(crate) async fn start(
        client: &VaultClient,
        described: Description,
        options: WatchOptions,
    ) -> Result<Self> {
        let plan = Plan::from_description(&described, client)?;
        Self::start_plan(client, plan, Some(described), options).await
    }

    /// Loads `plan` once (with `described`'s defaults and field names when
    /// given), then starts polling.
    pub(crate) async fn start_plan(
        client: &VaultClient,
        plan: Plan,
        described: Option<Description>,
        options: WatchOptions,
    ) -> Result<Self> {
        let loaded = load_plan::<T>(plan, described.as_ref(), client, Freshness::Fresh).await?;
        let (health_tx, health) = watch::channel(Health {
            vault_enabled: client.is_enabled(),
            ..Health::default()
        });
        let (state, first) = State::new(client.clone(), described, loaded, options, health_tx);
        let (tx, rx) = watch::channel(Arc::new(first));
        let (commands, inbox) = mpsc::channel(8);
        let task = tokio::spawn(state.run(tx, inbox));
        Ok(Watcher {
            rx,
            health,
            commands: Some(commands),
            task: Some(task),
        })
    }
}

impl<T> Watcher<T> {
    /// A receiver that sees every config published from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<T>> {
        self.rx.clone()
    }

    /// The config in force: always complete and valid.
    pub fn current(&self) -> Arc<T> {
        self.rx.borrow().clone()
    }

    /// The state of the connection to Vault.
    pub fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    /// A receiver that sees every change of [`health`](Self::health), for a
    /// service that pushes its health rather than serving it on request.
    pub fn subscribe_health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Checks Vault now, without waiting for the interval (from a SIGHUP handler
    /// or an admin endpoint, say). `Ok(true)` when a new config was published.
    pub async fn refresh(&self) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::WatcherStopped;
        let commands = self.commands.as_ref().ok_or_else(gone)?;
        commands
            .send(Command::Refresh(reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Stops polling, revokes the leases it holds when
    /// [`WatchOptions::revoke_on_shutdown`] says so, and waits for the task to end.
    pub async fn shutdown(mut self) {
        if let Some(commands) = self.commands.take() {
            let (reply, done) = oneshot::channel();
            if commands.send(Command::Shutdown(reply)).await.is_ok() {
                let _ = done.await;
            }
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl<T> Drop for Watcher<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The background task's state: the plan it polls, the snapshot the
/// published config was made from, and the lease clocks.
struct State<T> {
    client: VaultClient,
    /// What a derive described (defaults, field names); `None` for mappings.
    described: Option<Description>,
    plan: Plan,
    /// What the config in force was made from. A poll builds a candidate from
    /// it; the candidate replaces it only once it made a valid config.
    snapshot: Snapshot,
    /// A hash of each key's value in the published config.
    prints: BTreeMap<String, u64>,
    /// Where each key's value in the published config came from.
    sources: BTreeMap<String, Source>,
    /// Where health is published, and the next state of it: changes gather in
    /// `draft` and go out together in [`flush_health`](Self::flush_health).
    health: watch::Sender<Health>,
    draft: Health,
    /// Why the newest values were not published, until a config is.
    held_back: Option<String>,
    /// The KV v2 reads whose metadata the policy denies: each poll reads
    /// their data (as for KV v1), and health lists them.
    by_data: BTreeSet<usize>,
    /// Why leases are read anew instead of renewed (the policy denies
    /// renewal), until a renewal works.
    renewal_denied: Option<String>,
    /// The KV v2 versions of the rotation held back, by read index, when
    /// every one of them was read and tried: while Vault's newest versions
    /// are exactly these, they are not read (nor counted) again, and the poll
    /// fails with the same error. A new write anywhere re-reads them all;
    /// a published config forgets them. KV v1 paths and static roles, which
    /// have no versions to compare, are read at every poll.
    rejected: Option<(Changes, Error)>,
    /// The leases of the published config's leased reads, by read index.
    leases: HashMap<usize, LeaseClock>,
    /// Replaced leases to revoke, and when.
    revocations: Vec<(String, Instant)>,
    /// The static roles of the published config, by read index: when to read
    /// them again (just after Vault's next rotation), and that rotation.
    rotations: HashMap<usize, RotationClock>,
    /// Backoffs: polls, token renewal, lease work.
    polls: Backoff,
    /// The failure now in health came from a chore (a renewal between polls).
    chore_failed: bool,
    token: Backoff,
    lease_work: Backoff,
    options: WatchOptions,
    _config: std::marker::PhantomData<fn() -> T>,
}

/// A static role's schedule: the rotation in force, when to read it again,
/// and how many reads in a row found that Vault's announced rotation had not
/// happened (the database refused Vault's `ALTER ROLE`, say).
struct RotationClock {
    due: Instant,
    rotation: Rotation,
    /// Reads in a row past the announced rotation time that found none.
    misses: u32,
    /// Since when Vault says the rotation is due (`ttl` 0) without doing it.
    late_since: Option<Instant>,
    /// The overdue rotation was logged.
    warned: bool,
}

/// How late a static role's rotation may be before health calls it overdue:
/// Vault's rotation queue runs every 5 s, so a rotation a few seconds late
/// is normal.
const ROTATION_OVERDUE_AFTER: Duration = Duration::from_secs(10);

/// Failures in a row of one kind of work, and when it may run again.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    fn ok(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    /// A failed poll: waits as [`WatchOptions::delay`] says.
    fn fail(&mut self, options: &WatchOptions) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Instant::now().checked_add(options.delay(self.failures));
    }

    /// A failed renewal: waits as [`WatchOptions::renewal_delay`] says.
    fn fail_renewal(&mut self, options: &WatchOptions) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Instant::now().checked_add(options.renewal_delay(self.failures));
    }

    /// When work due at `due` may run.
    fn ready_at(&self, due: Instant) -> Instant {
        self.not_before.map_or(due, |nb| nb.max(due))
    }
}

/// What woke the task.
enum Wake {
    Poll(Option<oneshot::Sender<Result<bool>>>),
    Chores,
    Stop,
}

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// The state after the first load, and the first config.
    fn new(
        client: VaultClient,
        described: Option<Description>,
        loaded: Loaded<T>,
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
            polls: Backoff::default(),
            chore_failed: false,
            token: Backoff::default(),
            lease_work: Backoff::default(),
            options,
            _config: std::marker::PhantomData,
        };
        state.bookkeep();
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

    async fn run(mut self, tx: watch::Sender<Arc<T>>, mut inbox: mpsc::Receiver<Command>) {
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
                    let outcome = RIDE_FAILOVER.scope(false, self.poll(&tx)).await;
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
    async fn chores(&mut self, tx: &watch::Sender<Arc<T>>) {
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
            let result = self.work(tx, false).await.map(|_| ());
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
    async fn poll(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "vault_config.poll",
            reads = self.plan.reads().len(),
            requests = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let sent = self.client.requests_sent();
        let result = self.work(tx, true).instrument(span.clone()).await;
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
    fn record_failure(&mut self, e: &Error) {
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

    /// The work of a poll (`kv`: also check the KV paths) or of a lease chore:
    /// each part runs whatever the others do, and the first error is returned
    /// once all ran.
    async fn work(&mut self, tx: &watch::Sender<Arc<T>>, kv: bool) -> Result<bool> {
        if !self.snapshot.is_from_vault() {
            // The config came from env (Vault was unavailable at start): read it all.
            let candidate =
                Snapshot::read_vault(&self.client, &self.plan, Freshness::Fresh).await?;
            let leases = candidate.leases();
            return self.adopt(candidate, leases, None, tx).await;
        }
        let mut first_error = None;
        let mut changed = Vec::new();
        // The KV v2 versions this poll reads, when it reads only such.
        let mut stamps = None;
        // Whether the KV changes are the rotation already held back.
        let mut seen_rejected = false;
        if kv {
            let (mut kv_changed, kv_error, denied) =
                changed_reads(&self.client, &self.plan, &self.snapshot, &self.by_data).await;
            self.poll_by_data(denied);
            if kv_error.is_none() && kv_changed.is_empty() {
                // Vault holds what the config in force was made from:
                // nothing is held back (a `kv undelete` of the version in
                // force, say).
                self.held_back = None;
            }
            if let Some((_, e)) = self
                .rejected
                .as_ref()
                .filter(|(stamps, _)| kv_error.is_none() && *stamps == kv_changed)
            {
                // Still why the config in force is not Vault's newest.
                Error::keep_first(&mut first_error, e.clone());
                kv_changed.clear();
                seen_rejected = true;
            }
            if kv_error.is_none()
                && !kv_changed.is_empty()
                && kv_changed.iter().all(|(_, stamp)| stamp.is_some())
            {
                stamps = Some(kv_changed.clone());
            }
            changed.extend(kv_changed.into_iter().map(|(index, _)| index));
            if let Some(e) = kv_error {
                Error::keep_first(&mut first_error, e);
            }
        }
        let kv_count = changed.len();
        let (mut rereads, lease_error) = self.renew_leases().await;
        // Static roles: at every poll (their answer is cheap and holds no
        // lease, and a forced `rotate-role` shows at once), and between polls
        // once their rotation time has come.
        let now = Instant::now();
        rereads.extend(
            self.rotations
                .iter()
                .filter(|(i, clock)| (kv || clock.due <= now) && !changed.contains(*i))
                .map(|(i, _)| *i),
        );
        let rereading = !rereads.is_empty();
        changed.extend(rereads);
        // Whether a due lease was neither renewed nor replaced: lease work
        // then backs off instead of running again at once.
        let mut lease_failed = lease_error.is_some();
        if let Some(e) = lease_error {
            Error::keep_first(&mut first_error, e);
        }
        self.revoke_due().await;
        let mut published = false;
        if changed.is_empty() {
            // Renewals moved lease expiries.
            self.record_leases();
        } else {
            let client = &self.client;
            let reads = changed
                .iter()
                .map(|&i| read_one(client, &self.plan.reads()[i]));
            let results = join_all(reads).await;
            // Everything that changed, and apart from it the new credentials
            // alone: a bad KV rotation must not keep leases from being
            // replaced before they expire.
            let mut candidate = self.snapshot.clone();
            let mut leased_only = self.snapshot.clone();
            let mut fresh_leases = Vec::new();
            // New credentials (a lease or a static role's password) read.
            let mut fresh_credentials = false;
            for (position, (index, result)) in changed.into_iter().zip(results).enumerate() {
                match result {
                    // A KV answer older than the version in force (a lagging
                    // node): left out, so nothing goes back in time.
                    Ok(found)
                        if matches!(
                            (found.secret.as_deref(), self.snapshot.found(index).and_then(|f| f.secret.as_deref())),
                            (Some(new), Some(held)) if new.is_older_than(held)
                        ) =>
                    {
                        stamps = None;
                        tracing::debug!(read = %self.plan.reads()[index], "vault-config watcher: an answer older than the version in force was left out");
                    }
                    Ok(found) => {
                        if let Some(lease) = found.secret.as_deref().and_then(KvSecret::lease) {
                            fresh_leases.push(lease.id.clone());
                        }
                        if position >= kv_count {
                            fresh_credentials = true;
                            leased_only.replace(index, found.clone());
                        }
                        candidate.replace(index, found);
                    }
                    Err(e) => {
                        lease_failed |= position >= kv_count;
                        if position < kv_count {
                            // Not every KV change was tried: none is rejected.
                            stamps = None;
                        }
                        Error::keep_first(&mut first_error, e);
                    }
                }
            }
            let retry_leased = kv_count > 0 && fresh_credentials;
            let keep_leases = if retry_leased {
                Vec::new()
            } else {
                fresh_leases.clone()
            };
            // A chore did not look at KV, or KV holds only the rotation
            // already held back: it stays held back.
            let still_held = if kv && !seen_rejected {
                None
            } else {
                self.held_back.clone()
            };
            let result = self.adopt(candidate, keep_leases, still_held, tx).await;
            if kv_count > 0 {
                self.rejected = match &result {
                    Ok(_) => None,
                    Err(e) => stamps.map(|stamps| (stamps, e.clone())),
                };
            }
            match result {
                Ok(p) => published = p,
                Err(e) if retry_leased => {
                    let held_back = e.to_string();
                    Error::keep_first(&mut first_error, e);
                    match self
                        .adopt(leased_only, fresh_leases, Some(held_back), tx)
                        .await
                    {
                        Ok(p) => published = p,
                        Err(e) => {
                            lease_failed = true;
                            Error::keep_first(&mut first_error, e);
                        }
                    }
                }
                Err(e) => {
                    lease_failed |= rereading;
                    Error::keep_first(&mut first_error, e);
                }
            }
        }
        if lease_failed {
            self.lease_work.fail_renewal(&self.options);
        } else {
            self.lease_work.ok();
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(published),
        }
    }

    /// Makes a config from `candidate` and publishes it if any value changed,
    /// with `held_back` (a rotation left out of it) in health. A candidate
    /// that does not make a valid config is held back: the published snapshot
    /// stays, and `fresh_leases` (the candidate's own) are revoked at once,
    /// since nothing uses them.
    async fn adopt(
        &mut self,
        candidate: Snapshot,
        fresh_leases: Vec<String>,
        held_back: Option<String>,
        tx: &watch::Sender<Arc<T>>,
    ) -> Result<bool> {
        let before = std::mem::replace(&mut self.held_back, held_back);
        match self.rebuild(candidate, tx) {
            Ok(published) => {
                if published {
                    // The rejection was against the config replaced now.
                    self.rejected = None;
                }
                Ok(published)
            }
            Err(e) => {
                drop(before);
                self.client.telemetry().count(Count::HeldBack, 1);
                tracing::warn!(error = %e, "vault-config watcher: the new values do not make a valid configuration; not published");
                self.held_back = Some(e.to_string());
                self.client.revoke_unused(fresh_leases).await;
                Err(e)
            }
        }
    }

    /// Reads `denied` (KV v2 reads whose metadata the policy denies) by
    /// their data from now on: warned once each, and listed in health.
    fn poll_by_data(&mut self, denied: Vec<usize>) {
        if denied.is_empty() {
            return;
        }
        for index in denied {
            if self.by_data.insert(index) {
                let read = &self.plan.reads()[index];
                tracing::warn!(
                    read = %read,
                    "vault-config watcher: the token may read this secret but not its metadata; each poll reads its data instead (grant `read` on its `metadata/` path, as the generated policy does, to poll with one small read)"
                );
            }
        }
        let mut paths: Vec<String> = self
            .by_data
            .iter()
            .map(|&i| self.plan.reads()[i].to_string())
            .collect();
        paths.sort_unstable();
        self.update_health(|h| h.polled_by_data = paths);
    }

    /// Renews the leases that are two thirds through; returns the leased reads
    /// whose lease cannot be extended and must be read anew before it
    /// expires, and the first error that is not the lease's own.
    async fn renew_leases(&mut self) -> (Vec<usize>, Option<Error>) {
        let mut reread = Vec::new();
        let mut error = None;
        let mut denied = None;
        let mut renewed_one = false;
        let (lead, grace) = (self.options.lease_lead, self.options.revoke_grace);
        let generation = self.client.token_generation();
        for (&index, clock) in &mut self.leases {
            let path = self.plan.reads()[index].path();
            if clock.lease.generation != generation {
                // Made under a token the client replaced: Vault revokes it
                // when that token ends. New credentials, under the new token.
                tracing::info!(
                    path,
                    "vault-config watcher: the client logged in again; replacing the credentials leased under the old token before it ends"
                );
                reread.push(index);
                continue;
            }
            if !clock.due_in(lead, grace).is_zero() {
                continue;
            }
            if clock.capped() {
                reread.push(index);
                continue;
            }
            match self.client.renew_lease(&clock.lease.id, clock.first).await {
                Ok(renewed) => {
                    renewed_one = true;
                    self.client.telemetry().count(Count::LeaseRenewal, 1);
                    clock.since = Instant::now();
                    clock.lease.duration = renewed.duration;
                    clock.lease.renewable = renewed.renewable;
                    clock.renewals += 1;
                    tracing::debug!(
                        path,
                        ttl_secs = renewed.duration.as_secs(),
                        "vault-config watcher: lease renewed"
                    );
                }
                // Vault cannot be reached or refused us: try again after a backoff.
                Err(e) if e.is_transient() || matches!(e, Error::Auth { .. }) => {
                    self.client.telemetry().count(Count::LeaseRenewalFailure, 1);
                    error.get_or_insert(e);
                }
                Err(e) => {
                    self.client.telemetry().count(Count::LeaseRenewalFailure, 1);
                    tracing::warn!(path, error = %e, "vault-config watcher: lease renewal failed; reading new credentials");
                    if matches!(e, Error::PermissionDenied { .. }) {
                        // Not an outage, but every lease now lasts only 2/3
                        // of its TTL: health says so until a renewal works.
                        denied = Some(format!(
                            "{e}; the credentials of `{path}` are read anew instead of renewed"
                        ));
                    }
                    reread.push(index);
                }
            }
        }
        if renewed_one || denied.is_some() {
            self.renewal_denied = denied;
        }
        (reread, error)
    }

    /// Revokes replaced leases whose grace period is over.
    async fn revoke_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.revocations.drain(..).partition(|(_, at)| *at <= now);
        self.revocations = later;
        let ids: Vec<String> = due.into_iter().map(|(id, _)| id).collect();
        self.client.revoke_unused(ids).await;
    }

    /// On shutdown: revoke every lease held (when asked) and pending revocations.
    async fn release(&mut self, revoke: bool) {
        if !revoke {
            return;
        }
        let ids: Vec<String> = self
            .leases
            .values()
            .map(|c| c.lease.id.clone())
            .chain(self.revocations.drain(..).map(|(id, _)| id))
            .collect();
        self.client.revoke_unused(ids).await;
        self.leases.clear();
    }

    /// When a lease needs renewing or replacing or a revocation is due, if
    /// ever: now for a lease made under a token the client replaced.
    fn lease_due_at(&self, now: Instant) -> Option<Instant> {
        let generation = self.client.token_generation();
        self.leases
            .values()
            .map(|c| {
                if c.lease.generation == generation {
                    after_from(
                        now,
                        c.due_in(self.options.lease_lead, self.options.revoke_grace),
                    )
                } else {
                    now
                }
            })
            .chain(self.revocations.iter().map(|(_, at)| *at))
            .chain(self.rotations.values().map(|c| c.due))
            .min()
    }

    /// Keeps a clock for each lease of the published snapshot: new leases
    /// start one, replaced ones drop theirs.
    fn track_leases(&mut self) {
        for index in 0..self.plan.reads().len() {
            let lease = self
                .snapshot
                .found(index)
                .and_then(|f| f.secret.as_deref())
                .and_then(KvSecret::lease);
            match lease {
                // A lease of no duration does not expire: nothing to renew.
                Some(lease) if lease.duration.is_zero() => {
                    self.leases.remove(&index);
                }
                Some(lease) => {
                    let fresh = self
                        .leases
                        .get(&index)
                        .is_none_or(|c| c.lease.id != lease.id);
                    if fresh {
                        self.leases.insert(index, LeaseClock::new(lease));
                    }
                }
                None => {
                    self.leases.remove(&index);
                }
            }
        }
    }

    /// Keeps, for each static role of the published snapshot, when to read it
    /// again: a second after the rotation its answer announced.
    fn track_rotations(&mut self) {
        for index in 0..self.plan.reads().len() {
            let rotation = self
                .snapshot
                .found(index)
                .and_then(|f| f.secret.as_deref())
                .and_then(KvSecret::rotation);
            let now = Instant::now();
            match rotation {
                Some(rotation) => match self.rotations.get_mut(&index) {
                    // Vault rotated: read again just after the next one.
                    Some(clock) if clock.rotation.last_rotation != rotation.last_rotation => {
                        *clock = RotationClock::new(rotation);
                    }
                    // Read again once the rotation was due, and Vault has not
                    // rotated: back off (1 s doubling, at most 30 s) rather
                    // than ask again at once, and show it in health.
                    Some(clock) if clock.due <= now => {
                        let wait = if rotation.ttl.is_zero() {
                            clock.misses = clock.misses.saturating_add(1);
                            let late = *clock.late_since.get_or_insert(now);
                            if !clock.warned && late.elapsed() >= ROTATION_OVERDUE_AFTER {
                                clock.warned = true;
                                tracing::warn!(
                                    read = %self.plan.reads()[index],
                                    "vault-config watcher: Vault has not rotated a static role's password when it said it would (a rotation failing in the database?); keeping the password in force and reading it again with backoff"
                                );
                            }
                            self.options.renewal_delay(clock.misses)
                        } else {
                            // Vault moved the rotation: read just after it.
                            rotation.ttl.saturating_add(Duration::from_secs(1))
                        };
                        clock.due = after(wait);
                        clock.rotation = rotation.clone();
                    }
                    Some(_) => {}
                    None => {
                        self.rotations.insert(index, RotationClock::new(rotation));
                    }
                },
                None => {
                    self.rotations.remove(&index);
                }
            }
        }
        let now = Instant::now();
        let unix = unix_now();
        let rotations = self
            .rotations
            .iter()
            .map(|(&index, clock)| {
                let health = RotationHealth {
                    next_rotation_at: unix
                        .saturating_add(clock.due.saturating_duration_since(now).as_secs()),
                    last_rotation: clock.rotation.last_rotation.clone(),
                    overdue: clock
                        .late_since
                        .is_some_and(|late| late.elapsed() >= ROTATION_OVERDUE_AFTER),
                };
                (self.plan.reads()[index].to_string(), health)
            })
            .collect();
        self.update_health(|h| h.rotations = rotations);
    }

    fn record_leases(&mut self) {
        let now = unix_now();
        let leases = self
            .leases
            .iter()
            .map(|(&index, c)| {
                let lease = LeaseHealth {
                    expires_at: now.saturating_add(c.remaining().as_secs()),
                    renewable: c.lease.renewable,
                    renewals: c.renewals,
                };
                (self.plan.reads()[index].to_string(), lease)
            })
            .collect::<BTreeMap<String, LeaseHealth>>();
        let expiries: Vec<(String, u64)> = leases
            .iter()
            .map(|(path, l)| (path.clone(), l.expires_at))
            .collect();
        self.client.telemetry().lease_expiries(&expiries);
        self.update_health(|h| h.leases = leases);
    }

    /// Extracts a config from `candidate`; on success it becomes the
    /// published snapshot (its replaced leases scheduled for revocation), and
    /// the config is published if any value changed, health first (so a
    /// woken subscriber sees it).
    fn rebuild(&mut self, candidate: Snapshot, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let provider = candidate.resolve(&self.plan, &self.client);
        let config = extract::<T>(self.described.as_ref(), &self.client, &provider)?;
        let replaced = self.replaced_leases(&candidate);
        self.client
            .telemetry()
            .count(Count::LeaseReplacement, replaced.len() as u64);
        self.snapshot = candidate;
        self.bookkeep();
        // A grace too long for an `Instant` means never: the lease just expires.
        if let Some(at) = self
            .options
            .revoke_grace
            .and_then(|grace| Instant::now().checked_add(grace))
        {
            self.revocations
                .extend(replaced.into_iter().map(|id| (id, at)));
        }
        let new_sources = sources(&provider);
        self.report_moves(&new_sources);
        let new_prints = prints(&provider);
        let changed: Vec<String> = new_prints
            .iter()
            .filter(|(k, v)| self.prints.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                self.prints
                    .keys()
                    .filter(|k| !new_prints.contains_key(*k))
                    .cloned(),
            )
            .collect();
        if changed.is_empty() {
            return Ok(false);
        }
        let fields: Vec<String> = changed.iter().map(|k| self.field_of(k)).collect();
        tracing::info!(changed = %fields.join(", "), "vault-config watcher: configuration reloaded");
        self.prints = new_prints;
        self.mark_connected();
        self.client.telemetry().count(Count::Reload, 1);
        self.update_health(|h| {
            h.reloads += 1;
            h.last_changed = fields;
        });
        self.flush_health();
        tx.send_replace(Arc::new(config));
        Ok(true)
    }

    /// Says at WARN which fields move between Vault and env (a required key
    /// deleted while a stale variable is set, say), and puts each field's
    /// source in health.
    fn report_moves(&mut self, new: &BTreeMap<String, Source>) {
        for (key, source) in new {
            let Some(old) = self.sources.get(key) else {
                continue;
            };
            if old.kind != source.kind {
                let field = self.field_of(key);
                tracing::warn!(
                    field = %field,
                    from = %old.shown,
                    to = %source.shown,
                    "vault-config watcher: a field's value now comes from elsewhere"
                );
            }
        }
        self.sources = new.clone();
        let shown = self.shown_sources();
        self.update_health(|h| h.sources = shown);
    }

    /// Each field's source, by field name, as health shows it.
    fn shown_sources(&self) -> BTreeMap<String, String> {
        self.sources
            .iter()
            .map(|(key, source)| (self.field_of(key), source.shown.clone()))
            .collect()
    }

    /// The field name of figment key `key` (the key itself for mappings).
    fn field_of(&self, key: &str) -> String {
        match &self.described {
            Some(d) => d.field_of(key),
            None => key.to_owned(),
        }
    }

    /// The leases of the published snapshot that `candidate` no longer holds.
    fn replaced_leases(&self, candidate: &Snapshot) -> Vec<String> {
        let lease_at = |s: &Snapshot, i: usize| {
            s.found(i)
                .and_then(|f| f.secret.as_deref())
                .and_then(KvSecret::lease)
                .map(|l| l.id.clone())
        };
        (0..self.plan.reads().len())
            .filter_map(|i| {
                let old = lease_at(&self.snapshot, i)?;
                (lease_at(candidate, i).as_ref() != Some(&old)).then_some(old)
            })
            .collect()
    }

    /// A poll went through: connected, the token as it is now, and no error
    /// but a held-back rotation's, which stays until a config is published.
    fn mark_connected(&mut self) {
        let token = self.client.auth_status();
        let held_back = self
            .held_back
            .clone()
            .or_else(|| self.renewal_denied.clone());
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

    /// Brings lease clocks and the versions and leases in `health()` up to the
    /// snapshot now published.
    fn bookkeep(&mut self) {
        self.track_leases();
        self.track_rotations();
        self.record_leases();
        let versions = self.snapshot.versions(&self.plan);
        self.update_health(|h| h.versions = versions);
    }

    fn update_health(&mut self, f: impl FnOnce(&mut Health)) {
        f(&mut self.draft);
    }

    /// Publishes the health gathered since the last flush, if it changed: one
    /// wake-up per poll for `subscribe_health`, never a half-updated state.
    fn flush_health(&self) {
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

impl RotationClock {
    /// Due a second after the rotation `rotation` announces.
    fn new(rotation: &Rotation) -> Self {
        RotationClock {
            due: after(rotation.ttl.saturating_add(Duration::from_secs(1))),
            rotation: rotation.clone(),
            misses: 0,
            late_since: None,
            warned: false,
        }
    }
}

/// `now + d`, or far in the future when that does not fit.
fn after(d: Duration) -> Instant {
    after_from(Instant::now(), d)
}

fn after_from(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// The reads whose data must be read again, and the first error met: KV v2
/// paths whose current version differs from the one published (number and
/// creation time, in either direction: a rebuilt Vault starts over at 1, and
/// its version 1 is not the old one; a deleted or destroyed current version
/// counts as no secret, as a fresh read finds it), and every KV v1 path (no
/// metadata to ask). Pinned versions never change; leases are the renewal's
/// business. One path's error does not stop the others' checks.
///
/// A path in `by_data` (its metadata is denied) is read as a KV v1 path is;
/// a path whose metadata read is denied now is read too, and returned in the
/// last list.
async fn changed_reads(
    client: &VaultClient,
    plan: &Plan,
    snapshot: &Snapshot,
    by_data: &BTreeSet<usize>,
) -> (Changes, Option<Error>, Vec<usize>) {
    let checks = plan
        .reads()
        .iter()
        .enumerate()
        .map(|(index, read)| async move {
            // Leases and static roles are the credentials' business (`work`).
            let Read::Kv {
                mount,
                path,
                version: None,
            } = read
            else {
                return Ok(None);
            };
            let Some(found) = snapshot.found(index) else {
                return Ok(None);
            };
            match found.kv {
                Some(KvVersion::V1) | None => Ok(Some((index, None))),
                Some(KvVersion::V2) if by_data.contains(&index) => Ok(Some((index, None))),
                Some(KvVersion::V2) => {
                    let current = match client.read_metadata(mount, path).await {
                        Ok(meta) if meta.current_deleted => None,
                        // Written before the version in force: a node that lags (a
                        // standby). Never go back in time.
                        Ok(meta)
                            if found.secret.as_deref().is_some_and(|held| {
                                stale(
                                    (
                                        Some(meta.current_version),
                                        meta.current_created_time.as_deref(),
                                    ),
                                    (held.version(), held.created_time()),
                                )
                            }) =>
                        {
                            return Ok(None)
                        }
                        Ok(meta) => Some((meta.current_version, meta.current_created_time)),
                        Err(Error::NotFound { .. }) => None,
                        // A policy that grants the data alone: read the data.
                        Err(Error::PermissionDenied { .. }) => return Err(Denied(index)),
                        Err(e) => return Err(Failed(e)),
                    };
                    let seen = found
                        .secret
                        .as_deref()
                        .and_then(|s| Some((s.version()?, s.created_time().map(str::to_owned))));
                    Ok(match current {
                        Some(stamp) if Some(&stamp) != seen.as_ref() => Some((index, Some(stamp))),
                        Some(_) => None,
                        // Deleted since: read, to find out what is there.
                        None => seen.is_some().then_some((index, None)),
                    })
                }
            }
        });
    let mut changed = Vec::new();
    let mut error: Option<Error> = None;
    let mut denied = Vec::new();
    for result in join_all(checks).await {
        match result {
            Ok(Some(change)) => changed.push(change),
            Ok(None) => {}
            Err(Denied(index)) => {
                denied.push(index);
                changed.push((index, None));
            }
            Err(Failed(e)) => Error::keep_first(&mut error, e),
        }
    }
    (changed, error, denied)
}

/// Why a path's check did not tell whether it changed.
enum CheckFailed {
    /// Its metadata may not be read: read its data instead.
    Denied(usize),
    Failed(Error),
}
use CheckFailed::{Denied, Failed};

/// A KV v2 secret's version and when it was written, as its metadata tells.
type Stamp = (u64, Option<String>);

/// The reads a poll found changed: KV v2 ones with the version Vault shows.
type Changes = Vec<(usize, Option<Stamp>)>;

/// Where a key's value came from, kind and text (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    kind: SourceKind,
    shown: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    Vault,
    Env,
    Default,
}

/// Each mapped key's source: `vault secret/data/db#url (version 3)`, `env
/// var DATABASE_URL`, or `default` (neither: a default, `None`, or another
/// figment layer).
fn sources(provider: &VaultProvider) -> BTreeMap<String, Source> {
    provider
        .resolved()
        .iter()
        .map(|r| {
            let source = match &r.origin {
                Origin::Vault { version, .. } => Source {
                    kind: SourceKind::Vault,
                    shown: match version {
                        Some(v) => format!("{} (version {v})", r.origin),
                        None => r.origin.to_string(),
                    },
                },
                Origin::Env { .. } => Source {
                    kind: SourceKind::Env,
                    shown: r.origin.to_string(),
                },
                Origin::Missing { .. } => Source {
                    kind: SourceKind::Default,
                    shown: "default".to_owned(),
                },
            };
            (r.key.clone(), source)
        })
        .collect()
}

/// A hash of each mapped key's value, to tell which changed without keeping
/// copies (the JSON text hashed is zeroed afterwards).
fn prints(provider: &VaultProvider) -> BTreeMap<String, u64> {
    provider
        .resolved()
        .iter()
        .filter_map(|r| {
            let value = provider.value_of(&r.key)?;
            // Scalars by their text: `"6000"` and `6000` deserialize into
            // the same field, and a write that only retypes one changes
            // nothing a subscriber sees.
            let mut text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => serde_json::to_string(value).ok()?,
            };
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            text.zeroize();
            Some((r.key.clone(), h.finish()))
        })
        .collect()
}

/// Watching the mappings of a provider builder: in the watch layer, which
/// the load layer (where the builder lives) does not import.
impl crate::VaultProviderBuilder {
    /// Loads a `T` from these mappings (as [`fetch`](Self::fetch) then
    /// [`VaultProvider::extract`] do), then keeps it current the way
    /// [`VaultConfig::watch`](crate::VaultConfig::watch) does: for services
    /// that build their mappings at run time.
    ///
    /// ```no_run
    /// # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
    /// use std::collections::HashMap;
    /// use vault_config::{Mapping, VaultProvider, WatchOptions};
    /// // Which secret holds the database is decided at deploy time.
    /// let watcher = VaultProvider::builder()
    ///     .mapping(Mapping::new("db.password", "aionos/db-main#password")?.path_env("AION_DB_SECRET_PATH"))
    ///     .map("api_keys", "gateway/api-keys#*")
    ///     .watch::<HashMap<String, serde_json::Value>>(&client, WatchOptions::default())
    ///     .await?;
    /// let health = watcher.health();
    /// # let _ = health; Ok(()) }
    /// ```
    pub async fn watch<T>(self, client: &VaultClient, options: WatchOptions) -> Result<Watcher<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        let plan = Plan::new(client, self.mappings, self.env_prefix)?;
        Watcher::start_plan(client, plan, None, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_user_durations_saturate_instead_of_panicking() {
        let options = WatchOptions::default()
            .interval(Duration::MAX)
            .jitter(0.5)
            .revoke_replaced_leases_after(Duration::MAX);
        assert_eq!(options.effective_max_backoff(), Duration::MAX);
        for failures in [0, 1, 40] {
            assert!(options.delay(failures) >= Duration::from_secs(1));
        }
        assert!(Instant::now().checked_add(Duration::MAX).is_none());
    }

    #[test]
    fn a_huge_server_given_rotation_ttl_saturates() {
        let body = serde_json::json!({"data": {
            "ttl": u64::MAX, "rotation_period": u64::MAX,
            "last_vault_rotation": "2026-12-04T00:00:00Z",
        }});
        let rotation = Rotation::from_body(&body).unwrap();
        let clock = RotationClock::new(&rotation);
        assert!(clock.due > Instant::now());
    }
}
