//! TLS identities from Vault: a certificate chain and its private key as
//! a config field ([`Identity`]).
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
//! ```text
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
//! ```text
//! #[derive(Deserialize, VaultConfig)]
//! struct Config {
//!     #[vault(pki = "pki/issue/web", common_name = "gateway.internal", ttl = "24h")]
//!     identity: Identity,
//! }
//! ```
//!
//! The certificate is issued when the config loads, and a watcher issues
//! the next one at [`renew_at`](Identity::renew_at), before this one
//! expires; the key never leaves the service.
//!
//! A service that reads files writes
//! [`certificate_pem`](Identity::certificate_pem) and
//! [`private_key_pem`](Identity::private_key_pem).

mod de;
#[cfg(test)]
mod fixtures;
mod identity;
mod pem;
mod time;
mod x509;

pub use identity::{Identity, IdentityInfo};
