//! The one error type of the command line, the exit code of each kind,
//! and the target of its log lines.

use std::fmt;

use vault_config::Error;

/// What went wrong, as the exit code tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything else (an I/O error, a verification that failed).
    Other,
    /// The Vault settings (VAULT_ADDR, TLS files, a disabled Vault).
    Config,
    /// Vault cannot be reached: refused, timed out, TLS, unavailable.
    Connection,
    /// Vault is sealed.
    Sealed,
    /// Login failed, or the token is not valid.
    Authentication,
    /// The token may not do this.
    Denied,
    /// No such secret or key.
    NotFound,
    /// A key conflict, a key that is not a variable name, a value that cannot be used.
    Invalid,
    /// `exec`: the command is not executable.
    NotExecutable,
    /// `exec`: the command was not found.
    CommandNotFound,
}

impl Kind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Other => 1,
            Kind::Config => 3,
            Kind::Connection => 10,
            Kind::Sealed => 11,
            Kind::Authentication => 12,
            Kind::Denied => 13,
            Kind::NotFound => 14,
            Kind::Invalid => 15,
            Kind::NotExecutable => 126,
            Kind::CommandNotFound => 127,
        }
    }

    /// The name logs and `status --json` use (the seeds' `vault_connection_failed`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Other => "error",
            Kind::Config => "configuration_error",
            Kind::Connection => "vault_connection_failed",
            Kind::Sealed => "vault_sealed",
            Kind::Authentication => "vault_authentication_failed",
            Kind::Denied => "permission_denied",
            Kind::NotFound => "not_found",
            Kind::Invalid => "invalid",
            Kind::NotExecutable => "command_not_executable",
            Kind::CommandNotFound => "command_not_found",
        }
    }

    /// The kind of a library error.
    pub fn of(e: &Error) -> Kind {
        match e {
            Error::Sealed { .. } => Kind::Sealed,
            Error::Auth { .. } => Kind::Authentication,
            Error::PermissionDenied { .. } | Error::Vault { status: 403, .. } => Kind::Denied,
            Error::NotFound { .. } | Error::Missing { .. } => Kind::NotFound,
            Error::Vault { status: 404, .. } => Kind::NotFound,
            Error::Tls { .. } => Kind::Connection,
            Error::Config { .. } | Error::Disabled { .. } => Kind::Config,
            Error::Invalid { .. } | Error::Mapping { .. } | Error::Identity { .. } => Kind::Invalid,
            e if e.is_unavailable() => Kind::Connection,
            Error::Connect { .. } | Error::Timeout { .. } => Kind::Connection,
            _ => Kind::Other,
        }
    }
}

/// A failure of a command: its kind and what to tell the person.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::new(Kind::of(&e), e.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

/// The target of this command line's own log lines (the binary's crate is
/// named like the library's, so the default filter names this one).
pub const LOG: &str = "vault_config_cli";

/// What a command returns.
pub type Result<T, E = Failure> = std::result::Result<T, E>;
