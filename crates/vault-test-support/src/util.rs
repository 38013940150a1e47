//! Small helpers shared by the harness and the tests.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use vault_config::EnvSource;

/// A boxed error for test plumbing.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Two adjacent free loopback ports (a dev server also binds its cluster port at +1).
pub(crate) fn free_port_pair() -> Option<u16> {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let port = probe.local_addr().ok()?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

pub(crate) fn path_str(p: &Path) -> TestResult<&str> {
    p.to_str()
        .ok_or_else(|| "a temporary path is not UTF-8".into())
}

/// The string at JSON pointer `pointer` of a Vault answer, or an error naming it.
pub(crate) fn string_at(answer: &Value, pointer: &str) -> TestResult<String> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no string at {pointer} in the answer").into())
}

/// Waits until `check` holds, looking every 100 ms; panics after `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An [`EnvSource`] holding exactly `vars`.
pub fn env_of(vars: &[(&str, &str)]) -> EnvSource {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    EnvSource::from_fn(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// A loopback address where nothing listens (bound once, then released).
pub fn dead_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}
