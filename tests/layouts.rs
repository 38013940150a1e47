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
    #[vault("db#port")]
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
