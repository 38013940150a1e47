//! Typed application configuration from HashiCorp Vault or OpenBao KV secrets,
//! with environment-variable fallback.
//!
//! - [`VaultClient`]: a small async client for Vault's KV engines (v1 and v2),
//!   configured from the standard env contract (`VAULT_ADDR`, `VAULT_TOKEN`,
//!   `VAULT_NAMESPACE`, ..., or OpenBao's `BAO_*`), with timeouts, bounded
//!   retries and a per-client cache.
//! - [`VaultProvider`]: maps configuration keys to Vault `path#key`s, reads each
//!   distinct path once (concurrently), falls back to env vars, and merges into a
//!   [`figment::Figment`] like any provider, naming the source of each value.
//! - [`Error`]: one error type whose text says what to fix, and never holds a
//!   token or a secret value.
//!
//! ```no_run
//! use figment::Figment;
//! use vault_config::{SecretString, VaultClient, VaultProvider};
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Config {
//!     database_url: SecretString,
//!     port: u16,
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... (or VAULT_ENABLED=false for env only)
//! let client = VaultClient::from_env()?;
//! let vault = VaultProvider::builder()
//!     .map("database_url", "database#DATABASE_URL") // env fallback: DATABASE_URL
//!     .map("port", "database#port")                  // same path: still one read
//!     .fetch(&client)
//!     .await?;
//! let config: Config = Figment::new().merge(vault).extract_lossy()?;
//! println!("{config:?}"); // database_url: SecretBox<str>([REDACTED])
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod client;
mod config;
mod env;
mod error;
mod fallback;
mod kv;
mod mapping;
mod provider;
mod spec;
mod transport;

pub use client::{
    VaultClient, VaultClientBuilder, DEFAULT_CACHE_TTL, DEFAULT_KV_MOUNT, DEFAULT_TIMEOUT,
};
pub use env::EnvSource;
pub use error::{Error, Result};
pub use fallback::Mode;
pub use kv::{KvMetadata, KvSecret, KvVersion, SecretMap};
pub use mapping::Mapping;
pub use provider::{Origin, Resolved, VaultProvider, VaultProviderBuilder};

pub use config::VaultConfig;
pub use spec::{render_env_example, render_policy, FieldSpec};
pub use vault_config_derive::VaultConfig;

pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// What generated code names. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::config::VaultConfig;
    pub use crate::spec::{Description, FieldDecl, Scope};
    pub use core;
    pub use figment;
    pub use secrecy;
    pub use serde;
}

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
