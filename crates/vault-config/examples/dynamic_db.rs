//! A PostgreSQL "pool" that swaps to new credentials when the watcher publishes
//! them: leased credentials from Vault's database secrets engine, renewed while
//! they can be, replaced before they expire.
//!
//! `bash scripts/demo.sh dynamic` starts PostgreSQL and OpenBao, configures the
//! database engine with a 4 s max TTL, and runs this example, which prints each
//! swap and proves each set of credentials with `select current_user`.
//!
//! Against your own setup: `VAULT_ADDR=... VAULT_TOKEN=... PGPORT=5432 cargo run
//! --example dynamic_db` with a role at `database/creds/app` and the host at
//! `secret/backend/database#host`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::RwLock;
use vault_config::{ExposeSecret, SecretString, VaultClient, VaultConfig, WatchOptions};

#[derive(Debug, Deserialize, VaultConfig)]
struct Db {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
    #[vault(path = "backend/database", key = "host", env = "PGHOST")]
    host: String,
    #[vault(
        path = "backend/database",
        key = "port",
        env = "PGPORT",
        default = 5432
    )]
    port: u16,
}

/// The smallest pool there is: one connection, replaced when credentials rotate.
struct Pool {
    client: RwLock<Arc<tokio_postgres::Client>>,
}

async fn connect(db: &Db) -> Result<Arc<tokio_postgres::Client>, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(db.port)
        .user(&db.username)
        .password(db.password.expose_secret())
        .dbname("postgres");
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("dynamic_db: connection closed: {e}");
        }
    });
    Ok(Arc::new(client))
}

impl Pool {
    async fn current_user(&self) -> Result<String, tokio_postgres::Error> {
        let client = self.client.read().await.clone();
        client
            .query_one("select current_user::text", &[])
            .await
            .map(|row| row.get(0))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let swaps: usize = std::env::var("SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let client = VaultClient::from_env()?;
    // In-flight queries on the old credentials get 1 s before their lease is revoked.
    let options = WatchOptions::default()
        .revoke_replaced_leases_after(Duration::from_secs(1))
        .revoke_on_shutdown(true);
    let watcher = Db::watch(&client, options).await?;
    let pool = Arc::new(Pool {
        client: RwLock::new(connect(&watcher.current()).await?),
    });
    println!("dynamic_db: connected as {}", pool.current_user().await?);

    let mut rx = watcher.subscribe();
    for _ in 0..swaps {
        rx.changed().await?;
        let db = rx.borrow_and_update().clone();
        let fresh = connect(&db).await?;
        *pool.client.write().await = fresh;
        let lease = watcher
            .health()
            .leases
            .get("database/creds/app")
            .map(|l| l.expires_at);
        println!(
            "dynamic_db: new credentials published; pool now connected as {} (lease expires at {lease:?})",
            pool.current_user().await?
        );
    }
    watcher.shutdown().await; // revokes the lease: the role is dropped
    println!("dynamic_db: shut down, lease revoked");
    Ok(())
}
