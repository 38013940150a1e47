//! Env-only fields (`#[vault(env = "PORT")]` alone) and `#[vault(json)]`,
//! against a real OpenBao/Vault dev server: what a service that keeps `PORT`
//! and `LOG_LEVEL` in env, and JSON values in `.env` and Vault, relies on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use vault_config::provider::Origin;
use vault_config::{
    EnvSource, Error, ExposeSecret, SecretString, VaultClient, VaultConfig, WatchOptions,
};
use vault_test_support::DevServer;

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault("app#DATABASE_URL")]
    database_url: SecretString,
    #[vault(env = "PORT")]
    port: u16,
    #[vault(env = "LOG_LEVEL", default = "info")]
    log_level: String,
}

/// Vault holds keys named like the env-only fields' variables: they must
/// never be read.
async fn with_same_named_keys(server: &DevServer) {
    server
        .kv_put(
            "secret",
            "app",
            json!({"DATABASE_URL": "postgres://app@db/app", "PORT": "9999", "port": "9998", "LOG_LEVEL": "trace"}),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_env_only_field_reads_env_and_never_the_same_named_vault_key() {
    let server = DevServer::start().await;
    with_same_named_keys(&server).await;
    let client = server.client_builder(&[("PORT", "8080")]).build().unwrap();
    let cfg = Service::load(&client).await.unwrap();
    assert_eq!(cfg.port, 8080, "env PORT, not Vault's PORT");
    assert_eq!(cfg.log_level, "info", "the default, not Vault's LOG_LEVEL");
    assert_eq!(cfg.database_url.expose_secret(), "postgres://app@db/app");

    let provider = Service::provider(&client).await.unwrap();
    let origin = |key: &str| {
        provider
            .resolved()
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.origin.clone())
    };
    assert_eq!(origin("port"), Some(Origin::Env { var: "PORT".into() }));
    assert!(
        matches!(
            origin("log_level"),
            Some(Origin::Missing { vault: None, .. })
        ),
        "{:?}",
        origin("log_level")
    );

    // Not a fallback: read even where env fallbacks are off.
    let strict = server
        .client_builder(&[("PORT", "8081"), ("LOG_LEVEL", "warn")])
        .env_fallback(false)
        .build()
        .unwrap();
    let cfg = Service::load(&strict).await.unwrap();
    assert_eq!((cfg.port, cfg.log_level.as_str()), (8081, "warn"));
}

#[tokio::test]
async fn a_missing_env_only_field_names_the_variable_and_no_vault_location() {
    let server = DevServer::start().await;
    with_same_named_keys(&server).await;
    let client = server.client_builder(&[]).build().unwrap();
    let err = Service::load(&client).await.unwrap_err();
    assert_eq!(
        err,
        Error::Missing {
            field: "port".into(),
            vault: None,
            env_var: Some("PORT".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        "missing `port`: Vault was not read, and env PORT is not set"
    );
}

#[tokio::test]
async fn the_policy_skips_env_only_fields_and_the_env_example_lists_them() {
    let server = DevServer::start().await;
    with_same_named_keys(&server).await;
    let client = server.client_builder(&[("PORT", "8080")]).build().unwrap();
    let policy = Service::vault_policy_for(&client);
    assert_eq!(policy.matches("path \"").count(), 2, "{policy}");
    assert!(policy.contains("path \"secret/data/app\""), "{policy}");
    assert!(!policy.contains("PORT") && !policy.contains("LOG_LEVEL"));

    // That policy is enough: the env-only fields ask Vault for nothing.
    let token = server.token_with_policy("service", &policy).await.unwrap();
    let limited = server
        .client_builder(&[("PORT", "8080")])
        .token(token)
        .build()
        .unwrap();
    assert_eq!(Service::load(&limited).await.unwrap().port, 8080);

    let example = Service::env_example_for(&client);
    assert!(
        example.contains("\n# database_url: vault secret/app#DATABASE_URL\nDATABASE_URL=\n"),
        "{example}"
    );
    assert!(example.contains("\n# port: env only\nPORT=\n"), "{example}");
    assert!(
        example.contains("\n# log_level: env only (has a default)\nLOG_LEVEL=info\n"),
        "{example}"
    );
    let spec = &Service::specs()[1];
    assert!(spec.env_only && spec.path.is_empty() && spec.env_var == "PORT");
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flags {
    beta: bool,
    rollout: u8,
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Featured {
    #[vault("app#FEATURE_FLAGS", json)]
    flags: Flags,
    #[vault("app#LIMITS", json)]
    limits: BTreeMap<String, u32>,
    #[vault(env = "EXTRA_FLAGS", json)]
    extra: Flags,
    #[vault(env = "PORT")]
    port: u16,
}

#[tokio::test]
async fn json_fields_fill_a_struct_and_a_map_from_strings_in_vault_and_env() {
    let server = DevServer::start().await;
    // As an operator writes them: every value a string.
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": true, "rollout": 25}"#,
            r#"LIMITS={"requests": 100, "burst": "20"}"#,
        ])
        .await
        .unwrap();
    let client = server
        .client_builder(&[
            ("EXTRA_FLAGS", r#"{"beta": false, "rollout": "5"}"#),
            ("PORT", "8080"),
        ])
        .build()
        .unwrap();
    let cfg = Featured::load(&client).await.unwrap();
    assert_eq!(
        cfg.flags,
        Flags {
            beta: true,
            rollout: 25
        }
    );
    assert_eq!(
        cfg.limits,
        BTreeMap::from([("burst".to_owned(), 20), ("requests".to_owned(), 100)])
    );
    assert_eq!(
        cfg.extra,
        Flags {
            beta: false,
            rollout: 5
        },
        "from env EXTRA_FLAGS, `\"5\"` lossily a u8"
    );

    // A secret written as JSON holds objects already: taken as is.
    server
        .kv_put(
            "secret",
            "app",
            json!({"FEATURE_FLAGS": {"beta": false, "rollout": 50}, "LIMITS": {"requests": 7}}),
        )
        .await
        .unwrap();
    let cfg = Featured::load(&client).await.unwrap();
    assert_eq!(
        cfg.flags,
        Flags {
            beta: false,
            rollout: 50
        }
    );
    assert_eq!(cfg.limits, BTreeMap::from([("requests".to_owned(), 7)]));
}

#[tokio::test]
async fn a_bad_json_value_names_field_source_and_position_never_the_value() {
    let server = DevServer::start().await;
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": hunter2}"#,
            r#"LIMITS={}"#,
        ])
        .await
        .unwrap();
    let client = server
        .client_builder(&[
            ("EXTRA_FLAGS", r#"{"beta": true, "rollout": 1}"#),
            ("PORT", "1"),
        ])
        .build()
        .unwrap();
    let err = Featured::load(&client).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "flags"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid `flags`: expected JSON, found a syntax error at line 1 column 10 (expected value) (from vault secret/data/app#FEATURE_FLAGS)"
    );
    assert!(!format!("{err:?}").contains("hunter2"));

    // JSON, but not what the type holds: the path inside it, and the source.
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": "hunter2", "rollout": 1}"#,
            "LIMITS={}",
        ])
        .await
        .unwrap();
    let text = Featured::load(&client).await.unwrap_err().to_string();
    assert_eq!(
        text,
        "invalid `flags.beta`: expected a boolean, found a string (from vault secret/data/app#FEATURE_FLAGS)"
    );

    // JSON lacking a field of the type: that value is at fault.
    let client = server
        .client_builder(&[("EXTRA_FLAGS", r#"{"beta": true}"#), ("PORT", "1")])
        .build()
        .unwrap();
    assert_eq!(
        Featured::load(&client).await.unwrap_err().to_string(),
        "invalid `extra.rollout`: the JSON value has no `rollout` (from env var EXTRA_FLAGS)"
    );

    // From env: the variable is named.
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": true, "rollout": 1}"#,
            "LIMITS={}",
        ])
        .await
        .unwrap();
    let client = server
        .client_builder(&[("EXTRA_FLAGS", "{\"beta\": \"hunter2"), ("PORT", "1")])
        .build()
        .unwrap();
    let text = Featured::load(&client).await.unwrap_err().to_string();
    assert_eq!(
        text,
        "invalid `extra`: expected JSON, found it ends early at line 1 column 17 (EOF while parsing a string) (from env var EXTRA_FLAGS)"
    );
}

#[tokio::test]
async fn a_watcher_publishes_a_json_rotation_and_keeps_env_only_values_from_its_start() {
    let server = DevServer::start().await;
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": false, "rollout": 10}"#,
            r#"LIMITS={"requests": 100}"#,
        ])
        .await
        .unwrap();
    // An env whose PORT changes after the start: an env-only field keeps the
    // value read at load.
    let port = Arc::new(Mutex::new("8080".to_owned()));
    let env = {
        let port = Arc::clone(&port);
        EnvSource::from_fn(move |name| match name {
            "PORT" => port.lock().ok().map(|p| p.clone()),
            "EXTRA_FLAGS" => Some(r#"{"beta": true, "rollout": 1}"#.to_owned()),
            _ => None,
        })
    };
    let client: VaultClient = server.client_builder(&[]).env_source(env).build().unwrap();
    let watcher = Featured::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut rx = watcher.subscribe();
    assert_eq!(watcher.current().flags.rollout, 10);

    *port.lock().unwrap() = "9090".to_owned();
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"beta": true, "rollout": 50}"#,
            r#"LIMITS={"requests": 100}"#,
        ])
        .await
        .unwrap();
    assert!(
        watcher.refresh().await.unwrap(),
        "the rotation is published"
    );
    let cfg = rx.borrow_and_update().clone();
    assert_eq!(
        cfg.flags,
        Flags {
            beta: true,
            rollout: 50
        }
    );
    assert_eq!(cfg.port, 8080, "env-only: as read at the start");
    assert_eq!(
        watcher.health().last_changed,
        ["flags"],
        "only the JSON field changed"
    );

    // The same JSON written again, keys reordered: nothing new for subscribers.
    server
        .cli(&[
            "kv",
            "put",
            "secret/app",
            r#"FEATURE_FLAGS={"rollout": 50, "beta": true}"#,
            r#"LIMITS={"requests": 100}"#,
        ])
        .await
        .unwrap();
    assert!(!watcher.refresh().await.unwrap(), "same values: no publish");
    assert!(!rx.has_changed().unwrap());
    watcher.shutdown().await;
}
