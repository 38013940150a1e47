//! Clocks of the watch task: [`Backoff`] (failures in a row of one kind of
//! work, and when it may run again), [`RotationClock`] (when to read a static
//! role again), and `after`, the saturating `now + d`. Uses `engines::lease`
//! (a rotation's announcement) and the options.

use std::time::{Duration, Instant};

use super::options::WatchOptions;
use crate::engines::lease::Rotation;

/// A static role's schedule: the rotation in force, when to read it again,
/// and how many reads in a row found that Vault's announced rotation had not
/// happened (the database refused Vault's `ALTER ROLE`, say).
pub(super) struct RotationClock {
    pub(super) due: Instant,
    pub(super) rotation: Rotation,
    /// Reads in a row past the announced rotation time that found none.
    pub(super) misses: u32,
    /// Since when Vault says the rotation is due (`ttl` 0) without doing it.
    pub(super) late_since: Option<Instant>,
    /// The overdue rotation was logged.
    pub(super) warned: bool,
}

/// How late a static role's rotation may be before health calls it overdue:
/// Vault's rotation queue runs every 5 s, so a rotation a few seconds late
/// is normal.
pub(super) const ROTATION_OVERDUE_AFTER: Duration = Duration::from_secs(10);

/// Failures in a row of one kind of work, and when it may run again.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    pub(super) failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    pub(super) fn ok(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    /// A failed poll: waits as `WatchOptions::delay` says.
    pub(super) fn fail(&mut self, options: &WatchOptions) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Instant::now().checked_add(options.delay(self.failures));
    }

    /// A failed renewal: waits as `WatchOptions::renewal_delay` says.
    pub(super) fn fail_renewal(&mut self, options: &WatchOptions) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = Instant::now().checked_add(options.renewal_delay(self.failures));
    }

    /// When work due at `due` may run.
    pub(super) fn ready_at(&self, due: Instant) -> Instant {
        self.not_before.map_or(due, |nb| nb.max(due))
    }
}

impl RotationClock {
    /// Due a second after the rotation `rotation` announces.
    pub(super) fn new(rotation: &Rotation) -> Self {
        RotationClock {
            due: after(rotation.ttl.saturating_add(Duration::from_secs(1))),
            rotation: rotation.clone(),
            misses: 0,
            late_since: None,
            warned: false,
        }
    }
}

/// `now + d`, or far in the future when that does not fit.
pub(super) fn after(d: Duration) -> Instant {
    after_from(Instant::now(), d)
}

pub(super) fn after_from(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_server_given_rotation_ttl_saturates() {
        let body = serde_json::json!({"data": {
            "ttl": u64::MAX, "rotation_period": u64::MAX,
            "last_vault_rotation": "2026-12-04T00:00:00Z",
        }});
        let rotation = Rotation::from_body(&body).unwrap();
        let clock = RotationClock::new(&rotation);
        assert!(clock.due > Instant::now());
    }
}
