//! `#[derive(VaultConfig)]` end to end: loads a typed config from the
//! `agenticverz` mount (Vault first, env fallback, defaults), prints it
//! redacted, and prints the least-privilege policy and `.env.example` the
//! struct implies.
//!
//! Run it through `bash scripts/demo.sh derive`, which starts a dev server and
//! writes the sample secrets, or against your own Vault:
//!
//! ```text
//! VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... cargo run --example derive
//! ```

use serde::Deserialize;
use vault_config::{SecretString, VaultClient, VaultConfig};

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "agenticverz")]
#[allow(dead_code)] // the fields are shown through Debug
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
}

#[derive(Debug, Deserialize, VaultConfig)]
#[allow(dead_code)]
struct KeycloakAdmin {
    #[vault("keycloak-admin#KEYCLOAK_ADMIN")]
    admin: String,
    #[vault("keycloak-admin#KEYCLOAK_ADMIN_PASSWORD")]
    admin_password: SecretString,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let client = VaultClient::from_env()?;
    match AppConfig::load(&client).await {
        Ok(config) => println!("config (secrets redacted):\n{config:#?}\n"),
        // e.g. "missing `keycloak.admin`: not found at vault agenticverz/keycloak-admin#KEYCLOAK_ADMIN,
        //       and env KEYCLOAK_ADMIN is not set"
        Err(e) => {
            eprintln!("cannot load the configuration: {e}");
            std::process::exit(1);
        }
    }

    println!("where each field reads from:");
    for spec in AppConfig::specs() {
        println!(
            "  {:<26} vault {:<45} env {}",
            spec.field,
            spec.location(client.kv_mount()),
            spec.env_var
        );
    }
    println!("\n{}", AppConfig::vault_policy_for(&client));
    println!("{}", AppConfig::env_example_for(&client));
    Ok(())
}
