//! The figment2 and config-rs adapters against a real OpenBao/Vault dev
//! server: Vault values layered over a file of each framework, with each
//! value's source, and errors that name it without the value. (figment's
//! adapter: tests/provider.rs and tests/derive.rs.)

use serde::Deserialize;
use serde_json::json;
use vault_config::{Mapping, VaultClient, VaultProvider, VaultProviderBuilder};
use vault_test_support::DevServer;

#[derive(Debug, Deserialize, PartialEq)]
struct Settings {
    url: String,
    port: u16,
    log_level: String,
    limits: Limits,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Limits {
    rps: u32,
    burst: u32,
}

const FILE: &str = r#"
url = "from-file"
log_level = "debug"
port = 1
[limits]
rps = 1
burst = 2
"#;

fn mappings() -> VaultProviderBuilder {
    VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .mapping(
            Mapping::new("port", "database#port")
                .unwrap()
                .env("ADAPTER_DATABASE_PORT"),
        )
        .map("limits.rps", "app#rps")
}

async fn seeded(port: &str) -> (DevServer, VaultClient) {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://vault", "port": port}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app", json!({"rps": "50"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    (server, client)
}

fn expected() -> Settings {
    Settings {
        url: "postgres://vault".into(),
        port: 5432,
        log_level: "debug".into(),
        limits: Limits { rps: 50, burst: 2 },
    }
}

#[tokio::test]
async fn figment2_layers_vault_over_a_file_with_each_values_source() {
    use figment2::providers::{Format, Toml};
    use figment2::Figment;

    let (_server, client) = seeded("5432").await;
    let vault = mappings().fetch(&client).await.unwrap();
    let fig = Figment::new()
        .merge(Toml::string(FILE))
        .merge(vault.figment2());
    assert_eq!(fig.extract_lossy::<Settings>().unwrap(), expected());
    assert_eq!(
        fig.find_metadata("port").unwrap().name,
        "vault secret/data/database#port"
    );
    assert_eq!(
        fig.find_metadata("limits.rps").unwrap().name,
        "vault secret/data/app#rps"
    );
    assert_eq!(
        fig.find_metadata("log_level").unwrap().name,
        "TOML source string"
    );

    // Merged whole: one source for all of Vault's values.
    let whole = Figment::new().merge(Toml::string(FILE)).merge(&vault);
    assert_eq!(whole.extract_lossy::<Settings>().unwrap(), expected());
    assert_eq!(whole.find_metadata("url").unwrap().name, "vault-config");
}

#[tokio::test]
async fn figment2_errors_name_the_source_never_the_value() {
    use figment2::providers::{Format, Toml};
    use figment2::Figment;

    let (_server, client) = seeded("hunter2").await;
    let vault = mappings().fetch(&client).await.unwrap();
    for fig in [
        Figment::new()
            .merge(Toml::string(FILE))
            .merge(vault.figment2()),
        Figment::new().merge(Toml::string(FILE)).merge(&vault),
    ] {
        let err = fig.extract_lossy::<Settings>().unwrap_err();
        assert!(err.to_string().contains("hunter2"), "figment2 quotes it");
        let text = vault.explain(err).to_string();
        assert_eq!(
            text,
            "invalid `port`: expected u16, found a string (from vault secret/data/database#port)"
        );
    }
    // A bad value from the file is named by the file.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Level {
        url: String,
        log_level: String,
    }
    let fig = Figment::new()
        .merge(Toml::string("log_level = 5"))
        .merge(vault.figment2());
    let text = vault
        .explain(fig.extract_lossy::<Level>().unwrap_err())
        .to_string();
    assert_eq!(
        text,
        "invalid `log_level`: expected a string, found an integer (from TOML source string)"
    );
}

#[tokio::test]
async fn config_rs_source_layers_vault_over_a_file_with_origins() {
    use config::{Config, File, FileFormat};

    let (_server, client) = seeded("5432").await;
    let vault = mappings().fetch(&client).await.unwrap();
    let config = Config::builder()
        .add_source(File::from_str(FILE, FileFormat::Toml))
        .add_source(vault.clone())
        .build()
        .unwrap();
    let limits = config.get_table("limits").unwrap();
    assert_eq!(limits["rps"].origin(), Some("vault secret/data/app#rps"));
    assert_ne!(limits["burst"].origin(), Some("vault secret/data/app#rps"));
    assert_eq!(config.try_deserialize::<Settings>().unwrap(), expected());

    // Async: the source fetches when the config is built.
    let source = vault_config::config_rs::VaultSource::new(&client, mappings());
    let settings: Settings = Config::builder()
        .add_source(File::from_str(FILE, FileFormat::Toml))
        .add_async_source(source)
        .build()
        .await
        .unwrap()
        .try_deserialize()
        .unwrap();
    assert_eq!(settings, expected());
}

#[tokio::test]
async fn config_rs_errors_name_the_source_never_the_value() {
    use config::{Config, File, FileFormat};

    let (_server, client) = seeded("hunter2").await;
    let vault = mappings().fetch(&client).await.unwrap();
    let err = Config::builder()
        .add_source(File::from_str(FILE, FileFormat::Toml))
        .add_source(vault.clone())
        .build()
        .and_then(Config::try_deserialize::<Settings>)
        .unwrap_err();
    assert!(
        err.to_string().contains("hunter2"),
        "config-rs quotes it: {err}"
    );
    let text = vault.explain(err).to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        text,
        "invalid `port`: expected an integer, found a string (from vault secret/data/database#port)"
    );
    assert!(text.contains("vault secret/data/database#port"), "{text}");
}

#[tokio::test]
async fn a_config_rs_async_source_that_cannot_fetch_gives_the_fetch_error() {
    use config::Config;

    let client = VaultClient::builder().enabled(false).build().unwrap();
    let source = vault_config::config_rs::VaultSource::new(
        &client,
        VaultProvider::builder().map("url", "database"), // no #key
    );
    let err = Config::builder()
        .add_async_source(source)
        .build()
        .await
        .unwrap_err();
    let vault = VaultProvider::builder().fetch(&client).await.unwrap();
    let err = vault.explain(err);
    assert!(
        matches!(err, vault_config::Error::Mapping { .. }),
        "{err:?}"
    );
}
