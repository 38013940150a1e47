//! What Vault's answer means: [`Reply`] (a body, or nothing at the path),
//! or an [`Error`] and whether another try may fix it ([`Attempt`]); and how
//! errors are worded (paths without lease IDs, hints after a 404, the root
//! cause of a connection failure, never anything sent).
//!
//! A leaf of the transport: it uses only `error` and `telemetry` (path display).

use std::error::Error as StdError;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::telemetry::shown_path;

/// What a successful exchange with Vault produced.
pub(crate) enum Reply {
    /// 2xx with a JSON body (or none: `Null`).
    Ok(Value),
    /// 404: nothing at that path.
    NotFound,
}

/// One outcome of one attempt: done, worth another try, or redirected.
pub(super) enum Attempt {
    Done(Result<Reply>),
    /// Failed in a way another try may fix; `sent` when the request may have
    /// reached Vault (and so may have taken effect).
    Retry {
        error: Error,
        sent: bool,
        /// What a `Retry-After` asked for.
        after: Option<Duration>,
    },
    /// The node cannot serve this now (sealed, not the active node, no
    /// leader yet) and did not act on the request: another node, or the same
    /// one later, may.
    NodeDown(Error),
    /// A 307/308 to the `Location` given.
    Redirect(String),
}

/// Whether a request may be sent again once it may have reached Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, renewals, revocations: repeating them changes nothing more.
    Safe,
    /// Logins, unwrapping, leased reads: a repeat mints another token or lease,
    /// or fails because the first took effect. Retried only when the request
    /// never left (connection refused).
    Unsafe,
}

/// What Vault's answer means: a [`Reply`], or an error and whether it may
/// be tried again. `namespace` and `addr` (the address asked, as messages show
/// it) are named in errors.
pub(super) fn classify(
    status: StatusCode,
    body: Option<Value>,
    empty: bool,
    api_path: &str,
    namespace: Option<&str>,
    addr: &str,
) -> std::result::Result<Reply, (Error, Retryable)> {
    let errors = || vault_errors(body.as_ref());
    if status.is_success() {
        return match body {
            Some(v) => Ok(Reply::Ok(v)),
            None if empty => Ok(Reply::Ok(Value::Null)),
            None => Err((
                Error::Malformed {
                    path: path_only(api_path),
                    reason: format!("status {status} with a body that is not JSON"),
                },
                Retryable::No,
            )),
        };
    }
    let path = path_only(api_path);
    let text = errors().join(" ").to_ascii_lowercase();
    match status {
        // Nothing at the path answers 404 with no error; an unknown mount
        // ("no handler for route") or namespace ("namespace not found")
        // answers 404 with one, and is an error, not an absent secret.
        StatusCode::NOT_FOUND if errors().is_empty() => Ok(Reply::NotFound),
        StatusCode::NOT_FOUND => Err((
            Error::Vault {
                status: 404,
                path,
                errors: errors()
                    .into_iter()
                    .chain([not_found_hint(&errors(), namespace)])
                    .collect(),
            },
            Retryable::No,
        )),
        StatusCode::FORBIDDEN => Err((
            Error::PermissionDenied {
                path,
                namespace: namespace.map(str::to_owned),
            },
            Retryable::No,
        )),
        // A standby that has not reached the state asked for, and cannot
        // forward (no active node): another node, or later, may serve.
        StatusCode::PRECONDITION_FAILED => Err((
            Error::Vault {
                status: 412,
                path,
                errors: errors(),
            },
            Retryable::NodeDown,
        )),
        // This node is sealed: another node (or this one, unsealed) may serve.
        StatusCode::SERVICE_UNAVAILABLE if text.contains("sealed") => Err((
            Error::Sealed {
                addr: addr.to_owned(),
            },
            Retryable::NodeDown,
        )),
        // A standby without a leader to forward to (a failover under way):
        // it did not act on the request.
        s if s.is_server_error()
            && (text.contains("node not active")
                || text.contains("active cluster node not found")
                || text.contains("no active")) =>
        {
            Err((
                Error::Vault {
                    status: s.as_u16(),
                    path,
                    errors: errors(),
                },
                Retryable::NodeDown,
            ))
        }
        s => Err((
            Error::Vault {
                status: s.as_u16(),
                path,
                errors: errors(),
            },
            if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
                Retryable::Yes
            } else {
                Retryable::No
            },
        )),
    }
}

/// What a failed exchange (nothing, or no whole answer, came back from
/// `addr`) makes of the request.
pub(super) fn transport_error(
    e: &reqwest::Error,
    api_path: &str,
    addr: &str,
    timeout: Duration,
    tls_settings: &str,
) -> Attempt {
    let addr = addr.to_owned();
    if e.is_timeout() {
        return Attempt::Done(Err(Error::Timeout {
            addr,
            path: path_only(api_path),
            after: timeout,
        }));
    }
    let reason = root_cause(e);
    if looks_like_tls(e) {
        return Attempt::Done(Err(Error::Tls {
            addr,
            reason,
            settings: tls_settings.to_owned(),
        }));
    }
    if e.is_connect() {
        // Nothing reached Vault: always safe to try again, here or elsewhere.
        return Attempt::NodeDown(Error::Connect { addr, reason });
    }
    if e.is_request() || e.is_body() {
        return Attempt::Retry {
            error: Error::Connect { addr, reason },
            sent: true,
            after: None,
        };
    }
    Attempt::Done(Err(Error::Connect { addr, reason }))
}

/// Whether a failed exchange may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retryable {
    No,
    /// It may have been acted on: only what is safe to repeat is.
    Yes,
    /// The node did not act on it: anything may be tried again.
    NodeDown,
}

impl From<std::result::Result<Reply, (Error, Retryable)>> for Attempt {
    fn from(r: std::result::Result<Reply, (Error, Retryable)>) -> Self {
        match r {
            Ok(reply) => Attempt::Done(Ok(reply)),
            Err((error, Retryable::Yes)) => Attempt::Retry {
                error,
                sent: true,
                after: None,
            },
            Err((error, Retryable::NodeDown)) => Attempt::NodeDown(error),
            Err((e, Retryable::No)) => Attempt::Done(Err(e)),
        }
    }
}

/// The API path, for messages and logs (kept apart from any query since paths
/// are encoded), without a lease's ID.
pub(super) fn path_only(api_path: &str) -> String {
    shown_path(api_path).to_owned()
}

/// What to check after a 404 that names an error.
fn not_found_hint(errors: &[String], namespace: Option<&str>) -> String {
    let text = errors.join(" ").to_ascii_lowercase();
    if text.contains("namespace") {
        match namespace {
            Some(ns) => {
                format!("check the namespace `{ns}` (VAULT_NAMESPACE): Vault does not know it")
            }
            None => "check the namespace (VAULT_NAMESPACE)".to_owned(),
        }
    } else if text.contains("no handler") || text.contains("route") {
        "no secrets engine is mounted there: check the mount (VAULT_KV_MOUNT or the struct's `mount`) and the namespace".to_owned()
    } else {
        "Vault found nothing to answer this request".to_owned()
    }
}

/// `error`, saying that the request was not sent again and why.
pub(super) fn not_repeated(error: Error, method: &Method, api_path: &str) -> Error {
    let note = format!(
        "not retried: {method} {} may have taken effect, and repeating it could mint another token or lease, or burn a single-use credential",
        shown_path(api_path)
    );
    match error {
        Error::Vault {
            status,
            path,
            mut errors,
        } => {
            errors.push(note);
            Error::Vault {
                status,
                path,
                errors,
            }
        }
        Error::Connect { addr, reason } => Error::Connect {
            addr,
            reason: format!("{reason}; {note}"),
        },
        other => other,
    }
}

/// Vault's `{"errors": [...]}`.
fn vault_errors(body: Option<&Value>) -> Vec<String> {
    body.and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The innermost cause's text ("Connection refused (os error 111)"): it names
/// neither the URL nor anything sent.
pub(super) fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn StdError = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn looks_like_tls(e: &reqwest::Error) -> bool {
    let mut cause: Option<&dyn StdError> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string().to_ascii_lowercase();
        if [
            "certificate",
            "tls",
            "handshake",
            "invalid peer",
            "unknownissuer",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Classified as a client in namespace `team` would.
    fn classify_as_team(
        status: StatusCode,
        body: Option<Value>,
        empty: bool,
        api_path: &str,
        _at: usize,
    ) -> std::result::Result<Reply, (Error, Retryable)> {
        classify(
            status,
            body,
            empty,
            api_path,
            Some("team"),
            "http://127.0.0.1:8200/",
        )
    }

    #[test]
    fn statuses_map_to_errors() {
        let sealed = classify_as_team(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(json!({"errors": ["Vault is sealed"]})),
            false,
            "p",
            0,
        );
        assert!(matches!(
            sealed,
            Err((Error::Sealed { .. }, Retryable::NodeDown))
        ));
        let denied = classify_as_team(
            StatusCode::FORBIDDEN,
            Some(json!({"errors": ["permission denied"]})),
            false,
            "secret/data/x",
            0,
        );
        match denied {
            Err((Error::PermissionDenied { path, namespace }, Retryable::No)) => {
                assert_eq!(path, "secret/data/x");
                assert_eq!(namespace.as_deref(), Some("team"));
            }
            _ => panic!("expected permission denied"),
        }
        assert!(matches!(
            classify_as_team(StatusCode::NOT_FOUND, None, true, "p", 0),
            Ok(Reply::NotFound)
        ));
        assert!(matches!(
            classify_as_team(
                StatusCode::NOT_FOUND,
                Some(json!({"errors": []})),
                false,
                "p",
                0
            ),
            Ok(Reply::NotFound)
        ));
        let unknown_ns = classify_as_team(
            StatusCode::NOT_FOUND,
            Some(json!({"errors": ["namespace not found"]})),
            false,
            "secret/data/x",
            0,
        );
        match unknown_ns {
            Err((
                Error::Vault {
                    status: 404,
                    errors,
                    ..
                },
                Retryable::No,
            )) => {
                assert!(
                    errors.iter().any(|e| e.contains("namespace `team`")),
                    "{errors:?}"
                );
            }
            other => panic!("expected an error, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            classify_as_team(StatusCode::BAD_GATEWAY, None, true, "p", 0),
            Err((Error::Vault { status: 502, .. }, Retryable::Yes))
        ));
        assert!(matches!(
            classify_as_team(StatusCode::TOO_MANY_REQUESTS, None, true, "p", 0),
            Err((_, Retryable::Yes))
        ));
        assert!(matches!(
            classify_as_team(StatusCode::BAD_REQUEST, None, true, "p", 0),
            Err((Error::Vault { status: 400, .. }, Retryable::No))
        ));
        assert!(matches!(
            classify_as_team(StatusCode::OK, None, false, "p", 0),
            Err((Error::Malformed { .. }, Retryable::No))
        ));
    }
}
