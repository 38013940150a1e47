//! A throwaway PostgreSQL cluster for the database secrets engine.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::cluster::Cluster;
use crate::server::DevServer;
use crate::util::{free_port_pair, path_str, unique, TestResult};

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
        server: &impl Admin,
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

    /// A static role `role` on the engine [`configure_vault`](Self::configure_vault)
    /// set up: the database user `username` (created here with a throwaway
    /// password), its password rotated by Vault every `rotation_period`.
    pub async fn static_role(
        &self,
        server: &impl Admin,
        role: &str,
        username: &str,
        rotation_period: &str,
    ) -> TestResult {
        self.psql(&format!(
            "CREATE ROLE \"{username}\" WITH LOGIN PASSWORD 'before-vault'"
        ))
        .await?;
        server
            .api(
                "POST",
                &format!("database/static-roles/{role}"),
                None,
                Some(json!({
                    "db_name": "pg",
                    "username": username,
                    "rotation_period": rotation_period,
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

/// What can take the root API calls that set the database engine up: a dev
/// server, or a cluster (through its leader).
pub trait Admin {
    /// A request as root; returns the JSON body.
    fn api(
        &self,
        method: &str,
        path: &str,
        namespace: Option<&str>,
        body: Option<Value>,
    ) -> impl std::future::Future<Output = TestResult<Value>> + Send;
}

impl Admin for DevServer {
    async fn api(
        &self,
        method: &str,
        path: &str,
        namespace: Option<&str>,
        body: Option<Value>,
    ) -> TestResult<Value> {
        DevServer::api(self, method, path, namespace, body).await
    }
}

impl Admin for Cluster {
    async fn api(
        &self,
        method: &str,
        path: &str,
        _namespace: Option<&str>,
        body: Option<Value>,
    ) -> TestResult<Value> {
        let leader = self.wait_leader(std::time::Duration::from_secs(30)).await?;
        Cluster::api(self, leader, method, path, body).await
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
