//! `vault://PATH#KEY` references read by the library (env fallbacks,
//! `refs_from`) and `load_with` / `watch_with`, against a real OpenBao/Vault
//! dev server.

use std::sync::Arc;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::timeout;
use vault_config::provider::Origin;
use vault_config::{
    Error, ExposeSecret, Mapping, SecretString, VaultConfig, VaultProvider, WatchOptions,
};
use vault_test_support::DevServer;

const WAIT: Duration = Duration::from_secs(10);

fn fast() -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(100))
        .jitter(0.0)
}

async fn next<T>(rx: &mut watch::Receiver<Arc<T>>) -> Arc<T> {
    timeout(WAIT, rx.changed())
        .await
        .expect("no publish in time")
        .expect("watcher gone");
    rx.borrow_and_update().clone()
}

#[derive(Debug, Deserialize)]
struct Db {
    url: SecretString,
    pool: u32,
}

#[derive(Debug, Deserialize)]
struct FileConfig {
    db: Db,
}

const APP_TOML: &str = r#"
[db]
url = "vault://database#DATABASE_URL"
pool = 8
"#;

#[tokio::test]
async fn refs_from_a_toml_source_are_fetched_and_watched() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "url-1"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let file = Figment::from(Toml::string(APP_TOML));

    let builder = VaultProvider::builder().refs_from(&file).unwrap();
    assert_eq!(builder.added().len(), 1, "only the reference is mapped");
    let vault = builder.clone().fetch(&client).await.unwrap();
    let config: FileConfig = file
        .clone()
        .merge(vault.figment())
        .extract_lossy()
        .map_err(|e| vault.explain(e))
        .unwrap();
    assert_eq!(config.db.url.expose_secret(), "url-1");
    assert_eq!(config.db.pool, 8);
    // Provenance names both the Vault key and where the reference was written.
    let origin = vault.resolved()[0].origin.to_string();
    assert!(
        origin.contains("secret/data/database#DATABASE_URL") && origin.contains("db.url in TOML"),
        "{origin}"
    );
    assert!(matches!(
        vault.resolved()[0].origin,
        Origin::Referenced { .. }
    ));

    #[derive(Debug, Deserialize)]
    struct Url {
        url: SecretString,
    }
    #[derive(Debug, Deserialize)]
    struct OnlyRefs {
        db: Url,
    }
    let watcher = builder.watch::<OnlyRefs>(&client, fast()).await.unwrap();
    let mut rx = watcher.subscribe();
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "url-2"}))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.db.url.expose_secret(), "url-2");
}

#[tokio::test]
async fn a_dangling_reference_is_an_error_never_a_value() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"OTHER": "x"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let file = Figment::from(Toml::string(APP_TOML));
    let e = VaultProvider::builder()
        .refs_from(&file)
        .unwrap()
        .fetch(&client)
        .await
        .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("db.url in TOML")
            && shown.contains("vault://database#DATABASE_URL")
            && shown.contains("secret/database#DATABASE_URL"),
        "{shown}"
    );

    // A malformed one is refused where it was written, without its text.
    let bad = Figment::from(Toml::string("token = \"vault://s3cr3t-no-key\"\n"));
    let e = VaultProvider::builder().refs_from(&bad).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("token in TOML") && !shown.contains("s3cr3t"),
        "{shown}"
    );

    // In an env fallback: the load fails naming the variable and the reference.
    let client = server
        .client_builder(&[("DATABASE_URL", "vault://app-prod#MISSING")])
        .build()
        .unwrap();
    let e = Service::load(&client).await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("env var DATABASE_URL") && shown.contains("vault://app-prod#MISSING"),
        "{shown}"
    );
    assert!(matches!(e, Error::Mapping { .. }), "{e:?}");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
}

#[tokio::test]
async fn a_reference_in_an_env_fallback_is_read_from_vault_and_watched() {
    let server = DevServer::start().await;
    // `database` lacks the key: the field falls back to DATABASE_URL, a reference.
    server
        .kv_put("secret", "database", json!({"OTHER": "x"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"DB_URL": "url-1"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[
            ("DATABASE_URL", "vault://app-prod#DB_URL"),
            ("APP_URL", "vault://app-prod#DB_URL"),
        ])
        .build()
        .unwrap();

    // Derive field.
    let watcher = Service::watch(&client, fast()).await.unwrap();
    assert_eq!(watcher.current().database_url.expose_secret(), "url-1");
    let source = watcher.health().sources["database_url"].clone();
    assert!(
        source.contains("secret/data/app-prod#DB_URL") && source.contains("env var DATABASE_URL"),
        "{source}"
    );

    // Mapping with a named env var.
    let vault = VaultProvider::builder()
        .mapping(Mapping::new("url", "database#URL").unwrap().env("APP_URL"))
        .fetch(&client)
        .await
        .unwrap();
    let origin = vault.resolved()[0].origin.to_string();
    assert!(origin.contains("referenced by env var APP_URL"), "{origin}");
    #[derive(Deserialize)]
    struct Url {
        url: SecretString,
    }
    assert_eq!(vault.extract::<Url>().unwrap().url.expose_secret(), "url-1");
    let mapped = VaultProvider::builder()
        .mapping(Mapping::new("url", "database#URL").unwrap().env("APP_URL"))
        .watch::<Url>(&client, fast())
        .await
        .unwrap();

    let mut rx = watcher.subscribe();
    let mut mapped_rx = mapped.subscribe();
    server
        .kv_put("secret", "app-prod", json!({"DB_URL": "url-2"}))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.database_url.expose_secret(), "url-2");
    assert_eq!(next(&mut mapped_rx).await.url.expose_secret(), "url-2");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Layered {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#port", env = "DATABASE_PORT", default = 5432)]
    port: u16,
    log_level: String,
    workers: u32,
    api_key: SecretString,
}

const LAYERED_TOML: &str = r#"
database_url = "from-file"
port = 6543
log_level = "debug"
workers = "4"
api_key = "vault://app-prod#AOS_API_KEY"
"#;

#[tokio::test]
async fn load_with_puts_a_toml_file_under_vault() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "url-1"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-1"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let file = Figment::from(Toml::string(LAYERED_TOML));

    let config = Layered::load_with(&client, &file).await.unwrap();
    assert_eq!(
        config.database_url.expose_secret(),
        "url-1",
        "Vault over the file"
    );
    assert_eq!(config.port, 6543, "the file over the default");
    assert_eq!(config.log_level, "debug", "a field only the file sets");
    assert_eq!(config.workers, 4);
    assert_eq!(
        config.api_key.expose_secret(),
        "key-1",
        "a reference in the file"
    );

    // A bad value of the file: its source named, not the value.
    let bad = Figment::from(Toml::string(
        "log_level = \"x\"\nworkers = \"many-s3cr3t\"\napi_key = \"k\"\n",
    ));
    let e = Layered::load_with(&client, &bad).await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("workers") && shown.contains("TOML") && !shown.contains("s3cr3t"),
        "{shown}"
    );

    // Watched: a rotation of the referenced key re-extracts the merged config.
    let watcher = Layered::watch_with(&client, &file, fast()).await.unwrap();
    let mut rx = watcher.subscribe();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "key-2"}))
        .await
        .unwrap();
    let cfg = next(&mut rx).await;
    assert_eq!(cfg.api_key.expose_secret(), "key-2");
    assert_eq!(cfg.log_level, "debug");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct LeasedDb {
    #[vault("backend/database#user", env = "DB_USER")]
    username: String,
    #[vault("backend/database#password", env = "DB_PASS")]
    password: SecretString,
}

#[tokio::test]
async fn references_to_a_leased_path_share_one_lease_that_opens_a_connection() {
    let server = DevServer::start().await;
    let pg = vault_test_support::Postgres::start().await;
    pg.configure_vault(&server, "app", "1h", "2h")
        .await
        .unwrap();
    // The KV secret lacks both keys: each field falls back to its env var,
    // a reference to the database engine's credentials.
    server
        .kv_put("secret", "backend/database", json!({"host": "127.0.0.1"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[
            ("DB_USER", "vault://database/creds/app#username"),
            ("DB_PASS", "vault://database/creds/app#password"),
        ])
        .build()
        .unwrap();
    let watcher = LeasedDb::watch(&client, fast()).await.unwrap();
    let db = watcher.current();
    let health = watcher.health();
    assert_eq!(
        health.leases.len(),
        1,
        "one lease for both: {:?}",
        health.leases
    );
    let source = &health.sources["username"];
    assert!(
        source.contains("database/creds/app#username") && source.contains("env var DB_USER"),
        "{source}"
    );

    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(pg.port())
        .user(&db.username)
        .password(db.password.expose_secret())
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (pg_client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let row = pg_client.query_one("select 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    drop(pg_client);
    let _ = driver.await;
}

#[derive(Debug, Deserialize, VaultConfig)]
struct EnvOnlyRef {
    #[vault(env = "SMTP_PASSWORD")]
    smtp_password: SecretString,
    #[vault(env = "PORT", default = 8080)]
    port: u16,
}

#[tokio::test]
async fn a_reference_in_an_env_only_field_is_read_from_vault_and_watched() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "mail", json!({"SMTP_PASSWORD": "pw-1"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[
            ("SMTP_PASSWORD", "vault://mail#SMTP_PASSWORD"),
            ("PORT", "9000"),
        ])
        .build()
        .unwrap();
    let watcher = EnvOnlyRef::watch(&client, fast()).await.unwrap();
    assert_eq!(watcher.current().smtp_password.expose_secret(), "pw-1");
    assert_eq!(watcher.current().port, 9000);
    let source = watcher.health().sources["smtp_password"].clone();
    assert!(
        source.contains("secret/data/mail#SMTP_PASSWORD")
            && source.contains("env var SMTP_PASSWORD"),
        "{source}"
    );
    // The policy still names no path of an env-only field; the reference's
    // path is read with the token's own grants.
    assert!(!EnvOnlyRef::vault_policy_for(&client).contains("mail"));

    let mut rx = watcher.subscribe();
    server
        .kv_put("secret", "mail", json!({"SMTP_PASSWORD": "pw-2"}))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.smtp_password.expose_secret(), "pw-2");

    // A dangling one is an error naming the variable and the reference.
    let client = server
        .client_builder(&[("SMTP_PASSWORD", "vault://mail#NOPE")])
        .build()
        .unwrap();
    let e = EnvOnlyRef::load(&client).await.unwrap_err().to_string();
    assert!(
        e.contains("SMTP_PASSWORD") && e.contains("vault://mail#NOPE"),
        "{e}"
    );
    assert!(!e.contains("pw-"), "{e}");
}

#[tokio::test]
async fn a_file_that_does_not_parse_is_named_without_its_lines() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "url-1"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    // An unterminated string on a secret's line: TOML's message quotes the line.
    let file = Figment::from(Toml::string(
        "log_level = \"debug\"\napi_key = \"sk_SECRET_abc\n",
    ));
    let e = Layered::load_with(&client, &file)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("TOML parse error at line 2"), "{e}");
    assert!(!e.contains("sk_SECRET"), "{e}");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct DynamicAndReference {
    #[vault(dynamic = "database/creds/app", key = "username", ttl = "30m")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password", ttl = "30m")]
    password: SecretString,
    #[vault("backend/database#user", env = "DB_USER")]
    user_again: String,
}

#[tokio::test]
async fn a_reference_to_a_path_a_dynamic_field_reads_joins_its_lease() {
    let server = DevServer::start().await;
    let pg = vault_test_support::Postgres::start().await;
    pg.configure_vault(&server, "app", "1h", "2h")
        .await
        .unwrap();
    server
        .kv_put("secret", "backend/database", json!({"host": "127.0.0.1"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[("DB_USER", "vault://database/creds/app#username")])
        .build()
        .unwrap();
    let watcher = DynamicAndReference::watch(&client, fast()).await.unwrap();
    let health = watcher.health();
    // The reference names the path the dynamic fields read with a TTL: one
    // read, one lease, the same user.
    assert_eq!(health.leases.len(), 1, "{:?}", health.leases);
    let cfg = watcher.current();
    assert_eq!(cfg.user_again, cfg.username);
    assert!(!cfg.password.expose_secret().is_empty());
}
