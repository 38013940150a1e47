//! The [`VaultConfig`] trait that `#[derive(VaultConfig)]` implements.

use std::future::Future;

use figment::error::{Actual, Kind};
use figment::{Figment, Profile};
use serde::de::DeserializeOwned;

use crate::client::{VaultClient, DEFAULT_KV_MOUNT};
use crate::error::{Error, Result};
use crate::kv::KvVersion;
use crate::provider::{Origin, VaultProvider};
use crate::spec::{render_env_example, render_policy, Description, FieldSpec, Scope};
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
    /// falls back to env per field, and returns the values as a provider, for
    /// composition with other figment layers:
    ///
    /// ```no_run
    /// # use vault_config::{VaultClient, VaultConfig};
    /// # #[derive(serde::Deserialize, VaultConfig)]
    /// # struct AppConfig { #[vault("database#DATABASE_URL")] url: String, log_level: String }
    /// # async fn demo(client: VaultClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use figment::{Figment, providers::{Format, Toml}};
    /// let config: AppConfig = Figment::new()
    ///     .merge(AppConfig::defaults())
    ///     .merge(Toml::file("app.toml"))
    ///     .merge(AppConfig::provider(&client).await?)
    ///     .extract_lossy()?;
    /// # Ok(()) }
    /// ```
    ///
    /// Field defaults are not in it: merge [`defaults`](Self::defaults) first,
    /// so that the other layers can override them.
    fn provider(client: &VaultClient) -> impl Future<Output = Result<VaultProvider>> + Send {
        let described = describe::<Self>();
        let client = client.clone();
        async move { provider_for(&described, &client).await }
    }

    /// The fields' `default = ...` values, as a figment provider.
    fn defaults() -> figment::providers::Serialized<figment::value::Dict> {
        figment::providers::Serialized::from(describe::<Self>().defaults_dict(), Profile::Default)
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
            let provider = provider_for(&described, &client).await?;
            extract(&described, &client, &provider)
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

    /// The least-privilege Vault policy (HCL) granting `read` on exactly the
    /// paths this struct reads, assuming KV v2 and the default mount `secret`
    /// where the struct names none. See [`vault_policy_with`](Self::vault_policy_with).
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

    /// A `.env.example` listing every env fallback variable with its Vault source.
    fn env_example() -> String {
        render_env_example(Self::__type_name(), &Self::specs(), DEFAULT_KV_MOUNT)
    }
}

/// Everything a `T` describes, from the root scope.
fn describe<T: VaultConfig>() -> Description {
    let mut d = Description::default();
    T::__describe(&Scope::default(), &mut d);
    d
}

pub(crate) async fn provider_for(d: &Description, client: &VaultClient) -> Result<VaultProvider> {
    if let Some(e) = &d.error {
        return Err(e.clone());
    }
    let mut builder = VaultProvider::builder();
    for spec in &d.specs {
        builder = builder.mapping(spec.mapping()?);
    }
    builder.fetch(client).await
}

/// Defaults, then the provider; extraction errors rewritten without values.
pub(crate) fn extract<T: DeserializeOwned>(
    d: &Description,
    client: &VaultClient,
    provider: &VaultProvider,
) -> Result<T> {
    let figment = Figment::new()
        .merge(figment::providers::Serialized::from(
            d.defaults_dict(),
            Profile::Default,
        ))
        .merge(provider);
    figment
        .extract_lossy()
        .map_err(|e| explain(e, d, client, provider))
}

/// Turns a figment error into one that names the field and its sources, and
/// never carries the offending value (figment's own text quotes it).
fn explain(
    err: figment::Error,
    d: &Description,
    client: &VaultClient,
    provider: &VaultProvider,
) -> Error {
    let mut path = err.path.clone();
    if let Kind::MissingField(name) = &err.kind {
        path.push(name.to_string());
    }
    let key = path.join(".");
    let spec = d.spec_for_key(&key);
    let field = d.field_of(&key);
    if let Kind::MissingField(_) = &err.kind {
        let resolved = provider.resolved().iter().find(|r| r.key == key);
        return match (spec, resolved.map(|r| &r.origin)) {
            (Some(_), Some(Origin::Missing { vault, env_var })) => Error::Missing {
                field,
                vault: vault.clone(),
                env_var: Some(env_var.clone()),
            },
            (Some(s), _) => Error::Missing {
                field,
                vault: client.is_enabled().then(|| s.location(client.kv_mount())),
                env_var: Some(s.env_var.clone()),
            },
            (None, _) => Error::Missing {
                field,
                vault: None,
                env_var: None,
            },
        };
    }
    let reason = match &err.kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", kind_of(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found another {}", kind_of(actual))
        }
        Kind::InvalidLength(len, expected) => format!("expected {expected}, found {len} items"),
        Kind::UnknownVariant(_, expected) => format!("expected one of {}", expected.join(", ")),
        Kind::Message(msg) => redact_message(msg, &err, provider),
        other => other.to_string(),
    };
    let origin = err.metadata.as_ref().map(|m| m.name.to_string());
    Error::Invalid {
        field,
        reason,
        origin,
    }
}

/// A custom deserializer's message may quote the input: drop it if it does.
fn redact_message(msg: &str, err: &figment::Error, provider: &VaultProvider) -> String {
    let figment = Figment::from(provider);
    let value = figment.find_value(&err.path.join("."));
    match value.ok().and_then(|v| v.into_string()) {
        Some(s) if !s.is_empty() && msg.contains(&s) => msg.replace(&s, "[REDACTED]"),
        _ => msg.to_owned(),
    }
}

fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "nothing",
        Actual::Option => "an option",
        Actual::Seq => "a list",
        Actual::Map => "a map",
        _ => "a value of another kind",
    }
}
