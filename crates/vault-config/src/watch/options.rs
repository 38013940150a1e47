//! [`WatchOptions`]: how often a watcher polls, how it spreads and backs
//! off its waits, and what it does with leases it replaces. Pure data and
//! arithmetic: uses only `base` (random jitter).

use std::time::Duration;

use crate::base::random_fraction;

/// How a [`Watcher`](super::Watcher) polls.
///
/// ```
/// use std::time::Duration;
/// use vault_config::WatchOptions;
/// let options = WatchOptions::default().interval(Duration::from_secs(5));
/// assert_eq!(options.effective_max_backoff(), Duration::from_secs(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    pub(super) interval: Duration,
    pub(super) jitter: f64,
    pub(super) max_backoff: Option<Duration>,
    pub(super) revoke_grace: Option<Duration>,
    pub(super) revoke_on_shutdown: bool,
    pub(super) lease_lead: Option<Duration>,
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

    /// Revoke the leases the watcher holds when it is [shut down](super::Watcher::shutdown)
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
    pub(super) fn delay(&self, failures: u32) -> Duration {
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
    pub(super) fn renewal_delay(&self, failures: u32) -> Duration {
        let spread = 1.0 + random_fraction() * self.jitter;
        Duration::from_secs(1)
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(Duration::from_secs(30))
            .min(self.effective_max_backoff())
            .mul_f64(spread)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

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
