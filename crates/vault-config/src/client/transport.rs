//! HTTP to Vault: the reqwest/TLS set-up, one request with its timeout,
//! bounded retries, and the mapping of Vault's statuses onto [`Error`].

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;
use zeroize::Zeroize;

use crate::base::random_fraction;
use crate::client::env::ContractNames;
use crate::client::DEFAULT_TIMEOUT;
use crate::error::{Error, Result};
use crate::telemetry::{operation_of, outcome_of, shown_path, Telemetry};
use tracing::Instrument;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            first_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): doubling, capped at 5 s,
    /// with up to a quarter of jitter so a fleet does not retry in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(Duration::from_secs(5));
        base + base.mul_f64(random_fraction() / 4.0)
    }
}

/// The settings that shape the HTTP client: where Vault is, TLS, timeouts and retries.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    /// The setting it came from (`VAULT_ADDR`, `address`) and the address.
    pub(crate) address: Option<(String, String)>,
    /// More addresses of the same cluster (`VAULT_ADDRS`, `addresses`), each
    /// with the setting it came from; tried in order after `address`.
    pub(crate) addresses: Vec<(String, String)>,
    /// How long a write (a login, a renewal, a revocation) keeps trying
    /// through a failover: every node down, sealed or without a leader.
    pub(crate) failover_timeout: Duration,
    /// The most requests in flight at once.
    pub(crate) max_in_flight: usize,
    pub(crate) ca_cert: Option<(String, PathBuf)>,
    pub(crate) client_cert: Option<(String, PathBuf)>,
    pub(crate) client_key: Option<(String, PathBuf)>,
    pub(crate) skip_verify: bool,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_response_bytes: usize,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            address: None,
            addresses: Vec::new(),
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            skip_verify: false,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl TransportSettings {
    /// Checks the settings and builds the HTTP client (reqwest over rustls).
    pub(crate) fn connect(
        &self,
        names: &ContractNames,
        namespace: Option<String>,
    ) -> Result<Transport> {
        let mut listed: Vec<(String, String)> = self.address.iter().cloned().collect();
        listed.extend(self.addresses.iter().cloned());
        if listed.is_empty() {
            return Err(Error::config(
                names.describe("ADDR"),
                format!(
                    "not set; set it to Vault's address (e.g. http://127.0.0.1:8200), or set {}=false to read only env",
                    names.vault("ENABLED")
                ),
            ));
        }
        let mut addrs: Vec<Url> = Vec::with_capacity(listed.len());
        for (addr_setting, raw) in &listed {
            let addr = Url::parse(raw.trim()).map_err(|e| {
                Error::config(
                    addr_setting,
                    format!(
                        "`{}` is not a URL ({e}); write it like https://vault:8200",
                        redact_address(raw)
                    ),
                )
            })?;
            if addr.scheme() != "http" && addr.scheme() != "https" {
                return Err(Error::config(
                    addr_setting,
                    format!(
                        "`{}` must start with http:// or https://",
                        redact_address(raw)
                    ),
                ));
            }
            if !addrs
                .iter()
                .any(|a| a.origin() == addr.origin() && a.path() == addr.path())
            {
                addrs.push(addr);
            }
        }
        // Redirects are never followed by reqwest: it would carry the token and
        // a login body to whatever host the `Location` names. `Transport::send`
        // follows one 307/308 itself, only back to the configured address.
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
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
        let mut transport = Transport::new(http, addrs, namespace, self.timeout, self.retry, names);
        transport.max_response_bytes = self.max_response_bytes;
        transport.failover_timeout = self.failover_timeout;
        transport.in_flight = tokio::sync::Semaphore::new(self.max_in_flight.max(1));
        Ok(transport)
    }
}

fn read_file(setting: &str, file: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| {
        Error::config(
            setting,
            format!("the {what} file {} cannot be read: {e}", file.display()),
        )
    })
}

/// What a successful exchange with Vault produced.
pub(crate) enum Reply {
    /// 2xx with a JSON body (or none: `Null`).
    Ok(Value),
    /// 404: nothing at that path.
    NotFound,
}

/// One outcome of one attempt: done, worth another try, or redirected.
enum Attempt {
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

/// The largest answer read from Vault unless set (4 MiB): a KV secret of a few
/// megabytes is already abnormal.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The most requests a client has in flight at once unless set: a config of
/// a thousand paths loads in waves rather than in one burst that trips
/// Vault's rate limits.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// How long a write keeps trying through a cluster failover unless set.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

tokio::task_local! {
    /// False inside a watcher's work: it retries on its own schedule (and
    /// must stay responsive), so its writes do not ride out a failover.
    pub(crate) static RIDE_FAILOVER: bool;
}

/// A Raft cluster's state as Vault names it in `X-Vault-Index`: base64 of
/// `{"cluster": "<id>", "value": "<raft index>"}`.
#[derive(Debug, Clone)]
struct ClusterIndex {
    raw: HeaderValue,
    cluster: String,
    value: u64,
}

impl ClusterIndex {
    fn parse(raw: &HeaderValue) -> Option<Self> {
        let json = base64_decode(raw.to_str().ok()?)?;
        let body: Value = serde_json::from_slice(&json).ok()?;
        let cluster = body.get("cluster")?.as_str()?.to_owned();
        let value = match body.get("value")? {
            Value::String(s) => s.parse().ok()?,
            Value::Number(n) => n.as_u64()?,
            _ => return None,
        };
        Some(ClusterIndex {
            raw: raw.clone(),
            cluster,
            value,
        })
    }

    /// An index of `cluster` that no node reaches (`u64::MAX`): with
    /// `forward-active-node`, a standby forwards the request to the active
    /// node, and the active node (which ignores indexes) answers it. A value
    /// that does not parse as a number would not do: a standby treats it as
    /// reached and answers from its own state.
    fn unreachable(cluster: &str) -> Option<HeaderValue> {
        let body = serde_json::json!({"cluster": cluster, "value": u64::MAX.to_string()});
        HeaderValue::from_str(&base64_encode(body.to_string().as_bytes())).ok()
    }
}

/// Whether this client's answers are known to include every write the
/// cluster had taken when the client started (read-after-write across
/// clients: an operator writes with the CLI, then a service starts).
///
/// Measured against three OpenBao 2.7.2 nodes: right after a write through
/// the active node, 20 of 20 plain reads from a standby answered from before
/// it (the previous version, or 404 for a new secret). OpenBao answers with
/// `X-Vault-Index` (the node's Raft index) and takes it back with
/// `X-Vault-Inconsistent: forward-active-node`; a client that has seen no
/// index yet has nothing to send, so its first reads need the active node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor {
    /// No answer seen yet: requests go out without an index.
    Unknown,
    /// The server answers without `X-Vault-Index` (a dev server, Vault,
    /// OpenBao before 2.7, storage without indexes): nothing to confirm.
    NotNeeded,
    /// A cluster (its ID) whose active node has not answered this client
    /// yet: requests carry an index no node reaches, so a standby forwards
    /// them to the active node.
    Pending(String),
    /// An answer from the active node gave the index held: requests carry it.
    Confirmed,
}

/// What a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carried {
    /// No index.
    Nothing,
    /// The index held (confirmed by the active node, or the newest seen).
    Held,
    /// An index no node reaches: answered by the active node.
    Unreachable,
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// What one address made of a request.
enum Step {
    Done(Result<Reply>),
    /// Try the next address (and later, the same ones again).
    Next(Error, Option<Duration>),
}

/// Sends requests to one Vault server.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// Every address of the cluster (one for a single server or a load balancer).
    addrs: Vec<Url>,
    /// The addresses as shown in messages: any `user:password@` redacted.
    shown: Vec<String>,
    /// The address that answered last: requests start there.
    current: AtomicUsize,
    /// The newest cluster state seen (`X-Vault-Index`), sent with each
    /// request once the active node has answered (see [`Anchor`]).
    index: Mutex<Option<ClusterIndex>>,
    /// Whether the index held came from the active node.
    anchor: Mutex<Anchor>,
    /// One `sys/health` at a time to learn the cluster's ID.
    learning: tokio::sync::Mutex<()>,
    /// How many times the cluster's ID was asked.
    learnt: AtomicU64,
    /// Whether asking it failed (it is not asked again before each request).
    unlearnt: AtomicBool,
    /// How many times requests moved to another address.
    failovers: AtomicU64,
    /// HTTP requests sent, retries and redirects included.
    sent: AtomicU64,
    pub(crate) telemetry: Telemetry,
    failover_timeout: Duration,
    /// Permits for requests in flight.
    in_flight: tokio::sync::Semaphore,
    max_response_bytes: usize,
    headers: HeaderMap,
    namespace: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
    /// The TLS settings by their env names, for TLS errors.
    tls_settings: String,
}

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        addrs: Vec<Url>,
        namespace: Option<String>,
        timeout: Duration,
        retry: RetryPolicy,
        names: &ContractNames,
    ) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(ns) = &namespace {
            if let Ok(value) = HeaderValue::from_str(ns) {
                headers.insert("X-Vault-Namespace", value);
            }
        }
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let shown = addrs.iter().map(redact_userinfo).collect();
        Transport {
            http,
            addrs,
            shown,
            current: AtomicUsize::new(0),
            index: Mutex::new(None),
            anchor: Mutex::new(Anchor::Unknown),
            learning: tokio::sync::Mutex::new(()),
            learnt: AtomicU64::new(0),
            unlearnt: AtomicBool::new(false),
            failovers: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            telemetry: Telemetry::default(),
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            in_flight: tokio::sync::Semaphore::new(DEFAULT_MAX_IN_FLIGHT),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            headers,
            namespace,
            timeout,
            retry,
            tls_settings: format!(
                "{}, {}/{}",
                names.vault("CACERT"),
                names.vault("CLIENT_CERT"),
                names.vault("CLIENT_KEY")
            ),
        }
    }

    /// The address in use, as messages show it (`user:password@` redacted).
    pub(crate) fn addr(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.shown.len().max(1);
        self.shown.get(i).map_or("", String::as_str)
    }

    /// Every configured address, as messages show them.
    pub(crate) fn addrs(&self) -> &[String] {
        &self.shown
    }

    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// HTTP requests sent so far.
    pub(crate) fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// How many times requests moved to another address so far.
    pub(crate) fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// The URL of `api_path` (below `/v1/`) at address number `at`: each
    /// `/`-separated segment is percent-encoded, so a `?` or `#` in a
    /// secret's name stays in the path.
    fn url(&self, at: usize, api_path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.addrs[at].clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push("v1")
                .extend(api_path.split('/').filter(|s| !s.is_empty()));
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET /v1/<api_path>?<query>` with `token`, retried as the policy and
    /// `repeat` allow.
    pub(crate) async fn get(
        &self,
        api_path: &str,
        query: &[(&str, String)],
        token: Option<&SecretString>,
        repeat: Repeat,
    ) -> Result<Reply> {
        self.send(Method::GET, api_path, query, None, token, repeat)
            .await
    }

    /// `POST /v1/<api_path>` with a JSON body.
    pub(crate) async fn post(
        &self,
        api_path: &str,
        body: &Value,
        token: Option<&SecretString>,
        repeat: Repeat,
    ) -> Result<Reply> {
        self.send(Method::POST, api_path, &[], Some(body), token, repeat)
            .await
    }

    /// Sends the request to the address in use, moving on to the next one
    /// when a node cannot serve it (down, sealed, not active, redirecting to
    /// a dead leader); once every address was tried, waits (bounded,
    /// jittered) and goes round again: reads up to the retry count, writes
    /// for as long as the failover timeout allows.
    async fn send(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&SecretString>,
        repeat: Repeat,
    ) -> Result<Reply> {
        let operation = operation_of(api_path, method != Method::GET);
        let span = tracing::debug_span!(
            "vault_config.request",
            operation,
            path = shown_path(api_path),
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self
            .send_inner(method, api_path, query, body, token, repeat)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(Reply::Ok(_)) => "ok",
            Ok(Reply::NotFound) => "not_found",
            Err(e) => outcome_of(e),
        };
        let took = started.elapsed();
        span.record("outcome", outcome);
        span.record("duration_ms", took.as_secs_f64() * 1000.0);
        self.telemetry.request(operation, outcome, took);
        result
    }

    async fn send_inner(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&SecretString>,
        repeat: Repeat,
    ) -> Result<Reply> {
        let mut headers = self.headers.clone();
        if let Some(token) = token {
            match HeaderValue::from_str(token.expose_secret()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    headers.insert("X-Vault-Token", value);
                }
                Err(_) => {
                    return Err(Error::config(
                        "token",
                        "the Vault token holds characters an HTTP header cannot carry",
                    ))
                }
            }
        }
        let started = Instant::now();
        let write = method != Method::GET;
        let n = self.addrs.len();
        // Several addresses: a cluster, most likely. Its ID first (one
        // `sys/health`, not tried again once it failed), so that the first
        // requests go to the active node rather than being asked twice (see
        // `Anchor`). Without an answer, requests go out without an index, as
        // to a single server, and the first answer with one sets `Pending`.
        if n > 1 && !self.unlearnt.load(Ordering::Relaxed) && self.anchor_is(&Anchor::Unknown) {
            let _permit = self.in_flight.acquire().await.ok();
            self.learn_cluster().await;
        }
        let mut round = 0u32;
        loop {
            let first = self.current.load(Ordering::Relaxed) % n;
            let mut last = None;
            let mut after = None;
            for k in 0..n {
                let at = (first + k) % n;
                let step = self
                    .send_at(at, &method, api_path, query, body, &headers, repeat)
                    .await;
                match step {
                    Step::Done(result) => {
                        if at != first && result.is_ok() {
                            self.current.store(at, Ordering::Relaxed);
                            self.failovers.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(
                                from = %self.shown[first],
                                to = %self.shown[at],
                                "vault-config: moved to another Vault address"
                            );
                        }
                        return result;
                    }
                    Step::Next(error, wait) => {
                        tracing::debug!(addr = %self.shown[at], path = shown_path(api_path), error = %error, "vault-config: this address cannot serve the request now");
                        last = Some(error);
                        after = after.max(wait);
                    }
                }
            }
            round += 1;
            let Some(error) = last else {
                return Err(Error::Malformed {
                    path: path_only(api_path),
                    reason: "no Vault address to send to".to_owned(),
                });
            };
            // Writes ride out a failover; reads give up after the retries.
            let ride = write
                && error_is_failover(&error)
                && started.elapsed() < self.failover_timeout
                && RIDE_FAILOVER.try_with(|ride| *ride).unwrap_or(true);
            if round > self.retry.max_retries && !ride {
                return Err(error);
            }
            // Vault's (or a proxy's) Retry-After, bounded by the request timeout.
            let wait = self
                .retry
                .backoff(round)
                .max(after.unwrap_or_default().min(self.timeout));
            tracing::debug!(path = shown_path(api_path), round, ?wait, error = %error, "retrying Vault request");
            tokio::time::sleep(wait).await;
        }
    }

    /// One try at address number `at`, following one redirect.
    #[allow(clippy::too_many_arguments)]
    async fn send_at(
        &self,
        at: usize,
        method: &Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        headers: &HeaderMap,
        repeat: Repeat,
    ) -> Step {
        // Never closed: a permit is always granted, in turn.
        let _permit = self.in_flight.acquire().await.ok();
        let mut url = self.url(at, api_path, query);
        let mut redirected = false;
        // The cluster state the answer must include (Vault's X-Vault-Index):
        // a standby that has not reached it forwards the request to the
        // active node, so no answer is older than one the client already
        // had, nor (once the active node answered) than what the cluster had
        // when the client started. With no active node (a failover under
        // way), the node answers locally.
        let (mut carried, mut consistent) = self.consistency();
        // A read may be asked again once, of the active node, when its
        // answer turns out to come from a cluster (see `Anchor`).
        let mut rechecked = false;
        let mut fell_back = false;
        loop {
            let mut headers = headers.clone();
            if let Some(index) = &consistent {
                headers.insert("X-Vault-Index", index.clone());
                headers.insert(
                    "X-Vault-Inconsistent",
                    HeaderValue::from_static("forward-active-node"),
                );
            }
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers);
            if let Some(body) = body {
                request = request.json(body);
            }
            let (attempt, indexed) = self.attempt(request, api_path, at).await;
            match attempt {
                Attempt::Done(Ok(reply)) => {
                    let again = if rechecked || fell_back {
                        None
                    } else {
                        self.confirm(method, api_path, &reply, carried, indexed)
                            .await
                    };
                    match again {
                        Some((now, index)) => {
                            tracing::debug!(
                                path = shown_path(api_path),
                                "vault-config: asking the active node again: the first answer may predate writes made elsewhere"
                            );
                            carried = now;
                            consistent = Some(index);
                            rechecked = true;
                        }
                        None => return Step::Done(Ok(reply)),
                    }
                }
                // A server that refuses the index asked for (not OpenBao's
                // format): asked again without it, and never sent it again.
                Attempt::Done(Err(Error::Vault {
                    status: 400,
                    ref errors,
                    ..
                })) if carried == Carried::Unreachable
                    && !rechecked
                    && errors.iter().any(|e| {
                        let e = e.to_ascii_lowercase();
                        e.contains("x-vault-index") || e.contains("x-vault-inconsistent")
                    }) =>
                {
                    self.set_anchor(Anchor::NotNeeded);
                    carried = Carried::Nothing;
                    consistent = None;
                    rechecked = true;
                }
                // A node that hangs: with other addresses, a read (or another
                // request safe to repeat) moves on.
                Attempt::Done(Err(e @ Error::Timeout { .. }))
                    if self.addrs.len() > 1 && repeat == Repeat::Safe =>
                {
                    return Step::Next(e, None)
                }
                Attempt::Done(result) => return Step::Done(result),
                Attempt::Redirect(location) => {
                    match self.follow(&url, &location, redirected, api_path) {
                        Ok(next) => {
                            url = next;
                            redirected = true;
                        }
                        // A standby pointing at a leader we may not (or cannot)
                        // reach: another address may be the leader now.
                        Err(e) => return Step::Next(e, None),
                    }
                }
                Attempt::NodeDown(_) if consistent.is_some() => {
                    carried = Carried::Nothing;
                    consistent = None;
                    fell_back = true;
                }
                Attempt::NodeDown(error) => return Step::Next(error, None),
                Attempt::Retry { error, sent, .. } if sent && repeat == Repeat::Unsafe => {
                    return Step::Done(Err(not_repeated(error, method, api_path)));
                }
                Attempt::Retry { error, after, .. } => return Step::Next(error, after),
            }
        }
    }

    /// The index a request carries now, and what it is.
    fn consistency(&self) -> (Carried, Option<HeaderValue>) {
        let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        match &*anchor {
            Anchor::Unknown => (Carried::Nothing, None),
            Anchor::Pending(cluster) => match ClusterIndex::unreachable(cluster) {
                Some(index) => (Carried::Unreachable, Some(index)),
                None => (Carried::Nothing, None),
            },
            Anchor::Confirmed | Anchor::NotNeeded => {
                let held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
                match held.as_ref() {
                    Some(index) => (Carried::Held, Some(index.raw.clone())),
                    None => (Carried::Nothing, None),
                }
            }
        }
    }

    fn anchor_is(&self, state: &Anchor) -> bool {
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) == *state
    }

    fn set_anchor(&self, to: Anchor) {
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// What an answer says of the cluster; `Some` when a read must be asked
    /// again, with the index to carry: a read that went out before the client
    /// knew it talks to a cluster may come from a standby that has not seen a
    /// write made elsewhere (the previous version, or a 404 for a new secret).
    async fn confirm(
        &self,
        method: &Method,
        api_path: &str,
        reply: &Reply,
        carried: Carried,
        indexed: bool,
    ) -> Option<(Carried, HeaderValue)> {
        // `sys/health`, `sys/leader` and a few others answer without an
        // index even on a cluster: they tell nothing.
        let telling = !api_path.trim_start_matches('/').starts_with("sys/")
            || api_path.starts_with("sys/internal/");
        {
            let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
            let answered = matches!(reply, Reply::Ok(_)) && telling;
            let next = match carried {
                Carried::Unreachable if indexed => Some(Anchor::Confirmed),
                // The server ignored the index: it has none to give.
                Carried::Unreachable if answered => Some(Anchor::NotNeeded),
                // A server without indexes answered first.
                Carried::Nothing if !indexed && answered && *anchor == Anchor::Unknown => {
                    Some(Anchor::NotNeeded)
                }
                _ => None,
            };
            if let Some(next) = next {
                *anchor = next;
            }
            // Only reads that carried nothing are asked again; a write
            // reaches the active node anyway.
            if carried != Carried::Nothing || *method != Method::GET {
                return None;
            }
            match &*anchor {
                Anchor::NotNeeded => return None,
                // The answer came from a cluster (its index set `Pending`),
                // or the active node answered another request meanwhile.
                Anchor::Pending(_) | Anchor::Confirmed if indexed => {
                    drop(anchor);
                    return match self.consistency() {
                        (Carried::Nothing, _) | (_, None) => None,
                        (now, Some(index)) => Some((now, index)),
                    };
                }
                _ => {}
            }
        }
        // A 404 carries no index, whatever the server: ask the cluster's ID
        // and confirm it with the active node (a dev server, being the
        // active node, answers the same).
        if !matches!(reply, Reply::NotFound) {
            return None;
        }
        self.learn_cluster().await?;
        match self.consistency() {
            (Carried::Nothing, _) | (_, None) => None,
            (now, Some(index)) => Some((now, index)),
        }
    }

    /// The cluster's ID, from `sys/health` (unauthenticated: no token, no
    /// namespace is sent) of the first address that answers, within one
    /// request timeout; `None` when none gives one. One at a time: requests
    /// that wait meanwhile take its answer. Sets `Pending`.
    async fn learn_cluster(&self) -> Option<String> {
        let tries = self.learnt.load(Ordering::Relaxed);
        let _one = self.learning.lock().await;
        {
            let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
            let held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            let known = match &*anchor {
                Anchor::Pending(cluster) => Some(cluster.clone()),
                Anchor::Confirmed => held.as_ref().map(|h| h.cluster.clone()),
                Anchor::Unknown | Anchor::NotNeeded => None,
            };
            // Known, or asked while this request waited (whatever came of
            // it: a failed try is not repeated by every request waiting).
            if known.is_some() || self.learnt.load(Ordering::Relaxed) != tries {
                return known;
            }
        }
        self.learnt.fetch_add(1, Ordering::Relaxed);
        // At most one request timeout in all, whatever the addresses do.
        let learnt = tokio::time::timeout(self.timeout, self.ask_cluster()).await;
        let Some(cluster) = learnt.ok().flatten() else {
            self.unlearnt.store(true, Ordering::Relaxed);
            return None;
        };
        let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        if *anchor == Anchor::Unknown {
            *anchor = Anchor::Pending(cluster.clone());
        }
        Some(cluster)
    }

    /// `cluster_id` of `sys/health`, from the first address that gives one.
    async fn ask_cluster(&self) -> Option<String> {
        let n = self.addrs.len();
        let first = self.current.load(Ordering::Relaxed) % n.max(1);
        for k in 0..n {
            let at = (first + k) % n;
            let url = self.url(
                at,
                "sys/health",
                &[
                    ("standbyok", "true".to_owned()),
                    ("perfstandbyok", "true".to_owned()),
                ],
            );
            self.sent.fetch_add(1, Ordering::Relaxed);
            let answer = self
                .http
                .get(url)
                .header("X-Vault-Request", "true")
                .send()
                .await;
            let mut response = match answer {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(addr = %self.shown[at], reason = %root_cause(&e), "vault-config: sys/health did not answer");
                    continue;
                }
            };
            // A health answer is a few hundred bytes.
            let mut bytes = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                if bytes.len() + chunk.len() > 64 * 1024 {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            let cluster = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("cluster_id")?.as_str().map(str::to_owned))
                .filter(|id| !id.is_empty());
            if cluster.is_some() {
                return cluster;
            }
        }
        None
    }

    /// Where a 307/308 may go: once, and only to a configured address (same
    /// scheme, host and port), so the token and a login body never reach
    /// another host.
    fn follow(&self, from: &Url, location: &str, redirected: bool, api_path: &str) -> Result<Url> {
        let refuse = |why: String| Error::Vault {
            status: 307,
            path: path_only(api_path),
            errors: vec![why],
        };
        if redirected {
            return Err(refuse(
                "Vault redirected twice; a redirect is followed once".to_owned(),
            ));
        }
        let target = from
            .join(location)
            .map_err(|_| refuse("the redirect names no usable URL".to_owned()))?;
        if !self.addrs.iter().any(|a| a.origin() == target.origin()) {
            let host = target.host_str().unwrap_or("?");
            return Err(refuse(format!(
                "Vault redirected to {}://{host}{}, which is not the configured address {}; the request was not sent there",
                target.scheme(),
                target.port().map(|p| format!(":{p}")).unwrap_or_default(),
                self.shown.join(", ")
            )));
        }
        Ok(target)
    }

    /// One exchange, and whether the answer carried an index (of a cluster).
    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        api_path: &str,
        at: usize,
    ) -> (Attempt, bool) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return (self.transport_error(&e, api_path, at), false),
        };
        let index = response
            .headers()
            .get("x-vault-index")
            .and_then(ClusterIndex::parse);
        let indexed = index.is_some();
        if let Some(index) = index {
            // A cluster: until its active node answers, requests go there.
            {
                let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
                if *anchor == Anchor::Unknown {
                    *anchor = Anchor::Pending(index.cluster.clone());
                }
            }
            let mut held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            // Newer state of the same cluster, or another cluster (rebuilt).
            if held
                .as_ref()
                .is_none_or(|h| h.cluster != index.cluster || h.value < index.value)
            {
                *held = Some(index);
            }
        }
        (self.answer(response, api_path, at).await, indexed)
    }

    /// What an answer (its headers read) makes of the request.
    async fn answer(&self, mut response: reqwest::Response, api_path: &str, at: usize) -> Attempt {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Attempt::Redirect(location);
        }
        let limit = self.max_response_bytes;
        let too_large = || {
            Attempt::Done(Err(Error::Malformed {
                path: path_only(api_path),
                reason: format!(
                    "the answer is larger than {limit} bytes, the client's limit (VaultClientBuilder::max_response_bytes); a secret this large is abnormal"
                ),
            }))
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return too_large();
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limit {
                        bytes.zeroize();
                        return too_large();
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    bytes.zeroize();
                    return self.transport_error(&e, api_path, at);
                }
            }
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let empty = bytes.is_empty();
        bytes.zeroize();
        match Attempt::from(self.classify(status, body, empty, api_path, at)) {
            Attempt::Retry { error, sent, .. } => Attempt::Retry {
                error,
                sent,
                after: retry_after,
            },
            other => other,
        }
    }

    fn classify(
        &self,
        status: StatusCode,
        body: Option<Value>,
        empty: bool,
        api_path: &str,
        at: usize,
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
                        .chain([not_found_hint(&errors(), self.namespace.as_deref())])
                        .collect(),
                },
                Retryable::No,
            )),
            StatusCode::FORBIDDEN => Err((
                Error::PermissionDenied {
                    path,
                    namespace: self.namespace.clone(),
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
                    addr: self.shown[at].clone(),
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

    fn transport_error(&self, e: &reqwest::Error, api_path: &str, at: usize) -> Attempt {
        let addr = self.shown[at].clone();
        if e.is_timeout() {
            return Attempt::Done(Err(Error::Timeout {
                addr,
                path: path_only(api_path),
                after: self.timeout,
            }));
        }
        let reason = root_cause(e);
        if looks_like_tls(e) {
            return Attempt::Done(Err(Error::Tls {
                addr,
                reason,
                settings: self.tls_settings.clone(),
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
}

/// Whether a failed exchange may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retryable {
    No,
    /// It may have been acted on: only what is safe to repeat is.
    Yes,
    /// The node did not act on it: anything may be tried again.
    NodeDown,
}

/// Whether `e` is what a failover looks like (a node down, sealed, without a
/// leader, a proxy without a backend), worth riding out for a write.
fn error_is_failover(e: &Error) -> bool {
    e.is_unavailable()
        || match e {
            Error::Vault { status, errors, .. } => {
                *status == 307
                    || (*status >= 500 && {
                        let text = errors.join(" ").to_ascii_lowercase();
                        text.contains("node not active")
                            || text.contains("active cluster node not found")
                            || text.contains("no active")
                    })
            }
            _ => false,
        }
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
fn path_only(api_path: &str) -> String {
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
fn not_repeated(error: Error, method: &Method, api_path: &str) -> Error {
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

/// An address as written, with any `user:password@` replaced (as is, if it
/// does not parse).
pub(crate) fn redact_address(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(url) => redact_userinfo(&url),
        Err(_) if raw.contains('@') => "[unparsable address with credentials]".to_owned(),
        Err(_) => raw.to_owned(),
    }
}

/// `addr` with any `user:password@` replaced, for messages, `Debug` and health.
fn redact_userinfo(addr: &Url) -> String {
    if addr.username().is_empty() && addr.password().is_none() {
        return addr.to_string();
    }
    let mut shown = addr.clone();
    let _ = shown.set_username("REDACTED");
    let _ = shown.set_password(None);
    shown.to_string()
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
fn root_cause(e: &reqwest::Error) -> String {
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

    fn transport() -> Transport {
        Transport::new(
            reqwest::Client::new(),
            vec![Url::parse("http://127.0.0.1:8200/").unwrap()],
            Some("team".into()),
            Duration::from_secs(1),
            RetryPolicy::default(),
            &ContractNames::new(None),
        )
    }

    #[test]
    fn urls_keep_prefix_and_encode_segments() {
        let t = transport();
        assert_eq!(
            t.url(0, "secret/data/my app/db", &[("version", "3".into())])
                .as_str(),
            "http://127.0.0.1:8200/v1/secret/data/my%20app/db?version=3"
        );
        assert_eq!(
            t.url(0, "secret/data/a?b#c", &[("version", "3".into())])
                .as_str(),
            "http://127.0.0.1:8200/v1/secret/data/a%3Fb%23c?version=3"
        );
        let mut behind_proxy = t;
        behind_proxy.addrs = vec![Url::parse("https://h/vault/").unwrap()];
        assert_eq!(
            behind_proxy.url(0, "sys/health", &[]).as_str(),
            "https://h/vault/v1/sys/health"
        );
    }

    #[test]
    fn statuses_map_to_errors() {
        let t = transport();
        let sealed = t.classify(
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
        let denied = t.classify(
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
            t.classify(StatusCode::NOT_FOUND, None, true, "p", 0),
            Ok(Reply::NotFound)
        ));
        assert!(matches!(
            t.classify(
                StatusCode::NOT_FOUND,
                Some(json!({"errors": []})),
                false,
                "p",
                0
            ),
            Ok(Reply::NotFound)
        ));
        let unknown_ns = t.classify(
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
            t.classify(StatusCode::BAD_GATEWAY, None, true, "p", 0),
            Err((Error::Vault { status: 502, .. }, Retryable::Yes))
        ));
        assert!(matches!(
            t.classify(StatusCode::TOO_MANY_REQUESTS, None, true, "p", 0),
            Err((_, Retryable::Yes))
        ));
        assert!(matches!(
            t.classify(StatusCode::BAD_REQUEST, None, true, "p", 0),
            Err((Error::Vault { status: 400, .. }, Retryable::No))
        ));
        assert!(matches!(
            t.classify(StatusCode::OK, None, false, "p", 0),
            Err((Error::Malformed { .. }, Retryable::No))
        ));
    }

    #[test]
    fn cluster_indexes_parse() {
        // {"cluster":"1a5e70de-05f9-52ee-abf3-495c3ef21681","value":"39"}, as OpenBao sends it.
        let raw = HeaderValue::from_static(
            "eyJjbHVzdGVyIjoiMWE1ZTcwZGUtMDVmOS01MmVlLWFiZjMtNDk1YzNlZjIxNjgxIiwidmFsdWUiOiIzOSJ9",
        );
        let index = ClusterIndex::parse(&raw).unwrap();
        assert_eq!(index.value, 39);
        assert_eq!(index.cluster, "1a5e70de-05f9-52ee-abf3-495c3ef21681");
        assert!(ClusterIndex::parse(&HeaderValue::from_static("not base64!")).is_none());
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    }

    #[test]
    fn an_unreachable_index_names_the_cluster_and_the_largest_value() {
        for text in [&b""[..], b"h", b"hi", b"hi!", b"hi!?"] {
            assert_eq!(base64_decode(&base64_encode(text)).unwrap(), text);
        }
        assert_eq!(base64_encode(b"hi"), "aGk=");
        let raw = ClusterIndex::unreachable("1a5e70de-05f9-52ee-abf3-495c3ef21681").unwrap();
        let index = ClusterIndex::parse(&raw).unwrap();
        assert_eq!(index.cluster, "1a5e70de-05f9-52ee-abf3-495c3ef21681");
        assert_eq!(index.value, u64::MAX);
        // What OpenBao parses: the value as a decimal string.
        let json = base64_decode(raw.to_str().unwrap()).unwrap();
        let body: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(body["value"], "18446744073709551615");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 9,
            first_backoff: Duration::from_millis(100),
        };
        assert!(
            p.backoff(1) >= Duration::from_millis(100) && p.backoff(1) < Duration::from_millis(126)
        );
        assert!(p.backoff(3) >= Duration::from_millis(400));
        assert!(p.backoff(30) <= Duration::from_millis(6250));
    }
}
