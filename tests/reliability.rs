//! Where features meet: logins failing under a watcher, policy denials,
//! deleted versions, proxies in front of Vault, errors on the provider path.
//! Each test runs against a real OpenBao dev server.

use std::time::Duration;

use figment::providers::Serialized;
use figment::Figment;
use serde::Deserialize;
use serde_json::json;
use vault_config::auth::AuthState;
use vault_config::kv::KvVersion;
use vault_config::{
    AuthMethod, Error, ExposeSecret, FallbackMode, SecretId, SecretString, VaultClientBuilder,
    VaultConfig, VaultProvider, WatchOptions,
};
use vault_test_support::{env_of, eventually, CountingProxy, DevServer, FaultyProxy};

#[derive(Debug, Deserialize, VaultConfig)]
struct Cfg {
    #[vault("database#DATABASE_URL")]
    url: SecretString,
}

const READER: &str = r#"
path "secret/data/database" { capabilities = ["read"] }
path "secret/metadata/database" { capabilities = ["read"] }
"#;

/// A server with `secret/database` and an AppRole role `svc` holding the
/// policy `reader`, with `settings`; returns its role ID.
async fn approle(settings: serde_json::Value) -> (DevServer, String) {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://v1"}),
        )
        .await
        .unwrap();
    server.enable_auth("approle", "approle").await.unwrap();
    server.write_policy("reader", READER).await.unwrap();
    let mut role = json!({"token_policies": ["reader"], "token_ttl": "60s"});
    if let (Some(role), Some(extra)) = (role.as_object_mut(), settings.as_object()) {
        role.extend(extra.clone());
    }
    let role_id = server.approle_role("svc", role).await.unwrap();
    (server, role_id)
}

fn approle_client(addr: &str, role_id: &str, secret_id: String) -> vault_config::VaultClient {
    VaultClientBuilder::default()
        .address(addr)
        .auth(AuthMethod::approle(
            role_id,
            SecretId::Plain(SecretString::from(secret_id)),
        ))
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap()
}

fn fast() -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(100))
        .jitter(0.0)
}

#[tokio::test]
async fn a_refused_secret_id_is_not_sent_again_and_health_says_so() {
    // One use per secret ID: once the first token is revoked, the same
    // secret ID is refused, as after a Vault rebuild with the role re-created.
    let (server, role_id) = approle(json!({"secret_id_num_uses": 1})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = approle_client(proxy.addr(), &role_id, secret_id.clone());
    let watcher = Cfg::watch(&client, fast()).await.unwrap();
    server
        .api(
            "PUT",
            "sys/leases/revoke-prefix/auth/approle/login",
            None,
            Some(json!({})),
        )
        .await
        .unwrap();

    eventually(Duration::from_secs(10), || {
        watcher
            .health()
            .token
            .is_some_and(|t| t.state == AuthState::Rejected)
    })
    .await;
    let logins = proxy.count("POST", "/v1/auth/approle/login");
    assert_eq!(logins, 2, "the first login and the one Vault refused");
    // Polls go on every 100 ms (backing off); the refused secret ID is never sent again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(proxy.count("POST", "/v1/auth/approle/login"), logins);

    let health = watcher.health();
    assert!(!health.vault_connected, "{health:?}");
    assert!(health.consecutive_failures >= 1, "{health:?}");
    let token = health.token.clone().unwrap();
    assert!(token.login_failures >= 1, "{token:?}");
    assert!(token.credentials.contains("approle"), "{token:?}");
    let error = health.last_error.clone().unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    let json = serde_json::to_string(&health).unwrap();
    assert!(!json.contains(&secret_id), "{json}");
    assert_eq!(
        watcher.current().url.expose_secret(),
        "postgres://v1",
        "the last good config stays"
    );
}

#[tokio::test]
async fn a_policy_denial_does_not_log_in_again() {
    let (server, role_id) = approle(json!({})).await;
    server
        .kv_put("secret", "admin", json!({"X": "y"}))
        .await
        .unwrap();
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(server.addr(), &role_id, secret_id);
    Cfg::load(&client).await.unwrap();
    for _ in 0..5 {
        let err = client.read("secret", "admin").await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    }
    assert_eq!(
        client.auth_status().unwrap().logins,
        1,
        "no login per denial"
    );
}

#[tokio::test]
async fn a_token_replaced_before_its_max_ttl_is_revoked() {
    // Renewable, but capped at 3 s: the client logs in again before it ends.
    let (server, role_id) = approle(json!({"token_ttl": "3s", "token_max_ttl": "3s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(server.addr(), &role_id, secret_id);
    let watcher = Cfg::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    // Logins happen on the token's schedule, though the poll interval is an hour.
    eventually(Duration::from_secs(15), || {
        client.auth_status().unwrap().logins >= 3
    })
    .await;
    let accessors = server
        .api("LIST", "auth/token/accessors", None, None)
        .await
        .unwrap();
    let live = accessors["data"]["keys"].as_array().map_or(0, Vec::len);
    // The root token, the client's current token, and at most one more in
    // the instant of a replacement: replaced tokens do not pile up.
    assert!(live <= 3, "{live} tokens alive after 3 logins: {accessors}");
    drop(watcher);
}

#[tokio::test]
async fn an_unknown_namespace_is_an_error_not_an_absent_secret() {
    let server = DevServer::start().await;
    let client = server
        .client_builder(&[("DATABASE_URL", "from-env")])
        .namespace("no-such-team")
        .build()
        .unwrap();
    let err = Cfg::load(&client).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("namespace"), "{text}");
    assert!(!matches!(err, Error::Missing { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unknown_mount_says_what_to_grant_or_declare() {
    let server = DevServer::start().await;
    let token = server.token_with_policy("reader", READER).await.unwrap();
    let client = server.client_builder(&[]).token(token).build().unwrap();
    // The token may read `secret/` paths, but nothing under `elsewhere/`.
    let err = client.read("elsewhere", "database").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot tell the KV version of mount `elsewhere`"),
        "{text}"
    );
    assert!(text.contains("kv_version"), "{text}");
}

#[tokio::test]
async fn a_held_back_rotation_stays_in_health_and_versions_name_the_config_in_force() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "u1", "port": "5432"}),
        )
        .await
        .unwrap();
    #[derive(Debug, Deserialize, VaultConfig)]
    struct WithPort {
        #[vault("database#DATABASE_URL")]
        url: String,
        #[vault("database#port", env = "DATABASE_PORT")]
        port: u16,
    }
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = WithPort::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "u2", "port": "not-a-port"}),
        )
        .await
        .unwrap();
    assert!(watcher.refresh().await.is_err());
    // A second poll with nothing new still says why the config in force is old.
    assert!(watcher.refresh().await.is_err());
    let health = watcher.health();
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("port")),
        "{health:?}"
    );
    assert_eq!(
        health.versions.get("secret/database"),
        Some(&1),
        "the version in force, not the rejected one"
    );
    assert_eq!(watcher.current().url, "u1");
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "u3", "port": "6543"}),
        )
        .await
        .unwrap();
    assert!(watcher.refresh().await.unwrap());
    assert_eq!(watcher.current().port, 6543);
    let health = watcher.health();
    assert_eq!(health.last_error, None);
    assert_eq!(health.versions.get("secret/database"), Some(&3));
}

#[tokio::test]
async fn the_kv_lifecycle_ends_where_a_fresh_load_would() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "vault-v1"}))
        .await
        .unwrap();
    #[derive(Debug, Deserialize, VaultConfig)]
    struct Fallible {
        #[vault("database#DATABASE_URL", env = "DB_URL")]
        url: String,
    }
    let client = server
        .client_builder(&[("DB_URL", "from-env")])
        .build()
        .unwrap();
    let watcher = Fallible::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let step = |args: &'static [&'static str]| {
        let server = &server;
        async move { server.cli(args).await.unwrap() }
    };
    for (args, expected) in [
        (&["kv", "delete", "secret/database"][..], "from-env"),
        (
            &["kv", "undelete", "-versions=1", "secret/database"][..],
            "vault-v1",
        ),
        (
            &["kv", "destroy", "-versions=1", "secret/database"][..],
            "from-env",
        ),
        (
            &["kv", "put", "secret/database", "DATABASE_URL=vault-v2"][..],
            "vault-v2",
        ),
        (
            &["kv", "rollback", "-version=2", "secret/database"][..],
            "vault-v2",
        ),
        (
            &["kv", "metadata", "delete", "secret/database"][..],
            "from-env",
        ),
    ] {
        step(args).await;
        let _ = watcher.refresh().await.unwrap();
        let fresh = Fallible::load(&client).await.unwrap();
        assert_eq!(fresh.url, expected, "a fresh load after {args:?}");
        assert_eq!(
            watcher.current().url,
            expected,
            "the watcher after {args:?}"
        );
    }
}

#[tokio::test]
async fn a_proxy_answering_503_is_an_outage_for_fallback() {
    let server = DevServer::start().await;
    let down = FaultyProxy::start(server.addr(), 1000, 503).await.unwrap();
    let client = server
        .client_builder(&[("DATABASE_URL", "from-env")])
        .address(down.addr())
        .kv_version("secret", KvVersion::V2)
        .max_retries(0)
        .fallback_mode(FallbackMode::Fallback)
        .build()
        .unwrap();
    let cfg = Cfg::load(&client).await.unwrap();
    assert_eq!(cfg.url.expose_secret(), "from-env");
    let required = server
        .client_builder(&[])
        .address(down.addr())
        .kv_version("secret", KvVersion::V2)
        .max_retries(0)
        .build()
        .unwrap();
    let err = Cfg::load(&required).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn provider_errors_never_quote_the_value() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"port": "hunter2-secret"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let vault = VaultProvider::builder()
        .mapping(
            vault_config::Mapping::new("port", "database#port")
                .unwrap()
                .env("DATABASE_PORT"),
        )
        .fetch(&client)
        .await
        .unwrap();
    #[derive(Debug, Deserialize)]
    struct Port {
        #[allow(dead_code)]
        port: u16,
    }
    let err = vault.extract::<Port>().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("port") && text.contains("secret/data/database#port"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // Layered with other sources, figment's own error quotes the value; explain drops it.
    let layered = Figment::new()
        .merge(Serialized::default("port", 1))
        .merge(&vault)
        .extract_lossy::<Port>()
        .unwrap_err();
    assert!(layered.to_string().contains("hunter2"), "figment quotes it");
    let text = vault.explain(layered).to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("secret/data/database#port"), "{text}");
}

#[tokio::test]
async fn a_periodic_token_is_renewed_on_time_after_starting_in_an_outage() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://v1"}),
        )
        .await
        .unwrap();
    server.write_policy("reader", READER).await.unwrap();
    let token = server
        .create_token(json!({"period": "3s", "policies": ["reader", "default"]}))
        .await
        .unwrap();
    // The first two requests (the token's lookup, the read) meet a 502.
    let flaky = FaultyProxy::start(server.addr(), 2, 502).await.unwrap();
    let client = server
        .client_builder(&[("DATABASE_URL", "from-env")])
        .address(flaky.addr())
        .token(token)
        .kv_version("secret", KvVersion::V2)
        .max_retries(0)
        .fallback_mode(FallbackMode::Fallback)
        .build()
        .unwrap();
    let cfg = Cfg::load(&client).await.unwrap();
    assert_eq!(cfg.url.expose_secret(), "from-env", "started in the outage");
    assert_eq!(flaky.faults(), 2);

    // Polling hourly, the watcher still renews the 3 s token on its schedule.
    let watcher = Cfg::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    assert_eq!(watcher.current().url.expose_secret(), "postgres://v1");
    eventually(Duration::from_secs(12), || {
        client.auth_status().is_some_and(|s| s.renewals >= 2)
    })
    .await;
    let status = client.auth_status().unwrap();
    assert!(
        status.renewable && status.expires_in_secs.is_some(),
        "{status:?}"
    );
    assert!(watcher.refresh().await.is_ok(), "the token is still alive");
}
