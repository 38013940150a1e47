//! The KV secrets engine (v1 and v2): the [`VaultClient`] calls that read
//! secrets, versions and metadata, and the types they return.
//!
//! # Usage
//!
//! ```no_run
//! # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
//! use vault_config::ExposeSecret;
//! let secret = client.read("secret", "database").await?;          // current version
//! let pinned = client.read_version("secret", "database", 3).await?;
//! let meta = client.read_metadata("secret", "database").await?;   // cheap change check
//! println!("{:?} of {}", secret.version(), meta.current_version);
//! let url = secret.data().expose_secret().get("DATABASE_URL");
//! # let _ = (pinned, url); Ok(()) }
//! ```
//!
//! A [`SecretMap`] is reachable only through `ExposeSecret`, prints its key
//! names but never its values, and is zeroed when dropped.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use serde_json::{Map, Value};

pub(crate) use crate::base::check_segments;
pub use crate::base::KvVersion;
use crate::client::transport::{Repeat, Reply};
use crate::client::VaultClient;
use crate::engines::cache::{CacheKey, Cached};
use crate::engines::secret::malformed;
pub use crate::engines::secret::{KvSecret, SecretMap};
use crate::error::{Error, Result};

impl KvVersion {
    /// Parses the `data.options.version` of a `sys/internal/ui/mounts/<mount>` answer.
    pub(crate) fn from_mount_info(api_path: &str, body: &Value) -> Result<Self> {
        let data = body
            .get("data")
            .ok_or_else(|| malformed(api_path, "no `data` field"))?;
        if let Some(kind) = data.get("type").and_then(Value::as_str) {
            if kind != "kv" && kind != "generic" {
                return Err(malformed(
                    api_path,
                    format!("the mount is a `{kind}` engine, not a KV secrets engine"),
                ));
            }
        }
        let version = data
            .get("options")
            .and_then(|o| o.get("version"))
            .and_then(Value::as_str)
            .unwrap_or("1");
        match version {
            "2" => Ok(KvVersion::V2),
            "1" | "" => Ok(KvVersion::V1),
            other => Err(malformed(api_path, format!("unknown KV version `{other}`"))),
        }
    }
}

/// The metadata of a KV v2 secret: cheap to read, it tells whether the secret changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvMetadata {
    /// The newest version written.
    pub current_version: u64,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// When the secret was last written (RFC 3339, as Vault sent it).
    pub updated_time: Option<String>,
    /// When the current version was written (RFC 3339, as Vault sent it): with
    /// the version number, it tells a rebuilt Vault's version 1 from the old one.
    pub current_created_time: Option<String>,
    /// The current version was deleted (`kv delete`, or its
    /// `delete_version_after` passed) or destroyed (`kv destroy`): a read
    /// finds no secret until `kv undelete`, a rollback or a new write.
    pub current_deleted: bool,
    /// The current version was destroyed (`kv destroy`): its data is gone
    /// for good, `kv undelete` cannot bring it back.
    pub current_destroyed: bool,
    /// The newest version neither deleted nor destroyed (what a `kv
    /// rollback` can make current again), if any.
    pub newest_readable_version: Option<u64>,
}

impl KvMetadata {
    /// Parses the body of a KV v2 `metadata/` read.
    pub(crate) fn from_body(api_path: &str, body: &Value) -> Result<Self> {
        let data = body
            .get("data")
            .ok_or_else(|| malformed(api_path, "no `data` field"))?;
        let current_version = data
            .get("current_version")
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed(api_path, "no numeric `data.current_version`"))?;
        let versions = data.get("versions").and_then(Value::as_object);
        let current = versions.and_then(|v| v.get(&current_version.to_string()));
        let readable = |v: &Value| {
            !v.get("destroyed").and_then(Value::as_bool).unwrap_or(false) && !deletion_passed(v)
        };
        let newest_readable_version = versions.and_then(|all| {
            all.iter()
                .filter(|(_, v)| readable(v))
                .filter_map(|(n, _)| n.parse::<u64>().ok())
                .max()
        });
        let current_created_time = current
            .and_then(|v| v.get("created_time"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let destroyed = current
            .and_then(|v| v.get("destroyed"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let deleted = current.is_some_and(deletion_passed);
        Ok(KvMetadata {
            current_version,
            current_created_time,
            current_deleted: destroyed || deleted,
            current_destroyed: destroyed,
            newest_readable_version,
            oldest_version: data
                .get("oldest_version")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            updated_time: data
                .get("updated_time")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// Whether a version's deletion time has passed (one in the future is a
/// scheduled deletion, `delete_version_after`).
fn deletion_passed(version: &Value) -> bool {
    version
        .get("deletion_time")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .is_some_and(|t| unix_seconds(t).is_none_or(|at| at <= now_unix()))
}

impl VaultClient {
    /// The KV version of `mount`: as set on the builder, else looked up once
    /// (`sys/internal/ui/mounts/<mount>`) and remembered.
    pub async fn kv_version(&self, mount: &str) -> Result<KvVersion> {
        let cell = {
            let mut table = self
                .inner
                .kv_versions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            table.entry(mount.to_owned()).or_default().clone()
        };
        let version = cell
            .get_or_try_init(|| async {
                let api_path = format!("sys/internal/ui/mounts/{mount}");
                let reply = self.get(&api_path).await.map_err(|e| match e {
                    // Vault's preflight check: the token may do nothing under the
                    // mount, or there is no such mount.
                    Error::PermissionDenied { path, namespace } => Error::Vault {
                        status: 403,
                        path,
                        errors: vec![format!(
                            "cannot tell the KV version of mount `{mount}`{}: either no mount `{mount}` exists, or the token's policies grant nothing under `{mount}/`; grant read on the secrets' paths (a struct's `vault_policy_for(&client)` lists them), or declare the version with VaultClientBuilder::kv_version",
                            namespace.map(|n| format!(" in namespace `{n}`")).unwrap_or_default()
                        )],
                    },
                    other => other,
                })?;
                match reply {
                    Reply::Ok(body) => KvVersion::from_mount_info(&api_path, &body),
                    Reply::NotFound => Err(Error::NotFound {
                        mount: mount.to_owned(),
                        path: String::new(),
                        version: None,
                        namespace: self.inner.namespace.clone(),
                    }),
                }
            })
            .await?;
        Ok(*version)
    }

    /// Writes `data` as the secret at `path` on `mount`: a new version on KV
    /// v2 (returned), the secret replaced on KV v1. With `cas`, a KV v2 write
    /// succeeds only if the current version is still `cas` (0: the secret
    /// must not exist yet), so two writers never overwrite each other
    /// unknowingly; a conflict is an [`Error::Vault`] with status 400.
    ///
    /// Reads this client makes afterwards, through any node of a cluster,
    /// see the write (or a newer state).
    pub async fn write(
        &self,
        mount: &str,
        path: &str,
        data: &Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<Option<u64>> {
        check_path(mount, path)?;
        let kv = self.kv_version(mount).await?;
        let api_path = kv.data_path(mount, path);
        let body = match (kv, cas) {
            (KvVersion::V2, Some(cas)) => {
                serde_json::json!({"data": data, "options": {"cas": cas}})
            }
            (KvVersion::V2, None) => serde_json::json!({"data": data}),
            (KvVersion::V1, _) => Value::Object(data.clone()),
        };
        // A write repeated after a lost answer writes the same data again.
        let reply = self.send(&api_path, &[], Some(&body), Repeat::Safe).await?;
        self.kv_cache().clear();
        Ok(match reply {
            Reply::Ok(body) => body.pointer("/data/version").and_then(Value::as_u64),
            Reply::NotFound => None,
        })
    }

    /// Forgets a detected (not declared) KV version of `mount`.
    fn forget_kv_version(&self, mount: &str) {
        if self.inner.declared_kv_versions.contains(mount) {
            return;
        }
        self.inner
            .kv_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(mount);
    }

    /// Reads the current version of the secret at `path` on `mount`.
    pub async fn read(&self, mount: &str, path: &str) -> Result<KvSecret> {
        self.read_opt(mount, path, None)
            .await?
            .ok_or_else(|| self.not_found(mount, path, None))
    }

    /// Reads version `version` of the secret at `path` on a KV v2 `mount`.
    pub async fn read_version(&self, mount: &str, path: &str, version: u64) -> Result<KvSecret> {
        self.read_opt(mount, path, Some(version))
            .await?
            .ok_or_else(|| self.not_found(mount, path, Some(version)))
    }

    /// Reads the metadata of the secret at `path` on a KV v2 `mount`: the cheap
    /// way to learn whether it changed.
    pub async fn read_metadata(&self, mount: &str, path: &str) -> Result<KvMetadata> {
        check_path(mount, path)?;
        let api_path = format!("{mount}/metadata/{path}");
        match self.kv_version(mount).await? {
            KvVersion::V2 => {}
            KvVersion::V1 => {
                return Err(Error::Vault {
                    status: 400,
                    path: api_path,
                    errors: vec![format!(
                        "mount `{mount}` is KV version 1, which keeps no metadata"
                    )],
                })
            }
        }
        match self.get(&api_path).await? {
            Reply::Ok(body) => KvMetadata::from_body(&api_path, &body),
            Reply::NotFound => Err(self.not_found(mount, path, None)),
        }
    }

    /// A read that answers `Ok(None)` when nothing is at the path.
    pub(crate) async fn read_opt(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvSecret>> {
        check_path(mount, path)?;
        if !self.is_enabled() {
            return Err(self.disabled(&KvVersion::V2.data_path(mount, path)));
        }
        let kv = match self.known_kv_version(mount) {
            Some(kv) => kv,
            None => {
                // The mount's version is not known yet: read it as KV v2 (the
                // default engine) while the version is looked up, so a cold
                // load costs one round trip; a KV v1 mount pays one more.
                let (detected, speculative) = tokio::join!(
                    self.kv_version(mount),
                    self.read_as(KvVersion::V2, mount, path, version)
                );
                match detected? {
                    KvVersion::V2 => return speculative,
                    kv => kv,
                }
            }
        };
        self.read_as(kv, mount, path, version).await
    }

    /// A read of `path` on `mount`, taken to be KV version `kv`.
    async fn read_as(
        &self,
        kv: KvVersion,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvSecret>> {
        let api_path = kv.data_path(mount, path);
        if !self.is_enabled() {
            return Err(self.disabled(&api_path));
        }
        if let Some(v) = version {
            if kv == KvVersion::V1 {
                return Err(Error::Mapping {
                    mapping: format!("{path} (version {v})"),
                    reason: format!(
                        "mount `{mount}` is KV version 1, which has no versions to pin"
                    ),
                });
            }
        }
        let query: Vec<(&str, String)> = version
            .map(|v| ("version", v.to_string()))
            .into_iter()
            .collect();
        let started = Instant::now();
        let reply = self.get_query(&api_path, &query).await.inspect_err(|e| {
            // The mount moved or changed engine: detect its version anew next time.
            if matches!(
                e,
                Error::Vault {
                    status: 400 | 404,
                    ..
                }
            ) {
                self.forget_kv_version(mount);
            }
        })?;
        tracing::debug!(
            mount,
            path,
            version,
            found = matches!(reply, Reply::Ok(_)),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "vault kv read"
        );
        match reply {
            Reply::NotFound => Ok(None),
            Reply::Ok(body) => match kv {
                KvVersion::V2 => KvSecret::from_v2(mount, path, &api_path, body).map(Some),
                KvVersion::V1 => KvSecret::from_v1(mount, path, &api_path, body).map(Some),
            },
        }
    }

    /// [`read_opt`](Self::read_opt) through the client's cache.
    pub(crate) async fn read_cached(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Cached> {
        let key = CacheKey {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
        };
        if let Some(hit) = self.kv_cache().get(&key) {
            tracing::trace!(mount, path, version, "vault kv read served from cache");
            return Ok(hit);
        }
        let fresh = self.read_opt(mount, path, version).await?.map(Arc::new);
        self.kv_cache().put(key, fresh.clone());
        Ok(fresh)
    }

    /// Stores a read in the client's cache.
    pub(crate) fn cache_put(&self, mount: &str, path: &str, version: Option<u64>, value: Cached) {
        let key = CacheKey {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
        };
        self.kv_cache().put(key, value);
    }

    fn not_found(&self, mount: &str, path: &str, version: Option<u64>) -> Error {
        Error::NotFound {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
            namespace: self.inner.namespace.clone(),
        }
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time as Vault writes it
/// (`2026-11-23T08:32:47.844112077Z`, or with a `+hh:mm` offset).
fn unix_seconds(text: &str) -> Option<i64> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    // Bounds keep the arithmetic below from overflowing on any input.
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let mut c = clock.splitn(3, ':');
    let (h, min) = (num(c.next()?)?, num(c.next()?)?);
    let sec = num(c.next()?.split('.').next()?)?;
    if !(0..=23).contains(&h) || !(0..=59).contains(&min) || !(0..=60).contains(&sec) {
        return None;
    }
    let offset_secs = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let (oh, om) = offset[1..].split_once(':')?;
            let (oh, om) = (num(oh)?, num(om)?);
            if !(0..=23).contains(&oh) || !(0..=59).contains(&om) {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if offset.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => 0,
    };
    let days = crate::base::time::days_from_civil(y, m, day);
    Some(days * 86_400 + h * 3600 + min * 60 + sec - offset_secs)
}

/// An RFC 3339 time as (seconds since the epoch, nanoseconds), to order
/// versions by when they were written.
pub(crate) fn unix_nanos(text: &str) -> Option<(i64, u32)> {
    let secs = unix_seconds(text)?;
    let (_, time) = text.split_once('T')?;
    let frac = time
        .split_once('.')
        .map(|(_, f)| {
            f.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    Some((secs, digits.parse().ok()?))
}

impl KvSecret {
    /// True when this version was written before `other`'s (both KV v2, with
    /// times): what a lagging standby answers. A rebuilt Vault's version 1
    /// is newer than the old version 7, since it was written later.
    pub(crate) fn is_older_than(&self, other: &KvSecret) -> bool {
        stale(
            (self.version(), self.created_time()),
            (other.version(), other.created_time()),
        )
    }
}

/// Whether a KV v2 answer `(version, created_time)` comes from before the
/// one `held` (a node that lags): versions are compared within one path's
/// history, and a higher version is never stale, whatever the clocks (a
/// node whose clock is behind, a snapshot restore). Times only tell a
/// rebuilt history (metadata deleted: versions restart at 1, written
/// later) from a stale answer (an older version, written earlier).
pub(crate) fn stale(
    answer: (Option<u64>, Option<&str>),
    held: (Option<u64>, Option<&str>),
) -> bool {
    match (answer.0, held.0) {
        (Some(new), Some(old)) if new > old => false,
        _ => written_before(answer.1, held.1),
    }
}

/// True when RFC 3339 time `a` is before `b`; false when either is missing
/// or unreadable (a change is then judged by the version alone).
pub(crate) fn written_before(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(unix_nanos), b.and_then(unix_nanos)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

fn now_unix() -> i64 {
    i64::try_from(crate::base::unix_now()).unwrap_or(i64::MAX)
}

/// A path Vault would read as another one is refused before any request: an
/// empty, `.` or `..` segment (URL handling would drop or resolve it).
pub(crate) fn check_path(mount: &str, path: &str) -> Result<()> {
    check_segments("mount", mount, &format!("{mount}/{path}"))?;
    check_segments("path", path, &format!("{mount}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mount_info_versions() {
        let v2 = json!({"data": {"type": "kv", "options": {"version": "2"}, "path": "secret/"}});
        assert_eq!(KvVersion::from_mount_info("p", &v2).unwrap(), KvVersion::V2);
        let v1 = json!({"data": {"type": "kv", "options": null, "path": "kv1/"}});
        assert_eq!(KvVersion::from_mount_info("p", &v1).unwrap(), KvVersion::V1);
        let pki = json!({"data": {"type": "pki"}});
        assert!(KvVersion::from_mount_info("p", &pki).is_err());
    }

    #[test]
    fn metadata_current_version() {
        let body =
            json!({"data": {"current_version": 4, "oldest_version": 1, "updated_time": "t"}});
        let m = KvMetadata::from_body("secret/metadata/x", &body).unwrap();
        assert_eq!(m.current_version, 4);
        assert!(KvMetadata::from_body("p", &json!({"data": {}})).is_err());
    }

    #[test]
    fn rfc3339_times_and_deleted_versions() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-11-23T08:32:47.844112077Z"),
            Some(1_795_422_767)
        );
        assert_eq!(
            unix_seconds("2026-11-23T09:32:47+01:00"),
            Some(1_795_422_767)
        );
        assert_eq!(unix_seconds("yesterday"), None);
        assert_eq!(unix_seconds("9223372036854775807-01-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("2026-11-23T99:00:00Z"), None);
        let meta = |deletion: &str, destroyed: bool| {
            KvMetadata::from_body(
                "p",
                &json!({"data": {"current_version": 2, "versions": {
                    "2": {"created_time": "2026-01-01T00:00:00Z", "deletion_time": deletion, "destroyed": destroyed}}}}),
            )
            .unwrap()
            .current_deleted
        };
        assert!(!meta("", false));
        assert!(meta("2020-01-01T00:00:00Z", false), "deleted");
        assert!(!meta("2999-01-01T00:00:00Z", false), "scheduled, not yet");
        assert!(meta("", true), "destroyed");
        let m = KvMetadata::from_body(
            "p",
            &json!({"data": {"current_version": 4, "versions": {
                "1": {"deletion_time": "", "destroyed": false},
                "2": {"deletion_time": "", "destroyed": false},
                "3": {"deletion_time": "2020-01-01T00:00:00Z", "destroyed": false},
                "4": {"deletion_time": "", "destroyed": true}}}}),
        )
        .unwrap();
        assert!(m.current_deleted && m.current_destroyed);
        assert_eq!(m.newest_readable_version, Some(2));
    }

    #[test]
    fn versions_order_by_when_they_were_written() {
        assert_eq!(unix_nanos("1970-01-01T00:00:01.5Z"), Some((1, 500_000_000)));
        assert_eq!(unix_nanos("1970-01-01T00:00:01Z"), Some((1, 0)));
        let at = |v: u64, t: &str| {
            KvSecret::from_v2(
                "secret",
                "x",
                "secret/data/x",
                json!({"data": {"data": {}, "metadata": {"version": v, "created_time": t}}}),
            )
            .unwrap()
        };
        let v7 = at(7, "2026-11-23T08:00:00.100Z");
        let stale = at(6, "2026-11-23T07:59:59.900Z");
        let rebuilt = at(1, "2026-11-23T09:00:00Z");
        assert!(stale.is_older_than(&v7));
        assert!(
            !rebuilt.is_older_than(&v7),
            "a rebuilt Vault's version 1 is newer"
        );
        assert!(!v7.is_older_than(&v7));
    }
}
