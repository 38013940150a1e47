//! Metrics (the `metrics` feature) through a real Prometheus recorder, and the
//! `health_server` example's endpoints, against real OpenBao dev servers.
//!
//! One recorder serves the whole test binary (a process has one global
//! recorder); each test gives its client its own `metrics_name` and reads only
//! the series with that `client` label, so tests running at once stay apart.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;
use vault_config::{ExposeSecret, SecretString, VaultConfig, WatchOptions};
use vault_test_support::{eventually, DevServer, Postgres};

#[allow(dead_code)] // `main` and its helpers run only as the example
#[path = "../crates/vault-config/examples/health_server.rs"]
mod health_server;

const WAIT: Duration = Duration::from_secs(15);

/// Log lines, spans included (with their fields when they close), at
/// `debug`, of the tests that asked for them: one global subscriber (a
/// thread-local one races with the other tests over tracing's cached
/// interest) writes each line to the buffer of the thread that emitted it. A
/// `#[tokio::test]` runs the watcher's task on the test's own thread.
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Writes to the current thread's capture, if any.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(capture) = c.borrow().as_ref() {
                capture.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(crate) fn start() -> Captured {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            tracing_subscriber::fmt()
                .with_writer(|| ThreadWriter)
                .with_env_filter("vault_config=debug")
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .with_ansi(false)
                .try_init()
                .expect("no other suite of this binary installs a global subscriber");
        });
        let buffer = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
        Captured(buffer)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

/// The process's Prometheus recorder, installed on first use.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder of this test binary")
    })
}

/// The sum of the samples of `name` whose labels include `client` and `labels`
/// (0 when there is none), from the Prometheus text format.
fn sample(client: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = recorder().render();
    let client = format!("client=\"{client}\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.split_once("} ")?;
            let wanted = std::iter::once(client.clone())
                .chain(labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
            let all = wanted
                .into_iter()
                .all(|l| set.split(',').any(|have| have == l));
            all.then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The lines of the rendered text that belong to `client`.
fn series_of(client: &str) -> String {
    let client = format!("client=\"{client}\"");
    recorder()
        .render()
        .lines()
        .filter(|l| l.contains(&client))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Service {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
    #[vault("database#port", env = "DATABASE_PORT")]
    port: u16,
    #[vault("app-prod#AOS_API_KEY")]
    api_key: SecretString,
}

async fn seeded() -> DevServer {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://aos:url-secret-1@db/aos", "port": "5432"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "app-prod", json!({"AOS_API_KEY": "api-secret-1"}))
        .await
        .unwrap();
    server
}

fn fast() -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(100))
        .jitter(0.0)
        .max_backoff(Duration::from_millis(400))
}

/// Fails when any of `secrets` shows up anywhere in the rendered metrics.
fn assert_no_secret(secrets: &[&str]) {
    let text = recorder().render();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "a secret is in the metrics:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_load_and_a_rotation_move_their_metrics() {
    recorder();
    let c = "t-load-rotation";
    let server = seeded().await;
    let client = server.client_builder(&[]).metrics_name(c).build().unwrap();

    let service = Service::load(&client).await.unwrap();
    assert_eq!(service.api_key.expose_secret(), "api-secret-1");
    assert_eq!(service.port, 5432);
    assert_eq!(
        sample(c, "vault_config_loads_total", &[("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        sample(c, "vault_config_load_duration_seconds_count", &[]),
        1.0
    );
    assert_eq!(
        sample(
            c,
            "vault_config_requests_total",
            &[("operation", "read"), ("outcome", "ok")]
        ),
        2.0,
        "one read per path:\n{}",
        series_of(c)
    );
    assert_eq!(sample(c, "vault_config_reloads_total", &[]), 0.0);

    let watcher = Service::watch(&client, fast()).await.unwrap();
    let mut rx = watcher.subscribe();
    assert_eq!(
        sample(c, "vault_config_loads_total", &[("outcome", "ok")]),
        2.0
    );
    eventually(WAIT, || {
        sample(c, "vault_config_polls_total", &[("outcome", "ok")]) >= 1.0
    })
    .await;
    let stamped = sample(c, "vault_config_last_success_timestamp_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - stamped).abs() < 60.0,
        "last success {stamped}, now {now}"
    );
    assert!(
        sample(
            c,
            "vault_config_requests_total",
            &[("operation", "metadata"), ("outcome", "ok")]
        ) >= 2.0
    );

    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://aos:url-secret-2@db/aos", "port": "5432"}),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rx.borrow().database_url.expose_secret(),
        "postgres://aos:url-secret-2@db/aos"
    );
    assert_eq!(sample(c, "vault_config_reloads_total", &[]), 1.0);
    // The watcher's first load read both paths; the rotation re-read only its own.
    assert_eq!(
        sample(
            c,
            "vault_config_requests_total",
            &[("operation", "read"), ("outcome", "ok")]
        ),
        5.0,
        "{}",
        series_of(c)
    );
    assert_eq!(
        sample(c, "vault_config_rotations_held_back_total", &[]),
        0.0
    );
    assert_no_secret(&[
        "url-secret-1",
        "url-secret-2",
        "api-secret-1",
        server.root_token(),
    ]);
    watcher.shutdown().await;
}

#[tokio::test]
async fn a_held_back_rotation_and_an_outage_are_counted_as_such() {
    recorder();
    let c = "t-held-outage";
    let mut server = seeded().await;
    let client = server.client_builder(&[]).metrics_name(c).build().unwrap();
    let watcher = Service::watch(&client, fast()).await.unwrap();

    // A rotation that does not make a valid config: counted once, not published.
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://aos:url-secret-3@db/aos", "port": "not-a-port"}),
        )
        .await
        .unwrap();
    eventually(WAIT, || {
        sample(c, "vault_config_rotations_held_back_total", &[]) >= 1.0
    })
    .await;
    let polls = sample(c, "vault_config_polls_total", &[]);
    let reads = sample(c, "vault_config_requests_total", &[("operation", "read")]);
    eventually(WAIT, || {
        sample(c, "vault_config_polls_total", &[]) >= polls + 3.0
    })
    .await;
    // Polls that find the same rejected version neither read it again nor count it.
    assert_eq!(
        sample(c, "vault_config_requests_total", &[("operation", "read")]),
        reads
    );
    assert!(sample(c, "vault_config_polls_total", &[("outcome", "invalid")]) >= 3.0);
    assert_eq!(
        sample(c, "vault_config_rotations_held_back_total", &[]),
        1.0,
        "one rotation, held back once:\n{}",
        series_of(c)
    );
    assert_eq!(sample(c, "vault_config_reloads_total", &[]), 0.0);
    assert_eq!(watcher.current().port, 5432);
    // The fix goes out at once, and the rejection is forgotten.
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://aos:url-secret-4@db/aos", "port": "6543"}),
        )
        .await
        .unwrap();
    eventually(WAIT, || watcher.current().port == 6543).await;
    assert_eq!(sample(c, "vault_config_reloads_total", &[]), 1.0);
    assert_eq!(
        sample(c, "vault_config_rotations_held_back_total", &[]),
        1.0
    );
    assert_eq!(watcher.health().last_error, None);

    // Vault goes away: polls fail as `unavailable`, the freshness stamp stops.
    server.stop().await;
    eventually(WAIT, || {
        sample(c, "vault_config_polls_total", &[("outcome", "unavailable")]) >= 2.0
    })
    .await;
    let stamped = sample(c, "vault_config_last_success_timestamp_seconds", &[]);
    assert!(
        sample(
            c,
            "vault_config_requests_total",
            &[("operation", "metadata"), ("outcome", "unavailable")]
        ) >= 2.0,
        "{}",
        series_of(c)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sample(c, "vault_config_last_success_timestamp_seconds", &[]),
        stamped,
        "no success while Vault is down"
    );
    assert_no_secret(&[
        "url-secret-1",
        "url-secret-3",
        "url-secret-4",
        "api-secret-1",
    ]);
    watcher.shutdown().await;
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Db {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: SecretString,
}

#[tokio::test]
async fn lease_renewals_and_expiry_are_reported_without_the_lease() {
    recorder();
    let logs = Captured::start();
    let c = "t-lease";
    let mut server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", "3s", "1h")
        .await
        .unwrap();
    // A periodic token, renewed on its own schedule beside the lease.
    let token = server
        .create_token(json!({"period": "3s", "policies": ["root"]}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .token(token.clone())
        .metrics_name(c)
        .metrics_paths(true)
        .build()
        .unwrap();
    let watcher = Db::watch(&client, fast()).await.unwrap();
    let db = watcher.current();
    assert!(db.username.starts_with("v-"), "{}", db.username);

    eventually(WAIT, || {
        sample(c, "vault_config_lease_renewals_total", &[]) >= 1.0
    })
    .await;
    let expiry = sample(
        c,
        "vault_config_lease_expiry_timestamp_seconds",
        &[("path", "database/creds/app")],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now - 1.0 && expiry < now + 10.0,
        "a 3 s lease expires in the next seconds: {expiry} vs {now}\n{}",
        series_of(c)
    );
    assert!(
        sample(
            c,
            "vault_config_requests_total",
            &[("operation", "renew"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert_eq!(sample(c, "vault_config_lease_replacements_total", &[]), 0.0);
    eventually(WAIT, || {
        sample(c, "vault_config_token_renewals_total", &[]) >= 1.0
    })
    .await;
    let token_expiry = sample(c, "vault_config_token_expiry_timestamp_seconds", &[]);
    assert!(
        token_expiry > now - 1.0 && token_expiry < now + 10.0,
        "a 3 s periodic token: {token_expiry} vs {now}"
    );
    assert_eq!(
        sample(c, "vault_config_token_renewal_failures_total", &[]),
        0.0
    );
    assert_eq!(
        sample(c, "vault_config_lease_renewal_failures_total", &[]),
        0.0
    );

    // Vault goes away: both renewals fail, and say so.
    server.stop().await;
    eventually(WAIT, || {
        sample(c, "vault_config_token_renewal_failures_total", &[]) >= 1.0
            && sample(c, "vault_config_lease_renewal_failures_total", &[]) >= 1.0
    })
    .await;
    let text = series_of(c);
    // Lease IDs are `database/creds/app/<id>`: the path may show, an ID never.
    assert!(!text.contains("database/creds/app/"), "{text}");
    assert_no_secret(&[db.password.expose_secret(), server.root_token(), &token]);
    watcher.shutdown().await;
    // Nor in the logs and spans at `debug`, which name the renewal.
    let logs = logs.text();
    assert!(logs.contains("operation=\"renew\""), "{logs}");
    for secret in [
        "database/creds/app/",
        db.password.expose_secret(),
        server.root_token(),
        &token,
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn the_health_server_example_answers_as_documented() {
    let metrics = recorder().clone();
    let mut server = seeded().await;
    let client = server
        .client_builder(&[])
        .metrics_name("t-health-server")
        .build()
        .unwrap();
    let watcher = Arc::new(
        health_server::Settings::watch(&client, fast())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = health_server::app(watcher.clone(), metrics);
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };

    let (status, body) = get("/api/v1/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy", "{body}");
    assert_eq!(health["secrets"]["vault_enabled"], true, "{body}");
    assert_eq!(health["secrets"]["vault_connected"], true, "{body}");
    assert!(
        health["secrets"]["versions"]["secret/database"].is_u64(),
        "{body}"
    );
    // The address that answered, from the first load on.
    assert!(health["secrets"]["vault_address"].is_string(), "{body}");

    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"vault_config_loads_total{client="t-health-server",outcome="ok"} 1"#),
        "{body}"
    );

    // Vault goes away: the service keeps running and says so.
    server.stop().await;
    let mut body = String::new();
    for _ in 0..150 {
        body = get("/api/v1/health").await.1;
        if body.contains(r#""vault_connected":false"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "degraded", "{body}");
    assert_eq!(health["secrets"]["vault_connected"], false, "{body}");
    assert!(health["secrets"]["last_error"].is_string(), "{body}");
    let (_, metrics) = get("/metrics").await;
    for secret in ["url-secret-1", "api-secret-1", server.root_token()] {
        assert!(!body.contains(secret) && !metrics.contains(secret));
    }
    serving.abort();
}

#[tokio::test]
async fn a_load_is_explained_by_its_spans() {
    let logs = Captured::start();
    let server = seeded().await;
    let client = server.client_builder(&[]).build().unwrap();
    Service::load(&client).await.unwrap();
    let sent = client.requests_sent();
    let logs = logs.text();
    // The load's span closes with what it cost; each request is a child span
    // with its operation, outcome and duration.
    let load = logs
        .lines()
        .find(|l| {
            l.contains("vault_config.load{")
                && !l.contains("vault_config.request{")
                && l.contains("close")
        })
        .unwrap_or_else(|| panic!("no load span:\n{logs}"));
    assert!(load.contains("paths=2"), "{load}");
    assert!(load.contains(&format!("requests={sent}")), "{load}");
    assert!(load.contains("outcome=\"ok\""), "{load}");
    assert!(load.contains("duration_ms="), "{load}");
    let reads: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.contains("vault_config.load{")
                && l.contains("vault_config.request{operation=\"read\"")
        })
        .filter(|l| l.contains("close"))
        .collect();
    assert_eq!(reads.len(), 2, "one read span per path:\n{logs}");
    assert!(reads.iter().all(|l| l.contains("outcome=\"ok\"")), "{logs}");
    for secret in ["url-secret-1", "api-secret-1", server.root_token()] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
}
