//! The last stage of a load: a [`Snapshot`]'s values (and the fields'
//! defaults) through figment into the typed struct, with figment's errors
//! rewritten to name the field and its sources, never the value.
//!
//! [`VaultConfig::load`](crate::VaultConfig::load) and the
//! [`Watcher`](crate::Watcher) both run plan → snapshot → [`extract`].

pub(crate) mod plan;
pub mod provider;
pub(crate) mod snapshot;

use figment::error::{Actual, Kind};
use figment::{Figment, Profile};
use serde::de::DeserializeOwned;

use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::error::{Error, Result};
use crate::load::plan::Plan;
use crate::load::provider::{Origin, VaultProvider};
use crate::load::snapshot::{Freshness, Snapshot};
use crate::telemetry::outcome_of;
use std::time::Instant;
use tracing::Instrument;

/// A typed config, with the plan and snapshot it was made from.
pub(crate) struct Loaded<T> {
    pub(crate) config: T,
    pub(crate) plan: Plan,
    pub(crate) snapshot: Snapshot,
    pub(crate) provider: VaultProvider,
}

/// Plans what `d` describes, takes the snapshot and extracts a `T` from it.
/// When that fails after credentials were leased, they are revoked.
pub(crate) async fn load<T: DeserializeOwned>(
    d: &Description,
    client: &VaultClient,
    freshness: Freshness,
) -> Result<Loaded<T>> {
    let plan = Plan::from_description(d, client)?;
    load_plan(plan, Some(d), client, freshness).await
}

/// [`load`] for a plan made another way (a provider's mappings); `d`, when
/// given, adds the fields' defaults and names.
pub(crate) async fn load_plan<T: DeserializeOwned>(
    plan: Plan,
    d: Option<&Description>,
    client: &VaultClient,
    freshness: Freshness,
) -> Result<Loaded<T>> {
    let span = tracing::info_span!(
        "vault_config.load",
        paths = plan.reads().len(),
        requests = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let sent = client.requests_sent();
    let result = load_inner(plan, d, client, freshness)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        // Vault off, or down with fallback on: the values are env's.
        Ok(loaded) if !loaded.snapshot.is_from_vault() => "env",
        Ok(_) => "ok",
        Err(e) => outcome_of(e),
    };
    let took = started.elapsed();
    span.record("requests", client.requests_sent().saturating_sub(sent));
    span.record("outcome", outcome);
    span.record("duration_ms", took.as_secs_f64() * 1000.0);
    client.telemetry().load(outcome, took);
    result
}

async fn load_inner<T: DeserializeOwned>(
    plan: Plan,
    d: Option<&Description>,
    client: &VaultClient,
    freshness: Freshness,
) -> Result<Loaded<T>> {
    let snapshot = Snapshot::take(client, &plan, freshness).await?;
    let provider = snapshot.resolve(&plan, client);
    let error = match extract(d, client, &provider) {
        Ok(config) => {
            return Ok(Loaded {
                config,
                plan,
                snapshot,
                provider,
            })
        }
        Err(e) => e,
    };
    // Nothing will use the credentials this load leased.
    client.revoke_unused(snapshot.leases()).await;
    Err(error)
}

/// Defaults, then the provider; extraction errors rewritten without values.
pub(crate) fn extract<T: DeserializeOwned>(
    d: Option<&Description>,
    client: &VaultClient,
    provider: &VaultProvider,
) -> Result<T> {
    let defaults = d.map(Description::defaults_dict).unwrap_or_default();
    let figment = Figment::new()
        .merge(figment::providers::Serialized::from(
            defaults,
            Profile::Default,
        ))
        .merge(provider.figment());
    figment
        .extract_lossy()
        .map_err(|e| explain(e, d.map(|d| (d, client)), provider))
}

/// Turns a figment error into one that names the field (with a derive's
/// description, else the configuration key) and its sources, and never
/// carries the offending value (figment's own text quotes it).
pub(crate) fn explain(
    err: figment::Error,
    described: Option<(&Description, &VaultClient)>,
    provider: &VaultProvider,
) -> Error {
    let mut path = err.path.clone();
    if let Kind::MissingField(name) = &err.kind {
        path.push(name.to_string());
    }
    let key = path.join(".");
    let spec = described.and_then(|(d, client)| Some((d.spec_for_key(&key)?, client)));
    let field = described.map_or_else(|| key.clone(), |(d, _)| d.field_of(&key));
    if let Kind::MissingField(_) = &err.kind {
        // A nested struct none of whose fields was found is missing as a
        // whole: name its first missing field instead.
        let nested = format!("{key}.");
        let inner = provider
            .resolved()
            .iter()
            .find(|r| r.key.starts_with(&nested) && matches!(r.origin, Origin::Missing { .. }));
        let (key, field) = match inner {
            Some(r) if spec.is_none() => (
                r.key.clone(),
                described.map_or_else(|| r.key.clone(), |(d, _)| d.field_of(&r.key)),
            ),
            _ => (key, field),
        };
        let spec = described.and_then(|(d, client)| Some((d.spec_for_key(&key)?, client)));
        let resolved = provider.resolved().iter().find(|r| r.key == key);
        return match (spec, resolved.map(|r| &r.origin)) {
            (_, Some(Origin::Missing { vault, env_var })) => Error::Missing {
                field,
                vault: vault.clone(),
                env_var: Some(env_var.clone()).filter(|v| !v.is_empty()),
            },
            (Some((s, client)), _) => Error::Missing {
                field,
                vault: client.is_enabled().then(|| s.location(client.kv_mount())),
                env_var: Some(s.env_var.clone()).filter(|v| !v.is_empty()),
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
        // figment's own text for these quotes the value: say what was expected only.
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => {
            "a number out of range for the field's type".to_owned()
        }
        Kind::Unsupported(actual) => format!("{} is not supported here", kind_of(actual)),
        Kind::UnsupportedKey(actual, expected) => {
            format!(
                "a map key of another kind ({}; expected {expected})",
                kind_of(actual)
            )
        }
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
    let value = provider.figment().find_value(&err.path.join("."));
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
