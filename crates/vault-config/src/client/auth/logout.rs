//! Logging out: revoking the tokens a client logged in for (the one in use
//! and the ones it replaced), never a token it was given; bounded in time.
//!
//! Methods of `Auth` (`token.rs`); uses the public types and the transport.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::json;

use crate::client::auth::token::{Auth, TokenState};
use crate::client::auth::AuthState;
use crate::client::transport::{Repeat, Transport};
use crate::error::{Error, Result};

impl Auth {
    /// Revokes every token this client logged in for that may still be alive
    /// (the one in use, and the ones it replaced and left to expire), within
    /// `bound` in all; never a static token. A token Vault no longer accepts
    /// counts as revoked. The tokens revoked are forgotten, so the next
    /// request logs in again; one Vault could not be asked about is kept (and
    /// still used), for a later logout to try again.
    pub(crate) async fn logout(&self, t: &Transport, bound: Duration) -> Result<()> {
        if !self.can_login() {
            return Ok(());
        }
        let started = Instant::now();
        let Ok(mut state) = tokio::time::timeout(bound, self.state.lock()).await else {
            return Err(self.logout_timeout(t, bound));
        };
        let current = state.token.take();
        let retired: Vec<TokenState> = std::mem::take(&mut state.retired)
            .into_iter()
            .filter(|ts| ts.alive() && !ts.batch)
            .collect();
        let mut failure = None;
        let mut kept_current = None;
        let mut kept_retired = Vec::new();
        let mut revoked = 0u32;
        let tokens = current
            .into_iter()
            .filter(|ts| !ts.batch)
            .map(|ts| (true, ts))
            .chain(retired.into_iter().map(|ts| (false, ts)));
        for (is_current, ts) in tokens {
            let left = bound.saturating_sub(started.elapsed());
            let outcome = match tokio::time::timeout(left, self.revoke_self(t, &ts.token)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(self.logout_timeout(t, bound)),
            };
            match outcome {
                Ok(()) => revoked += 1,
                Err(e) => {
                    failure.get_or_insert(e);
                    if is_current {
                        kept_current = Some(ts);
                    } else {
                        kept_retired.push(ts);
                    }
                }
            }
        }
        state.token = kept_current;
        state.retired = kept_retired;
        state.relogged_at = None;
        if state.token.is_none() {
            self.bump(|s| s.state = AuthState::Pending);
        }
        self.publish_status(&state);
        match failure {
            None => {
                if revoked > 0 {
                    tracing::debug!(
                        method = self.method.name(),
                        revoked,
                        "vault-config: logged out (the tokens this client logged in for are revoked)"
                    );
                }
                Ok(())
            }
            Some(e) => {
                tracing::warn!(method = self.method.name(), error = %e, "vault-config: logging out failed; the token stays valid until it expires");
                Err(e)
            }
        }
    }

    /// `auth/token/revoke-self` for `token`; a token Vault no longer accepts
    /// (expired, revoked) is as good as revoked, and a batch token cannot be.
    async fn revoke_self(&self, t: &Transport, token: &SecretString) -> Result<()> {
        match t
            .post(
                "auth/token/revoke-self",
                &json!({}),
                Some(token),
                Repeat::Safe,
            )
            .await
        {
            Ok(_) | Err(Error::PermissionDenied { .. }) => Ok(()),
            Err(Error::Vault {
                status: 400,
                errors,
                ..
            }) if errors.iter().any(|m| m.contains("batch")) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn logout_timeout(&self, t: &Transport, bound: Duration) -> Error {
        Error::Timeout {
            addr: t.addr().to_owned(),
            path: "auth/token/revoke-self".to_owned(),
            after: bound,
        }
    }
}
