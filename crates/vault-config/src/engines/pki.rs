//! Certificates issued by Vault's PKI engine: the client call that issues
//! one for a [`CertificateRequest`] (`pki/issue/<role>`).
//!
//! Issuing is a write: every call makes a new certificate and private key
//! (Vault keeps no copy of the key). Nothing is leased, so nothing is renewed
//! or revoked: a [`Watcher`](crate::Watcher) issues again before two thirds
//! of the certificate's validity have passed, and the old certificate simply
//! expires.

use std::time::Instant;

use crate::base::check_segments;
use crate::client::transport::{Repeat, Reply};
use crate::client::VaultClient;
use crate::engines::secret::KvSecret;
use crate::error::{Error, Result};
use crate::telemetry::Count;
use crate::tls::CertificateRequest;

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
            common_name = %request.common_name(),
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
