//! [`VaultClientBuilder`]: a client's settings, from code or the env contract
//! (read in [`env`](mod@crate::env)), checked when the client is built; and
//! the constructors of [`VaultClient`] ([`VaultClient::builder`],
//! [`VaultClient::from_env`]), which start from a builder.
//!
//! Uses the handle (`client/mod.rs`), auth, the transport's settings, the
//! contract's names and [`FallbackMode`]; the env contract (`env.rs`) adds
//! `from_env*` to the builder, so this file does not name it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::base::EnvSource;
use crate::base::KvVersion;
use crate::client::auth::token::Auth;
use crate::client::auth::AuthMethod;
use crate::client::fallback::FallbackMode;
use crate::client::names::ContractNames;
use crate::client::transport::redact_address;
use crate::client::transport::settings::TransportSettings;
use crate::client::{Inner, VaultClient, DEFAULT_CACHE_TTL, DEFAULT_KV_MOUNT};
use crate::error::{Error, Result};
use crate::telemetry::Telemetry;

/// Settings for a [`VaultClient`], from code, from the env contract, or both.
///
/// ```
/// use std::time::Duration;
/// use vault_config::{FallbackMode, VaultClient};
/// let client = VaultClient::builder()
///     .address("http://127.0.0.1:8200")
///     .token("s.dev-only")
///     .kv_mount("agenticverz")
///     .fallback_mode(FallbackMode::Fallback)
///     .cache_ttl(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(client.kv_mount(), "agenticverz");
/// # Ok::<(), vault_config::Error>(())
/// ```
#[derive(Clone)]
pub struct VaultClientBuilder {
    pub(crate) names: ContractNames,
    pub(crate) env: EnvSource,
    pub(crate) token: Option<SecretString>,
    pub(crate) token_setting: Option<String>,
    /// Where the credentials come from, for logs and health (never them).
    pub(crate) credentials: Option<String>,
    pub(crate) metrics_name: Option<String>,
    pub(crate) metrics_paths: bool,
    pub(crate) auth: Option<AuthMethod>,
    pub(crate) namespace: Option<String>,
    pub(crate) kv_mount: String,
    pub(crate) transport: TransportSettings,
    pub(crate) enabled: bool,
    pub(crate) fallback_mode: FallbackMode,
    pub(crate) env_fallback: bool,
    pub(crate) cache_ttl: Duration,
    pub(crate) kv_versions: HashMap<String, KvVersion>,
}

impl Default for VaultClientBuilder {
    fn default() -> Self {
        VaultClientBuilder {
            names: ContractNames::new(None),
            env: EnvSource::process(),
            token: None,
            token_setting: None,
            credentials: None,
            metrics_name: None,
            metrics_paths: false,
            auth: None,
            namespace: None,
            kv_mount: DEFAULT_KV_MOUNT.to_owned(),
            transport: TransportSettings::default(),
            enabled: true,
            fallback_mode: FallbackMode::default(),
            env_fallback: true,
            cache_ttl: DEFAULT_CACHE_TTL,
            kv_versions: HashMap::new(),
        }
    }
}

impl fmt::Debug for VaultClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClientBuilder")
            .field(
                "address",
                &self
                    .transport
                    .address
                    .as_ref()
                    .map(|(_, a)| redact_address(a)),
            )
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("kv_mount", &self.kv_mount)
            .field("enabled", &self.enabled)
            .field("fallback_mode", &self.fallback_mode)
            .field("env_fallback", &self.env_fallback)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl VaultClientBuilder {
    /// Vault's address, e.g. `https://vault.internal:8200`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.transport.address = Some(("address".to_owned(), address.into()));
        self
    }

    /// Every node of a Vault/OpenBao cluster, e.g. the three of a Raft
    /// cluster. Requests go to the address that answered last; a node that is
    /// down, sealed or without a leader makes them move to the next one. The
    /// first also becomes [`address`](Self::address).
    ///
    /// ```
    /// let client = vault_config::VaultClient::builder()
    ///     .addresses(["http://vault-1:8200", "http://vault-2:8200", "http://vault-3:8200"])
    ///     .token("s.dev-only")
    ///     .build()?;
    /// assert_eq!(client.addresses().len(), 3);
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn addresses<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut all = addresses
            .into_iter()
            .map(|a| ("addresses".to_owned(), a.into()));
        self.transport.address = all.next();
        self.transport.addresses = all.collect();
        self
    }

    /// The most requests in flight at once (64 unless set): a large config
    /// loads in waves instead of one burst that trips Vault's rate limits.
    pub fn max_concurrent_requests(mut self, limit: usize) -> Self {
        self.transport.max_in_flight = limit.max(1);
        self
    }

    /// How long a write the client makes (a login, a token or lease renewal,
    /// a revocation) keeps trying while every node is down, sealed or without
    /// a leader: a failover gap (30 s unless set). Reads give up after the
    /// retries instead, and a watcher tries again at its next poll.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.transport.failover_timeout = timeout;
        self
    }

    /// The token to authenticate with (replaces any auth method set before).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self.token_setting = Some("token".to_owned());
        self.credentials = Some("token set in code".to_owned());
        self.auth = None;
        self
    }

    /// Authenticates with `method` (AppRole, JWT, Kubernetes) instead of a token.
    ///
    /// ```
    /// use vault_config::{AuthMethod, SecretId, VaultClient};
    /// let client = VaultClient::builder()
    ///     .address("https://vault:8200")
    ///     .auth(AuthMethod::approle("9f2c-role-id", SecretId::File("/run/secrets/secret-id".into())))
    ///     .build()?;
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn auth(mut self, method: AuthMethod) -> Self {
        self.credentials = Some(format!("{} login set in code", method.name()));
        self.auth = Some(method);
        self
    }

    /// The namespace (Vault Enterprise, HCP Vault, OpenBao), sent as `X-Vault-Namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into()).filter(|n: &String| !n.is_empty());
        self
    }

    /// The default KV mount (`secret` unless set).
    pub fn kv_mount(mut self, mount: impl Into<String>) -> Self {
        self.kv_mount = mount.into().trim_matches('/').to_owned();
        self
    }

    /// Declares the KV version of `mount`, so it is not looked up.
    pub fn kv_version(mut self, mount: impl Into<String>, version: KvVersion) -> Self {
        self.kv_versions
            .insert(mount.into().trim_matches('/').to_owned(), version);
        self
    }

    /// A PEM file holding the CA certificate(s) that signed Vault's certificate.
    pub fn ca_cert(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.transport.ca_cert = Some(("ca_cert".to_owned(), pem_file.into()));
        self
    }

    /// PEM files of a client certificate and its key, for TLS client authentication.
    pub fn client_cert(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        self.transport.client_cert = Some(("client_cert".to_owned(), cert_file.into()));
        self.transport.client_key = Some(("client_cert".to_owned(), key_file.into()));
        self
    }

    /// Turns TLS certificate verification off. Only for local experiments.
    pub fn skip_verify(mut self, skip: bool) -> Self {
        self.transport.skip_verify = skip;
        self
    }

    /// The `client` label of this client's metrics (`default` unless set), so
    /// that several clients of one process stay apart. See [`telemetry`](crate::telemetry).
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
        self
    }

    /// Give lease metrics a `path` label (off unless set: a series per path).
    pub fn metrics_paths(mut self, on: bool) -> Self {
        self.metrics_paths = on;
        self
    }

    /// The largest answer read from Vault, in bytes (4 MiB unless set): a
    /// bigger one fails with [`Error::Malformed`] instead of filling memory.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.transport.max_response_bytes = limit;
        self
    }

    /// The timeout of each request (10 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.transport.timeout = timeout;
        self
    }

    /// How many times a request is retried after a connection error, a 5xx or a 429
    /// (never after another 4xx). 2 unless set.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.transport.retry.max_retries = retries;
        self
    }

    /// The wait before the first retry; it doubles with each further one (100 ms unless set).
    pub fn retry_backoff(mut self, first: Duration) -> Self {
        self.transport.retry.first_backoff = first;
        self
    }

    /// `false` turns Vault off: no request is sent and every mapping reads env.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// What a load does when Vault cannot be reached (see [`FallbackMode`]).
    pub fn fallback_mode(mut self, mode: FallbackMode) -> Self {
        self.fallback_mode = mode;
        self
    }

    /// `false`: a key Vault lacks is missing, never read from its env var
    /// (`VAULT_ENV_FALLBACK=false`), for production, where a stale variable
    /// left in the environment must not stand in for a secret deleted from
    /// Vault. Vault turned off (`VAULT_ENABLED=false`) and
    /// [`FallbackMode::Fallback`] while Vault is down still read env: that
    /// is what they ask for. On (`true`) unless set.
    pub fn env_fallback(mut self, on: bool) -> Self {
        self.env_fallback = on;
        self
    }

    /// How long reads are cached by this client (5 min unless set; zero disables).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Where env fallback values are read from (the process environment unless set).
    pub fn env_source(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }

    /// Checks the settings and builds the client. Sends no request.
    pub fn build(self) -> Result<VaultClient> {
        if let Some(ns) = &self.namespace {
            if ns.chars().any(char::is_control) {
                return Err(Error::config(
                    self.names.describe("NAMESPACE"),
                    "the namespace holds a control character (a newline?), which an HTTP header cannot carry; write it as Vault shows it, e.g. `team-a/dev`",
                ));
            }
        }
        if let Some(
            AuthMethod::AppRole { mount, .. }
            | AuthMethod::Jwt { mount, .. }
            | AuthMethod::Kubernetes { mount, .. },
        ) = &self.auth
        {
            crate::base::check_segments("auth mount", mount, &format!("auth/{mount}")).map_err(|_| {
                Error::config(
                    self.names.vault("AUTH_MOUNT"),
                    format!("the auth mount `{mount}` is empty or has an empty, `.` or `..` segment; name the mount, e.g. `approle`"),
                )
            })?;
        }
        let telemetry = Telemetry::new(self.metrics_name.clone(), self.metrics_paths);
        let (transport, auth) = if self.enabled {
            let mut transport = self
                .transport
                .connect(&self.names, self.namespace.clone())?;
            transport.telemetry = telemetry.clone();
            let method = match (&self.auth, &self.token) {
                (Some(method), _) => method.clone(),
                (None, Some(token)) => AuthMethod::Token(token.clone()),
                (None, None) => {
                    return Err(Error::config(
                        self.names.describe("TOKEN"),
                        format!(
                            "no token: set it, log in with `bao login` / `vault login` so ~/.vault-token exists, or choose a login with {}",
                            self.names.vault("AUTH_METHOD")
                        ),
                    ))
                }
            };
            let credentials = self
                .credentials
                .clone()
                .unwrap_or_else(|| format!("{} login", method.name()));
            (
                Some(transport),
                Some(Auth::new(method, credentials, telemetry.clone())),
            )
        } else {
            (None, None)
        };
        let declared_kv_versions = self.kv_versions.keys().cloned().collect();
        let kv_versions = self
            .kv_versions
            .into_iter()
            .map(|(mount, v)| (mount, Arc::new(OnceCell::new_with(Some(v)))))
            .collect();
        if self.kv_mount.is_empty() {
            return Err(Error::config(
                self.names.vault("KV_MOUNT"),
                "the KV mount is empty; leave it unset for `secret` or name a mount",
            ));
        }
        Ok(VaultClient {
            inner: Arc::new(Inner {
                transport,
                auth,
                namespace: self.namespace,
                kv_mount: self.kv_mount,
                fallback_mode: self.fallback_mode,
                env_fallback: self.env_fallback,
                cache_ttl: self.cache_ttl,
                extensions: Default::default(),
                kv_versions: Mutex::new(kv_versions),
                declared_kv_versions,
                telemetry,
                env: self.env,
                names: self.names,
            }),
        })
    }
}

impl VaultClient {
    /// A builder for settings made in code.
    pub fn builder() -> VaultClientBuilder {
        VaultClientBuilder::default()
    }

    /// A client configured by the standard environment contract.
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `VAULT_ADDR` | Vault's address, e.g. `https://vault:8200` | required when enabled |
    /// | `VAULT_TOKEN` | the token; else the file `~/.vault-token` | required when enabled |
    /// | `VAULT_NAMESPACE` | sent as `X-Vault-Namespace` | none |
    /// | `VAULT_KV_MOUNT` | the KV mount | `secret` |
    /// | `VAULT_CACERT` | PEM file of the CA that signed Vault's certificate | system roots |
    /// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | PEM files for TLS client auth | none |
    /// | `VAULT_SKIP_VERIFY` | `true` turns certificate checks off (never in production) | `false` |
    /// | `VAULT_CLIENT_TIMEOUT` | per-request timeout (`10`, `500ms`, `1m`) | 10 s |
    /// | `VAULT_MAX_RETRIES` | retries of connection errors, 5xx and 429 | 2 |
    /// | `VAULT_ENABLED` | `false` turns Vault off: every mapping reads env | `true` |
    /// | `VAULT_MODE` | `required` or `fallback` (see [`FallbackMode`]) | `required` |
    /// | `VAULT_ENV_FALLBACK` | `false`: a key Vault lacks is missing, never read from env | `true` |
    /// | `VAULT_CACHE_TTL` | how long reads are cached; `0` disables | 5 min |
    /// | `VAULT_AUTH_METHOD` | `token`, `approle`, `jwt` or `kubernetes` | `token` |
    /// | `VAULT_ROLE_ID`, `VAULT_SECRET_ID` (or `VAULT_APPROLE_*`) | AppRole credentials | none |
    /// | `VAULT_WRAPPED_SECRET_ID`, `VAULT_SECRET_ID_FILE` | a wrapped secret ID, or a file holding it | none |
    /// | `VAULT_AUTH_ROLE`, `VAULT_JWT_FILE`, `VAULT_KUBERNETES_TOKEN_FILE` | JWT / Kubernetes login | see [`AuthMethod`] |
    /// | `VAULT_AUTH_MOUNT` | the auth mount | the method's name |
    ///
    /// Each `VAULT_X` that is unset is looked up as OpenBao's `BAO_X`.
    pub fn from_env() -> Result<Self> {
        VaultClientBuilder::from_env()?.build()
    }

    /// Like [`from_env`](Self::from_env), reading `<PREFIX>_VAULT_ADDR`,
    /// `<PREFIX>_VAULT_TOKEN`, `<PREFIX>_VAULT_KV_MOUNT`, ... instead.
    ///
    /// ```no_run
    /// // AION_VAULT_ADDR, AION_VAULT_TOKEN, AION_VAULT_NAMESPACE, AION_VAULT_KV_MOUNT, ...
    /// let client = vault_config::VaultClient::from_env_prefixed("AION")?;
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn from_env_prefixed(prefix: &str) -> Result<Self> {
        VaultClientBuilder::from_env_prefixed(prefix)?.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_with_a_control_character_is_refused() {
        let err = VaultClient::builder()
            .address("http://127.0.0.1:8200")
            .token("t")
            .namespace("team-a\nadmin")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { setting, .. } if setting.starts_with("VAULT_NAMESPACE")),
            "{err:?}"
        );
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = VaultClient::builder()
            .address("http://v:1")
            .token("hvs.TOPSECRET")
            .build()
            .unwrap();
        let b = VaultClient::builder().token("hvs.TOPSECRET");
        for text in [format!("{c:?}"), format!("{b:?}")] {
            assert!(!text.contains("TOPSECRET"), "{text}");
            assert!(text.contains("[REDACTED]"), "{text}");
        }
    }
}
