//! `#[derive(VaultConfig)]` against a real OpenBao/Vault dev server.

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::Deserialize;
use serde_json::json;
use vault_config::kv::KvVersion;
use vault_config::{Error, ExposeSecret, SecretString, VaultClient, VaultConfig};
use vault_test_support::DevServer;

#[derive(Debug, Deserialize, VaultConfig)]
struct KeycloakAdmin {
    #[vault("keycloak-admin#KEYCLOAK_ADMIN")]
    admin: String,
    #[vault("keycloak-admin#KEYCLOAK_ADMIN_PASSWORD")]
    #[serde(rename = "admin_password")]
    password: SecretString,
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "agenticverz")]
#[allow(dead_code)] // the example struct: some fields are only loaded
struct AppConfig {
    #[vault(path = "database", key = "DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#POSTGRES_USER")]
    postgres_user: String,
    #[vault(path = "database", key = "port", env = "DATABASE_PORT", default = 5432)]
    port: u16,
    #[vault(path = "app-prod", key = "AOS_API_KEY", env = "AOS_KEY")]
    api_key: SecretString,
    #[vault(path = "external-apis", key = "OPENAI_API_KEY")]
    openai_api_key: Option<SecretString>,
    #[vault(nested)]
    keycloak: KeycloakAdmin,
    log_level: String,
}

/// `AppConfig` without the field only other layers fill, so `load` alone completes it.
#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "agenticverz")]
struct Core {
    #[vault(path = "database", key = "DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#POSTGRES_USER")]
    postgres_user: String,
    #[vault(path = "database", key = "port", env = "DATABASE_PORT", default = 5432)]
    port: u16,
    #[vault(path = "app-prod", key = "AOS_API_KEY", env = "AOS_KEY")]
    api_key: SecretString,
    #[vault(path = "external-apis", key = "OPENAI_API_KEY")]
    openai_api_key: Option<SecretString>,
    #[vault(nested)]
    keycloak: KeycloakAdmin,
}

async fn seeded(server: &DevServer) {
    server.enable_kv("agenticverz", 2, None).await.unwrap();
    server
        .kv_put(
            "agenticverz",
            "database",
            json!({"DATABASE_URL": "postgres://aos:pw@db/aos", "POSTGRES_USER": "aos"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "agenticverz",
            "app-prod",
            json!({"MACHINE_SECRET_TOKEN": "m"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "agenticverz",
            "keycloak-admin",
            json!({"KEYCLOAK_ADMIN": "admin", "KEYCLOAK_ADMIN_PASSWORD": "kc-pw"}),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn loads_from_vault_env_and_defaults() {
    let server = DevServer::start().await;
    seeded(&server).await;
    let client = server
        .client_builder(&[("AOS_KEY", "from-env-aos")])
        .build()
        .unwrap();

    let cfg = Core::load(&client).await.unwrap();
    assert_eq!(cfg.database_url.expose_secret(), "postgres://aos:pw@db/aos");
    assert_eq!(cfg.postgres_user, "aos");
    assert_eq!(cfg.port, 5432, "default, since Vault and env lack it");
    assert_eq!(
        cfg.api_key.expose_secret(),
        "from-env-aos",
        "Vault lacks AOS_API_KEY: env AOS_KEY"
    );
    assert!(cfg.openai_api_key.is_none(), "absent everywhere: None");
    assert_eq!(cfg.keycloak.admin, "admin");
    assert_eq!(cfg.keycloak.password.expose_secret(), "kc-pw");

    // Vault wins over the default once it has the key; the string fills a u16.
    server
        .kv_put(
            "agenticverz",
            "database",
            json!({"DATABASE_URL": "u", "POSTGRES_USER": "aos", "port": "6432"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "agenticverz",
            "external-apis",
            json!({"OPENAI_API_KEY": "sk-1"}),
        )
        .await
        .unwrap();
    let cfg = Core::load(&client).await.unwrap();
    assert_eq!(cfg.port, 6432);
    assert_eq!(
        cfg.openai_api_key
            .map(|k| k.expose_secret().to_owned())
            .as_deref(),
        Some("sk-1")
    );

    let debug = format!("{:?}", Core::load(&client).await.unwrap());
    for secret in ["postgres://", "from-env-aos", "kc-pw", "sk-1"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
}

#[tokio::test]
async fn provider_composes_with_other_layers() {
    let server = DevServer::start().await;
    seeded(&server).await;
    let client = server.client_builder(&[("AOS_KEY", "k")]).build().unwrap();
    let toml = Toml::string("log_level = \"debug\"\nport = 7000\n");

    let provider = AppConfig::provider(&client).await.unwrap();
    let provider_debug = format!("{provider:?}");
    assert!(
        !provider_debug.contains("kc-pw") && !provider_debug.contains("postgres://"),
        "{provider_debug}"
    );

    let cfg: AppConfig = Figment::new()
        .merge(AppConfig::defaults())
        .merge(toml)
        .merge(provider)
        .extract_lossy()
        .unwrap();
    assert_eq!(
        cfg.log_level, "debug",
        "a field without #[vault] comes from the other layers"
    );
    assert_eq!(
        cfg.port, 7000,
        "TOML overrides the default; Vault lacks port"
    );
    assert_eq!(cfg.keycloak.admin, "admin");
}

#[tokio::test]
async fn missing_required_value_names_field_vault_location_and_env() {
    let server = DevServer::start().await;
    server.enable_kv("agenticverz", 2, None).await.unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let err = Core::load(&client).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing `database_url`: not found at vault agenticverz/database#DATABASE_URL, and env DATABASE_URL is not set"
    );
    let err = AppConfig::load(&client).await.unwrap_err();
    assert!(matches!(err, Error::Missing { .. }), "{err:?}");
}

#[tokio::test]
async fn bad_type_names_field_type_and_source_but_not_the_value() {
    let server = DevServer::start().await;
    seeded(&server).await;
    server
        .kv_put(
            "agenticverz",
            "database",
            json!({"DATABASE_URL": "u", "POSTGRES_USER": "aos", "port": "hunter2-not-a-port"}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[("AOS_KEY", "k")]).build().unwrap();
    let err = Core::load(&client).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("invalid `port`"), "{text}");
    assert!(text.contains("u16"), "{text}");
    assert!(
        text.contains("vault agenticverz/data/database#port"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "value leaked: {text}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[tokio::test]
async fn generated_policy_is_sufficient_and_least_privilege() {
    let server = DevServer::start().await;
    seeded(&server).await;
    server
        .kv_put("agenticverz", "unrelated", json!({"X": "y"}))
        .await
        .unwrap();
    let policy = Core::vault_policy_with("secret", &|_| KvVersion::V2);
    assert!(
        policy.contains("path \"agenticverz/data/database\""),
        "{policy}"
    );
    assert!(
        policy.contains("path \"agenticverz/metadata/keycloak-admin\""),
        "{policy}"
    );
    let token = server.token_with_policy("core", &policy).await.unwrap();
    let client = server
        .client_builder(&[("AOS_KEY", "k")])
        .token(token)
        .build()
        .unwrap();

    let cfg = Core::load(&client).await.unwrap();
    assert_eq!(cfg.keycloak.admin, "admin");
    let denied = client.read("agenticverz", "unrelated").await.unwrap_err();
    assert!(
        matches!(denied, Error::PermissionDenied { .. }),
        "{denied:?}"
    );
}

#[test]
fn specs_and_env_example_describe_the_mapping() {
    let specs = AppConfig::specs();
    let fields: Vec<&str> = specs.iter().map(|s| s.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "database_url",
            "postgres_user",
            "port",
            "api_key",
            "openai_api_key",
            "keycloak.admin",
            "keycloak.password"
        ]
    );
    let pw = &specs[6];
    assert_eq!(
        pw.key, "keycloak.admin_password",
        "serde rename is honoured"
    );
    assert_eq!(
        pw.mount.as_deref(),
        Some("agenticverz"),
        "nested structs inherit the mount"
    );
    assert_eq!(pw.env_var, "KEYCLOAK_ADMIN_PASSWORD");
    assert!(specs[2].has_default && !specs[2].optional);
    assert!(specs[4].optional);
    assert_eq!(specs[3].env_var, "AOS_KEY");

    let example = AppConfig::env_example();
    assert!(
        example.contains("# api_key: vault agenticverz/app-prod#AOS_API_KEY\nAOS_KEY=\n"),
        "{example}"
    );
    assert!(
        example
            .contains("# port: vault agenticverz/database#port (has a default)\nDATABASE_PORT=\n"),
        "{example}"
    );
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "kv", prefix = "aionos", env_prefix = "AION_")]
struct Prefixed {
    #[vault("db-main#password", version = 1)]
    password: SecretString,
}

#[tokio::test]
async fn prefix_env_prefix_and_pinned_version() {
    let server = DevServer::start().await;
    server.enable_kv("kv", 2, None).await.unwrap();
    server
        .kv_put("kv", "aionos/db-main", json!({"password": "first"}))
        .await
        .unwrap();
    server
        .kv_put("kv", "aionos/db-main", json!({"password": "second"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let cfg = Prefixed::load(&client).await.unwrap();
    assert_eq!(cfg.password.expose_secret(), "first");
    assert_eq!(Prefixed::specs()[0].env_var, "AION_PASSWORD");

    let off = VaultClient::builder()
        .enabled(false)
        .env_source(vault_test_support::env_of(&[("AION_PASSWORD", "from-env")]))
        .build()
        .unwrap();
    assert_eq!(
        Prefixed::load(&off).await.unwrap().password.expose_secret(),
        "from-env"
    );
}

#[test]
fn load_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let client = VaultClient::builder().enabled(false).build().unwrap();
    assert_send(Core::load(&client));
    assert_send(Core::provider(&client));
}

/// Fields that name no mount: they read the client's default mount.
#[derive(Debug, Deserialize, VaultConfig)]
struct OnClientMount {
    #[vault("database#DATABASE_URL")]
    url: SecretString,
    #[vault("database#port", env = "DATABASE_PORT")]
    port: u16,
}

#[tokio::test]
async fn policy_and_env_example_for_a_prefixed_client_on_another_mount() {
    let server = DevServer::start().await;
    server.enable_kv("kv", 2, None).await.unwrap();
    server
        .kv_put(
            "kv",
            "database",
            json!({"DATABASE_URL": "postgres://kv", "port": "5432"}),
        )
        .await
        .unwrap();
    server
        .kv_put("kv", "other", json!({"X": "y"}))
        .await
        .unwrap();
    let builder = |token: &str| {
        vault_config::VaultClientBuilder::from_env_source(
            Some("AION"),
            vault_test_support::env_of(&[
                ("AION_VAULT_ADDR", server.addr()),
                ("AION_VAULT_TOKEN", token),
                ("AION_VAULT_KV_MOUNT", "kv"),
            ]),
        )
        .unwrap()
        .cache_ttl(std::time::Duration::ZERO)
        .build()
        .unwrap()
    };
    let root = builder(server.root_token());

    // The mount-agnostic policy names `secret`, which this client never reads.
    assert!(OnClientMount::vault_policy().contains("path \"secret/data/database\""));
    let policy = OnClientMount::vault_policy_for(&root);
    assert!(policy.contains("path \"kv/data/database\""), "{policy}");
    assert!(!policy.contains("secret/"), "{policy}");

    // A token holding exactly that policy loads the struct, and nothing else.
    let token = server.token_with_policy("kv-app", &policy).await.unwrap();
    let client = builder(&token);
    let cfg = OnClientMount::load(&client).await.unwrap();
    assert_eq!(cfg.url.expose_secret(), "postgres://kv");
    assert_eq!(cfg.port, 5432);
    let denied = client.read("kv", "other").await.unwrap_err();
    assert!(
        matches!(denied, Error::PermissionDenied { .. }),
        "{denied:?}"
    );

    let example = OnClientMount::env_example_for(&client);
    assert!(example.contains("AION_VAULT_ENABLED=false"), "{example}");
    assert!(example.contains("vault kv/database#port"), "{example}");
    assert!(example.contains("\nDATABASE_PORT=\n"), "{example}");
}

/// Default env fallback names the derive accepts: none is a variable the
/// process's own environment holds (`PORT`, `USER`, `HOST`).
#[derive(Debug, Deserialize, VaultConfig)]
struct Listener {
    /// Named explicitly: even PORT is the user's choice.
    #[vault("listener#port", env = "PORT")]
    port: u16,
    #[vault(nested)]
    db: PrefixedDb,
}

/// Its own prefix: `user` and `host` fall back to `DB_USER` and `DB_HOST`.
#[derive(Debug, Deserialize, VaultConfig)]
#[vault(env_prefix = "DB_")]
struct PrefixedDb {
    #[vault("database#user")]
    user: String,
    #[vault("database#host")]
    host: String,
}

#[tokio::test]
async fn reserved_names_only_when_chosen() {
    let env = vault_test_support::env_of(&[
        ("PORT", "8080"),
        ("USER", "login-name"),
        ("HOST", "laptop"),
        ("DB_USER", "app"),
        ("DB_HOST", "db.internal"),
    ]);
    let client = VaultClient::builder()
        .enabled(false)
        .env_source(env)
        .build()
        .unwrap();
    let cfg = Listener::load(&client).await.unwrap();
    assert_eq!(cfg.port, 8080);
    assert_eq!(
        (cfg.db.user.as_str(), cfg.db.host.as_str()),
        ("app", "db.internal")
    );
    let vars: Vec<String> = Listener::specs().into_iter().map(|s| s.env_var).collect();
    assert_eq!(vars, ["PORT", "DB_USER", "DB_HOST"]);
}

#[derive(Debug, serde::Deserialize, VaultConfig)]
struct NoEnv {
    #[vault("app-prod#AOS_API_KEY", no_env)]
    api_key: Option<SecretString>,
    #[vault("app-prod#REGION", no_env, default = "eu")]
    region: String,
}

#[tokio::test]
async fn a_no_env_field_never_reads_its_variable() {
    let server = vault_test_support::DevServer::start().await;
    server
        .kv_put("secret", "app-prod", serde_json::json!({"OTHER": "x"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[("AOS_API_KEY", "stale"), ("REGION", "stale")])
        .build()
        .unwrap();
    let cfg = NoEnv::load(&client).await.unwrap();
    assert!(cfg.api_key.is_none());
    assert_eq!(cfg.region, "eu");
    let example = NoEnv::env_example_for(&client);
    assert!(!example.contains("AOS_API_KEY="), "{example}");
    assert!(
        example.contains("(optional) (no env fallback)"),
        "{example}"
    );
}
