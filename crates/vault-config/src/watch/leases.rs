//! The leases and static roles of a watcher: renewing leases at two thirds,
//! finding those to replace, revoking replaced ones after their grace,
//! keeping rotation clocks, and showing both in health.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::backoff::{after, after_from, RotationClock, ROTATION_OVERDUE_AFTER};
use super::health::{LeaseHealth, RotationHealth};
use super::state::State;
use crate::base::unix_now;
use crate::engines::kv::KvSecret;
use crate::engines::lease::LeaseClock;
use crate::error::Error;
use crate::load::snapshot::Snapshot;
use crate::telemetry::Count;

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// Renews the leases that are two thirds through; returns the leased reads
    /// whose lease cannot be extended and must be read anew before it
    /// expires, and the first error that is not the lease's own.
    pub(super) async fn renew_leases(&mut self) -> (Vec<usize>, Option<Error>) {
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
            // Once for every watcher of the client holding this lease.
            let renewal = self
                .pool
                .renew(&self.client, &clock.lease.id, clock.first, clock.since)
                .await;
            match renewal {
                Ok((renewed, at, sent)) => {
                    renewed_one = true;
                    if sent {
                        self.client.telemetry().count(Count::LeaseRenewal, 1);
                    }
                    clock.since = at;
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
    pub(super) async fn revoke_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            self.revocations.drain(..).partition(|(_, at)| *at <= now);
        self.revocations = later;
        let ids: Vec<String> = due.into_iter().map(|(id, _)| id).collect();
        // Not those another watcher of the client still holds.
        self.pool.revoke(&self.client, ids).await;
    }

    /// On shutdown: revoke every lease held (when asked) and pending revocations.
    pub(super) async fn release(&mut self, revoke: bool) {
        if !revoke {
            return;
        }
        let ids: Vec<String> = self
            .leases
            .values()
            .map(|c| c.lease.id.clone())
            .chain(self.pool.ids())
            .chain(self.revocations.drain(..).map(|(id, _)| id))
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        // Not those another watcher of the client still holds.
        self.pool.revoke(&self.client, ids).await;
        self.leases.clear();
    }

    /// When a lease needs renewing or replacing, a revocation, a static
    /// role's read or a certificate's issue is due, if ever: now for a lease
    /// made under a token the client replaced.
    pub(super) fn lease_due_at(&self, now: Instant) -> Option<Instant> {
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
            .chain(self.reissues.values().map(|r| r.due))
            .min()
    }

    /// Keeps a clock for each lease of the published snapshot: new leases
    /// start one, replaced ones drop theirs.
    pub(super) fn track_leases(&mut self) {
        for index in 0..self.plan.reads().len() {
            let lease = self
                .snapshot
                .found(index)
                .and_then(|f| f.secret.as_deref())
                .and_then(KvSecret::lease);
            let held = match lease {
                // A lease of no duration does not expire: nothing to renew.
                Some(lease) if lease.duration.is_zero() => self.leases.remove(&index),
                Some(lease) => {
                    let fresh = self
                        .leases
                        .get(&index)
                        .is_none_or(|c| c.lease.id != lease.id);
                    if !fresh {
                        continue;
                    }
                    // Held in the client's pool: the clock of a lease another
                    // watcher holds already is that watcher's.
                    let clock = self
                        .snapshot
                        .found(index)
                        .and_then(|found| self.pool.join(&self.plan.reads()[index], found))
                        .unwrap_or_else(|| LeaseClock::new(lease));
                    self.leases.insert(index, clock)
                }
                None => self.leases.remove(&index),
            };
            // Replaced: let go of it (revoked, if at all, after the grace).
            if let Some(old) = held {
                self.pool.release(&old.lease.id);
            }
        }
    }

    /// Keeps, for each static role of the published snapshot, when to read it
    /// again: a second after the rotation its answer announced.
    pub(super) fn track_rotations(&mut self) {
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

    pub(super) fn record_leases(&mut self) {
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

    /// The leases of the published snapshot that `candidate` no longer holds.
    pub(super) fn replaced_leases(&self, candidate: &Snapshot) -> Vec<String> {
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
}
