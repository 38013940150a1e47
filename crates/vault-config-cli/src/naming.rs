//! Secrets to environment variables: names (prefix, sanitized the way
//! envconsul does, or refused under `--strict`), values as text, and
//! conflicts between paths.

use std::fmt;

use serde_json::Value;
use zeroize::Zeroize;

use crate::cli::NamingArgs;
use crate::exit::{Failure, Kind, Result};
use crate::target::Target;

/// One variable for the child or the shell. Its value is zeroed on drop and
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub value: String,
    /// `PATH#KEY`, for messages.
    pub from: String,
}

impl Drop for Var {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Var")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .field("from", &self.from)
            .finish()
    }
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` with every character other than A-Z, a-z, 0-9 and `_` replaced by
/// `_`, and a leading digit prefixed with `_`.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A secret's value as the text a variable holds: strings as they are,
/// anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The variables of `targets`, given what each returned (a map of keys for a
/// whole secret, a value for `PATH#KEY`), in command-line order.
pub fn variables(targets: &[Target], values: &[Value], naming: &NamingArgs) -> Result<Vec<Var>> {
    let mut vars: Vec<Var> = Vec::new();
    for (target, value) in targets.iter().zip(values) {
        let pairs: Vec<(&str, &Value)> = match (&target.key, value) {
            (Some(key), value) => vec![(key.as_str(), value)],
            (None, Value::Object(map)) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            (None, _) => {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("`{target}` is not a secret of keys and values"),
                ))
            }
        };
        for (key, value) in pairs {
            let from = format!("{}#{key}", target.path);
            let wanted = format!("{}{key}", naming.prefix);
            let name = if is_name(&wanted) {
                wanted
            } else if naming.strict {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("`{wanted}` (from {from}) is not a variable name (A-Z, a-z, 0-9, _; not starting with a digit); drop --strict to have it sanitized to `{}`", sanitize(&wanted)),
                ));
            } else {
                sanitize(&wanted)
            };
            let value = text(value);
            if value.contains('\0') {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!(
                        "the value of {from} holds a NUL byte, which no environment variable can"
                    ),
                ));
            }
            let var = Var { name, value, from };
            match vars.iter_mut().find(|v| v.name == var.name) {
                Some(existing) if naming.last_wins => *existing = var,
                Some(existing) => {
                    return Err(Failure::new(
                        Kind::Invalid,
                        format!(
                            "`{}` is defined by both {} and {}; pass --last-wins to let the later one win, or --prefix to keep them apart",
                            var.name, existing.from, var.from
                        ),
                    ))
                }
                None => vars.push(var),
            }
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn naming(strict: bool, last_wins: bool) -> NamingArgs {
        NamingArgs {
            prefix: String::new(),
            strict,
            last_wins,
        }
    }

    #[test]
    fn names_are_sanitized_or_refused() {
        assert_eq!(sanitize("db-url.v2"), "db_url_v2");
        assert_eq!(sanitize("2fa"), "_2fa");
        assert!(is_name("_A1") && !is_name("1A") && !is_name("a-b") && !is_name(""));
        let targets = vec![Target::parse("app").unwrap()];
        let values = vec![json!({"api-key": "k", "port": 5432, "on": true})];
        let vars = variables(&targets, &values, &naming(false, false)).unwrap();
        let got: Vec<(&str, &str)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("api_key", "k"), ("on", "true"), ("port", "5432")]);
        let err = variables(&targets, &values, &naming(true, false)).unwrap_err();
        assert_eq!(err.kind, Kind::Invalid);
        assert!(err.message.contains("app#api-key"), "{}", err.message);
        assert!(!err.message.contains("\"k\""));
    }

    #[test]
    fn a_name_from_two_paths_is_a_conflict_unless_the_last_wins() {
        let targets = vec![Target::parse("a").unwrap(), Target::parse("b#URL").unwrap()];
        let values = vec![json!({"URL": "sekrit-1"}), json!("sekrit-2")];
        let err = variables(&targets, &values, &naming(false, false)).unwrap_err();
        assert!(
            err.message.contains("a#URL") && err.message.contains("b#URL"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sekrit"));
        let vars = variables(&targets, &values, &naming(false, true)).unwrap();
        assert_eq!((vars.len(), vars[0].value.as_str()), (1, "sekrit-2"));
        assert!(!format!("{vars:?}").contains("sekrit"));
    }
}
