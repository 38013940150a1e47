//! How failed requests are retried: the [`RetryPolicy`] and its jittered
//! backoff, and which errors a write rides out (a cluster failover).
//!
//! A leaf of the transport: it uses only `base` (jitter) and `error`.

use std::time::Duration;

use crate::base::random_fraction;
use crate::error::Error;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            first_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): doubling, capped at 5 s,
    /// with up to a quarter of jitter so a fleet does not retry in lockstep.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(Duration::from_secs(5));
        base + base.mul_f64(random_fraction() / 4.0)
    }
}

/// Whether `e` is what a failover looks like (a node down, sealed, without a
/// leader, a proxy without a backend), worth riding out for a write.
pub(super) fn error_is_failover(e: &Error) -> bool {
    e.is_unavailable()
        || match e {
            Error::Vault { status, errors, .. } => {
                *status == 307
                    || (*status >= 500 && {
                        let text = errors.join(" ").to_ascii_lowercase();
                        text.contains("node not active")
                            || text.contains("active cluster node not found")
                            || text.contains("no active")
                    })
            }
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 9,
            first_backoff: Duration::from_millis(100),
        };
        assert!(
            p.backoff(1) >= Duration::from_millis(100) && p.backoff(1) < Duration::from_millis(126)
        );
        assert!(p.backoff(3) >= Duration::from_millis(400));
        assert!(p.backoff(30) <= Duration::from_millis(6250));
    }
}
