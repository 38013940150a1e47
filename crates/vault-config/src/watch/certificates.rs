//! The TLS identities of a watcher: when to have a PKI role issue each of
//! its certificates again, and every identity's serial and expiry in health
//! and metrics.
//!
//! A certificate a PKI role issued (`#[vault(pki = "pki/issue/web", ...)]`)
//! is issued again once two thirds of its validity have passed, counted
//! from when the watcher received it (Vault backdates `notBefore` by 30 s,
//! which would make a short certificate look two thirds through at once).
//! A certificate from KV is replaced by whoever writes KV; the watcher only
//! shows its expiry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::base::unix_now;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::backoff::after;
use super::health::CertificateHealth;
use super::state::State;
use crate::load::plan::Read;
use crate::load::provider::VaultProvider;
use crate::tls::{leaf_info, IdentityInfo};

/// The soonest a certificate is issued again after the previous one: a
/// role whose certificates last a few seconds must not be asked in a loop.
const MIN_REISSUE_AFTER: Duration = Duration::from_secs(1);

/// When to issue one PKI certificate again.
#[derive(Debug, Clone)]
pub(super) struct Reissue {
    /// The serial of the certificate in force.
    pub(super) serial: String,
    /// When to issue again.
    pub(super) due: Instant,
    /// The same, in seconds since the Unix epoch (in case the machine
    /// slept: an `Instant` stands still meanwhile).
    pub(super) due_unix: u64,
    /// When the first attempt was due (two thirds of the way), in seconds
    /// since the Unix epoch: what health and metrics show, so that an
    /// overdue issue stands out however often it was tried.
    pub(super) planned_unix: u64,
    /// Attempts that failed in a row (not issued, or refused): each waits
    /// longer (1 s doubling, at most 30 s).
    pub(super) failures: u32,
    /// Why the last attempt failed, until one succeeds.
    pub(super) error: Option<String>,
    /// The certificate lasts far less than asked, or so little that it is
    /// issued again within seconds: said once, until that changes.
    pub(super) short: bool,
}

/// Why a certificate that lasts `remaining` (to be issued again after
/// `wait`) is shorter than `read` asked, if it is: the role's `max_ttl`,
/// or the issuer's own expiry (`leaf_not_after_behavior = "truncate"`),
/// caps what Vault issues without an error.
fn short_of(read: &Read, remaining: Duration, wait: Duration) -> Option<String> {
    let asked = match read {
        Read::Issued { request, .. } => request.requested_ttl(),
        _ => None,
    };
    match asked {
        Some(ttl) if remaining < ttl / 2 => Some(format!(
            "valid for {} s where {} s were asked (the role's max_ttl or the issuing CA's own expiry caps it)",
            remaining.as_secs(),
            ttl.as_secs()
        )),
        _ if wait <= MIN_REISSUE_AFTER => {
            Some(format!("valid for only {} s", remaining.as_secs()))
        }
        _ => None,
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// Keeps, for each certificate a PKI role issued for the published
    /// snapshot, when to issue it again: a new certificate starts a new
    /// clock.
    pub(super) fn track_reissues(&mut self) {
        for index in 0..self.plan.reads().len() {
            if !matches!(self.plan.reads()[index], Read::Issued { .. }) {
                continue;
            }
            let certificate = self
                .snapshot
                .found(index)
                .and_then(|f| f.secret.as_deref())
                .and_then(|s| s.get("certificate"))
                .and_then(Value::as_str)
                .and_then(leaf_info);
            let Some(certificate) = certificate else {
                if self.reissues.remove(&index).is_some() {
                    tracing::warn!(
                        read = %self.plan.reads()[index],
                        "vault-config watcher: the answer holds no certificate that can be read; it will not be issued again before it expires"
                    );
                }
                continue;
            };
            if self
                .reissues
                .get(&index)
                .is_some_and(|r| r.serial == certificate.serial)
            {
                continue;
            }
            let remaining = Duration::from_secs(certificate.not_after.saturating_sub(unix_now()));
            let wait = (remaining * 2 / 3).max(MIN_REISSUE_AFTER);
            let short = short_of(&self.plan.reads()[index], remaining, wait);
            let warned = self.reissues.get(&index).is_some_and(|r| r.short);
            if let (Some(why), false) = (&short, warned) {
                tracing::warn!(
                    read = %self.plan.reads()[index],
                    valid_for_s = remaining.as_secs(),
                    reissue_in_ms = wait.as_millis() as u64,
                    "vault-config watcher: the certificate issued is {why}; it will be issued again every {} s",
                    ceil_secs(wait)
                );
            }
            self.reissues.insert(
                index,
                Reissue {
                    serial: certificate.serial,
                    due: after(wait),
                    due_unix: unix_now().saturating_add(ceil_secs(wait)),
                    planned_unix: unix_now().saturating_add(ceil_secs(wait)),
                    failures: 0,
                    error: None,
                    short: short.is_some(),
                },
            );
        }
    }

    /// The PKI reads due for a new certificate at `now` (or by the wall
    /// clock, after a sleep).
    pub(super) fn reissues_due(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        let wall = unix_now();
        self.reissues
            .iter()
            .filter(move |(_, r)| r.is_due(now, wall))
            .map(|(i, _)| *i)
    }

    /// After an attempt at `issued`: those still due (not issued, or the
    /// certificate refused) back off, so a role that issues what cannot be
    /// used is not asked at every poll. `errors`: why each was not issued;
    /// `refused`: why the config with the new ones was not published.
    pub(super) fn reissues_failed(
        &mut self,
        issued: &[usize],
        errors: &[(usize, String)],
        refused: Option<&str>,
    ) {
        let (now, wall) = (Instant::now(), unix_now());
        for index in issued {
            let delay = match self.reissues.get(index) {
                Some(r) if r.is_due(now, wall) => {
                    self.options.renewal_delay(r.failures.saturating_add(1))
                }
                _ => continue,
            };
            let why = errors
                .iter()
                .find(|(i, _)| i == index)
                .map(|(_, e)| e.as_str())
                .or(refused)
                .unwrap_or("the new certificate was not put in force");
            let read = self.plan.reads()[*index].to_string();
            let error =
                format!("no new certificate from `{read}` yet (the one in force stays): {why}");
            let Some(r) = self.reissues.get_mut(index) else {
                continue;
            };
            r.failures = r.failures.saturating_add(1);
            r.due = after(delay);
            r.due_unix = wall.saturating_add(ceil_secs(delay));
            r.error = Some(error.clone());
            let (serial, failures) = (r.serial.clone(), r.failures);
            tracing::warn!(
                read = %read,
                failures,
                retry_in_ms = delay.as_millis() as u64,
                error = %why,
                "vault-config watcher: no new certificate in force yet; the one in force stays, trying again after a backoff"
            );
            self.update_health(|h| {
                for c in h.certificates.values_mut().filter(|c| c.serial == serial) {
                    c.reissue_failures = failures;
                    c.reissue_error = Some(error.clone());
                }
            });
        }
    }

    /// Why a certificate due is not issued yet, if one is not.
    pub(super) fn reissue_error(&self) -> Option<String> {
        self.reissues.values().find_map(|r| r.error.clone())
    }

    /// Puts the serial and expiry of every identity in `provider`'s values
    /// (each value shaped as one: a `certificate` and a `private_key`) in
    /// health, by field, and their expiries in metrics. Never key material.
    pub(super) fn record_certificates(&mut self, provider: &VaultProvider) {
        let mut certificates = BTreeMap::new();
        let mut in_force = Vec::new();
        for resolved in provider.resolved() {
            let Some(value) = provider.value_of(&resolved.key) else {
                continue;
            };
            let Some(info) = info_of(value) else {
                continue;
            };
            if let Some(text) = value.get("certificate").and_then(Value::as_str) {
                in_force.push(text.to_owned());
            }
            // Only PKI reads have a clock: one with this serial was issued.
            let reissue = self.reissues.values().find(|r| r.serial == info.serial);
            certificates.insert(
                self.field_of(&resolved.key),
                CertificateHealth {
                    serial: info.serial,
                    common_name: info.common_name,
                    not_before: info.not_before,
                    expires_at: info.not_after,
                    reissue_at: reissue.map(|r| r.planned_unix),
                    reissue_failures: reissue.map_or(0, |r| r.failures),
                    reissue_error: reissue.and_then(|r| r.error.clone()),
                },
            );
        }
        let shown: Vec<(&str, u64, Option<u64>)> = certificates
            .iter()
            .map(|(f, c)| (f.as_str(), c.expires_at, c.reissue_at))
            .collect();
        self.client.telemetry().certificates(&shown);
        self.certificates_in_force = in_force;
        self.update_health(|h| h.certificates = certificates);
    }
}

/// Whole seconds, rounded up: a wall-clock time never earlier than the `Instant`.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Reissue {
    fn is_due(&self, now: Instant, wall: u64) -> bool {
        // Strictly: `due_unix` is whole seconds, rounded up.
        self.due <= now || self.due_unix < wall
    }
}

/// The leaf certificate's facts of the identity `value` holds, when it is
/// shaped as one (a `certificate` and a `private_key`), expired or not.
fn info_of(value: &Value) -> Option<IdentityInfo> {
    let object = value.as_object()?;
    object.get("private_key").filter(|k| k.is_string())?;
    leaf_info(object.get("certificate")?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::CertificateRequest;

    fn issued(ttl: Option<u64>) -> Read {
        let request = CertificateRequest::new("web.internal");
        Read::Issued {
            path: "pki/issue/web".into(),
            request: match ttl {
                Some(t) => request.ttl(Duration::from_secs(t)),
                None => request,
            },
        }
    }

    #[test]
    fn a_certificate_far_shorter_than_asked_is_said_to_be() {
        let secs = Duration::from_secs;
        // 24 h asked, 1 h given: the role's max_ttl.
        let why = short_of(&issued(Some(86_400)), secs(3_600), secs(2_400));
        assert_eq!(
            why.as_deref(),
            Some("valid for 3600 s where 86400 s were asked (the role's max_ttl or the issuing CA's own expiry caps it)")
        );
        // What was asked, give or take the backdating: nothing to say.
        assert_eq!(
            short_of(&issued(Some(86_400)), secs(86_370), secs(57_580)),
            None
        );
        assert_eq!(short_of(&issued(None), secs(60), secs(40)), None);
        // Nothing asked, but issued again within a second or so.
        let why = short_of(&issued(None), secs(1), MIN_REISSUE_AFTER);
        assert_eq!(why.as_deref(), Some("valid for only 1 s"));
    }
}
