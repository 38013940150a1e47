//! Failover benchmark on a real 3-node OpenBao Raft cluster on loopback: a
//! watcher polling every 200 ms through three `kill -9`s of the leader.
//! Prints, per failover, the longest time without a successful poll and the
//! requests the client sent meanwhile (counted by a proxy in front of each node).
//!
//! `cargo bench -p vault-config --bench failover` (needs a server binary, as the tests do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::json;
use vault_config::{VaultClientBuilder, VaultConfig, WatchOptions};
use vault_test_support::{env_of, Cluster, CountingProxy};

#[derive(serde::Deserialize, VaultConfig)]
#[allow(dead_code)]
struct App {
    #[vault("app#user", env = "APP_USER")]
    user: String,
}

#[tokio::main]
async fn main() {
    let mut cluster = Cluster::start().await;
    let mut proxies = Vec::new();
    for addr in cluster.addrs() {
        proxies.push(CountingProxy::start(&addr).await.unwrap());
    }
    cluster
        .kv_put_anywhere("app", json!({"user": "u0"}), Duration::from_secs(30))
        .await
        .unwrap();
    let client = VaultClientBuilder::default()
        .addresses(proxies.iter().map(|p| p.addr().to_owned()))
        .token(cluster.root_token())
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let watcher = App::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap();
    println!("failover  longest without a successful poll  requests meanwhile");
    for round in 1..=3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let requests = |ps: &[CountingProxy]| ps.iter().map(|p| p.requests().len()).sum::<usize>();
        let before = requests(&proxies);
        let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
        let killed = Instant::now();
        cluster.kill(leader).await;
        // Sample the successful polls until two more seconds of success.
        let mut polls = watcher.health().polls;
        let mut last_success = killed;
        let mut longest = Duration::ZERO;
        let deadline = killed + Duration::from_secs(60);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = watcher.health().polls;
            if now > polls {
                longest = longest.max(last_success.elapsed());
                last_success = Instant::now();
                polls = now;
                if killed.elapsed() > Duration::from_secs(2) && longest > Duration::ZERO {
                    break;
                }
            }
        }
        let spent = requests(&proxies) - before;
        println!("{round:>8}  {:>34.0?}  {spent:>18}", longest);
        cluster.restart(leader).await.unwrap();
    }
    println!(
        "\nfailovers seen by the client: {}; health: connected={}, last error={:?}",
        client.failovers(),
        watcher.health().vault_connected,
        watcher.health().last_error
    );
}
