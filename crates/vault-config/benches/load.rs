//! Load benchmark against a real OpenBao `-dev-tls` server behind a loopback
//! proxy that delays every segment by 10 ms each way (a 20 ms round trip, paid
//! by the TCP and TLS handshakes too). Prints, side by side in one run:
//!
//! - one read of one path by a fresh client (cold) and by a client that
//!   already talked to Vault (warm): the floor;
//! - a load of P paths x 10 keys, cold and warm, for P = 1, 10, 100, 1000;
//! - the seeds' way (one read per path, one after another, over a keep-alive
//!   session) and the naive way (one read per key), where they finish in time.
//!
//! `cargo bench -p vault-config --bench load` (needs a server binary, as the tests do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::json;
use vault_config::{VaultClient, VaultProvider, VaultProviderBuilder};
use vault_test_support::{env_of, DelayProxy, DevServer};

const KEYS: usize = 10;
const ONE_WAY: Duration = Duration::from_millis(10);

fn mappings(paths: usize) -> VaultProviderBuilder {
    let mut b = VaultProvider::builder();
    for p in 0..paths {
        for k in 0..KEYS {
            b = b.map(format!("svc{p}.key{k}"), &format!("bench/svc{p}#KEY_{k}"));
        }
    }
    b
}

fn fresh(server: &DevServer, addr: &str) -> VaultClient {
    VaultClient::builder()
        .address(addr)
        .token(server.root_token())
        .ca_cert(server.ca_file())
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `(median time, requests per run, connections per run)` over `rounds`.
async fn measure<F, Fut>(proxy: &DelayProxy, rounds: usize, mut run: F) -> (Duration, u64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut samples = Vec::with_capacity(rounds);
    let mut requests = 0;
    let conns_before = proxy.connections();
    for _ in 0..rounds {
        let t = Instant::now();
        requests = run().await;
        samples.push(t.elapsed());
    }
    let conns = (proxy.connections() - conns_before) / rounds;
    (median(samples), requests, conns)
}

#[tokio::main]
async fn main() {
    let server = DevServer::start_tls().await;
    let admin = server
        .client_builder(&[])
        .ca_cert(server.ca_file())
        .build()
        .unwrap();
    for p in 0..1000 {
        let data: serde_json::Map<String, serde_json::Value> = (0..KEYS)
            .map(|k| (format!("KEY_{k}"), json!(format!("value-{p}-{k}"))))
            .collect();
        admin
            .write("secret", &format!("bench/svc{p}"), &data, None)
            .await
            .unwrap();
    }
    let proxy = DelayProxy::start(server.addr(), ONE_WAY).await.unwrap();
    let addr = proxy.addr().to_owned();
    println!(
        "OpenBao -dev-tls behind a proxy adding {:?} each way ({:?} round trip); medians",
        ONE_WAY,
        ONE_WAY * 2
    );
    println!(
        "{:<46} {:>10} {:>9} {:>12}",
        "", "time", "requests", "connections"
    );
    let row = |label: &str, (t, r, c): (Duration, u64, usize)| {
        println!("{label:<46} {t:>10.1?} {r:>9} {c:>12}");
    };

    let cold_read = measure(&proxy, 5, || {
        let client = fresh(&server, &addr);
        async move {
            client.read("secret", "bench/svc0").await.unwrap();
            client.requests_sent()
        }
    })
    .await;
    row("one read, cold (fresh client)", cold_read);
    let warm = fresh(&server, &addr);
    warm.read("secret", "bench/svc0").await.unwrap();
    let warm_read = measure(&proxy, 9, || {
        let client = warm.clone();
        async move {
            let before = client.requests_sent();
            client.read("secret", "bench/svc1").await.unwrap();
            client.requests_sent() - before
        }
    })
    .await;
    row("one read, warm", warm_read);

    for paths in [1usize, 10, 100, 1000] {
        let rounds = match paths {
            1 | 10 => 5,
            100 => 3,
            _ => 1,
        };
        let cold = measure(&proxy, rounds, || {
            let client = fresh(&server, &addr);
            async move {
                mappings(paths).fetch(&client).await.unwrap();
                client.requests_sent()
            }
        })
        .await;
        row(&format!("P={paths:<4} load, cold (ours)"), cold);
        if paths == 10 {
            println!(
                "{:<46} {:>9.2}x",
                "  cold load / one cold read",
                cold.0.as_secs_f64() / cold_read.0.as_secs_f64()
            );
        }
        let client = fresh(&server, &addr);
        mappings(paths).fetch(&client).await.unwrap();
        let warm_load = measure(&proxy, rounds, || {
            let client = client.clone();
            async move {
                let before = client.requests_sent();
                mappings(paths).fetch(&client).await.unwrap();
                client.requests_sent() - before
            }
        })
        .await;
        row(&format!("P={paths:<4} load, warm (ours)"), warm_load);
        if paths == 10 {
            println!(
                "{:<46} {:>9.2}x",
                "  warm load / one warm read",
                warm_load.0.as_secs_f64() / warm_read.0.as_secs_f64()
            );
        }
        if paths <= 100 {
            let seeds = measure(&proxy, 1, || {
                let client = client.clone();
                async move {
                    let before = client.requests_sent();
                    for p in 0..paths {
                        client
                            .read("secret", &format!("bench/svc{p}"))
                            .await
                            .unwrap();
                    }
                    client.requests_sent() - before
                }
            })
            .await;
            row(
                &format!("P={paths:<4} seeds' way: a read per path in turn"),
                seeds,
            );
        }
        if paths <= 10 {
            let naive = measure(&proxy, 1, || {
                let client = client.clone();
                async move {
                    let before = client.requests_sent();
                    for p in 0..paths {
                        for _ in 0..KEYS {
                            client
                                .read("secret", &format!("bench/svc{p}"))
                                .await
                                .unwrap();
                        }
                    }
                    client.requests_sent() - before
                }
            })
            .await;
            row(
                &format!("P={paths:<4} naive: a read per key in turn"),
                naive,
            );
        }
    }
}
