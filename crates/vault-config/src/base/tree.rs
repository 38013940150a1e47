//! Configuration trees as `serde_json` objects: a value put at a dotted key
//! (`db.url` nests `url` in `db`), objects merged key by key (a later value
//! replaces an earlier one, except that two objects merge), and a value found
//! by its dotted key. The core's snapshot and the fields' defaults are such
//! trees; framework adapters convert them.

use serde_json::{Map, Value};

/// Puts `value` at the dotted `key` of `tree`, merging objects on the way.
pub(crate) fn insert(tree: &mut Map<String, Value>, key: &str, value: Value) {
    let (head, rest) = match key.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (key, None),
    };
    match rest {
        None => match (tree.get_mut(head), value) {
            (Some(Value::Object(into)), Value::Object(from)) => merge(into, from),
            (_, value) => {
                tree.insert(head.to_owned(), value);
            }
        },
        Some(rest) => {
            let slot = tree
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                insert(inner, rest, value);
            }
        }
    }
}

/// Merges `from` into `into`: `from` wins, objects merge key by key.
pub(crate) fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        insert_one(into, k, v);
    }
}

fn insert_one(into: &mut Map<String, Value>, key: String, value: Value) {
    match (into.get_mut(&key), value) {
        (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
        (_, value) => {
            into.insert(key, value);
        }
    }
}

/// The value at the dotted `key` of `tree` (array items by index).
pub(crate) fn find<'a>(tree: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut at = tree.get(parts.next()?)?;
    for part in parts {
        at = match at {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nests_merges_and_finds() {
        let mut tree = Map::new();
        insert(&mut tree, "db.port", json!(5432));
        insert(&mut tree, "db.host", json!("h"));
        insert(&mut tree, "limits", json!({"rps": 1}));
        insert(&mut tree, "limits", json!({"burst": 2}));
        insert(&mut tree, "db.port", json!("6543"));
        assert_eq!(
            Value::Object(tree.clone()),
            json!({"db": {"port": "6543", "host": "h"}, "limits": {"rps": 1, "burst": 2}})
        );
        assert_eq!(find(&tree, "db.port"), Some(&json!("6543")));
        assert_eq!(find(&tree, "limits.burst"), Some(&json!(2)));
        assert_eq!(find(&tree, "db.nope"), None);
        assert_eq!(find(&tree, "db.port.x"), None);
    }
}
