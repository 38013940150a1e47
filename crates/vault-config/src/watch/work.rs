//! The work of a poll or lease chore: which reads changed, reading them,
//! and adopting the candidate snapshot or holding it back.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::changes::changed_reads;
use super::hub::Need;
use super::state::{State, Work};
use crate::engines::kv::{KvSecret, KvVersion};
use crate::error::{Error, Result};
use crate::load::plan::Read;
use crate::load::snapshot::{Freshness, Snapshot};
use crate::telemetry::Count;

impl<T: DeserializeOwned + Send + Sync + 'static> State<T> {
    /// The work of a poll (which also checks the KV paths) or of a lease chore:
    /// each part runs whatever the others do, and the first error is returned
    /// once all ran.
    pub(super) async fn work(&mut self, tx: &watch::Sender<Arc<T>>, what: Work) -> Result<bool> {
        // Whether this work checks the KV paths (a poll) or not (a chore).
        let kv = what != Work::Chore;
        if !self.snapshot.is_from_vault() {
            // The config came from env (Vault was unavailable at start): read it all.
            let candidate =
                Snapshot::read_vault(&self.client, &self.plan, Freshness::Fresh).await?;
            let leases = candidate.leases();
            return self.adopt(candidate, leases, None, tx).await;
        }
        let mut first_error = None;
        let mut changed = Vec::new();
        // The KV v2 versions this poll reads, when it reads only such.
        let mut stamps = None;
        // Whether the KV changes are the rotation already held back.
        let mut seen_rejected = false;
        // An answer the hub shares must be newer than this watcher's
        // previous check of the KV paths; a refresh reads Vault now.
        let need = match what {
            Work::Refresh => Need::Now,
            _ => Need::After(self.checked_at),
        };
        // The data of a KV v2 path whose metadata moved must be newer than
        // that metadata (which may be another watcher's answer, asked
        // before this check began): else a rotation could be judged, and
        // held back, on older data.
        let moved_need = match what {
            Work::Refresh => Need::Now,
            _ => Need::After(Instant::now()),
        };
        if kv {
            self.checked_at = Instant::now();
            let (mut kv_changed, kv_error, denied) = changed_reads(
                &self.client,
                &self.plan,
                &self.snapshot,
                &self.by_data,
                &self.hub,
                need,
            )
            .await;
            self.poll_by_data(denied);
            if kv_error.is_none() && kv_changed.is_empty() {
                // Vault holds what the config in force was made from:
                // nothing is held back (a `kv undelete` of the version in
                // force, say).
                self.held_back = None;
            }
            if let Some((_, e)) = self
                .rejected
                .as_ref()
                .filter(|(stamps, _)| kv_error.is_none() && *stamps == kv_changed)
            {
                // Still why the config in force is not Vault's newest.
                Error::keep_first(&mut first_error, e.clone());
                kv_changed.clear();
                seen_rejected = true;
            }
            if kv_error.is_none()
                && !kv_changed.is_empty()
                && kv_changed.iter().all(|(_, stamp)| stamp.is_some())
            {
                stamps = Some(kv_changed.clone());
            }
            changed.extend(kv_changed.into_iter().map(|(index, _)| index));
            if let Some(e) = kv_error {
                Error::keep_first(&mut first_error, e);
            }
        }
        if kv
            && !self
                .plan
                .reads()
                .iter()
                .any(|r| matches!(r, Read::Kv { .. }))
        {
            // No KV path to check (certificates and leases only, renewed when
            // due): Vault's health endpoint (no token needed, so no policy)
            // says whether it is there, so health and `last_success` do not
            // claim it while it is down or sealed.
            match self.client.server_status().await {
                Ok(status) if status.sealed => Error::keep_first(
                    &mut first_error,
                    Error::Sealed {
                        addr: status.address,
                    },
                ),
                Ok(_) => {}
                Err(e) => Error::keep_first(&mut first_error, e),
            }
        }
        let kv_count = changed.len();
        let (mut rereads, lease_error) = self.renew_leases().await;
        // Static roles: at every poll (their answer is cheap and holds no
        // lease, and a forced `rotate-role` shows at once), and between polls
        // once their rotation time has come.
        let now = Instant::now();
        rereads.extend(
            self.rotations
                .iter()
                .filter(|(i, clock)| (kv || clock.due <= now) && !changed.contains(*i))
                .map(|(i, _)| *i),
        );
        // Certificates two thirds through: issued again (each on its own
        // backoff after a failure).
        let issued: Vec<usize> = self
            .reissues_due(now)
            .filter(|i| !changed.contains(i) && !rereads.contains(i))
            .collect();
        // Credentials read anew (a certificate not issued backs off on its
        // own clock, never pushing back lease work).
        let rereading = !rereads.is_empty();
        rereads.extend(issued.iter().copied());
        changed.extend(rereads);
        // Whether a due lease was neither renewed nor replaced: lease work
        // then backs off instead of running again at once.
        let mut lease_failed = lease_error.is_some();
        if let Some(e) = lease_error {
            Error::keep_first(&mut first_error, e);
        }
        self.revoke_due().await;
        let mut published = false;
        if changed.is_empty() {
            // Renewals moved lease expiries.
            self.record_leases();
        } else {
            let (client, hub) = (&self.client, &self.hub);
            // KV reads through the hub (shared with the client's other
            // watchers); leased ones each a lease of this watcher's.
            let by_metadata = |i: usize| {
                !self.by_data.contains(&i)
                    && self
                        .snapshot
                        .found(i)
                        .is_some_and(|f| f.kv == Some(KvVersion::V2))
            };
            let (pool, leases) = (&self.pool, &self.leases);
            let reads = changed.iter().map(|&i| {
                let read = &self.plan.reads()[i];
                let need = if by_metadata(i) { moved_need } else { need };
                let held = leases.get(&i).map(|clock| clock.lease.id.as_str());
                async move {
                    match held {
                        // New credentials, once for the client's watchers.
                        Some(old) => pool.replace(client, read, old).await,
                        None => hub.found(client, read, need).await,
                    }
                }
            });
            let results = join_all(reads).await;
            // Hold the new leases at once: another watcher that got them
            // too must not revoke them while this one decides.
            for (&index, result) in changed.iter().zip(&results) {
                if let Ok(found) = result {
                    self.pool.join(&self.plan.reads()[index], found);
                }
            }
            // Everything that changed; apart from it, the new credentials
            // and certificates; apart from those, the credentials alone: a
            // bad KV rotation must not keep leases from being replaced
            // before they expire, nor a refused certificate.
            let mut candidate = self.snapshot.clone();
            let mut leased_only = self.snapshot.clone();
            let mut credentials_only = self.snapshot.clone();
            let mut fresh_leases = Vec::new();
            // New credentials (a lease or a static role's password) read,
            // and new certificates issued.
            let (mut fresh_credentials, mut fresh_certificates) = (false, false);
            let mut issue_errors = Vec::new();
            for (position, (index, result)) in changed.into_iter().zip(results).enumerate() {
                let is_issue = issued.contains(&index);
                match result {
                    // A KV answer older than the version in force (a lagging
                    // node): left out, so nothing goes back in time.
                    Ok(found)
                        if matches!(
                            (found.secret.as_deref(), self.snapshot.found(index).and_then(|f| f.secret.as_deref())),
                            (Some(new), Some(held)) if new.is_older_than(held)
                        ) =>
                    {
                        stamps = None;
                        tracing::debug!(read = %self.plan.reads()[index], "vault-config watcher: an answer older than the version in force was left out");
                    }
                    Ok(found) => {
                        if let Some(lease) = found.secret.as_deref().and_then(KvSecret::lease) {
                            fresh_leases.push(lease.id.clone());
                        }
                        if position >= kv_count {
                            leased_only.replace(index, found.clone());
                            if is_issue {
                                fresh_certificates = true;
                            } else {
                                fresh_credentials = true;
                                credentials_only.replace(index, found.clone());
                            }
                        }
                        candidate.replace(index, found);
                    }
                    Err(e) => {
                        // A certificate not issued backs off on its own clock.
                        lease_failed |= position >= kv_count && !is_issue;
                        if is_issue {
                            issue_errors.push((index, e.to_string()));
                        }
                        if position < kv_count {
                            // Not every KV change was tried: none is rejected.
                            stamps = None;
                        }
                        Error::keep_first(&mut first_error, e);
                    }
                }
            }
            // A chore did not look at KV, or KV holds only the rotation
            // already held back: it stays held back.
            let still_held = if kv && !seen_rejected {
                None
            } else {
                self.held_back.clone()
            };
            // Each stage, and whether it holds the new certificates.
            let mut stages = vec![(candidate, true)];
            if kv_count > 0 && (fresh_credentials || fresh_certificates) {
                stages.push((leased_only, true));
            }
            if fresh_credentials && fresh_certificates {
                stages.push((credentials_only, false));
            }
            let last = stages.len() - 1;
            let mut refused: Option<String> = None;
            // Why the last stage with the new certificates was refused.
            let mut certificates_refused: Option<String> = None;
            for (stage, (snapshot, with_certificates)) in stages.into_iter().enumerate() {
                // The new leases are revoked only when no later stage may
                // still use them.
                let revoke = if stage == last {
                    fresh_leases.clone()
                } else {
                    Vec::new()
                };
                let held = match &refused {
                    None => still_held.clone(),
                    Some(why) => Some(why.clone()),
                };
                let result = self.adopt(snapshot, revoke, held, tx).await;
                if stage == 0 && kv_count > 0 {
                    self.rejected = match &result {
                        Ok(_) => None,
                        Err(e) => stamps.clone().map(|stamps| (stamps, e.clone())),
                    };
                }
                match result {
                    Ok(p) => {
                        published = p;
                        break;
                    }
                    Err(e) => {
                        refused.get_or_insert_with(|| e.to_string());
                        if with_certificates {
                            certificates_refused = Some(e.to_string());
                        }
                        Error::keep_first(&mut first_error, e);
                        if stage == last {
                            lease_failed |= rereading;
                        }
                    }
                }
            }
            // The certificates due and still not in force: tried again after
            // a backoff, not at every poll.
            self.reissues_failed(&issued, &issue_errors, certificates_refused.as_deref());
        }
        if lease_failed {
            self.lease_work.fail_renewal(&self.options);
        } else {
            self.lease_work.ok();
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(published),
        }
    }

    /// Makes a config from `candidate` and publishes it if any value changed,
    /// with `held_back` (a rotation left out of it) in health. A candidate
    /// that does not make a valid config is held back: the published snapshot
    /// stays, and `fresh_leases` (the candidate's own) are revoked at once,
    /// since nothing uses them.
    pub(super) async fn adopt(
        &mut self,
        candidate: Snapshot,
        fresh_leases: Vec<String>,
        held_back: Option<String>,
        tx: &watch::Sender<Arc<T>>,
    ) -> Result<bool> {
        let before = std::mem::replace(&mut self.held_back, held_back);
        match self.rebuild(candidate, tx) {
            Ok(published) => {
                if published {
                    // The rejection was against the config replaced now.
                    self.rejected = None;
                }
                Ok(published)
            }
            Err(e) => {
                drop(before);
                self.client.telemetry().count(Count::HeldBack, 1);
                tracing::warn!(error = %e, "vault-config watcher: the new values do not make a valid configuration; not published");
                self.held_back = Some(e.to_string());
                // Unless another watcher of the client holds them.
                self.pool.revoke(&self.client, fresh_leases).await;
                Err(e)
            }
        }
    }

    /// Reads `denied` (KV v2 reads whose metadata the policy denies) by
    /// their data from now on: warned once each, and listed in health.
    pub(super) fn poll_by_data(&mut self, denied: Vec<usize>) {
        if denied.is_empty() {
            return;
        }
        for index in denied {
            if self.by_data.insert(index) {
                let read = &self.plan.reads()[index];
                tracing::warn!(
                    read = %read,
                    "vault-config watcher: the token may read this secret but not its metadata; each poll reads its data instead (grant `read` on its `metadata/` path, as the generated policy does, to poll with one small read)"
                );
            }
        }
        let mut paths: Vec<String> = self
            .by_data
            .iter()
            .map(|&i| self.plan.reads()[i].to_string())
            .collect();
        paths.sort_unstable();
        self.update_health(|h| h.polled_by_data = paths);
    }
}
