//! The [`VaultConfig`] trait that `#[derive(VaultConfig)]` implements.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::base::KvVersion;
use crate::client::{VaultClient, DEFAULT_KV_MOUNT};
use crate::describe::policy::{render_env_example, render_policy};
use crate::describe::spec::{Description, FieldSpec, Scope};
use crate::error::Result;
use crate::load::plan::Plan;
use crate::load::provider::VaultProvider;
use crate::load::snapshot::{Freshness, Snapshot};
use crate::load::{load, Loaded};
use crate::watch::{WatchOptions, Watcher};

/// A configuration struct whose fields map to Vault `path#key`s.
///
/// Implemented by `#[derive(VaultConfig)]`; see the [crate docs](crate#the-derive)
/// for the attributes.
pub trait VaultConfig: Sized {
    /// Adds this type's fields to `out`, inside `scope`. Generated; not for calling.
    #[doc(hidden)]
    fn __describe(scope: &Scope, out: &mut Description);

    /// The type's name, for rendered docs.
    #[doc(hidden)]
    fn __type_name() -> &'static str;

    /// The mapping table: one entry per field mapped to Vault, nested structs
    /// flattened in, in declaration order.
    fn specs() -> Vec<FieldSpec> {
        describe::<Self>().specs
    }

    /// Reads the struct's Vault paths (each distinct path once, concurrently),
    /// falls back to env per field, and returns the values with their
    /// provenance, to extract yourself or to layer with other sources through
    /// a framework adapter (the `figment`, `figment2` or `config` feature):
    ///
    /// ```no_run
    /// # use vault_config::{VaultClient, VaultConfig};
    /// # #[derive(serde::Deserialize, VaultConfig)]
    /// # struct AppConfig { #[vault("database#DATABASE_URL")] url: String, log_level: String }
    /// # async fn demo(client: VaultClient) -> Result<(), Box<dyn std::error::Error>> {
    /// # #[cfg(feature = "figment")] {
    /// use figment::{Figment, providers::{Format, Toml}};
    /// let vault = AppConfig::provider(&client).await?;
    /// let config: AppConfig = Figment::new()
    ///     .merge(AppConfig::defaults())
    ///     .merge(Toml::file("app.toml"))
    ///     .merge(vault.figment()) // each value with its own source
    ///     .extract_lossy()
    ///     .map_err(|e| vault.explain(e))?; // errors without the value
    /// # }
    /// # Ok(()) }
    /// ```
    ///
    /// Field defaults are not in it: layer [`default_values`](Self::default_values)
    /// (or, with figment, `defaults`) first, so that the
    /// other layers can override them.
    fn provider(client: &VaultClient) -> impl Future<Output = Result<VaultProvider>> + Send {
        let described = describe::<Self>();
        let client = client.clone();
        async move { provider_for(&described, &client).await }
    }

    /// The fields' `default = ...` values, as a tree (nested keys are objects).
    fn default_values() -> serde_json::Map<String, serde_json::Value> {
        describe::<Self>().defaults_tree()
    }

    /// The fields' `default = ...` values, as a figment provider.
    #[cfg(feature = "figment")]
    fn defaults() -> figment::providers::Serialized<figment::value::Dict> {
        crate::adapters::figment::defaults(Self::default_values())
    }

    /// Loads the struct: Vault first, then each field's env fallback, then its
    /// default. Errors name the field, the Vault `mount/path#key` and env var
    /// tried, and where a bad value came from, never the value itself.
    ///
    /// Dynamic (leased) credentials are read once, and nothing renews their
    /// lease: they stop working when it expires. Use [`watch`](Self::watch) to
    /// keep them renewed and replaced.
    fn load(client: &VaultClient) -> impl Future<Output = Result<Self>> + Send
    where
        Self: DeserializeOwned,
    {
        let described = describe::<Self>();
        let client = client.clone();
        async move {
            let loaded: Loaded<Self> = load(&described, &client, Freshness::Cached).await?;
            Ok(loaded.config)
        }
    }

    /// Loads the struct (as [`load`](Self::load) does, with the same errors),
    /// then keeps it current: polls Vault and publishes a new config on a
    /// `tokio::sync::watch` channel whenever a rotation changes a value.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use vault_config::{VaultClient, VaultConfig, WatchOptions};
    /// # #[derive(serde::Deserialize, VaultConfig)]
    /// # struct AppConfig { #[vault("database#DATABASE_URL")] url: String }
    /// # async fn demo(client: VaultClient) -> Result<(), vault_config::Error> {
    /// let watcher = AppConfig::watch(&client, WatchOptions::default().interval(Duration::from_secs(5))).await?;
    /// let mut rx = watcher.subscribe();
    /// tokio::spawn(async move {
    ///     while rx.changed().await.is_ok() {
    ///         let cfg: Arc<AppConfig> = rx.borrow_and_update().clone();
    ///         // rebuild the pool with cfg.url ...
    /// #       let _ = cfg;
    ///     }
    /// });
    /// # Ok(()) }
    /// ```
    fn watch(
        client: &VaultClient,
        options: WatchOptions,
    ) -> impl Future<Output = Result<Watcher<Self>>> + Send
    where
        Self: DeserializeOwned + Send + Sync + 'static,
    {
        let described = describe::<Self>();
        let client = client.clone();
        async move { Watcher::start(&client, described, options).await }
    }

    /// Loads the struct with `figment` (a TOML file, env, anything) under
    /// Vault: the fields' defaults, then the figment's values (its selected
    /// profile), then each field's Vault key or env fallback over them. A
    /// field Vault and env lack loads from the figment; a string of the
    /// figment that is a `vault://PATH#KEY` [`Reference`](crate::Reference)
    /// is read from Vault (as [`refs_from`](crate::VaultProviderBuilder::refs_from)
    /// reads it), except at a key a field maps itself (that field's own
    /// sources fill it). Errors are [`load`](Self::load)'s, and name the
    /// figment's source for a bad value it gave, never the value. Every
    /// reference in the figment is resolved, used by the struct or not: give
    /// it the variables the struct reads (`Env::raw().only(&[...])`,
    /// `Env::prefixed("APP_")`) rather than the whole environment.
    ///
    /// ```no_run
    /// # use vault_config::{VaultClient, VaultConfig};
    /// #[derive(serde::Deserialize, VaultConfig)]
    /// struct AppConfig {
    ///     #[vault("database#DATABASE_URL")]
    ///     url: String,
    ///     log_level: String, // from app.toml
    /// }
    /// # async fn demo(client: VaultClient) -> Result<(), vault_config::Error> {
    /// use figment::{Figment, providers::{Format, Toml}};
    /// let config = AppConfig::load_with(&client, &Figment::from(Toml::file("app.toml"))).await?;
    /// # let _ = config; Ok(()) }
    /// ```
    #[cfg(feature = "figment")]
    fn load_with(
        client: &VaultClient,
        figment: &figment::Figment,
    ) -> impl Future<Output = Result<Self>> + Send
    where
        Self: DeserializeOwned,
    {
        let described = described_with::<Self>(figment);
        let client = client.clone();
        async move {
            let loaded: Loaded<Self> = load(&described?, &client, Freshness::Cached).await?;
            Ok(loaded.config)
        }
    }

    /// [`load_with`](Self::load_with), then kept current as
    /// [`watch`](Self::watch) keeps a config: on every change in Vault
    /// (the fields' paths and those the figment's references name) the
    /// merged config is extracted again. The figment is evaluated once, here:
    /// a later change to its file is not seen.
    #[cfg(feature = "figment")]
    fn watch_with(
        client: &VaultClient,
        figment: &figment::Figment,
        options: WatchOptions,
    ) -> impl Future<Output = Result<Watcher<Self>>> + Send
    where
        Self: DeserializeOwned + Send + Sync + 'static,
    {
        let described = described_with::<Self>(figment);
        let client = client.clone();
        async move { Watcher::start(&client, described?, options).await }
    }

    /// The least-privilege Vault policy (HCL) granting `read` on exactly the
    /// paths this struct reads, for `client`: its default KV mount where the
    /// struct names none, and each mount's KV version as the client knows it
    /// (declared with [`VaultClientBuilder::kv_version`](crate::VaultClientBuilder::kv_version)
    /// or already detected; KV v2 otherwise). Grant this policy to the
    /// service's role. For a KV v1 mount, declare its version on the builder
    /// (or render the policy after a load has detected it): before either,
    /// the mount is taken for KV v2.
    ///
    /// ```
    /// # use vault_config::{VaultClient, VaultConfig};
    /// #[derive(serde::Deserialize, VaultConfig)]
    /// struct AppConfig {
    ///     #[vault("database#DATABASE_URL")]
    ///     url: String,
    /// }
    /// let client = VaultClient::builder().address("http://127.0.0.1:8200").token("t").kv_mount("kv").build()?;
    /// assert!(AppConfig::vault_policy_for(&client).contains(r#"path "kv/data/database""#));
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    ///
    /// Paths a `path_env` variable moves are the ones it names in the
    /// environment the client reads (their defaults when unset).
    fn vault_policy_for(client: &VaultClient) -> String {
        let specs: Vec<FieldSpec> = Self::specs()
            .iter()
            .map(|s| s.resolved(client.env()))
            .collect();
        render_policy(Self::__type_name(), &specs, client.kv_mount(), &|mount| {
            client.known_kv_version(mount).unwrap_or(KvVersion::V2)
        })
    }

    /// The policy for the default mount `secret` on KV v2, without a client.
    /// Prefer [`vault_policy_for`](Self::vault_policy_for): a client with
    /// another mount (`VAULT_KV_MOUNT`) reads paths this policy does not grant,
    /// and a `path_env` variable may move a path (a comment names each).
    fn vault_policy() -> String {
        Self::vault_policy_with(DEFAULT_KV_MOUNT, &|_| KvVersion::V2)
    }

    /// [`vault_policy`](Self::vault_policy) for a given default mount and each
    /// mount's KV version.
    fn vault_policy_with(default_mount: &str, kv_version: &dyn Fn(&str) -> KvVersion) -> String {
        render_policy(
            Self::__type_name(),
            &Self::specs(),
            default_mount,
            kv_version,
        )
    }

    /// A `.env.example` listing every env fallback variable with its Vault
    /// source, for `client`: its default KV mount, and its own name for the
    /// variable that turns Vault off (`VAULT_ENABLED`, `AION_VAULT_ENABLED`).
    fn env_example_for(client: &VaultClient) -> String {
        render_env_example(
            Self::__type_name(),
            &Self::specs(),
            client.kv_mount(),
            &client.contract_var("ENABLED"),
        )
    }

    /// The `.env.example` for the default mount `secret` and `VAULT_ENABLED`,
    /// without a client. Prefer [`env_example_for`](Self::env_example_for).
    fn env_example() -> String {
        render_env_example(
            Self::__type_name(),
            &Self::specs(),
            DEFAULT_KV_MOUNT,
            "VAULT_ENABLED",
        )
    }
}

/// Everything a `T` describes, from the root scope.
fn describe<T: VaultConfig>() -> Description {
    let mut d = Description::default();
    T::__describe(&Scope::default(), &mut d);
    d
}

/// What a `T` describes, with `figment`'s values as the layer under Vault's.
#[cfg(feature = "figment")]
fn described_with<T: VaultConfig>(figment: &figment::Figment) -> Result<Description> {
    let mut d = describe::<T>();
    d.set_layer(crate::adapters::figment::layer_of(figment)?);
    Ok(d)
}

async fn provider_for(d: &Description, client: &VaultClient) -> Result<VaultProvider> {
    let mut plan = Plan::from_description(d, client)?;
    plan.settle_references(client).await;
    let snapshot = Snapshot::take(client, &plan, Freshness::Cached).await?;
    let provider = snapshot.resolve(&plan, client);
    provider.check_references()?;
    Ok(provider)
}
