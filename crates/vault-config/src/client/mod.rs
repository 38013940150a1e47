//! [`VaultClient`]: the handle every read goes through, and the request path
//! (token, and one re-login after a 403).
//!
//! Its settings come from [`VaultClientBuilder`](crate::VaultClientBuilder)
//! (or the env contract, [`env`](mod@crate::env)); the KV calls are in
//! [`kv`](crate::kv), the lease calls in [`lease`](crate::lease).
//!
//! | file | what it holds | uses (inside the client) |
//! |---|---|---|
//! | `mod.rs` | [`VaultClient`], the handle, and the request path (token, one re-login after a 403) | auth, transport, names, extensions, fallback |
//! | `builder.rs` | [`VaultClientBuilder`](crate::VaultClientBuilder), and the constructors of [`VaultClient`] | mod.rs, auth, transport, names, fallback |
//! | `env.rs` | the env contract: variables read into a builder | builder, auth, names |
//! | `auth/` | auth methods, login, the token's lifecycle | transport |
//! | `transport/` | HTTP: addresses, failover, TLS, retries, statuses | names |
//! | `names.rs`, `fallback.rs`, `extensions.rs` | leaves: contract variable names, [`FallbackMode`], per-client state of the layers above | none |
//!
//! Imports run one way, down that table: the client uses `base`, `error`
//! and `telemetry`, never a layer above it (`engines`, `load`, `watch`).

pub mod auth;
pub(crate) mod builder;
pub mod env;
mod extensions;
pub(crate) mod fallback;
pub(crate) mod names;
pub(crate) mod transport;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::base::EnvSource;
use crate::base::KvVersion;
use crate::client::auth::token::Auth;
use crate::client::auth::AuthStatus;
use crate::client::extensions::Extensions;
use crate::client::fallback::FallbackMode;
use crate::client::names::ContractNames;
use crate::client::transport::{Repeat, Reply, Transport};
use crate::error::{Error, Result};
use crate::telemetry::{shown_path, Telemetry};

/// The KV mount used when none is configured.
pub const DEFAULT_KV_MOUNT: &str = "secret";
/// How long a KV read is served from the client's cache by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
pub use crate::client::transport::DEFAULT_TIMEOUT;

/// A client for Vault's (or OpenBao's) HTTP API, reading KV secrets.
///
/// Cheap to clone: clones share the connection pool, the mount-version
/// table and the cache.
///
/// ```no_run
/// # async fn demo() -> Result<(), vault_config::Error> {
/// use vault_config::{ExposeSecret, VaultClient};
/// let client = VaultClient::from_env()?; // VAULT_ADDR, VAULT_TOKEN, ...
/// let secret = client.read("secret", "database").await?;
/// let url = secret.data().expose_secret().get("DATABASE_URL");
/// # let _ = url; Ok(()) }
/// ```
#[derive(Clone)]
pub struct VaultClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Option<Transport>,
    pub(crate) auth: Option<Auth>,
    pub(crate) namespace: Option<String>,
    pub(crate) kv_mount: String,
    pub(crate) fallback_mode: FallbackMode,
    /// Whether a key Vault lacks reads its env var.
    pub(crate) env_fallback: bool,
    /// How long KV reads are cached (the cache itself is the KV engine's).
    pub(crate) cache_ttl: Duration,
    /// State the layers above keep per client (the KV cache, the watch hub).
    pub(crate) extensions: Extensions,
    /// Each mount's KV version: declared on the builder, or detected once.
    pub(crate) kv_versions: Mutex<HashMap<String, Arc<OnceCell<KvVersion>>>>,
    /// The mounts whose version the builder declared: never detected anew.
    pub(crate) declared_kv_versions: HashSet<String>,
    pub(crate) telemetry: Telemetry,
    pub(crate) env: EnvSource,
    pub(crate) names: ContractNames,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("VaultClient")
            .field("addresses", &i.transport.as_ref().map(Transport::addrs))
            .field("auth", &i.auth.as_ref().map(Auth::method))
            .field("namespace", &i.namespace)
            .field("kv_mount", &i.kv_mount)
            .field("enabled", &i.transport.is_some())
            .field("fallback_mode", &i.fallback_mode)
            .field("cache_ttl", &i.cache_ttl)
            .finish()
    }
}

impl VaultClient {
    /// The default KV mount of this client.
    pub fn kv_mount(&self) -> &str {
        &self.inner.kv_mount
    }

    /// The namespace requests are sent in, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// Vault's address in use (the one that answered last), or `None` when
    /// Vault is disabled.
    pub fn address(&self) -> Option<&str> {
        self.inner.transport.as_ref().map(Transport::addr)
    }

    /// Every configured address (one unless [`VaultClientBuilder::addresses`](crate::VaultClientBuilder::addresses)
    /// or `VAULT_ADDRS` named a cluster's nodes); none when Vault is disabled.
    pub fn addresses(&self) -> &[String] {
        self.inner.transport.as_ref().map_or(&[], Transport::addrs)
    }

    /// HTTP requests this client (and its clones) sent so far, retries and
    /// redirects included: what a load or a poll costs.
    pub fn requests_sent(&self) -> u64 {
        self.inner
            .transport
            .as_ref()
            .map_or(0, Transport::requests_sent)
    }

    /// How many times requests moved to another address (a failover).
    pub fn failovers(&self) -> u64 {
        self.inner
            .transport
            .as_ref()
            .map_or(0, Transport::failovers)
    }

    /// False when Vault is turned off (`VAULT_ENABLED=false`).
    pub fn is_enabled(&self) -> bool {
        self.inner.transport.is_some()
    }

    /// What a load does when Vault cannot be reached.
    pub fn fallback_mode(&self) -> FallbackMode {
        self.inner.fallback_mode
    }

    /// Whether a key Vault lacks reads its env var (see
    /// [`VaultClientBuilder::env_fallback`](crate::VaultClientBuilder::env_fallback)).
    pub fn env_fallback(&self) -> bool {
        self.inner.env_fallback
    }

    /// Where env fallback values are read from.
    pub fn env(&self) -> &EnvSource {
        &self.inner.env
    }

    /// The name of an env contract variable for this client: `VAULT_ENABLED`, or
    /// `AION_VAULT_ENABLED` for a prefixed client.
    pub(crate) fn contract_var(&self, suffix: &str) -> String {
        self.inner.names.vault(suffix)
    }

    /// The client's `T` (state of a layer above: the KV cache, the watch
    /// hub), made by `init` the first time; shared by every clone.
    pub(crate) fn extension<T: std::any::Any + Send + Sync>(
        &self,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        self.inner.extensions.get_or_init(init)
    }

    /// What the client knows about its token (none when Vault is disabled).
    pub fn auth_status(&self) -> Option<AuthStatus> {
        self.inner.auth.as_ref().map(Auth::status)
    }

    /// Revokes the tokens this client logged in for (AppRole, JWT,
    /// Kubernetes): the one in use, and any it replaced that may still be
    /// alive. A token it was given (`VAULT_TOKEN`, `~/.vault-token`,
    /// [`VaultClientBuilder::token`](crate::VaultClientBuilder::token)) is never revoked: for it, and for a
    /// client that has not logged in (or Vault turned off), this does nothing
    /// and returns `Ok`.
    ///
    /// Without it, every process that logged in leaves a live token behind for
    /// the token's whole TTL (768 h unless the role says otherwise). Call it at
    /// shutdown, **after** the service stopped using leased credentials (after
    /// [`Watcher::shutdown`](crate::Watcher::shutdown)): Vault revokes the
    /// leases made under a token with it, so a database user read through
    /// this client stops working.
    ///
    /// Bounded in time: at most the client's request timeout
    /// (`VAULT_CLIENT_TIMEOUT`, 10 s by default) in all. Idempotent: a second
    /// call finds nothing to revoke. A token Vault no longer accepts counts as
    /// revoked. When Vault cannot be reached the error is returned and the
    /// token kept, for a later call to try again. A client used after a logout
    /// logs in again.
    ///
    /// ```no_run
    /// # async fn demo(client: vault_config::VaultClient, watcher: vault_config::Watcher<()>) {
    /// watcher.shutdown().await; // leases revoked, nothing uses them any more
    /// if let Err(e) = client.logout().await {
    ///     eprintln!("the Vault token stays valid until it expires: {e}");
    /// }
    /// # }
    /// ```
    pub async fn logout(&self) -> Result<()> {
        match (&self.inner.transport, &self.inner.auth) {
            (Some(transport), Some(auth)) => auth.logout(transport, transport.timeout()).await,
            _ => Ok(()),
        }
    }

    /// `GET /v1/<api_path>` with the client's token (a read: safe to retry);
    /// a 403 from a client that can log in (AppRole, JWT, Kubernetes) logs in
    /// once more and retries once.
    pub(crate) async fn get(&self, api_path: &str) -> Result<Reply> {
        self.send(api_path, &[], None, Repeat::Safe).await
    }

    /// [`get`](Self::get) with a query string (`version=3`).
    pub(crate) async fn get_query(
        &self,
        api_path: &str,
        query: &[(&str, String)],
    ) -> Result<Reply> {
        self.send(api_path, query, None, Repeat::Safe).await
    }

    /// A GET (no body) or POST (`body`) with the client's token, re-logging in
    /// once after a 403 as [`get`](Self::get) does; retried after it may have
    /// reached Vault only when `repeat` says so.
    pub(crate) async fn send(
        &self,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<Reply> {
        Ok(self.send_as(api_path, query, body, repeat).await?.0)
    }

    /// [`send`](Self::send), and the generation of the token that made the
    /// answer (a lease lives only as long as that token).
    pub(crate) async fn send_as(
        &self,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<(Reply, u64)> {
        let (Some(transport), Some(auth)) = (&self.inner.transport, &self.inner.auth) else {
            return Err(self.disabled(api_path));
        };
        let send = |token: SecretString| async move {
            match body {
                Some(body) => transport.post(api_path, body, Some(&token), repeat).await,
                None => transport.get(api_path, query, Some(&token), repeat).await,
            }
        };
        let (token, learn, generation) = auth.token_for_request(transport).await?;
        // A static token's first request goes out at once; its TTL is
        // learned beside it, off the critical path.
        let reply = if learn {
            tokio::join!(send(token.clone()), auth.learn(transport)).0
        } else {
            send(token.clone()).await
        };
        match reply {
            Err(Error::PermissionDenied { .. }) if auth.can_login() => {
                match auth.relogin(transport, &token).await? {
                    Some((fresh, generation)) => Ok((send(fresh).await?, generation)),
                    // The token is valid: the denial is the policy's.
                    None => Err(denied_again(api_path, &self.inner.namespace)),
                }
            }
            // A static token our clock says expired: not the policy's
            // denial, but a token to replace (and health says so).
            Err(Error::PermissionDenied { .. })
                if auth.status().expires_in_secs == Some(0) =>
            {
                Err(Error::Auth {
                    method: auth.method().name().to_owned(),
                    reason: format!(
                        "Vault denied `{}` and the token's TTL has run out: it expired; give the service a new token (or use a login method such as AppRole, which logs in again)",
                        crate::telemetry::shown_path(api_path)
                    ),
                })
            }
            other => Ok((other?, generation)),
        }
    }

    /// Which token the client uses now: it changes at each login. Leases
    /// read under an older one die when that token does.
    pub(crate) fn token_generation(&self) -> u64 {
        self.inner.auth.as_ref().map_or(0, Auth::generation)
    }

    /// What the client knows about when its token needs renewing or
    /// replacing (or a failed login may be retried).
    pub(crate) fn token_due_in(&self) -> Option<Duration> {
        self.inner.auth.as_ref()?.due_in()
    }

    /// Renews or replaces the token now if it is due (a watcher calls this on
    /// the token's own schedule, whatever its poll interval).
    pub(crate) async fn refresh_token(&self) -> Result<()> {
        if let (Some(transport), Some(auth)) = (&self.inner.transport, &self.inner.auth) {
            auth.refresh_due(transport).await?;
        }
        Ok(())
    }

    /// The HTTP side, unless Vault is turned off.
    pub(crate) fn transport(&self) -> Option<&Transport> {
        self.inner.transport.as_ref()
    }

    /// Where this client's metrics go.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The error for a request that cannot be sent because Vault is turned off.
    pub(crate) fn disabled(&self, api_path: &str) -> Error {
        Error::Disabled {
            path: api_path.to_owned(),
            setting: self.contract_var("ENABLED"),
        }
    }

    /// Remembers the KV version of `mount` learned from a mount listing,
    /// unless one is declared or known already.
    pub(crate) fn learn_kv_version(&self, mount: &str, version: KvVersion) {
        let cell = self
            .inner
            .kv_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(mount.to_owned())
            .or_default()
            .clone();
        let _ = cell.set(version);
    }

    /// The KV version of `mount` if declared on the builder or already detected.
    pub(crate) fn known_kv_version(&self, mount: &str) -> Option<KvVersion> {
        let table = self
            .inner
            .kv_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        table.get(mount).and_then(|cell| cell.get().copied())
    }
}

/// A 403 whose token is valid: the path is not in the token's policy.
fn denied_again(api_path: &str, namespace: &Option<String>) -> Error {
    Error::PermissionDenied {
        // Never a lease ID (`sys/leases/renew/<id>`).
        path: shown_path(api_path).to_owned(),
        namespace: namespace.clone(),
    }
}
