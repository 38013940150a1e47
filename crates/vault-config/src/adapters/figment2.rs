//! The figment2 adapter (feature `figment2`): the figment adapter for
//! figment2, the maintained fork of figment. A [`VaultProvider`] is a
//! `figment2::Provider`, and [`VaultProvider::figment2`] gives one provider
//! per value, each naming its Vault `path#key` or env var.
//!
//! ```no_run
//! # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
//! use figment2::{Figment, providers::Serialized};
//! use vault_config::VaultProvider;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { url: String, log_level: String }
//!
//! let vault = VaultProvider::builder()
//!     .map("url", "database#DATABASE_URL")
//!     .fetch(&client)
//!     .await?;
//! let config: Config = Figment::new()
//!     .merge(Serialized::default("log_level", "info"))
//!     .merge(vault.figment2())
//!     .extract_lossy()
//!     .map_err(|e| vault.explain(e))?;
//! # let _ = config; Ok(()) }
//! ```
//!
//! The derive's defaults: `Serialized::defaults(AppConfig::default_values())`.
//! As with figment, merging the provider itself shows one source,
//! `vault-config`; its per-value Figment shows each value's own.

figment_adapter!(figment2, figment2);
