//! The figment provider and env fallback against a real OpenBao/Vault dev server.

use std::time::Duration;

use figment::providers::Serialized;
use figment::Figment;
use serde::Deserialize;
use serde_json::json;
use vault_config::provider::Origin;
use vault_config::{Error, ExposeSecret, FallbackMode, Mapping, SecretString, VaultProvider};
use vault_test_support::{dead_addr, env_of, CountingProxy, DevServer};

#[derive(Debug, Deserialize)]
struct Db {
    url: SecretString,
    user: String,
    port: u16,
    ssl: bool,
}

#[derive(Debug, Deserialize)]
struct App {
    db: Db,
    api_key: SecretString,
    limits: Limits,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Limits {
    rps: u32,
    burst: u32,
}

fn app_mappings() -> vault_config::VaultProviderBuilder {
    VaultProvider::builder()
        .map("db.url", "database#DATABASE_URL")
        .map("db.user", "database#POSTGRES_USER")
        .mapping(
            Mapping::new("db.port", "database#port")
                .unwrap()
                .env("DATABASE_PORT"),
        )
        .map("db.ssl", "database#ssl")
        .map("api_key", "app-prod#AOS_API_KEY")
        .map("limits", "app-prod#limits")
}

#[tokio::test]
async fn one_read_per_distinct_path_and_types_kept() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "postgres://u:pw@db/app", "POSTGRES_USER": "app", "port": "5432", "ssl": "true"}))
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "app-prod",
            json!({"AOS_API_KEY": "aos-123", "limits": {"rps": 50, "burst": 100}}),
        )
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .build()
        .unwrap();

    let provider = app_mappings().fetch(&client).await.unwrap();
    assert_eq!(
        proxy.count("GET", "/v1/secret/data/database"),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("GET", "/v1/secret/data/app-prod"),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("GET", "/v1/sys/internal/ui/mounts/secret"),
        1,
        "mount looked up once"
    );
    assert_eq!(
        proxy.count("GET", "/v1/auth/token/lookup-self"),
        1,
        "the token's TTL is learned once per client"
    );
    assert_eq!(proxy.requests().len(), 4, "{:?}", proxy.requests());

    let app: App = Figment::new().merge(provider).extract_lossy().unwrap();
    assert_eq!(app.db.url.expose_secret(), "postgres://u:pw@db/app");
    assert_eq!(app.db.user, "app");
    assert_eq!(app.db.port, 5432, "a string holding a number fills a u16");
    assert!(app.db.ssl, "a string holding a boolean fills a bool");
    assert_eq!(app.api_key.expose_secret(), "aos-123");
    assert_eq!(
        app.limits,
        Limits {
            rps: 50,
            burst: 100
        },
        "an object fills a nested struct"
    );

    // A second fetch on the same client reads each path once more (cache off), and
    // the mount version is remembered.
    proxy.reset();
    app_mappings().fetch(&client).await.unwrap();
    assert_eq!(proxy.requests().len(), 2, "{:?}", proxy.requests());
}

#[tokio::test]
async fn cache_serves_loads_within_ttl_and_fetch_fresh_reads_past_it() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "v1"}))
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .cache_ttl(Duration::from_secs(300))
        .build()
        .unwrap();
    let mappings = || VaultProvider::builder().map("url", "database#DATABASE_URL");

    mappings().fetch(&client).await.unwrap();
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "v2"}))
        .await
        .unwrap();
    let cached = mappings().fetch(&client).await.unwrap();
    assert_eq!(
        proxy.count("GET", "/v1/secret/data/database"),
        1,
        "second load served from cache"
    );
    let url: String = Figment::new().merge(cached).extract_inner("url").unwrap();
    assert_eq!(url, "v1");

    let fresh = mappings().fetch_fresh(&client).await.unwrap();
    assert_eq!(proxy.count("GET", "/v1/secret/data/database"), 2);
    let url: String = Figment::new().merge(fresh).extract_inner("url").unwrap();
    assert_eq!(url, "v2");

    client.clear_cache();
    mappings().fetch(&client).await.unwrap();
    assert_eq!(proxy.count("GET", "/v1/secret/data/database"), 3);
}

#[tokio::test]
async fn key_missing_in_vault_is_filled_from_env() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "from-vault"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[("APP_POSTGRES_USER", "from-env"), ("PGPORT", "6543")])
        .build()
        .unwrap();
    let provider = VaultProvider::builder()
        .env_prefix("APP_")
        .map("url", "database#DATABASE_URL")
        .map("user", "database#POSTGRES_USER")
        .mapping(Mapping::new("port", "database#port").unwrap().env("PGPORT"))
        .map("absent", "nowhere#NOTHING")
        .fetch(&client)
        .await
        .unwrap();

    let origins: Vec<(String, Origin)> = provider
        .resolved()
        .iter()
        .map(|r| (r.key.clone(), r.origin.clone()))
        .collect();
    assert!(
        matches!(&origins[0].1, Origin::Vault { api_path, version: Some(1), .. } if api_path == "secret/data/database")
    );
    assert_eq!(
        origins[1].1,
        Origin::Env {
            var: "APP_POSTGRES_USER".into()
        }
    );
    assert_eq!(
        origins[2].1,
        Origin::Env {
            var: "PGPORT".into()
        }
    );
    assert_eq!(
        origins[3].1,
        Origin::Missing {
            vault: Some("secret/nowhere#NOTHING".into()),
            env_var: "APP_NOTHING".into()
        }
    );
    assert_eq!(provider.missing().count(), 1);

    // Merged whole, the provider is one source; its per-value Figment names each.
    let whole = Figment::new().merge(&provider);
    assert_eq!(whole.find_metadata("user").unwrap().name, "vault-config");
    let fig = Figment::new().merge(provider.figment());
    assert_eq!(fig.extract_inner::<String>("user").unwrap(), "from-env");
    assert_eq!(fig.extract_inner_lossy::<u16>("port").unwrap(), 6543);
    let md = fig.find_metadata("user").unwrap();
    assert_eq!(md.name, "env var APP_POSTGRES_USER");
}

#[tokio::test]
async fn extraction_errors_name_the_vault_path_and_key() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"port": "not-a-port", "DATABASE_URL": "x"}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let provider = VaultProvider::builder()
        .mapping(
            Mapping::new("port", "database#port")
                .unwrap()
                .env("DATABASE_PORT"),
        )
        .map("url", "database#DATABASE_URL")
        .fetch(&client)
        .await
        .unwrap();

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct C {
        port: u16,
        url: String,
        name: String,
    }
    let err = Figment::new()
        .merge(Serialized::default("name", "svc"))
        .merge(provider.figment())
        .extract::<C>()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("for key \"port\" in vault secret/data/database#port"),
        "{text}"
    );
    // Merged whole, figment names the provider; `explain` names the value's source.
    let err = Figment::new()
        .merge(Serialized::default("name", "svc"))
        .merge(&provider)
        .extract::<C>()
        .unwrap_err();
    let text = provider.explain(err).to_string();
    assert_eq!(
        text,
        "invalid `port`: expected u16, found a string (from vault secret/data/database#port)"
    );
}

#[tokio::test]
async fn nothing_listening_is_an_error_in_required_mode() {
    let addr = dead_addr();
    let client = vault_config::VaultClient::builder()
        .address(&addr)
        .token("t")
        .env_source(env_of(&[("DATABASE_URL", "from-env")]))
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    assert_eq!(
        client.fallback_mode(),
        FallbackMode::Required,
        "required is the default"
    );
    let err = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .fetch(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { addr: a, .. } if a.starts_with(&addr)),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn nothing_listening_reads_env_in_fallback_mode() {
    let client = vault_config::VaultClient::builder()
        .address(dead_addr())
        .token("t")
        .fallback_mode(FallbackMode::Fallback)
        .env_source(env_of(&[("DATABASE_URL", "from-env")]))
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    let provider = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .map("user", "database#POSTGRES_USER")
        .fetch(&client)
        .await
        .unwrap();
    assert_eq!(
        provider.resolved()[0].origin,
        Origin::Env {
            var: "DATABASE_URL".into()
        }
    );
    assert_eq!(
        provider.resolved()[1].origin,
        Origin::Missing {
            vault: None,
            env_var: "POSTGRES_USER".into()
        }
    );
    let fig = Figment::new().merge(provider.figment());
    assert_eq!(fig.extract_inner::<String>("url").unwrap(), "from-env");
    assert_eq!(
        fig.find_metadata("url").unwrap().name,
        "env var DATABASE_URL"
    );
}

#[tokio::test]
async fn vault_enabled_false_reads_only_env_and_sends_nothing() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "from-vault"}))
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let env = env_of(&[
        ("AION_VAULT_ENABLED", "false"),
        ("AION_VAULT_ADDR", proxy.addr()),
        ("DATABASE_URL", "from-env"),
    ]);
    let client = vault_config::VaultClientBuilder::from_env_source(Some("AION"), env)
        .unwrap()
        .build()
        .unwrap();
    assert!(!client.is_enabled());
    let provider = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .fetch(&client)
        .await
        .unwrap();
    assert_eq!(
        provider.resolved()[0].origin,
        Origin::Env {
            var: "DATABASE_URL".into()
        }
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

#[tokio::test]
async fn pinned_versions_and_mount_overrides_in_mappings() {
    let server = DevServer::start().await;
    server.enable_kv("agenticverz", 2, None).await.unwrap();
    server
        .kv_put("agenticverz", "database", json!({"DATABASE_URL": "old"}))
        .await
        .unwrap();
    server
        .kv_put("agenticverz", "database", json!({"DATABASE_URL": "new"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let provider = VaultProvider::builder()
        .mapping(
            Mapping::new("old", "database#DATABASE_URL")
                .unwrap()
                .mount("agenticverz")
                .version(1),
        )
        .mapping(
            Mapping::new("new", "database#DATABASE_URL")
                .unwrap()
                .mount("agenticverz"),
        )
        .fetch(&client)
        .await
        .unwrap();
    let fig = Figment::new().merge(provider.figment());
    assert_eq!(fig.extract_inner::<String>("old").unwrap(), "old");
    assert_eq!(fig.extract_inner::<String>("new").unwrap(), "new");
    assert_eq!(
        fig.find_metadata("old").unwrap().name,
        "vault agenticverz/data/database#DATABASE_URL"
    );
}

#[tokio::test]
async fn malformed_mappings_fail_the_fetch() {
    let client = vault_config::VaultClient::builder()
        .enabled(false)
        .build()
        .unwrap();
    let err = VaultProvider::builder()
        .map("url", "database")
        .fetch(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Mapping { .. }), "{err:?}");
    let err = VaultProvider::builder()
        .map("url", "a#B")
        .map("url", "c#D")
        .fetch(&client)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mapped twice"), "{err}");
}

#[tokio::test]
async fn a_default_env_name_the_process_already_has_fails_the_fetch() {
    // PORT is set in the environment the client reads, as a platform would.
    let env = vault_config::EnvSource::from_fn(|name| (name == "PORT").then(|| "8080".into()));
    let client = vault_config::VaultClient::builder()
        .enabled(false)
        .env_source(env)
        .build()
        .unwrap();
    let err = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .map("port", "database#port")
        .fetch(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Mapping { mapping, .. } if mapping == "port <- database#port"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("env `PORT`") && text.contains(".env(\"DATABASE_PORT\")"),
        "{text}"
    );
    // Named, even PORT, or prefixed: the variable is the caller's choice.
    let named = VaultProvider::builder()
        .mapping(Mapping::new("port", "database#port").unwrap().env("PORT"))
        .fetch(&client)
        .await
        .unwrap();
    assert_eq!(named.missing().count(), 0, "read from PORT: {named:?}");
    let prefixed = VaultProvider::builder()
        .map("port", "database#port")
        .env_prefix("APP_")
        .fetch(&client)
        .await
        .unwrap();
    assert_eq!(
        prefixed.missing().count(),
        1,
        "APP_PORT is unset: {prefixed:?}"
    );
}
