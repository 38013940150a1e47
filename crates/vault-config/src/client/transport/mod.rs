//! HTTP to Vault: [`Transport`] sends one request to the cluster's
//! addresses in turn (failover), with its timeout, bounded retries, one
//! redirect back to a configured address, and the cluster state it must see.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Transport`]: the request path, address by address |
//! | [`settings`] | [`TransportSettings`](settings::TransportSettings): reqwest/TLS set-up |
//! | `answer` | what Vault's answer means: [`Reply`] or an error, retryable or not |
//! | `retry` | the retry policy, its backoff, what a failover looks like |
//! | `consistency` | the cluster state (`X-Vault-Index`) requests carry |
//!
//! Imports run one way: `settings` → `mod.rs` → `answer`, `retry`,
//! `consistency` (leaves). The transport uses the env contract's names
//! (`client/names.rs`), `base`, `error` and `telemetry`, nothing else of
//! the client.

mod answer;
mod consistency;
mod retry;
pub(crate) mod settings;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::Instrument;
use url::Url;
use zeroize::Zeroize;

use crate::client::names::ContractNames;
use crate::client::transport::answer::{
    classify, not_repeated, path_only, root_cause, transport_error, Attempt,
};
pub(crate) use crate::client::transport::answer::{Repeat, Reply};
use crate::client::transport::consistency::{Anchor, Carried, ClusterState};
use crate::client::transport::retry::{error_is_failover, RetryPolicy};
use crate::error::{Error, Result};
use crate::telemetry::{operation_of, outcome_of, shown_path, Telemetry};

/// The per-request timeout used when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The cluster state requests carry (see `consistency`).
    cluster: ClusterState,
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
            cluster: ClusterState::new(),
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
        if n > 1 && self.cluster.should_learn() {
            let _permit = self.in_flight.acquire().await.ok();
            self.cluster.learn(self.timeout, self.ask_cluster()).await;
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
        let (mut carried, mut consistent) = self.cluster.consistency();
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
                        let learn = self.cluster.learn(self.timeout, self.ask_cluster());
                        self.cluster
                            .confirm(method, api_path, &reply, carried, indexed, learn)
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
                    self.cluster.set_anchor(Anchor::NotNeeded);
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

    /// What a failed exchange with address number `at` makes of the request.
    fn failed(&self, e: &reqwest::Error, api_path: &str, at: usize) -> Attempt {
        transport_error(
            e,
            api_path,
            &self.shown[at],
            self.timeout,
            &self.tls_settings,
        )
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
            Err(e) => return (self.failed(&e, api_path, at), false),
        };
        let indexed = self
            .cluster
            .observe(response.headers().get("x-vault-index"));
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
                    return self.failed(&e, api_path, at);
                }
            }
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let empty = bytes.is_empty();
        bytes.zeroize();
        let meaning = classify(
            status,
            body,
            empty,
            api_path,
            self.namespace.as_deref(),
            &self.shown[at],
        );
        match Attempt::from(meaning) {
            Attempt::Retry { error, sent, .. } => Attempt::Retry {
                error,
                sent,
                after: retry_after,
            },
            other => other,
        }
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
#[cfg(test)]
mod tests {
    use super::*;

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
}
