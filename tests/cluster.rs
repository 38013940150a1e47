//! A real 3-node OpenBao Raft cluster on loopback: leader failovers while a
//! watcher runs and secrets rotate, reads through a standby, and one address
//! behind a round-robin proxy (the seeds' nginx `upstream`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::time::timeout;
use vault_config::{SecretString, VaultClient, VaultClientBuilder, VaultConfig, WatchOptions};
use vault_test_support::{env_of, Cluster, Postgres, RoundRobinProxy};

#[derive(Debug, Deserialize, VaultConfig)]
struct Pair {
    #[vault("app#user", env = "APP_USER")]
    user: String,
    #[vault("app#pass")]
    pass: SecretString,
    #[vault("app#n")]
    n: u32,
    /// Leased from PostgreSQL: renewed through the failovers.
    #[vault(dynamic = "database/creds/app", key = "username")]
    db_user: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    db_pass: SecretString,
}

/// The KV part alone.
#[derive(Debug, Deserialize, VaultConfig)]
struct KvOnly {
    #[vault("app#n")]
    n: u32,
}

/// A periodic token (15 s, renewed at 10 s) that may read `secret/`.
async fn periodic_token(cluster: &Cluster) -> String {
    let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
    cluster
        .api(
            leader,
            "PUT",
            "sys/policies/acl/reader",
            Some(
                json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }\n\
                path \"database/creds/app\" { capabilities = [\"read\"] }\n\
                path \"sys/leases/renew/database/creds/app/*\" { capabilities = [\"update\"] }"}),
            ),
        )
        .await
        .unwrap();
    let created = cluster
        .api(
            leader,
            "POST",
            "auth/token/create",
            Some(json!({"period": "15s", "policies": ["reader", "default"]})),
        )
        .await
        .unwrap();
    created["auth"]["client_token"].as_str().unwrap().to_owned()
}

fn client(addrs: &[String], token: &str) -> VaultClient {
    VaultClientBuilder::default()
        .addresses(addrs.iter().cloned())
        .token(token)
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

async fn write_pair(cluster: &Cluster, n: u32) {
    cluster
        .kv_put_anywhere(
            "app",
            json!({"user": format!("user-{n}"), "pass": format!("pass-{n}"), "n": n}),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
}

/// What a watcher published: user, password and `n` of the pair, and the
/// database user in force.
type Published = (String, String, u32, String);

/// Opens a connection to PostgreSQL on `port` as `user` and runs `select 1`.
async fn connect_as(port: u16, user: &str, password: &str) -> Result<(), tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    client.query_one("select 1", &[]).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Rotates the pair 30 times through whichever node takes writes, killing
/// the leader (`kill -9`) three times on the way and restarting it; checks
/// that every config published is a pair written together, that they never
/// go back, and that the watcher ends on the last write.
async fn ride_through_failovers(cluster: &mut Cluster, client: &VaultClient) {
    // Leases of 20 s (max 10 min): renewed every 13 s, through the
    // failovers. An election takes up to about 5 s, so the lease outlives
    // one: the lease the watcher starts with is the one it ends with.
    let pg = Postgres::start().await;
    pg.configure_vault(cluster, "app", "20s", "10m")
        .await
        .unwrap();
    write_pair(cluster, 0).await;
    // Another writer's write reaches a standby within its replication lag
    // (about 100-200 ms measured); this client has not seen it, so its first
    // read may go to a standby that has not either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let watcher = Pair::watch(
        client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    let first_db_user = watcher.current().db_user.clone();
    let seen: Arc<Mutex<Vec<Published>>> = Arc::default();
    let collector = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let cfg = rx.borrow_and_update().clone();
                use vault_config::ExposeSecret;
                seen.lock().unwrap().push((
                    cfg.user.clone(),
                    cfg.pass.expose_secret().to_owned(),
                    cfg.n,
                    cfg.db_user.clone(),
                ));
            }
        })
    };
    for n in 1..=30u32 {
        write_pair(cluster, n).await;
        if n % 10 == 5 {
            let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
            cluster.kill(leader).await;
            write_pair(cluster, n).await; // through the new leader
            cluster.restart(leader).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // It converges on the last write.
    let converged = timeout(Duration::from_secs(30), async {
        while watcher.current().n != 30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        converged.is_ok(),
        "the watcher did not converge on the last write: at {}, {:?}",
        watcher.current().n,
        watcher.health()
    );
    // Token renewals went on through the failovers.
    let renewed = timeout(Duration::from_secs(20), async {
        while client.auth_status().is_none_or(|s| s.renewals == 0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        renewed.is_ok(),
        "no token renewal: {:?}",
        client.auth_status()
    );
    let health = watcher.health();
    // The lease in force is alive: renewed (or replaced before it ended)
    // through the failovers.
    let lease = health.leases["database/creds/app"].clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(lease.expires_at > now, "the lease ran out: {lease:?}");
    // ... and the credentials in force open a connection.
    let current = watcher.current();
    use vault_config::ExposeSecret;
    connect_as(pg.port(), &current.db_user, current.db_pass.expose_secret())
        .await
        .unwrap_or_else(|e| panic!("the credentials in force do not connect: {e}"));
    assert_eq!(
        current.db_user, first_db_user,
        "the lease was replaced instead of renewed through the failovers: {health:?}"
    );
    drop(current);
    drop(watcher);
    let _ = collector.await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "published {} configs", seen.len());
    for (user, pass, n, _) in &seen {
        assert_eq!(user, &format!("user-{n}"), "a pair written together");
        assert_eq!(pass, &format!("pass-{n}"), "a pair written together");
    }
    // Every publish is a new pair, or new credentials with the pair in force.
    let published: Vec<(u32, &str)> = seen.iter().map(|s| (s.2, s.3.as_str())).collect();
    assert!(
        published
            .windows(2)
            .all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 != w[1].1)),
        "published values went back in time, or a config was published twice: {published:?}"
    );
    assert!(health.vault_connected, "{health:?}");
}

#[tokio::test]
async fn a_watcher_rides_through_leader_failovers_with_every_address() {
    let mut cluster = Cluster::start().await;
    let token = periodic_token(&cluster).await;
    let client = client(&cluster.addrs(), &token);

    // Read after write through a standby: the write is forwarded to the
    // leader, and the load that follows, through the same standby, sees it
    // (the client sends the cluster state it saw; a plain read from a standby
    // right after a write is stale almost every time).
    let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
    let standby = cluster.addrs()[(leader + 1) % 3].clone();
    let through_standby = self::client(&[standby], &token);
    let writer_token = cluster.root_token().to_owned();
    let writer = self::client(&[cluster.addrs()[(leader + 1) % 3].clone()], &writer_token);
    for n in 100..110u32 {
        let data = json!({"user": format!("user-{n}"), "pass": format!("pass-{n}"), "n": n});
        writer
            .write("secret", "app", data.as_object().unwrap(), None)
            .await
            .unwrap();
        let loaded = KvOnly::load(&writer).await.unwrap();
        assert_eq!(loaded.n, n, "a standby answered from before the write");
    }
    drop(through_standby);

    ride_through_failovers(&mut cluster, &client).await;
    assert!(client.failovers() >= 1, "requests moved to another node");
}

#[tokio::test]
async fn a_watcher_rides_through_leader_failovers_behind_one_address() {
    let mut cluster = Cluster::start().await;
    let token = periodic_token(&cluster).await;
    let proxy = RoundRobinProxy::start(&cluster.addrs()).await.unwrap();
    let client = client(&[proxy.addr().to_owned()], &token);
    ride_through_failovers(&mut cluster, &client).await;
}

/// A secret that the tests below write from outside the service and read
/// through new clients.
#[derive(Debug, Deserialize, VaultConfig)]
struct Fresh {
    #[vault("fresh#n")]
    n: u32,
}

/// What new clients started right after a write made elsewhere read.
#[derive(Debug, Default)]
struct FreshReads {
    rounds: u32,
    /// Answered from before the write.
    stale: Vec<(u32, u32)>,
    /// Failed (the write not found, or another error).
    failed: Vec<(u32, String)>,
    /// How long each first load (or watcher start) took.
    took: Vec<Duration>,
    /// HTTP requests each first load sent.
    requests: Vec<u64>,
}

impl FreshReads {
    fn report(&self, setup: &str) {
        let mut took = self.took.clone();
        took.sort();
        let mut requests = self.requests.clone();
        requests.sort_unstable();
        eprintln!(
            "{setup}: {} stale and {} failed of {}; first load median {:?}, max {:?}; requests per first load median {}, max {}",
            self.stale.len(),
            self.failed.len(),
            self.rounds,
            took.get(took.len() / 2).copied().unwrap_or_default(),
            took.last().copied().unwrap_or_default(),
            requests.get(requests.len() / 2).copied().unwrap_or_default(),
            requests.last().copied().unwrap_or_default(),
        );
    }

    fn assert_all_fresh(&self, setup: &str) {
        assert!(
            self.stale.is_empty() && self.failed.is_empty(),
            "{setup}: of {} loads right after a write made elsewhere, {} answered from before it (got, written): {:?}, and {} failed: {:?}",
            self.rounds,
            self.stale.len(),
            self.stale,
            self.failed.len(),
            self.failed
        );
    }
}

/// Whether every running node answers 404 for `secret/data/fresh`: the
/// delete reached all of them.
async fn fresh_gone_everywhere(cluster: &Cluster) -> bool {
    for i in 0..cluster.addrs().len() {
        match cluster.api(i, "GET", "secret/data/fresh", None).await {
            Err(e) if e.to_string().contains("404") => {}
            _ => return false,
        }
    }
    true
}

/// `rounds` times: writes `fresh` as an operator's `bao kv put` would (the
/// root token, a plain HTTP call through the active node, nothing shared with
/// the service), then at once starts a new client on `addrs` and loads (or
/// starts a watcher, every other round). Every other write comes after the
/// secret was deleted and the delete reached every node, so a node that has
/// not seen the write answers "missing" rather than an older version.
async fn loads_after_external_writes(
    cluster: &Cluster,
    token: &str,
    addrs: &[String],
    rounds: u32,
) -> FreshReads {
    let mut seen = FreshReads {
        rounds,
        ..FreshReads::default()
    };
    for round in 0..rounds {
        let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
        let deleted_first = round % 2 == 1;
        if deleted_first {
            cluster
                .api(leader, "DELETE", "secret/metadata/fresh", None)
                .await
                .unwrap();
            let replicated = timeout(Duration::from_secs(10), async {
                while !fresh_gone_everywhere(cluster).await {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            assert!(replicated.is_ok(), "the delete did not reach every node");
        }
        let n = 1000 + round;
        cluster
            .api(
                leader,
                "POST",
                "secret/data/fresh",
                Some(json!({"data": {"n": n}})),
            )
            .await
            .unwrap();
        let client = client(addrs, token);
        let started = std::time::Instant::now();
        let got = if round % 4 >= 2 {
            Fresh::watch(&client, WatchOptions::default())
                .await
                .map(|w| w.current().n)
        } else {
            Fresh::load(&client).await.map(|f| f.n)
        };
        seen.took.push(started.elapsed());
        seen.requests.push(client.requests_sent());
        match got {
            Ok(got) if got == n => {}
            Ok(got) => seen.stale.push((got, n)),
            Err(e) => seen.failed.push((n, e.to_string())),
        }
    }
    seen
}

#[tokio::test]
async fn a_new_client_reads_a_write_made_elsewhere_through_a_standby_or_every_address() {
    let cluster = Cluster::start().await;
    let token = periodic_token(&cluster).await;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await.unwrap();
    let addrs = cluster.addrs();
    // A standby first: the client starts there.
    let standby_first: Vec<String> = (1..=3).map(|k| addrs[(leader + k) % 3].clone()).collect();
    let standby = vec![standby_first[0].clone()];
    let every = loads_after_external_writes(&cluster, &token, &standby_first, 20).await;
    every.report("every address, a standby first");
    let one = loads_after_external_writes(&cluster, &token, &standby, 20).await;
    one.report("one standby's address");
    every.assert_all_fresh("every address, a standby first");
    one.assert_all_fresh("one standby's address");
}

#[tokio::test]
async fn a_new_client_reads_a_write_made_elsewhere_behind_one_address() {
    let cluster = Cluster::start().await;
    let token = periodic_token(&cluster).await;
    let proxy = RoundRobinProxy::start(&cluster.addrs()).await.unwrap();
    let seen = loads_after_external_writes(&cluster, &token, &[proxy.addr().to_owned()], 20).await;
    seen.report("one address behind a round-robin proxy");
    seen.assert_all_fresh("one address behind a round-robin proxy");
}

/// A single server sends no `X-Vault-Index` (OpenBao 2.7.2 `-dev`, in-memory
/// storage): a new client's first load costs what it did, and a 404 (which
/// carries no index on any server) is confirmed once per client.
#[tokio::test]
async fn a_single_server_pays_nothing_for_read_after_write() {
    let server = vault_test_support::DevServer::start().await;
    server
        .kv_put("secret", "fresh", json!({"n": 7}))
        .await
        .unwrap();
    let proxy = vault_test_support::CountingProxy::start(server.addr())
        .await
        .unwrap();
    let fresh = || {
        server
            .client_builder(&[])
            .address(proxy.addr())
            .cache_ttl(Duration::ZERO)
            .build()
            .unwrap()
    };
    let client = fresh();
    assert_eq!(Fresh::load(&client).await.unwrap().n, 7);
    assert_sent(&proxy, "/v1/sys/health", 0..=0);
    assert_sent(&proxy, "/v1/secret/data/fresh", 1..=1);

    // A secret not there: a 404 carries no index on any server, so unless
    // another answer of the same load showed the server has none (the
    // mount's or the token's, without one), it is asked once more of the
    // active node (here the only one), after one `sys/health` for the
    // cluster's ID.
    server.kv_metadata_delete("secret", "fresh").await.unwrap();
    proxy.reset();
    let client = fresh();
    assert!(Fresh::load(&client).await.is_err());
    assert_sent(&proxy, "/v1/sys/health", 0..=1);
    assert_sent(&proxy, "/v1/secret/data/fresh", 0..=2);
    // ... once per client.
    proxy.reset();
    assert!(Fresh::load(&client).await.is_err());
    assert_sent(&proxy, "/v1/sys/health", 0..=0);
    assert_sent(&proxy, "/v1/secret/data/fresh", 1..=1);
}

/// `proxy` saw a number of GETs of `path` in `range`.
fn assert_sent(
    proxy: &vault_test_support::CountingProxy,
    path: &str,
    range: std::ops::RangeInclusive<usize>,
) {
    let sent = proxy.count("GET", path);
    assert!(
        range.contains(&sent),
        "{sent} GETs of {path}, expected {range:?}: {:?}",
        proxy.requests()
    );
}
