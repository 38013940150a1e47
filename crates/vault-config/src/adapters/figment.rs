//! The figment adapter (feature `figment`, on by default): a
//! [`VaultProvider`] is a `figment::Provider`, [`VaultProvider::figment`]
//! gives one provider per value (each naming its Vault `path#key` or env
//! var), and [`VaultConfig::defaults`](crate::VaultConfig::defaults) the
//! derive's defaults.
//!
//! ```no_run
//! # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
//! use figment::{Figment, providers::{Format, Toml}};
//! use vault_config::{Mapping, VaultProvider};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { url: String, port: u16, log_level: String }
//!
//! let vault = VaultProvider::builder()
//!     .map("url", "database#DATABASE_URL")
//!     .mapping(Mapping::new("port", "database#port")?.env("DATABASE_PORT"))
//!     .fetch(&client)
//!     .await?;
//! let config: Config = Figment::new()
//!     .merge(Toml::file("app.toml")) // log_level, and values Vault overrides
//!     .merge(vault.figment()) // or `.merge(&vault)`: one source, `vault-config`
//!     .extract_lossy()
//!     .map_err(|e| vault.explain(e))?; // names `vault secret/data/database#port`, never the value
//! # let _ = config; Ok(()) }
//! ```
//!
//! Only figment's supported API is used. Its `Provider` trait has no public
//! way for one provider to give each value its own metadata, so
//! `merge(&vault)` shows one source, `vault-config`, in figment's metadata
//! and errors; `merge(vault.figment())` shows each value's own, and
//! [`VaultProvider::explain`] restores it for either.

figment_adapter!(figment, figment);
