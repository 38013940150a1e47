//! The seeds' secret layouts against a real OpenBao dev server: values as
//! Vault stores them, whole secrets as maps, paths chosen at deploy time.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::json;
use vault_config::{ExposeSecret, SecretString, VaultConfig};
use vault_test_support::DevServer;

#[derive(Debug, Deserialize, PartialEq)]
struct Pool {
    max: u32,
    idle_timeout_secs: u64,
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Typed {
    #[vault("db#port", env = "DB_PORT")]
    port: u16,
    #[vault("db#port_text")]
    port_text: u16,
    #[vault("db#ssl")]
    ssl: bool,
    #[vault("db#ssl_text")]
    ssl_text: bool,
    #[vault("db#ratio")]
    ratio: f64,
    #[vault("db#hosts")]
    hosts: Vec<String>,
    #[vault("db#pool")]
    pool: Pool,
    #[vault("db#labels")]
    labels: BTreeMap<String, String>,
    #[vault("db#nothing")]
    nothing: Option<String>,
}

#[tokio::test]
async fn values_load_as_vault_stores_them() {
    let server = DevServer::start().await;
    // JSON as the API or `kv put @file.json` stores it, and strings as the
    // CLI's `key=value` stores them.
    server
        .kv_put(
            "secret",
            "db",
            json!({
                "port": 5432,
                "port_text": "6432",
                "ssl": true,
                "ssl_text": "false",
                "ratio": 0.75,
                "hosts": ["db-1", "db-2"],
                "pool": {"max": 20, "idle_timeout_secs": 300},
                "labels": {"team": "platform", "tier": "1"},
                "nothing": null,
            }),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let cfg = Typed::load(&client).await.unwrap();
    assert_eq!((cfg.port, cfg.port_text), (5432, 6432));
    assert_eq!((cfg.ssl, cfg.ssl_text), (true, false));
    assert!((cfg.ratio - 0.75).abs() < f64::EPSILON);
    assert_eq!(cfg.hosts, ["db-1", "db-2"]);
    assert_eq!(
        cfg.pool,
        Pool {
            max: 20,
            idle_timeout_secs: 300
        }
    );
    assert_eq!(cfg.labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(cfg.nothing, None);
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Catalogue {
    #[vault(path = "gateway/api-keys", key = "*")]
    keys: HashMap<String, SecretString>,
    #[vault(path = "gateway/limits", key = "*")]
    limits: BTreeMap<String, u32>,
}

#[tokio::test]
async fn a_whole_secret_fills_a_map() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "gateway/api-keys",
            json!({"client-a": "key-a", "client-b": "key-b"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "gateway/limits",
            json!({"client-a": "100", "client-b": 5}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let cfg = Catalogue::load(&client).await.unwrap();
    let mut names: Vec<&String> = cfg.keys.keys().collect();
    names.sort();
    assert_eq!(names, ["client-a", "client-b"]);
    assert_eq!(cfg.keys["client-b"].expose_secret(), "key-b");
    assert_eq!(cfg.limits.get("client-a"), Some(&100));
    assert!(
        !format!("{cfg:?}").contains("key-a"),
        "values stay redacted"
    );

    // The watcher publishes when a key is added, changed or removed.
    let watcher = Catalogue::watch(
        &client,
        vault_config::WatchOptions::default().interval(std::time::Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    for (data, expected) in [
        (
            json!({"client-a": "key-a", "client-b": "key-b", "client-c": "key-c"}),
            vec!["client-a", "client-b", "client-c"],
        ),
        (
            json!({"client-a": "key-a2", "client-b": "key-b", "client-c": "key-c"}),
            vec!["client-a", "client-b", "client-c"],
        ),
        (json!({"client-b": "key-b"}), vec!["client-b"]),
    ] {
        server
            .kv_put("secret", "gateway/api-keys", data)
            .await
            .unwrap();
        assert!(watcher.refresh().await.unwrap(), "published");
        let cfg = watcher.current();
        let mut names: Vec<&str> = cfg.keys.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, expected);
    }
    assert_eq!(watcher.health().last_changed, ["keys"]);
    let specs = Catalogue::specs();
    assert_eq!(specs[0].secret_key, "*");
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(
    path = "aionos/db-main",
    path_env = "AION_DB_SECRET_PATH",
    env_prefix = "AION_DB_"
)]
#[allow(dead_code)]
struct Db {
    #[vault(key = "username")]
    username: String,
    #[vault(key = "password")]
    password: SecretString,
    #[vault(key = "host")]
    host: String,
    #[vault(key = "port")]
    port: u16,
    #[vault(key = "database")]
    database: String,
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault(nested)]
    db: Db,
    #[vault(
        path = "aionos/minio",
        path_env = "AION_MINIO_SECRET_PATH",
        key = "endpoint"
    )]
    minio: String,
}

async fn aion_server() -> DevServer {
    let server = DevServer::start().await;
    for (path, host) in [
        ("aionos/db-main", "postgres"),
        ("aionos/db-replica", "replica"),
    ] {
        server
            .kv_put(
                "secret",
                path,
                json!({"username": "aionos", "password": format!("pw-{host}"), "host": host,
                       "port": 5432, "database": "aionos"}),
            )
            .await
            .unwrap();
    }
    server
        .kv_put(
            "secret",
            "aionos/minio",
            json!({"endpoint": "http://minio:9000"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "aionos/s3",
            json!({"endpoint": "https://s3.example"}),
        )
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn paths_chosen_at_deploy_time() {
    let server = aion_server().await;
    // Unset: the defaults.
    let client = server.client_builder(&[]).build().unwrap();
    let svc = Service::load(&client).await.unwrap();
    assert_eq!((svc.db.host.as_str(), svc.db.port), ("postgres", 5432));
    assert_eq!(svc.minio, "http://minio:9000");

    // An operator moves the service to the replica and to S3 with env alone.
    let moved = server
        .client_builder(&[
            ("AION_DB_SECRET_PATH", "aionos/db-replica"),
            ("AION_MINIO_SECRET_PATH", "aionos/s3"),
        ])
        .build()
        .unwrap();
    let svc = Service::load(&moved).await.unwrap();
    assert_eq!(svc.db.host, "replica");
    assert_eq!(svc.db.password.expose_secret(), "pw-replica");
    assert_eq!(svc.minio, "https://s3.example");

    // Provenance and errors say which variable chose the path.
    let provider = Service::provider(&moved).await.unwrap();
    let origin = provider
        .resolved()
        .iter()
        .find(|r| r.key == "db.host")
        .unwrap()
        .origin
        .to_string();
    assert_eq!(
        origin,
        "vault secret/data/aionos/db-replica#host (path from AION_DB_SECRET_PATH)"
    );
    let wrong = server
        .client_builder(&[("AION_DB_SECRET_PATH", "aionos/db-gone")])
        .build()
        .unwrap();
    let err = Service::load(&wrong).await.unwrap_err().to_string();
    assert!(
        err.contains("secret/aionos/db-gone#") && err.contains("(path from AION_DB_SECRET_PATH)"),
        "{err}"
    );

    // specs, .env.example and the policies name the variables.
    let specs = Service::specs();
    assert_eq!(specs[0].path_env.as_deref(), Some("AION_DB_SECRET_PATH"));
    assert_eq!(specs[5].path_env.as_deref(), Some("AION_MINIO_SECRET_PATH"));
    let example = Service::env_example_for(&client);
    assert!(
        example.contains("# AION_DB_SECRET_PATH=aionos/db-main"),
        "{example}"
    );
    let static_policy = Service::vault_policy();
    assert!(
        static_policy.contains("AION_DB_SECRET_PATH -> aionos/db-main"),
        "{static_policy}"
    );
    let policy = Service::vault_policy_for(&moved);
    assert!(
        policy.contains("path \"secret/data/aionos/db-replica\""),
        "{policy}"
    );
    assert!(
        !policy.contains("path \"secret/data/aionos/db-main\""),
        "{policy}"
    );
    // A token with exactly that policy loads the moved config.
    let token = server.token_with_policy("svc", &policy).await.unwrap();
    let limited = server
        .client_builder(&[
            ("AION_DB_SECRET_PATH", "aionos/db-replica"),
            ("AION_MINIO_SECRET_PATH", "aionos/s3"),
        ])
        .token(token)
        .kv_version("secret", vault_config::kv::KvVersion::V2)
        .build()
        .unwrap();
    assert_eq!(Service::load(&limited).await.unwrap().db.host, "replica");
}

#[tokio::test]
async fn mappings_built_at_run_time_are_watched_too() {
    use vault_config::{Mapping, VaultProvider, WatchOptions};
    let server = aion_server().await;
    let client = server
        .client_builder(&[("AION_DB_SECRET_PATH", "aionos/db-replica")])
        .build()
        .unwrap();
    #[derive(Debug, Deserialize)]
    struct Runtime {
        db: RuntimeDb,
        keys: HashMap<String, SecretString>,
    }
    #[derive(Debug, Deserialize)]
    struct RuntimeDb {
        host: String,
        port: u16,
    }
    server
        .kv_put("secret", "gateway/api-keys", json!({"client-a": "key-a"}))
        .await
        .unwrap();
    let watcher = VaultProvider::builder()
        .mapping(
            Mapping::new("db.host", "aionos/db-main#host")
                .unwrap()
                .env("AION_DB_HOST")
                .path_env("AION_DB_SECRET_PATH"),
        )
        .mapping(
            Mapping::new("db.port", "aionos/db-main#port")
                .unwrap()
                .env("AION_DB_PORT")
                .path_env("AION_DB_SECRET_PATH"),
        )
        .map("keys", "gateway/api-keys#*")
        .watch::<Runtime>(
            &client,
            WatchOptions::default().interval(std::time::Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!(watcher.current().db.host, "replica");
    assert_eq!(watcher.current().db.port, 5432);
    server
        .kv_put(
            "secret",
            "aionos/db-replica",
            json!({"host": "replica-2", "port": "6432"}),
        )
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    assert_eq!(watcher.current().db.host, "replica-2");
    let health = watcher.health();
    assert_eq!(health.versions.get("secret/aionos/db-replica"), Some(&2));
    let mut changed = health.last_changed.clone();
    changed.sort();
    assert_eq!(changed, ["db.host", "db.port"]);
    assert_eq!(watcher.current().keys["client-a"].expose_secret(), "key-a");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Lifecycle {
    #[vault("app#URL", env = "APP_URL")]
    url: String,
    #[vault("app#MODE", default = "normal")]
    mode: String,
}

#[tokio::test]
async fn the_rest_of_the_kv_lifecycle() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "app", json!({"URL": "u1", "MODE": "fast"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[("APP_URL", "from-env")])
        .build()
        .unwrap();
    let watcher = Lifecycle::watch(
        &client,
        vault_config::WatchOptions::default().interval(std::time::Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let both = |w: &vault_config::Watcher<Lifecycle>| {
        let c = w.current();
        (c.url.clone(), c.mode.clone())
    };
    let check = |label: &'static str, published: bool, expected: (&'static str, &'static str)| {
        let watcher = &watcher;
        let client = &client;
        async move {
            assert_eq!(
                watcher.refresh().await.unwrap(),
                published,
                "published after {label}"
            );
            let fresh = Lifecycle::load(client).await.unwrap();
            assert_eq!(
                (fresh.url.as_str(), fresh.mode.as_str()),
                expected,
                "a fresh load after {label}"
            );
            let current = both(watcher);
            assert_eq!(
                (current.0.as_str(), current.1.as_str()),
                expected,
                "the watcher after {label}"
            );
        }
    };

    server
        .cli(&["kv", "patch", "secret/app", "MODE=slow"])
        .await
        .unwrap();
    check("kv patch", true, ("u1", "slow")).await;

    server
        .cli(&["kv", "put", "secret/app", "URL=u1", "MODE=slow"])
        .await
        .unwrap();
    check("kv put of the same values", false, ("u1", "slow")).await;

    server
        .cli(&["kv", "metadata", "put", "-max-versions=1", "secret/app"])
        .await
        .unwrap();
    server
        .cli(&["kv", "put", "secret/app", "URL=u2"])
        .await
        .unwrap();
    check("max-versions=1 and a put", true, ("u2", "normal")).await;

    // A version that deletes itself: once its time is up, the key is gone.
    server
        .cli(&[
            "kv",
            "metadata",
            "put",
            // Long enough for the put, a refresh and a fresh load on a
            // loaded machine to see the version before it goes.
            "-delete-version-after=5s",
            "secret/app",
        ])
        .await
        .unwrap();
    server
        .cli(&["kv", "put", "secret/app", "URL=u3"])
        .await
        .unwrap();
    check("a put under delete_version_after", true, ("u3", "normal")).await;
    // Until Vault deletes it (bounded so that a broken build fails).
    let started = std::time::Instant::now();
    while Lifecycle::load(&client).await.unwrap().url == "u3" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "u3 never deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    check("delete_version_after passing", true, ("from-env", "normal")).await;
}
