//! Leased database credentials: a real OpenBao database secrets engine against a
//! real PostgreSQL cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tokio::time::timeout;
use vault_config::kv::KvVersion;
use vault_config::{ExposeSecret, SecretString, VaultConfig, WatchOptions};
use vault_test_support::{eventually, DelayProxy, DevServer, Postgres};

#[derive(Debug, Deserialize, VaultConfig)]
struct Db {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
    #[vault(path = "backend/database", key = "host", env = "DB_HOST")]
    host: String,
}

async fn setup(default_ttl: &str, max_ttl: &str) -> (DevServer, Postgres) {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", default_ttl, max_ttl)
        .await
        .unwrap();
    server
        .kv_put("secret", "backend/database", json!({"host": "127.0.0.1"}))
        .await
        .unwrap();
    (server, pg)
}

/// A client logging in with AppRole (role `svc`, token `settings`) under
/// `policy` alone.
async fn approle_client(
    server: &DevServer,
    policy: &str,
    mut settings: serde_json::Value,
) -> vault_config::VaultClientBuilder {
    server.enable_auth("approle", "approle").await.unwrap();
    server.write_policy("app", policy).await.unwrap();
    settings["token_policies"] = json!(["app"]);
    let role_id = server.approle_role("svc", settings).await.unwrap();
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    vault_config::VaultClientBuilder::default()
        .address(server.addr())
        .auth(vault_config::AuthMethod::approle(
            role_id,
            vault_config::SecretId::Plain(SecretString::from(secret_id)),
        ))
        .env_source(vault_test_support::env_of(&[]))
}

/// Opens a connection with `db`'s credentials and runs `select 1`.
async fn select_one(db: &Db, port: u16) -> Result<i32, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(port)
        .user(&db.username)
        .password(db.password.expose_secret())
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let row = client.query_one("select 1", &[]).await?;
    drop(client);
    let _ = driver.await;
    Ok(row.get(0))
}

#[tokio::test]
async fn leased_credentials_open_a_real_connection() {
    let (server, pg) = setup("1h", "24h").await;
    let client = server.client_builder(&[]).build().unwrap();
    let db = Db::load(&client).await.unwrap();
    assert!(db.username.starts_with("v-"), "{}", db.username);
    assert_eq!(select_one(&db, pg.port()).await.unwrap(), 1);
    // Username and password come from one read: exactly one role was created.
    assert_eq!(
        pg.vault_roles().await.unwrap(),
        std::slice::from_ref(&db.username)
    );
    assert!(!format!("{db:?}").contains(db.password.expose_secret()));

    let policy = Db::vault_policy_with("secret", &|_| KvVersion::V2);
    assert!(policy.contains("path \"database/creds/app\""), "{policy}");
    // Renew and revoke are scoped to this path's own leases.
    assert!(
        policy.contains("path \"sys/leases/renew/database/creds/app/*\""),
        "{policy}"
    );
    assert!(!policy.contains("path \"sys/leases/revoke\""), "{policy}");
    assert!(
        policy.contains("path \"secret/data/backend/database\""),
        "{policy}"
    );
    // The generated policy is enough to read the credentials.
    let token = server.token_with_policy("db", &policy).await.unwrap();
    let limited = server.client_builder(&[]).token(token).build().unwrap();
    let db = Db::load(&limited).await.unwrap();
    assert_eq!(select_one(&db, pg.port()).await.unwrap(), 1);

    // ... and to renew and revoke its own leases, but no other lease.
    let own = limited.read_dynamic("database/creds/app").await.unwrap();
    let own_lease = own.lease().unwrap().id.clone();
    limited
        .renew_lease(&own_lease, Duration::from_secs(60))
        .await
        .unwrap();
    limited.revoke_lease(&own_lease).await.unwrap();
    let foreign = client.read_dynamic("database/creds/app").await.unwrap();
    let foreign_id = foreign
        .lease()
        .unwrap()
        .id
        .replace("database/creds/app", "database/creds/other");
    let denied = limited.revoke_lease(&foreign_id).await.unwrap_err();
    assert!(
        matches!(denied, vault_config::Error::PermissionDenied { .. }),
        "{denied:?}"
    );
}

#[tokio::test]
async fn a_renewable_lease_is_renewed_and_the_same_credentials_keep_working() {
    let (server, pg) = setup("3s", "1m").await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Db::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let first: Arc<Db> = watcher.current();
    // Past the first TTL: renewed at two thirds of it, the config never changes.
    eventually(Duration::from_secs(15), || {
        watcher
            .health()
            .leases
            .get("database/creds/app")
            .is_some_and(|l| l.renewals >= 2)
    })
    .await;
    assert_eq!(watcher.health().reloads, 0);
    assert_eq!(watcher.current().username, first.username);
    assert_eq!(
        select_one(&first, pg.port()).await.unwrap(),
        1,
        "the renewed login still works"
    );
    watcher.shutdown().await;
}

#[tokio::test]
async fn credentials_near_their_max_ttl_are_replaced_before_they_expire() {
    let (server, pg) = setup("3s", "3s").await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Db::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    let old = watcher.current();
    timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("no new credentials in time")
        .unwrap();
    let new = rx.borrow_and_update().clone();
    assert_ne!(new.username, old.username, "new credentials were published");
    // Both work while both are valid: in-flight work on the old ones can finish.
    assert_eq!(
        select_one(&old, pg.port()).await.unwrap(),
        1,
        "old credentials still valid"
    );
    assert_eq!(select_one(&new, pg.port()).await.unwrap(), 1);
    assert_eq!(
        watcher.health().last_changed.len(),
        2,
        "username and password change together"
    );
    watcher.shutdown().await;
}

#[tokio::test]
async fn revoke_on_shutdown_leaves_no_role_behind() {
    let (server, pg) = setup("1h", "24h").await;
    let client = server.client_builder(&[]).build().unwrap();
    let options = WatchOptions::default()
        .interval(Duration::from_secs(30))
        .revoke_on_shutdown(true);
    let watcher = Db::watch(&client, options).await.unwrap();
    let db = watcher.current();
    assert_eq!(
        pg.vault_roles().await.unwrap(),
        std::slice::from_ref(&db.username)
    );
    watcher.shutdown().await;
    assert!(
        pg.vault_roles().await.unwrap().is_empty(),
        "the role was dropped on revoke"
    );
    assert!(
        select_one(&db, pg.port()).await.is_err(),
        "revoked credentials no longer connect"
    );
}

#[tokio::test]
async fn a_replaced_lease_is_revoked_after_the_grace_period() {
    let (server, pg) = setup("6s", "6s").await;
    let client = server.client_builder(&[]).build().unwrap();
    let options = WatchOptions::default()
        .interval(Duration::from_secs(30))
        .revoke_replaced_leases_after(Duration::from_millis(200));
    let watcher = Db::watch(&client, options).await.unwrap();
    let loaded = Instant::now();
    let old = watcher.current();
    let mut rx = watcher.subscribe();
    timeout(Duration::from_secs(15), rx.changed())
        .await
        .expect("no new credentials in time")
        .unwrap();
    let new = rx.borrow_and_update().clone();
    let start = Instant::now();
    loop {
        let roles = pg.vault_roles().await.unwrap();
        if !roles.contains(&old.username) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "old role still there: {roles:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        loaded.elapsed() < Duration::from_secs(6),
        "revoked by the watcher, before the lease's own expiry"
    );
    assert_eq!(select_one(&new, pg.port()).await.unwrap(), 1);
    watcher.shutdown().await;
}

/// Leased credentials next to a KV key that may be missing.
#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)]
struct DbWithKey {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
    #[vault(path = "backend/database", key = "port", env = "DB_PORT")]
    port: u16,
}

#[tokio::test]
async fn a_failed_load_revokes_the_credentials_it_leased() {
    let (server, pg) = setup("1h", "24h").await;
    // `backend/database` has no `port`: every load fails after the lease was read.
    let client = server.client_builder(&[]).build().unwrap();
    for _ in 0..3 {
        let err = DbWithKey::load(&client).await.unwrap_err();
        assert!(
            matches!(&err, vault_config::Error::Missing { field, .. } if field == "port"),
            "{err:?}"
        );
    }
    assert_eq!(
        pg.vault_roles().await.unwrap(),
        Vec::<String>::new(),
        "no database role left behind"
    );
    // A watcher that cannot start leaves none either.
    assert!(DbWithKey::watch(&client, WatchOptions::default())
        .await
        .is_err());
    assert!(pg.vault_roles().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sealed_vault_with_a_lease_due_is_polled_with_backoff() {
    let (server, _pg) = setup("3s", "1m").await;
    let proxy = vault_test_support::CountingProxy::start(server.addr())
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .max_retries(0)
        .build()
        .unwrap();
    let watcher = Db::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_secs(1))
            .jitter(0.0),
    )
    .await
    .unwrap();
    server.cli(&["operator", "seal"]).await.unwrap();
    proxy.reset();
    // Six seconds sealed, the lease due after two: polls and renewals back off.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let requests = proxy.requests().len();
    assert!(
        requests <= 20,
        "{requests} requests in 6 s while sealed: {:?}",
        proxy.requests()
    );
    let health = watcher.health();
    assert!(!health.vault_connected, "{health:?}");
    assert!(health.consecutive_failures >= 2, "{health:?}");
}

/// A `Db` watcher at 200 ms under a token holding only policy `hcl`.
async fn watch_under(server: &DevServer, name: &str, hcl: &str) -> vault_config::Watcher<Db> {
    let token = server.token_with_policy(name, hcl).await.unwrap();
    let client = server
        .client_builder(&[])
        .token(token)
        .kv_version("secret", KvVersion::V2)
        .build()
        .unwrap();
    Db::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn leases_are_renewed_while_a_metadata_read_is_denied() {
    let (server, pg) = setup("3s", "1m").await;
    // A hand-written policy: the data, but not the metadata, of backend/database.
    let policy = r#"
path "secret/data/backend/database" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew/database/creds/app/*" { capabilities = ["update"] }
"#;
    let watcher = watch_under(&server, "no-metadata", policy).await;
    let first = watcher.current();
    eventually(Duration::from_secs(15), || {
        watcher
            .health()
            .leases
            .get("database/creds/app")
            .is_some_and(|l| l.renewals >= 2)
    })
    .await;
    // The metadata denied, the path is polled by reading its data: no
    // error, and health names it.
    let health = watcher.health();
    assert_eq!(health.last_error, None, "{health:?}");
    assert_eq!(
        health.polled_by_data,
        vec!["secret/backend/database".to_owned()]
    );
    assert_eq!(watcher.current().username, first.username);
    assert_eq!(select_one(&first, pg.port()).await.unwrap(), 1);
}

#[tokio::test]
async fn new_credentials_go_out_while_a_bad_rotation_is_held_back() {
    let (server, pg) = setup("3s", "3s").await;
    server
        .kv_put(
            "secret",
            "backend/database",
            json!({"host": "127.0.0.1", "port": "5432"}),
        )
        .await
        .unwrap();
    #[derive(Debug, Deserialize, VaultConfig)]
    struct Strict {
        #[vault(dynamic = "database/creds/app", key = "username")]
        username: String,
        #[vault(dynamic = "database/creds/app", key = "password")]
        password: SecretString,
        #[vault(path = "backend/database", key = "host", env = "DB_HOST")]
        host: String,
        #[vault(path = "backend/database", key = "port", env = "DB_PORT")]
        port: u16,
    }
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Strict::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0)
            .revoke_replaced_leases_after(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let old = watcher.current();
    let mut rx = watcher.subscribe();
    // A bad rotation of the KV secret, held back at every poll from now on.
    server
        .kv_put(
            "secret",
            "backend/database",
            json!({"host": "127.0.0.1", "port": "bad"}),
        )
        .await
        .unwrap();
    // The lease still reaches its max TTL: new credentials are published
    // with the KV values in force, and the error stays in health.
    timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("no new credentials in time")
        .unwrap();
    let new = rx.borrow_and_update().clone();
    assert_ne!(new.username, old.username);
    assert_eq!(new.port, 5432, "the held-back value is not in it");
    let db = Db {
        username: new.username.clone(),
        password: SecretString::from(new.password.expose_secret().to_owned()),
        host: new.host.clone(),
    };
    assert_eq!(select_one(&db, pg.port()).await.unwrap(), 1);
    let health = watcher.health();
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("port")),
        "{health:?}"
    );
    // The replaced credentials go after the grace period; the new ones stay.
    let mut roles = Vec::new();
    for _ in 0..50 {
        roles = pg.vault_roles().await.unwrap();
        if !roles.contains(&old.username) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(roles.contains(&new.username), "{roles:?}");
    assert!(!roles.contains(&old.username), "{roles:?}");
}

#[tokio::test]
async fn a_failing_credentials_read_backs_off() {
    // Non-renewable in effect: the max TTL equals the TTL, so the lease is
    // replaced at two thirds of it.
    let (server, pg) = setup("3s", "3s").await;
    let proxy = vault_test_support::CountingProxy::start(server.addr())
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .max_retries(0)
        .build()
        .unwrap();
    let watcher = Db::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    // The database refuses new roles: every new lease fails with Vault's 500.
    pg.psql("ALTER ROLE vaultadmin NOSUPERUSER NOCREATEROLE")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let reads = proxy.count("GET", "/v1/database/creds/app");
    // One read at start; then tries at about 2 s (renewal capped), 3, 5: not
    // one every 10 ms.
    assert!(
        (2..=8).contains(&reads),
        "{reads} credential reads: {:?}",
        proxy.requests()
    );
    let health = watcher.health();
    assert!(health.last_error.is_some(), "{health:?}");
}

#[tokio::test]
async fn a_lease_gets_the_ttl_asked_for_within_the_role_max() {
    #[derive(Debug, Deserialize, VaultConfig)]
    #[allow(dead_code)]
    struct LongLived {
        #[vault(dynamic = "database/creds/app", key = "username", ttl = "2h")]
        username: String,
        #[vault(dynamic = "database/creds/app", key = "password")]
        password: SecretString,
    }
    let (server, pg) = setup("1h", "90m").await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = LongLived::watch(&client, WatchOptions::default())
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lease = watcher.health().leases["database/creds/app"].clone();
    let ttl = lease.expires_at.saturating_sub(now);
    // Asked for 2 h: the role's max of 90 minutes bounds it (the default is 1 h).
    assert!((5300..=5400).contains(&ttl), "lease of {ttl} s");
    assert_eq!(
        pg.vault_roles().await.unwrap().len(),
        1,
        "one read, one lease"
    );
}

#[derive(Debug, Deserialize, VaultConfig)]
struct StaticDb {
    #[vault(dynamic = "database/static-creds/reporting", key = "username")]
    username: String,
    #[vault(dynamic = "database/static-creds/reporting", key = "password")]
    password: SecretString,
}

async fn static_login(db: &StaticDb, port: u16) -> Result<i32, tokio_postgres::Error> {
    let as_db = Db {
        username: db.username.clone(),
        password: SecretString::from(db.password.expose_secret().to_owned()),
        host: "127.0.0.1".to_owned(),
    };
    select_one(&as_db, port).await
}

#[tokio::test]
async fn a_static_role_is_read_again_after_each_rotation() {
    let (server, pg) = setup("1h", "24h").await;
    pg.static_role(&server, "reporting", "reporting_user", "5s")
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let loaded = StaticDb::load(&client).await.unwrap();
    assert_eq!(loaded.username, "reporting_user");
    assert_eq!(static_login(&loaded, pg.port()).await.unwrap(), 1);

    // Polling hourly: the rotation Vault announced (ttl) is what wakes it.
    let watcher = StaticDb::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    let first = watcher.current();
    let rotation = watcher.health().rotations["database/static-creds/reporting"].clone();
    assert!(rotation.last_rotation.is_some(), "{rotation:?}");
    // Vault rotates on a 5 s tick; a read that misses it backs off (up to
    // 8 s): a generous bound, not a timing check.
    timeout(Duration::from_secs(30), rx.changed())
        .await
        .expect("no new password after the rotation period")
        .unwrap();
    let second = rx.borrow_and_update().clone();
    assert_eq!(second.username, first.username, "the same database user");
    assert_ne!(
        second.password.expose_secret(),
        first.password.expose_secret()
    );
    assert_eq!(static_login(&second, pg.port()).await.unwrap(), 1);
    assert!(
        static_login(&first, pg.port()).await.is_err(),
        "the old password no longer logs in"
    );

    // A forced rotation shows at the next poll.
    server
        .api(
            "POST",
            "database/rotate-role/reporting",
            None,
            Some(json!({})),
        )
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap(), "published");
    let third = watcher.current();
    assert_ne!(
        third.password.expose_secret(),
        second.password.expose_secret()
    );
    assert_eq!(static_login(&third, pg.port()).await.unwrap(), 1);
    assert!(static_login(&second, pg.port()).await.is_err());
    let health = serde_json::to_string(&watcher.health()).unwrap();
    assert!(!health.contains(third.password.expose_secret()), "{health}");
}

/// Tries the credentials in force every 500 ms for `for_how_long`; returns
/// the failures, each with when it happened and the user tried.
async fn try_connections<T: Send + Sync + 'static>(
    watcher: &vault_config::Watcher<T>,
    port: u16,
    for_how_long: Duration,
    creds: impl Fn(&T) -> Db,
) -> (usize, Vec<String>) {
    let started = Instant::now();
    let mut tries = 0;
    let mut failures = Vec::new();
    while started.elapsed() < for_how_long {
        let db = creds(&watcher.current());
        tries += 1;
        if let Err(e) = select_one(&db, port).await {
            failures.push(format!(
                "{:.1}s as {}: {e}",
                started.elapsed().as_secs_f64(),
                db.username
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (tries, failures)
}

#[tokio::test]
async fn credentials_in_force_connect_across_logins_at_the_token_max_ttl() {
    // An AppRole token of 6 s, at most 10 s: the client logs in again every
    // few seconds, and Vault revokes the leases of each token when it ends.
    // The watcher must move to leases made under the new token before then.
    let (server, pg) = setup("1h", "24h").await;
    let policy = Db::vault_policy_with("secret", &|_| KvVersion::V2);
    let client = approle_client(
        &server,
        &policy,
        json!({"token_ttl": "6s", "token_max_ttl": "10s"}),
    )
    .await
    .cache_ttl(Duration::ZERO)
    .build()
    .unwrap();
    let watcher = Db::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_secs(1))
            .revoke_replaced_leases_after(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    let first_user = watcher.current().username.clone();
    let (tries, failures) =
        try_connections(&watcher, pg.port(), Duration::from_secs(22), |db| Db {
            username: db.username.clone(),
            password: db.password.clone(),
            host: db.host.clone(),
        })
        .await;
    let logins = client.auth_status().unwrap().logins;
    assert!(logins >= 3, "the token was replaced {logins} times");
    assert!(
        failures.is_empty(),
        "{} of {tries} connections with the credentials in force failed: {failures:#?}\n{:?}",
        failures.len(),
        watcher.health()
    );
    assert_ne!(
        watcher.current().username,
        first_user,
        "the credentials were never replaced under a new token"
    );
    // health().leases names the lease in force, alive.
    let health = watcher.health();
    let lease = &health.leases["database/creds/app"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(lease.expires_at > now, "{lease:?}");
    // Each replaced user was revoked (the old token's end, or the grace):
    // only the one in force (and at most one being replaced) remains.
    let started = Instant::now();
    loop {
        let roles = pg.vault_roles().await.unwrap();
        if roles.len() <= 2 && roles.contains(&watcher.current().username) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "replaced credentials pile up: {roles:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_static_role_whose_rotation_fails_is_read_with_backoff_and_shows_overdue() {
    let (server, pg) = setup("1h", "24h").await;
    pg.static_role(&server, "reporting", "reporting_user", "5s")
        .await
        .unwrap();
    let proxy = vault_test_support::CountingProxy::start(server.addr())
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let watcher = StaticDb::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_secs(2))
            .jitter(0.0),
    )
    .await
    .unwrap();
    // The database now refuses Vault's `ALTER ROLE`: the user is gone.
    pg.psql("DROP ROLE reporting_user").await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reads = proxy.count("GET", "/v1/database/static-creds/reporting");
    // A read per 2 s poll, and backed-off reads (1, 2, 4, 8 s...) when the
    // rotation is due: never a loop (673 requests in 10 s before).
    assert!(
        reads <= 12,
        "{reads} reads of the static role in 10 s: {:?}",
        proxy.requests()
    );
    eventually(Duration::from_secs(10), || {
        watcher.health().rotations["database/static-creds/reporting"].overdue
    })
    .await;
    let health = watcher.health();
    assert!(health.vault_connected, "{health:?}");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct StaticWithKv {
    #[vault(dynamic = "database/static-creds/reporting", key = "username")]
    username: String,
    #[vault(dynamic = "database/static-creds/reporting", key = "password")]
    password: SecretString,
    #[vault(path = "backend/database", key = "port", env = "DB_PORT")]
    port: u16,
}

#[tokio::test]
async fn a_static_roles_new_password_goes_out_while_a_bad_rotation_is_held_back() {
    let (server, pg) = setup("1h", "24h").await;
    pg.static_role(&server, "reporting", "reporting_user", "1h")
        .await
        .unwrap();
    server
        .kv_put("secret", "backend/database", json!({"port": "5432"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = StaticWithKv::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(500))
            .jitter(0.0),
    )
    .await
    .unwrap();
    let first = watcher.current();
    // A bad KV write: held back.
    server
        .kv_put("secret", "backend/database", json!({"port": "not a port"}))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || {
        watcher.health().last_error.is_some()
    })
    .await;
    server
        .api(
            "POST",
            "database/rotate-role/reporting",
            None,
            Some(json!({})),
        )
        .await
        .unwrap();
    // At a following poll the new password is in force, with the port in
    // force (bounded only so that a broken build fails instead of hanging).
    let started = Instant::now();
    while watcher.current().password.expose_secret() == first.password.expose_secret() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the old, refused password is still handed out: {:?}",
            watcher.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = watcher.current();
    assert_eq!(now.port, 5432, "the KV values in force stay");
    let as_static = StaticDb {
        username: now.username.clone(),
        password: now.password.clone(),
    };
    assert_eq!(static_login(&as_static, pg.port()).await.unwrap(), 1);
    let health = watcher.health();
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("port")),
        "the held-back rotation still shows: {health:?}"
    );
}

#[tokio::test]
async fn a_policy_without_renewal_shows_in_health_without_lease_ids() {
    let (server, _pg) = setup("3s", "1m").await;
    // Hand-written: the credentials, but no `sys/leases/renew` line.
    let policy = r#"
path "secret/data/backend/database" { capabilities = ["read"] }
path "secret/metadata/backend/database" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
"#;
    let watcher = watch_under(&server, "no-renew", policy).await;
    let first = watcher.current().username.clone();
    eventually(Duration::from_secs(10), || {
        watcher.health().last_error.is_some()
    })
    .await;
    let health = watcher.health();
    let error = health.last_error.clone().unwrap();
    assert!(
        error.contains("sys/leases/renew/database/creds/app") && error.contains("`update`"),
        "{error}"
    );
    assert!(
        !error.contains("database/creds/app/"),
        "a lease ID: {error}"
    );
    assert!(health.vault_connected, "{health:?}");
    // The credentials are read anew instead, before they expire.
    eventually(Duration::from_secs(10), || {
        watcher.current().username != first
    })
    .await;
}

#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)]
struct Creds {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
}

/// Seconds since the Unix epoch of an RFC 3339 time as Vault writes it
/// (`2026-12-08T03:10:41.612874529Z`, or with a `+01:00` offset), read by
/// coreutils' `date`.
fn unix_of(text: &str) -> f64 {
    let out = std::process::Command::new("date")
        .args(["-d", text, "+%s.%N"])
        .output()
        .expect("coreutils' date");
    assert!(out.status.success(), "date -d {text}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Over a slow network (1.5 s each way), a watcher counts a lease's time
/// from when it asked for it, never from the answer: Vault grants it in
/// between, so a clock started at the answer (or after the rest of the
/// load) would renew or replace the lease late by that much.
#[tokio::test]
async fn a_leases_clock_starts_when_it_was_asked_for() {
    let (server, _pg) = setup("30s", "1h").await;
    assert_eq!(unix_of("1970-01-02T00:00:01.5Z"), 86_401.5);
    assert_eq!(unix_of("1970-01-01T01:00:00+01:00"), 0.0);
    let slow = DelayProxy::start(server.addr(), Duration::from_millis(1500))
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .address(slow.addr())
        .build()
        .unwrap();
    let watcher = Creds::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let believed = watcher.health().leases["database/creds/app"].expires_at as f64;
    // What Vault says, asked directly.
    let listed = server
        .api("LIST", "sys/leases/lookup/database/creds/app", None, None)
        .await
        .unwrap();
    let keys = listed["data"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    let id = format!("database/creds/app/{}", keys[0].as_str().unwrap());
    let lease = server
        .api(
            "POST",
            "sys/leases/lookup",
            None,
            Some(json!({ "lease_id": id })),
        )
        .await
        .unwrap();
    let expires = unix_of(lease["data"]["expire_time"].as_str().unwrap());
    // Asked at least 1.5 s before Vault granted it: the watcher's expiry
    // (whole seconds, rounded down) is at least that much earlier than
    // Vault's; counted from the answer it would be 1.5 s or more later.
    assert!(
        believed <= expires - 1.5,
        "the watcher thinks the lease lasts until {believed}, Vault until {expires}"
    );
    watcher.shutdown().await;
}

#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)]
struct AskedTtl {
    #[vault(dynamic = "database/creds/app", key = "username", ttl = "2h")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
}

/// A lease lengthened to the `ttl` asked for keeps the token it was made
/// under (the renewal's answer does not say which): under a login method,
/// whose token is not the client's first, it is held, not taken for a
/// lease of a gone token and read again in a loop.
#[tokio::test]
async fn a_lease_given_a_ttl_under_a_login_method_is_held() {
    let (server, pg) = setup("1h", "90m").await;
    let policy = AskedTtl::vault_policy_with("secret", &|_| KvVersion::V2);
    let client = approle_client(&server, &policy, json!({"token_ttl": "1h"}))
        .await
        .build()
        .unwrap();
    let watcher = AskedTtl::watch(
        &client,
        WatchOptions::default().interval(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let first = watcher.current();
    // Ten polls: a lease taken for a gone token's is replaced at each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let health = watcher.health();
    assert_eq!(health.reloads, 0, "{health:?}");
    assert_eq!(watcher.current().username, first.username);
    assert_eq!(
        pg.vault_roles().await.unwrap().len(),
        1,
        "one read, one lease"
    );
    watcher.shutdown().await;
}
