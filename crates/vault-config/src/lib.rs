//! Typed application configuration from HashiCorp Vault or OpenBao KV secrets,
//! with environment-variable fallback.
//!
//! - [`VaultClient`]: a small async client for Vault's KV engines (v1 and v2),
//!   configured from the standard env contract (`VAULT_ADDR`, `VAULT_TOKEN`,
//!   `VAULT_NAMESPACE`, ..., or OpenBao's `BAO_*`), with timeouts, bounded
//!   retries and a per-client cache.
//! - [`VaultProvider`]: maps configuration keys to Vault `path#key`s, reads each
//!   distinct path once (concurrently), falls back to env vars, and keeps the
//!   source of each value; it extracts a typed struct itself, or layers into
//!   figment, figment2 or config-rs (see [Features](#features)).
//! - [`Error`]: one error type whose text says what to fix, and never holds a
//!   token or a secret value.
//!
//! ```no_run
//! use vault_config::{Mapping, SecretString, VaultClient, VaultProvider};
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
//!     .mapping(Mapping::new("port", "database#port")?.env("DATABASE_PORT")) // same path: still one read
//!     .fetch(&client)
//!     .await?;
//! let config: Config = vault.extract()?; // errors never quote a value
//! println!("{config:?}"); // database_url: SecretBox<str>([REDACTED])
//! # Ok(()) }
//! ```
//!
//! # The derive
//!
//! `#[derive(VaultConfig)]` (with serde's `Deserialize`) maps fields to Vault
//! `path#key`s and gives the struct [`VaultConfig::load`], `watch`, `provider`,
//! `specs`, `vault_policy_for` and `env_example_for`. This example runs with Vault turned off,
//! so every field reads its env fallback:
//!
//! ```
//! use serde::Deserialize;
//! use vault_config::{EnvSource, ExposeSecret, SecretString, VaultClient, VaultConfig};
//!
//! #[derive(Debug, Deserialize, VaultConfig)]
//! #[vault(mount = "agenticverz")]
//! struct AppConfig {
//!     #[vault(path = "database", key = "DATABASE_URL")]
//!     database_url: SecretString,
//!     #[vault("database#port", env = "DATABASE_PORT", default = 5432)]
//!     port: u16, // named: by default it would fall back to PORT, which is refused
//!     #[vault(path = "app-prod", key = "AOS_API_KEY", env = "AOS_KEY")]
//!     api_key: SecretString,
//!     #[vault("external-apis#OPENAI_API_KEY")]
//!     openai_api_key: Option<SecretString>,
//!     #[vault(nested)]
//!     keycloak: KeycloakAdmin,
//!     #[vault(env = "PORT", default = 8080)]
//!     listen_port: u16, // env only: never read from Vault
//!     #[vault(env = "FEATURE_FLAGS", json)]
//!     flags: std::collections::BTreeMap<String, bool>, // `{"beta": true}`
//! }
//!
//! #[derive(Debug, Deserialize, VaultConfig)]
//! struct KeycloakAdmin {
//!     #[vault("keycloak-admin#KEYCLOAK_ADMIN")]
//!     admin: String,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let env = EnvSource::from_fn(|name| match name {
//!     "DATABASE_URL" => Some("postgres://app@db/app".into()),
//!     "AOS_KEY" => Some("aos-key".into()),
//!     "KEYCLOAK_ADMIN" => Some("admin".into()),
//!     "FEATURE_FLAGS" => Some(r#"{"beta": true}"#.into()),
//!     _ => None,
//! });
//! let client = VaultClient::builder().enabled(false).env_source(env).build()?;
//! let config = AppConfig::load(&client).await?;
//! assert_eq!(config.port, 5432); // the default
//! assert_eq!(config.api_key.expose_secret(), "aos-key"); // env AOS_KEY
//! assert!(config.openai_api_key.is_none());
//! assert_eq!(config.listen_port, 8080); // PORT unset: the default
//! assert_eq!(config.flags.get("beta"), Some(&true)); // the JSON string, parsed
//! assert!(!format!("{config:?}").contains("postgres://")); // secrets stay redacted
//!
//! assert!(AppConfig::vault_policy_for(&client).contains(r#"path "agenticverz/data/database""#));
//! assert!(AppConfig::env_example_for(&client).contains("\nAOS_KEY=\n"));
//! assert!(AppConfig::env_example_for(&client).contains("\n# listen_port: env only (has a default)\nPORT=8080\n"));
//! assert!(!AppConfig::vault_policy_for(&client).contains("PORT"));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })
//! # }
//! ```
//!
//! ## Struct attributes: `#[vault(...)]` on the struct
//!
//! | attribute | meaning |
//! |---|---|
//! | `mount = "agenticverz"` | the KV mount of every field (default: the client's mount, `VAULT_KV_MOUNT`, else `secret`) |
//! | `path = "aionos/db-main"` | the path of every field that names only a `key` (a struct = one secret) |
//! | `path_env = "AION_DB_SECRET_PATH"` | an env var that, when set at load time, replaces `path` (the whole path inside the mount; no `prefix`) |
//! | `prefix = "aionos"` | prepended to every path: `db-main` reads `aionos/db-main` |
//! | `env_prefix = "APP_"` | prepended to every default env fallback name: `APP_DATABASE_URL` |
//! | `crate = "vc"` | the path of this crate when the dependency is renamed (`vc = { package = "vault-config" }`) or re-exported |
//!
//! A `nested` struct inherits what it does not set itself.
//!
//! ## Field attributes: `#[vault(...)]` on a field
//!
//! | attribute | meaning |
//! |---|---|
//! | `path = "database", key = "DATABASE_URL"` | the Vault secret path and the key inside it |
//! | `"database#DATABASE_URL"` | the same, as one string |
//! | `key = "password"` alone | a key of the struct's `path` |
//! | `key = "*"` | every key of the secret, into a `HashMap`/`BTreeMap` field or a type that deserializes from one (a struct, a [`tls::Identity`]); no env fallback |
//! | `path_env = "AION_MINIO_SECRET_PATH"` | an env var that, when set at load time, replaces this field's path |
//! | `env = "DB_URL"` | the env fallback name, used exactly (default: the key in upper case, `-` and `.` as `_`, after `env_prefix`; see below) |
//! | `env = "PORT"` alone (no path, key or `dynamic`) | an env-only field: read from that variable (exactly, no `env_prefix`) at load, never from Vault, even with env fallbacks off; absent from the policy, listed in `.env.example` with its `default`; a watcher keeps the value it loaded with |
//! | `no_env` | no env fallback: a key Vault lacks is missing (or its `default`), never read from a variable a stale `.env` may have left (the whole client: [`VaultClientBuilder::env_fallback`]) |
//! | `default = <expr>` | used when Vault and env both lack the key; any `Serialize` expression that deserializes into the field |
//! | `version = 3` | pins that KV v2 version |
//! | `nested` | the field is itself a `VaultConfig` struct |
//! | `dynamic = "database/creds/app", key = "username"` | a key of credentials leased by a secrets engine (no mount, no prefix); all fields of one dynamic path share one read, one lease |
//! | `ttl = "1h"` | with `dynamic`: the lease length asked for (renewed to it after each read and by it afterwards), bounded by the role's max TTL; with `pki`: the certificate's validity asked for |
//! | `pki = "pki/issue/web", common_name = "gateway.internal"` | a certificate and key the PKI role issues (at each load; a watcher issues the next two thirds of the way to expiry), into a [`tls::Identity`] field (or `Option` of one); the path must be `<mount>/issue/<role>`; no env fallback; the policy grants `update` on it |
//! | `alt_names = "a.internal,b.internal"`, `ip_sans = "10.0.0.7"` | with `pki`: subject alternative names, comma-separated as Vault takes them |
//! | `json` | a string value (from Vault or env: `FEATURE_FLAGS='{"beta": true}'` in a `.env`) is parsed as JSON before extraction, into a struct, a map, a list, ...; a value already JSON (a secret written with `kv put @file.json`) is taken as is; one that does not parse is [`Error::Invalid`] naming the field, the source and the line and column, never the text |
//!
//! An `Option<T>` field absent everywhere is `None`. A field without `#[vault]`
//! comes from other layers of a configuration framework (see
//! [`VaultConfig::provider`]); `load` alone leaves it missing. A value only
//! env holds (`PORT`, `LOG_LEVEL`) is an env-only field, `#[vault(env =
//! "PORT")]`: mapping it to a Vault key that does not exist would let Vault
//! override it. When unset and without a default, it is [`Error::Missing`]
//! naming the variable and no Vault location.
//! `#[serde(rename = "...")]` on a field is followed. Mistakes are compile
//! errors pointing at the attribute: a malformed `path#key`, an unknown
//! attribute (with a "did you mean"), a value of the wrong kind, the same
//! `path#key` (and version) on two fields, a path with an empty, `.` or `..` segment, `nested` with a path, `env` or `json`, `default` on an `Option`,
//! `version`, `path_env` or `ttl` on an env-only field, `no_env` with no Vault key, `json` on a whole secret,
//! a default env fallback name in [`env::RESERVED_ENV_NAMES`],
//! enums, unions, tuple and generic structs.
//!
//! ### Default env fallback names
//!
//! A field without `env` falls back to the env var named after its key. That
//! default may not be a variable the service's own environment already holds,
//! set by shells, container runtimes or platforms: `database#user` would read
//! `USER`, the login name, and `port` would read `PORT`, the HTTP port most
//! platforms assign, whenever Vault lacked the key. The derive refuses such a
//! field at compile time, naming the field, the variable and the fix: an `env`
//! name of your choosing (`env = "DATABASE_PORT"`, any name, even `PORT`), or
//! an `env_prefix` on the struct (`APP_PORT` is fine). The list is
//! [`env::RESERVED_ENV_NAMES`]: `USER`, `LOGNAME`, `HOME`, `SHELL`, `PATH`,
//! `MAIL`, `PWD`, `OLDPWD`, `SHLVL`, `IFS`, `PS1`, `UID`, `EUID`, `PPID`,
//! `HOSTTYPE`, `OSTYPE`, `MACHTYPE`, `TERM`, `DISPLAY`, `EDITOR`, `VISUAL`,
//! `PAGER`, `COLUMNS`, `LINES`, `LANG`, `LANGUAGE`, `LC_ALL` and the other
//! `LC_*` categories, `TZ`, `TMPDIR`, `TMP`, `TEMP`, `HOST`, `HOSTNAME`, `PORT`.
//! Each struct is checked on its own: a `nested` struct that would take its
//! prefix from the enclosing one sets its own `env_prefix` (or `env` on the
//! field). A [`Mapping`] without [`env`](Mapping::env) is refused the same way
//! when the provider is built ([`Error::Mapping`]).
//!
//! # Features
//!
//! The core owns no configuration framework: [`VaultConfig::load`],
//! [`watch`](VaultConfig::watch) and [`VaultProvider::extract`] deserialize
//! the typed struct themselves. Adapters, each behind a cargo feature, make a
//! [`VaultProvider`] a provider or source of a framework, with supported API
//! only; `VaultProvider::explain` turns any of their errors into an
//! [`Error`] that never quotes a value.
//!
//! | feature | what it adds |
//! |---|---|
//! | `figment` (default) | `VaultProvider: figment::Provider`, `VaultProvider::figment` (one provider per value), `VaultConfig::defaults`, `VaultConfig::load_with` / `watch_with` (a figment under Vault), `VaultProviderBuilder::refs_from` (its `vault://` references), `pub use figment` |
//! | `figment2` | the same for figment2, the maintained fork (without `load_with`, `watch_with`, `refs_from`): `VaultProvider: figment2::Provider`, `VaultProvider::figment2`, `pub use figment2` |
//! | `config` | config-rs: `VaultProvider: config::Source` (sync, over a fetched snapshot) and `config_rs::VaultSource` (`config::AsyncSource`) |
//! | `metrics` | metrics through the `metrics` facade (see [`telemetry`]) |
//! | `rustls` | `tls::CertResolver` (a rustls server and client certificate resolver fed by a watcher), `Identity::certified_key` and `reqwest_identity`, `pub use rustls` in [`tls`]; adds no dependency |
//!
//! `default-features = false` leaves the core alone.
//!
//! Each adapter implements the traits of one major version of its framework:
//! figment 0.10, figment2 0.11, config 0.15 (which needs Rust 1.88; the rest
//! of the crate builds on 1.82). A project on another version gets "trait
//! `Provider` is not implemented for `VaultProvider`": use the version this
//! crate re-exports (`vault_config::figment`, `vault_config::figment2`), or
//! move to the one named here. With a framework, extract with its lossy
//! form (`Figment::extract_lossy`): Vault's CLI writes every value as a
//! string, and `.extract()` refuses `"5432"` for a `u16`.
//!
//! # Modules
//!
//! The load pipeline runs one way: env / builder → [`VaultClient`] → plan (the
//! distinct reads a description needs) → snapshot (what they returned, with
//! env fallbacks and provenance) → the typed struct (the core's own lossy
//! deserializer) → a [`Watcher`]'s channel. Framework adapters read the
//! snapshot; nothing in the pipeline reads them.
//!
//! | module | what it holds |
//! |---|---|
//! | [`kv`] | KV v1/v2 reads, versions and metadata, and the secret types |
//! | [`lease`] | leased (dynamic) credentials: read, renew, revoke |
//! | [`auth`] | auth methods (token, AppRole, JWT, Kubernetes) and token status |
//! | [`env`](mod@env) | the env contract and [`EnvSource`] |
//! | [`provider`] | [`VaultProvider`], the fetched values with per-value provenance |
//! | [`adapters`] | the figment, figment2 and config-rs adapters, one feature each |
//! | [`watch`] | [`Watcher`] and [`WatchOptions`]: hot reload |
//! | [`health`] | [`Health`], what a watcher reports |
//! | [`policy`] | the Vault policy and `.env.example` a mapping table implies |
//! | [`sys`] | the server's seal and HA state, the token's policies and TTL, capabilities |
//! | [`telemetry`] | the metrics (the `metrics` feature) and what they mean |
//! | [`tls`] | [`tls::Identity`], a certificate and key from Vault PKI or KV, and a rustls resolver (the `rustls` feature) |
//!
//! ## Layers
//!
//! The source tree is the architecture: each layer is a folder of
//! `src/`, and imports run one way, from the face down (a layer uses only
//! those listed after it here, never one before it).
//!
//! | layer | holds | may use |
//! |---|---|---|
//! | `config.rs`, `adapters/` | the [`VaultConfig`] trait; the framework adapters | every layer below |
//! | `watch/` | the [`Watcher`]: options, backoff, the task, change detection, the per-client hub, leases, certificates issued again, [`Health`] | load, describe, tls, engines, client, base |
//! | `load/` | plan → snapshot → [`VaultProvider`] → the typed struct (its own lossy deserializer) | describe, engines, client, base |
//! | `describe/` | pure data: [`Mapping`], what the derive describes, the policy it implies | tls (one data type: a PKI request), base |
//! | `engines/` | KV, leases, PKI issue, `sys`, the per-client read cache | client, tls (a PKI request), base |
//! | `tls/` | [`tls::Identity`] (PEM, a small X.509 reader, the key check), the PKI [`tls::CertificateRequest`], the rustls resolver | base |
//! | `client/` | the [`VaultClient`] handle, builder, env contract, transport, auth | base |
//! | `base/` | leaves: the clock, zeroizing, env names, KV versions, value trees | nothing above |
//!
//! [`Error`] (`error.rs`) and [`telemetry`] sit beside the layers and are
//! used by all of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod adapters;
mod base;
mod client;
mod config;
mod describe;
mod engines;
mod error;
mod load;
pub mod telemetry;
pub mod tls;
pub mod watch;

pub use client::{auth, env};
pub use describe::policy;
pub use engines::{kv, lease, sys};
pub use load::provider;
pub use watch::health;

pub use auth::{AuthMethod, SecretId};
pub use client::builder::VaultClientBuilder;
pub use client::fallback::FallbackMode;
pub use client::{VaultClient, DEFAULT_CACHE_TTL, DEFAULT_KV_MOUNT, DEFAULT_TIMEOUT};
pub use config::VaultConfig;
pub use env::EnvSource;
pub use error::{Error, Result};
/// The former name of [`FallbackMode`].
#[deprecated(since = "0.1.0", note = "renamed FallbackMode")]
pub type Mode = FallbackMode;
pub use describe::mapping::Mapping;
pub use describe::reference::Reference;
pub use health::Health;
pub use provider::{VaultProvider, VaultProviderBuilder};
pub use vault_config_derive::VaultConfig;
pub use watch::{WatchOptions, Watcher};

/// config-rs, whose types appear in this crate's signatures (feature `config`).
#[cfg(feature = "config")]
pub use ::config as config_crate;
#[cfg(feature = "config")]
pub use adapters::config_rs;
#[cfg(any(feature = "figment", feature = "figment2", feature = "config"))]
pub use adapters::FrameworkError;
/// figment, whose types appear in this crate's signatures (feature `figment`).
#[cfg(feature = "figment")]
pub use figment;
/// figment2, whose types appear in this crate's signatures (feature `figment2`).
#[cfg(feature = "figment2")]
pub use figment2;
pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// What generated code names. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::config::VaultConfig;
    pub use crate::describe::spec::{Description, FieldDecl, IssueDecl, Scope};

    /// The types a `#[vault(pki = ...)]` field may have.
    #[diagnostic::on_unimplemented(
        message = "a `#[vault(pki = ...)]` field must be a `vault_config::tls::Identity`, not `{Self}`",
        label = "a certificate a PKI role issues fills a `tls::Identity` (or an `Option` of one)"
    )]
    pub trait PkiField {}
    impl PkiField for crate::tls::Identity {}
    impl PkiField for ::core::option::Option<crate::tls::Identity> {}

    /// Compiles only for a type a `pki` field may have.
    pub fn pki_field<T: PkiField>() {}
}

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
