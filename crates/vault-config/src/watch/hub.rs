//! The watch hub: one per client (kept in the client's extensions), shared
//! by every watcher made with that client or a clone of it, so that N
//! watchers over the same paths cost, each interval, the requests of one.
//!
//! What it shares: the reads a poll makes of a KV path at its current
//! version, keyed by the read: the KV v2 metadata read of each path, and the
//! data read (of a KV v1 path or one whose metadata is denied, at every
//! poll; of a KV v2 path whose version moved). A watcher asks the hub; the
//! hub hands it the newest answer (or the read in flight) when that answer
//! is one this watcher has not used yet and was asked of Vault after this
//! watcher's previous check began; otherwise it reads Vault, and the
//! watchers that ask next share that read. Errors are shared as answers
//! are; each watcher handles them as it would its own. Leased reads are
//! shared by the lease pool (`lease_pool`), which owns their lifecycle;
//! pinned versions never change and are not read again.
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
//! Uses the client (its extensions, metadata reads), `engines::kv` and
//! the load layer's `read_one`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::client::VaultClient;
use crate::engines::kv::KvMetadata;
use crate::error::Result;
use crate::load::plan::Read;
use crate::load::snapshot::{read_one, Found};

/// A read any number of watchers can await.
type Answer<A> = Shared<BoxFuture<'static, Result<A>>>;

/// The newest read of one key, and how many subscriptions hold the key.
struct Entry<A> {
    watchers: usize,
    /// The newest read (done or in flight): its number, when it was asked
    /// of Vault, and its answer.
    newest: Option<(u64, Instant, Answer<A>)>,
}

/// The entries of one kind of read, by the read they answer.
struct Slots<A> {
    entries: Mutex<HashMap<Read, Entry<A>>>,
}

impl<A> Default for Slots<A> {
    fn default() -> Self {
        Slots {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<A: Clone> Slots<A> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Read, Entry<A>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self, keys: &HashSet<Read>) {
        let mut entries = self.lock();
        for key in keys {
            entries
                .entry(key.clone())
                .or_insert(Entry {
                    watchers: 0,
                    newest: None,
                })
                .watchers += 1;
        }
    }

    fn release(&self, keys: &HashSet<Read>) {
        let mut entries = self.lock();
        for key in keys {
            if let Some(entry) = entries.get_mut(key) {
                entry.watchers = entry.watchers.saturating_sub(1);
                if entry.watchers == 0 {
                    entries.remove(key);
                }
            }
        }
    }

    /// The answer to `key` a watcher that last used answer `used` may
    /// take, as fresh as `need` says: the newest, or a read started now
    /// by `read`. `None` when nobody holds `key`.
    fn ask(
        &self,
        key: &Read,
        used: Option<u64>,
        need: Need,
        numbers: &AtomicU64,
        read: impl FnOnce() -> BoxFuture<'static, Result<A>>,
    ) -> Option<(u64, Answer<A>)> {
        let mut entries = self.lock();
        let entry = entries.get_mut(key)?;
        let reusable = entry
            .newest
            .as_ref()
            .filter(|(number, asked, _)| match need {
                Need::After(since) => Some(*number) != used && *asked >= since,
                Need::Now => false,
            });
        Some(match reusable {
            Some((number, _, answer)) => (*number, answer.clone()),
            None => {
                let number = numbers.fetch_add(1, Ordering::Relaxed);
                let answer = read().shared();
                entry.newest = Some((number, Instant::now(), answer.clone()));
                (number, answer)
            }
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The per-client hub (see the module docs).
#[derive(Default)]
pub(crate) struct Hub {
    /// KV v2 metadata reads, by `Read::Kv` (no version).
    metadata: Slots<KvMetadata>,
    /// Data reads: KV paths at their current version (KV v1 paths and
    /// paths whose metadata is denied are read at every poll; others when
    /// they changed).
    data: Slots<Found>,
    /// Numbers the reads, so a watcher knows which answers it used.
    numbers: AtomicU64,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("metadata", &self.metadata.lock().len())
            .field("data", &self.data.lock().len())
            .finish()
    }
}

impl Hub {
    /// The hub of `client` (made on first use).
    pub(super) fn of(client: &VaultClient) -> Arc<Hub> {
        client.extension(Hub::default)
    }

    /// A subscription for one watcher polling `reads`: the KV reads at
    /// their current version are shared (duplicates count once); pinned
    /// versions never change, and leased reads are each a lease of its own.
    pub(super) fn subscribe<'a>(
        self: &Arc<Self>,
        reads: impl IntoIterator<Item = &'a Read>,
    ) -> Subscription {
        let keys: HashSet<Read> = reads
            .into_iter()
            .filter(|read| matches!(read, Read::Kv { version: None, .. }))
            .cloned()
            .collect();
        self.metadata.hold(&keys);
        self.data.hold(&keys);
        Subscription {
            hub: self.clone(),
            keys,
            used: Mutex::new(HashMap::new()),
        }
    }
}

/// One watcher's hold on the reads it polls: which answers it used.
pub(super) struct Subscription {
    hub: Arc<Hub>,
    keys: HashSet<Read>,
    /// The number of the last answer used, by kind (metadata: true) and read.
    used: Mutex<HashMap<(bool, Read), u64>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("reads", &self.keys.len())
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
        let key = Read::Kv {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version: None,
        };
        let used = self.used(true, &key);
        let shared = self
            .hub
            .metadata
            .ask(&key, used, need, &self.hub.numbers, || {
                let (client, mount, path) = (client.clone(), mount.to_owned(), path.to_owned());
                async move { client.read_metadata(&mount, &path).await }.boxed()
            });
        let Some((number, answer)) = shared else {
            // Not subscribed (cannot happen for a plan's reads): no sharing.
            return client.read_metadata(mount, path).await;
        };
        self.use_answer(true, key, number);
        answer.await
    }

    /// What `read` finds (as [`read_one`] does), shared as
    /// [`metadata`](Self::metadata) is for a KV read at its current version;
    /// any other read is read now.
    pub(super) async fn found(
        &self,
        client: &VaultClient,
        read: &Read,
        need: Need,
    ) -> Result<Found> {
        let used = self.used(false, read);
        let shared = self.hub.data.ask(read, used, need, &self.hub.numbers, || {
            let (client, read) = (client.clone(), read.clone());
            async move { read_one(&client, &read).await }.boxed()
        });
        let Some((number, answer)) = shared else {
            return read_one(client, read).await;
        };
        self.use_answer(false, read.clone(), number);
        answer.await
    }

    fn used(&self, metadata: bool, key: &Read) -> Option<u64> {
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(metadata, key.clone()))
            .copied()
    }

    fn use_answer(&self, metadata: bool, key: Read, number: u64) {
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((metadata, key), number);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.metadata.release(&self.keys);
        self.hub.data.release(&self.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(path: &str, version: Option<u64>) -> Read {
        Read::Kv {
            mount: "secret".to_owned(),
            path: path.to_owned(),
            version,
        }
    }

    /// Asks `slots` for `key` as a watcher that last used `used`; returns
    /// the answer's number and whether it was read now.
    fn ask(slots: &Slots<u32>, numbers: &AtomicU64, used: Option<u64>, need: Need) -> (u64, bool) {
        let mut read = false;
        let (number, _) = slots
            .ask(&kv("db", None), used, need, numbers, || {
                read = true;
                async { Ok(7) }.boxed()
            })
            .unwrap();
        (number, read)
    }

    #[test]
    fn an_answer_is_shared_once_per_watcher_and_never_older_than_its_last_check() {
        let slots = Slots::<u32>::default();
        let numbers = AtomicU64::new(0);
        let keys: HashSet<Read> = [kv("db", None)].into();
        slots.hold(&keys);
        let since = Instant::now();
        // Watcher a reads; b, whose last check began before, shares it.
        let (first, read) = ask(&slots, &numbers, None, Need::After(since));
        assert!(read);
        assert_eq!(
            ask(&slots, &numbers, None, Need::After(since)),
            (first, false)
        );
        // a never takes an answer it used: it reads again, and b shares that.
        let (second, read) = ask(&slots, &numbers, Some(first), Need::After(since));
        assert!(read && second != first);
        assert_eq!(
            ask(&slots, &numbers, Some(first), Need::After(since)),
            (second, false)
        );
        // An answer asked before the watcher's previous check began is too old.
        let later = Instant::now() + std::time::Duration::from_secs(1);
        assert!(ask(&slots, &numbers, None, Need::After(later)).1);
        // A refresh always reads.
        let (now, read) = ask(&slots, &numbers, None, Need::Now);
        assert!(read);
        assert_eq!(
            ask(&slots, &numbers, None, Need::After(since)),
            (now, false)
        );
        // Nobody holds a key: no sharing.
        slots.release(&keys);
        assert!(slots
            .ask(&kv("db", None), None, Need::Now, &numbers, || async {
                Ok(1)
            }
            .boxed())
            .is_none());
    }

    #[test]
    fn entries_go_with_the_last_subscription() {
        let hub = Arc::new(Hub::default());
        let leased = Read::Leased {
            path: "database/creds/app".to_owned(),
            ttl: None,
        };
        let a = hub.subscribe(&[kv("db", None), kv("app", None), kv("db", None), leased]);
        let b = hub.subscribe(&[kv("db", None), kv("app", Some(3))]);
        assert_eq!(
            hub.metadata.len(),
            2,
            "pinned and leased reads are not shared"
        );
        assert_eq!(hub.data.len(), 2);
        drop(a);
        assert_eq!(hub.metadata.len(), 1, "b still holds db");
        drop(b);
        assert_eq!((hub.metadata.len(), hub.data.len()), (0, 0));
    }
}
