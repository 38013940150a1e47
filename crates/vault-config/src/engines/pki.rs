//! Certificates issued by Vault's PKI engine: the [`CertificateRequest`] a
//! role is asked with (`pki/issue/<role>`), and the client call that issues
//! one.
//!
//! Issuing is a write: every call makes a new certificate and private key
//! (Vault keeps no copy of the key). Nothing is leased, so nothing is renewed
//! or revoked: a [`Watcher`](crate::Watcher) issues again before two thirds
//! of the certificate's validity have passed, and the old certificate simply
//! expires.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::base::check_segments;
use crate::client::transport::{Repeat, Reply};
use crate::client::VaultClient;
use crate::engines::secret::KvSecret;
use crate::error::{Error, Result};
use crate::telemetry::Count;

/// What a PKI role is asked for: the parameters of Vault's
/// `POST /v1/<mount>/issue/<role>`, under Vault's own names.
///
/// ```
/// use std::time::Duration;
/// use vault_config::tls::CertificateRequest;
/// let request = CertificateRequest::new("gateway.internal")
///     .alt_names(["gateway", "gateway.svc.cluster.local"])
///     .ip_sans(["10.0.0.7"])
///     .ttl(Duration::from_secs(24 * 3600));
/// assert_eq!(request.common_name(), "gateway.internal");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertificateRequest {
    common_name: String,
    alt_names: Vec<String>,
    ip_sans: Vec<String>,
    ttl: Option<Duration>,
}

impl CertificateRequest {
    /// A certificate for `common_name` (the role must allow it).
    pub fn new(common_name: impl Into<String>) -> Self {
        CertificateRequest {
            common_name: common_name.into(),
            alt_names: Vec::new(),
            ip_sans: Vec::new(),
            ttl: None,
        }
    }

    /// DNS (or email) subject alternative names, Vault's `alt_names`.
    pub fn alt_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.alt_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// IP subject alternative names, Vault's `ip_sans`.
    pub fn ip_sans<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ips: I) -> Self {
        self.ip_sans = ips.into_iter().map(Into::into).collect();
        self
    }

    /// The validity asked for (the role's `max_ttl` bounds it); unset, the
    /// role's `ttl`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl).filter(|t| !t.is_zero());
        self
    }

    /// The common name asked for.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The DNS alternative names asked for.
    pub fn alt_name_list(&self) -> &[String] {
        &self.alt_names
    }

    /// The IP alternative names asked for.
    pub fn ip_san_list(&self) -> &[String] {
        &self.ip_sans
    }

    /// The validity asked for, if any.
    pub fn requested_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The request body, as Vault's API names each parameter.
    fn body(&self) -> Value {
        let mut body = json!({ "common_name": self.common_name });
        if !self.alt_names.is_empty() {
            body["alt_names"] = json!(self.alt_names.join(","));
        }
        if !self.ip_sans.is_empty() {
            body["ip_sans"] = json!(self.ip_sans.join(","));
        }
        if let Some(ttl) = self.ttl {
            body["ttl"] = json!(format!("{}s", ttl.as_secs()));
        }
        body
    }
}

impl fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CertificateRequest");
        s.field("common_name", &self.common_name);
        if !self.alt_names.is_empty() {
            s.field("alt_names", &self.alt_names);
        }
        if !self.ip_sans.is_empty() {
            s.field("ip_sans", &self.ip_sans);
        }
        if let Some(ttl) = self.ttl {
            s.field("ttl", &ttl);
        }
        s.finish()
    }
}

impl VaultClient {
    /// Issues a certificate and its private key from the PKI role at `path`
    /// (`pki/issue/web`): Vault's answer as a secret with the keys
    /// `certificate`, `private_key`, `issuing_ca`, `ca_chain`,
    /// `serial_number`, `expiration` and `private_key_type`, the shape a
    /// [`tls::Identity`](crate::tls::Identity) deserializes from.
    ///
    /// Each call is a new certificate; the token needs `update` on `path`.
    /// A role that refuses the request (a common name it does not allow, a
    /// TTL over its `max_ttl`...) gives [`Error::Vault`] with Vault's words.
    pub async fn issue_certificate(
        &self,
        path: &str,
        request: &CertificateRequest,
    ) -> Result<KvSecret> {
        let api_path = path.trim_matches('/').to_owned();
        check_segments("path", &api_path, &api_path)?;
        let started = Instant::now();
        // A repeat after a lost answer only issues one more certificate,
        // which nobody uses and which expires on its own.
        let reply = self
            .send(&api_path, &[], Some(&request.body()), Repeat::Safe)
            .await?;
        tracing::debug!(
            path = %api_path,
            common_name = %request.common_name,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "vault certificate issued"
        );
        match reply {
            Reply::Ok(body) => {
                self.telemetry().count(Count::CertificateIssued, 1);
                KvSecret::from_issued(&api_path, body)
            }
            Reply::NotFound => Err(Error::Vault {
                status: 404,
                path: api_path,
                errors: vec![
                    "no PKI role answers at this path: is a PKI engine mounted there, and the role created (`<mount>/roles/<role>`)?"
                        .to_owned(),
                ],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_uses_vaults_names_and_omits_what_was_not_asked() {
        let plain = CertificateRequest::new("a.internal");
        assert_eq!(plain.body(), json!({"common_name": "a.internal"}));
        let full = CertificateRequest::new("a.internal")
            .alt_names(["a", "b.internal"])
            .ip_sans(["127.0.0.1", "::1"])
            .ttl(Duration::from_secs(90));
        assert_eq!(
            full.body(),
            json!({"common_name": "a.internal", "alt_names": "a,b.internal",
                   "ip_sans": "127.0.0.1,::1", "ttl": "90s"})
        );
        assert_eq!(
            CertificateRequest::new("x")
                .ttl(Duration::ZERO)
                .requested_ttl(),
            None
        );
    }
}
