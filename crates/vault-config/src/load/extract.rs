//! Extraction: the provider's values (over the fields' defaults) into the
//! typed struct through the lossy deserializer of `de`, and the rewriting of
//! a failure into an [`Error`] that names the field and its sources, never
//! the value.
//!
//! Uses the provider, `de`, the description and the client (for the KV
//! mount a missing field's location names).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::base::tree;
use crate::client::VaultClient;
use crate::describe::spec::Description;
use crate::error::{Error, Result};
use crate::load::de::{self, Failure, Fault};
use crate::load::origin::Origin;
use crate::load::provider::VaultProvider;

impl VaultProvider {
    /// Extracts a `T` from this provider alone, lossily (Vault's CLI writes
    /// every value as a string: `"5432"` fills a `u16`). Errors name the
    /// key and where its value came from, never the value:
    ///
    /// ```no_run
    /// # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Db { url: vault_config::SecretString, port: u16 }
    /// let db: Db = vault_config::VaultProvider::builder()
    ///     .map("url", "database#DATABASE_URL")
    ///     .mapping(vault_config::Mapping::new("port", "database#port")?.env("DATABASE_PORT"))
    ///     .fetch(&client)
    ///     .await?
    ///     .extract()?; // "invalid `port`: expected u16, found a string (from vault secret/data/database#port)"
    /// # let _ = db; Ok(()) }
    /// ```
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T> {
        extract_tree(self.tree(), None, self)
    }
}

/// Defaults, then the provider; extraction errors rewritten without values.
pub(crate) fn extract<T: DeserializeOwned>(
    d: Option<&Description>,
    client: &VaultClient,
    provider: &VaultProvider,
) -> Result<T> {
    let described = d.map(|d| (d, client));
    match d.filter(|d| !d.defaults.is_empty() || d.layer.is_some()) {
        Some(d) => {
            // Defaults, then another source's values (`load_with`), then Vault's.
            let mut merged = d.defaults_tree();
            if let Some(layer) = &d.layer {
                tree::merge(&mut merged, layer.tree());
            }
            tree::merge(&mut merged, provider.tree().clone());
            extract_tree(&merged, described, provider)
        }
        None => extract_tree(provider.tree(), described, provider),
    }
}

/// Deserializes `T` from `tree` (the provider's values, maybe over defaults).
pub(crate) fn extract_tree<T: DeserializeOwned>(
    tree: &Map<String, Value>,
    described: Option<(&Description, &VaultClient)>,
    provider: &VaultProvider,
) -> Result<T> {
    provider.check_references()?;
    // A `json` value that is not JSON: named before any type error it causes.
    if let Some(fault) = provider.json_faults().first() {
        return Err(Error::Invalid {
            field: described.map_or_else(|| fault.key.clone(), |(d, _)| d.field_of(&fault.key)),
            reason: fault.reason.clone(),
            origin: Some(fault.origin.clone()),
        });
    }
    de::from_tree(tree).map_err(|failure| {
        let key = failure.key();
        let value = tree::find(tree, &key);
        let layer = described.and_then(|(d, _)| d.layer.as_ref());
        let origin = provider
            .origin_of(&key)
            .or_else(|| layer.and_then(|l| l.origin_of(&key)))
            .or_else(|| value.map(|_| "default".to_owned()));
        explain(failure, origin, value, described, provider)
    })
}

/// Turns a failed extraction into an error that names the field (with a
/// derive's description, else the configuration key) and its sources, and
/// never carries the offending value. `origin` names where the value at
/// fault came from; `value` is that value, to redact from a custom message.
pub(crate) fn explain(
    failure: Failure,
    origin: Option<String>,
    value: Option<&Value>,
    described: Option<(&Description, &VaultClient)>,
    provider: &VaultProvider,
) -> Error {
    let mut path = failure.path.clone();
    if let Fault::Missing(name) = &failure.fault {
        path.push(name.clone());
    }
    let key = path.join(".");
    let spec = described.and_then(|(d, client)| Some((d.spec_for_key(&key)?, client)));
    let field = match described {
        // A framework's error about no key in particular (a file it could not parse).
        _ if key.is_empty() => "configuration".to_owned(),
        Some((d, _)) => d.field_of(&key),
        None => key.clone(),
    };
    if let Fault::Missing(name) = &failure.fault {
        // A key a `json` field's value lacks: that value is at fault.
        if let Some(origin) = provider.inside_json(&key) {
            return Error::Invalid {
                field,
                reason: format!("the JSON value has no `{name}`"),
                origin: Some(origin),
            };
        }
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
                vault: (client.is_enabled() && !s.env_only).then(|| s.location(client.kv_mount())),
                env_var: Some(s.env_var.clone()).filter(|v| !v.is_empty()),
            },
            (None, _) => Error::Missing {
                field,
                vault: None,
                env_var: None,
            },
        };
    }
    let reason = match &failure.fault {
        Fault::Message(msg) => msg.clone(),
        fault => fault.reason(),
    };
    let reason = redact(withhold_excerpt(reason), value, provider);
    Error::Invalid {
        field,
        reason,
        origin,
    }
}

/// A type's own message (a custom deserializer's, or the "expected" text of
/// one, as `url::Url` writes `empty host: "postgres://u:pw@"`) may quote the
/// input, raw or escaped, and the failure's path does not always lead to it
/// (inside `#[serde(flatten)]` it names the parent). So every string this
/// load holds is cut out of the text, in both forms, longest first. Strings
/// under three characters are left: they would cut words, not secrets.
fn redact(mut text: String, value: Option<&Value>, provider: &VaultProvider) -> String {
    let mut strings = Vec::new();
    if let Some(v) = value {
        strings_in(v, &mut strings);
    }
    for v in provider.tree().values() {
        strings_in(v, &mut strings);
    }
    strings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in strings {
        if s.chars().count() < 3 {
            continue;
        }
        let escaped = format!("{s:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        for form in [s, escaped] {
            if text.contains(form) {
                text = text.replace(form, "[REDACTED]");
            }
        }
    }
    text
}

/// A parser's message over several lines (TOML's, YAML's: `TOML parse error
/// at line 3, column 38` then the line itself, `3 | api_key = "sk_...`)
/// quotes the source, which may hold a secret the load never got to hold:
/// only its first line is kept.
fn withhold_excerpt(text: String) -> String {
    match text.split_once('\n') {
        Some((first, _)) => format!(
            "{}; the rest of the parser's message is withheld (it quotes the source)",
            first.trim_end()
        ),
        None => text,
    }
}

/// What a TLS identity's value (a PKI `issue` answer, or a KV secret shaped
/// as one) says of itself in the open: a certificate's serial names it in
/// errors and health, and `rsa` would cut words (`pa[REDACTED]ble`).
const IDENTITY_PUBLIC: [&str; 2] = ["serial_number", "private_key_type"];

/// Every string inside `value`, but the public facts of an identity.
fn strings_in<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => {
            let identity = map.contains_key("certificate") && map.contains_key("private_key");
            map.iter()
                .filter(|(k, _)| !(identity && IDENTITY_PUBLIC.contains(&k.as_str())))
                .for_each(|(_, v)| strings_in(v, out));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::load::provider::Resolved;
    use serde::Deserialize;
    use serde_json::json;

    fn provider(values: Vec<(&str, Option<Value>)>) -> VaultProvider {
        VaultProvider::from_values(
            values
                .into_iter()
                .map(|(key, value)| {
                    let origin = match value {
                        Some(_) => Origin::Vault {
                            namespace: None,
                            api_path: "secret/data/db".into(),
                            key: key.rsplit('.').next().unwrap_or(key).into(),
                            version: Some(1),
                            path_env: None,
                        },
                        None => Origin::Missing {
                            vault: Some(format!("secret/db#{key}")),
                            env_var: key.to_uppercase().replace('.', "_"),
                        },
                    };
                    let r = Resolved {
                        key: key.into(),
                        origin,
                    };
                    (r, value)
                })
                .collect(),
        )
    }

    fn strict<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
        let s = String::deserialize(d)?;
        Err(serde::de::Error::custom(format!("`{s}` is not a host")))
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Db {
        port: u16,
        #[serde(default, deserialize_with = "strict")]
        host: String,
        user: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct App {
        db: Db,
        name: String,
    }

    #[test]
    fn errors_name_the_key_and_source_never_the_value() {
        let p = provider(vec![
            ("db.port", Some(json!("hunter2"))),
            ("name", Some(json!("n"))),
        ]);
        let err = p.extract::<App>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `db.port`: expected u16, found a string (from vault secret/data/db#port)"
        );

        let p = provider(vec![
            ("db.port", Some(json!("5432"))),
            ("db.host", Some(json!("hunter2"))),
            ("name", Some(json!("n"))),
        ]);
        let text = p.extract::<App>().unwrap_err().to_string();
        assert_eq!(
            text,
            "invalid `db.host`: `[REDACTED]` is not a host (from vault secret/data/db#host)"
        );
    }

    #[test]
    fn a_missing_value_names_the_vault_location_and_env_var_tried() {
        let p = provider(vec![("db.port", None), ("name", Some(json!("n")))]);
        let err = p.extract::<App>().unwrap_err();
        assert_eq!(
            err,
            Error::Missing {
                field: "db.port".into(),
                vault: Some("secret/db#db.port".into()),
                env_var: Some("DB_PORT".into()),
            }
        );
        // A whole nested struct missing: its first missing field is named.
        let p = provider(vec![("name", Some(json!("n"))), ("db.port", None)]);
        assert!(matches!(
            p.extract::<App>().unwrap_err(),
            Error::Missing { field, .. } if field == "db.port"
        ));
    }

    /// As `url::Url` does: the value quoted, escaped, in the type's own message.
    fn quoting<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
        let s = String::deserialize(d)?;
        Err(serde::de::Error::custom(format!("empty host: {s:?}")))
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Conn {
        #[serde(deserialize_with = "quoting")]
        url: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Flat {
        #[serde(flatten)]
        conn: Conn,
        name: String,
    }

    #[test]
    fn a_message_quoting_the_value_escaped_under_flatten_is_redacted() {
        // Under `flatten` the failure names the parent, not `url`, and the
        // message quotes the value escaped (`\"`): neither hides it from
        // the redaction.
        let secret = r#"postgres://u:p"w\d@"#;
        let p = provider(vec![
            ("url", Some(json!(secret))),
            ("name", Some(json!("n"))),
        ]);
        let text = p.extract::<Flat>().unwrap_err().to_string();
        assert!(!text.contains("p\\\"w"), "{text}");
        assert!(!text.contains("postgres://"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }

    #[test]
    fn an_identitys_serial_and_key_type_stay_in_the_open() {
        let identity = json!({
            "certificate": "-----BEGIN CERTIFICATE-----",
            "private_key": "-----BEGIN PRIVATE KEY-----",
            "private_key_type": "rsa",
            "serial_number": "3a:0f:bc",
        });
        // The same keys in a secret that is not an identity are secrets.
        let other = json!({ "serial_number": "7b:1c:de", "kind": "rsa-4096" });
        let p = provider(vec![("tls", Some(identity)), ("licence", Some(other))]);
        let text = redact(
            "key of serial 3a:0f:bc not parsable; licence 7b:1c:de; rsa-4096".into(),
            None,
            &p,
        );
        assert_eq!(
            text,
            "key of serial 3a:0f:bc not parsable; licence [REDACTED]; [REDACTED]"
        );
    }

    #[test]
    fn a_parser_excerpt_of_the_source_is_withheld() {
        let text = withhold_excerpt(
            "TOML parse error at line 3, column 38\n  |\n3 | api_key = \"sk_SECRET\n  |  ^\ninvalid basic string\n".into(),
        );
        assert!(
            text.starts_with("TOML parse error at line 3, column 38;"),
            "{text}"
        );
        assert!(!text.contains("sk_SECRET"), "{text}");
    }
}
