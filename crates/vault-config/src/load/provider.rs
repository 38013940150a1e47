//! [`VaultProvider`]: a snapshot of Vault values (and env fallbacks) with the
//! provenance of each, and [`VaultProviderBuilder`], the mappings to fetch.
//!
//! Framework-free: the values are a `serde_json` tree, and
//! [`VaultProvider::extract`] deserializes a typed struct from it itself (see
//! the load layer's `de`). The framework adapters (`figment`, `figment2`,
//! `config` features) make it a provider or source of each framework.
//!
//! Uses the client (to fetch), the mapping description, and the load layer's
//! plan and snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::error::Category;
use serde_json::{Map, Value};

use crate::base::tree;
use crate::client::VaultClient;
use crate::describe::mapping::Mapping;
use crate::error::{Error, Result};
use crate::load::plan::Plan;
use crate::load::snapshot::{Freshness, Snapshot};

pub use crate::load::origin::{Origin, Resolved};

/// Mappings to fetch: the unfetched form of a [`VaultProvider`].
///
/// ```no_run
/// # async fn demo() -> Result<(), vault_config::Error> {
/// use vault_config::{VaultClient, VaultProvider};
/// let client = VaultClient::from_env()?;
/// let provider = VaultProvider::builder()
///     .map("db.url", "database#DATABASE_URL")
///     .map("db.user", "database#POSTGRES_USER") // same path: still one read
///     .map("api_key", "app-prod#AOS_API_KEY")
///     .fetch(&client)
///     .await?;
/// # let _ = provider; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct VaultProviderBuilder {
    pub(crate) mappings: Vec<Mapping>,
    pub(crate) env_prefix: Option<String>,
    pub(crate) error: Option<Error>,
}

impl VaultProviderBuilder {
    /// Adds a mapping `key <- "path#key"`; a malformed one makes [`fetch`](Self::fetch) fail.
    pub fn map(mut self, key: impl Into<String>, source: &str) -> Self {
        match Mapping::new(key, source) {
            Ok(m) => self.mappings.push(m),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds a mapping built with [`Mapping`]'s options (mount, version, env var).
    pub fn mapping(mut self, mapping: Mapping) -> Self {
        self.mappings.push(mapping);
        self
    }

    /// Adds many mappings.
    pub fn mappings(mut self, mappings: impl IntoIterator<Item = Mapping>) -> Self {
        self.mappings.extend(mappings);
        self
    }

    /// Prepends `prefix` to every default env fallback name (`APP_` + `DATABASE_URL`).
    /// A default name that is still one the environment already holds (`PORT`,
    /// `USER`: [`RESERVED_ENV_NAMES`](crate::client::env::RESERVED_ENV_NAMES)) makes
    /// [`fetch`](Self::fetch) fail with [`Error::Mapping`].
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// The mappings added so far.
    pub fn added(&self) -> &[Mapping] {
        &self.mappings
    }

    /// Reads every distinct Vault path once, concurrently (through the client's
    /// cache), falls back to env where Vault lacks a key, and returns the snapshot.
    pub async fn fetch(self, client: &VaultClient) -> Result<VaultProvider> {
        self.fetch_with(client, Freshness::Cached).await
    }

    /// Like [`fetch`](Self::fetch), but always reads Vault, past the client's cache
    /// (and refreshes the cache with what it read).
    pub async fn fetch_fresh(self, client: &VaultClient) -> Result<VaultProvider> {
        self.fetch_with(client, Freshness::Fresh).await
    }

    async fn fetch_with(self, client: &VaultClient, freshness: Freshness) -> Result<VaultProvider> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut plan = Plan::new(client, self.mappings, self.env_prefix)?;
        plan.settle_references(client).await;
        let snapshot = Snapshot::take(client, &plan, freshness).await?;
        let provider = snapshot.resolve(&plan, client);
        provider.check_references()?;
        Ok(provider)
    }
}

/// A snapshot of configuration values read from Vault (and env fallbacks),
/// each with its provenance: the Vault `path#key` or env var it came from.
///
/// [`extract`](Self::extract) turns it into a typed struct with no
/// configuration framework; with the `figment`, `figment2` or `config`
/// feature it is also a provider (source) of that framework, to layer with
/// files and other sources. String values stay strings, and extraction is
/// lossy: `"5432"`, `"true"` or `"1.5"` fill a `u16`, `bool` or `f64` field
/// (Vault's CLI writes every value as a string).
///
/// `Debug` lists keys and origins, never values.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use vault_config::{Mapping, VaultClient, VaultProvider};
///
/// #[derive(serde::Deserialize)]
/// struct Db { url: String, port: u16 }
///
/// let client = VaultClient::from_env()?;
/// let db: Db = VaultProvider::builder()
///     .map("url", "database#DATABASE_URL")
///     .mapping(Mapping::new("port", "database#port")?.env("DATABASE_PORT")) // not PORT
///     .fetch(&client)
///     .await?
///     .extract()?;
/// # let _ = db; Ok(()) }
/// ```
#[derive(Clone)]
pub struct VaultProvider {
    resolved: Vec<Resolved>,
    /// The value of each mapping, in mapping order (`None` when missing).
    values: Vec<Option<Value>>,
    /// Every value at its key.
    tree: Map<String, Value>,
    /// The `json` values that did not parse (each kept as its string).
    json_faults: Vec<JsonFault>,
    /// The keys of `json` mappings.
    json_keys: Vec<String>,
}

/// A `json` value that is not JSON: its key, where it came from, and why
/// (the parser's category, line and column, never the text).
#[derive(Debug, Clone)]
pub(crate) struct JsonFault {
    pub(crate) key: String,
    pub(crate) origin: String,
    pub(crate) reason: String,
}

impl VaultProvider {
    /// Starts a list of mappings to fetch.
    pub fn builder() -> VaultProviderBuilder {
        VaultProviderBuilder::default()
    }

    /// Where each mapped key's value came from, in mapping order.
    pub fn resolved(&self) -> &[Resolved] {
        &self.resolved
    }

    /// The keys that got no value from Vault or env.
    pub fn missing(&self) -> impl Iterator<Item = &Resolved> {
        self.resolved
            .iter()
            .filter(|r| matches!(r.origin, Origin::Missing { .. }))
    }

    /// Fails on the first `vault://` reference that did not resolve, naming
    /// the key, where the reference was written, the reference and why: a
    /// reference is never passed on as a value, nor silently dropped.
    pub(crate) fn check_references(&self) -> Result<()> {
        match self
            .resolved
            .iter()
            .find(|r| matches!(r.origin, Origin::Unresolved { .. }))
        {
            Some(r) => Err(Error::Mapping {
                mapping: r.key.clone(),
                reason: r.origin.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Every value at its (nested) key.
    pub(crate) fn tree(&self) -> &Map<String, Value> {
        &self.tree
    }

    /// The value of mapped key `key`, if it got one.
    pub(crate) fn value_of(&self, key: &str) -> Option<&Value> {
        tree::find(&self.tree, key)
    }

    /// Each mapping with its value, in mapping order (none when missing).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Resolved, Option<&Value>)> {
        self.resolved
            .iter()
            .zip(self.values.iter().map(Option::as_ref))
    }

    /// Where the value at dotted `key` came from: the last mapping with a
    /// value that holds it (its own key, or an enclosing one such as a whole
    /// secret's), as `vault secret/data/database#port` or `env var PORT`.
    pub(crate) fn origin_of(&self, key: &str) -> Option<String> {
        self.entries()
            .filter(|(r, v)| {
                v.is_some()
                    && (r.key == key
                        || key
                            .strip_prefix(r.key.as_str())
                            .is_some_and(|rest| rest.starts_with('.')))
            })
            .last()
            .map(|(r, _)| r.origin.to_string())
    }

    /// Builds the provider from each mapping's resolution and value (none when missing).
    pub(crate) fn from_values(values: Vec<(Resolved, Option<Value>)>) -> Self {
        let mut tree = Map::new();
        let mut resolved = Vec::with_capacity(values.len());
        let mut kept = Vec::with_capacity(values.len());
        for (r, value) in values {
            if let Some(v) = &value {
                tree::insert(&mut tree, &r.key, v.clone());
            }
            resolved.push(r);
            kept.push(value);
        }
        VaultProvider {
            resolved,
            values: kept,
            tree,
            json_faults: Vec::new(),
            json_keys: Vec::new(),
        }
    }

    /// The `json` mapping whose value holds dotted `key` (inside it, not
    /// the mapping's own key), with where that value came from.
    pub(crate) fn inside_json(&self, key: &str) -> Option<String> {
        self.json_keys
            .iter()
            .find(|k| {
                key.strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .and_then(|k| self.origin_of(k))
    }

    /// The `json` values that did not parse, in mapping order.
    pub(crate) fn json_faults(&self) -> &[JsonFault] {
        &self.json_faults
    }
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: BTreeMap<&str, String> = self
            .resolved
            .iter()
            .map(|r| (r.key.as_str(), r.origin.to_string()))
            .collect();
        f.debug_struct("VaultProvider")
            .field("keys", &origins)
            .finish()
    }
}

impl Snapshot {
    /// Each mapping's value with its provenance (env fallbacks applied), as
    /// a provider: the snapshot's values in the form extraction and the
    /// framework adapters read.
    ///
    /// A string value of a `json` mapping is parsed into the JSON it holds;
    /// one that does not parse stays a string, and its fault is kept for
    /// extraction to report.
    pub(crate) fn resolve(&self, plan: &Plan, client: &VaultClient) -> VaultProvider {
        let json: BTreeSet<&str> = plan.json_keys().collect();
        let mut faults = Vec::new();
        let values = self
            .resolve_values(plan, client)
            .into_iter()
            .map(|(r, value)| match value {
                Some(Value::String(text)) if json.contains(r.key.as_str()) => {
                    match parse_json(&text) {
                        Ok(parsed) => (r, Some(parsed)),
                        Err(reason) => {
                            faults.push(JsonFault {
                                key: r.key.clone(),
                                origin: r.origin.to_string(),
                                reason,
                            });
                            (r, Some(Value::String(text)))
                        }
                    }
                }
                other => (r, other),
            })
            .collect();
        let mut provider = VaultProvider::from_values(values);
        provider.json_faults = faults;
        provider.json_keys = json.into_iter().map(str::to_owned).collect();
        provider
    }
}

/// The JSON `text` holds, or why it holds none: the parser's category, line
/// and column, and, for a syntax error or an early end, its fixed message
/// (serde_json's syntax messages never quote the input; a data error's
/// might, so none is shown).
fn parse_json(text: &str) -> std::result::Result<Value, String> {
    serde_json::from_str(text).map_err(|e| {
        let at = format!("line {} column {}", e.line(), e.column());
        let shown = e.to_string();
        let message = shown
            .strip_suffix(&format!(" at {at}"))
            .unwrap_or("")
            .to_owned();
        match e.classify() {
            Category::Syntax => format!("expected JSON, found a syntax error at {at} ({message})"),
            Category::Eof => format!("expected JSON, found it ends early at {at} ({message})"),
            Category::Data | Category::Io => format!("expected JSON, found a data error at {at}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_json;
    use serde_json::json;

    #[test]
    fn json_is_parsed_and_a_fault_never_quotes_the_text() {
        assert_eq!(
            parse_json(r#"{"beta": true, "n": [1]}"#).ok(),
            Some(json!({"beta": true, "n": [1]}))
        );
        assert_eq!(parse_json("5432").ok(), Some(json!(5432)));
        for (text, want) in [
            (
                r#"{"beta": hunter2}"#,
                "expected JSON, found a syntax error at line 1 column 10 (expected value)",
            ),
            (
                "{\"beta\":\n \"hunter2",
                "expected JSON, found it ends early at line 2 column 9 (EOF while parsing a string)",
            ),
            (
                r#"{"a": 1} hunter2"#,
                "expected JSON, found a syntax error at line 1 column 10 (trailing characters)",
            ),
            (
                "hunter2",
                "expected JSON, found a syntax error at line 1 column 1 (expected value)",
            ),
        ] {
            let reason = parse_json(text).unwrap_err();
            assert_eq!(reason, want, "{text}");
            assert!(!reason.contains("hunter"), "{reason}");
        }
    }
}
