//! Hot-reload benchmark against a real OpenBao dev server: requests per poll when
//! nothing changed, and the time from a write to a subscriber seeing it at a 1 s
//! interval (median and worst over 20 rotations).
//!
//! `cargo bench -p vault-config --bench watch` (needs a server binary, as the tests do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use vault_config::{ExposeSecret, SecretString, VaultConfig, WatchOptions};
use vault_test_support::{CountingProxy, DevServer};

#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)]
struct Service {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#POSTGRES_USER")]
    postgres_user: String,
    #[vault("app-prod#AOS_API_KEY")]
    api_key: SecretString,
    #[vault("external-apis#OPENAI_API_KEY")]
    openai_api_key: SecretString,
    #[vault("keycloak-admin#KEYCLOAK_ADMIN_PASSWORD")]
    keycloak_password: SecretString,
}

const ROTATIONS: usize = 20;

#[tokio::main]
async fn main() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "u0", "POSTGRES_USER": "aos"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "k"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "external-apis", json!({"OPENAI_API_KEY": "o"}))
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "keycloak-admin",
            json!({"KEYCLOAK_ADMIN_PASSWORD": "p"}),
        )
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();

    let idle = Service::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    proxy.reset();
    for _ in 0..10 {
        idle.refresh().await.unwrap();
    }
    let per_poll = proxy.requests().len() as f64 / 10.0;
    let metadata = proxy.count("GET", "/v1/secret/metadata/") as f64 / 10.0;
    println!("requests per poll, nothing changed: {per_poll} ({metadata} metadata reads; 4 distinct KV v2 paths)");
    idle.shutdown().await;

    let watcher = Service::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    let mut latencies = Vec::with_capacity(ROTATIONS);
    // Writes land at spread-out moments of the poll cycle, as an operator's would.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 1..=ROTATIONS {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_millis((seed >> 33) % 1000)).await;
        let value = format!("u{i}");
        let written = Instant::now();
        server
            .kv_put(
                "secret",
                "database",
                json!({"DATABASE_URL": value, "POSTGRES_USER": "aos"}),
            )
            .await
            .unwrap();
        loop {
            tokio::time::timeout(Duration::from_secs(10), rx.changed())
                .await
                .unwrap()
                .unwrap();
            if rx.borrow_and_update().database_url.expose_secret() == value {
                break;
            }
        }
        latencies.push(written.elapsed());
    }
    latencies.sort();
    println!(
        "write -> subscriber at a 1 s interval over {ROTATIONS} rotations: median {} ms, worst {} ms",
        latencies[ROTATIONS / 2].as_millis(),
        latencies[ROTATIONS - 1].as_millis()
    );
}
