//! Authentication: how the client gets its token, and keeps it alive.
//!
//! # Usage
//!
//! A token (`VAULT_TOKEN`, else `~/.vault-token`) is enough in development.
//! In production, log in with an [`AuthMethod`]: AppRole (with a plain,
//! response-wrapped or file [`SecretId`]), JWT or Kubernetes, set in code or
//! through the env contract (`VAULT_AUTH_METHOD`, see
//! [`VaultClient::from_env`](crate::VaultClient::from_env)).
//!
//! ```
//! use vault_config::{AuthMethod, SecretId, VaultClient};
//! let client = VaultClient::builder()
//!     .address("https://vault:8200")
//!     .auth(AuthMethod::approle("9f2c-role-id", SecretId::File("/run/secrets/secret-id".into())))
//!     .build()?;
//! # Ok::<(), vault_config::Error>(())
//! ```
//!
//! # Token lifecycle
//!
//! The client renews its token at two thirds of its TTL, logs in again as
//! soon as a renewal comes back cut short by the token's max TTL (or at two
//! thirds of a token that cannot be renewed), and after a 403 logs in once
//! more and retries once. A token replaced that way is left to expire on its
//! own rather than revoked: Vault revokes the leases made under a token with
//! it, and a [`Watcher`](crate::Watcher) holding such leases replaces them
//! under the new token in the old one's remaining life (at least a third of
//! its TTL). Concurrent requests wait for the one login in
//! flight. [`AuthStatus`] (in [`Health::token`](crate::Health::token)) shows
//! the method, logins, renewals and expiry, never the token.
//!
//! # Logging out
//!
//! A token from a login lives on in Vault after the process ends, for its
//! whole TTL (768 h by default), unless revoked.
//! [`VaultClient::logout`](crate::VaultClient::logout) revokes every token
//! the client logged in for that may still be alive (the one in use and the
//! ones it replaced), never a token it was given: call it at shutdown. Vault
//! revokes the leases made under a token with it, so call it once the
//! leased credentials are no longer used (after
//! [`Watcher::shutdown`](crate::Watcher::shutdown)). A client used after a
//! logout logs in again.

//!
//! # Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the public types: [`AuthMethod`], [`SecretId`], [`AuthStatus`], [`AuthState`] |
//! | `token.rs` | `Auth`: the token a client holds, its renewal and replacement, a re-login after a 403 |
//! | `login.rs` | one login per method (AppRole with a plain, wrapped or file secret ID, JWT, Kubernetes), its backoff, refused credentials |
//! | `logout.rs` | revoking the tokens a client logged in for |
//!
//! Imports run one way: `login.rs` and `logout.rs` → `token.rs` → `mod.rs`.
//! Auth uses the transport (`client/transport`), `base`, `error` and
//! `telemetry`; nothing else of the client.

mod login;
mod logout;
pub(crate) mod token;

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

/// Where a Kubernetes pod's service-account token is mounted.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How an AppRole secret ID is handed to the service.
#[derive(Clone)]
pub enum SecretId {
    /// The secret ID itself.
    Plain(SecretString),
    /// A response-wrapping token holding the secret ID: unwrapped once
    /// (`sys/wrapping/unwrap`) at the first login; the secret ID is then kept
    /// in memory only, behind `secrecy`.
    Wrapped(SecretString),
    /// A file holding the secret ID (as orchestrators mount it), read at each login.
    File(PathBuf),
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretId::Plain(_) => f.write_str("Plain([REDACTED])"),
            SecretId::Wrapped(_) => f.write_str("Wrapped([REDACTED])"),
            SecretId::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// How the client authenticates to Vault.
#[derive(Clone)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A token given as is (`VAULT_TOKEN` or `~/.vault-token`). Renewed while
    /// renewable; it cannot be replaced when it expires.
    Token(SecretString),
    /// AppRole login at `auth/<mount>/login`.
    AppRole {
        /// The auth mount (`approle` by default).
        mount: String,
        /// The role ID.
        role_id: String,
        /// The secret ID, plain, wrapped or in a file.
        secret_id: SecretId,
    },
    /// JWT/OIDC login at `auth/<mount>/login` with a JWT read from a file at each
    /// login (orchestrators rotate it).
    Jwt {
        /// The auth mount (`jwt` by default).
        mount: String,
        /// The Vault role.
        role: String,
        /// The file holding the JWT.
        jwt_file: PathBuf,
    },
    /// Kubernetes login at `auth/<mount>/login` with the pod's service-account token.
    Kubernetes {
        /// The auth mount (`kubernetes` by default).
        mount: String,
        /// The Vault role.
        role: String,
        /// The service-account token file ([`KUBERNETES_TOKEN_FILE`] by default).
        token_file: PathBuf,
    },
}

impl AuthMethod {
    /// AppRole at the default mount `approle`.
    pub fn approle(role_id: impl Into<String>, secret_id: SecretId) -> Self {
        AuthMethod::AppRole {
            mount: "approle".to_owned(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// JWT at the default mount `jwt`.
    pub fn jwt(role: impl Into<String>, jwt_file: impl Into<PathBuf>) -> Self {
        AuthMethod::Jwt {
            mount: "jwt".to_owned(),
            role: role.into(),
            jwt_file: jwt_file.into(),
        }
    }

    /// Kubernetes at the default mount `kubernetes`, reading the default token file.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        AuthMethod::Kubernetes {
            mount: "kubernetes".to_owned(),
            role: role.into(),
            token_file: PathBuf::from(KUBERNETES_TOKEN_FILE),
        }
    }

    /// The same method at auth mount `mount` (no effect on [`AuthMethod::Token`]).
    /// A mount with an empty, `.` or `..` segment is refused when the client is built.
    pub fn at_mount(mut self, new_mount: impl Into<String>) -> Self {
        let new_mount = new_mount.into().trim_matches('/').to_owned();
        match &mut self {
            AuthMethod::Token(_) => {}
            AuthMethod::AppRole { mount, .. }
            | AuthMethod::Jwt { mount, .. }
            | AuthMethod::Kubernetes { mount, .. } => *mount = new_mount,
        }
        self
    }

    /// `token`, `approle`, `jwt` or `kubernetes`.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Token(_) => "token",
            AuthMethod::AppRole { .. } => "approle",
            AuthMethod::Jwt { .. } => "jwt",
            AuthMethod::Kubernetes { .. } => "kubernetes",
        }
    }

    fn can_login(&self) -> bool {
        !matches!(self, AuthMethod::Token(_))
    }
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Token(_) => f.write_str("Token([REDACTED])"),
            AuthMethod::AppRole {
                mount,
                role_id,
                secret_id,
            } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .field("secret_id", secret_id)
                .finish(),
            AuthMethod::Jwt {
                mount,
                role,
                jwt_file,
            } => f
                .debug_struct("Jwt")
                .field("mount", mount)
                .field("role", role)
                .field("jwt_file", jwt_file)
                .finish(),
            AuthMethod::Kubernetes {
                mount,
                role,
                token_file,
            } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .field("token_file", token_file)
                .finish(),
        }
    }
}

/// Where authentication stands, as [`AuthStatus::state`] shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuthState {
    /// No token: nothing was sent so far, or the client logged out
    /// ([`VaultClient::logout`](crate::VaultClient::logout)) and logs in again
    /// at its next request.
    #[default]
    Pending,
    /// The client holds a token that worked.
    Ok,
    /// The last login failed (Vault unreachable, or an error); the client
    /// tries again after a backoff.
    Failing,
    /// Vault refused these credentials. They are not sent again (each failed
    /// login counts toward Vault's lockout of the role) until they change: a
    /// new secret ID or JWT in its file, or a restart with new ones.
    Rejected,
}

/// What the client knows about its token, for health checks. Holds no token.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AuthStatus {
    /// The auth method's name.
    pub method: &'static str,
    /// Where the credentials come from (`token from VAULT_TOKEN`, `approle
    /// (secret ID from file /run/secrets/secret-id)`): never the credentials.
    pub credentials: String,
    /// Whether the client is authenticated, failing to log in, or refused.
    pub state: AuthState,
    /// Logins so far.
    pub logins: u64,
    /// Renewals so far.
    pub renewals: u64,
    /// Failed logins in a row.
    pub login_failures: u32,
    /// Why the last login failed, until one succeeds.
    pub last_error: Option<String>,
    /// Seconds until the token expires, when it expires.
    pub expires_in_secs: Option<u64>,
    /// Whether the token can be renewed.
    pub renewable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_credentials() {
        let m = AuthMethod::approle(
            "role-123",
            SecretId::Plain(SecretString::from("s3cret-id".to_owned())),
        );
        let text = format!("{m:?}");
        assert!(
            text.contains("role-123") && !text.contains("s3cret-id"),
            "{text}"
        );
        let t = AuthMethod::Token(SecretString::from("hvs.tok".to_owned()));
        assert!(!format!("{t:?}").contains("hvs.tok"));
    }

    #[test]
    fn mounts_and_names() {
        let m = AuthMethod::kubernetes("app").at_mount("/k8s-prod/");
        assert!(matches!(&m, AuthMethod::Kubernetes { mount, .. } if mount == "k8s-prod"));
        assert_eq!(m.name(), "kubernetes");
    }
}
