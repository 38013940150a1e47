//! The watch hub against a real OpenBao dev server: the watchers of one
//! client share the metadata read of each path they poll, and each still
//! ends where a fresh load would.
//!
//! Counting is through a `CountingProxy` in front of the server, and never
//! asserts on time. Why the bound holds: the hub reads a path again only for
//! a watcher that already used its newest answer, and a watcher asks once
//! per poll, whose check began after that answer was asked for. So two reads
//! of one path are at least one poll period of some watcher apart, and over
//! any window a path is read at most as often as the busiest watcher polls,
//! plus the reads in flight at each end of the window (2). Without the hub
//! (main), each watcher read each path at each of its polls: the sum of the
//! watchers' polls.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::timeout;
use vault_config::{VaultConfig, WatchOptions, Watcher};
use vault_test_support::{eventually, CountingProxy, DevServer, Postgres};

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault("database#url")]
    url: String,
    #[vault("app#key")]
    key: String,
    #[vault("flags#mode")]
    mode: String,
}

/// Another shape over two of the same paths: the hub is per path, not per type.
#[derive(Debug, Deserialize, VaultConfig)]
struct Partial {
    #[vault("database#url")]
    url: String,
    #[vault("flags#mode")]
    mode: String,
}

const PATHS: [&str; 3] = ["database", "app", "flags"];
const WAIT: Duration = Duration::from_secs(10);

async fn seeded() -> DevServer {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"url": "url-1"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "app", json!({"key": "key-1"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "flags", json!({"mode": "a"}))
        .await
        .unwrap();
    server
}

fn every(ms: u64) -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(ms))
        .jitter(0.0)
}

/// Waits until `rx` holds a config for which `done` is true.
async fn until<T>(rx: &mut watch::Receiver<Arc<T>>, done: impl Fn(&T) -> bool) {
    timeout(WAIT, rx.wait_for(|c| done(c)))
        .await
        .expect("no publish in time")
        .expect("watcher gone");
}

fn polls<T>(watchers: &[&Watcher<T>]) -> Vec<u64> {
    watchers.iter().map(|w| w.health().polls).collect()
}

/// Over one window of `window`: metadata reads of each path, and the polls
/// each watcher made (the window's start and end are not atomic with the
/// polls: the bound allows for that).
async fn count_window(
    proxy: &CountingProxy,
    services: &[&Watcher<Service>],
    partials: &[&Watcher<Partial>],
    window: Duration,
) -> (Vec<usize>, Vec<u64>) {
    let before: Vec<u64> = polls(services).into_iter().chain(polls(partials)).collect();
    proxy.reset();
    tokio::time::sleep(window).await;
    let reads: Vec<usize> = PATHS
        .iter()
        .map(|p| proxy.count("GET", &format!("/v1/secret/metadata/{p}")))
        .collect();
    let after: Vec<u64> = polls(services).into_iter().chain(polls(partials)).collect();
    let made = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    (reads, made)
}

#[tokio::test]
async fn four_watchers_on_one_client_read_each_path_once_per_interval() {
    let server = seeded().await;
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let a = Service::watch(&client, every(200)).await.unwrap();
    let b = Service::watch(&client, every(200)).await.unwrap();
    let c = Service::watch(&client, every(200)).await.unwrap();
    let d = Partial::watch(&client, every(200)).await.unwrap();
    assert_eq!(a.current().mode, "a");

    let (reads, made) = count_window(&proxy, &[&a, &b, &c], &[&d], Duration::from_secs(3)).await;
    eprintln!("four watchers: metadata reads {reads:?} for polls {made:?}");
    let busiest = *made.iter().max().unwrap() as usize;
    let all: u64 = made.iter().sum();
    assert!(busiest >= 3, "the watchers poll: {made:?}");
    for (path, &n) in PATHS.iter().zip(&reads) {
        // One watcher alone reads each path once per poll; four share that.
        assert!(
            n <= busiest + 2,
            "`{path}`: {n} metadata reads for polls {made:?} (at most the busiest watcher's {busiest} + 2)"
        );
        assert!(n >= 1, "`{path}` is still polled");
    }
    // `app` is watched by three of them; the others by four: without the
    // hub, each of their polls read it.
    assert!(
        (reads[0] as u64) * 2 < all,
        "sharing shows: {reads:?} reads of database for {all} polls"
    );

    // A rotation reaches every one of them.
    let (mut ra, mut rb, mut rc, mut rd) =
        (a.subscribe(), b.subscribe(), c.subscribe(), d.subscribe());
    server
        .kv_put("secret", "database", json!({"url": "url-2"}))
        .await
        .unwrap();
    until(&mut ra, |s| s.url == "url-2").await;
    until(&mut rb, |s| s.url == "url-2").await;
    until(&mut rc, |s| s.url == "url-2").await;
    until(&mut rd, |s| s.url == "url-2").await;
    for h in [a.health(), b.health(), c.health(), d.health()] {
        assert_eq!(h.versions.get("secret/database"), Some(&2), "{h:?}");
        assert_eq!(h.last_error, None);
    }

    // Dropping three keeps the fourth working, alone: one read per poll.
    drop((a, b, ra, rb));
    c.shutdown().await;
    let (reads, made) = count_window(&proxy, &[], &[&d], Duration::from_secs(2)).await;
    eprintln!("one watcher left: metadata reads {reads:?} for polls {made:?}");
    let polled = made[0] as usize;
    assert!(polled >= 3, "the last watcher polls: {made:?}");
    assert_eq!(reads[1], 0, "nobody watches `app` any more: {reads:?}");
    for n in [reads[0], reads[2]] {
        assert!(
            n + 2 >= polled && n <= polled + 2,
            "{n} reads for {polled} polls of the last watcher"
        );
    }
    server
        .kv_put("secret", "flags", json!({"mode": "b"}))
        .await
        .unwrap();
    until(&mut rd, |s| s.mode == "b").await;
    drop(rc);
}

#[tokio::test]
async fn a_refresh_reads_vault_even_when_another_watcher_just_did() {
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    let hour = WatchOptions::default().interval(Duration::from_secs(3600));
    let a = Service::watch(&client, hour).await.unwrap();
    let b = Service::watch(&client, hour).await.unwrap();
    assert!(!a.refresh().await.unwrap());
    server
        .kv_put("secret", "app", json!({"key": "key-2"}))
        .await
        .unwrap();
    // `a` read every path's metadata a moment ago; `b` must not take it.
    assert!(b.refresh().await.unwrap());
    assert_eq!(b.current().key, "key-2");
    assert!(a.refresh().await.unwrap());
    assert_eq!(a.current().key, "key-2");
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "legacy")]
struct Legacy {
    #[vault("app#key")]
    key: String,
}

#[tokio::test]
async fn four_watchers_of_a_kv_v1_path_read_its_data_once_per_interval() {
    // KV v1 keeps no metadata: each poll reads the data, shared as metadata is.
    let server = DevServer::start().await;
    server.enable_kv("legacy", 1, None).await.unwrap();
    server
        .kv_put("legacy", "app", json!({"key": "a"}))
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let mut watchers = Vec::new();
    for _ in 0..4 {
        watchers.push(Legacy::watch(&client, every(200)).await.unwrap());
    }
    let before: Vec<u64> = watchers.iter().map(|w| w.health().polls).collect();
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reads = proxy.count("GET", "/v1/legacy/app");
    let made: Vec<u64> = watchers
        .iter()
        .zip(&before)
        .map(|(w, b)| w.health().polls - b)
        .collect();
    eprintln!("four KV v1 watchers: {reads} data reads for polls {made:?}");
    let busiest = *made.iter().max().unwrap() as usize;
    assert!(busiest >= 3, "the watchers poll: {made:?}");
    assert!(
        reads <= busiest + 2,
        "{reads} data reads for polls {made:?} (at most the busiest watcher's {busiest} + 2)"
    );

    server
        .kv_put("legacy", "app", json!({"key": "b"}))
        .await
        .unwrap();
    for w in &watchers {
        until(&mut w.subscribe(), |l| l.key == "b").await;
    }
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Db {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: vault_config::SecretString,
}

async fn with_postgres(default_ttl: &str, max_ttl: &str) -> (DevServer, Postgres, CountingProxy) {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", default_ttl, max_ttl)
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    (server, pg, proxy)
}

async fn connects(db: &Db, port: u16) -> bool {
    use vault_config::ExposeSecret;
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(&db.username)
        .password(db.password.expose_secret())
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            let driver = tokio::spawn(connection);
            let ok = client.query_one("select 1", &[]).await.is_ok();
            drop(client);
            let _ = driver.await;
            ok
        }
        Err(_) => false,
    }
}

fn renewals(w: &Watcher<Db>) -> u64 {
    w.health()
        .leases
        .get("database/creds/app")
        .map_or(0, |l| l.renewals)
}

#[tokio::test]
async fn two_watchers_hold_one_lease_renewed_once_and_revoked_by_the_last() {
    let (server, pg, proxy) = with_postgres("3s", "1m").await;
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let options = WatchOptions::default()
        .interval(Duration::from_secs(30))
        .revoke_on_shutdown(true);
    let a = Db::watch(&client, options).await.unwrap();
    let b = Db::watch(&client, options).await.unwrap();
    let db = a.current();
    assert_eq!(b.current().username, db.username, "one lease, one login");
    // `b` read its own first and revoked it at once, for `a`'s.
    assert_eq!(
        pg.vault_roles().await.unwrap(),
        std::slice::from_ref(&db.username)
    );

    // Renewed at two thirds of 3 s, by one request per renewal point.
    proxy.reset();
    eventually(Duration::from_secs(15), || {
        renewals(&a) >= 3 && renewals(&b) >= 3
    })
    .await;
    let sent = proxy.count("POST", "/v1/sys/leases/renew/");
    let most = renewals(&a).max(renewals(&b)) as usize;
    eprintln!("two watchers: {sent} renewal requests for {most} renewals");
    // A renewal may be in flight when counting stops: one more at most.
    assert!(
        sent <= most + 1,
        "{sent} renewal requests for {most} renewals"
    );
    assert_eq!(b.current().username, db.username);
    assert!(connects(&db, pg.port()).await);

    // The first to shut down leaves the lease to the other; the last revokes it.
    a.shutdown().await;
    assert!(
        connects(&b.current(), pg.port()).await,
        "b's login still works"
    );
    b.shutdown().await;
    assert!(
        pg.vault_roles().await.unwrap().is_empty(),
        "the last watcher revoked the lease"
    );
    assert!(!connects(&db, pg.port()).await);
}

#[tokio::test]
async fn a_lease_at_its_max_ttl_is_replaced_once_for_both_watchers() {
    let (server, pg, proxy) = with_postgres("4s", "4s").await;
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let options = WatchOptions::default().interval(Duration::from_secs(30));
    let a = Db::watch(&client, options).await.unwrap();
    let b = Db::watch(&client, options).await.unwrap();
    let old = a.current();
    assert_eq!(b.current().username, old.username);
    proxy.reset();
    let (mut ra, mut rb) = (a.subscribe(), b.subscribe());
    until(&mut ra, |d| d.username != old.username).await;
    until(&mut rb, |d| d.username != old.username).await;
    assert_eq!(
        a.current().username,
        b.current().username,
        "both moved to the same new credentials"
    );
    // Replaced 1.33 s before the 4 s expiry: one read of new credentials.
    let reads = proxy.count("GET", "/v1/database/creds/app");
    assert_eq!(reads, 1, "{:?}", proxy.requests());
    assert!(connects(&a.current(), pg.port()).await);
}
