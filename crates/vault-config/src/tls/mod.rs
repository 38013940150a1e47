//! TLS identities from Vault: a certificate chain and its private key as
//! a config field ([`Identity`]), and, with the `rustls` feature, a rustls
//! certificate resolver that serves the one in force (`CertResolver`).
//!
//! # Identity
//!
//! An [`Identity`] is checked when made: a certificate, a private key that
//! matches it, and a certificate valid now. It deserializes from the shape
//! Vault PKI's `pki/issue/<role>` answers and a KV secret written by hand
//! share: `certificate`, `private_key`, optionally `ca_chain` and
//! `issuing_ca`. Its errors say what is wrong and never quote a
//! certificate or the key. It tells when it should be replaced
//! ([`renew_at`](Identity::renew_at): two thirds into its validity) and
//! what a health endpoint may show of it ([`info`](Identity::info)).
//!
//! # From a KV secret
//!
//! Write the PEM files into one secret:
//!
//! ```text
//! bao kv put secret/tls/gateway certificate=@cert.pem private_key=@key.pem ca_chain=@ca.pem
//! ```
//!
//! and read the whole secret into the field:
//!
//! ```
//! # use serde::Deserialize;
//! # use vault_config::{tls::Identity, VaultConfig};
//! #[derive(Deserialize, VaultConfig)]
//! struct Config {
//!     #[vault(path = "tls/gateway", key = "*")]
//!     identity: Identity,
//! }
//! ```
//!
//! A [`Watcher`](crate::Watcher) publishes a rotation (a new `kv put`) as a
//! new config holding the new identity. One that fails its checks (expired,
//! a key that does not match, a half-written secret) is held back: the
//! identity in force stays, and the error shows in
//! [`Watcher::health`](crate::Watcher::health).
//!
//! # From Vault PKI
//!
//! ```
//! # use serde::Deserialize;
//! # use vault_config::{tls::Identity, VaultConfig};
//! #[derive(Deserialize, VaultConfig)]
//! struct Config {
//!     #[vault(
//!         pki = "pki/issue/web",          // the role's issue path
//!         common_name = "gateway.internal",
//!         alt_names = "gateway,gateway.svc.cluster.local", // optional, as Vault takes them
//!         ip_sans = "10.0.0.7",           // optional
//!         ttl = "24h",                    // optional: the role's ttl, capped by its max_ttl
//!     )]
//!     identity: Identity,
//! }
//! ```
//!
//! The certificate is issued when the config loads (every load, and every
//! watcher, gets its own) and a watcher issues the next one two thirds of
//! the way to its expiry (a warning, once, when the role's `max_ttl` or the
//! CA's expiry cut it far below the `ttl` asked), publishing it like any new
//! value; the key never leaves the service and nothing is revoked (old
//! certificates expire). The token needs `update` on the issue path (the
//! generated policy grants it). A field that is not an `Identity` (or an
//! `Option` of one) does not compile. [`Mapping::pki`](crate::Mapping::pki)
//! with a [`CertificateRequest`] does the same without the derive.
//!
//! # Health and metrics
//!
//! [`Health::certificates`](crate::Health::certificates) shows every
//! identity in the config in force, by field: serial, common name,
//! validity and, for a PKI one, when it is issued next and how many
//! attempts failed. With the `metrics` feature,
//! `vault_config_certificate_expiry_timestamp_seconds{field, source}` is
//! each one's expiry (alert on `x - time() < 7 * 86400` for `source="kv"`),
//! `vault_config_certificate_reissue_timestamp_seconds{field}` when a PKI
//! one is due (alert on `time() - x > 300`), and
//! `vault_config_certificates_issued_total` counts issues.
//!
//! A failed issue (Vault down, the role refusing, a certificate that does
//! not check out, e.g. a P-521 key rustls cannot sign with) keeps the
//! certificate in force and waits before the next attempt (1 s doubling, at
//! most 30 s). An identity in force that expires meanwhile is not checked
//! for time again while other values change: new database credentials are
//! still published.
//!
//! # Serving it (feature `rustls`)
//!
//! A `CertResolver` gives each new handshake the identity in force:
//! fed by a watcher's channel (`CertResolver::new`) or fixed
//! (`CertResolver::fixed`). Connections already open keep theirs. The
//! same resolver serves a server and a client's certificate (mutual TLS):
//!
//! ```
//! # #[cfg(feature = "rustls")]
//! # mod demo {
//! use std::sync::Arc;
//! use vault_config::tls::{rustls, CertResolver, Identity};
//! use vault_config::Watcher;
//!
//! struct Config {
//!     identity: Identity, // with its #[vault(...)], as above
//! }
//!
//! fn tls(watcher: &Watcher<Config>) -> Result<(rustls::ServerConfig, rustls::ClientConfig), rustls::Error> {
//!     let resolver = Arc::new(CertResolver::new(watcher.subscribe(), |c: &Config| &c.identity));
//!
//!     // A server presenting it:
//!     let server = rustls::ServerConfig::builder()
//!         .with_no_client_auth()
//!         .with_cert_resolver(resolver.clone());
//!
//!     // A client presenting it, trusting the CA certificates it came with:
//!     let mut roots = rustls::RootCertStore::empty();
//!     for der in watcher.current().identity.ca_der() {
//!         roots.add(der.to_vec().into())?;
//!     }
//!     let client = rustls::ClientConfig::builder()
//!         .with_root_certificates(roots)
//!         .with_client_cert_resolver(resolver);
//!     Ok((server, client))
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! `ServerConfig::builder()` uses the process's rustls crypto provider:
//! this crate builds rustls with *ring*. For reqwest,
//! `Identity::reqwest_identity` gives the client certificate.
//!
//! A client that resumes a TLS session skips the certificate exchange and
//! keeps the certificate of that session. Where every new connection must
//! see a rotation at once, turn resumption off on the server
//! (`server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {})`;
//! rustls sends no TLS 1.3 tickets unless given a ticketer).
//!
//! Without the feature, a service that reads files writes
//! [`certificate_pem`](Identity::certificate_pem) and
//! [`private_key_pem`](Identity::private_key_pem).

mod de;
#[cfg(test)]
mod fixtures;
mod identity;
mod pem;
mod request;
#[cfg(feature = "rustls")]
mod resolver;
mod x509;

pub(crate) use de::keeping;
pub(crate) use identity::leaf_info;
pub use identity::{Identity, IdentityInfo};

pub use request::CertificateRequest;
#[cfg(feature = "rustls")]
pub use resolver::CertResolver;

/// rustls, whose types appear in this module's signatures (feature `rustls`).
#[cfg(feature = "rustls")]
pub use ::rustls;
