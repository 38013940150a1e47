//! [`VaultProvider`]: a snapshot of Vault values (and env fallbacks) that merges into a figment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};
use futures_util::future::join_all;

use crate::client::VaultClient;
use crate::error::{Error, Result};
use crate::fallback::Mode;
use crate::kv::{KvSecret, KvVersion};
use crate::mapping::Mapping;

/// Where one configuration key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A key of a Vault secret.
    Vault {
        /// The namespace, if any.
        namespace: Option<String>,
        /// The API path read, e.g. `secret/data/database` (KV v2) or `kv/database` (KV v1).
        api_path: String,
        /// The key inside the secret.
        key: String,
        /// The KV v2 version read.
        version: Option<u64>,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// Neither: Vault lacked the key (or was not asked) and the env var is unset.
    /// Other figment layers, serde defaults or `Option` may still fill the key.
    Missing {
        /// The Vault location tried, as `mount/path#key`, if Vault was asked.
        vault: Option<String>,
        /// The env var tried.
        env_var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Vault {
                namespace,
                api_path,
                key,
                ..
            } => {
                f.write_str("vault ")?;
                if let Some(ns) = namespace {
                    write!(f, "{}/", ns.trim_matches('/'))?;
                }
                write!(f, "{api_path}#{key}")
            }
            Origin::Env { var } => write!(f, "env var {var}"),
            Origin::Missing {
                vault: Some(v),
                env_var,
            } => {
                write!(f, "missing (not at vault {v}, env {env_var} unset)")
            }
            Origin::Missing {
                vault: None,
                env_var,
            } => write!(f, "missing (env {env_var} unset)"),
        }
    }
}

/// One mapping of a fetch and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The figment key filled (dotted).
    pub key: String,
    /// Where its value came from.
    pub origin: Origin,
}

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
    mappings: Vec<Mapping>,
    env_prefix: Option<String>,
    error: Option<Error>,
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
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// The mappings added so far.
    pub fn mapping_list(&self) -> &[Mapping] {
        &self.mappings
    }

    /// Reads every distinct Vault path once, concurrently (through the client's
    /// cache), falls back to env where Vault lacks a key, and returns the snapshot.
    pub async fn fetch(self, client: &VaultClient) -> Result<VaultProvider> {
        self.fetch_with(client, true).await
    }

    /// Like [`fetch`](Self::fetch), but always reads Vault, past the client's cache
    /// (and refreshes the cache with what it read).
    pub async fn fetch_fresh(self, client: &VaultClient) -> Result<VaultProvider> {
        self.fetch_with(client, false).await
    }

    async fn fetch_with(self, client: &VaultClient, cached: bool) -> Result<VaultProvider> {
        if let Some(e) = self.error {
            return Err(e);
        }
        check_keys(&self.mappings)?;
        let prefix = self.env_prefix.as_deref();
        let secrets = secrets_for(client, &self.mappings, prefix, cached).await?;
        Ok(VaultProvider::assemble(
            client,
            &self.mappings,
            prefix,
            secrets.as_ref(),
        ))
    }
}

/// Reads what `mappings` need, or `None` when env is to be read instead: Vault
/// is disabled, or unavailable in fallback mode (each said once in the log).
pub(crate) async fn secrets_for(
    client: &VaultClient,
    mappings: &[Mapping],
    prefix: Option<&str>,
    cached: bool,
) -> Result<Option<Secrets>> {
    if !client.is_enabled() {
        tracing::info!(
            mappings = mappings.len(),
            "Vault is disabled ({}=false); reading every mapping from env",
            client.contract_var("ENABLED")
        );
        return Ok(None);
    }
    match read_all(client, mappings, cached).await {
        Ok(secrets) => Ok(Some(secrets)),
        Err(e) if e.is_unavailable() && client.mode() == Mode::Fallback => {
            let vars: Vec<String> = mappings.iter().map(|m| m.env_var(prefix)).collect();
            tracing::warn!(
                error = %e,
                vars = %vars.join(", "),
                "Vault is unavailable; reading every mapping from env (fallback mode)"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The secrets read in one fetch, by (mount, path, pinned version).
pub(crate) type Secrets = HashMap<ReadKey, (KvVersion, Option<Arc<KvSecret>>)>;
/// `(mount, path, pinned version)`; a leased (dynamic) read has the mount [`DYNAMIC`].
pub(crate) type ReadKey = (String, String, Option<u64>);

/// The mount of a [`ReadKey`] for credentials leased by a secrets engine
/// (`database/creds/app`): no KV mount is ever empty.
pub(crate) const DYNAMIC: &str = "";

fn mount_of<'a>(client: &'a VaultClient, m: &'a Mapping) -> &'a str {
    if m.is_dynamic() {
        return DYNAMIC;
    }
    m.mount_override().unwrap_or(client.kv_mount())
}

/// Reads one key's secret, past the cache: a new lease for a dynamic read.
pub(crate) async fn read_one(
    client: &VaultClient,
    key: &ReadKey,
) -> Result<(KvVersion, Option<Arc<KvSecret>>)> {
    let (mount, path, version) = key;
    if mount == DYNAMIC {
        return Ok((
            KvVersion::V1,
            Some(Arc::new(client.read_dynamic(path).await?)),
        ));
    }
    let kv = client.kv_version(mount).await?;
    let fresh = client.read_opt(mount, path, *version).await?.map(Arc::new);
    client.cache_put(mount, path, *version, fresh.clone());
    Ok((kv, fresh))
}

fn read_key(client: &VaultClient, m: &Mapping) -> ReadKey {
    (
        mount_of(client, m).to_owned(),
        m.path().to_owned(),
        m.pinned_version(),
    )
}

/// One read per distinct (mount, path, version), all at once.
pub(crate) async fn read_all(
    client: &VaultClient,
    mappings: &[Mapping],
    cached: bool,
) -> Result<Secrets> {
    let mut distinct: Vec<ReadKey> = mappings.iter().map(|m| read_key(client, m)).collect();
    let mut seen = HashSet::new();
    distinct.retain(|k| seen.insert(k.clone()));
    let reads = distinct.iter().map(|key| async move {
        let (mount, path, version) = key;
        if !cached || mount == DYNAMIC {
            return read_one(client, key).await;
        }
        let kv = client.kv_version(mount).await?;
        Ok::<_, Error>((kv, client.read_cached(mount, path, *version).await?))
    });
    let results = join_all(reads).await;
    let mut secrets = Secrets::new();
    let mut first_error = None;
    for (key, result) in distinct.into_iter().zip(results) {
        match result {
            Ok(found) => {
                secrets.insert(key, found);
            }
            // An outage outranks other errors: it decides fallback.
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(secrets),
    }
}

/// Two mappings may not fill the same key, nor one a key inside the other's.
pub(crate) fn check_keys(mappings: &[Mapping]) -> Result<()> {
    let mut keys: Vec<&str> = mappings.iter().map(Mapping::key).collect();
    keys.sort_unstable();
    for pair in keys.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a == b || b.strip_prefix(a).is_some_and(|rest| rest.starts_with('.')) {
            return Err(Error::Mapping {
                mapping: b.to_owned(),
                reason: format!(
                    "the configuration key `{a}` is mapped twice (or `{b}` lies inside it)"
                ),
            });
        }
    }
    Ok(())
}

/// A snapshot of configuration values read from Vault (and env fallbacks), ready
/// to merge into a [`Figment`] like any other provider.
///
/// Each value keeps its own provenance, so an extraction error names the
/// Vault path and key (`... for key "port" in vault secret/data/database#port`)
/// or the env var it came from. String values stay strings: extract with
/// [`Figment::extract_lossy`] so that `"5432"`, `"true"` or `"1.5"` fill a
/// `u16`, `bool` or `f64` field (Vault's CLI writes every value as a string).
///
/// `Debug` lists keys and origins, never values.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use figment::{Figment, providers::Serialized};
/// use vault_config::{VaultClient, VaultProvider};
///
/// #[derive(serde::Deserialize)]
/// struct Db { url: String, port: u16 }
///
/// let client = VaultClient::from_env()?;
/// let vault = VaultProvider::builder()
///     .map("url", "database#DATABASE_URL")
///     .map("port", "database#port")
///     .fetch(&client)
///     .await?;
/// let db: Db = Figment::new()
///     .merge(Serialized::default("port", 5432))
///     .merge(vault)
///     .extract_lossy()?;
/// # let _ = db; Ok(()) }
/// ```
#[derive(Clone)]
pub struct VaultProvider {
    figment: Figment,
    resolved: Vec<Resolved>,
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

    pub(crate) fn assemble(
        client: &VaultClient,
        mappings: &[Mapping],
        prefix: Option<&str>,
        secrets: Option<&Secrets>,
    ) -> Self {
        let mut figment = Figment::new();
        let mut resolved = Vec::with_capacity(mappings.len());
        for m in mappings {
            let env_var = m.env_var(prefix);
            let mut vault_tried = None;
            let mut value = None;
            if let Some(secrets) = secrets {
                let mount = mount_of(client, m);
                if let Some((kv, secret)) = secrets.get(&read_key(client, m)) {
                    let (api_path, tried) = if mount == DYNAMIC {
                        (
                            m.path().to_owned(),
                            format!("{}#{}", m.path(), m.secret_key()),
                        )
                    } else {
                        (
                            kv.data_path(mount, m.path()),
                            format!("{mount}/{}#{}", m.path(), m.secret_key()),
                        )
                    };
                    vault_tried = Some(tried);
                    let found = secret.as_ref().and_then(|s| {
                        let v = s.get(m.secret_key())?;
                        Some((v, s.version()))
                    });
                    if let Some((json, version)) = found {
                        value = Value::serialize(json).ok().map(|v| {
                            let origin = Origin::Vault {
                                namespace: client.namespace().map(str::to_owned),
                                api_path,
                                key: m.secret_key().to_owned(),
                                version,
                            };
                            (v, origin)
                        });
                    }
                }
            }
            if value.is_none() {
                if let Some(raw) = client.env().get(&env_var) {
                    value = Some((
                        Value::from(raw),
                        Origin::Env {
                            var: env_var.clone(),
                        },
                    ));
                }
            }
            let origin = match value {
                Some((v, origin)) => {
                    figment = figment.merge(Single {
                        metadata: Metadata::named(origin.to_string())
                            .interpolater(|_profile, keys| keys.join(".")),
                        dict: figment::util::nest(m.key(), v)
                            .into_dict()
                            .unwrap_or_default(),
                    });
                    origin
                }
                None => Origin::Missing {
                    vault: vault_tried,
                    env_var,
                },
            };
            resolved.push(Resolved {
                key: m.key().to_owned(),
                origin,
            });
        }
        VaultProvider { figment, resolved }
    }
}

impl Provider for VaultProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named("vault-config")
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        self.figment.data()
    }

    /// Hands figment the metadata of each value (a Vault `path#key` or an env
    /// var), as a [`Figment`] merged into another does, so errors name the source
    /// of the very value at fault.
    fn __metadata_map(&self) -> Option<Map<Tag, Metadata>> {
        self.figment.__metadata_map()
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

/// One value with its own metadata, merged into the snapshot's figment.
struct Single {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Single {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_nested_keys_are_rejected() {
        let m = |k: &str| Mapping::new(k, "p#k").unwrap();
        assert!(check_keys(&[m("a"), m("b"), m("x.b.c")]).is_ok());
        let e = check_keys(&[m("db"), m("db")]).unwrap_err();
        assert!(e.to_string().contains("`db` is mapped twice"), "{e}");
        assert!(check_keys(&[m("db.url"), m("db")]).is_err());
        assert!(check_keys(&[m("db"), m("dbx")]).is_ok());
    }
}
