//! Metrics a fleet can alert on, through the [`metrics`](https://docs.rs/metrics)
//! facade, with the `metrics` cargo feature (off by default; without a
//! recorder installed, a metric costs an atomic load and its labels' clones).
//! Any recorder built on `metrics` 0.24 works (`metrics-exporter-prometheus`
//! 0.16 or later); one built on another `metrics` version silently sees nothing.
//!
//! Every name starts with `vault_config_`; durations are in seconds, times are
//! Unix timestamps in seconds. No label ever carries a value, a token or a
//! lease ID. Every metric has a `client` label: the name given with
//! [`VaultClientBuilder::metrics_name`](crate::VaultClientBuilder::metrics_name)
//! (`default` unless set), so that one process's clients stay apart. Paths
//! appear only in the lease metrics' `path` label, and only when
//! [`VaultClientBuilder::metrics_paths`](crate::VaultClientBuilder::metrics_paths)
//! opts in (a label per path can be many series).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `vault_config_requests_total` | counter | `operation`, `outcome` | requests to Vault: `operation` is `read`, `metadata`, `mount`, `lookup`, `login`, `renew`, `revoke`, `unwrap`, `write`; `outcome` is `ok`, `not_found`, `denied`, `sealed`, `unavailable`, `timeout`, `auth`, `invalid`, `error` |
//! | `vault_config_request_duration_seconds` | histogram | `operation` | how long each took |
//! | `vault_config_loads_total` | counter | `outcome` | loads (`VaultConfig::load`, a watcher's first): `ok`, `env` (Vault off, or down with fallback: the values came from env), or the kind of failure |
//! | `vault_config_load_duration_seconds` | histogram | | how long a load took |
//! | `vault_config_polls_total` | counter | `outcome` | watcher polls: `ok`, or the kind of failure (`unavailable`, `denied`, `invalid`, `auth`, `error`) |
//! | `vault_config_poll_duration_seconds` | histogram | | how long a poll took |
//! | `vault_config_reloads_total` | counter | | new configs published |
//! | `vault_config_rotations_held_back_total` | counter | | rotations that did not make a valid config (a KV v2 rotation once; KV v1 paths and static roles, which have no version to compare, at each poll that reads them) |
//! | `vault_config_last_success_timestamp_seconds` | gauge | | when a poll last went through: `time() - x > 3 * interval` is "stale"; shared by the watchers of one client (give each watcher its own client name to tell them apart) |
//! | `vault_config_token_expiry_timestamp_seconds` | gauge | | when the token expires (if it does) |
//! | `vault_config_token_renewals_total` | counter | | token renewals |
//! | `vault_config_token_renewal_failures_total` | counter | | token renewals that failed (retried with backoff, or replaced by a login) |
//! | `vault_config_logins_total` | counter | `outcome` | logins: `ok`, `failed`, `refused` |
//! | `vault_config_lease_expiry_timestamp_seconds` | gauge | (`path`) | when the soonest lease (or each path's) expires |
//! | `vault_config_certificate_expiry_timestamp_seconds` | gauge | `field`, `source` (`pki`, `kv`) | when each TLS identity in the config in force expires |
//! | `vault_config_certificate_reissue_timestamp_seconds` | gauge | `field` | when a PKI certificate in force is (or was) due to be issued again; in the past while issuing fails |
//! | `vault_config_certificates_issued_total` | counter | | certificates PKI roles issued (at loads, and again before expiry) |
//! | `vault_config_lease_renewals_total` | counter | | lease renewals |
//! | `vault_config_lease_renewal_failures_total` | counter | | lease renewals that failed (retried with backoff, or replaced by new credentials) |
//! | `vault_config_lease_replacements_total` | counter | | leases replaced by new credentials |
//! | `vault_config_lease_revocations_total` | counter | | leases revoked |
//!
//! ```text
//! # alert when a watcher has not polled Vault for 3 intervals of 30 s
//! time() - vault_config_last_success_timestamp_seconds > 90
//! # alert when a lease expires within 5 minutes
//! vault_config_lease_expiry_timestamp_seconds - time() < 300
//! # alert when a certificate from KV expires within 7 days (write a new one)
//! vault_config_certificate_expiry_timestamp_seconds{source="kv"} - time() < 7 * 86400
//! # alert when a PKI certificate has not been issued again 5 minutes after it was due
//! time() - vault_config_certificate_reissue_timestamp_seconds > 300
//! ```

use std::time::Duration;

use crate::error::Error;

/// Which metrics a client reports, and under which name.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    /// The `client` label.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    name: String,
    /// Whether lease metrics carry a `path` label.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    paths: bool,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            name: "default".to_owned(),
            paths: false,
        }
    }
}

/// The outcome label of a request that failed.
pub(crate) fn outcome_of(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "not_found",
        Error::PermissionDenied { .. } => "denied",
        Error::Sealed { .. } => "sealed",
        Error::Timeout { .. } => "timeout",
        e if e.is_unavailable() => "unavailable",
        Error::Auth { .. } => "auth",
        Error::Invalid { .. } | Error::Missing { .. } | Error::Identity { .. } => "invalid",
        _ => "error",
    }
}

/// The operation label of a request to `api_path`.
pub(crate) fn operation_of(api_path: &str, write: bool) -> &'static str {
    if api_path.starts_with("auth/") && api_path.ends_with("/login") {
        "login"
    } else if api_path.starts_with("auth/token/renew") || api_path.starts_with("sys/leases/renew") {
        "renew"
    } else if api_path.starts_with("auth/token/revoke") || api_path.starts_with("sys/leases/revoke")
    {
        "revoke"
    } else if api_path.starts_with("auth/token/lookup") {
        "lookup"
    } else if api_path.starts_with("sys/wrapping/unwrap") {
        "unwrap"
    } else if api_path.starts_with("sys/internal/ui/mounts") {
        "mount"
    } else if api_path.contains("/metadata/") {
        "metadata"
    } else if write {
        "write"
    } else {
        "read"
    }
}

/// The path a request span shows: a lease's ID (the last segment of
/// `sys/leases/{renew,revoke}/<path>/<id>`) is left out.
pub(crate) fn shown_path(api_path: &str) -> &str {
    match api_path.strip_prefix("sys/leases/") {
        Some(_) => api_path.rsplit_once('/').map_or(api_path, |(head, _)| head),
        None => api_path,
    }
}

impl Telemetry {
    pub(crate) fn new(name: Option<String>, paths: bool) -> Self {
        Telemetry {
            name: name.unwrap_or_else(|| "default".to_owned()),
            paths,
        }
    }

    /// A request to Vault and how it ended.
    pub(crate) fn request(&self, operation: &'static str, outcome: &'static str, took: Duration) {
        #[cfg(feature = "metrics")]
        {
            let client = self.name.clone();
            metrics::counter!("vault_config_requests_total", "client" => client.clone(), "operation" => operation, "outcome" => outcome).increment(1);
            metrics::histogram!("vault_config_request_duration_seconds", "client" => client, "operation" => operation).record(took.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (operation, outcome, took);
    }

    /// A load and how it ended.
    pub(crate) fn load(&self, outcome: &'static str, took: Duration) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("vault_config_loads_total", "client" => self.name.clone(), "outcome" => outcome).increment(1);
            metrics::histogram!("vault_config_load_duration_seconds", "client" => self.name.clone()).record(took.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (outcome, took);
    }

    /// A poll and how it ended; a successful one stamps the time.
    pub(crate) fn poll(&self, outcome: &'static str, took: Duration, now_unix: u64) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("vault_config_polls_total", "client" => self.name.clone(), "outcome" => outcome).increment(1);
            metrics::histogram!("vault_config_poll_duration_seconds", "client" => self.name.clone()).record(took.as_secs_f64());
            if outcome == "ok" {
                metrics::gauge!("vault_config_last_success_timestamp_seconds", "client" => self.name.clone()).set(now_unix as f64);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (outcome, took, now_unix);
    }

    /// The watcher's first load went through: the freshness clock starts.
    pub(crate) fn success_at(&self, now_unix: u64) {
        #[cfg(feature = "metrics")]
        metrics::gauge!("vault_config_last_success_timestamp_seconds", "client" => self.name.clone()).set(now_unix as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = now_unix;
    }

    /// Something happened that is counted: `reloads`, `rotations_held_back`,
    /// `token_renewals`, `lease_renewals`, `lease_replacements`, `lease_revocations`.
    pub(crate) fn count(&self, what: Count, n: u64) {
        #[cfg(feature = "metrics")]
        {
            let name = match what {
                Count::Reload => "vault_config_reloads_total",
                Count::HeldBack => "vault_config_rotations_held_back_total",
                Count::TokenRenewal => "vault_config_token_renewals_total",
                Count::TokenRenewalFailure => "vault_config_token_renewal_failures_total",
                Count::LeaseRenewal => "vault_config_lease_renewals_total",
                Count::LeaseRenewalFailure => "vault_config_lease_renewal_failures_total",
                Count::LeaseReplacement => "vault_config_lease_replacements_total",
                Count::LeaseRevocation => "vault_config_lease_revocations_total",
                Count::CertificateIssued => "vault_config_certificates_issued_total",
            };
            metrics::counter!(name, "client" => self.name.clone()).increment(n);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (what, n);
    }

    /// A login and how it ended: `ok`, `failed`, `refused`.
    pub(crate) fn login(&self, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        metrics::counter!("vault_config_logins_total", "client" => self.name.clone(), "outcome" => outcome).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
    }

    /// When the token expires, in seconds since the epoch.
    pub(crate) fn token_expiry(&self, at_unix: u64) {
        #[cfg(feature = "metrics")]
        metrics::gauge!("vault_config_token_expiry_timestamp_seconds", "client" => self.name.clone()).set(at_unix as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = at_unix;
    }

    /// When the leases expire: the soonest, or each path's when paths are on.
    pub(crate) fn lease_expiries(&self, leases: &[(String, u64)]) {
        #[cfg(feature = "metrics")]
        {
            if self.paths {
                for (path, at) in leases {
                    metrics::gauge!("vault_config_lease_expiry_timestamp_seconds", "client" => self.name.clone(), "path" => path.clone()).set(*at as f64);
                }
            } else if let Some(soonest) = leases.iter().map(|(_, at)| *at).min() {
                metrics::gauge!("vault_config_lease_expiry_timestamp_seconds", "client" => self.name.clone()).set(soonest as f64);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = leases;
    }
}

impl Telemetry {
    /// When each TLS identity in force expires, and when a PKI one is
    /// issued again (`None` for one from KV), by field.
    pub(crate) fn certificates(&self, certificates: &[(&str, u64, Option<u64>)]) {
        #[cfg(feature = "metrics")]
        for (field, expires_at, reissue_at) in certificates {
            let source = if reissue_at.is_some() { "pki" } else { "kv" };
            metrics::gauge!("vault_config_certificate_expiry_timestamp_seconds", "client" => self.name.clone(), "field" => field.to_string(), "source" => source).set(*expires_at as f64);
            if let Some(at) = reissue_at {
                metrics::gauge!("vault_config_certificate_reissue_timestamp_seconds", "client" => self.name.clone(), "field" => field.to_string()).set(*at as f64);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = certificates;
    }
}

/// The counters of [`Telemetry::count`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Reload,
    HeldBack,
    TokenRenewal,
    TokenRenewalFailure,
    LeaseRenewal,
    LeaseRenewalFailure,
    LeaseReplacement,
    LeaseRevocation,
    CertificateIssued,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_outcomes() {
        assert_eq!(operation_of("auth/approle/login", true), "login");
        assert_eq!(
            operation_of("sys/leases/renew/database/creds/app/x", true),
            "renew"
        );
        assert_eq!(operation_of("auth/token/renew-self", true), "renew");
        assert_eq!(operation_of("sys/leases/revoke/x", true), "revoke");
        assert_eq!(operation_of("secret/metadata/app", false), "metadata");
        assert_eq!(operation_of("secret/data/app", false), "read");
        assert_eq!(operation_of("secret/data/app", true), "write");
        assert_eq!(
            shown_path("sys/leases/renew/database/creds/app/abc123"),
            "sys/leases/renew/database/creds/app"
        );
        assert_eq!(shown_path("secret/data/app"), "secret/data/app");
        let e = Error::Sealed { addr: "a".into() };
        assert_eq!(outcome_of(&e), "sealed");
    }
}
