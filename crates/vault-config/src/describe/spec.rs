//! The mapping table a `#[derive(VaultConfig)]` struct describes: field specs
//! and defaults, gathered through the hidden [`Scope`] and [`Description`] that
//! generated code fills.

use serde_json::{Map, Value};

use crate::base::tree;
use crate::describe::layer::Layer;

use crate::describe::mapping::{default_env_var, Mapping, WHOLE_SECRET};
use crate::error::{Error, Result};
use crate::tls::CertificateRequest;

/// One field of a `VaultConfig` struct mapped to a Vault `path#key`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldSpec {
    /// The Rust field path, e.g. `keycloak.admin_password`.
    pub field: String,
    /// The configuration key, with `#[serde(rename)]` applied.
    pub key: String,
    /// The KV mount, when the struct sets one (else the client's default mount).
    pub mount: Option<String>,
    /// The secret's path inside the mount, with the struct's `prefix` applied.
    pub path: String,
    /// The key inside the secret.
    pub secret_key: String,
    /// The env var read when Vault lacks the key.
    pub env_var: String,
    /// An env var that, when set at load time, replaces `path` (the whole
    /// path inside the mount, no prefix applied).
    pub path_env: Option<String>,
    /// The lease TTL asked for (`ttl = "1h"`), for a leased path.
    pub ttl: Option<std::time::Duration>,
    /// The pinned KV v2 version, if any.
    pub version: Option<u64>,
    /// Whether the field has a `default`.
    pub has_default: bool,
    /// Whether the field is an `Option` (absent everywhere means `None`).
    pub optional: bool,
    /// The field's type, as written.
    pub type_name: &'static str,
    /// True when `path` is a secrets engine path that leases credentials
    /// (`database/creds/app`), read as is, with no mount or prefix.
    pub dynamic: bool,
    /// For `#[vault(pki = "pki/issue/web", common_name = "...")]`: what the
    /// PKI role at `path` is asked for (`secret_key` is `*`: the whole
    /// answer).
    pub issue: Option<CertificateRequest>,
    /// True for an env-only field (`#[vault(env = "PORT")]` with no path or
    /// key): read from `env_var` at load, never from Vault; `path` and
    /// `secret_key` are empty and no policy grants anything for it.
    pub env_only: bool,
    /// True for `#[vault(json)]`: a string value is parsed as JSON before
    /// extraction (a value already an object, array, ... is taken as is).
    pub json: bool,
    /// For an env-only field with a `default`, that default as a
    /// `.env.example` writes it (`8080`, `info`, `{"beta":true}`).
    pub env_default: Option<String>,
}

impl FieldSpec {
    /// The mount this field reads: its own, else `default_mount`.
    pub fn mount_or<'a>(&'a self, default_mount: &'a str) -> &'a str {
        self.mount.as_deref().unwrap_or(default_mount)
    }

    /// This spec with its path as `env` moves it: the value of its
    /// `path_env` when that is set, else as declared.
    pub(crate) fn resolved(&self, env: &crate::base::EnvSource) -> FieldSpec {
        let mut spec = self.clone();
        if let Some(path) = self
            .path_env
            .as_deref()
            .and_then(|var| env.get(var))
            .map(|p| p.trim().trim_matches('/').to_owned())
            .filter(|p| !p.is_empty())
        {
            spec.path = path;
        }
        spec
    }

    /// `mount/path#key` (`path#key` for a dynamic path), as errors and docs
    /// show it; empty for an env-only field, which has no Vault location.
    pub fn location(&self, default_mount: &str) -> String {
        if self.env_only {
            return String::new();
        }
        if self.issue.is_some() {
            return self.path.clone();
        }
        if self.dynamic {
            return format!("{}#{}", self.path, self.secret_key);
        }
        format!(
            "{}/{}#{}",
            self.mount_or(default_mount),
            self.path,
            self.secret_key
        )
    }

    /// The provider mapping for this field. An env-only field has none: it
    /// fails with [`Error::Mapping`].
    pub fn mapping(&self) -> Result<Mapping> {
        if self.env_only {
            return Err(Error::Mapping {
                mapping: format!("{} <- ${}", self.key, self.env_var),
                reason: "an env-only field reads no Vault key".to_owned(),
            });
        }
        if let Some(request) = &self.issue {
            return Mapping::pki(&self.key, &self.path, request.clone());
        }
        let mut m = if self.dynamic {
            Mapping::dynamic(&self.key, &self.path, &self.secret_key)?
        } else {
            Mapping::from_parts(&self.key, &self.path, &self.secret_key)?
        };
        m = if self.env_var.is_empty() {
            // `no_env`, or a whole secret: no fallback.
            m.no_env()
        } else {
            m.env(&self.env_var)
        };
        if let Some(var) = &self.path_env {
            m = m.path_env(var);
        }
        if self.json {
            m = m.json();
        }
        if self.dynamic {
            if let Some(ttl) = self.ttl {
                m = m.ttl(ttl);
            }
            return Ok(m);
        }
        if let Some(mount) = &self.mount {
            m = m.mount(mount);
        }
        if let Some(v) = self.version {
            m = m.version(v);
        }
        Ok(m)
    }
}

/// A field as the derive declares it, before the enclosing structs' scopes apply.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct FieldDecl {
    pub field: &'static str,
    pub key: &'static str,
    pub path: &'static str,
    pub secret_key: &'static str,
    pub env: Option<&'static str>,
    pub path_env: Option<&'static str>,
    pub ttl_secs: Option<u64>,
    pub version: Option<u64>,
    pub has_default: bool,
    pub optional: bool,
    pub type_name: &'static str,
    pub dynamic: bool,
    /// Read from `env` only, never from Vault (`path` and `secret_key` empty).
    pub env_only: bool,
    /// Parse a string value as JSON.
    pub json: bool,
    /// `#[vault(pki = "...", common_name = "...")]`: `path` is the PKI
    /// role's issue path, `ttl_secs` the validity asked for.
    pub issue: Option<IssueDecl>,
}

/// What a `pki` field asks its role for, as the derive writes it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct IssueDecl {
    pub common_name: &'static str,
    /// Comma-separated, as Vault takes them (`""`: none).
    pub alt_names: &'static str,
    /// Comma-separated, as Vault takes them (`""`: none).
    pub ip_sans: &'static str,
}

impl IssueDecl {
    fn request(&self, ttl_secs: Option<u64>) -> CertificateRequest {
        let list = |s: &'static str| {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
        };
        let mut r = CertificateRequest::new(self.common_name)
            .alt_names(list(self.alt_names))
            .ip_sans(list(self.ip_sans));
        if let Some(secs) = ttl_secs {
            r = r.ttl(std::time::Duration::from_secs(secs));
        }
        r
    }
}

/// Where a struct sits: its field/key path and the mount, path prefix and env
/// prefix in force (a nested struct inherits what it does not set).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct Scope {
    field_prefix: String,
    key_prefix: String,
    mount: Option<String>,
    path_prefix: Option<String>,
    env_prefix: Option<String>,
}

impl Scope {
    /// The scope of a struct's own attributes inside `self`.
    pub fn with_attrs(
        &self,
        mount: Option<&str>,
        prefix: Option<&str>,
        env_prefix: Option<&str>,
    ) -> Scope {
        let mut s = self.clone();
        if let Some(m) = mount {
            s.mount = Some(m.trim_matches('/').to_owned());
        }
        if let Some(p) = prefix {
            let p = p.trim_matches('/');
            s.path_prefix = match &self.path_prefix {
                Some(outer) if !p.is_empty() => Some(format!("{outer}/{p}")),
                Some(outer) => Some(outer.clone()),
                None => Some(p.to_owned()).filter(|p| !p.is_empty()),
            };
        }
        if let Some(e) = env_prefix {
            s.env_prefix = Some(e.to_owned());
        }
        s
    }

    /// The scope of the nested struct in field `field` (configuration key `key`).
    pub fn nested(&self, field: &str, key: &str) -> Scope {
        let mut s = self.clone();
        s.field_prefix = format!("{}{field}.", self.field_prefix);
        s.key_prefix = format!("{}{key}.", self.key_prefix);
        s
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }
}

/// What a `VaultConfig` type describes: its field specs and defaults.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Description {
    pub(crate) specs: Vec<FieldSpec>,
    pub(crate) defaults: Vec<(String, Value)>,
    pub(crate) error: Option<Error>,
    /// Another source's values under Vault's (`load_with`, `watch_with`).
    pub(crate) layer: Option<Layer>,
}

impl Description {
    /// Records a mapped field.
    pub fn field(&mut self, scope: &Scope, d: FieldDecl) {
        let path = match &scope.path_prefix {
            // An env-only field has no path for a prefix to go before.
            _ if d.env_only => String::new(),
            Some(prefix) if !d.dynamic && d.issue.is_none() => {
                format!("{prefix}/{}", d.path.trim_matches('/'))
            }
            _ => d.path.trim_matches('/').to_owned(),
        };
        let env_var = match d.env {
            Some(env) => env.to_owned(),
            // A whole secret has no env fallback.
            None if d.secret_key == WHOLE_SECRET => String::new(),
            None => default_env_var(scope.env_prefix.as_deref(), d.secret_key),
        };
        self.specs.push(FieldSpec {
            field: format!("{}{}", scope.field_prefix, d.field),
            key: scope.key(d.key),
            mount: if d.dynamic || d.env_only || d.issue.is_some() {
                None
            } else {
                scope.mount.clone()
            },
            path,
            secret_key: d.secret_key.to_owned(),
            env_var,
            path_env: d.path_env.map(str::to_owned),
            ttl: d.ttl_secs.map(std::time::Duration::from_secs),
            version: d.version,
            has_default: d.has_default,
            optional: d.optional,
            type_name: d.type_name,
            dynamic: d.dynamic,
            env_only: d.env_only,
            json: d.json,
            env_default: None,
            issue: d.issue.map(|i| i.request(d.ttl_secs)),
        });
    }

    /// The spec of the field with configuration key `key`.
    pub(crate) fn spec_for_key(&self, key: &str) -> Option<&FieldSpec> {
        self.specs.iter().find(|s| s.key == key)
    }

    /// The Rust field path of configuration key `key` (the key itself for unmapped fields).
    pub(crate) fn field_of(&self, key: &str) -> String {
        self.spec_for_key(key)
            .map_or_else(|| key.to_owned(), |s| s.field.clone())
    }

    /// Records the default of the field with configuration key `key`.
    pub fn default_value<T: serde::Serialize + ?Sized>(
        &mut self,
        scope: &Scope,
        field: &str,
        key: &str,
        value: &T,
    ) {
        match serde_json::to_value(value) {
            Ok(v) => {
                let key = scope.key(key);
                // `.env.example` writes an env-only field's default.
                if let Some(spec) = self.specs.iter_mut().find(|s| s.env_only && s.key == key) {
                    spec.env_default = Some(env_text(&v));
                }
                self.defaults.push((key, v));
            }
            Err(e) => {
                self.error.get_or_insert(Error::Invalid {
                    field: format!("{}{field}", scope.field_prefix),
                    reason: format!("its default cannot be serialized: {e}"),
                    origin: Some("default".to_owned()),
                });
            }
        }
    }

    /// Puts `layer`'s values under Vault's (over the defaults), and its
    /// references among the mappings, except those at a key a field maps.
    #[cfg_attr(not(feature = "figment"), allow(dead_code))] // `load_with`
    pub(crate) fn set_layer(&mut self, layer: Layer) {
        let layer = layer.without_references_at(|key| self.spec_for_key(key).is_some());
        self.layer = Some(layer);
    }

    /// The defaults as one tree (dotted keys nested).
    pub(crate) fn defaults_tree(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in &self.defaults {
            tree::insert(&mut out, key, value.clone());
        }
        out
    }
}

/// A default as a `.env` file holds it: a string as is, anything else as JSON.
fn env_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::DEFAULT_KV_MOUNT as DOC_MOUNT;

    /// A plain `String` field mapped to `path#key`, for tests here and in `policy`.
    pub(crate) fn decl(field: &'static str, path: &'static str, key: &'static str) -> FieldDecl {
        FieldDecl {
            field,
            key: field,
            path,
            secret_key: key,
            env: None,
            path_env: None,
            ttl_secs: None,
            version: None,
            has_default: false,
            optional: false,
            type_name: "String",
            dynamic: false,
            env_only: false,
            json: false,
            issue: None,
        }
    }

    #[test]
    fn scopes_prefix_paths_keys_and_env() {
        let root = Scope::default().with_attrs(Some("agenticverz"), Some("aionos"), Some("APP_"));
        let mut d = Description::default();
        d.field(&root, decl("url", "db-main", "DATABASE_URL"));
        let inner = root
            .nested("keycloak", "kc")
            .with_attrs(None, Some("keycloak"), None);
        d.field(&inner, decl("admin", "admin", "KEYCLOAK_ADMIN"));
        assert_eq!(d.specs[0].path, "aionos/db-main");
        assert_eq!(d.specs[0].env_var, "APP_DATABASE_URL");
        assert_eq!(d.specs[1].field, "keycloak.admin");
        assert_eq!(d.specs[1].key, "kc.admin");
        assert_eq!(d.specs[1].path, "aionos/keycloak/admin");
        assert_eq!(d.specs[1].mount.as_deref(), Some("agenticverz"));
        assert_eq!(
            d.specs[1].location(DOC_MOUNT),
            "agenticverz/aionos/keycloak/admin#KEYCLOAK_ADMIN"
        );
    }

    #[test]
    fn defaults_nest_into_one_dict() {
        let mut d = Description::default();
        let root = Scope::default();
        d.default_value(&root, "port", "db.port", &5432);
        d.default_value(&root, "host", "db.host", "localhost");
        let dict = d.defaults_tree();
        let db = dict.get("db").and_then(|v| v.as_object()).unwrap();
        assert_eq!(db.len(), 2);
    }
}
