//! Change detection: which reads of a plan must be read again, from the
//! KV v2 metadata of each path (KV v1 paths are always re-read), read
//! through the client's watch hub.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::hub::{Need, Subscription};
use crate::client::VaultClient;
use crate::engines::kv::{stale, KvVersion};
use crate::error::Error;
use crate::load::plan::{Plan, Read};
use crate::load::snapshot::Snapshot;

/// The reads whose data must be read again, and the first error met: KV v2
/// paths whose current version differs from the one published (number and
/// creation time, in either direction: a rebuilt Vault starts over at 1, and
/// its version 1 is not the old one; a deleted or destroyed current version
/// counts as no secret, as a fresh read finds it), and every KV v1 path (no
/// metadata to ask). Pinned versions never change; leases are the renewal's
/// business. One path's error does not stop the others' checks.
///
/// A path in `by_data` (its metadata is denied) is read as a KV v1 path is;
/// a path whose metadata read is denied now is read too, and returned in the
/// last list.
///
/// Metadata comes through the client's watch hub (`hub`), shared with the
/// client's other watchers as fresh as `need` says.
pub(super) async fn changed_reads(
    client: &VaultClient,
    plan: &Plan,
    snapshot: &Snapshot,
    by_data: &BTreeSet<usize>,
    hub: &Subscription,
    need: Need,
) -> (Changes, Option<Error>, Vec<usize>) {
    let checks = plan
        .reads()
        .iter()
        .enumerate()
        .map(|(index, read)| async move {
            // Leases and static roles are the credentials' business (`work`).
            let Read::Kv {
                mount,
                path,
                version: None,
            } = read
            else {
                return Ok(None);
            };
            let Some(found) = snapshot.found(index) else {
                return Ok(None);
            };
            match found.kv {
                Some(KvVersion::V1) | None => Ok(Some((index, None))),
                Some(KvVersion::V2) if by_data.contains(&index) => Ok(Some((index, None))),
                Some(KvVersion::V2) => {
                    let current = match hub.metadata(client, mount, path, need).await {
                        Ok(meta) if meta.current_deleted => None,
                        // Written before the version in force: a node that lags (a
                        // standby). Never go back in time.
                        Ok(meta)
                            if found.secret.as_deref().is_some_and(|held| {
                                stale(
                                    (
                                        Some(meta.current_version),
                                        meta.current_created_time.as_deref(),
                                    ),
                                    (held.version(), held.created_time()),
                                )
                            }) =>
                        {
                            return Ok(None)
                        }
                        Ok(meta) => Some((meta.current_version, meta.current_created_time)),
                        Err(Error::NotFound { .. }) => None,
                        // A policy that grants the data alone: read the data.
                        Err(Error::PermissionDenied { .. }) => return Err(Denied(index)),
                        Err(e) => return Err(Failed(e)),
                    };
                    let seen = found
                        .secret
                        .as_deref()
                        .and_then(|s| Some((s.version()?, s.created_time().map(str::to_owned))));
                    Ok(match current {
                        Some(stamp) if Some(&stamp) != seen.as_ref() => Some((index, Some(stamp))),
                        Some(_) => None,
                        // Deleted since: read, to find out what is there.
                        None => seen.is_some().then_some((index, None)),
                    })
                }
            }
        });
    let mut changed = Vec::new();
    let mut error: Option<Error> = None;
    let mut denied = Vec::new();
    for result in join_all(checks).await {
        match result {
            Ok(Some(change)) => changed.push(change),
            Ok(None) => {}
            Err(Denied(index)) => {
                denied.push(index);
                changed.push((index, None));
            }
            Err(Failed(e)) => Error::keep_first(&mut error, e),
        }
    }
    (changed, error, denied)
}

/// Why a path's check did not tell whether it changed.
enum CheckFailed {
    /// Its metadata may not be read: read its data instead.
    Denied(usize),
    Failed(Error),
}
use CheckFailed::{Denied, Failed};

/// A KV v2 secret's version and when it was written, as its metadata tells.
pub(super) type Stamp = (u64, Option<String>);

/// The reads a poll found changed: KV v2 ones with the version Vault shows.
pub(super) type Changes = Vec<(usize, Option<Stamp>)>;
