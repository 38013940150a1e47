//! Hot reload: [`Watcher`] polls Vault and publishes a new typed config on a
//! `tokio::sync::watch` channel when secrets rotate.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::VaultClient;
use crate::config::extract;
use crate::error::{Error, Result};
use crate::health::{unix_now, Health, LeaseHealth};
use crate::kv::{KvSecret, KvVersion, Lease};
use crate::mapping::Mapping;
use crate::provider::{
    check_keys, read_one, secrets_for, ReadKey, Secrets, VaultProvider, DYNAMIC,
};
use crate::spec::Description;
use crate::transport::random_fraction;

/// How a [`Watcher`] polls.
///
/// ```
/// use std::time::{Duration, Instant};
/// use vault_config::WatchOptions;
/// let options = WatchOptions::default().interval(Duration::from_secs(5));
/// assert_eq!(options.max_backoff_duration(), Duration::from_secs(50));
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

    /// The poll interval in force.
    pub fn interval_duration(&self) -> Duration {
        self.interval
    }

    /// The backoff cap in force.
    pub fn max_backoff_duration(&self) -> Duration {
        self.max_backoff
            .unwrap_or_else(|| (self.interval * 10).min(Duration::from_secs(300)))
            .max(self.interval)
    }

    /// The wait before the next poll after `failures` failed polls in a row.
    fn delay(&self, failures: u32) -> Duration {
        let base = if failures == 0 {
            self.interval
        } else {
            self.interval
                .saturating_mul(1u32 << failures.min(16))
                .min(self.max_backoff_duration())
        };
        let spread = (random_fraction() * 2.0 - 1.0) * self.jitter;
        base.mul_f64(1.0 + spread)
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
    health: Arc<Mutex<Health>>,
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
        let mut state = State::<T>::new(client.clone(), described)?;
        state.options = options;
        let first = state.initial().await?;
        let (tx, rx) = watch::channel(Arc::new(first));
        let health = state.health.clone();
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
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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

/// The background task's state.
struct State<T> {
    client: VaultClient,
    described: Description,
    mappings: Vec<Mapping>,
    /// What the config was built from; `None` while it comes from env only.
    secrets: Option<Secrets>,
    /// A hash of each key's value in the published config.
    prints: BTreeMap<String, u64>,
    health: Arc<Mutex<Health>>,
    /// The leases of dynamic reads, by read key.
    leases: HashMap<ReadKey, LeaseClock>,
    /// Replaced leases to revoke, and when.
    revocations: Vec<(String, Instant)>,
    options: WatchOptions,
    _config: std::marker::PhantomData<fn() -> T>,
}

/// A lease and when it was granted or last renewed.
struct LeaseClock {
    lease: Lease,
    since: Instant,
    /// The duration the first grant gave: a renewal giving less has met the max TTL.
    first: Duration,
    renewals: u64,
}

impl LeaseClock {
    fn new(lease: &Lease) -> Self {
        LeaseClock {
            lease: lease.clone(),
            since: Instant::now(),
            first: lease.duration,
            renewals: 0,
        }
    }

    /// Two thirds into the lease.
    fn due_in(&self) -> Duration {
        self.lease
            .duration
            .mul_f64(2.0 / 3.0)
            .saturating_sub(self.since.elapsed())
    }

    fn remaining(&self) -> Duration {
        self.lease.duration.saturating_sub(self.since.elapsed())
    }

    /// Renewing again would not extend it: not renewable, or the max TTL cut the last renewal.
    fn capped(&self) -> bool {
        !self.lease.renewable || self.lease.duration < self.first
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    fn new(client: VaultClient, described: Description) -> Result<Self> {
        if let Some(e) = &described.error {
            return Err(e.clone());
        }
        let mappings = described
            .specs
            .iter()
            .map(|s| s.mapping())
            .collect::<Result<Vec<_>>>()?;
        check_keys(&mappings)?;
        let health = Health {
            vault_enabled: client.is_enabled(),
            ..Health::default()
        };
        Ok(State {
            client,
            described,
            mappings,
            secrets: None,
            prints: BTreeMap::new(),
            health: Arc::new(Mutex::new(health)),
            leases: HashMap::new(),
            revocations: Vec::new(),
            options: WatchOptions::default(),
            _config: std::marker::PhantomData,
        })
    }

    async fn initial(&mut self) -> Result<T> {
        self.secrets = secrets_for(&self.client, &self.mappings, None, false).await?;
        let provider = self.provider();
        let config = extract::<T>(&self.described, &self.client, &provider)?;
        self.prints = prints(&provider);
        self.bookkeep();
        let connected = self.secrets.is_some();
        let token = self.client.auth_status();
        self.update_health(|h| {
            h.token = token;
            h.vault_connected = connected;
            if connected {
                h.last_success = Some(unix_now());
            }
        });
        Ok(config)
    }

    fn provider(&self) -> VaultProvider {
        VaultProvider::assemble(&self.client, &self.mappings, None, self.secrets.as_ref())
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
            Ok(_) => self.update_health(|h| {
                h.vault_connected = true;
                h.last_success = Some(unix_now());
                h.last_error = None;
                h.consecutive_failures = 0;
            }),
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
        result
    }

    async fn poll_inner(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let Some(secrets) = &self.secrets else {
            // The config came from env (Vault was unavailable at start): read it all.
            let fresh = crate::provider::read_all(&self.client, &self.mappings, false).await?;
            self.secrets = Some(fresh);
            return self.rebuild(tx);
        };
        let mut changed = changed_paths(&self.client, secrets).await?;
        changed.extend(self.renew_leases().await?);
        self.revoke_due().await;
        if changed.is_empty() {
            // Renewals moved lease expiries.
            self.record_leases();
            return Ok(false);
        }
        let client = &self.client;
        let reads = changed.iter().map(|key| read_one(client, key));
        let results = join_all(reads).await;
        let mut fresh = Vec::with_capacity(changed.len());
        for (key, result) in changed.into_iter().zip(results) {
            fresh.push((key, result?.1));
        }
        let mut replaced = Vec::new();
        if let Some(secrets) = &mut self.secrets {
            for (key, secret) in fresh {
                if let Some(entry) = secrets.get_mut(&key) {
                    if let Some(old) = entry.1.as_ref().and_then(|s| s.lease()) {
                        replaced.push(old.id.clone());
                    }
                    entry.1 = secret;
                }
            }
        }
        let published = self.rebuild(tx);
        if let Some(grace) = self.options.revoke_grace {
            let at = Instant::now() + grace;
            self.revocations
                .extend(replaced.into_iter().map(|id| (id, at)));
        }
        published
    }

    /// Renews the leases that are two thirds through; returns the dynamic reads
    /// whose lease cannot be extended and must be read anew before it expires.
    async fn renew_leases(&mut self) -> Result<Vec<ReadKey>> {
        let mut reread = Vec::new();
        for (key, clock) in &mut self.leases {
            if !clock.due_in().is_zero() {
                continue;
            }
            if clock.capped() {
                reread.push(key.clone());
                continue;
            }
            match self.client.renew_lease(&clock.lease.id, clock.first).await {
                Ok(renewed) => {
                    clock.since = Instant::now();
                    clock.lease.duration = renewed.duration;
                    clock.lease.renewable = renewed.renewable;
                    clock.renewals += 1;
                    tracing::debug!(path = %key.1, ttl_secs = renewed.duration.as_secs(), "vault-config watcher: lease renewed");
                }
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::warn!(path = %key.1, error = %e, "vault-config watcher: lease renewal failed; reading new credentials");
                    reread.push(key.clone());
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

    /// Starts a clock for each dynamic read whose lease is new.
    fn track_leases(&mut self) {
        let Some(secrets) = &self.secrets else { return };
        for (key, (_, secret)) in secrets {
            if let Some(lease) = secret.as_deref().and_then(KvSecret::lease) {
                let fresh = self.leases.get(key).is_none_or(|c| c.lease.id != lease.id);
                if fresh {
                    self.leases.insert(key.clone(), LeaseClock::new(lease));
                }
            }
        }
    }

    fn record_leases(&self) {
        let now = unix_now();
        let leases = self
            .leases
            .iter()
            .map(|(key, c)| {
                let lease = LeaseHealth {
                    expires_at: now + c.remaining().as_secs(),
                    renewable: c.lease.renewable,
                    renewals: c.renewals,
                };
                (key.1.clone(), lease)
            })
            .collect();
        self.update_health(|h| h.leases = leases);
    }

    /// Extracts a config from the current secrets and publishes it if any value changed.
    fn rebuild(&mut self, tx: &watch::Sender<Arc<T>>) -> Result<bool> {
        let provider = self.provider();
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
        self.update_health(|h| {
            h.reloads += 1;
            h.last_changed = fields;
        });
        tx.send_replace(Arc::new(config));
        Ok(true)
    }

    /// Brings lease clocks and the versions and leases in `health()` up to the
    /// secrets now held.
    fn bookkeep(&mut self) {
        self.track_leases();
        self.record_leases();
        self.record_versions();
    }

    fn record_versions(&self) {
        let Some(secrets) = &self.secrets else { return };
        let versions: BTreeMap<String, u64> = secrets
            .iter()
            .filter_map(|((mount, path, _), (_, s))| {
                Some((format!("{mount}/{path}"), s.as_ref()?.version()?))
            })
            .collect();
        self.update_health(|h| h.versions = versions);
    }

    fn update_health(&self, f: impl FnOnce(&mut Health)) {
        f(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The paths whose data must be read again: KV v2 paths whose current version
/// (number and creation time) differs from the one held, in either direction (a
/// rebuilt Vault starts over at 1, and its version 1 is not the old one),
/// and every KV v1 path (no metadata to ask). Pinned versions never change.
async fn changed_paths(client: &VaultClient, secrets: &Secrets) -> Result<Vec<ReadKey>> {
    let checks = secrets.iter().map(|(key, (kv, held))| async move {
        let (mount, path, pinned) = key;
        // Pinned versions never change; leases are the renewal's business.
        if pinned.is_some() || mount == DYNAMIC {
            return Ok(None);
        }
        match kv {
            KvVersion::V1 => Ok(Some(key.clone())),
            KvVersion::V2 => {
                let current = match client.read_metadata(mount, path).await {
                    Ok(meta) => Some((meta.current_version, meta.current_created_time)),
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                let seen = held
                    .as_deref()
                    .and_then(|s| Some((s.version()?, s.created_time().map(str::to_owned))));
                Ok((current != seen).then(|| key.clone()))
            }
        }
    });
    let mut changed = Vec::new();
    for result in join_all(checks).await {
        if let Some(key) = result? {
            changed.push(key);
        }
    }
    Ok(changed)
}

/// A hash of each mapped key's value, to tell which changed without keeping copies.
fn prints(provider: &VaultProvider) -> BTreeMap<String, u64> {
    let figment = figment::Figment::from(provider);
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
