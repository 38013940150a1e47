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
//! good config stays and [`Watcher::health`] says why. An outage backs polls
//! off; a rotation held back is not read again while Vault holds the same
//! KV v2 versions (KV v1 paths, which have none, are read at every poll), and
//! each poll until a valid config counts in `consecutive_failures`.
//! Leases on dynamic credentials are renewed at two thirds of their duration,
//! and replaced before they expire when they can no longer be extended.
//! Certificates a PKI role issues are issued again once two thirds of their
//! validity have passed.
//!
//! Watchers made with one client (or clones of it) share these reads: over
//! the same paths, N watchers cost each interval the requests of one, and a
//! change may reach a watcher up to one of its intervals later than alone
//! (it never uses an answer older than its own previous check);
//! [`Watcher::refresh`] always reads Vault. They share leases too: one
//! lease per leased read, renewed once, replaced once, revoked (when
//! asked) by the last watcher holding it.
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
//!
//! # Files
//!
//! `options` ([`WatchOptions`]), `backoff` (clocks), `state` (the task and
//! its loop), `work` (a poll's work), `changes` (change detection), `leases`
//! (leases and static roles), `certificates` (PKI certificates issued again
//! before they expire, identities in health), `publish` (making and publishing a config),
//! `values` (sources and value hashes), `hub` and `lease_pool` (what the
//! watchers of one client share), [`health`]. The watch layer uses every
//! layer below it (client, engines, load, describe); nothing but `config`
//! uses it.

mod backoff;
mod certificates;
mod changes;
pub mod health;
mod hub;
mod lease_pool;
mod leases;
mod options;
mod publish;
mod state;
mod values;
mod work;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use self::options::WatchOptions;
use self::state::{Command, State};
use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::error::{Error, Result};
use crate::load::load_plan;
use crate::load::plan::Plan;
use crate::load::snapshot::Freshness;
use crate::watch::health::Health;

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
        let loaded_at = Instant::now();
        let loaded = load_plan::<T>(plan, described.as_ref(), client, Freshness::Fresh).await?;
        let (loaded, pool) = lease_pool::share_first(client, described.as_ref(), loaded).await;
        let (health_tx, health) = watch::channel(Health {
            vault_enabled: client.is_enabled(),
            ..Health::default()
        });
        let (state, first) = State::new(
            client.clone(),
            described,
            (loaded, loaded_at, pool),
            options,
            health_tx,
        );
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

/// Watching the mappings of a provider builder: in the watch layer, which
/// the load layer (where the builder lives) does not import.
impl crate::VaultProviderBuilder {
    /// Loads a `T` from these mappings (as [`fetch`](Self::fetch) then
    /// [`VaultProvider::extract`](crate::VaultProvider::extract) do), then keeps it current the way
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
