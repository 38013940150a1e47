//! [`Layer`]: the values of another configuration source (a figment: a
//! TOML file, env, anything) that a load puts under Vault's, with where each
//! came from and the `vault://` references among them. Pure data: the
//! figment adapter builds it, extraction reads it.

use std::fmt;

use serde_json::{Map, Value};

use crate::base::tree;
use crate::describe::mapping::Mapping;

/// One value of the layer: a leaf (a scalar or a list) at its dotted key.
#[derive(Clone)]
pub(crate) struct Leaf {
    pub(crate) key: String,
    pub(crate) value: Value,
    /// Its source, as the framework names it (`TOML file app.toml`).
    pub(crate) origin: Option<String>,
    /// The mapping that reads it from Vault, when the value is a reference.
    pub(crate) reference: Option<Mapping>,
}

/// The values of a configuration source, evaluated once, under Vault's.
/// `Debug` lists keys and origins, never values.
#[derive(Clone, Default)]
pub(crate) struct Layer {
    pub(crate) leaves: Vec<Leaf>,
}

impl Layer {
    /// Every value at its (nested) key. A reference is kept as written: the
    /// mapping that stands for it fills the key over it, or the load fails.
    pub(crate) fn tree(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for leaf in &self.leaves {
            tree::insert(&mut out, &leaf.key, leaf.value.clone());
        }
        out
    }

    /// One mapping per reference of the layer.
    pub(crate) fn references(&self) -> impl Iterator<Item = &Mapping> {
        self.leaves.iter().filter_map(|l| l.reference.as_ref())
    }

    /// Where the value at dotted `key` (or the list holding it) came from.
    pub(crate) fn origin_of(&self, key: &str) -> Option<String> {
        self.leaves
            .iter()
            .find(|l| {
                l.key == key
                    || key
                        .strip_prefix(l.key.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .and_then(|l| l.origin.clone())
    }

    /// Drops the references at keys `mapped` says a field maps itself: that
    /// field's own Vault key, env var and default fill it, and the reference
    /// is not passed on as a value.
    pub(crate) fn without_references_at(mut self, mapped: impl Fn(&str) -> bool) -> Self {
        self.leaves
            .retain(|l| l.reference.is_none() || !mapped(&l.key));
        self
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.leaves.iter().map(|l| {
                let origin = l.origin.as_deref().unwrap_or("?");
                match &l.reference {
                    Some(_) => (l.key.as_str(), format!("{origin} (a reference)")),
                    None => (l.key.as_str(), origin.to_owned()),
                }
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_origins_never_show_values() {
        let leaf = |key: &str, value: &str, reference| Leaf {
            key: key.to_owned(),
            value: Value::String(value.to_owned()),
            origin: Some("TOML file app.toml".to_owned()),
            reference,
        };
        let m = Mapping::from_parts("db.url", "database", "DATABASE_URL").unwrap();
        let layer = Layer {
            leaves: vec![
                leaf("db.url", "vault://database#DATABASE_URL", Some(m)),
                leaf("token", "s3cr3t", None),
            ],
        };
        let shown = format!("{layer:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("db.url"),
            "{shown}"
        );
        assert_eq!(
            layer.origin_of("token").as_deref(),
            Some("TOML file app.toml")
        );
        assert_eq!(layer.references().count(), 1);
        let kept = layer.without_references_at(|k| k == "db.url");
        assert_eq!(
            kept.tree().len(),
            1,
            "the reference a field maps is dropped"
        );
    }
}
