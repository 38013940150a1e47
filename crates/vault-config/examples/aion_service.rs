//! The AION-OS layout from the seed: the client reads the `AION_VAULT_*`
//! contract, and each service consumes only Vault secret paths that
//! operators choose at deploy time (`AION_DB_SECRET_PATH`,
//! `AION_MINIO_SECRET_PATH`, `AION_JWT_SECRET_PATH`,
//! `AION_GATEWAY_API_KEYS_SECRET_PATH`, `AION_ADMIN_TOKEN_SECRET_PATH`).
//!
//! Run it through `bash scripts/demo.sh aion`, which starts a dev server with a
//! `kv` mount, writes the secrets and moves the database to a replica with
//! `AION_DB_SECRET_PATH`, or against your own Vault:
//!
//! ```text
//! AION_VAULT_ADDR=http://127.0.0.1:8200 AION_VAULT_TOKEN=... AION_VAULT_KV_MOUNT=kv \
//!   AION_DB_SECRET_PATH=aionos/db-replica cargo run --example aion_service
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use vault_config::{SecretString, VaultClient, VaultConfig};

/// `kv/aionos/db-main` as the seed shows it: one secret, one struct.
#[derive(Debug, Deserialize, VaultConfig)]
#[vault(
    path = "aionos/db-main",
    path_env = "AION_DB_SECRET_PATH",
    env_prefix = "AION_DB_"
)]
#[allow(dead_code)] // the fields are shown through Debug
struct Database {
    #[vault(key = "username")]
    username: String,
    #[vault(key = "password")]
    password: SecretString,
    #[vault(key = "host")]
    host: String,
    #[vault(key = "port")]
    port: u16, // stored as the JSON number 5432
    #[vault(key = "database")]
    database: String,
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(
    path = "aionos/minio",
    path_env = "AION_MINIO_SECRET_PATH",
    env_prefix = "AION_MINIO_"
)]
#[allow(dead_code)]
struct ObjectStore {
    #[vault(key = "endpoint")]
    endpoint: String,
    #[vault(key = "access_key")]
    access_key: String,
    #[vault(key = "secret_key")]
    secret_key: SecretString,
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(env_prefix = "AION_")]
#[allow(dead_code)]
struct Gateway {
    #[vault(nested)]
    db: Database,
    #[vault(nested)]
    storage: ObjectStore,
    #[vault(
        path = "aionos/jwt",
        path_env = "AION_JWT_SECRET_PATH",
        key = "public_keys"
    )]
    jwt_public_keys: Vec<String>,
    /// The API key catalogue: client name -> key, keys not known in advance.
    #[vault(
        path = "aionos/gateway-api-keys",
        path_env = "AION_GATEWAY_API_KEYS_SECRET_PATH",
        key = "*"
    )]
    api_keys: BTreeMap<String, SecretString>,
    #[vault(
        path = "aionos/admin-token",
        path_env = "AION_ADMIN_TOKEN_SECRET_PATH",
        key = "token"
    )]
    admin_token: SecretString,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    // AION_VAULT_ADDR, AION_VAULT_TOKEN (or AION_VAULT_AUTH_METHOD=approle with
    // AION_VAULT_APPROLE_ROLE_ID / AION_VAULT_APPROLE_SECRET_ID), AION_VAULT_KV_MOUNT, ...
    let client = VaultClient::from_env_prefixed("AION")?;
    let gateway = match Gateway::load(&client).await {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("cannot load the gateway's configuration: {e}");
            std::process::exit(1);
        }
    };
    println!("where each field reads from:");
    for resolved in Gateway::provider(&client).await?.resolved() {
        println!("  {:<26} {}", resolved.key, resolved.origin);
    }
    println!("\nconfig (secrets redacted):\n{gateway:#?}");
    println!(
        "\napi clients: {}",
        gateway
            .api_keys
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("\n{}", Gateway::vault_policy_for(&client));
    println!("{}", Gateway::env_example_for(&client));
    Ok(())
}
