//! What a person checks first about a Vault: the server's seal and HA state
//! ([`VaultClient::server_status`]), the client's token
//! ([`VaultClient::token_info`], never the token itself) and what that token
//! may do on a path ([`VaultClient::capabilities`]). The `vault-config
//! status` command is built on these.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::client::VaultClient;
use crate::error::{Error, Result};
use crate::kv::malformed;
use crate::transport::{Repeat, Reply};

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

impl VaultClient {
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
