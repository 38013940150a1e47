//! Reading what the command line names, and the client that reads it.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use vault_config::kv::KvSecret;
use vault_config::sys::mount_holding;
use vault_config::{EnvSource, Error, ExposeSecret, FallbackMode, VaultClient, VaultClientBuilder};

use crate::exit::{Failure, Kind, Result, LOG};
use crate::target::Target;

/// Every client this run made: [`logout_all`] revokes the tokens they
/// logged in for when the command ends.
static CLIENTS: Mutex<Vec<VaultClient>> = Mutex::new(Vec::new());

/// Leased credentials this run handed out to outlive it (`env
/// database/creds/app`): their leases end with the token that read them, so
/// that token is kept.
static HANDED_OUT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A client on the library's env contract, for a command line: no read
/// cache (a rotation must read what is there now), no env fallback for
/// values (a key Vault lacks is an error, not whatever the shell holds).
/// Its token, when it logs in for one, is revoked at exit ([`logout_all`]).
pub fn client(mount: Option<&str>) -> Result<VaultClient> {
    let mut builder = VaultClientBuilder::from_env()?
        .cache_ttl(Duration::ZERO)
        .fallback_mode(FallbackMode::Required)
        .env_source(EnvSource::from_fn(|_| None));
    if let Some(mount) = mount {
        builder = builder.kv_mount(mount);
    }
    let client = builder.build()?;
    CLIENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(client.clone());
    Ok(client)
}

/// Revokes every token the clients of this run logged in for (AppRole, JWT,
/// Kubernetes), never a token the user gave (`VAULT_TOKEN`,
/// `~/.vault-token`): a command line leaves no live token behind. Each
/// logout is bounded by the client's request timeout; a failure is a
/// warning (the token then expires on its own), never the exit code.
///
/// Except when the run printed leased credentials (`env
/// database/creds/app`): Vault would revoke their lease with the token, and
/// the credentials would stop working as they are handed over. That token is
/// kept, and a warning says so.
pub async fn logout_all() {
    let clients = std::mem::take(&mut *CLIENTS.lock().unwrap_or_else(PoisonError::into_inner));
    let handed_out =
        std::mem::take(&mut *HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner));
    let logged_in = |c: &VaultClient| c.auth_status().is_some_and(|s| s.method != "token");
    if !handed_out.is_empty() && clients.iter().any(logged_in) {
        tracing::warn!(
            target: LOG,
            "vault-config: the token this run logged in for is kept, not revoked: the leased credentials printed ({}) end with it; it expires with its TTL (`exec` revokes both when its command ends)",
            handed_out.join(", ")
        );
        return;
    }
    for outcome in join_all(clients.iter().map(VaultClient::logout)).await {
        if let Err(e) = outcome {
            tracing::warn!(target: LOG, error = %e, "vault-config: the token this run logged in for could not be revoked; it stays valid until it expires");
        }
    }
}

/// `targets`, each marked leased when its path is on a secrets engine other
/// than KV (`database/creds/app` on a `database` mount): decided by the
/// mount's type, from one listing of the mounts the token may use, never by
/// the path's spelling (`team/creds` on the KV mount is a KV secret). A path
/// on no mount the token may use is a KV path of the client's KV mount.
pub async fn resolve(client: &VaultClient, targets: &[Target]) -> Result<Vec<Target>> {
    let mounts = match client.mounts().await {
        Ok(mounts) => mounts,
        Err(e) => return Err(explain(client, e).await),
    };
    Ok(targets
        .iter()
        .map(|t| Target {
            leased: mount_holding(&mounts, &t.path).is_some_and(|m| !m.is_kv()),
            ..t.clone()
        })
        .collect())
}

/// A failure from `e`; a denial is told apart from a token Vault does not
/// accept (which every path denies) by the token's own lookup.
pub async fn explain(client: &VaultClient, e: Error) -> Failure {
    let failure = Failure::from(e);
    if failure.kind != Kind::Denied {
        return failure;
    }
    match client.token_info().await {
        Err(e @ (Error::PermissionDenied { .. } | Error::Auth { .. })) => Failure::new(
            Kind::Authentication,
            format!(
                "Vault does not accept the token ({e}); check VAULT_TOKEN or the login settings"
            ),
        ),
        _ => failure,
    }
}

/// The secret at `target`, as Vault returned it.
pub async fn read_secret(client: &VaultClient, target: &Target) -> Result<KvSecret, Error> {
    if target.leased {
        client.read_dynamic(&target.path).await
    } else {
        client.read(client.kv_mount(), &target.path).await
    }
}

/// What `target` names in `secret`: the map of every key, or one key's value.
pub fn pick(client: &VaultClient, target: &Target, secret: &KvSecret) -> Result<Value> {
    let data = secret.data().expose_secret();
    match &target.key {
        None => serde_json::to_value(data)
            .map_err(|e| Failure::new(Kind::Other, format!("{target}: {e}"))),
        Some(key) => secret.get(key).cloned().ok_or_else(|| {
            let keys: Vec<&str> = data.keys().collect();
            let place = if target.leased {
                target.path.clone()
            } else {
                format!("{}/{}", client.kv_mount(), target.path)
            };
            Failure::new(
                Kind::NotFound,
                format!(
                    "no key `{key}` in {place} (its keys: {})",
                    if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    }
                ),
            )
        }),
    }
}

/// What [`read_each`] read.
#[derive(Debug)]
pub struct Reads {
    /// Each target's own outcome, in order: its value, or why its path
    /// could not be read or lacks its key.
    pub values: Vec<Result<Value>>,
    /// The first path that could not be read (in order), if one could not.
    pub first_failure: Option<Failure>,
    /// The leased paths read (whose leases end with this run's token).
    pub leased: Vec<String>,
}

/// Leased credentials printed for someone else to use: their leases end
/// with this run's token, which [`logout_all`] then keeps.
pub fn hand_out(leased: Vec<String>) {
    HANDED_OUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(leased);
}

/// Every target ([`resolve`]d), read at once, each distinct path once (the
/// username and password of `database/creds/app` come from one lease), with
/// each target's own outcome, so that a caller can say where a target that
/// failed was written. Fails as a whole only when the mounts cannot be
/// listed.
pub async fn read_each(client: &VaultClient, targets: &[Target]) -> Result<Reads> {
    let targets = &resolve(client, targets).await?;
    let mut distinct: Vec<&Target> = Vec::new();
    for t in targets {
        if !distinct
            .iter()
            .any(|d| d.path == t.path && d.leased == t.leased)
        {
            distinct.push(t);
        }
    }
    let answers = join_all(distinct.iter().map(|t| read_secret(client, t))).await;
    let mut secrets: Vec<Result<KvSecret>> = Vec::with_capacity(distinct.len());
    for answer in answers {
        secrets.push(match answer {
            Ok(secret) => Ok(secret),
            Err(e) => Err(explain(client, e).await),
        });
    }
    let first_failure = secrets.iter().find_map(|s| s.as_ref().err().cloned());
    let values = targets
        .iter()
        .map(|t| {
            let at = distinct
                .iter()
                .position(|d| d.path == t.path && d.leased == t.leased)
                .unwrap_or(0);
            match secrets.get(at) {
                Some(Ok(secret)) => pick(client, t, secret),
                Some(Err(failure)) => Err(failure.clone()),
                None => Err(Failure::new(Kind::Other, format!("{t} was not read"))),
            }
        })
        .collect();
    // A static role's credentials come with no lease.
    let leased = distinct
        .iter()
        .zip(&secrets)
        .filter(|(_, secret)| secret.as_ref().is_ok_and(|s| s.lease().is_some()))
        .map(|(t, _)| t.path.clone())
        .collect();
    Ok(Reads {
        values,
        first_failure,
        leased,
    })
}
