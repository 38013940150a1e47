//! One login per method: AppRole (a plain secret ID, a response-wrapped
//! one unwrapped once, or a file read at each login), JWT and Kubernetes (a
//! token file read at each login); the backoff after a failed login, and
//! credentials Vault refused, which are not sent again.
//!
//! Methods of `Auth` (`token.rs`), which calls [`login`](Auth::login) when a
//! token is due or dead; uses the public types and the transport.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
#[cfg(test)]
use serde_json::Value;

use crate::base::zeroize_value;
use crate::client::auth::token::{Auth, State, TokenState};
use crate::client::auth::{AuthMethod, AuthState, SecretId};
use crate::client::transport::{Repeat, Reply, Transport};
use crate::error::{Error, Result};

/// The longest wait between failed logins.
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(300);

impl Auth {
    /// Logs in, unless a failed login's backoff is running or Vault already
    /// refused these very credentials; records the outcome in the status.
    pub(super) async fn login(&self, t: &Transport, state: &mut State) -> Result<TokenState> {
        if let Some(at) = state.retry_at {
            if Instant::now() < at {
                if let Some(e) = &state.last_error {
                    return Err(e.clone());
                }
            }
        }
        let outcome = self.try_login(t, state).await;
        self.telemetry.login(match &outcome {
            Ok(_) => "ok",
            Err((_, Some(_))) => "refused",
            Err(_) => "failed",
        });
        match &outcome {
            Ok(_) => {
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                state.rejected = None;
                self.bump(|s| {
                    s.logins += 1;
                    s.state = AuthState::Ok;
                    s.login_failures = 0;
                    s.last_error = None;
                });
            }
            Err((e, rejected)) => {
                state.failures = state.failures.saturating_add(1);
                let wait = Duration::from_secs(1)
                    .saturating_mul(1 << (state.failures - 1).min(9))
                    .min(MAX_LOGIN_BACKOFF);
                state.retry_at = Instant::now().checked_add(wait);
                state.last_error = Some(e.clone());
                if let Some(fp) = rejected {
                    state.rejected = Some(*fp);
                }
                let failures = state.failures;
                let text = e.to_string();
                let refused = rejected.is_some();
                tracing::warn!(
                    method = self.method.name(),
                    failures,
                    retry_in_secs = wait.as_secs(),
                    refused,
                    error = %text,
                    "vault-config: login failed"
                );
                self.bump(|s| {
                    s.state = if refused {
                        AuthState::Rejected
                    } else {
                        AuthState::Failing
                    };
                    s.login_failures = failures;
                    s.last_error = Some(text);
                });
            }
        }
        outcome.map_err(|(e, _)| e)
    }

    /// One login. On failure: the error, and the fingerprint of the
    /// credentials when Vault refused them.
    async fn try_login(
        &self,
        t: &Transport,
        state: &mut State,
    ) -> std::result::Result<TokenState, (Error, Option<u64>)> {
        let plain = |e| (e, None);
        let (mount, mut body, fp) = match &self.method {
            AuthMethod::Token(token) => return Ok(self.lookup_static(t, token).await.0),
            AuthMethod::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let secret = self.secret_id(t, secret_id, state).await?;
                let fp = fingerprint(&[role_id, secret.expose_secret()]);
                (
                    mount,
                    json!({"role_id": role_id, "secret_id": secret.expose_secret()}),
                    fp,
                )
            }
            AuthMethod::Jwt {
                mount,
                role,
                jwt_file,
            } => {
                let jwt = read_credential(jwt_file, "JWT").await.map_err(plain)?;
                let fp = fingerprint(&[role, &jwt]);
                (mount, json!({"role": role, "jwt": jwt}), fp)
            }
            AuthMethod::Kubernetes {
                mount,
                role,
                token_file,
            } => {
                let jwt = read_credential(token_file, "service-account token")
                    .await
                    .map_err(plain)?;
                let fp = fingerprint(&[role, &jwt]);
                (mount, json!({"role": role, "jwt": jwt}), fp)
            }
        };
        if state.rejected == Some(fp) {
            zeroize_value(&mut body);
            return Err((
                self.auth_error(format!(
                    "Vault refused these credentials before, so they are not sent again (each failed login counts toward Vault's lockout of the role); {}",
                    self.renew_hint()
                )),
                Some(fp),
            ));
        }
        let path = format!("auth/{mount}/login");
        // The token's TTL runs from a moment between this and the answer.
        let asked = Instant::now();
        let reply = t.post(&path, &body, None, Repeat::Unsafe).await;
        zeroize_value(&mut body);
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                let refused = matches!(
                    &e,
                    Error::PermissionDenied { .. } | Error::Vault { status: 400, .. }
                );
                let e = self.login_error(e);
                return Err((e, refused.then_some(fp)));
            }
        };
        let Reply::Ok(body) = reply else {
            return Err(plain(self.auth_error(format!(
                "no auth method is mounted at `auth/{mount}`"
            ))));
        };
        let auth = &body["auth"];
        let token = auth["client_token"].as_str().ok_or_else(|| {
            plain(self.auth_error("the login answer holds no client_token".to_owned()))
        })?;
        let ttl = auth["lease_duration"]
            .as_u64()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        tracing::debug!(method = self.method.name(), mount = %mount, ttl_secs = ttl.map(|d| d.as_secs()), "vault-config: logged in");
        Ok(TokenState {
            token: SecretString::from(token.to_owned()),
            obtained: asked,
            ttl,
            first_ttl: ttl,
            renewable: auth["renewable"].as_bool().unwrap_or(false),
            settled: false,
            batch: auth["token_type"].as_str() == Some("batch"),
        })
    }

    /// What to do once Vault refused the method's credentials.
    fn renew_hint(&self) -> &'static str {
        match &self.method {
            AuthMethod::AppRole {
                secret_id: SecretId::File(_),
                ..
            } => "write a new secret ID to its file",
            AuthMethod::AppRole { .. } => {
                "give the service a new secret ID and restart it (check that the role ID is right)"
            }
            AuthMethod::Jwt { .. } | AuthMethod::Kubernetes { .. } => {
                "a new JWT in its file is tried (check the role's bound claims)"
            }
            AuthMethod::Token(_) => "give the service a new token",
        }
    }

    async fn secret_id(
        &self,
        t: &Transport,
        source: &SecretId,
        state: &mut State,
    ) -> std::result::Result<SecretString, (Error, Option<u64>)> {
        match source {
            SecretId::Plain(s) => Ok(s.clone()),
            SecretId::File(path) => read_credential(path, "AppRole secret ID")
                .await
                .map(SecretString::from)
                .map_err(|e| (e, None)),
            SecretId::Wrapped(wrapping) => {
                if let Some(s) = &state.secret_id {
                    return Ok(s.clone());
                }
                let fp = fingerprint(&[wrapping.expose_secret()]);
                if state.rejected == Some(fp) {
                    return Err((
                        self.auth_error(
                            "the wrapped secret ID was refused before and a wrapping token works once; issue a new one".to_owned(),
                        ),
                        Some(fp),
                    ));
                }
                let reply = t
                    .post(
                        "sys/wrapping/unwrap",
                        &json!({}),
                        Some(wrapping),
                        Repeat::Unsafe,
                    )
                    .await
                    .map_err(|e| match e {
                        // Vault refused the wrapping token itself (a 5xx or a
                        // lost answer is not a refusal: it is not marked).
                        Error::Vault { status: 400, errors, .. } => (self.auth_error(format!(
                            "the wrapped secret ID cannot be unwrapped ({}): a wrapping token works once; issue a new one",
                            errors.join("; ").trim()
                        )), Some(fp)),
                        Error::PermissionDenied { .. } => (self.auth_error(
                            "the wrapped secret ID cannot be unwrapped: the wrapping token is expired, already used or not a wrapping token; issue a new one".to_owned(),
                        ), Some(fp)),
                        other => (other, None),
                    })?;
                let Reply::Ok(mut body) = reply else {
                    return Err((
                        self.auth_error("the unwrap answer is empty".to_owned()),
                        None,
                    ));
                };
                let secret = body["data"]["secret_id"].as_str().map(str::to_owned);
                zeroize_value(&mut body);
                let secret = secret.ok_or_else(|| {
                    (
                        self.auth_error("the wrapped response holds no secret_id".to_owned()),
                        None,
                    )
                })?;
                let secret = SecretString::from(secret);
                state.secret_id = Some(secret.clone());
                Ok(secret)
            }
        }
    }

    fn login_error(&self, e: Error) -> Error {
        match e {
            Error::Vault { errors, .. } => self.auth_error(format!(
                "Vault refused the login: {}",
                errors.join("; ").trim()
            )),
            Error::PermissionDenied { .. } => self.auth_error(
                "Vault refused the login: permission denied (check the role and its credentials)"
                    .to_owned(),
            ),
            other => other,
        }
    }

    fn auth_error(&self, reason: String) -> Error {
        Error::Auth {
            method: self.method.name().to_owned(),
            reason,
        }
    }
}

/// A fingerprint of credentials, to recognise ones Vault refused without
/// keeping them: a hash, in memory only.
fn fingerprint(parts: &[&str]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Reads a credential file (trimmed), without blocking the runtime.
async fn read_credential(path: &PathBuf, what: &str) -> Result<String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| Error::Auth {
            method: what.to_owned(),
            reason: format!("the {what} file {} cannot be read: {e}", path.display()),
        })?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(Error::Auth {
            method: what.to_owned(),
            reason: format!("the {what} file {} is empty", path.display()),
        });
    }
    Ok(text)
}

/// Parses a login answer's `auth` block (unit-testable).
#[cfg(test)]
fn parse_login(body: &Value) -> Option<(String, Option<u64>, bool)> {
    let auth = &body["auth"];
    Some((
        auth["client_token"].as_str()?.to_owned(),
        auth["lease_duration"].as_u64(),
        auth["renewable"].as_bool().unwrap_or(false),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answer_parses() {
        let body = json!({"auth": {"client_token": "t", "lease_duration": 30, "renewable": true}});
        assert_eq!(parse_login(&body), Some(("t".to_owned(), Some(30), true)));
        assert_eq!(parse_login(&json!({"auth": null})), None);
    }
}
