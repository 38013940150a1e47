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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::base::unix_now;

use serde::de::DeserializeOwned;
use serde_json::Value;

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
    /// The same, in seconds since the Unix epoch (for health).
    pub(super) due_unix: u64,
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
                self.reissues.remove(&index);
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
            self.reissues.insert(
                index,
                Reissue {
                    serial: certificate.serial,
                    due: Instant::now() + wait,
                    due_unix: unix(SystemTime::now() + wait),
                },
            );
        }
    }

    /// The PKI reads due for a new certificate at `now`.
    pub(super) fn reissues_due(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        self.reissues
            .iter()
            .filter(move |(_, r)| r.due <= now)
            .map(|(i, _)| *i)
    }

    /// Puts the serial and expiry of every identity in `provider`'s values
    /// (each value shaped as one: a `certificate` and a `private_key`) in
    /// health, by field, and their expiries in metrics. Never key material.
    pub(super) fn record_certificates(&mut self, provider: &VaultProvider) {
        let mut certificates = BTreeMap::new();
        for resolved in provider.resolved() {
            let Some(info) = provider.value_of(&resolved.key).and_then(info_of) else {
                continue;
            };
            let reissue_at = self
                .plan
                .reads()
                .iter()
                .enumerate()
                .filter(|(_, read)| matches!(read, Read::Issued { .. }))
                .filter_map(|(i, _)| self.reissues.get(&i))
                .find(|r| r.serial == info.serial)
                .map(|r| r.due_unix);
            certificates.insert(
                self.field_of(&resolved.key),
                CertificateHealth {
                    serial: info.serial,
                    common_name: info.common_name,
                    not_before: info.not_before,
                    expires_at: info.not_after,
                    reissue_at,
                },
            );
        }
        let expiries: Vec<(String, u64)> = certificates
            .iter()
            .map(|(field, c)| (field.clone(), c.expires_at))
            .collect();
        self.client.telemetry().certificate_expiries(&expiries);
        self.update_health(|h| h.certificates = certificates);
    }
}

/// The leaf certificate's facts of the identity `value` holds, when it is
/// shaped as one (a `certificate` and a `private_key`), expired or not.
fn info_of(value: &Value) -> Option<IdentityInfo> {
    let object = value.as_object()?;
    object.get("private_key").filter(|k| k.is_string())?;
    leaf_info(object.get("certificate")?.as_str()?)
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
