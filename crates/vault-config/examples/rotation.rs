//! A service that keeps its configuration behind a watch channel and picks up
//! rotated secrets without a restart.
//!
//! Start a dev server with the sample secrets (`bash scripts/demo.sh rotation`
//! does all of this and rotates a secret for you), then, in another terminal:
//!
//! ```text
//! bao kv put -mount=agenticverz database DATABASE_URL=postgres://new@db/aos POSTGRES_USER=aos port=5432
//! ```
//!
//! and watch this program print what changed (secrets redacted). It polls every
//! `WATCH_INTERVAL_SECS` (default 2) and, when `EXIT_AFTER_RELOADS` is set,
//! exits after that many reloads; otherwise it runs until Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vault_config::{SecretString, VaultClient, VaultConfig, WatchOptions};

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "agenticverz")]
#[allow(dead_code)] // the fields are shown through Debug
struct ServiceConfig {
    #[vault(path = "database", key = "DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#POSTGRES_USER")]
    postgres_user: String,
    #[vault("database#port", env = "DATABASE_PORT", default = 5432)]
    port: u16,
    #[vault(path = "app-prod", key = "AOS_API_KEY")]
    api_key: SecretString,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let interval: u64 = std::env::var("WATCH_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let exit_after: Option<u64> = std::env::var("EXIT_AFTER_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok());

    let client = VaultClient::from_env()?;
    let watcher = ServiceConfig::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(interval)),
    )
    .await?;
    println!(
        "rotation: loaded; polling every {interval}s\n{:#?}",
        watcher.current()
    );
    println!("health: {}", serde_json::to_string(&watcher.health())?);

    let mut rx = watcher.subscribe();
    let mut reloads = 0;
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() { break; }
                let config: Arc<ServiceConfig> = rx.borrow_and_update().clone();
                reloads += 1;
                let health = watcher.health();
                println!("\nrotation: reload {reloads}: changed {}", health.last_changed.join(", "));
                println!("{config:#?}");
                println!("health: {}", serde_json::to_string(&health)?);
                if exit_after.is_some_and(|n| reloads >= n) { break; }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    watcher.shutdown().await;
    Ok(())
}
