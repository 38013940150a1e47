//! Loads a typed configuration from Vault (or OpenBao) with env fallback and
//! prints it, secrets redacted, with where each value came from.
//!
//! Run it through `bash scripts/demo.sh`, which starts a dev server and writes
//! the sample secrets, or by hand:
//!
//! ```text
//! VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... VAULT_KV_MOUNT=agenticverz \
//!     cargo run --example demo
//! ```

use serde::Deserialize;
use vault_config::{Mapping, SecretString, VaultClient, VaultProvider};

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // the fields are shown through Debug
struct AppConfig {
    database: Database,
    api_key: SecretString,
    machine_token: SecretString,
    openai_api_key: Option<SecretString>,
    log_level: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Database {
    url: SecretString,
    user: String,
    password: SecretString,
    port: u16,
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
    println!("client: {client:?}\n");

    let provider = VaultProvider::builder()
        .map("database.url", "database#DATABASE_URL")
        .map("database.user", "database#POSTGRES_USER")
        .map("database.password", "database#POSTGRES_PASSWORD")
        .mapping(Mapping::new("database.port", "database#port")?.env("DATABASE_PORT"))
        .map("api_key", "app-prod#AOS_API_KEY")
        .map("machine_token", "app-prod#MACHINE_SECRET_TOKEN")
        .map("openai_api_key", "external-apis#OPENAI_API_KEY")
        .mapping(Mapping::new("log_level", "app-prod#LOG_LEVEL")?)
        .fetch(&client)
        .await?;

    println!("where each value came from:");
    for resolved in provider.resolved() {
        println!("  {:<20} {}", resolved.key, resolved.origin);
    }

    let config: AppConfig = provider.extract()?;
    println!("\nconfig (secrets redacted):\n{config:#?}");
    Ok(())
}
