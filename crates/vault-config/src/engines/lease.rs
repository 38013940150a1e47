//! Leased credentials: the [`Lease`] a secrets engine grants with dynamic
//! credentials (`database/creds/app`), the client calls that read, renew and
//! revoke them, and the clock a watcher keeps for each lease.

use std::time::{Duration, Instant};

use crate::base::check_segments;
use crate::client::transport::{Repeat, Reply};
use crate::client::VaultClient;
use crate::engines::secret::KvSecret;
pub use crate::engines::secret::{Lease, Rotation};
use crate::error::{Error, Result};

impl VaultClient {
    /// Reads credentials from a secrets engine that leases them, e.g.
    /// `database/creds/app`. Each call is a new lease; nothing renews it unless a
    /// [`Watcher`](crate::Watcher) holds it. A static role's credentials
    /// (`database/static-creds/app`) come with no lease but a
    /// [`Rotation`](KvSecret::rotation).
    pub async fn read_dynamic(&self, path: &str) -> Result<KvSecret> {
        let api_path = path.trim_matches('/').to_owned();
        check_segments("path", &api_path, &api_path)?;
        let started = Instant::now();
        // Each read is a new lease: never repeated once it may have reached Vault.
        let (reply, generation) = self.send_as(&api_path, &[], None, Repeat::Unsafe).await?;
        tracing::debug!(
            path = %api_path,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "vault dynamic read"
        );
        match reply {
            Reply::Ok(body) => KvSecret::from_dynamic(&api_path, body, generation, started),
            Reply::NotFound => Err(Error::Vault {
                status: 404,
                path: api_path,
                errors: vec!["no secrets engine role answers at this path".to_owned()],
            }),
        }
    }

    /// Renews lease `lease_id` by `increment`; returns the lease as renewed.
    pub async fn renew_lease(&self, lease_id: &str, increment: Duration) -> Result<Lease> {
        // The lease in the URL (not the body), so a policy can scope renewal to
        // `sys/leases/renew/<path>/*`.
        check_lease_id(lease_id)?;
        let api_path = format!("sys/leases/renew/{lease_id}");
        let body = serde_json::json!({"increment": increment.as_secs()});
        let asked = Instant::now();
        match self.send(&api_path, &[], Some(&body), Repeat::Safe).await? {
            Reply::Ok(body) => Lease::from_body("sys/leases/renew", &body).map(|mut l| {
                l.granted = asked;
                l
            }),
            Reply::NotFound => Err(Error::Vault {
                status: 404,
                path: "sys/leases/renew".to_owned(),
                errors: vec!["the lease does not exist (expired or revoked)".to_owned()],
            }),
        }
    }

    /// Revokes lease `lease_id` now (the credentials stop working).
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        check_lease_id(lease_id)?;
        let api_path = format!("sys/leases/revoke/{lease_id}");
        self.send(&api_path, &[], Some(&serde_json::json!({})), Repeat::Safe)
            .await
            .map(|_| ())
    }
}

/// A lease ID fit for a URL path; the error never repeats the ID.
fn check_lease_id(lease_id: &str) -> Result<()> {
    check_segments("lease ID", lease_id, "a lease ID").map_err(|_| Error::Mapping {
        mapping: "a lease ID".to_owned(),
        reason: "the lease ID is empty or has an empty, `.` or `..` segment".to_owned(),
    })
}

impl VaultClient {
    /// Revokes `ids` (leases nothing will use: a load that failed after
    /// reading them), best effort and bounded in time; failures are logged
    /// and the leases expire on their own.
    pub(crate) async fn revoke_unused(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let revokes = ids.iter().map(|id| self.revoke_lease(id));
        match tokio::time::timeout(
            REVOKE_UNUSED_WITHIN,
            futures_util::future::join_all(revokes),
        )
        .await
        {
            Ok(results) => {
                let revoked = results.iter().filter(|r| r.is_ok()).count() as u64;
                self.telemetry()
                    .count(crate::telemetry::Count::LeaseRevocation, revoked);
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::warn!(error = %e, "vault-config: revoking unused credentials failed; they will expire");
                }
            }
            Err(_) => tracing::warn!(
                leases = ids.len(),
                "vault-config: revoking unused credentials took too long; they will expire"
            ),
        }
    }
}

/// How long a failed load spends revoking the leases it read.
const REVOKE_UNUSED_WITHIN: Duration = Duration::from_secs(10);

/// A lease and when it was granted or last renewed.
pub(crate) struct LeaseClock {
    pub(crate) lease: Lease,
    pub(crate) since: Instant,
    /// The duration the first grant gave: a renewal giving less has met the max TTL.
    pub(crate) first: Duration,
    pub(crate) renewals: u64,
}

impl LeaseClock {
    pub(crate) fn new(lease: &Lease) -> Self {
        LeaseClock {
            lease: lease.clone(),
            since: lease.granted,
            first: lease.duration,
            renewals: 0,
        }
    }

    /// When to act: a lease that can be extended is renewed two thirds
    /// into it; one that cannot is replaced `lead` before it expires (unset:
    /// a third of its first duration, or `grace` and a second when longer),
    /// at most half its first duration before, so that a short lease is not
    /// replaced over and over.
    pub(crate) fn due_in(&self, lead: Option<Duration>, grace: Option<Duration>) -> Duration {
        if self.capped() {
            let lead = lead
                .unwrap_or_else(|| {
                    let after_grace =
                        grace.map_or(Duration::ZERO, |g| g.saturating_add(Duration::from_secs(1)));
                    (self.first / 3).max(after_grace)
                })
                .min(self.first / 2);
            self.remaining().saturating_sub(lead)
        } else {
            self.lease
                .duration
                .mul_f64(2.0 / 3.0)
                .saturating_sub(self.since.elapsed())
        }
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.lease.duration.saturating_sub(self.since.elapsed())
    }

    /// Renewing again would not extend it: not renewable, or the max TTL cut the last renewal.
    pub(crate) fn capped(&self) -> bool {
        !self.lease.renewable || self.lease.duration < self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(secs: u64, renewable: bool, first: u64) -> LeaseClock {
        let lease = Lease {
            id: "database/creds/app/x".to_owned(),
            duration: Duration::from_secs(secs),
            renewable,
            generation: 0,
            granted: Instant::now(),
        };
        let mut clock = LeaseClock::new(&lease);
        clock.first = Duration::from_secs(first);
        clock
    }

    #[test]
    fn leases_that_cannot_be_extended_are_replaced_with_lead_time() {
        let s = Duration::from_secs;
        // Renewable, not capped: renewed two thirds in.
        assert!(clock(30, true, 30).due_in(None, None) > s(19));
        // At the max TTL (15 s left of a 45 s lease): by default a third of
        // the first duration ahead, so due now; the old one has 15 s left.
        assert!(clock(15, true, 45).due_in(None, None).is_zero());
        // Not renewable, 60 s: replaced 20 s before it ends.
        let due = clock(60, false, 60).due_in(None, None);
        assert!(due > s(39) && due <= s(40), "{due:?}");
        // A grace of 25 s: the old lease outlives it (26 s ahead).
        let due = clock(60, false, 60).due_in(None, Some(s(25)));
        assert!(due > s(33) && due <= s(34), "{due:?}");
        // Asked for, but never more than half the lease: no replacement loop.
        let due = clock(60, false, 60).due_in(Some(s(600)), None);
        assert!(due > s(29) && due <= s(30), "{due:?}");
        // A huge server-given duration saturates.
        let _ = clock(u64::MAX, false, u64::MAX).due_in(None, Some(Duration::MAX));
    }
}
