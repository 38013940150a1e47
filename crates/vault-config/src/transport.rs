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
            namespace,
            self.timeout,
            self.retry,
            names,
        ))
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

/// One outcome of one attempt: done, or worth another try.
enum Attempt {
    Done(Result<Reply>),
    Retry(Error),
}

/// Sends requests to one Vault server.
pub(crate) struct Transport {
    http: reqwest::Client,
    addr: Url,
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
        Transport {
            http,
            addr,
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

    pub(crate) fn addr(&self) -> &str {
        self.addr.as_str()
    }

    /// The URL of `api_path` (below `/v1/`, may carry a `?query`).
    fn url(&self, api_path: &str) -> Url {
        let (path, query) = match api_path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (api_path, None),
        };
        let mut url = self.addr.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push("v1")
                .extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url.set_query(query);
        url
    }

    /// `GET /v1/<api_path>` with `token`, retried as the policy says.
    pub(crate) async fn get(&self, api_path: &str, token: Option<&SecretString>) -> Result<Reply> {
        self.send(Method::GET, api_path, None, token).await
    }

    /// `POST /v1/<api_path>` with a JSON body.
    pub(crate) async fn post(
        &self,
        api_path: &str,
        body: &Value,
        token: Option<&SecretString>,
    ) -> Result<Reply> {
        self.send(Method::POST, api_path, Some(body), token).await
    }

    async fn send(
        &self,
        method: Method,
        api_path: &str,
        body: Option<&Value>,
        token: Option<&SecretString>,
    ) -> Result<Reply> {
        let url = self.url(api_path);
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
                Attempt::Retry(err) if attempt < self.retry.max_retries => {
                    attempt += 1;
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(path = api_path, attempt, ?wait, error = %err, "retrying Vault request");
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry(err) => return Err(err),
            }
        }
    }

    async fn attempt(&self, request: reqwest::RequestBuilder, api_path: &str) -> Attempt {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(&e, api_path),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_error(&e, api_path),
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        Attempt::from(self.classify(status, body, bytes.is_empty(), api_path))
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
            StatusCode::NOT_FOUND => Ok(Reply::NotFound),
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
                        addr: self.addr.to_string(),
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
        let addr = self.addr.to_string();
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
        if e.is_connect() || e.is_request() || e.is_body() {
            return Attempt::Retry(Error::Connect { addr, reason });
        }
        Attempt::Done(Err(Error::Connect { addr, reason }))
    }
}

impl From<std::result::Result<Reply, (Error, bool)>> for Attempt {
    fn from(r: std::result::Result<Reply, (Error, bool)>) -> Self {
        match r {
            Ok(reply) => Attempt::Done(Ok(reply)),
            Err((e, true)) => Attempt::Retry(e),
            Err((e, false)) => Attempt::Done(Err(e)),
        }
    }
}

/// The API path without its query string, for messages.
fn path_only(api_path: &str) -> String {
    api_path.split('?').next().unwrap_or(api_path).to_owned()
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
            t.url("secret/data/my app/db?version=3").as_str(),
            "http://127.0.0.1:8200/v1/secret/data/my%20app/db?version=3"
        );
        let mut behind_proxy = t;
        behind_proxy.addr = Url::parse("https://h/vault/").unwrap();
        assert_eq!(
            behind_proxy.url("sys/health").as_str(),
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
            "secret/data/x?version=2",
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
