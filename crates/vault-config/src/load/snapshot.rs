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
    /// from its env var read through `env`, with where it came from.
    pub(crate) fn resolve_values(
        &self,
        plan: &Plan,
        client: &VaultClient,
    ) -> Vec<(Resolved, Option<Value>)> {
        let env = client.env();
        let mut values = Vec::with_capacity(plan.len());
        for (m, index, moved_by) in plan.bindings() {
            let moved = moved_by
                .map(|v| format!(" (path from {v})"))
                .unwrap_or_default();
            let env_var = plan.env_var(m);
            let read = &plan.reads()[index];
            let mut vault_tried = None;
            let mut value = None;
            if let Some(found) = self.found(index) {
                let (api_path, tried) = match (read, found.kv) {
                    (Read::Kv { mount, path, .. }, Some(kv)) => (
                        kv.data_path(mount, path),
                        format!("{mount}/{path}#{}{moved}", m.secret_key()),
                    ),
                    _ => (
                        read.path().to_owned(),
                        format!("{}#{}{moved}", read.path(), m.secret_key()),
                    ),
                };
                vault_tried = Some(tried);
                let hit = found.secret.as_ref().and_then(|s| {
                    let value = if m.is_whole_secret() {
                        serde_json::to_value(s.data().expose_secret()).ok()?
                    } else {
                        s.get(m.secret_key())?.clone()
                    };
                    Some((value, s.version()))
                });
                if let Some((json, version)) = hit {
                    value = Some(json).map(|v| {
                        let origin = Origin::Vault {
                            namespace: self.namespace.clone(),
                            api_path,
                            key: m.secret_key().to_owned(),
                            version,
                            path_env: moved_by.map(str::to_owned),
                        };
                        (v, origin)
                    });
                }
            }
            // Vault answered and lacks the key: env only where allowed.
            let may_read_env = vault_tried.is_none() || client.env_fallback();
            if value.is_none() && may_read_env {
                if let Some(raw) = Some(&env_var)
                    .filter(|v| !v.is_empty())
                    .and_then(|v| env.get(v))
                {
                    value = Some((
                        Value::String(raw),
                        Origin::Env {
                            var: env_var.clone(),
                        },
                    ));
                }
            }
            let resolved = |origin| Resolved {
                key: m.key().to_owned(),
                origin,
            };
            values.push(match value {
                Some((v, origin)) => (resolved(origin), Some(v)),
                None => (
                    resolved(Origin::Missing {
                        vault: vault_tried,
                        env_var,
                    }),
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
}

fn leases_of(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter_map(|f| Some(f.secret.as_deref()?.lease()?.id.clone()))
        .collect()
}

/// Reads one secret past the cache (refreshing it): a new lease for leased credentials.
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
