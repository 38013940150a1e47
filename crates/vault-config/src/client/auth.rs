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

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
#[cfg(test)]
use serde_json::Value;

use crate::base::zeroize_value;
use crate::client::transport::{Repeat, Reply, Transport};
use crate::error::{Error, Result};
use crate::telemetry::{Count, Telemetry};

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

/// After logging in again because of a 403, not again for this long: when a
/// token may not even look itself up (a policy without `default`), a valid
/// token cannot be told from a revoked one, and this bounds the logins.
const RELOGIN_SPACING: Duration = Duration::from_secs(10);
/// The longest wait between failed logins.
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(300);

struct TokenState {
    token: SecretString,
    obtained: Instant,
    /// `None`: the token does not expire (or its TTL is unknown).
    ttl: Option<Duration>,
    /// The TTL the first grant gave: a renewal that gives much less has hit the max TTL.
    first_ttl: Option<Duration>,
    renewable: bool,
    /// A static token that can no longer be renewed: warned about once, then left be.
    settled: bool,
    /// A batch token: it cannot be revoked, and expires on its own.
    batch: bool,
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
    fn alive(&self) -> bool {
        self.remaining().is_none_or(|r| !r.is_zero())
    }
}

#[derive(Default)]
struct State {
    token: Option<TokenState>,
    /// An unwrapped AppRole secret ID.
    secret_id: Option<SecretString>,
    /// A static token was looked up (its TTL learned), or cannot be.
    looked_up: bool,
    /// A static token's lookup is under way, beside a request.
    lookup_in_flight: bool,
    warned_expiry: bool,
    /// Failed logins in a row, and no new attempt before `retry_at`.
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Error>,
    /// A fingerprint of credentials Vault refused: not sent again.
    rejected: Option<u64>,
    /// When the client last logged in again after a 403, successfully.
    relogged_at: Option<Instant>,
    /// Tokens this client logged in for and then replaced, left to expire
    /// with the leases made under them: [`Auth::logout`] revokes those still
    /// alive.
    retired: Vec<TokenState>,
}

/// Holds the token; logs in, renews and re-logs in as needed. The state lock is
/// held across a login, so concurrent requests wait for the one login in flight.
pub(crate) struct Auth {
    method: AuthMethod,
    telemetry: Telemetry,
    state: tokio::sync::Mutex<State>,
    status: Mutex<AuthStatus>,
    /// When the token is next due (renewal, replacement, or a login retry),
    /// readable without waiting for a login in flight.
    schedule: Mutex<Option<Instant>>,
    /// Bumped at each login: which token a lease was made under (leases
    /// die with their token).
    generation: AtomicU64,
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
                match self.renew(t, &ts.token).await {
                    Ok(Some((ttl, renewable))) => {
                        if let Some(ts) = &mut state.token {
                            ts.obtained = Instant::now();
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

    /// The token's TTL as `lookup-self` tells it; and whether that answer
    /// settles it (false only while Vault cannot be reached).
    async fn lookup_static(&self, t: &Transport, token: &SecretString) -> (TokenState, bool) {
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
                let ttl = data["ttl"]
                    .as_u64()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs);
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

    /// Logs in, unless a failed login's backoff is running or Vault already
    /// refused these very credentials; records the outcome in the status.
    async fn login(&self, t: &Transport, state: &mut State) -> Result<TokenState> {
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
            obtained: Instant::now(),
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

    fn bump(&self, f: impl FnOnce(&mut AuthStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn publish_status(&self, state: &State) {
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
    fn login_answer_parses() {
        let body = json!({"auth": {"client_token": "t", "lease_duration": 30, "renewable": true}});
        assert_eq!(parse_login(&body), Some(("t".to_owned(), Some(30), true)));
        assert_eq!(parse_login(&json!({"auth": null})), None);
    }

    #[test]
    fn mounts_and_names() {
        let m = AuthMethod::kubernetes("app").at_mount("/k8s-prod/");
        assert!(matches!(&m, AuthMethod::Kubernetes { mount, .. } if mount == "k8s-prod"));
        assert_eq!(m.name(), "kubernetes");
    }
}
