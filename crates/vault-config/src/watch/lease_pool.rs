//! The leases the watchers of one client share (the lease half of the
//! watch hub; kept in the client's extensions): one lease per leased read,
//! renewed once per renewal point, replaced once, revoked by the last
//! watcher to let go of it.
//!
//! - A watcher that starts while another of the client holds a live lease
//!   for the same read (same token, not due for replacement) takes that
//!   lease: its own first read is revoked at once (a start costs one lease
//!   read and one revocation more than the steady state).
//! - Renewals of one lease are one request: a watcher due to renew takes a
//!   renewal asked since its clock's last renewal, or the one in flight.
//! - Replacing a lease (at its max TTL, after a new login, a denied
//!   renewal) is one read: a watcher replacing lease `old` takes the
//!   newest lease of the read when it is not `old`, or joins the read in
//!   flight.
//! - Each watcher holds the lease IDs it published or received
//!   ([`PoolHold`]); revoking (after the grace, a held-back candidate's
//!   fresh lease, on shutdown) lets go of them and revokes only those no
//!   other watcher holds. Dropping a watcher lets go without revoking.
//!
//! Uses the client (reads, renewals, revocations), `engines::lease` and the
//! load layer's `read_one`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::de::DeserializeOwned;

use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::engines::kv::KvSecret;
use crate::engines::lease::{Lease, LeaseClock};
use crate::error::Result;
use crate::load::plan::Read;
use crate::load::snapshot::{read_one, Found};
use crate::load::{extract, Loaded};

type SharedRead = Shared<BoxFuture<'static, Result<Found>>>;
type SharedRenewal = Shared<BoxFuture<'static, Result<(Lease, Instant)>>>;

/// A lease some watcher holds.
struct Held {
    read: Read,
    holders: usize,
    /// Its clock as the last renewal left it.
    since: Instant,
    lease: Lease,
    first: Duration,
    renewals: u64,
    /// The newest renewal (done or in flight), and when it was asked.
    renewal: Option<(Instant, SharedRenewal)>,
}

#[derive(Default)]
struct Inner {
    held: HashMap<String, Held>,
    /// The newest lease of each leased read, and the read in flight.
    newest: HashMap<Read, (String, Found)>,
    reading: HashMap<Read, SharedRead>,
    /// The IDs revoked last (a few): two watchers that replaced the same
    /// lease revoke it once.
    revoked: VecDeque<String>,
}

/// How many revoked IDs the pool remembers.
const REVOKED_KEPT: usize = 64;

/// The per-client pool (see the module docs).
#[derive(Default)]
pub(crate) struct LeasePool {
    inner: Mutex<Inner>,
}

impl fmt::Debug for LeasePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("LeasePool")
            .field("held", &inner.held.len())
            .field("reading", &inner.reading.len())
            .finish()
    }
}

fn lease_of(found: &Found) -> Option<&Lease> {
    found.secret.as_deref().and_then(KvSecret::lease)
}

impl LeasePool {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool of `client` (made on first use), and a hold on it for one watcher.
    pub(super) fn hold(client: &VaultClient) -> PoolHold {
        PoolHold {
            pool: client.extension(LeasePool::default),
            ids: HashSet::new(),
        }
    }

    /// The newest lease of `read` a starting watcher may take: held by a
    /// watcher, made under token `generation`, and not due for replacement.
    fn live(&self, read: &Read, generation: u64) -> Option<Found> {
        let inner = self.lock();
        let (id, found) = inner.newest.get(read)?;
        let held = inner.held.get(id)?;
        usable(held, generation).then(|| found.clone())
    }
}

/// Made under token `generation`, and not due for replacement.
fn usable(held: &Held, generation: u64) -> bool {
    let clock = clock_of(held);
    held.lease.generation == generation && !(clock.capped() && clock.due_in(None, None).is_zero())
}

fn clock_of(held: &Held) -> LeaseClock {
    let mut clock = LeaseClock::new(&held.lease);
    clock.since = held.since;
    clock.first = held.first;
    clock.renewals = held.renewals;
    clock
}

/// One watcher's hold on the pool: the lease IDs it uses. Dropped, it lets
/// go of them (without revoking).
pub(super) struct PoolHold {
    pool: Arc<LeasePool>,
    ids: HashSet<String>,
}

impl fmt::Debug for PoolHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHold")
            .field("leases", &self.ids.len())
            .finish_non_exhaustive()
    }
}

impl PoolHold {
    /// For each leased read of `reads` whose found lease another watcher
    /// shares a live one of: that one, and this watcher's own lease (to revoke).
    pub(super) fn shared_instead(
        &self,
        client: &VaultClient,
        reads: &[Read],
        found: impl Fn(usize) -> Option<Found>,
    ) -> Vec<(usize, Found, String)> {
        let generation = client.token_generation();
        reads
            .iter()
            .enumerate()
            .filter(|(_, read)| matches!(read, Read::Leased { .. }))
            .filter_map(|(index, read)| {
                let own = found(index)?;
                let own_id = lease_of(&own)?.id.clone();
                let shared = self.pool.live(read, generation)?;
                (lease_of(&shared)?.id != own_id).then_some((index, shared, own_id))
            })
            .collect()
    }

    /// Holds the lease of `found` (read by `read`): the clock to keep for
    /// it, the pool's when another watcher holds it already.
    pub(super) fn join(&mut self, read: &Read, found: &Found) -> Option<LeaseClock> {
        let lease = lease_of(found)?;
        let mut inner = self.pool.lock();
        let inner = &mut *inner;
        let held = inner.held.entry(lease.id.clone()).or_insert_with(|| Held {
            read: read.clone(),
            holders: 0,
            since: lease.granted,
            lease: lease.clone(),
            first: lease.duration,
            renewals: 0,
            renewal: None,
        });
        if self.ids.insert(lease.id.clone()) {
            held.holders += 1;
        }
        inner
            .newest
            .entry(read.clone())
            .or_insert_with(|| (lease.id.clone(), found.clone()));
        Some(clock_of(held))
    }

    /// Lets go of lease `id`; whether no watcher holds it any more.
    pub(super) fn release(&mut self, id: &str) -> bool {
        let mut inner = self.pool.lock();
        if self.ids.remove(id) {
            if let Some(held) = inner.held.get_mut(id) {
                held.holders = held.holders.saturating_sub(1);
            }
        }
        let unheld = inner.held.get(id).is_none_or(|h| h.holders == 0);
        if unheld {
            if let Some(held) = inner.held.remove(id) {
                if inner.newest.get(&held.read).is_some_and(|(n, _)| n == id) {
                    inner.newest.remove(&held.read);
                }
            }
        }
        unheld
    }

    /// Lets go of `ids` and revokes those no other watcher holds.
    pub(super) async fn revoke(&mut self, client: &VaultClient, ids: Vec<String>) {
        let unheld: Vec<String> = ids.into_iter().filter(|id| self.release(id)).collect();
        let unheld: Vec<String> = {
            let mut inner = self.pool.lock();
            let fresh: Vec<String> = unheld
                .into_iter()
                .filter(|id| !inner.revoked.contains(id))
                .collect();
            for id in &fresh {
                if inner.revoked.len() == REVOKED_KEPT {
                    inner.revoked.pop_front();
                }
                inner.revoked.push_back(id.clone());
            }
            fresh
        };
        client.revoke_unused(unheld).await;
    }

    /// The IDs this watcher holds.
    pub(super) fn ids(&self) -> Vec<String> {
        self.ids.iter().cloned().collect()
    }

    /// Renews lease `id` by `increment`, once for every watcher holding it:
    /// a renewal asked after `since` (this watcher's last one) is taken.
    /// Returns the lease as renewed, when Vault answered, and whether this
    /// call sent the request.
    pub(super) async fn renew(
        &self,
        client: &VaultClient,
        id: &str,
        increment: Duration,
        since: Instant,
    ) -> Result<(Lease, Instant, bool)> {
        let (renewal, sent) = {
            let mut inner = self.pool.lock();
            match inner.held.get_mut(id) {
                None => (None, true),
                Some(held) => match &held.renewal {
                    // Strictly later: a renewal's clock (`since`) starts when
                    // it was sent, a moment after the pool's `asked`, and a
                    // coarse clock could make the two equal.
                    Some((asked, renewal)) if *asked > since => (Some(renewal.clone()), false),
                    _ => {
                        let asked = Instant::now();
                        let renewal =
                            renewal_of(self.pool.clone(), client.clone(), id, increment, asked);
                        held.renewal = Some((asked, renewal.clone()));
                        (Some(renewal), true)
                    }
                },
            }
        };
        let (lease, at) = match renewal {
            Some(renewal) => renewal.await?,
            None => {
                let lease = client.renew_lease(id, increment).await?;
                let at = lease.granted;
                (lease, at)
            }
        };
        Ok((lease, at, sent))
    }

    /// New credentials for `read` in place of lease `old`, read once for
    /// every watcher replacing it: the newest lease of the read when it is
    /// not `old`, else the read in flight, else a new read.
    pub(super) async fn replace(
        &self,
        client: &VaultClient,
        read: &Read,
        old: &str,
    ) -> Result<Found> {
        let generation = client.token_generation();
        let answer = {
            let mut inner = self.pool.lock();
            let inner = &mut *inner;
            match inner.newest.get(read) {
                // Read by another watcher since (not yet held), or held and live.
                Some((id, found))
                    if id != old && inner.held.get(id).is_none_or(|h| usable(h, generation)) =>
                {
                    return Ok(found.clone())
                }
                _ => {}
            }
            match inner.reading.get(read) {
                Some(reading) => reading.clone(),
                None => {
                    let reading = read_of(self.pool.clone(), client.clone(), read.clone());
                    inner.reading.insert(read.clone(), reading.clone());
                    reading
                }
            }
        };
        answer.await
    }
}

/// A renewal (asked at `asked`) any number of watchers can await; it moves
/// the pool's clock, or, failed, is forgotten so the next try asks again.
fn renewal_of(
    pool: Arc<LeasePool>,
    client: VaultClient,
    id: &str,
    increment: Duration,
    asked: Instant,
) -> SharedRenewal {
    let id = id.to_owned();
    async move {
        let result = client.renew_lease(&id, increment).await;
        // Counted from when the renewal was sent, as Vault counts it.
        let at = result
            .as_ref()
            .map_or_else(|_| Instant::now(), |l| l.granted);
        let mut inner = pool.lock();
        if let Some(held) = inner.held.get_mut(&id) {
            match &result {
                Ok(renewed) => {
                    held.since = at;
                    held.lease.duration = renewed.duration;
                    held.lease.renewable = renewed.renewable;
                    held.renewals += 1;
                }
                Err(_) => {
                    if held.renewal.as_ref().is_some_and(|(a, _)| *a == asked) {
                        held.renewal = None;
                    }
                }
            }
        }
        result.map(|renewed| (renewed, at))
    }
    .boxed()
    .shared()
}

/// A read of new credentials any number of watchers can await; once done,
/// it is the read's newest lease.
fn read_of(pool: Arc<LeasePool>, client: VaultClient, read: Read) -> SharedRead {
    async move {
        let result = read_one(&client, &read).await;
        let mut inner = pool.lock();
        inner.reading.remove(&read);
        if let Ok(found) = &result {
            if let Some(lease) = lease_of(found) {
                inner.newest.insert(read, (lease.id.clone(), found.clone()));
            }
        }
        result
    }
    .boxed()
    .shared()
}

impl Drop for PoolHold {
    fn drop(&mut self) {
        for id in self.ids() {
            self.release(&id);
        }
    }
}

/// A watcher's first load, with the leases another watcher of the client
/// shares in place of its own (revoked at once: nothing used them), and
/// the watcher's hold on the pool, holding those already (so that the
/// other watcher cannot revoke them before this one starts). Kept as
/// loaded when none is shared, or when the config does not extract.
pub(super) async fn share_first<T: DeserializeOwned>(
    client: &VaultClient,
    described: Option<&Description>,
    loaded: Loaded<T>,
) -> (Loaded<T>, PoolHold) {
    let mut pool = LeasePool::hold(client);
    let swaps = pool.shared_instead(client, loaded.plan.reads(), |i| {
        loaded.snapshot.found(i).cloned()
    });
    if swaps.is_empty() {
        return (loaded, pool);
    }
    let mut snapshot = loaded.snapshot.clone();
    let mut own = Vec::with_capacity(swaps.len());
    for (index, shared, own_id) in swaps {
        pool.join(&loaded.plan.reads()[index], &shared);
        snapshot.replace(index, shared);
        own.push(own_id);
    }
    let provider = snapshot.resolve(&loaded.plan, client);
    match extract::<T>(described, client, &provider) {
        Ok(config) => {
            client.revoke_unused(own).await;
            let loaded = Loaded {
                config,
                plan: loaded.plan,
                snapshot,
                provider,
            };
            (loaded, pool)
        }
        Err(e) => {
            tracing::debug!(error = %e, "vault-config watcher: the shared credentials do not make a config; keeping this watcher's own");
            for id in pool.ids() {
                pool.release(&id);
            }
            (loaded, pool)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leased(id: &str) -> Found {
        let body = serde_json::json!({
            "lease_id": id, "lease_duration": 60, "renewable": true,
            "data": {"username": "u", "password": "p"},
        });
        Found {
            kv: None,
            secret: Some(Arc::new(
                KvSecret::from_dynamic("database/creds/app", body, 0, Instant::now()).unwrap(),
            )),
        }
    }

    #[test]
    fn a_lease_is_unheld_only_when_its_last_holder_lets_go() {
        let pool = Arc::new(LeasePool::default());
        let read = Read::Leased {
            path: "database/creds/app".to_owned(),
            ttl: None,
        };
        let hold = || PoolHold {
            pool: pool.clone(),
            ids: HashSet::new(),
        };
        let (mut a, mut b) = (hold(), hold());
        let found = leased("database/creds/app/1");
        assert!(a.join(&read, &found).is_some());
        assert!(a.join(&read, &found).is_some(), "joining twice holds once");
        b.join(&read, &found);
        assert_eq!(
            pool.live(&read, 0)
                .and_then(|f| lease_of(&f).map(|l| l.id.clone()))
                .as_deref(),
            Some("database/creds/app/1")
        );
        assert!(pool.live(&read, 1).is_none(), "not under another token");
        assert!(!a.release("database/creds/app/1"), "b still holds it");
        assert!(!a.release("database/creds/app/1"), "a let go once only");
        drop(b);
        assert!(pool.lock().held.is_empty() && pool.lock().newest.is_empty());
        assert!(a.release("database/creds/app/1"), "nobody holds it");
    }
}
