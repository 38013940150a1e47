//! `vault-config status`: what a person checks first, and an exit code that
//! names the first problem.

use std::fmt::Write as _;

use serde_json::{json, Value};
use vault_config::kv::KvVersion;
use vault_config::sys::{mount_holding, ServerStatus, TokenInfo};
use vault_config::{Error, VaultClient};

use crate::cli::StatusArgs;
use crate::exit::{Failure, Kind, Result};
use crate::read;

/// One PATH's findings.
struct PathReport {
    path: String,
    /// The secrets engine of a path on another mount than KV: leased
    /// credentials, looked at but not read (a read would make a lease).
    engine: Option<String>,
    exists: Option<bool>,
    version: Option<u64>,
    capabilities: Vec<String>,
    error: Option<String>,
}

/// Everything found.
struct Report {
    enabled: bool,
    address: Option<String>,
    addresses: Vec<String>,
    namespace: Option<String>,
    kv_mount: String,
    kv_version: Option<KvVersion>,
    auth_method: Option<String>,
    credentials: Option<String>,
    server: Option<ServerStatus>,
    token: Option<TokenInfo>,
    paths: Vec<PathReport>,
    /// The first problem, by how much it blocks.
    problem: Option<Failure>,
}

impl Report {
    fn problem(&mut self, f: Failure) {
        let rank = |k: Kind| match k {
            Kind::Config => 0,
            Kind::Connection => 1,
            Kind::Sealed => 2,
            Kind::Authentication => 3,
            Kind::Denied => 4,
            Kind::NotFound => 5,
            _ => 6,
        };
        if self
            .problem
            .as_ref()
            .is_none_or(|p| rank(f.kind) < rank(p.kind))
        {
            self.problem = Some(f);
        }
    }

    fn connected(&self) -> bool {
        self.server
            .as_ref()
            .is_some_and(|s| !s.sealed && s.initialized)
            && self.token.is_some()
    }
}

/// Runs the checks, prints them; returns the exit code.
pub async fn run(args: StatusArgs) -> Result<u8> {
    let client = match read::client(args.mount.mount.as_deref()) {
        Ok(client) => client,
        // The settings are wrong: --json still answers in its shape.
        Err(failure) if args.json => {
            let code = failure.kind.code();
            println!(
                "{}",
                json!({
                    "secrets": {"vault_enabled": true, "vault_connected": false},
                    "status": failure.kind.name(),
                    "exit_code": code,
                    "error": failure.message,
                })
            );
            return Ok(code);
        }
        Err(failure) => return Err(failure),
    };
    let auth = client.auth_status();
    let mut report = Report {
        enabled: client.is_enabled(),
        address: client.address().map(str::to_owned),
        addresses: client.addresses().to_vec(),
        namespace: client.namespace().map(str::to_owned),
        kv_mount: client.kv_mount().to_owned(),
        kv_version: None,
        auth_method: auth.as_ref().map(|a| a.method.to_owned()),
        credentials: auth.map(|a| a.credentials),
        server: None,
        token: None,
        paths: Vec::new(),
        problem: None,
    };
    if report.enabled {
        check(&client, &args.paths, &mut report).await;
    }
    let code = report.problem.as_ref().map_or(0, |p| p.kind.code());
    if args.json {
        println!("{}", to_json(&report, code));
    } else {
        print!("{}", to_text(&report));
    }
    Ok(code)
}

async fn check(client: &VaultClient, paths: &[String], report: &mut Report) {
    match client.server_status().await {
        Ok(server) => {
            if !server.initialized {
                report.problem(Failure::new(
                    Kind::Sealed,
                    "Vault is not initialized (bao operator init)",
                ));
            } else if server.sealed {
                report.problem(Failure::new(
                    Kind::Sealed,
                    "Vault is sealed; unseal it (bao operator unseal / vault operator unseal)",
                ));
            }
            let usable = server.initialized && !server.sealed;
            report.server = Some(server);
            if !usable {
                return;
            }
        }
        Err(e) => {
            report.problem(Failure::from(e));
            return;
        }
    }
    match client.token_info().await {
        Ok(token) => report.token = Some(token),
        Err(e @ (Error::PermissionDenied { .. } | Error::Auth { .. })) => {
            report.problem(Failure::new(
                Kind::Authentication,
                format!("Vault does not accept the token ({e}); check VAULT_TOKEN or the login settings"),
            ));
            return;
        }
        Err(e) => {
            report.problem(Failure::from(e));
            return;
        }
    }
    // The mounts first: the KV mount's version comes with them.
    let mounts = if paths.is_empty() {
        Vec::new()
    } else {
        match client.mounts().await {
            Ok(mounts) => mounts,
            Err(e) => {
                report.problem(Failure::from(e));
                Vec::new()
            }
        }
    };
    match client.kv_version(&report.kv_mount).await {
        Ok(kv) => report.kv_version = Some(kv),
        Err(e) => report.problem(Failure::from(e)),
    }
    for path in paths {
        let path = path.trim_matches('/').to_owned();
        // Leased or KV: the mount's type says, not the path's spelling.
        let engine = mount_holding(&mounts, &path)
            .filter(|m| !m.is_kv())
            .map(|m| m.engine.clone());
        let found = match engine {
            Some(engine) => check_leased(client, &path, engine).await,
            None => check_path(client, &report.kv_mount, report.kv_version, &path).await,
        };
        if let Some(p) = found.1 {
            report.problem(p);
        }
        report.paths.push(found.0);
    }
}

/// Whether `path` exists and what the token may do on it.
async fn check_path(
    client: &VaultClient,
    mount: &str,
    kv: Option<KvVersion>,
    path: &str,
) -> (PathReport, Option<Failure>) {
    let mut out = PathReport {
        path: path.to_owned(),
        engine: None,
        exists: None,
        version: None,
        capabilities: Vec::new(),
        error: None,
    };
    let data_path = kv.unwrap_or(KvVersion::V2).data_path(mount, path);
    let mut problem = None;
    match client.capabilities(std::slice::from_ref(&data_path)).await {
        Ok(mut caps) => out.capabilities = caps.remove(&data_path).unwrap_or_default(),
        Err(e) => out.error = Some(e.to_string()),
    }
    let may_read = out.capabilities.iter().any(|c| c == "read" || c == "root");
    let exists = match kv {
        Some(KvVersion::V2) => client
            .read_metadata(mount, path)
            .await
            .map(|m| (!m.current_deleted, Some(m.current_version))),
        _ => client.read(mount, path).await.map(|s| (true, s.version())),
    };
    match exists {
        Ok((exists, version)) => {
            out.exists = Some(exists);
            out.version = version;
            if !exists {
                problem = Some(Failure::new(
                    Kind::NotFound,
                    format!("{mount}/{path}: its current version is deleted"),
                ));
            }
        }
        Err(Error::NotFound { .. }) => {
            out.exists = Some(false);
            problem = Some(Failure::new(
                Kind::NotFound,
                format!("no secret at {mount}/{path}"),
            ));
        }
        Err(e @ Error::PermissionDenied { .. }) => {
            // Metadata may be denied while the data is readable: the
            // capabilities say.
            out.error.get_or_insert_with(|| e.to_string());
        }
        Err(e) => {
            out.error = Some(e.to_string());
            problem = Some(Failure::from(e));
        }
    }
    if !may_read && problem.is_none() {
        problem = Some(Failure::new(
            Kind::Denied,
            format!(
                "the token may not read {data_path} (its capabilities there: {})",
                shown_caps(&out.capabilities)
            ),
        ));
    }
    (out, problem)
}

/// What the token may do on a path of another secrets engine (leased
/// credentials): not read, since a read makes a lease.
async fn check_leased(
    client: &VaultClient,
    path: &str,
    engine: String,
) -> (PathReport, Option<Failure>) {
    let mut out = PathReport {
        path: path.to_owned(),
        engine: Some(engine),
        exists: None,
        version: None,
        capabilities: Vec::new(),
        error: None,
    };
    let api_path = path.to_owned();
    match client.capabilities(std::slice::from_ref(&api_path)).await {
        Ok(mut caps) => out.capabilities = caps.remove(&api_path).unwrap_or_default(),
        Err(e) => out.error = Some(e.to_string()),
    }
    let may_read = out.capabilities.iter().any(|c| c == "read" || c == "root");
    let problem = (!may_read).then(|| {
        Failure::new(
            Kind::Denied,
            format!(
                "the token may not read {path} (its capabilities there: {})",
                shown_caps(&out.capabilities)
            ),
        )
    });
    (out, problem)
}

fn shown_caps(caps: &[String]) -> String {
    if caps.is_empty() {
        "none".to_owned()
    } else {
        caps.join(", ")
    }
}

fn to_json(r: &Report, code: u8) -> Value {
    let server = r.server.as_ref().map(|s| {
        json!({
            "address": s.address,
            "initialized": s.initialized,
            "sealed": s.sealed,
            "standby": s.standby,
            "performance_standby": s.performance_standby,
            "version": s.version,
            "cluster_name": s.cluster_name,
        })
    });
    let token = r.token.as_ref().map(|t| {
        json!({
            "display_name": t.display_name,
            "policies": t.policies,
            "ttl_secs": t.ttl.map(|d| d.as_secs()),
            "renewable": t.renewable,
            "expire_time": t.expire_time,
            "period_secs": t.period.map(|d| d.as_secs()),
        })
    });
    let paths: serde_json::Map<String, Value> = r
        .paths
        .iter()
        .map(|p| {
            (
                p.path.clone(),
                json!({
                    "leased": p.engine.is_some(),
                    "engine": p.engine,
                    "exists": p.exists,
                    "version": p.version,
                    "capabilities": p.capabilities,
                    "error": p.error,
                }),
            )
        })
        .collect();
    json!({
        "secrets": {
            "vault_enabled": r.enabled,
            "vault_connected": r.connected(),
        },
        "status": r.problem.as_ref().map_or(if r.enabled { "ok" } else { "disabled" }, |p| p.kind.name()),
        "exit_code": code,
        "error": r.problem.as_ref().map(|p| p.message.clone()),
        "vault": {
            "address": r.address,
            "addresses": r.addresses,
            "namespace": r.namespace,
            "kv_mount": r.kv_mount,
            "kv_version": r.kv_version.map(|v| match v { KvVersion::V1 => 1, KvVersion::V2 => 2 }),
            "auth_method": r.auth_method,
            "credentials": r.credentials,
        },
        "server": server,
        "token": token,
        "paths": paths,
    })
}

fn to_text(r: &Report) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut line = |label: &str, text: String| rows.push((format!("{label}:"), text));
    if !r.enabled {
        line(
            "vault",
            "disabled (VAULT_ENABLED=false): every value comes from the environment".to_owned(),
        );
        return aligned(&rows);
    }
    let kv = match r.kv_version {
        Some(KvVersion::V1) => " (KV v1)",
        Some(KvVersion::V2) => " (KV v2)",
        None => "",
    };
    line(
        "vault",
        format!(
            "{}{}, namespace {}, kv mount {}{kv}",
            r.address.as_deref().unwrap_or("-"),
            if r.addresses.len() > 1 {
                format!(" (of {})", r.addresses.join(", "))
            } else {
                String::new()
            },
            r.namespace.as_deref().unwrap_or("-"),
            r.kv_mount,
        ),
    );
    if let (Some(method), Some(credentials)) = (&r.auth_method, &r.credentials) {
        line("auth", shown_auth(method, credentials));
    }
    if let Some(s) = &r.server {
        let state = if !s.initialized {
            "not initialized"
        } else if s.sealed {
            "sealed"
        } else if s.performance_standby {
            "unsealed, performance standby"
        } else if s.standby {
            "unsealed, standby"
        } else {
            "unsealed, active"
        };
        line(
            "server",
            format!(
                "{state}, version {}{}",
                s.version.as_deref().unwrap_or("?"),
                s.cluster_name
                    .as_deref()
                    .map(|c| format!(", cluster {c}"))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(t) = &r.token {
        let ttl = t.ttl.map_or("never expires".to_owned(), |d| {
            format!("expires in {}", humantime::format_duration(d))
        });
        line(
            "token",
            format!(
                "{ttl}, {}, policies: {}",
                if t.renewable {
                    "renewable"
                } else {
                    "not renewable"
                },
                t.policies.join(", ")
            ),
        );
    }
    for p in &r.paths {
        let exists = match (&p.engine, p.exists) {
            (Some(engine), _) => format!(
                "leased credentials from the {engine} engine (not read: a read makes a lease)"
            ),
            (None, Some(true)) => format!(
                "exists{}",
                p.version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            (None, Some(false)) => "not found".to_owned(),
            (None, None) => "unknown".to_owned(),
        };
        line(
            &p.path,
            format!("{exists}; the token may: {}", shown_caps(&p.capabilities)),
        );
    }
    match &r.problem {
        None => line("status", "ok".to_owned()),
        Some(p) => line("status", p.to_string()),
    }
    aligned(&rows)
}

/// `label: text` lines, the texts in one column however long a label (a
/// path) is.
fn aligned(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(label, _)| label.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(12);
    let mut out = String::new();
    for (label, text) in rows {
        let _ = writeln!(out, "{label:<width$}{text}");
    }
    out
}

/// The auth line: where the credentials come from, which already names the
/// method (`approle (secret ID from VAULT_SECRET_ID)`, `token from
/// VAULT_TOKEN`), else the method with them.
fn shown_auth(method: &str, credentials: &str) -> String {
    if credentials.starts_with(method) {
        credentials.to_owned()
    } else {
        format!("{method} ({credentials})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_keep_the_column_and_the_method_is_named_once() {
        let rows = vec![
            ("vault:".to_owned(), "a".to_owned()),
            ("team/a-rather-long/path/name:".to_owned(), "b".to_owned()),
        ];
        let text = aligned(&rows);
        let columns: Vec<usize> = text.lines().map(|l| l.rfind(' ').unwrap()).collect();
        assert_eq!(columns[0], columns[1], "{text}");
        assert_eq!(
            shown_auth("approle", "approle (secret ID from VAULT_SECRET_ID)"),
            "approle (secret ID from VAULT_SECRET_ID)"
        );
        assert_eq!(
            shown_auth("token", "token from VAULT_TOKEN"),
            "token from VAULT_TOKEN"
        );
        assert_eq!(
            shown_auth("approle", "set in code"),
            "approle (set in code)"
        );
    }
}
