//! [`Snapshot`]: what one [`Plan`]'s reads returned, and each mapping's value
//! with its provenance once env fallbacks are applied.
//!
//! The second stage of a load. Taking a snapshot is where the client's
//! [`FallbackMode`] decides between Vault and env; resolving it reads the
//! fallbacks from an [`EnvSource`](crate::EnvSource) and yields each value with its
//! [`Origin`]; the provider wraps them for extraction (or a framework adapter).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::client::fallback::FallbackMode;
use crate::client::VaultClient;
use crate::describe::reference::Reference;
use crate::engines::kv::{KvSecret, KvVersion};
use crate::error::{Error, Result};
use crate::load::origin::{Origin, Resolved};
use crate::load::plan::{Plan, Read};

/// What one read returned.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The KV version of the mount read (`None` for leased credentials).
    pub(crate) kv: Option<KvVersion>,
    /// The secret, or `None` when nothing is at the path.
    pub(crate) secret: Option<Arc<KvSecret>>,
}

/// Whether a snapshot may be served from the client's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Through the cache (a load).
    Cached,
    /// Past the cache, refreshing it (a watcher, `fetch_fresh`).
    Fresh,
}

/// The results of a plan's reads, in the plan's order; `None` when Vault was
/// not read (turned off, or unavailable in fallback mode) and every mapping
/// reads env.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    namespace: Option<String>,
    found: Option<Vec<Found>>,
}

impl Snapshot {
    /// Reads what `plan` needs, or decides on env: Vault disabled, or
    /// unavailable while the client is in [`FallbackMode::Fallback`] (each
    /// said once in the log).
    pub(crate) async fn take(
        client: &VaultClient,
        plan: &Plan,
        freshness: Freshness,
    ) -> Result<Self> {
        let namespace = client.namespace().map(str::to_owned);
        if !client.is_enabled() {
            tracing::info!(
                mappings = plan.len(),
                "Vault is disabled ({}=false); reading every mapping from env",
                client.contract_var("ENABLED")
            );
            return Ok(Snapshot {
                namespace,
                found: None,
            });
        }
        match Self::read(client, plan, freshness).await {
            Ok(found) => Ok(Snapshot {
                namespace,
                found: Some(found),
            }),
            Err(e) if e.is_unavailable() && client.fallback_mode() == FallbackMode::Fallback => {
                tracing::warn!(
                    error = %e,
                    vars = %plan.env_vars().join(", "),
                    "Vault is unavailable; reading every mapping from env (fallback mode)"
                );
                Ok(Snapshot {
                    namespace,
                    found: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Reads every read of `plan` from Vault, whatever the fallback mode.
    pub(crate) async fn read_vault(
        client: &VaultClient,
        plan: &Plan,
        freshness: Freshness,
    ) -> Result<Self> {
        Ok(Snapshot {
            namespace: client.namespace().map(str::to_owned),
            found: Some(Self::read(client, plan, freshness).await?),
        })
    }

    /// One request per read, all at once.
    async fn read(client: &VaultClient, plan: &Plan, freshness: Freshness) -> Result<Vec<Found>> {
        let reads = plan.reads().iter().map(|read| async move {
            match (read, freshness) {
                (
                    Read::Kv {
                        mount,
                        path,
                        version,
                    },
                    Freshness::Cached,
                ) => {
                    // The read first: it does not wait for the mount's version.
                    let secret = client.read_cached(mount, path, *version).await?;
                    Ok(Found {
                        kv: Some(client.kv_version(mount).await?),
                        secret,
                    })
                }
                _ => read_one(client, read).await,
            }
        });
        let mut found = Vec::with_capacity(plan.reads().len());
        let mut first_error: Option<Error> = None;
        for result in join_all(reads).await {
            match result {
                Ok(f) => found.push(f),
                Err(e) => Error::keep_first(&mut first_error, e),
            }
        }
        match first_error {
            Some(e) => {
                // Credentials leased for a load that fails are never used.
                client.revoke_unused(leases_of(&found)).await;
                Err(e)
            }
            None => Ok(found),
        }
    }

    /// The lease IDs it holds.
    pub(crate) fn leases(&self) -> Vec<String> {
        self.found.as_deref().map(leases_of).unwrap_or_default()
    }

    /// False when the values come from env only.
    pub(crate) fn is_from_vault(&self) -> bool {
        self.found.is_some()
    }

    /// What read number `index` of the plan returned.
    pub(crate) fn found(&self, index: usize) -> Option<&Found> {
        self.found.as_ref()?.get(index)
    }

    /// Replaces what read number `index` returned; gives back what it held.
    pub(crate) fn replace(&mut self, index: usize, fresh: Found) -> Option<Found> {
        let slot = self.found.as_mut()?.get_mut(index)?;
        Some(std::mem::replace(slot, fresh))
    }

    /// The KV v2 version in use per `mount/path` (KV v1 and leased reads have none).
    pub(crate) fn versions(&self, plan: &Plan) -> BTreeMap<String, u64> {
        plan.reads()
            .iter()
            .enumerate()
            .filter_map(|(i, read)| {
                let version = self.found(i)?.secret.as_ref()?.version()?;
                Some((read.to_string(), version))
            })
            .collect()
    }

    /// Each mapping's value: from Vault where the secret has the key, else
    /// from its env var read through `env`, with where it came from. An env
    /// var holding a `vault://` reference gives the referenced key's value
    /// (read by the plan); a reference that does not resolve gives
    /// [`Origin::Unresolved`], never the reference as a value.
    pub(crate) fn resolve_values(
        &self,
        plan: &Plan,
        client: &VaultClient,
    ) -> Vec<(Resolved, Option<Value>)> {
        let env = client.env();
        let mut values = Vec::with_capacity(plan.len());
        for (i, (m, index, moved_by)) in plan.bindings().enumerate() {
            let env_var = plan.env_var(m);
            let read = &plan.reads()[index];
            let mut vault_tried = None;
            let mut value = None;
            if let Some(found) = self.found(index) {
                let (tried, hit) = self.lookup(read, found, m.secret_key(), moved_by, |s| {
                    if m.is_whole_secret() {
                        serde_json::to_value(s.data().expose_secret()).ok()
                    } else {
                        s.get(m.secret_key()).cloned()
                    }
                });
                vault_tried = Some(tried);
                value = hit;
            }
            if let Some(by) = m.reference_site() {
                // A mapping that stands for a reference: Vault's value or an error.
                let reference = format!("{}{}#{}", Reference::SCHEME, read.path(), m.secret_key());
                let resolved = Resolved {
                    key: m.key().to_owned(),
                    origin: Origin::Missing {
                        vault: None,
                        env_var: String::new(),
                    },
                };
                values.push(match value {
                    Some((v, origin)) => (
                        Resolved {
                            origin: Origin::Referenced {
                                by: by.to_owned(),
                                vault: Box::new(origin),
                            },
                            ..resolved
                        },
                        Some(v),
                    ),
                    None => (
                        Resolved {
                            origin: Origin::Unresolved {
                                by: by.to_owned(),
                                reference,
                                reason: unresolved_reason(vault_tried),
                            },
                            ..resolved
                        },
                        None,
                    ),
                });
                continue;
            }
            // Vault answered and lacks the key: env only where allowed.
            let may_read_env = vault_tried.is_none() || client.env_fallback();
            let mut origin_if_none = None;
            if value.is_none() && may_read_env {
                if let Some(raw) = Some(&env_var)
                    .filter(|v| !v.is_empty())
                    .and_then(|v| env.get(v))
                {
                    match Reference::parse(&raw) {
                        None => {
                            value = Some((
                                Value::String(raw),
                                Origin::Env {
                                    var: env_var.clone(),
                                },
                            ))
                        }
                        Some(parsed) => match self.env_reference(plan, i, parsed, &env_var) {
                            Ok(hit) => value = Some(hit),
                            Err(unresolved) => origin_if_none = Some(unresolved),
                        },
                    }
                }
            }
            let resolved = |origin| Resolved {
                key: m.key().to_owned(),
                origin,
            };
            values.push(match value {
                Some((v, origin)) => (resolved(origin), Some(v)),
                None => (
                    resolved(origin_if_none.unwrap_or(Origin::Missing {
                        vault: vault_tried,
                        env_var,
                    })),
                    None,
                ),
            });
        }
        // Env-only fields: what their variables held when the plan was made,
        // whatever Vault holds (it is not asked) and whatever the fallback
        // settings (they are not fallbacks).
        for e in plan.env_only() {
            let (origin, value) = match &e.value {
                Some(raw) => (
                    Origin::Env { var: e.var.clone() },
                    Some(Value::String(raw.clone())),
                ),
                None => (
                    Origin::Missing {
                        vault: None,
                        env_var: e.var.clone(),
                    },
                    None,
                ),
            };
            let resolved = Resolved {
                key: e.key.clone(),
                origin,
            };
            values.push((resolved, value));
        }
        values
    }

    /// The `mount/path#key` tried at `read`, and what `pick` finds in its
    /// secret with its [`Origin::Vault`].
    fn lookup(
        &self,
        read: &Read,
        found: &Found,
        key: &str,
        moved_by: Option<&str>,
        pick: impl FnOnce(&KvSecret) -> Option<Value>,
    ) -> (String, Option<(Value, Origin)>) {
        let moved = moved_by
            .map(|v| format!(" (path from {v})"))
            .unwrap_or_default();
        let (api_path, tried) = match (read, found.kv) {
            (Read::Kv { mount, path, .. }, Some(kv)) => (
                kv.data_path(mount, path),
                format!("{mount}/{path}#{key}{moved}"),
            ),
            _ => (
                read.path().to_owned(),
                format!("{}#{key}{moved}", read.path()),
            ),
        };
        let hit = found.secret.as_ref().and_then(|s| {
            let value = pick(s)?;
            let origin = Origin::Vault {
                namespace: self.namespace.clone(),
                api_path,
                key: key.to_owned(),
                version: s.version(),
                path_env: moved_by.map(str::to_owned),
            };
            Some((value, origin))
        });
        (tried, hit)
    }

    /// The value of the reference env var `var` (mapping number `i`) holds,
    /// read by the plan; else the [`Origin::Unresolved`] saying why not.
    fn env_reference(
        &self,
        plan: &Plan,
        i: usize,
        parsed: std::result::Result<Reference, String>,
        var: &str,
    ) -> std::result::Result<(Value, Origin), Origin> {
        let by = format!("env var {var}");
        let unresolved = |reference: String, reason: String| Origin::Unresolved {
            by: by.clone(),
            reference,
            reason,
        };
        let r =
            parsed.map_err(|reason| unresolved(Reference::SCHEME.to_owned() + "...", reason))?;
        let Some((planned, index)) = plan.env_ref(i).filter(|(p, _)| *p == r) else {
            // The variable changed since the plan was made (a watcher's later poll).
            return Err(unresolved(
                r.to_string(),
                "the variable changed after the load started; restart to read it".to_owned(),
            ));
        };
        let read = &plan.reads()[*index];
        let found = self.found(*index);
        let (tried, hit) = match found {
            Some(found) => {
                let (tried, hit) = self.lookup(read, found, planned.key(), None, |s| {
                    s.get(planned.key()).cloned()
                });
                (Some(tried), hit)
            }
            None => (None, None),
        };
        match hit {
            Some((value, vault)) => Ok((
                value,
                Origin::Referenced {
                    by,
                    vault: Box::new(vault),
                },
            )),
            None => Err(unresolved(r.to_string(), unresolved_reason(tried))),
        }
    }
}

/// Why a reference did not resolve: the Vault location lacking it, or Vault
/// not read at all.
fn unresolved_reason(tried: Option<String>) -> String {
    match tried {
        Some(at) => format!("not at vault {at}"),
        None => "Vault was not read (disabled, or unavailable in fallback mode)".to_owned(),
    }
}

fn leases_of(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter_map(|f| Some(f.secret.as_deref()?.lease()?.id.clone()))
        .collect()
}

/// Reads one secret past the cache (refreshing it): a new lease for leased
/// credentials, a new certificate for a PKI role.
pub(crate) async fn read_one(client: &VaultClient, read: &Read) -> Result<Found> {
    match read {
        Read::Leased { path, ttl } => {
            let mut secret = client.read_dynamic(path).await?;
            if let (Some(ttl), Some(lease)) = (ttl, secret.lease().cloned()) {
                // The length asked for: a renewal by it right away (the role's
                // max TTL bounds it). Failing that, the lease stays as granted.
                match client.renew_lease(&lease.id, *ttl).await {
                    Ok(renewed) => secret.set_lease(renewed),
                    Err(e) => {
                        tracing::warn!(path, error = %e, "vault-config: the lease could not be set to the TTL asked for; it keeps the role's")
                    }
                }
            }
            Ok(Found {
                kv: None,
                secret: Some(Arc::new(secret)),
            })
        }
        Read::Issued { path, request } => Ok(Found {
            kv: None,
            secret: Some(Arc::new(client.issue_certificate(path, request).await?)),
        }),
        Read::Kv {
            mount,
            path,
            version,
        } => {
            let secret = client.read_opt(mount, path, *version).await?.map(Arc::new);
            let kv = client.kv_version(mount).await?;
            client.cache_put(mount, path, *version, secret.clone());
            Ok(Found {
                kv: Some(kv),
                secret,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::mapping::Mapping;

    #[test]
    fn a_reference_in_env_never_resolves_to_itself() {
        let env = crate::base::EnvSource::from_fn(|n| {
            (n == "DATABASE_URL").then(|| "vault://app-prod#DB_URL".to_owned())
        });
        let client = VaultClient::builder()
            .enabled(false)
            .env_source(env)
            .build()
            .unwrap();
        let url = Mapping::new("url", "database#DATABASE_URL").unwrap();
        let plan = Plan::new(&client, vec![url], None).unwrap();
        // Vault off: nothing resolves the reference.
        let snapshot = Snapshot {
            namespace: None,
            found: None,
        };
        let values = snapshot.resolve_values(&plan, &client);
        assert!(values[0].1.is_none());
        let shown = values[0].0.origin.to_string();
        assert!(
            shown.contains("env var DATABASE_URL") && shown.contains("vault://app-prod#DB_URL"),
            "{shown}"
        );
        let e = snapshot
            .resolve(&plan, &client)
            .check_references()
            .unwrap_err();
        assert!(e.to_string().contains("unresolved reference"), "{e}");
    }
}
