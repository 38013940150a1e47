//! The Vault client: settings, the env contract, and KV reads.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::OnceCell;
use url::Url;

use crate::auth::{Auth, AuthMethod, AuthStatus, SecretId, KUBERNETES_TOKEN_FILE};
use crate::cache::{Cache, CacheKey, Cached};
use crate::env::{parse_bool, parse_duration, ContractNames, EnvSource};
use crate::error::{Error, Result};
use crate::fallback::Mode;
use crate::kv::{KvMetadata, KvSecret, KvVersion, Lease};
use crate::transport::{Reply, RetryPolicy, Transport};

/// The KV mount used when none is configured.
pub const DEFAULT_KV_MOUNT: &str = "secret";
/// How long a KV read is served from the client's cache by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// The per-request timeout used when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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
    inner: Arc<Inner>,
}

struct Inner {
    transport: Option<Transport>,
    auth: Option<Auth>,
    namespace: Option<String>,
    kv_mount: String,
    mode: Mode,
    cache: Cache,
    kv_versions: Mutex<HashMap<String, Arc<OnceCell<KvVersion>>>>,
    env: EnvSource,
    names: ContractNames,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("VaultClient")
            .field("address", &i.transport.as_ref().map(Transport::addr))
            .field("auth", &i.auth.as_ref().map(Auth::method))
            .field("namespace", &i.namespace)
            .field("kv_mount", &i.kv_mount)
            .field("enabled", &i.transport.is_some())
            .field("mode", &i.mode)
            .field("cache_ttl", &i.cache.ttl())
            .finish()
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
    /// | `VAULT_MODE` | `required` or `fallback` (see [`Mode`]) | `required` |
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

    /// The default KV mount of this client.
    pub fn kv_mount(&self) -> &str {
        &self.inner.kv_mount
    }

    /// The namespace requests are sent in, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// Vault's address, or `None` when Vault is disabled.
    pub fn address(&self) -> Option<&str> {
        self.inner.transport.as_ref().map(Transport::addr)
    }

    /// False when Vault is turned off (`VAULT_ENABLED=false`).
    pub fn is_enabled(&self) -> bool {
        self.inner.transport.is_some()
    }

    /// What a load does when Vault cannot be reached.
    pub fn mode(&self) -> Mode {
        self.inner.mode
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

    /// Forgets every cached read, so the next load reads Vault again.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    /// What the client knows about its token (none when Vault is disabled).
    pub fn auth_status(&self) -> Option<AuthStatus> {
        self.inner.auth.as_ref().map(Auth::status)
    }

    /// `GET /v1/<api_path>` with the client's token; a 403 from a client that can
    /// log in (AppRole, JWT, Kubernetes) logs in once more and retries once.
    async fn get(&self, api_path: &str) -> Result<Reply> {
        self.request(api_path, None).await
    }

    /// A GET (no body) or POST (`body`) with the client's token, re-logging in
    /// once after a 403 as [`get`](Self::get) does.
    async fn request(&self, api_path: &str, body: Option<&serde_json::Value>) -> Result<Reply> {
        let (Some(transport), Some(auth)) = (&self.inner.transport, &self.inner.auth) else {
            return Err(Error::Disabled {
                path: api_path.to_owned(),
            });
        };
        let send = |token: SecretString| async move {
            match body {
                Some(body) => transport.post(api_path, body, Some(&token)).await,
                None => transport.get(api_path, Some(&token)).await,
            }
        };
        let token = auth.token(transport).await?;
        match send(token.clone()).await {
            Err(Error::PermissionDenied { .. }) if auth.can_login() => {
                match auth.relogin(transport, &token).await? {
                    Some(fresh) => send(fresh).await,
                    None => send(token).await,
                }
            }
            other => other,
        }
    }

    /// Reads credentials from a secrets engine that leases them, e.g.
    /// `database/creds/app`. Each call is a new lease; nothing renews it unless a
    /// [`Watcher`](crate::Watcher) holds it.
    pub async fn read_dynamic(&self, path: &str) -> Result<KvSecret> {
        let api_path = path.trim_matches('/').to_owned();
        let started = Instant::now();
        let reply = self.get(&api_path).await?;
        tracing::debug!(
            path = %api_path,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "vault dynamic read"
        );
        match reply {
            Reply::Ok(body) => KvSecret::from_dynamic(&api_path, body),
            Reply::NotFound => Err(Error::Vault {
                status: 404,
                path: api_path,
                errors: vec!["no secrets engine role answers at this path".to_owned()],
            }),
        }
    }

    /// Renews lease `lease_id` by `increment`; returns the lease as renewed.
    pub async fn renew_lease(&self, lease_id: &str, increment: Duration) -> Result<Lease> {
        let body = serde_json::json!({"lease_id": lease_id, "increment": increment.as_secs()});
        match self.request("sys/leases/renew", Some(&body)).await? {
            Reply::Ok(body) => Lease::from_body("sys/leases/renew", &body),
            Reply::NotFound => Err(Error::Vault {
                status: 404,
                path: "sys/leases/renew".to_owned(),
                errors: vec!["the lease does not exist (expired or revoked)".to_owned()],
            }),
        }
    }

    /// Revokes lease `lease_id` now (the credentials stop working).
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        let body = serde_json::json!({"lease_id": lease_id});
        self.request("sys/leases/revoke", Some(&body))
            .await
            .map(|_| ())
    }

    /// The KV version of `mount`: as set on the builder, else looked up once
    /// (`sys/internal/ui/mounts/<mount>`) and remembered.
    pub async fn kv_version(&self, mount: &str) -> Result<KvVersion> {
        let cell = {
            let mut table = self
                .inner
                .kv_versions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            table.entry(mount.to_owned()).or_default().clone()
        };
        let version = cell
            .get_or_try_init(|| async {
                let api_path = format!("sys/internal/ui/mounts/{mount}");
                match self.get(&api_path).await? {
                    Reply::Ok(body) => KvVersion::from_mount_info(&api_path, &body),
                    Reply::NotFound => Err(Error::NotFound {
                        mount: mount.to_owned(),
                        path: String::new(),
                        version: None,
                        namespace: self.inner.namespace.clone(),
                    }),
                }
            })
            .await?;
        Ok(*version)
    }

    /// Reads the current version of the secret at `path` on `mount`.
    pub async fn read(&self, mount: &str, path: &str) -> Result<KvSecret> {
        self.read_opt(mount, path, None)
            .await?
            .ok_or_else(|| self.not_found(mount, path, None))
    }

    /// Reads version `version` of the secret at `path` on a KV v2 `mount`.
    pub async fn read_version(&self, mount: &str, path: &str, version: u64) -> Result<KvSecret> {
        self.read_opt(mount, path, Some(version))
            .await?
            .ok_or_else(|| self.not_found(mount, path, Some(version)))
    }

    /// Reads the metadata of the secret at `path` on a KV v2 `mount`: the cheap
    /// way to learn whether it changed.
    pub async fn read_metadata(&self, mount: &str, path: &str) -> Result<KvMetadata> {
        let api_path = format!("{mount}/metadata/{path}");
        match self.kv_version(mount).await? {
            KvVersion::V2 => {}
            KvVersion::V1 => {
                return Err(Error::Vault {
                    status: 400,
                    path: api_path,
                    errors: vec![format!(
                        "mount `{mount}` is KV version 1, which keeps no metadata"
                    )],
                })
            }
        }
        match self.get(&api_path).await? {
            Reply::Ok(body) => KvMetadata::from_body(&api_path, &body),
            Reply::NotFound => Err(self.not_found(mount, path, None)),
        }
    }

    /// A read that answers `Ok(None)` when nothing is at the path.
    pub(crate) async fn read_opt(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvSecret>> {
        let kv = self.kv_version(mount).await?;
        let mut api_path = kv.data_path(mount, path);
        if !self.is_enabled() {
            return Err(Error::Disabled { path: api_path });
        }
        if let Some(v) = version {
            if kv == KvVersion::V1 {
                return Err(Error::Mapping {
                    mapping: format!("{path} (version {v})"),
                    reason: format!(
                        "mount `{mount}` is KV version 1, which has no versions to pin"
                    ),
                });
            }
            api_path = format!("{api_path}?version={v}");
        }
        let started = Instant::now();
        let reply = self.get(&api_path).await?;
        tracing::debug!(
            mount,
            path,
            version,
            found = matches!(reply, Reply::Ok(_)),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "vault kv read"
        );
        match reply {
            Reply::NotFound => Ok(None),
            Reply::Ok(body) => match kv {
                KvVersion::V2 => KvSecret::from_v2(mount, path, &api_path, body).map(Some),
                KvVersion::V1 => KvSecret::from_v1(mount, path, &api_path, body).map(Some),
            },
        }
    }

    /// [`read_opt`](Self::read_opt) through the client's cache.
    pub(crate) async fn read_cached(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Cached> {
        let key = CacheKey {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
        };
        if let Some(hit) = self.inner.cache.get(&key) {
            tracing::trace!(mount, path, version, "vault kv read served from cache");
            return Ok(hit);
        }
        let fresh = self.read_opt(mount, path, version).await?.map(Arc::new);
        self.inner.cache.put(key, fresh.clone());
        Ok(fresh)
    }

    /// Stores a read in the client's cache.
    pub(crate) fn cache_put(&self, mount: &str, path: &str, version: Option<u64>, value: Cached) {
        let key = CacheKey {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
        };
        self.inner.cache.put(key, value);
    }

    fn not_found(&self, mount: &str, path: &str, version: Option<u64>) -> Error {
        Error::NotFound {
            mount: mount.to_owned(),
            path: path.to_owned(),
            version,
            namespace: self.inner.namespace.clone(),
        }
    }
}

/// Settings for a [`VaultClient`], from code, from the env contract, or both.
///
/// ```
/// use std::time::Duration;
/// use vault_config::{Mode, VaultClient};
/// let client = VaultClient::builder()
///     .address("http://127.0.0.1:8200")
///     .token("s.dev-only")
///     .kv_mount("agenticverz")
///     .mode(Mode::Fallback)
///     .cache_ttl(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(client.kv_mount(), "agenticverz");
/// # Ok::<(), vault_config::Error>(())
/// ```
#[derive(Clone)]
pub struct VaultClientBuilder {
    names: ContractNames,
    env: EnvSource,
    address: Option<(String, String)>,
    token: Option<SecretString>,
    token_setting: Option<String>,
    auth: Option<AuthMethod>,
    namespace: Option<String>,
    kv_mount: String,
    ca_cert: Option<(String, PathBuf)>,
    client_cert: Option<(String, PathBuf)>,
    client_key: Option<(String, PathBuf)>,
    skip_verify: bool,
    timeout: Duration,
    retry: RetryPolicy,
    enabled: bool,
    mode: Mode,
    cache_ttl: Duration,
    kv_versions: HashMap<String, KvVersion>,
}

impl Default for VaultClientBuilder {
    fn default() -> Self {
        VaultClientBuilder {
            names: ContractNames::new(None),
            env: EnvSource::process(),
            address: None,
            token: None,
            token_setting: None,
            auth: None,
            namespace: None,
            kv_mount: DEFAULT_KV_MOUNT.to_owned(),
            ca_cert: None,
            client_cert: None,
            client_key: None,
            skip_verify: false,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            enabled: true,
            mode: Mode::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
            kv_versions: HashMap::new(),
        }
    }
}

impl fmt::Debug for VaultClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClientBuilder")
            .field("address", &self.address.as_ref().map(|(_, a)| a))
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("kv_mount", &self.kv_mount)
            .field("enabled", &self.enabled)
            .field("mode", &self.mode)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl VaultClientBuilder {
    /// Settings from the process environment, as [`VaultClient::from_env`] reads them,
    /// which code may then change before [`build`](Self::build).
    pub fn from_env() -> Result<Self> {
        Self::from_env_source(None, EnvSource::process())
    }

    /// Settings from `<PREFIX>_VAULT_*` variables of the process environment.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self> {
        Self::from_env_source(Some(prefix), EnvSource::process())
    }

    /// Settings from the env contract read through `env`, which is also where
    /// env fallback values are read. `prefix` as in [`from_env_prefixed`](Self::from_env_prefixed).
    pub fn from_env_source(prefix: Option<&str>, env: EnvSource) -> Result<Self> {
        let names = ContractNames::new(prefix);
        let mut b = VaultClientBuilder {
            names: names.clone(),
            env: env.clone(),
            ..Self::default()
        };
        let read = |suffix: &str| names.read(&env, suffix);
        if let Some((var, v)) = read("ENABLED") {
            b.enabled = parse_bool(&var, &v)?;
        }
        if let Some((var, v)) = read("ADDR") {
            b.address = Some((var, v));
        }
        if let Some((var, v)) = read("TOKEN") {
            b.token = Some(SecretString::from(v.trim().to_owned()));
            b.token_setting = Some(var);
        } else if let Some(home) = env.get("HOME") {
            let file = Path::new(&home).join(".vault-token");
            match std::fs::read_to_string(&file) {
                Ok(token) if !token.trim().is_empty() => {
                    b.token = Some(SecretString::from(token.trim().to_owned()));
                    b.token_setting = Some(file.display().to_string());
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::config(
                        file.display().to_string(),
                        format!("the token file cannot be read: {e}"),
                    ))
                }
            }
        }
        b.auth = auth_from_env(&names, &env, b.token.is_some())?;
        if let Some((_, v)) = read("NAMESPACE") {
            b.namespace = Some(v);
        }
        if let Some((_, v)) = read("KV_MOUNT") {
            b.kv_mount = v.trim_matches('/').to_owned();
        }
        if let Some((var, v)) = read("CACERT") {
            b.ca_cert = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("CLIENT_CERT") {
            b.client_cert = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("CLIENT_KEY") {
            b.client_key = Some((var, PathBuf::from(v)));
        }
        if let Some((var, v)) = read("SKIP_VERIFY") {
            b.skip_verify = parse_bool(&var, &v)?;
        }
        if let Some((var, v)) = read("CLIENT_TIMEOUT") {
            b.timeout = parse_duration(&var, &v)?;
        }
        if let Some((var, v)) = read("MAX_RETRIES") {
            b.retry.max_retries = v.trim().parse().map_err(|_| {
                Error::config(var, format!("`{v}` is not a whole number of retries"))
            })?;
        }
        if let Some((var, v)) = read("MODE") {
            b.mode = v
                .parse()
                .map_err(|reason: String| Error::config(var, reason))?;
        }
        if let Some((var, v)) = read("CACHE_TTL") {
            b.cache_ttl = parse_duration(&var, &v)?;
        }
        Ok(b)
    }

    /// Vault's address, e.g. `https://vault.internal:8200`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(("address".to_owned(), address.into()));
        self
    }

    /// The token to authenticate with (replaces any auth method set before).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self.token_setting = Some("token".to_owned());
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
        self.ca_cert = Some(("ca_cert".to_owned(), pem_file.into()));
        self
    }

    /// PEM files of a client certificate and its key, for TLS client authentication.
    pub fn client_cert(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        self.client_cert = Some(("client_cert".to_owned(), cert_file.into()));
        self.client_key = Some(("client_cert".to_owned(), key_file.into()));
        self
    }

    /// Turns TLS certificate verification off. Only for local experiments.
    pub fn skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// The timeout of each request (10 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a request is retried after a connection error, a 5xx or a 429
    /// (never after another 4xx). 2 unless set.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The wait before the first retry; it doubles with each further one (100 ms unless set).
    pub fn retry_backoff(mut self, first: Duration) -> Self {
        self.retry.first_backoff = first;
        self
    }

    /// `false` turns Vault off: no request is sent and every mapping reads env.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// What a load does when Vault cannot be reached (see [`Mode`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
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
        let (transport, auth) = if self.enabled {
            let transport = self.transport()?;
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
            (Some(transport), Some(Auth::new(method)))
        } else {
            (None, None)
        };
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
                mode: self.mode,
                cache: Cache::new(self.cache_ttl),
                kv_versions: Mutex::new(kv_versions),
                env: self.env,
                names: self.names,
            }),
        })
    }

    fn transport(&self) -> Result<Transport> {
        let names = &self.names;
        let (addr_setting, raw) = self.address.clone().ok_or_else(|| {
            Error::config(
                names.describe("ADDR"),
                format!(
                    "not set; set it to Vault's address (e.g. http://127.0.0.1:8200), or set {}=false to read only env",
                    names.vault("ENABLED")
                ),
            )
        })?;
        let addr = Url::parse(raw.trim()).map_err(|e| {
            Error::config(
                &addr_setting,
                format!("`{raw}` is not a URL ({e}); write it like https://vault:8200"),
            )
        })?;
        if addr.scheme() != "http" && addr.scheme() != "https" {
            return Err(Error::config(
                addr_setting,
                format!("`{raw}` must start with http:// or https://"),
            ));
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("vault-config/", env!("CARGO_PKG_VERSION")));
        if let Some((setting, file)) = &self.ca_cert {
            let pem = read_file(setting, file, "CA certificate")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(
                    setting,
                    format!("{} holds no PEM certificate: {e}", file.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(Error::config(
                    setting,
                    format!("{} holds no PEM certificate", file.display()),
                ));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some((setting, cert)), Some((_, key))) => {
                let mut pem = read_file(setting, cert, "client certificate")?;
                pem.push(b'\n');
                pem.extend(read_file(setting, key, "client key")?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::config(
                        setting,
                        format!("the client certificate or key is not usable PEM: {e}"),
                    )
                })?;
                http = http.identity(identity);
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::config(
                    format!(
                        "{} / {}",
                        names.vault("CLIENT_CERT"),
                        names.vault("CLIENT_KEY")
                    ),
                    "set both the client certificate and its key, or neither",
                ))
            }
            (None, None) => {}
        }
        if self.skip_verify {
            tracing::warn!("TLS certificate verification of Vault is turned off (skip_verify)");
            http = http.danger_accept_invalid_certs(true);
        }
        let http = http
            .build()
            .map_err(|e| Error::config("tls", format!("the HTTP client cannot be built: {e}")))?;
        Ok(Transport::new(
            http,
            addr,
            self.namespace.clone(),
            self.timeout,
            self.retry,
        ))
    }
}

/// The auth method the env contract chooses: `VAULT_AUTH_METHOD`, else AppRole
/// when a role ID is set, else the token (`None`).
fn auth_from_env(
    names: &ContractNames,
    env: &EnvSource,
    have_token: bool,
) -> Result<Option<AuthMethod>> {
    // The unprefixed and `APPROLE_`-style names (`VAULT_ROLE_ID`, `AION_VAULT_APPROLE_ROLE_ID`).
    let read = |suffixes: &[&str]| suffixes.iter().find_map(|s| names.read(env, s));
    let method_var = names.read(env, "AUTH_METHOD");
    let role_id = read(&["APPROLE_ROLE_ID", "ROLE_ID"]);
    let method = match &method_var {
        Some((_, m)) => m.trim().to_ascii_lowercase(),
        None if !have_token && role_id.is_some() => "approle".to_owned(),
        None => return Ok(None),
    };
    let setting = names.vault("AUTH_METHOD");
    let mount = names.read(env, "AUTH_MOUNT").map(|(_, m)| m);
    let role = || {
        names.read(env, "AUTH_ROLE").map(|(_, r)| r).ok_or_else(|| {
            Error::config(
                names.vault("AUTH_ROLE"),
                format!("`{method}` login needs the Vault role: set it"),
            )
        })
    };
    let chosen = match method.as_str() {
        "token" => return Ok(None),
        "approle" => {
            let (_, role_id) = role_id.ok_or_else(|| {
                Error::config(
                    names.describe("ROLE_ID"),
                    format!(
                        "AppRole login needs the role ID: set it (or {})",
                        names.vault("APPROLE_ROLE_ID")
                    ),
                )
            })?;
            let secret_id = if let Some((_, v)) =
                read(&["APPROLE_WRAPPED_SECRET_ID", "WRAPPED_SECRET_ID"])
            {
                SecretId::Wrapped(SecretString::from(v))
            } else if let Some((_, v)) = read(&["APPROLE_SECRET_ID_FILE", "SECRET_ID_FILE"]) {
                SecretId::File(PathBuf::from(v))
            } else if let Some((_, v)) = read(&["APPROLE_SECRET_ID", "SECRET_ID"]) {
                SecretId::Plain(SecretString::from(v))
            } else {
                return Err(Error::config(
                    names.describe("SECRET_ID"),
                    format!(
                        "AppRole login needs a secret ID: set it, {} (a file) or {} (a response-wrapping token)",
                        names.vault("SECRET_ID_FILE"),
                        names.vault("WRAPPED_SECRET_ID")
                    ),
                ));
            };
            AuthMethod::approle(role_id, secret_id)
        }
        "jwt" => {
            let file = names.read(env, "JWT_FILE").map(|(_, f)| f).ok_or_else(|| {
                Error::config(
                    names.vault("JWT_FILE"),
                    "JWT login needs the file holding the JWT: set it",
                )
            })?;
            AuthMethod::jwt(role()?, file)
        }
        "kubernetes" | "k8s" => {
            let file = names
                .read(env, "KUBERNETES_TOKEN_FILE")
                .map_or_else(|| KUBERNETES_TOKEN_FILE.to_owned(), |(_, f)| f);
            AuthMethod::Kubernetes {
                mount: "kubernetes".to_owned(),
                role: role()?,
                token_file: PathBuf::from(file),
            }
        }
        other => {
            return Err(Error::config(
                setting,
                format!("`{other}` is not an auth method; use token, approle, jwt or kubernetes"),
            ))
        }
    };
    Ok(Some(match mount {
        Some(m) => chosen.at_mount(m),
        None => chosen,
    }))
}

fn read_file(setting: &str, file: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| {
        Error::config(
            setting,
            format!("the {what} file {} cannot be read: {e}", file.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> EnvSource {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvSource::from_fn(move |n| map.get(n).cloned())
    }

    fn build(vars: &[(&str, &str)]) -> Result<VaultClient> {
        VaultClientBuilder::from_env_source(None, env(vars))?.build()
    }

    #[test]
    fn missing_address_names_the_variables() {
        let e = build(&[("VAULT_TOKEN", "t")]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("VAULT_ADDR (or BAO_ADDR)"), "{text}");
        assert!(text.contains("VAULT_ENABLED=false"), "{text}");
    }

    #[test]
    fn unparsable_address_is_rejected() {
        let e = build(&[("VAULT_ADDR", "vault:8200:x"), ("VAULT_TOKEN", "t")]).unwrap_err();
        assert!(
            matches!(&e, Error::Config { setting, .. } if setting == "VAULT_ADDR"),
            "{e}"
        );
        let e = build(&[("VAULT_ADDR", "ftp://vault"), ("VAULT_TOKEN", "t")]).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn unreadable_ca_file_is_rejected() {
        let e = build(&[
            ("VAULT_ADDR", "https://vault:8200"),
            ("VAULT_TOKEN", "t"),
            ("VAULT_CACERT", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("VAULT_CACERT") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
    }

    #[test]
    fn bao_names_and_prefixed_names() {
        let c = build(&[
            ("BAO_ADDR", "http://127.0.0.1:8200"),
            ("BAO_TOKEN", "t"),
            ("BAO_NAMESPACE", "ns1"),
        ])
        .unwrap();
        assert_eq!(c.address(), Some("http://127.0.0.1:8200/"));
        assert_eq!(c.namespace(), Some("ns1"));
        let c = VaultClientBuilder::from_env_source(
            Some("AION"),
            env(&[
                ("AION_VAULT_ADDR", "http://vault:8200"),
                ("AION_VAULT_TOKEN", "t"),
                ("AION_VAULT_KV_MOUNT", "kv/"),
                ("VAULT_ADDR", "http://wrong:1"),
            ]),
        )
        .and_then(VaultClientBuilder::build)
        .unwrap();
        assert_eq!(c.address(), Some("http://vault:8200/"));
        assert_eq!(c.kv_mount(), "kv");
    }

    #[test]
    fn disabled_needs_no_address_and_sends_nothing() {
        let c = build(&[("VAULT_ENABLED", "false")]).unwrap();
        assert!(!c.is_enabled());
        let prefixed =
            VaultClientBuilder::from_env_source(Some("AION"), env(&[("AION_VAULT_ENABLED", "0")]))
                .and_then(VaultClientBuilder::build)
                .unwrap();
        assert!(!prefixed.is_enabled());
    }

    #[test]
    fn token_file_is_read_when_no_token_var() {
        let home = std::env::temp_dir().join(format!("vault-config-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".vault-token"), "s.file-token\n").unwrap();
        let c = build(&[
            ("VAULT_ADDR", "http://v:1"),
            ("HOME", home.to_str().unwrap()),
        ]);
        std::fs::remove_dir_all(&home).unwrap();
        assert!(c.is_ok());
        let e = build(&[("VAULT_ADDR", "http://v:1"), ("HOME", "/nonexistent")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_TOKEN (or BAO_TOKEN)"), "{e}");
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

    #[test]
    fn mode_and_numbers_parse_or_fail_clearly() {
        let base = [("VAULT_ADDR", "http://v:1"), ("VAULT_TOKEN", "t")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            build(&v)
        };
        assert_eq!(
            with(("VAULT_MODE", "fallback")).unwrap().mode(),
            Mode::Fallback
        );
        assert!(with(("VAULT_MODE", "sometimes"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_MODE"));
        assert!(with(("VAULT_MAX_RETRIES", "many"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_MAX_RETRIES"));
        assert!(with(("VAULT_CACHE_TTL", "soon"))
            .unwrap_err()
            .to_string()
            .contains("VAULT_CACHE_TTL"));
    }
}
