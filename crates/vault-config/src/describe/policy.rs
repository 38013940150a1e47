//! What a mapping table implies outside the program: the least-privilege Vault
//! policy to grant it, and the `.env.example` of its fallback variables.
//!
//! # Usage
//!
//! [`VaultConfig::vault_policy_for`](crate::VaultConfig::vault_policy_for) and
//! [`VaultConfig::env_example_for`](crate::VaultConfig::env_example_for) render
//! both for the mount, KV versions and env names of a given client; the
//! functions here render them for any list of [`FieldSpec`]s, and the policy
//! for any list of [`Mapping`]s ([`render_policy_for_mappings`], which
//! `vault-config policy` prints for the paths it is given).
//!
//! ```
//! use vault_config::kv::KvVersion;
//! use vault_config::policy::render_policy;
//! let hcl = render_policy("App", &[], "secret", &|_| KvVersion::V2);
//! assert!(hcl.starts_with("# Least-privilege Vault policy for App"));
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::base::KvVersion;
use crate::describe::mapping::Mapping;
pub use crate::describe::spec::FieldSpec;

/// Renders the least-privilege Vault policy (HCL) granting `read` on exactly the
/// paths in `specs`: `<mount>/data/<path>` and `<mount>/metadata/<path>` on KV v2
/// (the watcher reads metadata), `<mount>/<path>` on KV v1; a dynamic path
/// itself, plus `update` on `sys/leases/renew/<path>/*` and
/// `sys/leases/revoke/<path>/*`: its own leases only; `update` on a PKI
/// role's issue path (`pki/issue/web`: issuing is a write).
///
/// `default_mount` stands for specs without a mount of their own; `kv_version`
/// says each mount's KV version.
pub fn render_policy(
    title: &str,
    specs: &[FieldSpec],
    default_mount: &str,
    kv_version: &dyn Fn(&str) -> KvVersion,
) -> String {
    let grants: Vec<Grant<'_>> = specs
        .iter()
        // An env-only field reads no Vault: nothing to grant.
        .filter(|s| !s.env_only)
        .map(|s| Grant {
            mount: s.mount_or(default_mount),
            path: &s.path,
            kind: match (s.dynamic, &s.issue) {
                (_, Some(_)) => GrantKind::Issue,
                (true, None) => GrantKind::Leased,
                (false, None) => GrantKind::Kv,
            },
        })
        .collect();
    render(title, &grants, &moved_paths(specs), kv_version)
}

/// [`render_policy`] for [`Mapping`]s (a
/// [`VaultProviderBuilder`](crate::VaultProviderBuilder)'s, or the paths a
/// command line reads): the same grants, with `default_mount` for mappings
/// without a mount of their own. A path a `path_env` variable moves is
/// granted as declared, and a comment names the variable.
///
/// ```
/// use vault_config::{kv::KvVersion, policy::render_policy_for_mappings, Mapping};
/// let mappings = [
///     Mapping::from_parts("a", "app-prod", "*")?,
///     Mapping::dynamic("b", "database/creds/app", "username")?,
/// ];
/// let hcl = render_policy_for_mappings("my service", &mappings, "secret", &|_| KvVersion::V2);
/// assert!(hcl.contains(r#"path "secret/data/app-prod""#));
/// assert!(hcl.contains(r#"path "sys/leases/renew/database/creds/app/*""#));
/// # Ok::<(), vault_config::Error>(())
/// ```
pub fn render_policy_for_mappings(
    title: &str,
    mappings: &[Mapping],
    default_mount: &str,
    kv_version: &dyn Fn(&str) -> KvVersion,
) -> String {
    let grants: Vec<Grant<'_>> = mappings
        .iter()
        .map(|m| Grant {
            mount: m.mount_override().unwrap_or(default_mount),
            path: m.path(),
            kind: match (m.is_dynamic(), m.certificate_request()) {
                (_, Some(_)) => GrantKind::Issue,
                (true, None) => GrantKind::Leased,
                (false, None) => GrantKind::Kv,
            },
        })
        .collect();
    let moved = mappings
        .iter()
        .filter_map(|m| Some((m.path_env_var()?.to_owned(), m.path().to_owned())))
        .collect();
    render(title, &grants, &moved, kv_version)
}

/// One path a policy grants: a KV secret on `mount`, or a leased or PKI
/// issue path as is.
struct Grant<'a> {
    mount: &'a str,
    path: &'a str,
    kind: GrantKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GrantKind {
    Kv,
    Leased,
    Issue,
}

/// The policy for `grants`; `moved`: each `path_env` variable with the path
/// it moves.
fn render(
    title: &str,
    grants: &[Grant<'_>],
    moved: &BTreeSet<(String, String)>,
    kv_version: &dyn Fn(&str) -> KvVersion,
) -> String {
    let mut paths = BTreeSet::new();
    let mut leased = BTreeSet::new();
    let mut issued = BTreeSet::new();
    for g in grants {
        match g.kind {
            GrantKind::Leased => {
                paths.insert(g.path.to_owned());
                leased.insert(g.path.to_owned());
                continue;
            }
            GrantKind::Issue => {
                issued.insert(g.path.to_owned());
                continue;
            }
            GrantKind::Kv => {}
        }
        let (mount, path) = (g.mount, g.path);
        match kv_version(mount) {
            KvVersion::V2 => {
                paths.insert(format!("{mount}/data/{path}"));
                paths.insert(format!("{mount}/metadata/{path}"));
            }
            KvVersion::V1 => {
                paths.insert(format!("{mount}/{path}"));
            }
        }
    }
    let mut out =
        format!("# Least-privilege Vault policy for {title}, generated by vault-config.\n");
    if !moved.is_empty() {
        out.push_str(
            "# Paths an env var chooses at load time: this policy grants the path each names\n\
             # now (its default when unset); render it again where the variable is set.\n",
        );
        for (var, path) in moved {
            let _ = writeln!(out, "#   {var} -> {path}");
        }
    }
    for p in paths {
        let _ = write!(out, "\npath \"{p}\" {{\n  capabilities = [\"read\"]\n}}\n");
    }
    // Issuing a certificate is a write to the role's issue path.
    for p in issued {
        let _ = write!(
            out,
            "\npath \"{p}\" {{\n  capabilities = [\"update\"]\n}}\n"
        );
    }
    // Renew and revoke only the leases of these paths (the client names the
    // lease in the URL, so the policy can scope it), never any lease it learns of.
    for p in leased {
        for op in ["renew", "revoke"] {
            let _ = write!(
                out,
                "\npath \"sys/leases/{op}/{p}/*\" {{\n  capabilities = [\"update\"]\n}}\n"
            );
        }
    }
    out
}

/// Renders a `.env.example` listing every env fallback variable with its Vault source.
///
/// `enabled_var` is the variable that turns Vault off (`VAULT_ENABLED`, or
/// `AION_VAULT_ENABLED` for a prefixed client).
pub fn render_env_example(
    title: &str,
    specs: &[FieldSpec],
    default_mount: &str,
    enabled_var: &str,
) -> String {
    let mut out = format!(
        "# Env fallbacks for {title}, generated by vault-config.\n\
         # Each variable is read only when Vault lacks its key, or Vault is off ({enabled_var}=false).\n"
    );
    if specs.iter().any(|s| s.env_only) {
        out.push_str(
            "# Variables marked `env only` are always read from env: Vault never holds them.\n",
        );
    }
    let moved = moved_paths(specs);
    if !moved.is_empty() {
        out.push_str(
            "\n# Vault paths chosen at deploy time (the whole path inside the mount);\n\
             # unset, each reads the path shown.\n",
        );
        for (var, path) in &moved {
            let _ = writeln!(out, "# {var}={path}");
        }
    }
    for s in specs {
        let mut notes = Vec::new();
        if s.optional {
            notes.push("optional");
        }
        if s.has_default {
            notes.push("has a default");
        }
        if s.json {
            notes.push("JSON");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        let notes = match &s.path_env {
            Some(var) if notes.is_empty() => format!(" (path from {var} when set)"),
            Some(var) => format!("{} (path from {var} when set)", notes),
            None => notes,
        };
        if s.env_only {
            let _ = write!(
                out,
                "\n# {}: env only{}\n{}={}\n",
                s.field,
                notes,
                s.env_var,
                s.env_default.as_deref().map(env_value).unwrap_or_default(),
            );
            continue;
        }
        if s.env_var.is_empty() {
            let _ = write!(
                out,
                "\n# {}: vault {}{} ({}no env fallback)\n",
                s.field,
                s.location(default_mount),
                notes,
                if s.secret_key == crate::describe::mapping::WHOLE_SECRET {
                    "a whole secret: "
                } else {
                    ""
                },
            );
            continue;
        }
        let _ = write!(
            out,
            "\n# {}: vault {}{}\n{}=\n",
            s.field,
            s.location(default_mount),
            notes,
            s.env_var
        );
    }
    out
}

/// A value as a `.env` line holds it: bare when it is plain, else in double
/// quotes with `\` and `"` escaped (`{"beta":true}` becomes `"{\"beta\":true}"`).
fn env_value(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@+".contains(c));
    if plain {
        return text.to_owned();
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// Each `path_env` variable with the path it moves (as the specs hold it).
fn moved_paths(specs: &[FieldSpec]) -> BTreeSet<(String, String)> {
    specs
        .iter()
        .filter_map(|s| Some((s.path_env.clone()?, s.path.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::spec::tests::decl;
    use crate::describe::spec::{Description, FieldDecl, Scope};

    #[test]
    fn policy_lists_each_path_once() {
        let mut d = Description::default();
        let root = Scope::default();
        d.field(&root, decl("a", "database", "A"));
        d.field(&root, decl("b", "database", "B"));
        d.field(
            &root.with_attrs(Some("legacy"), None, None),
            decl("c", "old", "C"),
        );
        let hcl = render_policy("T", &d.specs, "secret", &|m| {
            if m == "legacy" {
                KvVersion::V1
            } else {
                KvVersion::V2
            }
        });
        assert_eq!(
            hcl.matches("path \"secret/data/database\"").count(),
            1,
            "{hcl}"
        );
        assert!(hcl.contains("path \"secret/metadata/database\""), "{hcl}");
        assert!(hcl.contains("path \"legacy/old\""), "{hcl}");
        assert!(!hcl.contains("legacy/data"), "{hcl}");
    }

    #[test]
    fn a_pki_field_is_granted_update_on_its_issue_path_and_no_env() {
        let mut d = Description::default();
        let root = Scope::default().with_attrs(Some("kv"), Some("team"), Some("APP_"));
        d.field(
            &root,
            FieldDecl {
                ttl_secs: Some(86_400),
                issue: Some(crate::describe::spec::IssueDecl {
                    common_name: "gateway.internal",
                    alt_names: "gateway, gw.internal",
                    ip_sans: "",
                }),
                type_name: "Identity",
                ..decl("tls", "pki/issue/web", "*")
            },
        );
        let spec = &d.specs[0];
        assert_eq!(
            (spec.path.as_str(), spec.mount.as_deref()),
            ("pki/issue/web", None)
        );
        assert_eq!(spec.env_var, "", "no env fallback");
        assert_eq!(spec.location("secret"), "pki/issue/web");
        let request = spec.issue.as_ref().unwrap();
        assert_eq!(request.alt_name_list(), ["gateway", "gw.internal"]);
        assert!(request.ip_san_list().is_empty());
        assert_eq!(
            request.requested_ttl(),
            Some(std::time::Duration::from_secs(86_400))
        );
        let m = spec.mapping().unwrap();
        assert_eq!(m.certificate_request(), Some(request));
        let hcl = render_policy("T", &d.specs, "secret", &|_| KvVersion::V2);
        assert!(
            hcl.contains("path \"pki/issue/web\" {\n  capabilities = [\"update\"]\n}"),
            "{hcl}"
        );
        assert_eq!(hcl.matches("path \"").count(), 1, "{hcl}");
        let example = render_env_example("T", &d.specs, "secret", "VAULT_ENABLED");
        assert!(!example.contains("TLS"), "{example}");
    }

    #[test]
    fn an_env_only_field_is_in_the_env_example_and_not_the_policy() {
        let mut d = Description::default();
        let root = Scope::default().with_attrs(Some("kv"), Some("team"), Some("APP_"));
        d.field(&root, decl("url", "database", "URL"));
        let env_only = |field, var| FieldDecl {
            path: "",
            secret_key: "",
            env: Some(var),
            env_only: true,
            ..decl(field, "", "")
        };
        d.field(
            &root,
            FieldDecl {
                has_default: true,
                ..env_only("port", "PORT")
            },
        );
        d.default_value(&root, "port", "port", &8080);
        d.field(
            &root,
            FieldDecl {
                json: true,
                has_default: true,
                ..env_only("flags", "FEATURE_FLAGS")
            },
        );
        d.default_value(&root, "flags", "flags", &serde_json::json!({"beta": true}));
        d.field(&root, env_only("log_level", "LOG_LEVEL"));
        let port = &d.specs[1];
        assert_eq!((port.path.as_str(), port.mount.as_deref()), ("", None));
        assert_eq!(port.env_var, "PORT", "an explicit name, no env_prefix");
        assert_eq!(port.location("secret"), "");
        assert!(port.mapping().is_err());
        let hcl = render_policy("T", &d.specs, "secret", &|_| KvVersion::V2);
        assert_eq!(hcl.matches("path \"").count(), 2, "{hcl}");
        assert!(hcl.contains("path \"kv/data/team/database\""), "{hcl}");
        let example = render_env_example("T", &d.specs, "secret", "VAULT_ENABLED");
        assert!(example.contains("`env only` are always read"), "{example}");
        assert!(
            example.contains("\n# port: env only (has a default)\nPORT=8080\n"),
            "{example}"
        );
        assert!(
            example.contains(
                "\n# flags: env only (has a default, JSON)\nFEATURE_FLAGS=\"{\\\"beta\\\":true}\"\n"
            ),
            "{example}"
        );
        assert!(
            example.contains("\n# log_level: env only\nLOG_LEVEL=\n"),
            "{example}"
        );
    }
}
