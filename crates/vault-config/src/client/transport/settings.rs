//! The set-up of the HTTP side: [`TransportSettings`] (addresses, TLS,
//! timeouts, retries, limits), checked and turned into a [`Transport`] over
//! reqwest and rustls by [`TransportSettings::connect`].
//!
//! Uses the transport's core (`transport/mod.rs`), the retry policy and the
//! env contract's names (for errors that name the setting to fix).

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::client::names::ContractNames;
use crate::client::transport::retry::RetryPolicy;
use crate::client::transport::{
    redact_address, Transport, DEFAULT_FAILOVER_TIMEOUT, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
};
use crate::error::{Error, Result};

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
