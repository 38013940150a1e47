//! Publishing: a candidate snapshot becomes a config, replaces the one in
//! force when it is valid, and goes out when a value changed; which
//! fields moved between sources.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::state::State;
use super::values::{prints, sources, Source};
use crate::error::Result;
use crate::load::extract;
use crate::load::snapshot::Snapshot;
use crate::telemetry::Count;

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// Extracts a config from `candidate`; on success it becomes the
    /// published snapshot (its replaced leases scheduled for revocation), and
    /// the config is published if any value changed, health first (so a
    /// woken subscriber sees it).
    pub(super) fn rebuild(
        &mut self,
        candidate: Snapshot,
        tx: &watch::Sender<Arc<T>>,
    ) -> Result<bool> {
        let provider = candidate.resolve(&self.plan, &self.client);
        // An identity in force that has expired since does not keep other
        // values (new credentials) from being published; a new one must be valid.
        let held = self.certificates_in_force.clone();
        let config = crate::tls::keeping(held, || {
            extract::<T>(self.described.as_ref(), &self.client, &provider)
        })?;
        let replaced = self.replaced_leases(&candidate);
        self.client
            .telemetry()
            .count(Count::LeaseReplacement, replaced.len() as u64);
        self.snapshot = candidate;
        self.bookkeep();
        self.record_certificates(&provider);
        // A grace too long for an `Instant` means never: the lease just expires.
        if let Some(at) = self
            .options
            .revoke_grace
            .and_then(|grace| Instant::now().checked_add(grace))
        {
            self.revocations
                .extend(replaced.into_iter().map(|id| (id, at)));
        }
        let new_sources = sources(&provider);
        self.report_moves(&new_sources);
        let new_prints = prints(&provider);
        let changed: Vec<String> = new_prints
            .iter()
            .filter(|(k, v)| self.prints.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                self.prints
                    .keys()
                    .filter(|k| !new_prints.contains_key(*k))
                    .cloned(),
            )
            .collect();
        if changed.is_empty() {
            return Ok(false);
        }
        let fields: Vec<String> = changed.iter().map(|k| self.field_of(k)).collect();
        tracing::info!(changed = %fields.join(", "), "vault-config watcher: configuration reloaded");
        self.prints = new_prints;
        self.mark_connected();
        self.client.telemetry().count(Count::Reload, 1);
        self.update_health(|h| {
            h.reloads += 1;
            h.last_changed = fields;
        });
        self.flush_health();
        tx.send_replace(Arc::new(config));
        Ok(true)
    }

    /// Says at WARN which fields move between Vault and env (a required key
    /// deleted while a stale variable is set, say), and puts each field's
    /// source in health.
    pub(super) fn report_moves(&mut self, new: &BTreeMap<String, Source>) {
        for (key, source) in new {
            let Some(old) = self.sources.get(key) else {
                continue;
            };
            if old.kind != source.kind {
                let field = self.field_of(key);
                tracing::warn!(
                    field = %field,
                    from = %old.shown,
                    to = %source.shown,
                    "vault-config watcher: a field's value now comes from elsewhere"
                );
            }
        }
        self.sources = new.clone();
        let shown = self.shown_sources();
        self.update_health(|h| h.sources = shown);
    }

    /// Each field's source, by field name, as health shows it.
    pub(super) fn shown_sources(&self) -> BTreeMap<String, String> {
        self.sources
            .iter()
            .map(|(key, source)| (self.field_of(key), source.shown.clone()))
            .collect()
    }

    /// The field name of configuration key `key` (the key itself for mappings).
    pub(super) fn field_of(&self, key: &str) -> String {
        match &self.described {
            Some(d) => d.field_of(key),
            None => key.to_owned(),
        }
    }

    /// Brings lease clocks and the versions and leases in `health()` up to the
    /// snapshot now published.
    pub(super) fn bookkeep(&mut self) {
        self.track_leases();
        self.track_rotations();
        self.track_reissues();
        self.record_leases();
        let versions = self.snapshot.versions(&self.plan);
        self.update_health(|h| h.versions = versions);
    }
}
