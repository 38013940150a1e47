//! A real service: its configuration loaded with `#[derive(VaultConfig)]` and
//! watched, `GET /api/v1/health` in the seeds' shape, and `GET /metrics` for
//! Prometheus (the `metrics` feature and `metrics-exporter-prometheus`).
//!
//! `bash scripts/demo.sh health` runs it against a dev server, curls both
//! endpoints, rotates a secret and stops Vault, so the numbers move. By hand,
//! against a Vault holding `database#DATABASE_URL` and `app-prod#AOS_API_KEY`
//! on the KV mount `VAULT_KV_MOUNT` names:
//!
//! ```text
//! VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... VAULT_KV_MOUNT=agenticverz \
//!   cargo run --example health_server --features metrics
//! curl -s localhost:8080/api/v1/health
//! curl -s localhost:8080/metrics | grep vault_config_
//! ```
//!
//! Settings: `HEALTH_ADDR` (where to listen, default `127.0.0.1:8080`) and
//! `WATCH_INTERVAL_MS` (how often to poll Vault, default 5000). It runs until
//! Ctrl-C or SIGTERM.
//!
//! `/api/v1/health` always answers 200 while the service runs: the service keeps
//! its last good configuration through a Vault outage, so Vault's state is
//! reported (`"status": "degraded"`), not turned into a failed probe.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;
use vault_config::{Health, SecretString, VaultClient, VaultConfig, WatchOptions, Watcher};

/// What the service needs; the mount comes from `VAULT_KV_MOUNT`.
#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)] // a real service hands these to its pool and its auth layer
pub struct Settings {
    /// The database the service talks to.
    #[vault("database#DATABASE_URL")]
    pub database_url: SecretString,
    /// The key callers present.
    #[vault("app-prod#AOS_API_KEY")]
    pub api_key: SecretString,
}

/// What the handlers share: the watcher (for health) and the metrics handle.
#[derive(Clone)]
pub struct AppState {
    watcher: Arc<Watcher<Settings>>,
    metrics: PrometheusHandle,
}

/// The service's routes: `/api/v1/health` and `/metrics`.
pub fn app(watcher: Arc<Watcher<Settings>>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/metrics", get(prometheus))
        .with_state(AppState { watcher, metrics })
}

/// The seeds' shape, `{"status", "secrets": {"vault_enabled", "vault_connected", ...}}`.
/// Nothing in [`Health`] is a secret: errors name fields and paths only.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let health: Health = state.watcher.health();
    let healthy = health.vault_connected && health.last_error.is_none();
    Json(json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "secrets": health,
    }))
}

/// The Prometheus text format; every `vault_config_*` series is documented in
/// the `vault_config::telemetry` module.
async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

#[tokio::main]
#[allow(dead_code)] // the integration tests compile this file for `app` and `Settings`
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Install the recorder before the first request, so the load is counted.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        // Histograms are summarised on render; upkeep keeps their memory bounded.
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let interval = match std::env::var("WATCH_INTERVAL_MS") {
        Ok(ms) => Duration::from_millis(
            ms.parse()
                .map_err(|_| format!("WATCH_INTERVAL_MS={ms:?} is not a number of milliseconds"))?,
        ),
        Err(_) => Duration::from_secs(5),
    };
    let addr = std::env::var("HEALTH_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());

    let client = VaultClient::from_env()?;
    let watcher = Settings::watch(&client, WatchOptions::default().interval(interval)).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({e}); choose another with HEALTH_ADDR"))?;
    println!(
        "health_server: listening on http://{}/api/v1/health and /metrics",
        listener.local_addr()?
    );
    axum::serve(listener, app(Arc::new(watcher), metrics))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
#[allow(dead_code)]
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
