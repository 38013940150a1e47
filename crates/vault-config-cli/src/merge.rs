//! Keys of one KV secret changed in place, the others kept: read, change,
//! write check-and-set against the version read on KV v2 (read again and
//! retried on a conflict), then read back and verified. Shared by `rotate`
//! (one key) and `import` (the keys of a file). Uses the library's KV calls
//! (`read`, `read_version`, `read_metadata`, `write`) and `read::explain`;
//! holds no command line.

use std::time::Duration;

use serde_json::{Map, Value};
use vault_config::kv::{KvSecret, KvVersion};
use vault_config::{Error, ExposeSecret, VaultClient};
use zeroize::Zeroize;

use crate::exit::{Failure, Kind, Result, LOG};
use crate::read;

/// What a path with no secret means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// An error saying how to create it (`rotate`: a typo must not create a
    /// secret with one key).
    Refuse,
    /// Start from no keys (`import`: the file is the secret's first version).
    Create,
}

/// One secret to change, and how.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub client: &'a VaultClient,
    pub mount: &'a str,
    pub path: &'a str,
    pub kv: KvVersion,
    /// How many times to retry a check-and-set conflict.
    pub cas_retries: u32,
    pub absent: Absent,
    /// The command, for messages (`rotate`, `import`).
    pub verb: &'static str,
    /// A key the secret should have, for the `bao kv put` a message suggests.
    pub hint_key: &'a str,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The version read (None on KV v1; 0 on KV v2 for no secret yet).
    pub old: Option<u64>,
    /// The version written, or the one read when nothing was written (None on KV v1).
    pub new: Option<u64>,
    /// Whether a write was made.
    pub wrote: bool,
}

impl Changed {
    /// `version 4 -> 5`, or `KV v1, unversioned`.
    pub fn versions(&self) -> String {
        match (self.old, self.new) {
            (Some(old), Some(new)) => format!("version {old} -> {new}"),
            _ => "KV v1, unversioned".to_owned(),
        }
    }
}

/// Reads the secret, lets `change` edit its keys (it returns whether it
/// changed any, or a failure that stops everything), and writes them back
/// unless nothing changed: check-and-set against the version read on KV v2,
/// where `change` runs again on what a conflicting writer left. Nothing is
/// verified here: see [`verify`].
pub async fn change<F>(t: &Target<'_>, mut change: F) -> Result<Changed>
where
    F: FnMut(&mut Map<String, Value>) -> Result<bool>,
{
    let mut wait = Duration::from_millis(20);
    for attempt in 0..=t.cas_retries {
        let (version, mut data) = current(t).await?;
        let changed = change(&mut data);
        let changed = match changed {
            Ok(changed) => changed,
            Err(failure) => {
                wipe(data);
                return Err(failure);
            }
        };
        if !changed {
            wipe(data);
            return Ok(Changed {
                old: version,
                new: version,
                wrote: false,
            });
        }
        let cas = match t.kv {
            KvVersion::V2 => Some(version.unwrap_or(0)),
            KvVersion::V1 => {
                tracing::warn!(
                    target: LOG,
                    "{} is KV version 1, which has no check-and-set: a write to {} made at the same time by someone else may be lost",
                    t.mount, t.path
                );
                None
            }
        };
        let written = t.client.write(t.mount, t.path, &data, cas).await;
        wipe(data);
        match written {
            Ok(new) => {
                return Ok(Changed {
                    old: version,
                    new: new.filter(|_| t.kv == KvVersion::V2),
                    wrote: true,
                })
            }
            Err(e) if is_cas_conflict(&e) && attempt < t.cas_retries => {
                tracing::info!(
                    target: LOG,
                    attempt = attempt + 1,
                    "vault-config {}: {}/{} changed since it was read; reading it again",
                    t.verb, t.mount, t.path
                );
                tokio::time::sleep(wait + jitter(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(e) if is_cas_conflict(&e) => {
                return Err(Failure::new(
                    Kind::Other,
                    format!(
                        "{}/{} kept changing under {} attempts (check-and-set conflicts); try again, or raise --cas-retries",
                        t.mount,
                        t.path,
                        t.cas_retries + 1
                    ),
                ))
            }
            Err(e) => return Err(read::explain(t.client, e).await),
        }
    }
    Err(Failure::new(Kind::Other, "no attempt was made"))
}

/// The version read and the secret's keys; for a path with no secret,
/// version 0 and no keys ([`Absent::Create`]) or an error saying why.
async fn current(t: &Target<'_>) -> Result<(Option<u64>, Map<String, Value>)> {
    match t.client.read(t.mount, t.path).await {
        Ok(secret) => {
            let version = secret.version();
            Ok((version, data_of(&secret)?))
        }
        Err(Error::NotFound { .. }) => {
            let failure = missing(t).await;
            match (t.absent, failure) {
                (Absent::Create, None) => Ok((
                    match t.kv {
                        KvVersion::V2 => Some(0),
                        KvVersion::V1 => None,
                    },
                    Map::new(),
                )),
                (_, Some(failure)) => Err(failure),
                (Absent::Refuse, None) => Err(Failure::new(
                    Kind::NotFound,
                    format!(
                        "no secret at {}/{} to {} a key of; create it first (bao kv put -mount={} {} {}=...)",
                        t.mount, t.path, t.verb, t.mount, t.path, t.hint_key
                    ),
                )),
            }
        }
        Err(e) => Err(read::explain(t.client, e).await),
    }
}

/// The secret's keys as a JSON object to write back.
fn data_of(secret: &KvSecret) -> Result<Map<String, Value>> {
    match serde_json::to_value(secret.data().expose_secret()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Failure::new(Kind::Other, "the secret is not a map of keys")),
    }
}

/// Zeroes the strings of `data`.
pub fn wipe(mut data: Map<String, Value>) {
    for v in data.values_mut() {
        if let Value::String(s) = v {
            s.zeroize();
        }
    }
}

/// Why a path that reads as not found must not be written as a new secret:
/// its current version is deleted or destroyed (a write would drop the keys
/// `undelete` or `rollback` bring back). None when it never existed (or
/// its metadata cannot be read).
async fn missing(t: &Target<'_>) -> Option<Failure> {
    let (mount, path) = (t.mount, t.path);
    let meta = match t.kv {
        KvVersion::V2 => t.client.read_metadata(mount, path).await.ok(),
        KvVersion::V1 => None,
    };
    let meta = meta.filter(|m| m.current_deleted)?;
    let n = meta.current_version;
    let what = if meta.current_destroyed {
        format!(
            "version {n} of {mount}/{path}, its current version, was destroyed (its keys are gone)"
        )
    } else {
        format!("version {n} of {mount}/{path}, its current version, is deleted")
    };
    let mut fixes = Vec::new();
    if !meta.current_destroyed {
        fixes.push(format!(
            "bring it back with `bao kv undelete -mount={mount} -versions={n} {path}`"
        ));
    }
    if let Some(r) = meta.newest_readable_version.filter(|r| *r != n) {
        fixes.push(format!(
            "make version {r} current again with `bao kv rollback -mount={mount} -version={r} {path}`"
        ));
    }
    let todo = if fixes.is_empty() {
        format!(
            "no version of it is readable: write every key it needs anew (bao kv put -mount={mount} {path} {}=... OTHER=...)",
            t.hint_key
        )
    } else {
        format!(
            "{}; then {} again: like `bao kv patch -mount={mount} {path} {}=...`, it keeps the other keys (`bao kv put` would drop them)",
            fixes.join(", or "),
            t.verb,
            t.hint_key
        )
    };
    let done = match t.verb {
        "rotate" => "rotated",
        "import" => "imported",
        _ => "written",
    };
    Some(Failure::new(
        Kind::NotFound,
        format!("nothing {done}: {what}; {todo}"),
    ))
}

/// Reads `version` back (the current one on KV v1): each key of `expected`
/// must hold its value.
pub async fn verify(t: &Target<'_>, expected: &[(&str, &str)], version: Option<u64>) -> Result<()> {
    let read = match version {
        Some(v) => t.client.read_version(t.mount, t.path, v).await,
        None => t.client.read(t.mount, t.path).await,
    };
    let secret = match read {
        Ok(secret) => secret,
        Err(e) => return Err(read::explain(t.client, e).await),
    };
    let wrong: Vec<&str> = expected
        .iter()
        .filter(|(key, value)| secret.get(key).and_then(Value::as_str) != Some(*value))
        .map(|(key, _)| *key)
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Other,
        format!(
            "verification failed: {}/{} does not hold the value just written for {}{}; check who else writes it",
            t.mount,
            t.path,
            wrong.join(", "),
            version.map(|v| format!(" at version {v}")).unwrap_or_default()
        ),
    ))
}

/// Whether `e` is KV v2 refusing a check-and-set write.
fn is_cas_conflict(e: &Error) -> bool {
    matches!(e, Error::Vault { status: 400, errors, .. }
        if errors.iter().any(|m| m.contains("check-and-set")))
}

/// Up to `max` more, at random: writers that collided do not collide again in step.
fn jitter(max: Duration) -> Duration {
    let mut byte = [0u8; 1];
    if getrandom::getrandom(&mut byte).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(byte[0]) / 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cas_conflict_is_recognised() {
        let e = Error::Vault {
            status: 400,
            path: "secret/data/app".into(),
            errors: vec!["check-and-set parameter did not match the current version".into()],
        };
        assert!(is_cas_conflict(&e));
    }
}
