//! The config-rs adapter (feature `config`): a [`VaultProvider`] is a
//! `config::Source` over values already fetched (sync), and [`VaultSource`]
//! a `config::AsyncSource` that fetches its mappings when the config is built.
//! Each value carries its own origin (`vault secret/data/database#port`,
//! `env var DATABASE_PORT`), which config-rs shows in its errors;
//! [`VaultProvider::explain`] rewrites those without the value.
//!
//! ```no_run
//! # async fn demo(client: vault_config::VaultClient) -> Result<(), Box<dyn std::error::Error>> {
//! use config::Config;
//! use vault_config::VaultProvider;
//! use vault_config::config_rs::VaultSource;
//!
//! #[derive(serde::Deserialize)]
//! struct Settings { url: String, log_level: String }
//!
//! // Sync: over a snapshot fetched beforehand.
//! let vault = VaultProvider::builder().map("url", "database#DATABASE_URL").fetch(&client).await?;
//! let settings: Settings = Config::builder()
//!     .set_default("log_level", "info")? // or a file, with config's format features
//!     .add_source(vault.clone())
//!     .build()
//!     .and_then(Config::try_deserialize)
//!     .map_err(|e| vault.explain(e))?;
//!
//! // Async: the source fetches when the config is built.
//! let source = VaultSource::new(&client, VaultProvider::builder().map("url", "database#DATABASE_URL"));
//! let settings: Settings = Config::builder()
//!     .set_default("log_level", "info")?
//!     .add_async_source(source)
//!     .build()
//!     .await?
//!     .try_deserialize()?;
//! # let _ = settings; Ok(()) }
//! ```
//!
//! config-rs converts strings to numbers and booleans itself when it
//! deserializes. Uses the load layer and the client only.

use config::{ConfigError, Map as CMap, Source, Value as CValue, ValueKind};
use serde_json::Value;

use crate::adapters::sealed;
use crate::client::VaultClient;
use crate::load::de::{Failure, Fault};
use crate::load::provider::{VaultProvider, VaultProviderBuilder};

impl Source for VaultProvider {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<CMap<String, CValue>, ConfigError> {
        Ok(to_table(self))
    }
}

/// The provider's tree as config-rs values, each leaf with its origin.
fn to_table(provider: &VaultProvider) -> CMap<String, CValue> {
    provider
        .tree()
        .iter()
        .map(|(k, v)| (k.clone(), to_value(provider, k, v)))
        .collect()
}

fn to_value(provider: &VaultProvider, key: &str, value: &Value) -> CValue {
    let origin = provider.origin_of(key);
    let kind = match value {
        Value::Null => ValueKind::Nil,
        Value::Bool(b) => ValueKind::Boolean(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => ValueKind::U64(u),
            (_, Some(i)) => ValueKind::I64(i),
            _ => ValueKind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ValueKind::String(s.clone()),
        Value::Array(items) => ValueKind::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_value(provider, &format!("{key}.{i}"), v))
                .collect(),
        ),
        Value::Object(map) => ValueKind::Table(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(provider, &format!("{key}.{k}"), v)))
                .collect(),
        ),
    };
    CValue::new(origin.as_ref(), kind)
}

/// A `config::AsyncSource` that fetches its mappings (through the client's
/// cache, as [`VaultProviderBuilder::fetch`] does) each time the config is
/// built. `Debug` shows the mappings, never values.
#[derive(Debug, Clone)]
pub struct VaultSource {
    client: VaultClient,
    mappings: VaultProviderBuilder,
}

impl VaultSource {
    /// A source of `mappings`, read through `client`.
    pub fn new(client: &VaultClient, mappings: VaultProviderBuilder) -> Self {
        VaultSource {
            client: client.clone(),
            mappings,
        }
    }
}

#[async_trait::async_trait]
impl config::AsyncSource for VaultSource {
    async fn collect(&self) -> Result<CMap<String, CValue>, ConfigError> {
        let provider = self
            .mappings
            .clone()
            .fetch(&self.client)
            .await
            .map_err(|e| ConfigError::Foreign(Box::new(e)))?;
        Ok(to_table(&provider))
    }
}

impl sealed::Sealed for ConfigError {
    fn failure(self) -> Result<(Failure, Option<String>), crate::Error> {
        let path = |key: Option<String>| -> Vec<String> {
            key.map(|k| k.split('.').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let message = |text: String| Failure {
            path: Vec::new(),
            fault: Fault::Message(text),
        };
        Ok(match self {
            ConfigError::Type {
                origin,
                unexpected,
                expected,
                key,
            } => (
                Failure {
                    path: path(key),
                    fault: Fault::InvalidType {
                        found: kind_of(&unexpected),
                        expected: expected.to_owned(),
                    },
                },
                origin,
            ),
            ConfigError::At { error, origin, key } => {
                let (mut failure, inner) = error.failure()?;
                if failure.path.is_empty() {
                    failure.path = path(key);
                }
                (failure, inner.or(origin))
            }
            ConfigError::NotFound(key) => {
                let mut p = path(Some(key));
                let name = p.pop().unwrap_or_default();
                (
                    Failure {
                        path: p,
                        fault: Fault::Missing(name),
                    },
                    None,
                )
            }
            // A [`VaultSource`]'s fetch failed: its error as it was.
            ConfigError::Foreign(e) => match e.downcast::<crate::Error>() {
                Ok(ours) => return Err(*ours),
                Err(other) => (message(other.to_string()), None),
            },
            // A message may quote a value: `explain` redacts the one at fault.
            other => (message(other.to_string()), None),
        })
    }
}

/// The kind of value config-rs found, from its variant's name (config-rs
/// does not export the type; its `Display` quotes the value).
fn kind_of(unexpected: &impl std::fmt::Debug) -> &'static str {
    let mut shown = format!("{unexpected:?}");
    let kind = match shown.split('(').next().unwrap_or_default() {
        "Bool" => "a boolean",
        "I64" | "I128" | "U64" | "U128" => "an integer",
        "Float" => "a float",
        "Str" => "a string",
        "Unit" => "nothing",
        "Seq" => "a list",
        "Map" => "a map",
        _ => "a value of another kind",
    };
    zeroize::Zeroize::zeroize(&mut shown);
    kind
}
