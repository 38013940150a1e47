//! What a watcher keeps of the published values: where each key's value
//! came from, and a hash of each (never the value itself).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use zeroize::Zeroize;

use crate::load::provider::{Origin, VaultProvider};

/// Where a key's value came from, kind and text (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Source {
    pub(super) kind: SourceKind,
    pub(super) shown: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SourceKind {
    Vault,
    Env,
    Default,
}

/// Each mapped key's source: `vault secret/data/db#url (version 3)`, `env
/// var DATABASE_URL`, or `default` (neither: a default, `None`, or another
/// configuration layer).
pub(super) fn sources(provider: &VaultProvider) -> BTreeMap<String, Source> {
    provider
        .resolved()
        .iter()
        .map(|r| {
            // A referenced key is Vault's, as its origin shows.
            let origin = match &r.origin {
                Origin::Referenced { vault, .. } => vault.as_ref(),
                other => other,
            };
            let source = match origin {
                Origin::Vault { version, .. } => Source {
                    kind: SourceKind::Vault,
                    shown: match version {
                        Some(v) => format!("{} (version {v})", r.origin),
                        None => r.origin.to_string(),
                    },
                },
                Origin::Env { .. } => Source {
                    kind: SourceKind::Env,
                    shown: r.origin.to_string(),
                },
                Origin::Referenced { .. } | Origin::Missing { .. } | Origin::Unresolved { .. } => {
                    Source {
                        kind: SourceKind::Default,
                        shown: "default".to_owned(),
                    }
                }
            };
            (r.key.clone(), source)
        })
        .collect()
}

/// A hash of each mapped key's value, to tell which changed without keeping
/// copies (the JSON text hashed is zeroed afterwards).
pub(super) fn prints(provider: &VaultProvider) -> BTreeMap<String, u64> {
    provider
        .resolved()
        .iter()
        .filter_map(|r| {
            let value = provider.value_of(&r.key)?;
            // Scalars by their text: `"6000"` and `6000` deserialize into
            // the same field, and a write that only retypes one changes
            // nothing a subscriber sees.
            let mut text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => serde_json::to_string(value).ok()?,
            };
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            text.zeroize();
            Some((r.key.clone(), h.finish()))
        })
        .collect()
}
