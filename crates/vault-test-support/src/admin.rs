//! Administering a [`DevServer`]: raw API calls, KV, engines and auth
//! methods, policies, namespaces, AppRole, and the server's own CLI.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::server::DevServer;
use crate::util::{string_at, TestResult};

impl DevServer {
    /// Sends an API request as root (in `namespace`, if given); returns the JSON body.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        namespace: Option<&str>,
        body: Option<Value>,
    ) -> TestResult<Value> {
        let headers: Vec<(&str, &str)> = namespace
            .map(|ns| ("X-Vault-Namespace", ns))
            .into_iter()
            .collect();
        self.api_with_headers(method, path, &headers, body).await
    }

    /// [`api`](Self::api) with extra headers (e.g. `X-Vault-Wrap-TTL`).
    pub async fn api_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> TestResult<Value> {
        let (status, text) = self.api_raw(method, path, headers, body).await?;
        if !(200..300).contains(&status) {
            return Err(format!("{path}: {status}: {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// A request as root that answers its status and body text whatever the
    /// status, for callers that expect a 404.
    async fn api_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> TestResult<(u16, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// Enables an auth method of `kind` at `mount`.
    pub async fn enable_auth(&self, mount: &str, kind: &str) -> TestResult {
        self.api(
            "POST",
            &format!("sys/auth/{mount}"),
            None,
            Some(json!({"type": kind})),
        )
        .await?;
        Ok(())
    }

    /// Writes an ACL policy.
    pub async fn write_policy(&self, name: &str, hcl: &str) -> TestResult {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            None,
            Some(json!({"policy": hcl})),
        )
        .await?;
        Ok(())
    }

    /// Creates AppRole role `role` (on an `approle` mount enabled before) with
    /// `settings` (token_policies, token_ttl, ...); returns its role ID.
    pub async fn approle_role(&self, role: &str, settings: Value) -> TestResult<String> {
        self.api(
            "POST",
            &format!("auth/approle/role/{role}"),
            None,
            Some(settings),
        )
        .await?;
        let answer = self
            .api(
                "GET",
                &format!("auth/approle/role/{role}/role-id"),
                None,
                None,
            )
            .await?;
        string_at(&answer, "/data/role_id")
    }

    /// A new secret ID for AppRole role `role`.
    pub async fn approle_secret_id(&self, role: &str) -> TestResult<String> {
        let answer = self
            .api(
                "POST",
                &format!("auth/approle/role/{role}/secret-id"),
                None,
                Some(json!({})),
            )
            .await?;
        string_at(&answer, "/data/secret_id")
    }

    /// A new secret ID for `role`, response-wrapped: returns the wrapping token.
    pub async fn approle_wrapped_secret_id(&self, role: &str) -> TestResult<String> {
        let answer = self
            .api_with_headers(
                "POST",
                &format!("auth/approle/role/{role}/secret-id"),
                &[("X-Vault-Wrap-TTL", "120s")],
                Some(json!({})),
            )
            .await?;
        string_at(&answer, "/wrap_info/token")
    }

    /// Mounts a KV engine (`version` 1 or 2) at `mount`.
    pub async fn enable_kv(&self, mount: &str, version: u8, namespace: Option<&str>) -> TestResult {
        let body = json!({"type": "kv", "options": {"version": version.to_string()}});
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            namespace,
            Some(body),
        )
        .await?;
        Ok(())
    }

    /// Mounts a PKI engine at `mount` with a root CA generated inside it
    /// (common name `vault-config test CA <mount>`, valid 10 years), and role
    /// `role` with `settings` (allowed_domains, max_ttl, key_type, ...).
    /// Returns the CA certificate (PEM), for clients to trust.
    pub async fn enable_pki(&self, mount: &str, role: &str, settings: Value) -> TestResult<String> {
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            None,
            Some(json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}})),
        )
        .await?;
        let root = self
            .api(
                "POST",
                &format!("{mount}/root/generate/internal"),
                None,
                Some(json!({"common_name": format!("vault-config test CA {mount}"), "ttl": "87600h"})),
            )
            .await?;
        self.api(
            "POST",
            &format!("{mount}/roles/{role}"),
            None,
            Some(settings),
        )
        .await?;
        string_at(&root, "/data/certificate")
    }

    /// Issues a certificate from PKI role `role` on `mount` as root: the
    /// `data` of Vault's answer (certificate, private_key, ca_chain, ...).
    pub async fn pki_issue(&self, mount: &str, role: &str, request: Value) -> TestResult<Value> {
        let answer = self
            .api(
                "POST",
                &format!("{mount}/issue/{role}"),
                None,
                Some(request),
            )
            .await?;
        Ok(answer["data"].clone())
    }

    /// Writes `data` at `path` of a KV `mount` (v2 when `v2`), as `bao kv put` does.
    pub async fn kv_put(&self, mount: &str, path: &str, data: Value) -> TestResult {
        self.kv_put_in(None, mount, path, data).await
    }

    /// [`kv_put`](Self::kv_put) inside `namespace`.
    pub async fn kv_put_in(
        &self,
        namespace: Option<&str>,
        mount: &str,
        path: &str,
        data: Value,
    ) -> TestResult {
        let info = self
            .api(
                "GET",
                &format!("sys/internal/ui/mounts/{mount}"),
                namespace,
                None,
            )
            .await?;
        let v2 = info["data"]["options"]["version"].as_str() == Some("2");
        if v2 {
            self.api(
                "POST",
                &format!("{mount}/data/{path}"),
                namespace,
                Some(json!({"data": data})),
            )
            .await?;
        } else {
            self.api("POST", &format!("{mount}/{path}"), namespace, Some(data))
                .await?;
        }
        Ok(())
    }

    /// The data of the current version of KV v2 secret `path` on `mount`
    /// (`version`, when given), or `None` when Vault has none to show: never
    /// written, deleted, destroyed, or its metadata deleted.
    pub async fn kv_read(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> TestResult<Option<serde_json::Map<String, Value>>> {
        let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
        let (status, text) = self
            .api_raw("GET", &format!("{mount}/data/{path}{query}"), &[], None)
            .await?;
        match status {
            200 => Ok(serde_json::from_str::<Value>(&text)?
                .pointer("/data/data")
                .and_then(Value::as_object)
                .cloned()),
            404 => Ok(None),
            _ => Err(format!("{mount}/data/{path}: {status}: {text}").into()),
        }
    }

    /// The metadata of KV v2 secret `path` on `mount` (its `data` object:
    /// `current_version`, `versions`, ...), or `None` when it has none.
    pub async fn kv_metadata(&self, mount: &str, path: &str) -> TestResult<Option<Value>> {
        let (status, text) = self
            .api_raw("GET", &format!("{mount}/metadata/{path}"), &[], None)
            .await?;
        match status {
            200 => Ok(serde_json::from_str::<Value>(&text)?.get("data").cloned()),
            404 => Ok(None),
            _ => Err(format!("{mount}/metadata/{path}: {status}: {text}").into()),
        }
    }

    /// Soft-deletes the current version of KV v2 secret `path`, as `bao kv delete` does.
    pub async fn kv_delete(&self, mount: &str, path: &str) -> TestResult {
        self.api("DELETE", &format!("{mount}/data/{path}"), None, None)
            .await?;
        Ok(())
    }

    /// Restores soft-deleted `versions`, as `bao kv undelete -versions=...` does.
    pub async fn kv_undelete(&self, mount: &str, path: &str, versions: &[u64]) -> TestResult {
        self.api(
            "POST",
            &format!("{mount}/undelete/{path}"),
            None,
            Some(json!({ "versions": versions })),
        )
        .await?;
        Ok(())
    }

    /// Removes the data of `versions` for good, as `bao kv destroy -versions=...` does.
    pub async fn kv_destroy(&self, mount: &str, path: &str, versions: &[u64]) -> TestResult {
        self.api(
            "PUT",
            &format!("{mount}/destroy/{path}"),
            None,
            Some(json!({ "versions": versions })),
        )
        .await?;
        Ok(())
    }

    /// Deletes every version and the metadata of `path`, as `bao kv metadata
    /// delete` does: the next write is version 1 again.
    pub async fn kv_metadata_delete(&self, mount: &str, path: &str) -> TestResult {
        self.api("DELETE", &format!("{mount}/metadata/{path}"), None, None)
            .await?;
        Ok(())
    }

    /// Writes metadata settings of `path`, as `bao kv metadata put` does:
    /// `{"max_versions": 2}`, `{"delete_version_after": "2s"}`, ...
    pub async fn kv_metadata_put(&self, mount: &str, path: &str, settings: Value) -> TestResult {
        self.api(
            "POST",
            &format!("{mount}/metadata/{path}"),
            None,
            Some(settings),
        )
        .await?;
        Ok(())
    }

    /// Merges `data` into the current version of `path` as a new version, as
    /// `bao kv patch` does (a JSON merge patch: a `null` removes its key).
    /// Vault refuses it when the current version is deleted or destroyed.
    pub async fn kv_patch(&self, mount: &str, path: &str, data: Value) -> TestResult {
        self.api_with_headers(
            "PATCH",
            &format!("{mount}/data/{path}"),
            &[("Content-Type", "application/merge-patch+json")],
            Some(json!({ "data": data })),
        )
        .await?;
        Ok(())
    }

    /// Writes the data of `version` again as the newest version, as `bao kv
    /// rollback -version=N` does (check-and-set against the current version);
    /// refused when that version is deleted or destroyed. Returns the new version.
    pub async fn kv_rollback(&self, mount: &str, path: &str, version: u64) -> TestResult<u64> {
        let meta = self
            .kv_metadata(mount, path)
            .await?
            .ok_or_else(|| format!("{mount}/{path}: no metadata: nothing to roll back"))?;
        let current = meta
            .get("current_version")
            .and_then(Value::as_u64)
            .ok_or("no current_version in the metadata")?;
        let data = self
            .kv_read(mount, path, Some(version))
            .await?
            .ok_or_else(|| format!("{mount}/{path}: version {version} is deleted or destroyed"))?;
        let written = self
            .api(
                "POST",
                &format!("{mount}/data/{path}"),
                None,
                Some(json!({ "data": data, "options": { "cas": current } })),
            )
            .await?;
        written
            .pointer("/data/version")
            .and_then(Value::as_u64)
            .ok_or_else(|| "no version in the answer to a write".into())
    }

    /// Creates a namespace.
    pub async fn create_namespace(&self, name: &str) -> TestResult {
        self.api(
            "POST",
            &format!("sys/namespaces/{name}"),
            None,
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    /// Writes an ACL policy and returns a token holding only it.
    pub async fn token_with_policy(&self, name: &str, hcl: &str) -> TestResult<String> {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            None,
            Some(json!({"policy": hcl})),
        )
        .await?;
        self.create_token(json!({"policies": [name], "no_default_policy": true}))
            .await
    }

    /// Creates a token with `settings` (`{"period": "3s", "policies": [...]}`)
    /// and returns it.
    pub async fn create_token(&self, settings: Value) -> TestResult<String> {
        let created = self
            .api("POST", "auth/token/create", None, Some(settings))
            .await?;
        string_at(&created, "/auth/client_token")
    }

    /// Runs the server's own CLI against it (e.g. `["operator", "seal"]`).
    pub async fn cli(&self, args: &[&str]) -> TestResult<String> {
        let mut cmd = Command::new(&self.binary);
        if self.addr.starts_with("https://") {
            cmd.env("VAULT_CACERT", self.ca_file())
                .env("BAO_CACERT", self.ca_file());
        }
        let out = cmd
            .args(args)
            .env("HOME", &self.home)
            .env("VAULT_ADDR", &self.addr)
            .env("BAO_ADDR", &self.addr)
            .env("VAULT_TOKEN", &self.token)
            .env("BAO_TOKEN", &self.token)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!(
                "{} {}: {}",
                self.binary.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
