//! The watch hub: one per client (kept in the client's extensions), shared
//! by every watcher made with that client or a clone of it, so that N
//! watchers over the same paths cost, each interval, the requests of one.
//!
//! What it shares: the KV v2 metadata read a poll makes of each path. A
//! watcher asks the hub for a path's metadata; the hub hands it the newest
//! answer (or the read in flight) when that answer is one this watcher has
//! not used yet and was asked of Vault after this watcher's previous check
//! began; otherwise it reads Vault, and the watchers that ask next share
//! that read. Errors are shared as answers are; each watcher handles them as
//! it would its own.
//!
//! Staleness is bounded: a watcher never uses an answer older than its own
//! previous check, so a change reaches it at most one of its intervals later
//! than without the hub (two intervals after the write instead of one, at
//! worst). A watcher alone on its client reads Vault at every poll, as
//! before, since it never reuses an answer it has used.
//! [`Watcher::refresh`](super::Watcher::refresh) always reads Vault.
//!
//! Entries are counted by the watchers that hold a [`Subscription`] to
//! them, and go when the last one drops: nothing outlives the watchers, and
//! the hub runs no task of its own (a read in flight is driven by whichever
//! watcher awaits it).
//!
//! Uses the client (its extensions, metadata reads) and `engines::kv`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::client::VaultClient;
use crate::engines::kv::KvMetadata;
use crate::error::Result;

/// What a watcher asks the hub about: a KV v2 path's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) mount: String,
    pub(super) path: String,
}

type Answer = Shared<BoxFuture<'static, Result<KvMetadata>>>;

/// The newest read of one key, and how many subscriptions hold the key.
struct Entry {
    watchers: usize,
    /// The newest read (done or in flight): its number, when it was asked
    /// of Vault, and its answer.
    newest: Option<(u64, Instant, Answer)>,
}

/// The per-client hub (see the module docs).
#[derive(Default)]
pub(crate) struct Hub {
    entries: Mutex<HashMap<Key, Entry>>,
    /// Numbers the reads, so a watcher knows which answers it used.
    reads: AtomicU64,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Hub").field("entries", &entries).finish()
    }
}

impl Hub {
    /// The hub of `client` (made on first use).
    pub(super) fn of(client: &VaultClient) -> Arc<Hub> {
        client.extension(Hub::default)
    }

    /// A subscription to `keys` (duplicates count once) for one watcher.
    pub(super) fn subscribe(self: &Arc<Self>, keys: impl IntoIterator<Item = Key>) -> Subscription {
        let keys: BTreeSet<Key> = keys.into_iter().collect();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &keys {
            entries
                .entry(key.clone())
                .or_insert(Entry {
                    watchers: 0,
                    newest: None,
                })
                .watchers += 1;
        }
        Subscription {
            hub: self.clone(),
            keys,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// How many keys the hub holds (for tests: entries go with their last watcher).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One watcher's hold on the keys it polls: which answers it used.
pub(super) struct Subscription {
    hub: Arc<Hub>,
    keys: BTreeSet<Key>,
    /// The number of the last answer used, by key.
    used: Mutex<HashMap<Key, u64>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// How fresh an answer a check needs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Need {
    /// Asked of Vault after `since` (the start of the watcher's previous
    /// check), and not one the watcher used already.
    After(Instant),
    /// Read now (a refresh): the watchers that ask next share it.
    Now,
}

impl Subscription {
    /// The metadata of `mount`/`path`, as fresh as `need` says: shared with
    /// the other watchers of the client when they asked for it recently
    /// enough, else read now.
    pub(super) async fn metadata(
        &self,
        client: &VaultClient,
        mount: &str,
        path: &str,
        need: Need,
    ) -> Result<KvMetadata> {
        let key = Key {
            mount: mount.to_owned(),
            path: path.to_owned(),
        };
        if !self.keys.contains(&key) {
            // Not subscribed (cannot happen for a plan's reads): no sharing.
            return client.read_metadata(mount, path).await;
        }
        let used = self
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        let shared = {
            let mut entries = self
                .hub
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            entries.get_mut(&key).map(|entry| {
                let reusable = entry
                    .newest
                    .as_ref()
                    .filter(|(number, asked, _)| match need {
                        Need::After(since) => Some(*number) != used && *asked >= since,
                        Need::Now => false,
                    });
                match reusable {
                    Some((number, _, answer)) => (*number, answer.clone()),
                    None => {
                        let number = self.hub.reads.fetch_add(1, Ordering::Relaxed);
                        let answer = read(client.clone(), key.clone());
                        entry.newest = Some((number, Instant::now(), answer.clone()));
                        (number, answer)
                    }
                }
            })
        };
        let Some((number, answer)) = shared else {
            return client.read_metadata(mount, path).await;
        };
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, number);
        answer.await
    }
}

/// A metadata read that any number of watchers can await.
fn read(client: VaultClient, key: Key) -> Answer {
    async move { client.read_metadata(&key.mount, &key.path).await }
        .boxed()
        .shared()
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut entries = self
            .hub
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            if let Some(entry) = entries.get_mut(key) {
                entry.watchers = entry.watchers.saturating_sub(1);
                if entry.watchers == 0 {
                    entries.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Key {
        Key {
            mount: "secret".to_owned(),
            path: path.to_owned(),
        }
    }

    #[test]
    fn entries_go_with_the_last_subscription() {
        let hub = Arc::new(Hub::default());
        let a = hub.subscribe([key("db"), key("app"), key("db")]);
        let b = hub.subscribe([key("db")]);
        assert_eq!(hub.len(), 2);
        drop(a);
        assert_eq!(hub.len(), 1, "b still holds db");
        drop(b);
        assert_eq!(hub.len(), 0);
    }
}
