//! What a person checks first about a Vault: the server's seal and HA state
//! ([`VaultClient::server_status`]), the client's token
//! ([`VaultClient::token_info`], never the token itself) and what that token
//! may do on a path ([`VaultClient::capabilities`]), and the secrets engines
//! it may use ([`VaultClient::mounts`]). The `vault-config status` command
//! is built on these.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::base::KvVersion;
use crate::client::transport::{Repeat, Reply};
use crate::client::VaultClient;
use crate::engines::secret::malformed;
use crate::error::{Error, Result};

/// A Vault server's `sys/health`: whether it is initialized, sealed, a standby.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStatus {
    /// The address that answered.
    pub address: String,
    /// Whether the server was initialized (`operator init`).
    pub initialized: bool,
    /// Whether it is sealed: it answers nothing else until unsealed.
    pub sealed: bool,
    /// Whether it is a standby node of a cluster (it forwards or redirects
    /// to the active node; healthy).
    pub standby: bool,
    /// Whether it is a performance standby (serves reads itself).
    pub performance_standby: bool,
    /// The server's version (`2.4.1`).
    pub version: Option<String>,
    /// The cluster's name, once unsealed.
    pub cluster_name: Option<String>,
}

/// The client's token as `auth/token/lookup-self` describes it. Holds neither
/// the token nor its accessor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The token's display name (`token`, `approle`, ...).
    pub display_name: Option<String>,
    /// The policies attached to it.
    pub policies: Vec<String>,
    /// How long it has left; `None` for a token that never expires (root).
    pub ttl: Option<Duration>,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// When it expires (RFC 3339, as Vault sent it).
    pub expire_time: Option<String>,
    /// The period of a periodic token.
    pub period: Option<Duration>,
}

/// A secrets engine mounted in Vault, as `sys/internal/ui/mounts` lists it
/// for the client's token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mount {
    /// Where it is mounted, without the trailing `/` (`secret`, `database`, `team/db`).
    pub path: String,
    /// The engine's type: `kv` (or the older `generic`) for a KV store,
    /// `database`, `aws`, `pki`, `cubbyhole`, ...
    pub engine: String,
    /// The KV version of a KV mount.
    pub kv_version: Option<KvVersion>,
}

impl Mount {
    /// Whether this is a KV secrets engine (`kv`, or the older `generic`).
    pub fn is_kv(&self) -> bool {
        self.engine == "kv" || self.engine == "generic"
    }

    /// Whether `api_path` (`database/creds/app`) is on this mount.
    pub fn holds(&self, api_path: &str) -> bool {
        let api_path = api_path.trim_start_matches('/');
        api_path
            .strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The mount among `mounts` that holds `api_path`: the longest that does.
pub fn mount_holding<'a>(mounts: &'a [Mount], api_path: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| m.holds(api_path))
        .max_by_key(|m| m.path.len())
}

impl VaultClient {
    /// The secrets engines the client's token may use something on, from one
    /// `sys/internal/ui/mounts` request (Vault lists only those, so a mount
    /// the token may not touch is not told from one that does not exist).
    /// The KV versions learned are remembered, as
    /// [`kv_version`](Self::kv_version) would. Find the mount of a path with
    /// [`mount_holding`].
    pub async fn mounts(&self) -> Result<Vec<Mount>> {
        const API_PATH: &str = "sys/internal/ui/mounts";
        let body = match self.get(API_PATH).await {
            Ok(Reply::Ok(body)) => body,
            // Nothing visible to this token.
            Ok(Reply::NotFound) | Err(Error::PermissionDenied { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let secret = body
            .pointer("/data/secret")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed(API_PATH, "no `data.secret` object"))?;
        let mut mounts = Vec::with_capacity(secret.len());
        for (path, info) in secret {
            let engine = info
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let mut mount = Mount {
                path: path.trim_matches('/').to_owned(),
                engine,
                kv_version: None,
            };
            if mount.is_kv() {
                let wrapped = serde_json::json!({ "data": info });
                if let Ok(version) = KvVersion::from_mount_info(API_PATH, &wrapped) {
                    mount.kv_version = Some(version);
                    self.learn_kv_version(&mount.path, version);
                }
            }
            mounts.push(mount);
        }
        Ok(mounts)
    }

    /// The `sys/health` of the server this client talks to. Sealed,
    /// uninitialized and standby servers are answers here, not errors; an
    /// unreachable server is an error.
    pub async fn server_status(&self) -> Result<ServerStatus> {
        const API_PATH: &str = "sys/health";
        let transport = self.transport().ok_or_else(|| self.disabled(API_PATH))?;
        // Every state answers 200, so the body says which it is.
        let query = [
            ("standbyok", "true".to_owned()),
            ("perfstandbyok", "true".to_owned()),
            ("sealedcode", "200".to_owned()),
            ("uninitcode", "200".to_owned()),
            ("drsecondarycode", "200".to_owned()),
            ("performancestandbycode", "200".to_owned()),
        ];
        let body = match transport.get(API_PATH, &query, None, Repeat::Safe).await? {
            Reply::Ok(body) => body,
            Reply::NotFound => return Err(malformed(API_PATH, "404 for sys/health")),
        };
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(ServerStatus {
            address: self.address().unwrap_or_default().to_owned(),
            initialized: flag("initialized")
                .ok_or_else(|| malformed(API_PATH, "no `initialized` field"))?,
            sealed: flag("sealed").ok_or_else(|| malformed(API_PATH, "no `sealed` field"))?,
            standby: flag("standby").unwrap_or(false),
            performance_standby: flag("performance_standby").unwrap_or(false),
            version: text("version"),
            cluster_name: text("cluster_name"),
        })
    }

    /// The client's token, looked up (logging in first when the auth method
    /// needs it). The answer's `id` (the token) and `accessor` are dropped.
    pub async fn token_info(&self) -> Result<TokenInfo> {
        const API_PATH: &str = "auth/token/lookup-self";
        let body = match self.get(API_PATH).await? {
            Reply::Ok(body) => body,
            Reply::NotFound => return Err(malformed(API_PATH, "404 for lookup-self")),
        };
        let data = body
            .get("data")
            .ok_or_else(|| malformed(API_PATH, "no `data` field"))?;
        let seconds = |name: &str| {
            data.get(name)
                .and_then(Value::as_u64)
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
        };
        let policies = data
            .get("policies")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(TokenInfo {
            display_name: data
                .get("display_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            policies,
            ttl: seconds("ttl"),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            expire_time: data
                .get("expire_time")
                .and_then(Value::as_str)
                .map(str::to_owned),
            period: seconds("period"),
        })
    }

    /// What the client's token may do on each of `api_paths` (full API paths,
    /// `secret/data/app`), from `sys/capabilities-self`: `read`, `create`,
    /// `update`, `delete`, `list`, `patch`, `sudo`, `root` or `deny`.
    pub async fn capabilities(
        &self,
        api_paths: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>> {
        const API_PATH: &str = "sys/capabilities-self";
        if api_paths.is_empty() {
            return Ok(BTreeMap::new());
        }
        let request = serde_json::json!({ "paths": api_paths });
        // A read: asking again changes nothing.
        let body = match self
            .send(API_PATH, &[], Some(&request), Repeat::Safe)
            .await?
        {
            Reply::Ok(body) => body,
            Reply::NotFound => return Err(malformed(API_PATH, "404 for capabilities-self")),
        };
        let answer = body.get("data").unwrap_or(&body);
        api_paths
            .iter()
            .map(|path| {
                let caps = answer
                    .get(path)
                    .or_else(|| (api_paths.len() == 1).then(|| answer.get("capabilities"))?)
                    .and_then(Value::as_array)
                    .ok_or_else(|| Error::Malformed {
                        path: API_PATH.to_owned(),
                        reason: format!("no capabilities for `{path}` in the answer"),
                    })?;
                let caps = caps
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                Ok((path.clone(), caps))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_holding_a_path_is_its_mount() {
        let mount = |path: &str, engine: &str| Mount {
            path: path.to_owned(),
            engine: engine.to_owned(),
            kv_version: None,
        };
        let mounts = [
            mount("secret", "kv"),
            mount("team", "kv"),
            mount("team/db", "database"),
        ];
        let of = |p: &str| mount_holding(&mounts, p).map(|m| m.path.as_str());
        assert_eq!(of("team/db/creds/app"), Some("team/db"));
        assert_eq!(of("team/dbx/creds"), Some("team"));
        assert_eq!(of("secretive/x"), None);
        assert_eq!(of("database/creds/app"), None);
        assert!(mounts[0].is_kv() && !mounts[2].is_kv());
    }
}
