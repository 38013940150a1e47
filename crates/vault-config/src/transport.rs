//! HTTP to Vault: the reqwest/TLS set-up, one request with its timeout,
//! bounded retries, and the mapping of Vault's statuses onto [`Error`].

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;
use zeroize::Zeroize;

use crate::client::DEFAULT_TIMEOUT;
use crate::env::ContractNames;
use crate::error::{Error, Result};

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

/// A number in `[0, 1)` that differs between calls and processes: enough to
/// spread retries and polls, not for anything secret.
pub(crate) fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    h.write_u32(nanos);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The settings that shape the HTTP client: where Vault is, TLS, timeouts and retries.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    /// The setting it came from (`VAULT_ADDR`, `address`) and the address.
    pub(crate) address: Option<(String, String)>,
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
                format!(
                    "`{}` is not a URL ({e}); write it like https://vault:8200",
                    redact_address(&raw)
                ),
            )
        })?;
        if addr.scheme() != "http" && addr.scheme() != "https" {
            return Err(Error::config(
                addr_setting,
                format!(
                    "`{}` must start with http:// or https://",
                    redact_address(&raw)
                ),
            ));
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
        let mut transport = Transport::new(http, addr, namespace, self.timeout, self.retry, names);
        transport.max_response_bytes = self.max_response_bytes;
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

/// Sends requests to one Vault server.
pub(crate) struct Transport {
    http: reqwest::Client,
    addr: Url,
    /// The address as shown in messages: any `user:password@` redacted.
    shown: String,
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
        addr: Url,
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
        let shown = redact_userinfo(&addr);
        Transport {
            http,
            addr,
            shown,
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

    /// The address as messages show it (`user:password@` redacted).
    pub(crate) fn addr(&self) -> &str {
        &self.shown
    }

    /// The URL of `api_path` (below `/v1/`): each `/`-separated segment is
    /// percent-encoded, so a `?` or `#` in a secret's name stays in the path.
    fn url(&self, api_path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.addr.clone();
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

    async fn send(
        &self,
        method: Method,
        api_path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&SecretString>,
        repeat: Repeat,
    ) -> Result<Reply> {
        let mut url = self.url(api_path, query);
        let mut redirected = false;
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
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            match self.attempt(request, api_path).await {
                Attempt::Done(result) => return result,
                Attempt::Redirect(location) => {
                    url = self.follow(&url, &location, redirected, api_path)?;
                    redirected = true;
                }
                Attempt::Retry { error, sent, .. } if sent && repeat == Repeat::Unsafe => {
                    return Err(not_repeated(error, &method, api_path));
                }
                Attempt::Retry { error, after, .. } if attempt < self.retry.max_retries => {
                    attempt += 1;
                    // Vault's (or a proxy's) Retry-After, bounded by the request timeout.
                    let wait = self
                        .retry
                        .backoff(attempt)
                        .max(after.unwrap_or_default().min(self.timeout));
                    tracing::debug!(path = api_path, attempt, ?wait, error = %error, "retrying Vault request");
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry { error, .. } => return Err(error),
            }
        }
    }

    /// Where a 307/308 may go: once, and only to the configured address
    /// (same scheme, host and port), so the token and a login body never
    /// reach another host.
    fn follow(&self, from: &Url, location: &str, redirected: bool, api_path: &str) -> Result<Url> {
        let refuse = |why: String| Error::Vault {
            status: 307,
            path: api_path.to_owned(),
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
        if target.origin() != self.addr.origin() {
            let host = target.host_str().unwrap_or("?");
            return Err(refuse(format!(
                "Vault redirected to {}://{host}{}, which is not the configured address {}; the request was not sent there",
                target.scheme(),
                target.port().map(|p| format!(":{p}")).unwrap_or_default(),
                self.shown
            )));
        }
        Ok(target)
    }

    async fn attempt(&self, request: reqwest::RequestBuilder, api_path: &str) -> Attempt {
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(&e, api_path),
        };
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
                path: api_path.to_owned(),
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
                    return self.transport_error(&e, api_path);
                }
            }
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let empty = bytes.is_empty();
        bytes.zeroize();
        match Attempt::from(self.classify(status, body, empty, api_path)) {
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
    ) -> std::result::Result<Reply, (Error, bool)> {
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
                    false,
                )),
            };
        }
        let path = path_only(api_path);
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
                false,
            )),
            StatusCode::FORBIDDEN => Err((
                Error::PermissionDenied {
                    path,
                    namespace: self.namespace.clone(),
                },
                false,
            )),
            StatusCode::SERVICE_UNAVAILABLE
                if errors()
                    .iter()
                    .any(|e| e.to_ascii_lowercase().contains("sealed")) =>
            {
                Err((
                    Error::Sealed {
                        addr: self.shown.clone(),
                    },
                    false,
                ))
            }
            s => Err((
                Error::Vault {
                    status: s.as_u16(),
                    path,
                    errors: errors(),
                },
                s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS,
            )),
        }
    }

    fn transport_error(&self, e: &reqwest::Error, api_path: &str) -> Attempt {
        let addr = self.shown.clone();
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
            // Nothing reached Vault: always safe to try again.
            return Attempt::Retry {
                error: Error::Connect { addr, reason },
                sent: false,
                after: None,
            };
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

impl From<std::result::Result<Reply, (Error, bool)>> for Attempt {
    fn from(r: std::result::Result<Reply, (Error, bool)>) -> Self {
        match r {
            Ok(reply) => Attempt::Done(Ok(reply)),
            Err((error, true)) => Attempt::Retry {
                error,
                sent: true,
                after: None,
            },
            Err((e, false)) => Attempt::Done(Err(e)),
        }
    }
}

/// The API path, for messages (kept apart from any query since paths are encoded).
fn path_only(api_path: &str) -> String {
    api_path.to_owned()
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
        "not retried: {method} {api_path} may have taken effect, and repeating it could mint another token or lease, or burn a single-use credential"
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
            Url::parse("http://127.0.0.1:8200/").unwrap(),
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
            t.url("secret/data/my app/db", &[("version", "3".into())])
                .as_str(),
            "http://127.0.0.1:8200/v1/secret/data/my%20app/db?version=3"
        );
        assert_eq!(
            t.url("secret/data/a?b#c", &[("version", "3".into())])
                .as_str(),
            "http://127.0.0.1:8200/v1/secret/data/a%3Fb%23c?version=3"
        );
        let mut behind_proxy = t;
        behind_proxy.addr = Url::parse("https://h/vault/").unwrap();
        assert_eq!(
            behind_proxy.url("sys/health", &[]).as_str(),
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
        );
        assert!(matches!(sealed, Err((Error::Sealed { .. }, false))));
        let denied = t.classify(
            StatusCode::FORBIDDEN,
            Some(json!({"errors": ["permission denied"]})),
            false,
            "secret/data/x",
        );
        match denied {
            Err((Error::PermissionDenied { path, namespace }, false)) => {
                assert_eq!(path, "secret/data/x");
                assert_eq!(namespace.as_deref(), Some("team"));
            }
            _ => panic!("expected permission denied"),
        }
        assert!(matches!(
            t.classify(StatusCode::NOT_FOUND, None, true, "p"),
            Ok(Reply::NotFound)
        ));
        assert!(matches!(
            t.classify(
                StatusCode::NOT_FOUND,
                Some(json!({"errors": []})),
                false,
                "p"
            ),
            Ok(Reply::NotFound)
        ));
        let unknown_ns = t.classify(
            StatusCode::NOT_FOUND,
            Some(json!({"errors": ["namespace not found"]})),
            false,
            "secret/data/x",
        );
        match unknown_ns {
            Err((
                Error::Vault {
                    status: 404,
                    errors,
                    ..
                },
                false,
            )) => {
                assert!(
                    errors.iter().any(|e| e.contains("namespace `team`")),
                    "{errors:?}"
                );
            }
            other => panic!("expected an error, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            t.classify(StatusCode::BAD_GATEWAY, None, true, "p"),
            Err((Error::Vault { status: 502, .. }, true))
        ));
        assert!(matches!(
            t.classify(StatusCode::TOO_MANY_REQUESTS, None, true, "p"),
            Err((_, true))
        ));
        assert!(matches!(
            t.classify(StatusCode::BAD_REQUEST, None, true, "p"),
            Err((Error::Vault { status: 400, .. }, false))
        ));
        assert!(matches!(
            t.classify(StatusCode::OK, None, false, "p"),
            Err((Error::Malformed { .. }, false))
        ));
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
