//! Load benchmark against a real OpenBao dev server: prints requests per load and
//! load latency for mappings spread over many paths, cold (cache off) and cached.
//!
//! `cargo bench -p vault-config --bench load` (needs a server binary, as the tests do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::json;
use vault_config::{VaultProvider, VaultProviderBuilder};
use vault_test_support::{CountingProxy, DevServer};

const PATHS: usize = 16;
const KEYS_PER_PATH: usize = 4;
const ROUNDS: usize = 50;

fn mappings() -> VaultProviderBuilder {
    let mut b = VaultProvider::builder();
    for p in 0..PATHS {
        for k in 0..KEYS_PER_PATH {
            b = b.map(format!("svc{p}.key{k}"), &format!("bench/svc{p}#KEY_{k}"));
        }
    }
    b
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<34} median {:>8.2?}  p95 {:>8.2?}  max {:>8.2?}  ({} rounds)",
        pct(0.5),
        pct(0.95),
        pct(1.0),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let server = DevServer::start().await;
    for p in 0..PATHS {
        let data: serde_json::Map<String, serde_json::Value> = (0..KEYS_PER_PATH)
            .map(|k| (format!("KEY_{k}"), json!(format!("value-{p}-{k}"))))
            .collect();
        server
            .kv_put("secret", &format!("bench/svc{p}"), data.into())
            .await
            .unwrap();
    }
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let cold = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    mappings().fetch(&cold).await.unwrap(); // mount lookup + connection warm-up
    proxy.reset();
    mappings().fetch(&cold).await.unwrap();
    println!(
        "{} mappings over {PATHS} paths: {} HTTP requests per load (cache off, mount known)",
        PATHS * KEYS_PER_PATH,
        proxy.requests().len()
    );

    let direct = server.client_builder(&[]).build().unwrap();
    mappings().fetch(&direct).await.unwrap();
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        mappings().fetch(&direct).await.unwrap();
        samples.push(t.elapsed());
    }
    report("load, cache off (concurrent reads)", samples);

    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for p in 0..PATHS {
            direct
                .read("secret", &format!("bench/svc{p}"))
                .await
                .unwrap();
        }
        samples.push(t.elapsed());
    }
    report("same paths read one after another", samples);

    let cached = server
        .client_builder(&[])
        .cache_ttl(Duration::from_secs(300))
        .build()
        .unwrap();
    mappings().fetch(&cached).await.unwrap();
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        mappings().fetch(&cached).await.unwrap();
        samples.push(t.elapsed());
    }
    report("load within the cache TTL", samples);
}
