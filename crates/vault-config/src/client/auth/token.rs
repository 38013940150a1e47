//! `Auth`: the token a client holds, and its lifecycle. A static token is
//! looked up (its TTL learned) beside its first request and renewed while
//! renewable; a login's token is renewed at two thirds of its TTL and
//! replaced (a new login, `login.rs`) when a renewal comes back cut short,
//! and after a 403 once Vault says it is no longer valid. [`AuthStatus`] is
//! kept up to date for health.
//!
//! Uses the public types (`auth/mod.rs`) and the transport.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::client::auth::{AuthMethod, AuthState, AuthStatus};
use crate::client::transport::{Repeat, Reply, Transport};
use crate::error::{Error, Result};
use crate::telemetry::{Count, Telemetry};

/// After logging in again because of a 403, not again for this long: when a
/// token may not even look itself up (a policy without `default`), a valid
/// token cannot be told from a revoked one, and this bounds the logins.
const RELOGIN_SPACING: Duration = Duration::from_secs(10);

pub(super) struct TokenState {
    pub(super) token: SecretString,
    pub(super) obtained: Instant,
    /// `None`: the token does not expire (or its TTL is unknown).
    pub(super) ttl: Option<Duration>,
    /// The TTL the first grant gave: a renewal that gives much less has hit the max TTL.
    pub(super) first_ttl: Option<Duration>,
    pub(super) renewable: bool,
    /// A static token that can no longer be renewed: warned about once, then left be.
    pub(super) settled: bool,
    /// A batch token: it cannot be revoked, and expires on its own.
    pub(super) batch: bool,
}

impl TokenState {
    fn remaining(&self) -> Option<Duration> {
        self.ttl
            .map(|ttl| ttl.saturating_sub(self.obtained.elapsed()))
    }

    /// How long until two thirds of its TTL have passed (`None`: never due).
    fn due_in(&self) -> Option<Duration> {
        if self.settled {
            return None;
        }
        let ttl = self.ttl?;
        Some(
            ttl.mul_f64(2.0 / 3.0)
                .saturating_sub(self.obtained.elapsed()),
        )
    }

    /// Past two thirds of its TTL.
    fn due(&self) -> bool {
        self.due_in().is_some_and(|d| d.is_zero())
    }

    /// Not known to have expired (a token without a TTL always is).
    pub(super) fn alive(&self) -> bool {
        self.remaining().is_none_or(|r| !r.is_zero())
    }
}

/// The time a token has left, from its lookup (`None`: it does not
/// expire). Vault's `ttl` counts from its clock rounded to the second, so
/// it may say up to half a second more than is left: that half second is
/// taken off. A `ttl` of 0 with an `expire_time` is a token about to
/// expire (due now), not one that never does.
fn looked_up_ttl(data: &serde_json::Value) -> Option<Duration> {
    let expires = data["expire_time"].is_string();
    match data["ttl"].as_u64() {
        Some(0) | None if expires => Some(Duration::ZERO),
        Some(s) if s > 0 => Some(Duration::from_secs(s).saturating_sub(Duration::from_millis(500))),
        _ => None,
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) token: Option<TokenState>,
    /// An unwrapped AppRole secret ID.
    pub(super) secret_id: Option<SecretString>,
    /// A static token was looked up (its TTL learned), or cannot be.
    pub(super) looked_up: bool,
    /// A static token's lookup is under way, beside a request.
    pub(super) lookup_in_flight: bool,
    pub(super) warned_expiry: bool,
    /// Failed logins in a row, and no new attempt before `retry_at`.
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) last_error: Option<Error>,
    /// A fingerprint of credentials Vault refused: not sent again.
    pub(super) rejected: Option<u64>,
    /// When the client last logged in again after a 403, successfully.
    pub(super) relogged_at: Option<Instant>,
    /// Tokens this client logged in for and then replaced, left to expire
    /// with the leases made under them: [`Auth::logout`] revokes those still
    /// alive.
    pub(super) retired: Vec<TokenState>,
}

/// Holds the token; logs in, renews and re-logs in as needed. The state lock is
/// held across a login, so concurrent requests wait for the one login in flight.
pub(crate) struct Auth {
    pub(super) method: AuthMethod,
    pub(super) telemetry: Telemetry,
    pub(super) state: tokio::sync::Mutex<State>,
    pub(super) status: Mutex<AuthStatus>,
    /// When the token is next due (renewal, replacement, or a login retry),
    /// readable without waiting for a login in flight.
    pub(super) schedule: Mutex<Option<Instant>>,
    /// Bumped at each login: which token a lease was made under (leases
    /// die with their token).
    pub(super) generation: AtomicU64,
}
impl Auth {
    /// `credentials` says where they come from, for logs and health.
    pub(crate) fn new(method: AuthMethod, credentials: String, telemetry: Telemetry) -> Self {
        tracing::debug!(method = method.name(), credentials = %credentials, "vault-config: client set up to authenticate to Vault");
        let status = AuthStatus {
            method: method.name(),
            credentials,
            ..AuthStatus::default()
        };
        Auth {
            method,
            telemetry,
            state: tokio::sync::Mutex::new(State::default()),
            status: Mutex::new(status),
            schedule: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// Which token is in use: it changes at each login, never otherwise.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Puts a token from a login in place; returns the one it replaces.
    fn install(&self, state: &mut State, fresh: TokenState) -> Option<TokenState> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        state.token.replace(fresh)
    }

    pub(crate) fn method(&self) -> &AuthMethod {
        &self.method
    }

    pub(crate) fn can_login(&self) -> bool {
        self.method.can_login()
    }

    pub(crate) fn status(&self) -> AuthStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long until the token needs renewing or replacing (or a failed
    /// login may be tried again); `None` when nothing is scheduled. Never
    /// waits for a login in flight.
    pub(crate) fn due_in(&self) -> Option<Duration> {
        let at = (*self.schedule.lock().unwrap_or_else(PoisonError::into_inner))?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// What [`due_in`](Self::due_in) reads: a login retry while there is no
    /// token (or it is due), else the token's own renewal time.
    fn reschedule(&self, state: &State) {
        let now = Instant::now();
        let token_due = state.token.as_ref().and_then(TokenState::due_in);
        let at = match (
            state.token.is_none() || token_due.is_some_and(|d| d.is_zero()),
            state.retry_at,
        ) {
            (true, Some(retry)) => Some(retry),
            _ => token_due.and_then(|d| now.checked_add(d)),
        };
        *self.schedule.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// Renews or replaces the token when it is due, and says whether that
    /// failed, even while the token still serves (a request would go on with
    /// it): a watcher backs its renewals off on that error instead of trying
    /// again at once.
    pub(crate) async fn refresh_due(&self, t: &Transport) -> Result<()> {
        let mut state = self.state.lock().await;
        let (due, expired) = match &state.token {
            None => (true, true),
            Some(ts) => (ts.due(), ts.remaining().is_some_and(|r| r.is_zero())),
        };
        let result = if due {
            self.refresh(t, &mut state, expired).await
        } else {
            Ok(())
        };
        self.publish_status(&state);
        result
    }

    /// A token good for the next request (logging in, or renewing, when due), and whether the caller should learn a static
    /// token's TTL ([`learn`](Self::learn)) beside its request: the first use
    /// of a static token sends its request at once instead of waiting for the
    /// lookup.
    pub(crate) async fn token_for_request(
        &self,
        t: &Transport,
    ) -> Result<(SecretString, bool, u64)> {
        let mut state = self.state.lock().await;
        let mut learn = false;
        if let AuthMethod::Token(token) = &self.method {
            if !state.looked_up && !state.lookup_in_flight {
                state.lookup_in_flight = true;
                learn = true;
                if state.token.is_none() {
                    state.token = Some(TokenState {
                        token: token.clone(),
                        obtained: Instant::now(),
                        ttl: None,
                        first_ttl: None,
                        renewable: false,
                        settled: false,
                        batch: false,
                    });
                }
            }
        }
        let (due, expired) = match &state.token {
            None => (true, true),
            Some(ts) => (ts.due(), ts.remaining().is_some_and(|r| r.is_zero())),
        };
        let refreshed = if due {
            self.refresh(t, &mut state, expired).await
        } else {
            Ok(())
        };
        self.publish_status(&state);
        if let Err(e) = refreshed {
            // A token that has not expired yet still serves while renewal or
            // a new login is failing (and backing off).
            let alive = state
                .token
                .as_ref()
                .is_some_and(|ts| ts.remaining().is_none_or(|r| !r.is_zero()));
            if !alive {
                return Err(e);
            }
            tracing::debug!(error = %e, "vault-config: renewing the token failed; it still serves until it expires");
        }
        let token = state
            .token
            .as_ref()
            .map(|ts| ts.token.clone())
            .ok_or_else(|| Error::Auth {
                method: self.method.name().to_owned(),
                reason: "no token".to_owned(),
            })?;
        // Read under the state lock: no login can slip in between.
        Ok((token, learn, self.generation()))
    }

    /// Learns a static token's TTL and renewability (`lookup-self`), outside
    /// the state lock, and records them; while Vault cannot be reached it is
    /// tried again at a later request.
    pub(crate) async fn learn(&self, t: &Transport) {
        let AuthMethod::Token(token) = &self.method else {
            return;
        };
        let (looked, settled) = self.lookup_static(t, token).await;
        let mut state = self.state.lock().await;
        state.lookup_in_flight = false;
        state.looked_up = settled;
        if settled {
            if let Some(ts) = state
                .token
                .as_mut()
                .filter(|ts| !ts.settled && ts.ttl.is_none())
            {
                ts.first_ttl = looked.first_ttl;
                ts.renewable = looked.renewable;
                ts.obtained = looked.obtained;
                ts.ttl = looked.ttl;
            }
        }
        self.publish_status(&state);
    }

    /// After a 403 with `used`: if that token is no longer valid (its own
    /// `lookup-self` is refused), log in again, once per token, and return the
    /// new one. `None` when the denial is the policy's (the token is valid, or
    /// the client re-logged in moments ago) or the method cannot log in.
    /// The new token comes with its [generation](Self::generation).
    pub(crate) async fn relogin(
        &self,
        t: &Transport,
        used: &SecretString,
    ) -> Result<Option<(SecretString, u64)>> {
        if !self.can_login() {
            return Ok(None);
        }
        let mut state = self.state.lock().await;
        match &state.token {
            // Another request already replaced it.
            Some(ts) if ts.token.expose_secret() != used.expose_secret() => {
                return Ok(Some((ts.token.clone(), self.generation())));
            }
            _ => {}
        }
        if state
            .relogged_at
            .is_some_and(|at| at.elapsed() < RELOGIN_SPACING)
        {
            return Ok(None);
        }
        match t
            .get("auth/token/lookup-self", &[], Some(used), Repeat::Safe)
            .await
        {
            // The token is fine: the path is not in its policy.
            Ok(Reply::Ok(_)) => return Ok(None),
            Err(Error::PermissionDenied { .. }) | Ok(Reply::NotFound) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(
            method = self.method.name(),
            "vault-config: the token is no longer valid (expired or revoked); logging in again"
        );
        match self.login(t, &mut state).await {
            Ok(fresh) => {
                state.relogged_at = Some(Instant::now());
                // It may still be valid (a policy that may not look itself
                // up): revoke it rather than leave it to pile up.
                if let Some(old) = self.install(&mut state, fresh) {
                    self.revoke(t, &old.token).await;
                }
            }
            Err(e) => {
                // The token is dead: drop it, so that requests wait for the
                // login backoff without sending anything.
                state.token = None;
                self.publish_status(&state);
                return Err(e);
            }
        }
        self.publish_status(&state);
        Ok(state
            .token
            .as_ref()
            .map(|ts| (ts.token.clone(), self.generation())))
    }

    /// Renews when renewable and not capped; else (or when the renewal comes
    /// back cut short by the max TTL) logs in again, leaving the token it
    /// replaces to expire with its leases; a static token that cannot be
    /// renewed is kept, with a warning.
    async fn refresh(&self, t: &Transport, state: &mut State, expired: bool) -> Result<()> {
        if let Some(ts) = &state.token {
            let capped =
                matches!((ts.ttl, ts.first_ttl), (Some(now), Some(first)) if now < first / 2);
            // A static token our clock thinks expired may still be alive
            // (Vault's clock decides): it is worth one renewal, as nothing
            // else can replace it.
            let try_renew = !expired || !self.can_login();
            if ts.renewable && try_renew && (!capped || !self.can_login()) {
                let first_ttl = ts.first_ttl;
                // The new TTL runs from a moment between this and the answer.
                let asked = Instant::now();
                match self.renew(t, &ts.token).await {
                    Ok(Some((ttl, renewable))) => {
                        if let Some(ts) = &mut state.token {
                            ts.obtained = asked;
                            ts.ttl = ttl;
                            ts.renewable = renewable;
                        }
                        state.failures = 0;
                        state.retry_at = None;
                        state.last_error = None;
                        self.telemetry.count(Count::TokenRenewal, 1);
                        self.bump(|s| {
                            s.renewals += 1;
                            s.state = AuthState::Ok;
                            s.login_failures = 0;
                            s.last_error = None;
                        });
                        // Cut short by the max TTL: log in now, while the
                        // token has (at least) a third of its life left for
                        // the leases made under it to be replaced.
                        let cut =
                            matches!((ttl, first_ttl), (Some(now), Some(first)) if now < first);
                        if !(cut && self.can_login()) {
                            return Ok(());
                        }
                    }
                    Ok(None) => {}
                    // Tried again later (the caller's backoff): the token is not given up.
                    Err(e) if e.is_transient() => {
                        self.telemetry.count(Count::TokenRenewalFailure, 1);
                        return Err(e);
                    }
                    Err(e) => {
                        self.telemetry.count(Count::TokenRenewalFailure, 1);
                        tracing::warn!(error = %e, "vault-config: token renewal failed");
                    }
                }
            }
        }
        if self.can_login() {
            let fresh = self.login(t, state).await?;
            if let Some(old) = self.install(state, fresh) {
                // Not revoked: that would revoke the leases made under it
                // before a watcher has replaced them. It is near its end;
                // a logout revokes it if it is still alive then.
                tracing::debug!(
                    expires_in_secs = old.remaining().map(|d| d.as_secs()),
                    "vault-config: the replaced token is left to expire, with the leases made under it"
                );
                state.retired.retain(TokenState::alive);
                state.retired.push(old);
            }
        } else if let Some(ts) = &mut state.token {
            if !state.warned_expiry {
                state.warned_expiry = true;
                tracing::warn!(
                    expires_in_secs = ts.remaining().map(|d| d.as_secs()),
                    "vault-config: the static Vault token cannot be renewed and will expire; give the service a new token or use AppRole"
                );
            }
            // Nothing more can be done for it: its expiry stays visible in the status.
            ts.renewable = false;
            ts.settled = true;
        }
        Ok(())
    }

    /// Revokes a token the client replaced, so tokens do not pile up in Vault.
    async fn revoke(&self, t: &Transport, token: &SecretString) {
        if let Err(e) = t
            .post(
                "auth/token/revoke-self",
                &json!({}),
                Some(token),
                Repeat::Safe,
            )
            .await
        {
            tracing::debug!(error = %e, "vault-config: revoking the replaced token failed; it will expire");
        }
    }
    /// The token's TTL as `lookup-self` tells it; and whether that answer
    /// settles it (false only while Vault cannot be reached).
    pub(super) async fn lookup_static(
        &self,
        t: &Transport,
        token: &SecretString,
    ) -> (TokenState, bool) {
        let mut ts = TokenState {
            token: token.clone(),
            obtained: Instant::now(),
            ttl: None,
            first_ttl: None,
            renewable: false,
            settled: false,
            batch: false,
        };
        let settled = match t
            .get("auth/token/lookup-self", &[], Some(token), Repeat::Safe)
            .await
        {
            Ok(Reply::Ok(body)) => {
                let data = &body["data"];
                let ttl = looked_up_ttl(data);
                ts.ttl = ttl;
                ts.first_ttl = ttl;
                ts.renewable = data["renewable"].as_bool().unwrap_or(false);
                self.bump(|s| s.state = AuthState::Ok);
                true
            }
            Err(e) if e.is_unavailable() => false,
            // A policy without `default` may not look itself up: the TTL stays
            // unknown, and the token is taken as it is.
            Ok(Reply::NotFound) | Err(_) => {
                self.bump(|s| s.state = AuthState::Ok);
                true
            }
        };
        (ts, settled)
    }

    async fn renew(
        &self,
        t: &Transport,
        token: &SecretString,
    ) -> Result<Option<(Option<Duration>, bool)>> {
        match t
            .post(
                "auth/token/renew-self",
                &json!({}),
                Some(token),
                Repeat::Safe,
            )
            .await?
        {
            Reply::Ok(body) => {
                let auth = &body["auth"];
                let ttl = auth["lease_duration"]
                    .as_u64()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs);
                Ok(Some((ttl, auth["renewable"].as_bool().unwrap_or(false))))
            }
            Reply::NotFound => Ok(None),
        }
    }

    pub(super) fn bump(&self, f: impl FnOnce(&mut AuthStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn publish_status(&self, state: &State) {
        self.reschedule(state);
        if let Some(left) = state.token.as_ref().and_then(TokenState::remaining) {
            self.telemetry
                .token_expiry(crate::base::unix_now().saturating_add(left.as_secs()));
        }
        let (expires, renewable) = match &state.token {
            Some(ts) => (ts.remaining().map(|d| d.as_secs()), ts.renewable),
            None => (None, false),
        };
        self.bump(|s| {
            s.expires_in_secs = expires;
            s.renewable = renewable;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_looked_up_ttl_is_never_more_than_is_left() {
        let expiring = |ttl: u64| json!({"ttl": ttl, "expire_time": "2026-12-08T03:00:00.5Z"});
        assert_eq!(
            looked_up_ttl(&expiring(6)),
            Some(Duration::from_millis(5_500))
        );
        assert_eq!(looked_up_ttl(&expiring(0)), Some(Duration::ZERO));
        // A root token, or any that never expires.
        assert_eq!(looked_up_ttl(&json!({"ttl": 0, "expire_time": null})), None);
        assert_eq!(looked_up_ttl(&json!({})), None);
    }
}
