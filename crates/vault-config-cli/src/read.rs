//! Reading what the command line names, and the client that reads it.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use vault_config::kv::KvSecret;
use vault_config::{EnvSource, Error, ExposeSecret, FallbackMode, VaultClient, VaultClientBuilder};

use crate::exit::{Failure, Kind, Result};
use crate::target::Target;

/// A client on the library's env contract, for a command line: no read
/// cache (a rotation must read what is there now), no env fallback for
/// values (a key Vault lacks is an error, not whatever the shell holds).
pub fn client(mount: Option<&str>) -> Result<VaultClient> {
    let mut builder = VaultClientBuilder::from_env()?
        .cache_ttl(Duration::ZERO)
        .fallback_mode(FallbackMode::Required)
        .env_source(EnvSource::from_fn(|_| None));
    if let Some(mount) = mount {
        builder = builder.kv_mount(mount);
    }
    Ok(builder.build()?)
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

/// Every target, read at once, each distinct path once (the username and
/// password of `database/creds/app` come from one lease); the first failure
/// (in command-line order) if any read failed.
pub async fn read_all(client: &VaultClient, targets: &[Target]) -> Result<Vec<Value>> {
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
    let mut secrets = Vec::with_capacity(distinct.len());
    for answer in answers {
        match answer {
            Ok(secret) => secrets.push(secret),
            Err(e) => return Err(explain(client, e).await),
        }
    }
    targets
        .iter()
        .map(|t| {
            let at = distinct
                .iter()
                .position(|d| d.path == t.path && d.leased == t.leased)
                .unwrap_or(0);
            match secrets.get(at) {
                Some(secret) => pick(client, t, secret),
                None => Err(Failure::new(Kind::Other, format!("{t} was not read"))),
            }
        })
        .collect()
}
