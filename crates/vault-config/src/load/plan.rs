//! [`Plan`]: the distinct reads a set of mappings needs, decided before any request.
//!
//! The first stage of a load: mappings (from the derive's description or a
//! [`VaultProviderBuilder`](crate::VaultProviderBuilder)) become a list of
//! [`Read`]s, one per distinct secret, and each mapping points at the read that
//! fills it. A snapshot (the next stage) then holds what those
//! reads returned.

use std::collections::HashMap;
use std::fmt;

use crate::client::VaultClient;
use crate::describe::mapping::Mapping;
use crate::describe::reference::Reference;
use crate::describe::spec::Description;
use crate::engines::sys::mount_holding;
use crate::error::{Error, Result};
use crate::tls::CertificateRequest;

/// One request a load makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Read {
    /// A secret of a KV mount, at its current version or a pinned one.
    Kv {
        mount: String,
        path: String,
        version: Option<u64>,
    },
    /// Credentials leased by a secrets engine (`database/creds/app`): every
    /// read is a new lease, so the cache never serves one. `ttl`: the lease
    /// length asked for, if any.
    Leased {
        path: String,
        ttl: Option<std::time::Duration>,
    },
    /// A certificate a PKI role issues (`pki/issue/web`): every read is a
    /// new certificate and key, so the cache never serves one.
    Issued {
        path: String,
        request: CertificateRequest,
    },
}

impl Read {
    /// The secret's path (inside its mount, for a KV read).
    pub(crate) fn path(&self) -> &str {
        match self {
            Read::Kv { path, .. } | Read::Leased { path, .. } | Read::Issued { path, .. } => path,
        }
    }
}

/// `mount/path` (KV) or the engine path (leased), as health and logs show a read.
impl fmt::Display for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Read::Kv { mount, path, .. } => write!(f, "{mount}/{path}"),
            Read::Leased { path, .. } | Read::Issued { path, .. } => f.write_str(path),
        }
    }
}

/// A field only env fills (`#[vault(env = "PORT")]`): never read from
/// Vault, its variable read once, when the plan is made (a load, or a
/// watcher's start: a rotation never changes it).
#[derive(Clone)]
pub(crate) struct EnvOnly {
    pub(crate) key: String,
    pub(crate) var: String,
    pub(crate) json: bool,
    /// The variable's value when the plan was made (`None`: unset).
    pub(crate) value: Option<String>,
}

/// Names the variable, never its value.
impl fmt::Debug for EnvOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvOnly")
            .field("key", &self.key)
            .field("var", &self.var)
            .field("set", &self.value.is_some())
            .finish()
    }
}

/// The mappings of one load, with the distinct reads that fill them.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    mappings: Vec<Mapping>,
    /// The fields only env fills, read when the plan was made.
    env_only: Vec<EnvOnly>,
    env_prefix: Option<String>,
    reads: Vec<Read>,
    /// For each mapping, the index of its read in `reads`.
    slots: Vec<usize>,
    /// For each mapping, the env var that chose its path, when one did.
    moved: Vec<Option<String>>,
    /// For each mapping whose env fallback held a `vault://` reference when
    /// planned: the reference and the index of the read that resolves it.
    env_refs: Vec<Option<(Reference, usize)>>,
}

impl Plan {
    /// Plans `mappings`, reading KV paths without a mount of their own from
    /// `client`'s default mount. Fails on a configuration key mapped twice, and
    /// on a default env fallback name the service's environment already holds
    /// (`PORT`, `USER`: [`RESERVED_ENV_NAMES`](crate::client::env::RESERVED_ENV_NAMES)).
    pub(crate) fn new(
        client: &VaultClient,
        mappings: Vec<Mapping>,
        env_prefix: Option<String>,
    ) -> Result<Self> {
        check_keys(mappings.iter().map(Mapping::key))?;
        for m in &mappings {
            m.check_default_env(env_prefix.as_deref())?;
        }
        let mut reads = Vec::new();
        let mut index = HashMap::new();
        let mut slots = Vec::with_capacity(mappings.len());
        let mut moved = Vec::with_capacity(mappings.len());
        let mut env_refs = Vec::with_capacity(mappings.len());
        let mut add = |read: Read| {
            *index.entry(read.clone()).or_insert_with(|| {
                reads.push(read);
                reads.len() - 1
            })
        };
        for m in &mappings {
            // A path env var set at load time replaces the declared path.
            let (path, var) = match m.moved_by(client.env())? {
                Some((path, var)) => (path, Some(var)),
                None => (m.path().to_owned(), None),
            };
            let read = if let Some(request) = m.certificate_request() {
                Read::Issued {
                    path,
                    request: request.clone(),
                }
            } else if m.is_dynamic() {
                // One read per leased path, whatever TTLs the mappings ask for:
                // they must agree.
                let ttl = lease_ttl(&mappings, m, &path)?;
                Read::Leased { path, ttl }
            } else {
                Read::Kv {
                    mount: m.mount_override().unwrap_or(client.kv_mount()).to_owned(),
                    path,
                    version: m.pinned_version(),
                }
            };
            slots.push(add(read));
            moved.push(var);
            // An env fallback that holds a reference is read from Vault: one
            // more read, watched as the others are.
            env_refs.push(match env_reference(client, m, env_prefix.as_deref())? {
                Some(r) => {
                    let read = Read::Kv {
                        mount: client.kv_mount().to_owned(),
                        path: r.path().to_owned(),
                        version: None,
                    };
                    Some((r, add(read)))
                }
                None => None,
            });
        }
        Ok(Plan {
            mappings,
            env_only: Vec::new(),
            env_prefix,
            reads,
            slots,
            moved,
            env_refs,
        })
    }

    /// Plans what a `VaultConfig` type describes, with the references of
    /// its layer, if it has one.
    pub(crate) fn from_description(d: &Description, client: &VaultClient) -> Result<Self> {
        if let Some(e) = &d.error {
            return Err(e.clone());
        }
        let mut mappings = d
            .specs
            .iter()
            .filter(|s| !s.env_only)
            .map(|s| s.mapping())
            .collect::<Result<Vec<_>>>()?;
        // The references of a layer under Vault's (`load_with`).
        if let Some(layer) = &d.layer {
            mappings.extend(layer.references().cloned());
        }
        // An env-only field whose variable holds a `vault://` reference is
        // read from Vault (and watched), never taken literally.
        let mut env_only = Vec::new();
        for s in d.specs.iter().filter(|s| s.env_only) {
            let value = client.env().get(&s.env_var);
            match value.as_deref().and_then(Reference::parse) {
                Some(Ok(r)) => {
                    let m = Mapping::from_parts(&s.key, r.path(), r.key())?
                        .referenced_by(format!("env var {}", s.env_var));
                    mappings.push(if s.json { m.json() } else { m });
                }
                Some(Err(reason)) => {
                    return Err(malformed_env_reference(&s.key, &s.env_var, &reason))
                }
                None => env_only.push(EnvOnly {
                    key: s.key.clone(),
                    var: s.env_var.clone(),
                    json: s.json,
                    value,
                }),
            }
        }
        let mut plan = Self::new(client, mappings, None)?;
        plan.env_only = env_only;
        let keys = plan.mappings.iter().map(Mapping::key);
        check_keys(keys.chain(plan.env_only.iter().map(|e| e.key.as_str())))?;
        Ok(plan)
    }

    /// The fields only env fills, with the values read when the plan was made.
    pub(crate) fn env_only(&self) -> &[EnvOnly] {
        &self.env_only
    }

    /// The configuration keys whose string values are parsed as JSON.
    pub(crate) fn json_keys(&self) -> impl Iterator<Item = &str> {
        let mapped = self
            .mappings
            .iter()
            .filter(|m| m.is_json())
            .map(Mapping::key);
        let env = self
            .env_only
            .iter()
            .filter(|e| e.json)
            .map(|e| e.key.as_str());
        mapped.chain(env)
    }

    /// Reads for `vault://` references whose PATH lies on a mount of another
    /// secrets engine (`vault://database/creds/app#username`) become leased
    /// reads, one per path, as the command line reads them: one request for
    /// the mount table, made only when the plan has references and Vault is
    /// on. When the table cannot be read, references stay KV reads (Vault
    /// down: the snapshot's fallback mode decides).
    pub(crate) async fn settle_references(&mut self, client: &VaultClient) {
        let env_refs = self.env_refs.iter().flatten().map(|(_, slot)| *slot);
        let mapped = self
            .mappings
            .iter()
            .zip(&self.slots)
            .filter(|(m, _)| m.reference_site().is_some())
            .map(|(_, slot)| *slot);
        let referenced: Vec<usize> = env_refs.chain(mapped).collect();
        if referenced.is_empty() || !client.is_enabled() {
            return;
        }
        let mounts = match client.mounts().await {
            Ok(mounts) => mounts,
            Err(e) => {
                tracing::debug!(error = %e, "vault-config: the mount table could not be read; references are read as KV keys");
                return;
            }
        };
        let leased = |read: &Read| match read {
            Read::Kv { path, .. } => mount_holding(&mounts, path)
                .is_some_and(|m| !m.is_kv())
                .then(|| Read::Leased {
                    path: path.clone(),
                    ttl: None,
                }),
            Read::Leased { .. } | Read::Issued { .. } => None,
        };
        let mut reads = self.reads.clone();
        let mut repoint = |slot: &mut usize| {
            if let Some(read) = leased(&reads[*slot]) {
                // Joins the leased read of that path already planned (a
                // dynamic field's, whatever TTL it asks for): one lease per path.
                let same_path = |r: &Read| match r {
                    Read::Leased { path, .. } => path == read.path(),
                    Read::Kv { .. } | Read::Issued { .. } => false,
                };
                *slot = match reads.iter().position(same_path) {
                    Some(at) => at,
                    None => {
                        reads.push(read);
                        reads.len() - 1
                    }
                };
            }
        };
        let mut slots = self.slots.clone();
        for (m, slot) in self.mappings.iter().zip(slots.iter_mut()) {
            if m.reference_site().is_some() {
                repoint(slot);
            }
        }
        let mut env_refs = self.env_refs.clone();
        for (_, slot) in env_refs.iter_mut().flatten() {
            repoint(slot);
        }
        // Drop the KV reads no mapping uses any more.
        let used: std::collections::BTreeSet<usize> = slots
            .iter()
            .copied()
            .chain(env_refs.iter().flatten().map(|(_, s)| *s))
            .collect();
        let renumber: HashMap<usize, usize> = used
            .iter()
            .enumerate()
            .map(|(new, old)| (*old, new))
            .collect();
        self.reads = used.iter().map(|i| reads[*i].clone()).collect();
        self.slots = slots.iter().map(|s| renumber[s]).collect();
        for (_, slot) in env_refs.iter_mut().flatten() {
            *slot = renumber[slot];
        }
        self.env_refs = env_refs;
    }

    /// The distinct reads, each once.
    pub(crate) fn reads(&self) -> &[Read] {
        &self.reads
    }

    /// Each mapping with the index of the read that fills it, and the env
    /// var that chose that read's path, if one did.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&Mapping, usize, Option<&str>)> {
        self.mappings
            .iter()
            .zip(self.slots.iter().copied())
            .zip(self.moved.iter())
            .map(|((m, slot), var)| (m, slot, var.as_deref()))
    }

    /// The reference mapping number `i`'s env var held when planned, and the
    /// index of the read that resolves it.
    pub(crate) fn env_ref(&self, i: usize) -> Option<&(Reference, usize)> {
        self.env_refs.get(i)?.as_ref()
    }

    /// The env var mapping `m` falls back to.
    pub(crate) fn env_var(&self, m: &Mapping) -> String {
        m.env_var(self.env_prefix.as_deref())
    }

    /// Every env var the mappings fall back to, in mapping order.
    pub(crate) fn env_vars(&self) -> Vec<String> {
        self.mappings.iter().map(|m| self.env_var(m)).collect()
    }

    /// How many mappings the plan fills (env-only fields included).
    pub(crate) fn len(&self) -> usize {
        self.mappings.len() + self.env_only.len()
    }
}

/// The reference `m`'s env fallback holds, if it holds one; an error naming
/// the variable when it holds a malformed one. A mapping that stands for a
/// reference itself (`refs_from`) reads no env var.
fn env_reference(
    client: &VaultClient,
    m: &Mapping,
    prefix: Option<&str>,
) -> Result<Option<Reference>> {
    let var = m.env_var(prefix);
    if var.is_empty() || m.reference_site().is_some() {
        return Ok(None);
    }
    let Some(value) = client.env().get(&var) else {
        return Ok(None);
    };
    match Reference::parse(&value) {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(reason)) => Err(malformed_env_reference(m.key(), &var, &reason)),
    }
}

/// Env var `var`, read for configuration key `key`, holds a malformed
/// reference (`reason` never quotes it).
fn malformed_env_reference(key: &str, var: &str, reason: &str) -> Error {
    Error::Mapping {
        mapping: format!("{key} <- env {var}"),
        reason: format!("env var {var}: {reason}"),
    }
}

/// The one TTL the mappings of leased `path` ask for (`m` among them).
fn lease_ttl(mappings: &[Mapping], m: &Mapping, path: &str) -> Result<Option<std::time::Duration>> {
    let mut ttl = None;
    for other in mappings
        .iter()
        .filter(|o| o.is_dynamic() && o.path() == m.path())
    {
        match (ttl, other.lease_ttl()) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Mapping {
                    mapping: format!("{} <- {path}#{}", other.key(), other.secret_key()),
                    reason: format!(
                        "`{path}` is one lease for all its mappings, and they ask for different TTLs ({a:?} and {b:?})"
                    ),
                })
            }
            (None, Some(b)) => ttl = Some(b),
            _ => {}
        }
    }
    Ok(ttl)
}

/// Two mappings may not fill the same key, nor one a key inside the other's
/// (`db` and `db.url`, whatever other keys sort between them).
fn check_keys<'a>(all: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut keys = std::collections::BTreeSet::new();
    for key in all {
        if !keys.insert(key) {
            return Err(Error::Mapping {
                mapping: key.to_owned(),
                reason: format!("the configuration key `{key}` is mapped twice"),
            });
        }
    }
    for key in &keys {
        // Every dotted prefix of the key: `a.b.c` lies inside `a` and `a.b`.
        let inside = key
            .match_indices('.')
            .map(|(at, _)| &key[..at])
            .find(|outer| keys.contains(outer));
        if let Some(outer) = inside {
            return Err(Error::Mapping {
                mapping: (*key).to_owned(),
                reason: format!(
                    "`{key}` lies inside the configuration key `{outer}`, which is mapped too; one of them would be dropped"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> VaultClient {
        VaultClient::builder()
            .enabled(false)
            .kv_mount("kv")
            .build()
            .unwrap()
    }

    fn check(mappings: &[Mapping]) -> Result<()> {
        check_keys(mappings.iter().map(Mapping::key))
    }

    #[test]
    fn duplicate_and_nested_keys_are_rejected() {
        let m = |k: &str| Mapping::new(k, "p#k").unwrap();
        assert!(check(&[m("a"), m("b"), m("x.b.c")]).is_ok());
        let e = check(&[m("db"), m("db")]).unwrap_err();
        assert!(e.to_string().contains("`db` is mapped twice"), "{e}");
        assert!(check(&[m("db.url"), m("db")]).is_err());
        assert!(check(&[m("db"), m("dbx")]).is_ok());
        // `db-x` sorts between `db` and `db.url`: still caught.
        let e = check(&[m("db"), m("db-x"), m("db.url")]).unwrap_err();
        assert!(e.to_string().contains("`db.url` lies inside"), "{e}");
        assert!(check(&[m("a.b.c"), m("a-b"), m("a")]).is_err());
    }

    #[test]
    fn one_read_per_distinct_secret() {
        let mappings = vec![
            Mapping::new("url", "database#URL").unwrap(),
            Mapping::new("port", "database#DB_PORT").unwrap(),
            Mapping::new("old", "database#URL").unwrap().version(3),
            Mapping::new("other", "database#URL")
                .unwrap()
                .mount("legacy"),
            Mapping::dynamic("user", "database/creds/app", "username").unwrap(),
            Mapping::dynamic("pass", "database/creds/app", "password").unwrap(),
        ];
        let plan = Plan::new(&client(), mappings, None).unwrap();
        assert_eq!(plan.reads().len(), 4, "{:?}", plan.reads());
        let slots: Vec<usize> = plan.bindings().map(|(_, i, _)| i).collect();
        assert_eq!(slots, [0, 0, 1, 2, 3, 3]);
        assert_eq!(
            plan.reads()[0],
            Read::Kv {
                mount: "kv".into(),
                path: "database".into(),
                version: None
            }
        );
        assert_eq!(plan.reads()[3].to_string(), "database/creds/app");
    }

    #[test]
    fn a_path_env_var_moves_the_read() {
        let env = crate::base::EnvSource::from_fn(|n| match n {
            "AION_DB_SECRET_PATH" => Some("/aionos/db-replica/".into()),
            "BAD_PATH" => Some("team/../admin".into()),
            _ => None,
        });
        let client = VaultClient::builder()
            .enabled(false)
            .env_source(env)
            .build()
            .unwrap();
        let moved = Mapping::new("db.password", "aionos/db-main#password")
            .unwrap()
            .path_env("AION_DB_SECRET_PATH");
        let unset = Mapping::new("minio", "aionos/minio#endpoint")
            .unwrap()
            .path_env("AION_MINIO_SECRET_PATH");
        let plan = Plan::new(&client, vec![moved, unset], None).unwrap();
        assert_eq!(plan.reads()[0].path(), "aionos/db-replica");
        assert_eq!(plan.reads()[1].path(), "aionos/minio");
        let vars: Vec<Option<&str>> = plan.bindings().map(|(_, _, v)| v).collect();
        assert_eq!(vars, [Some("AION_DB_SECRET_PATH"), None]);
        let bad = Mapping::new("x", "a#b").unwrap().path_env("BAD_PATH");
        let e = Plan::new(&client, vec![bad], None).unwrap_err().to_string();
        assert!(e.contains("BAD_PATH") && e.contains(".."), "{e}");
    }

    #[test]
    fn a_default_env_name_the_environment_holds_is_refused() {
        let port = || Mapping::new("port", "database#port").unwrap();
        let e = Plan::new(&client(), vec![port()], None).unwrap_err();
        assert!(
            matches!(&e, Error::Mapping { mapping, .. } if mapping == "port <- database#port"),
            "{e:?}"
        );
        assert!(e.to_string().contains("env `PORT`"), "{e}");
        assert!(Plan::new(&client(), vec![port()], Some("APP_".into())).is_ok());
        assert!(Plan::new(&client(), vec![port().env("PORT")], None).is_ok());
    }

    #[test]
    fn an_env_fallback_holding_a_reference_is_read_from_vault() {
        let env = crate::base::EnvSource::from_fn(|n| match n {
            "DATABASE_URL" => Some("vault://app-prod#DB_URL".into()),
            "BAD" => Some("vault://app-prod".into()),
            _ => None,
        });
        let client = VaultClient::builder()
            .enabled(false)
            .kv_mount("kv")
            .env_source(env)
            .build()
            .unwrap();
        let url = Mapping::new("url", "database#DATABASE_URL").unwrap();
        let plan = Plan::new(&client, vec![url], None).unwrap();
        assert_eq!(plan.reads().len(), 2, "{:?}", plan.reads());
        let (r, slot) = plan.env_ref(0).unwrap();
        assert_eq!(r.to_string(), "vault://app-prod#DB_URL");
        assert_eq!(plan.reads()[*slot].to_string(), "kv/app-prod");
        let bad = Mapping::new("x", "a#k").unwrap().env("BAD");
        let e = Plan::new(&client, vec![bad], None).unwrap_err().to_string();
        assert!(e.contains("BAD") && e.contains("not a reference"), "{e}");
    }
}
