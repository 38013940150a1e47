//! Hot reload against a real OpenBao/Vault dev server.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::timeout;
use vault_config::{Error, ExposeSecret, SecretString, VaultConfig, WatchOptions};
use vault_test_support::{CountingProxy, DevServer};

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#port", env = "DATABASE_PORT")]
    port: u16,
    #[vault("app-prod#AOS_API_KEY")]
    api_key: SecretString,
}

const WAIT: Duration = Duration::from_secs(10);

async fn seeded() -> DevServer {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-1", "port": "5432"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-1"}))
        .await
        .unwrap();
    server
}

fn fast() -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(100))
        .jitter(0.0)
}

/// Waits for the next publish, failing the test after `WAIT`.
async fn next(rx: &mut watch::Receiver<Arc<Service>>) -> Arc<Service> {
    timeout(WAIT, rx.changed())
        .await
        .expect("no publish in time")
        .expect("watcher gone");
    rx.borrow_and_update().clone()
}

#[tokio::test]
async fn a_rotation_reaches_subscribers_within_an_interval() {
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Service::watch(&client, fast()).await.unwrap();
    assert_eq!(watcher.current().database_url.expose_secret(), "url-1");
    let mut rx = watcher.subscribe();
    let mut health_rx = watcher.subscribe_health();
    health_rx.borrow_and_update();

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-2", "port": "5432"}),
        )
        .await
        .unwrap();
    let cfg = next(&mut rx).await;
    assert_eq!(cfg.database_url.expose_secret(), "url-2");
    assert_eq!(watcher.current().database_url.expose_secret(), "url-2");
    let health = watcher.health();
    assert_eq!(health.reloads, 1);
    assert_eq!(health.last_changed, ["database_url"]);
    assert_eq!(health.versions.get("secret/database"), Some(&2));
    assert!(health.vault_connected);
    // The health channel saw the reload too, complete, before the config woke us.
    assert!(health_rx.has_changed().unwrap());
    assert_eq!(health_rx.borrow_and_update().reloads, 1);
}

#[tokio::test]
async fn one_write_of_several_keys_is_one_publish_and_same_values_are_none() {
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Service::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-2", "port": "6432"}),
        )
        .await
        .unwrap();
    assert!(
        watcher.refresh().await.unwrap(),
        "the rotation is published"
    );
    let cfg = rx.borrow_and_update().clone();
    assert_eq!(
        (cfg.database_url.expose_secret(), cfg.port),
        ("url-2", 6432)
    );
    assert!(!watcher.refresh().await.unwrap(), "nothing new: no publish");
    assert!(!rx.has_changed().unwrap());

    // A new version holding the same values changes nothing a subscriber sees.
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-2", "port": "6432"}),
        )
        .await
        .unwrap();
    assert!(!watcher.refresh().await.unwrap());
    assert!(!rx.has_changed().unwrap());
    let health = watcher.health();
    assert_eq!(health.reloads, 1);
    assert_eq!(health.versions.get("secret/database"), Some(&3));
    let mut changed = health.last_changed.clone();
    changed.sort();
    assert_eq!(changed, ["database_url", "port"]);
}

#[tokio::test]
async fn an_invalid_rotation_is_held_back_until_fixed() {
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Service::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let rx = watcher.subscribe();

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-2", "port": "hunter2"}),
        )
        .await
        .unwrap();
    let err = watcher.refresh().await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "port"),
        "{err:?}"
    );
    assert!(!rx.has_changed().unwrap(), "nothing published");
    assert_eq!(
        watcher.current().database_url.expose_secret(),
        "url-1",
        "the last good config stays"
    );
    let health = watcher.health();
    let last_error = health.last_error.clone().unwrap();
    assert!(
        last_error.contains("port") && last_error.contains("secret/data/database"),
        "{last_error}"
    );
    assert!(!last_error.contains("hunter2"), "{last_error}");
    let health_json = serde_json::to_string(&health).unwrap();
    assert!(
        !health_json.contains("hunter2") && !health_json.contains("url-2"),
        "{health_json}"
    );

    // A required key deleted is held back the same way.
    server
        .kv_put("secret", "app-prod", json!({"OTHER": "x"}))
        .await
        .unwrap();
    let err = watcher.refresh().await.unwrap_err();
    assert!(
        matches!(&err, Error::Missing { field, .. } if field == "api_key")
            || matches!(&err, Error::Invalid { .. }),
        "{err:?}"
    );

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-3", "port": "7432"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-2"}))
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    let cfg = watcher.current();
    assert_eq!(
        (
            cfg.database_url.expose_secret(),
            cfg.port,
            cfg.api_key.expose_secret()
        ),
        ("url-3", 7432, "key-2")
    );
    assert_eq!(watcher.health().last_error, None);
}

#[tokio::test]
async fn an_outage_keeps_the_last_config_and_recovery_publishes_changes() {
    let mut server = seeded().await;
    let client = server.client_builder(&[]).max_retries(0).build().unwrap();
    let options = fast().max_backoff(Duration::from_millis(400));
    let watcher = Service::watch(&client, options).await.unwrap();
    let mut rx = watcher.subscribe();
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-2", "port": "5432"}),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.database_url.expose_secret(), "url-2");
    assert_eq!(watcher.health().versions.get("secret/database"), Some(&2));

    server.stop().await;
    let err = watcher.refresh().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let health = watcher.health();
    assert!(!health.vault_connected);
    assert!(health.consecutive_failures >= 1);
    assert_eq!(watcher.current().database_url.expose_secret(), "url-2");

    // A rebuilt Vault starts over at version 1: a different version is a change.
    server.restart().await.unwrap();
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "url-rebuilt", "port": "5432"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-1"}))
        .await
        .unwrap();
    let cfg = next(&mut rx).await;
    assert_eq!(cfg.database_url.expose_secret(), "url-rebuilt");
    let health = watcher.health();
    assert!(health.vault_connected);
    assert_eq!(health.consecutive_failures, 0);
    assert_eq!(
        health.versions.get("secret/database"),
        Some(&1),
        "the version went back: still a change"
    );
    assert_eq!(health.versions.get("secret/app-prod"), Some(&1));
    assert_eq!(
        health.last_changed,
        ["database_url"],
        "app-prod holds the same value as before"
    );
}

#[tokio::test]
async fn polls_read_only_metadata_when_nothing_changed() {
    let server = seeded().await;
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();
    let watcher = Service::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    proxy.reset();
    assert!(!watcher.refresh().await.unwrap());
    let requests = proxy.requests();
    assert_eq!(
        requests.len(),
        2,
        "one metadata read per distinct KV v2 path: {requests:?}"
    );
    assert_eq!(
        proxy.count("GET", "/v1/secret/metadata/"),
        2,
        "{requests:?}"
    );

    proxy.reset();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-2"}))
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    assert_eq!(
        proxy.count("GET", "/v1/secret/data/app-prod"),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("GET", "/v1/secret/data/database"),
        0,
        "unchanged paths are not re-read"
    );
}

#[tokio::test]
async fn dropping_the_watcher_ends_its_task() {
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Service::watch(&client, fast()).await.unwrap();
    let mut rx = watcher.subscribe();
    drop(watcher);
    // The task owned the sender: once it has ended, `changed` reports the channel closed.
    let closed = timeout(WAIT, rx.changed())
        .await
        .expect("the task did not end");
    assert!(closed.is_err());

    let watcher = Service::watch(&client, fast()).await.unwrap();
    let mut rx = watcher.subscribe();
    watcher.shutdown().await;
    assert!(rx.changed().await.is_err(), "shutdown ended the task");
}

#[tokio::test]
async fn watch_fails_like_load_and_health_serializes() {
    let server = DevServer::start().await;
    let client = server.client_builder(&[]).build().unwrap();
    let err = Service::watch(&client, fast()).await.unwrap_err();
    assert!(matches!(err, Error::Missing { .. }), "{err:?}");

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "u", "port": "1"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "k"}))
        .await
        .unwrap();
    let watcher = Service::watch(&client, fast()).await.unwrap();
    let json = serde_json::to_value(watcher.health()).unwrap();
    assert_eq!(json["vault_enabled"], true);
    assert_eq!(json["vault_connected"], true);
    assert!(json["last_success"].as_u64().is_some());
    assert_eq!(json["versions"]["secret/database"], 1);
    let debug = format!("{watcher:?}");
    assert!(
        !debug.contains("\"u\"") && !debug.contains("\"k\""),
        "{debug}"
    );
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "legacy")]
struct Legacy {
    #[vault("app#API_KEY")]
    api_key: SecretString,
}

#[tokio::test]
async fn kv_v1_paths_are_re_read_and_compared() {
    let server = DevServer::start().await;
    server.enable_kv("legacy", 1, None).await.unwrap();
    server
        .kv_put("legacy", "app", json!({"API_KEY": "v1-a"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Legacy::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    assert!(!watcher.refresh().await.unwrap(), "same data: no publish");
    server
        .kv_put("legacy", "app", json!({"API_KEY": "v1-b"}))
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    assert_eq!(watcher.current().api_key.expose_secret(), "v1-b");
    assert!(
        watcher.health().versions.is_empty(),
        "KV v1 has no versions"
    );
}

#[tokio::test]
async fn a_data_only_policy_still_sees_rotations() {
    // The seeds' hand-written policy (ai-gateway): the data, no metadata.
    let server = seeded().await;
    let policy = r#"
path "secret/data/database" { capabilities = ["read", "list"] }
path "secret/data/app-prod" { capabilities = ["read", "list"] }
"#;
    let token = server.token_with_policy("data-only", policy).await.unwrap();
    let client = server
        .client_builder(&[])
        .token(token)
        .kv_version("secret", vault_config::kv::KvVersion::V2)
        .build()
        .unwrap();
    let watcher = Service::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-2"}))
        .await
        .unwrap();
    let cfg = timeout(WAIT, rx.changed())
        .await
        .map(|_| rx.borrow_and_update().clone())
        .unwrap_or_else(|_| panic!("no rotation seen: {:?}", watcher.health()));
    assert_eq!(cfg.api_key.expose_secret(), "key-2");
    let health = watcher.health();
    assert_eq!(
        health.polled_by_data,
        vec!["secret/app-prod".to_owned(), "secret/database".to_owned()],
        "{health:?}"
    );
    assert_eq!(health.last_error, None, "{health:?}");
    assert!(health.vault_connected, "{health:?}");
    // A same-value write publishes nothing; the next real change does.
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-2"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !rx.has_changed().unwrap(),
        "a same-value write was published"
    );
    assert_eq!(watcher.health().reloads, 1);
}

#[tokio::test]
async fn a_key_deleted_under_a_stale_env_shows_its_source_or_is_refused() {
    let server = seeded().await;
    // An old `.env` left in the process environment.
    let stale = [("AOS_API_KEY", "key-from-an-old-env-file")];
    let lenient = server.client_builder(&stale).build().unwrap();
    let strict = server
        .client_builder(&stale)
        .env_fallback(false)
        .build()
        .unwrap();
    let options = WatchOptions::default()
        .interval(Duration::from_millis(300))
        .jitter(0.0);
    let moved = Service::watch(&lenient, options).await.unwrap();
    let refused = Service::watch(&strict, options).await.unwrap();
    for w in [&moved, &refused] {
        assert_eq!(
            w.health().sources["api_key"],
            "vault secret/data/app-prod#AOS_API_KEY (version 1)"
        );
    }
    server
        .kv_put("secret", "app-prod", json!({"OTHER": "x"}))
        .await
        .unwrap();
    // The lenient client moves to env, and health says so.
    eventually_async(|| moved.current().api_key.expose_secret() == "key-from-an-old-env-file")
        .await;
    assert_eq!(moved.health().sources["api_key"], "env var AOS_API_KEY");
    // The strict one holds the rotation back and says why.
    eventually_async(|| refused.health().last_error.is_some()).await;
    let health = refused.health();
    let error = health.last_error.clone().unwrap();
    assert!(error.contains("api_key"), "{error}");
    assert_eq!(refused.current().api_key.expose_secret(), "key-1");
    assert!(!format!("{health:?}").contains("key-from-an-old-env-file"));
    // A held-back rotation is no outage: polls go on at the interval (six
    // take about 2 s; backing off 0.6, 1.2, 2.4, 3 s... would make four in
    // 8 s), so an operator's fix is published at the next one.
    let before = refused.health().consecutive_failures;
    let started = std::time::Instant::now();
    while refused.health().consecutive_failures - before < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{} polls in 8 s at a 300 ms interval",
            refused.health().consecutive_failures - before
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-3"}))
        .await
        .unwrap();
    eventually_async(|| refused.current().api_key.expose_secret() == "key-3").await;
    assert_eq!(refused.health().last_error, None);
    // The two watchers poll on their own clocks: the lenient one reaches
    // version 3 within a poll of the strict one, not at the same instant.
    eventually_async(|| moved.current().api_key.expose_secret() == "key-3").await;
    assert_eq!(
        moved.health().sources["api_key"],
        "vault secret/data/app-prod#AOS_API_KEY (version 3)"
    );
}

/// Waits up to `WAIT` for `check`.
async fn eventually_async(check: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < WAIT,
            "condition not reached within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
