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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::VaultClient;
use crate::error::{Error, Result};
use crate::health::{unix_now, Health, LeaseHealth};
use crate::kv::{KvSecret, KvVersion};
use crate::lease::LeaseClock;
use crate::load::{extract, load, Loaded};
use crate::plan::{Plan, Read};
use crate::provider::VaultProvider;
use crate::snapshot::{read_one, Freshness, Snapshot};
use crate::spec::Description;
use crate::transport::random_fraction;

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
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(30),
            jitter: 0.1,
            max_backoff: None,
            revoke_grace: None,
            revoke_on_shutdown: false,
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
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + spread)).unwrap_or(base)
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
        let loaded = load::<T>(&described, client, Freshness::Fresh).await?;
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
    described: Description,
    plan: Plan,
    snapshot: Snapshot,
    /// A hash of each key's value in the published config.
    prints: BTreeMap<String, u64>,
    /// Where health is published, and the next state of it: changes gather in
    /// `draft` and go out together in [`flush_health`](Self::flush_health).
    health: watch::Sender<Health>,
    draft: Health,
    /// The leases of leased reads, by the read's index in the plan.
    leases: HashMap<usize, LeaseClock>,
    /// Replaced leases to revoke, and when.
    revocations: Vec<(String, Instant)>,
    options: WatchOptions,
    _config: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// The state after the first load, and the first config.
    fn new(
        client: VaultClient,
        described: Description,
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
            health,
            draft,
            leases: HashMap::new(),
            revocations: Vec::new(),
            options,
            _config: std::marker::PhantomData,
        };
        state.bookkeep();
        let connected = state.snapshot.is_from_vault();
        let token = state.client.auth_status();
        state.update_health(|h| {
            h.token = token;
            h.vault_connected = connected;
            if connected {
                h.last_success = Some(unix_now());
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
        let mut failures = 0u32;
        loop {
            let wait = self.options.delay(failures).min(self.next_lease_work());
            let reply = tokio::select! {
                () = tokio::time::sleep(wait) => None,
                command = inbox.recv() => match command {
                    Some(Command::Refresh(reply)) => Some(reply),
                    Some(Command::Shutdown(reply)) => {
                        self.release(self.options.revoke_on_shutdown).await;
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
            };
            let outcome = self.poll(&tx).await;
            match &outcome {
                Ok(_) => failures = 0,
                Err(e) if e.is_unavailable() => failures = failures.saturating_add(1),
                Err(_) => failures = 0,
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
            if tx.is_closed() && inbox.is_closed() {
                return;
            }
        }
    }

    /// One check: returns whether a new config was published.
    async fn poll(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let result = self.poll_inner(tx).await;
        let token = self.client.auth_status();
        self.update_health(|h| h.token = token);
        match &result {
            Ok(_) => self.mark_connected(),
            Err(e) => {
                tracing::warn!(error = %e, "vault-config watcher: keeping the last good configuration");
                let unavailable = e.is_unavailable();
                let text = e.to_string();
                self.update_health(|h| {
                    if unavailable {
                        h.vault_connected = false;
                        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                    } else {
                        h.vault_connected = true;
                    }
                    h.last_error = Some(text);
                    h.last_error_at = Some(unix_now());
                });
            }
        }
        self.flush_health();
        result
    }

    async fn poll_inner(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        if !self.snapshot.is_from_vault() {
            // The config came from env (Vault was unavailable at start): read it all.
            self.snapshot =
                Snapshot::read_vault(&self.client, &self.plan, Freshness::Fresh).await?;
            return self.rebuild(tx);
        }
        let mut changed = changed_reads(&self.client, &self.plan, &self.snapshot).await?;
        changed.extend(self.renew_leases().await?);
        self.revoke_due().await;
        if changed.is_empty() {
            // Renewals moved lease expiries.
            self.record_leases();
            return Ok(false);
        }
        let client = &self.client;
        let reads = changed
            .iter()
            .map(|&i| read_one(client, &self.plan.reads()[i]));
        let results = join_all(reads).await;
        let mut fresh = Vec::with_capacity(changed.len());
        for (index, result) in changed.into_iter().zip(results) {
            fresh.push((index, result?));
        }
        let mut replaced = Vec::new();
        for (index, found) in fresh {
            let old = self.snapshot.replace(index, found);
            if let Some(lease) = old.as_ref().and_then(|f| f.secret.as_deref()?.lease()) {
                replaced.push(lease.id.clone());
            }
        }
        let published = self.rebuild(tx);
        // A grace too long for an `Instant` means never: the lease just expires.
        if let Some(at) = self
            .options
            .revoke_grace
            .and_then(|grace| Instant::now().checked_add(grace))
        {
            self.revocations
                .extend(replaced.into_iter().map(|id| (id, at)));
        }
        published
    }

    /// Renews the leases that are two thirds through; returns the leased reads
    /// whose lease cannot be extended and must be read anew before it expires.
    async fn renew_leases(&mut self) -> Result<Vec<usize>> {
        let mut reread = Vec::new();
        for (&index, clock) in &mut self.leases {
            if !clock.due_in().is_zero() {
                continue;
            }
            let path = self.plan.reads()[index].path();
            if clock.capped() {
                reread.push(index);
                continue;
            }
            match self.client.renew_lease(&clock.lease.id, clock.first).await {
                Ok(renewed) => {
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
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::warn!(path, error = %e, "vault-config watcher: lease renewal failed; reading new credentials");
                    reread.push(index);
                }
            }
        }
        Ok(reread)
    }

    /// Revokes replaced leases whose grace period is over.
    async fn revoke_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.revocations.drain(..).partition(|(_, at)| *at <= now);
        self.revocations = later;
        for (id, _) in due {
            if let Err(e) = self.client.revoke_lease(&id).await {
                tracing::warn!(error = %e, "vault-config watcher: revoking a replaced lease failed; it will expire");
            }
        }
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
        for id in ids {
            if let Err(e) = self.client.revoke_lease(&id).await {
                tracing::warn!(error = %e, "vault-config watcher: revoking a lease at shutdown failed");
            }
        }
        self.leases.clear();
    }

    /// How long until a lease needs renewing or a revocation is due.
    fn next_lease_work(&self) -> Duration {
        let now = Instant::now();
        self.leases
            .values()
            .map(LeaseClock::due_in)
            .chain(
                self.revocations
                    .iter()
                    .map(|(_, at)| at.saturating_duration_since(now)),
            )
            .min()
            .unwrap_or(Duration::MAX)
            .max(Duration::from_millis(10))
    }

    /// Starts a clock for each leased read whose lease is new.
    fn track_leases(&mut self) {
        for index in 0..self.plan.reads().len() {
            let lease = self
                .snapshot
                .found(index)
                .and_then(|f| f.secret.as_deref())
                .and_then(KvSecret::lease);
            if let Some(lease) = lease {
                let fresh = self
                    .leases
                    .get(&index)
                    .is_none_or(|c| c.lease.id != lease.id);
                if fresh {
                    self.leases.insert(index, LeaseClock::new(lease));
                }
            }
        }
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
            .collect();
        self.update_health(|h| h.leases = leases);
    }

    /// Extracts a config from the snapshot and publishes it if any value
    /// changed, health first (so a woken subscriber sees it connected).
    fn rebuild(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let provider = self.snapshot.resolve(&self.plan, self.client.env());
        self.bookkeep();
        let config = extract::<T>(&self.described, &self.client, &provider).inspect_err(|e| {
            tracing::warn!(error = %e, "vault-config watcher: a rotation does not make a valid configuration; not published");
        })?;
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
        let fields: Vec<String> = changed.iter().map(|k| self.described.field_of(k)).collect();
        tracing::info!(changed = %fields.join(", "), "vault-config watcher: configuration reloaded");
        self.prints = new_prints;
        self.mark_connected();
        self.update_health(|h| {
            h.reloads += 1;
            h.last_changed = fields;
        });
        self.flush_health();
        tx.send_replace(Arc::new(config));
        Ok(true)
    }

    /// A poll went through: connected, no error, the token as it is now.
    fn mark_connected(&mut self) {
        let token = self.client.auth_status();
        self.update_health(|h| {
            h.token = token;
            h.vault_connected = true;
            h.last_success = Some(unix_now());
            h.last_error = None;
            h.consecutive_failures = 0;
        });
    }

    /// Brings lease clocks and the versions and leases in `health()` up to the
    /// snapshot now held.
    fn bookkeep(&mut self) {
        self.track_leases();
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

/// The reads whose data must be read again: KV v2 paths whose current version
/// (number and creation time) differs from the one held, in either direction (a
/// rebuilt Vault starts over at 1, and its version 1 is not the old one),
/// and every KV v1 path (no metadata to ask). Pinned versions never change;
/// leases are the renewal's business.
async fn changed_reads(
    client: &VaultClient,
    plan: &Plan,
    snapshot: &Snapshot,
) -> Result<Vec<usize>> {
    let checks =
        plan.reads()
            .iter()
            .enumerate()
            .map(|(index, read)| async move {
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
                    Some(KvVersion::V1) | None => Ok(Some(index)),
                    Some(KvVersion::V2) => {
                        let current = match client.read_metadata(mount, path).await {
                            Ok(meta) => Some((meta.current_version, meta.current_created_time)),
                            Err(Error::NotFound { .. }) => None,
                            Err(e) => return Err(e),
                        };
                        let seen = found.secret.as_deref().and_then(|s| {
                            Some((s.version()?, s.created_time().map(str::to_owned)))
                        });
                        Ok((current != seen).then_some(index))
                    }
                }
            });
    let mut changed = Vec::new();
    for result in join_all(checks).await {
        if let Some(index) = result? {
            changed.push(index);
        }
    }
    Ok(changed)
}

/// A hash of each mapped key's value, to tell which changed without keeping copies.
fn prints(provider: &VaultProvider) -> BTreeMap<String, u64> {
    let figment = provider.figment();
    provider
        .resolved()
        .iter()
        .filter_map(|r| {
            let value = figment.find_value(&r.key).ok()?;
            let text = serde_json::to_string(&value).ok()?;
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            Some((r.key.clone(), h.finish()))
        })
        .collect()
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
}
