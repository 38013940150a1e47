//! The load pipeline, with no configuration framework: plan (the distinct
//! reads a description needs) → snapshot (what they returned, with env
//! fallbacks and the provenance of each value) → the typed struct, through
//! the lossy deserializer of `de`, with errors that name the field and its
//! sources, never the value.
//!
//! [`VaultConfig::load`](crate::VaultConfig::load) and the
//! [`Watcher`](crate::Watcher) both run plan → snapshot → [`extract`].
//!
//! | module | what it holds |
//! |---|---|
//! | `plan` | the reads a description or a provider's mappings need |
//! | `snapshot` | what the reads returned; env fallbacks applied |
//! | [`provider`] | [`VaultProvider`]: the values with their provenance |
//! | `origin` | [`Origin`](provider::Origin), [`Resolved`](provider::Resolved): where each value came from |
//! | `de` | the lossy serde deserializer over a `serde_json` tree |
//! | `extract` | the values (over defaults) into the typed struct; failures into errors without values |
//!
//! Within the layer, each stage uses only those before it:
//! plan → snapshot → provider → extract.
//!
//! Uses the client, the engines, the description, base and the error type;
//! the framework adapters use it, never the other way.

pub(crate) mod de;
pub(crate) mod extract;
mod origin;
pub(crate) mod plan;
pub mod provider;
pub(crate) mod snapshot;

pub(crate) use extract::extract;

use serde::de::DeserializeOwned;

use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::error::Result;
use crate::load::plan::Plan;
use crate::load::provider::VaultProvider;
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
    mut plan: Plan,
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
    plan.settle_references(client).await;
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
