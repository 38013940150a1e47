//! What reads return: [`KvSecret`] (a KV secret, or leased credentials)
//! with its [`SecretMap`], and the [`Lease`] or [`Rotation`] that comes with
//! dynamic credentials; how Vault's answers parse into them.
//!
//! A leaf of the engines: the cache, the KV calls (`kv.rs`) and the lease
//! calls (`lease.rs`) use it; it uses only `base` and `error`. The public
//! paths are `vault_config::kv::{KvSecret, SecretMap}` and
//! `vault_config::lease::{Lease, Rotation}`.

use std::fmt;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretBox};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::base::zeroize_value;
use crate::error::{Error, Result};

/// The key/value pairs of one secret.
///
/// Only reachable through [`ExposeSecret`]; its `Debug` lists the key names,
/// never the values, and its memory is zeroed when dropped.
#[derive(Clone, Default)]
pub struct SecretMap(Map<String, Value>);

impl SecretMap {
    /// The value under `key`, if the secret has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The secret's key names.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// How many keys the secret has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the secret has no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serializes as the map it holds: for code that turns a whole secret into a
/// typed map. Only reachable through `ExposeSecret`.
impl serde::Serialize for SecretMap {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "[REDACTED]")))
            .finish()
    }
}

impl Zeroize for SecretMap {
    fn zeroize(&mut self) {
        self.0.values_mut().for_each(zeroize_value);
        self.0.clear();
    }
}

/// One secret read from a KV mount.
pub struct KvSecret {
    mount: String,
    path: String,
    version: Option<u64>,
    created_time: Option<String>,
    lease: Option<Lease>,
    rotation: Option<Rotation>,
    data: SecretBox<SecretMap>,
}

impl KvSecret {
    /// The mount it was read from.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Its path inside the mount.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The KV v2 version read (`None` on KV v1).
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// When the version read was written (KV v2, RFC 3339 as Vault sent it).
    pub fn created_time(&self) -> Option<&str> {
        self.created_time.as_deref()
    }

    /// The lease, for credentials read from a secrets engine that leases them.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Records the lease as renewed (a renewal's answer does not say which
    /// token made the lease: the lease keeps its own).
    pub(crate) fn set_lease(&mut self, mut lease: Lease) {
        if let Some(old) = self.lease.as_ref().filter(|old| old.id == lease.id) {
            lease.generation = old.generation;
        }
        self.lease = Some(lease);
    }

    /// The key/value pairs, behind `secrecy`.
    pub fn data(&self) -> &SecretBox<SecretMap> {
        &self.data
    }

    /// The value under `key`, exposed: handle with care.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.expose_secret().get(key)
    }

    /// Parses the body of a KV v2 `data/` read.
    pub(crate) fn from_v2(
        mount: &str,
        path: &str,
        api_path: &str,
        mut body: Value,
    ) -> Result<Self> {
        let outer = body
            .get_mut("data")
            .ok_or_else(|| malformed(api_path, "no `data` field"))?;
        let version = outer
            .get("metadata")
            .and_then(|m| m.get("version"))
            .and_then(Value::as_u64);
        let created_time = outer
            .get("metadata")
            .and_then(|m| m.get("created_time"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let inner = outer
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null);
        let map = match inner {
            Value::Object(map) => map,
            // A deleted (not destroyed) version answers `"data": null`.
            Value::Null => Map::new(),
            _ => return Err(malformed(api_path, "`data.data` is not an object")),
        };
        let mut secret = Self::new(mount, path, version, map);
        secret.created_time = created_time;
        Ok(secret)
    }

    /// Parses the body of a KV v1 read.
    pub(crate) fn from_v1(
        mount: &str,
        path: &str,
        api_path: &str,
        mut body: Value,
    ) -> Result<Self> {
        match body.get_mut("data").map(Value::take) {
            Some(Value::Object(map)) => Ok(Self::new(mount, path, None, map)),
            Some(_) => Err(malformed(api_path, "`data` is not an object")),
            None => Err(malformed(api_path, "no `data` field")),
        }
    }

    /// Parses leased credentials (`database/creds/<role>`).
    /// Parses leased credentials, or a static role's (no lease, but the
    /// time to its next rotation).
    /// `generation`: the client's token that made the lease.
    /// `asked`: when the read was sent.
    pub(crate) fn from_dynamic(
        api_path: &str,
        mut body: Value,
        generation: u64,
        asked: Instant,
    ) -> Result<Self> {
        let lease = Lease::from_body(api_path, &body).map(|mut l| {
            l.generation = generation;
            l.granted = asked;
            l
        });
        let rotation = Rotation::from_body(&body);
        let mut secret = Self::from_v1("", api_path, api_path, body.take())?;
        match (lease, rotation) {
            (Ok(lease), _) => secret.lease = Some(lease),
            (Err(_), Some(rotation)) => secret.rotation = Some(rotation),
            (Err(e), None) => return Err(e),
        }
        Ok(secret)
    }

    /// Parses a PKI `issue` answer: its `data` (certificate, key, CA chain,
    /// serial, expiration), with no lease (a role's `generate_lease` lease is
    /// not tracked: the certificate is issued again before it expires).
    pub(crate) fn from_issued(api_path: &str, body: Value) -> Result<Self> {
        Self::from_v1("", api_path, api_path, body)
    }

    /// For a static role's credentials (`database/static-creds/app`): when
    /// Vault rotates the password next.
    pub fn rotation(&self) -> Option<&Rotation> {
        self.rotation.as_ref()
    }

    fn new(mount: &str, path: &str, version: Option<u64>, map: Map<String, Value>) -> Self {
        KvSecret {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
            created_time: None,
            lease: None,
            rotation: None,
            data: SecretBox::new(Box::new(SecretMap(map))),
        }
    }
}

impl fmt::Debug for KvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvSecret")
            .field("mount", &self.mount)
            .field("path", &self.path)
            .field("version", &self.version)
            .field("lease", &self.lease)
            .field("keys", self.data.expose_secret())
            .finish()
    }
}

/// A lease on dynamic credentials. Its ID is not a secret; the credentials are.
/// Two leases are equal when their ID, duration, renewability and token are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Lease {
    /// The lease ID (`database/creds/app/abc...`).
    pub id: String,
    /// How long the lease lasts from when it was granted or renewed.
    pub duration: Duration,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Which of the client's tokens made it: the lease dies with that token.
    pub(crate) generation: u64,
    /// When it was asked for (read or renewed): Vault counts its duration
    /// from a moment between this and the answer, so clocks start here,
    /// never late by a round trip or a slow load.
    pub(crate) granted: Instant,
}

impl PartialEq for Lease {
    fn eq(&self, other: &Self) -> bool {
        // Not when it was asked for: the same lease, read twice, is equal.
        (&self.id, self.duration, self.renewable, self.generation)
            == (&other.id, other.duration, other.renewable, other.generation)
    }
}

impl Eq for Lease {}

impl Lease {
    /// Parses the `lease_id`, `lease_duration` and `renewable` of an answer.
    pub(crate) fn from_body(api_path: &str, body: &Value) -> Result<Self> {
        let id = body
            .get("lease_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                malformed(
                    api_path,
                    "no `lease_id`: this path does not lease credentials",
                )
            })?;
        Ok(Lease {
            id: id.to_owned(),
            duration: Duration::from_secs(
                body.get("lease_duration")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            ),
            renewable: body
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            generation: 0,
            granted: Instant::now(),
        })
    }
}

/// A static role's schedule (`database/static-creds/<role>`): the same
/// database user, its password rotated by Vault every `period`. Nothing to
/// renew; a watcher reads the credentials again once `ttl` has run out, and
/// at every poll (a forced `rotate-role` shows as a new `last_rotation`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// How long until the next rotation, from the read.
    pub ttl: Duration,
    /// The rotation period, if Vault said.
    pub period: Option<Duration>,
    /// When Vault last rotated the password (RFC 3339, as Vault sent it).
    pub last_rotation: Option<String>,
}

impl Rotation {
    /// The `data.ttl` / `rotation_period` / `last_vault_rotation` of a static
    /// role's answer; `None` for anything else.
    pub(crate) fn from_body(body: &Value) -> Option<Self> {
        let data = body.get("data")?;
        let last_rotation = data
            .get("last_vault_rotation")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ttl = data.get("ttl").and_then(Value::as_u64)?;
        let period = data
            .get("rotation_period")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        last_rotation.as_ref()?;
        Some(Rotation {
            ttl: Duration::from_secs(ttl),
            period,
            last_rotation,
        })
    }
}

pub(crate) fn malformed(api_path: &str, reason: impl Into<String>) -> Error {
    Error::Malformed {
        path: api_path.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_v2_data_and_version() {
        let body = json!({"data": {"data": {"port": 5432, "url": "postgres://u:p@h/db"},
            "metadata": {"version": 7, "destroyed": false}}});
        let s = KvSecret::from_v2("secret", "database", "secret/data/database", body).unwrap();
        assert_eq!(s.version(), Some(7));
        assert_eq!(s.get("port"), Some(&json!(5432)));
        let debug = format!("{s:?}");
        assert!(!debug.contains("postgres://"), "{debug}");
        assert!(debug.contains("\"url\": \"[REDACTED]\""), "{debug}");
    }

    #[test]
    fn v2_deleted_version_reads_as_empty() {
        let body = json!({"data": {"data": null, "metadata": {"version": 2}}});
        let s = KvSecret::from_v2("secret", "x", "secret/data/x", body).unwrap();
        assert!(s.data().expose_secret().is_empty());
    }

    #[test]
    fn v1_and_malformed_bodies() {
        let s = KvSecret::from_v1("kv", "a", "kv/a", json!({"data": {"k": "v"}})).unwrap();
        assert_eq!(s.version(), None);
        assert_eq!(s.get("k"), Some(&json!("v")));
        let e = KvSecret::from_v1("kv", "a", "kv/a", json!({"nope": 1})).unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }));
        let e = KvSecret::from_v2("kv", "a", "kv/data/a", json!({"data": {"data": "str"}}))
            .unwrap_err();
        assert!(e.to_string().contains("not an object"));
    }

    #[test]
    fn dynamic_credentials_carry_their_lease() {
        let body = json!({"lease_id": "database/creds/app/x1", "lease_duration": 3600, "renewable": true,
            "data": {"username": "v-app-1", "password": "pw"}});
        let s = KvSecret::from_dynamic("database/creds/app", body, 0, Instant::now()).unwrap();
        let lease = s.lease().unwrap();
        assert_eq!(
            (lease.id.as_str(), lease.duration.as_secs(), lease.renewable),
            ("database/creds/app/x1", 3600, true)
        );
        assert_eq!(s.get("username"), Some(&json!("v-app-1")));
        assert!(!format!("{s:?}").contains("\"pw\""));
        let kv = json!({"lease_id": "", "data": {"k": "v"}});
        assert!(
            KvSecret::from_dynamic("secret/x", kv, 0, Instant::now()).is_err(),
            "a KV path has no lease"
        );
    }

    #[test]
    fn zeroize_clears_nested_values() {
        let mut m = SecretMap(
            json!({"a": "s3cret", "b": {"c": ["x"]}})
                .as_object()
                .unwrap()
                .clone(),
        );
        m.zeroize();
        assert!(m.is_empty());
    }
}
