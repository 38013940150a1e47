//! [`CertificateRequest`]: what a PKI role is asked for, under Vault's
//! names. Plain data, so a description can hold one; the client call that
//! sends it is in the engines layer.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

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

    /// The validity asked for (the role's `max_ttl` bounds it), in whole
    /// seconds, rounded up; zero: the role's `ttl`, as when unset.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        self.ttl = Some(Duration::from_secs(secs)).filter(|t| !t.is_zero());
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
    pub(crate) fn body(&self) -> Value {
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
        // Vault reads `0s` as the role's own TTL: never send it for 500 ms.
        assert_eq!(
            CertificateRequest::new("x")
                .ttl(Duration::from_millis(500))
                .requested_ttl(),
            Some(Duration::from_secs(1))
        );
    }
}
