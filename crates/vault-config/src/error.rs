//! The one error type of the crate.

use std::time::Duration;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring a client or reading from Vault.
///
/// Every variant's text says what happened and what to check. None ever holds
/// a token or a secret value: paths, addresses, env var names and Vault's own
/// error strings only.
///
/// ```
/// # async fn demo(client: vault_config::VaultClient) {
/// use vault_config::Error;
/// match client.read("secret", "database").await {
///     Ok(secret) => println!("version {:?}", secret.version()),
///     Err(Error::NotFound { .. }) => println!("nothing written yet"),
///     Err(e) if e.is_unavailable() => println!("Vault is down: {e}"),
///     Err(e) => println!("{e}"),
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client setting is missing or invalid (reported when the client is built).
    #[error("invalid Vault client setting `{setting}`: {reason}")]
    Config {
        /// The setting, as its env var name (`VAULT_ADDR`) or builder method.
        setting: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Nothing answered at the Vault address.
    #[error(
        "cannot connect to Vault at {addr}: {reason}; check that the address is right and that Vault is running"
    )]
    Connect {
        /// The Vault address tried.
        addr: String,
        /// The underlying cause (e.g. "connection refused").
        reason: String,
    },
    /// The TLS handshake with Vault failed.
    #[error("TLS handshake with Vault at {addr} failed: {reason}; check {settings} and the address scheme")]
    Tls {
        /// The Vault address tried.
        addr: String,
        /// The underlying cause.
        reason: String,
        /// The client's TLS settings, by their env names (`VAULT_CACERT,
        /// VAULT_CLIENT_CERT/VAULT_CLIENT_KEY`, or the prefixed names).
        settings: String,
    },
    /// Vault did not answer within the request timeout.
    #[error("Vault at {addr} did not answer a request for `{path}` within {after:?}")]
    Timeout {
        /// The Vault address tried.
        addr: String,
        /// The API path requested (below `/v1/`).
        path: String,
        /// The timeout in force.
        after: Duration,
    },
    /// Vault is sealed and serves no secrets until an operator unseals it.
    #[error("Vault at {addr} is sealed; unseal it (`bao operator unseal` / `vault operator unseal`) and retry")]
    Sealed {
        /// The Vault address.
        addr: String,
    },
    /// The token's policies do not allow the request.
    #[error(
        "permission denied for `{path}`{}: the token's policies do not grant `{}` on that path, or the token expired",
        ns_suffix(.namespace),
        capability_for(.path)
    )]
    PermissionDenied {
        /// The API path denied (below `/v1/`), e.g. `secret/data/database`.
        path: String,
        /// The namespace the request was sent in, if any.
        namespace: Option<String>,
    },
    /// No secret exists at the path (or its pinned version was deleted).
    #[error(
        "no secret at `{path}` on mount `{mount}`{}{}: write it (`bao kv put -mount={mount} {path} KEY=value`) or fix the path",
        version_suffix(.version),
        ns_suffix(.namespace)
    )]
    NotFound {
        /// The KV mount.
        mount: String,
        /// The secret path inside the mount.
        path: String,
        /// The pinned version asked for, if any.
        version: Option<u64>,
        /// The namespace the request was sent in, if any.
        namespace: Option<String>,
    },
    /// Vault answered with another error status.
    #[error("Vault answered {status} for `{path}`: {}", join_errors(.errors))]
    Vault {
        /// The HTTP status code.
        status: u16,
        /// The API path requested (below `/v1/`).
        path: String,
        /// Vault's `errors` strings.
        errors: Vec<String>,
    },
    /// Vault answered, but not with what a KV read returns.
    #[error("malformed response from Vault for `{path}`: {reason}")]
    Malformed {
        /// The API path requested (below `/v1/`).
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Vault is turned off (`VAULT_ENABLED=false`) and a direct read was asked for.
    #[error("Vault is disabled ({setting}=false); no request was sent for `{path}`")]
    Disabled {
        /// The path that would have been read.
        path: String,
        /// The variable that turned it off (`VAULT_ENABLED`, `AION_VAULT_ENABLED`).
        setting: String,
    },
    /// A `path#key` mapping could not be understood.
    #[error("invalid mapping `{mapping}`: {reason}")]
    Mapping {
        /// The mapping as written.
        mapping: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Logging in to Vault failed, or the credentials cannot be used.
    #[error("Vault login ({method}) failed: {reason}")]
    Auth {
        /// The auth method (`approle`, `jwt`, `kubernetes`, `token`).
        method: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The watcher was shut down (or its task ended), so it cannot refresh.
    #[error("the vault-config watcher has stopped; nothing polls Vault any more")]
    WatcherStopped,
    /// A required configuration value was found nowhere.
    #[error("missing `{field}`: {}", missing_detail(.vault, .env_var))]
    Missing {
        /// The Rust field path, e.g. `database_url` or `keycloak.admin`.
        field: String,
        /// The Vault location tried, `mount/path#key`, if Vault was asked.
        vault: Option<String>,
        /// The env var tried, if the field has one.
        env_var: Option<String>,
    },
    /// A configuration value did not fit its field. Never shows the value itself.
    #[error("invalid `{field}`: {reason}{}", origin_suffix(.origin))]
    Invalid {
        /// The Rust field path (or configuration key).
        field: String,
        /// What was expected and what kind of value was found.
        reason: String,
        /// Where the value came from: `vault secret/data/database#port`, `env var PORT`, ...
        origin: Option<String>,
    },
    /// A TLS certificate and key that cannot be served: no certificate, no
    /// usable key, a key that does not match, or a certificate not valid
    /// now (see `tls::Identity`). Never quotes a certificate or the key.
    #[error("invalid TLS identity: {reason}")]
    Identity {
        /// What is wrong and what to do, naming the certificate by serial
        /// and common name.
        reason: String,
    },
}

impl Error {
    /// True when Vault could not be reached or cannot serve secrets right now
    /// (connection refused, timeout, sealed, a 502/503/504 from a proxy in
    /// front of it, or 429 too many requests): the cases in which a client in
    /// [`FallbackMode::Fallback`](crate::FallbackMode::Fallback) reads the environment instead.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::Sealed { .. }
                // A proxy or load balancer in front of Vault (bad gateway,
                // unavailable, gateway timeout), or Vault's rate limit.
                | Error::Vault {
                    status: 429 | 502 | 503 | 504,
                    ..
                }
        )
    }

    /// True for what may pass by itself: an outage, or a node that could not
    /// serve the request now (a redirect to a leader that is gone, a 5xx, a
    /// standby behind the state asked for). A renewal failing so is tried
    /// again later; one refused (4xx) is not.
    pub(crate) fn is_transient(&self) -> bool {
        self.is_unavailable()
            || matches!(self, Error::Vault { status, .. } if *status == 307 || *status == 412 || *status >= 500)
    }

    /// True when Vault answered and the values it holds do not make a
    /// valid config (a required key missing, a value of the wrong type): a
    /// watcher holds such a rotation back, but it is no outage, and the
    /// watcher keeps polling at its interval so that a fix shows at once.
    pub(crate) fn is_about_values(&self) -> bool {
        matches!(
            self,
            Error::Missing { .. } | Error::Invalid { .. } | Error::Identity { .. }
        )
    }

    /// Keeps the error to report of several: the first, unless an outage
    /// comes later (an outage outranks other errors: it decides fallback).
    pub(crate) fn keep_first(first: &mut Option<Error>, e: Error) {
        if first
            .as_ref()
            .is_none_or(|f| !f.is_unavailable() && e.is_unavailable())
        {
            *first = Some(e);
        }
    }

    pub(crate) fn config(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

fn missing_detail(vault: &Option<String>, env_var: &Option<String>) -> String {
    match (vault, env_var) {
        (Some(v), Some(e)) => format!("not found at vault {v}, and env {e} is not set"),
        (None, Some(e)) => format!("Vault was not read, and env {e} is not set"),
        (Some(v), None) => format!("not found at vault {v}"),
        (None, None) => "no configuration layer sets it".to_owned(),
    }
}

fn origin_suffix(origin: &Option<String>) -> String {
    match origin {
        Some(o) => format!(" (from {o})"),
        None => String::new(),
    }
}

/// `Debug` reads like `Display`: an `Error` returned from `main` prints what
/// to fix, not a struct dump.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The capability a request on `path` needs: lease renewals and revocations
/// are writes.
fn capability_for(path: &str) -> &'static str {
    if path.starts_with("sys/leases/") {
        "update"
    } else {
        "read"
    }
}

fn ns_suffix(ns: &Option<String>) -> String {
    match ns {
        Some(ns) => format!(" in namespace `{ns}`"),
        None => String::new(),
    }
}

fn version_suffix(v: &Option<u64>) -> String {
    match v {
        Some(v) => format!(" (version {v})"),
        None => String::new(),
    }
}

fn join_errors(errors: &[String]) -> String {
    let cleaned: Vec<String> = errors
        .iter()
        .map(|e| {
            e.split(['\n', '\t'])
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "*")
                .map(|s| s.trim_start_matches("* "))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .collect();
    if cleaned.is_empty() {
        "no error text".to_owned()
    } else {
        cleaned.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_multierror_text_is_flattened() {
        let e = Error::Vault {
            status: 400,
            path: "secret/data/x".into(),
            errors: vec!["1 error occurred:\n\t* bad thing\n\n".into()],
        };
        assert_eq!(
            e.to_string(),
            "Vault answered 400 for `secret/data/x`: 1 error occurred: bad thing"
        );
    }

    #[test]
    fn not_found_names_mount_path_version_and_namespace() {
        let e = Error::NotFound {
            mount: "agenticverz".into(),
            path: "database".into(),
            version: Some(3),
            namespace: Some("team-a".into()),
        };
        let text = e.to_string();
        assert!(
            text.contains("`database` on mount `agenticverz` (version 3) in namespace `team-a`"),
            "{text}"
        );
    }
}
