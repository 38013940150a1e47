//! [`Origin`] and [`Resolved`]: where each value of a load came from.
//!
//! A leaf of the load layer: the snapshot produces them, the provider and
//! extraction report them. Uses nothing of the crate.

use std::fmt;

/// Where one configuration key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A key of a Vault secret.
    Vault {
        /// The namespace, if any.
        namespace: Option<String>,
        /// The API path read, e.g. `secret/data/database` (KV v2) or `kv/database` (KV v1).
        api_path: String,
        /// The key inside the secret.
        key: String,
        /// The KV v2 version read.
        version: Option<u64>,
        /// The env var that chose the path, when one did (`path_env`).
        path_env: Option<String>,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A key of a Vault secret that a `vault://PATH#KEY` [`Reference`](crate::Reference)
    /// named, where the value was written (an env var a field falls back to,
    /// a key of a figment given to
    /// [`refs_from`](crate::VaultProviderBuilder::refs_from)).
    Referenced {
        /// Where the reference was written: `env var DATABASE_URL`, `db.url in TOML file app.toml`.
        by: String,
        /// The [`Origin::Vault`] of the value read.
        vault: Box<Origin>,
    },
    /// A reference that could not be resolved: the load fails with an error
    /// naming `by` and `reference`; the reference is never used as a value.
    Unresolved {
        /// Where the reference was written.
        by: String,
        /// `vault://PATH#KEY`.
        reference: String,
        /// Why: `not at vault secret/data/database#KEY`, `Vault is disabled`.
        reason: String,
    },
    /// Neither: Vault lacked the key (or was not asked) and the env var is unset.
    /// Defaults, other layers of a framework, serde defaults or `Option` may still fill the key.
    Missing {
        /// The Vault location tried, as `mount/path#key`, if Vault was asked.
        vault: Option<String>,
        /// The env var tried.
        env_var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Vault {
                namespace,
                api_path,
                key,
                path_env,
                ..
            } => {
                f.write_str("vault ")?;
                if let Some(ns) = namespace {
                    write!(f, "{}/", ns.trim_matches('/'))?;
                }
                write!(f, "{api_path}#{key}")?;
                if let Some(var) = path_env {
                    write!(f, " (path from {var})")?;
                }
                Ok(())
            }
            Origin::Env { var } => write!(f, "env var {var}"),
            Origin::Referenced { by, vault } => write!(f, "{vault} (referenced by {by})"),
            Origin::Unresolved {
                by,
                reference,
                reason,
            } => write!(f, "unresolved reference {reference} in {by} ({reason})"),
            Origin::Missing {
                vault: Some(v),
                env_var,
            } if env_var.is_empty() => write!(f, "missing (not at vault {v})"),
            Origin::Missing {
                vault: Some(v),
                env_var,
            } => {
                write!(f, "missing (not at vault {v}, env {env_var} unset)")
            }
            Origin::Missing {
                vault: None,
                env_var,
            } => write!(f, "missing (env {env_var} unset)"),
        }
    }
}

/// One mapping of a fetch and where its value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The configuration key filled (dotted).
    pub key: String,
    /// Where its value came from.
    pub origin: Origin,
}
