//! Watch hub benchmark against a real OpenBao dev server: requests per poll
//! interval when nothing changes, for 1, 4 and 16 watchers over the same 10
//! KV v2 paths, side by side in one run:
//!
//! - "before": each watcher on its own client, so no two share a hub (what
//!   every watcher cost before the hub: its own metadata read of each path);
//! - "after": every watcher on one client, sharing its hub.
//!
//! Requests are counted by a proxy in front of the server over a window of
//! several intervals (default jitter, as a service runs), divided by the
//! number of intervals in the window.
//!
//! Then leases, with a real PostgreSQL: for 1, 4 and 16 watchers over one
//! leased read (`database/creds/app`, TTL 3 s, renewed at two thirds),
//! the database logins they hold and the renewal requests over 6 s, the
//! same way side by side.
//!
//! `cargo bench -p vault-config --bench hub` (needs a server binary, as the tests do).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use vault_config::{VaultClient, VaultConfig, VaultProvider, WatchOptions, Watcher};
use vault_test_support::{CountingProxy, DevServer, Postgres};

const PATHS: usize = 10;
const INTERVAL: Duration = Duration::from_millis(500);
const WINDOW: Duration = Duration::from_secs(5);

type Config = HashMap<String, String>;

async fn watcher(client: &VaultClient) -> Watcher<Config> {
    let mut builder = VaultProvider::builder();
    for i in 0..PATHS {
        builder = builder.map(format!("k{i}"), &format!("bench/p{i}#value"));
    }
    builder
        .watch::<Config>(client, WatchOptions::default().interval(INTERVAL))
        .await
        .unwrap()
}

/// Requests, and metadata reads, per interval over the window.
async fn measure(proxy: &CountingProxy) -> (f64, f64) {
    // Let the first polls after the loads go by.
    tokio::time::sleep(INTERVAL * 2).await;
    proxy.reset();
    tokio::time::sleep(WINDOW).await;
    let intervals = WINDOW.as_secs_f64() / INTERVAL.as_secs_f64();
    // One copy of the log for both counts, so that they agree.
    let lines = proxy.requests();
    let all = lines.len() as f64 / intervals;
    let metadata = lines
        .iter()
        .filter(|l| l.starts_with("GET /v1/secret/metadata/"))
        .count() as f64
        / intervals;
    (all, metadata)
}

#[derive(Debug, serde::Deserialize, VaultConfig)]
#[allow(dead_code)]
struct Db {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
}

/// Logins held and renewal requests over 6 s, for `n` watchers on their
/// own clients (`shared` false) or on one.
async fn leases(
    server: &DevServer,
    pg: &Postgres,
    proxy: &CountingProxy,
    n: usize,
    shared: bool,
) -> (usize, usize) {
    let client = || {
        server
            .client_builder(&[])
            .address(proxy.addr())
            .build()
            .unwrap()
    };
    let one = client();
    let options = WatchOptions::default()
        .interval(Duration::from_secs(60))
        .revoke_on_shutdown(true);
    let mut watchers = Vec::with_capacity(n);
    for _ in 0..n {
        let own;
        let client = if shared {
            &one
        } else {
            own = client();
            &own
        };
        watchers.push(Db::watch(client, options).await.unwrap());
    }
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let renewals = proxy.count("POST", "/v1/sys/leases/renew/");
    let logins = pg.vault_roles().await.unwrap().len();
    for w in watchers {
        w.shutdown().await;
    }
    (logins, renewals)
}

#[tokio::main]
async fn main() {
    let server = DevServer::start().await;
    for i in 0..PATHS {
        server
            .kv_put(
                "secret",
                &format!("bench/p{i}"),
                json!({"value": format!("v{i}")}),
            )
            .await
            .unwrap();
    }
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = || {
        server
            .client_builder(&[])
            .address(proxy.addr())
            .build()
            .unwrap()
    };

    println!(
        "requests per {} ms interval, nothing changed, {PATHS} KV v2 paths, window {} s:",
        INTERVAL.as_millis(),
        WINDOW.as_secs()
    );
    println!(
        "watchers | before: own client each (metadata) | after: one client, one hub (metadata)"
    );
    for n in [1usize, 4, 16] {
        let mut before = Vec::with_capacity(n);
        for _ in 0..n {
            before.push(watcher(&client()).await);
        }
        let (b_all, b_meta) = measure(&proxy).await;
        drop(before);

        let shared = client();
        let mut after = Vec::with_capacity(n);
        for _ in 0..n {
            after.push(watcher(&shared).await);
        }
        let (a_all, a_meta) = measure(&proxy).await;
        let polls: u64 = after.iter().map(|w| w.health().polls).sum();
        drop(after);
        println!(
            "{n:>8} | {b_all:>10.1} ({b_meta:>5.1}) | {a_all:>10.1} ({a_meta:>5.1})   [after: {polls} polls since the watchers started]"
        );
    }

    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", "3s", "1h")
        .await
        .unwrap();
    println!("leased credentials (TTL 3 s), over 6 s:");
    println!("watchers | before: own client each: logins, renewal requests | after: one client: logins, renewal requests");
    for n in [1usize, 4, 16] {
        let (b_logins, b_renewals) = leases(&server, &pg, &proxy, n, false).await;
        let (a_logins, a_renewals) = leases(&server, &pg, &proxy, n, true).await;
        println!("{n:>8} | {b_logins:>6} {b_renewals:>6} | {a_logins:>6} {a_renewals:>6}");
    }
}
