//! [`Identity`]: a certificate chain and its private key, checked when
//! made; [`IdentityInfo`]: what a health endpoint or a metric shows of one.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;
use serde::Serialize;
use zeroize::Zeroizing;

use super::pem;
use super::x509::Certificate;
use crate::base::time;
use crate::error::{Error, Result};

/// A TLS certificate chain and its private key, as Vault PKI issues them or
/// as a KV secret holds them; parsed and checked when made.
///
/// Made by [`from_pem`](Self::from_pem), or deserialized (a `Deserialize`
/// field of a config) from a map with `certificate`, `private_key`, and
/// optionally `ca_chain` (a list of PEM strings, or one string) and
/// `issuing_ca` (used when `ca_chain` is absent or empty); other keys are
/// ignored. That is the answer of Vault's `pki/issue/<role>` and a secret
/// written by hand:
///
/// ```text
/// bao kv put secret/tls/gateway certificate=@cert.pem private_key=@key.pem ca_chain=@ca.pem
/// ```
///
/// Either way it holds only an identity that can be served now: at least
/// one certificate, a private key (PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC
/// PRIVATE KEY` or PKCS#8 `PRIVATE KEY`; RSA, ECDSA P-256/P-384 or Ed25519)
/// that matches the first certificate, and a first certificate valid now.
/// Otherwise [`Error::Identity`] (or the deserializer's error) says what is
/// wrong, never quoting a certificate or the key. A watcher holds such a
/// rotation back and keeps the identity in force.
///
/// The served chain is the first certificate of `certificate` (the leaf),
/// the others it holds, then the `ca_chain` ones, without duplicates or
/// self-signed roots (a client has the root already). The CA certificates
/// given, roots included, are kept apart for a client's trust store
/// ([`ca_pem`](Self::ca_pem)).
///
/// Cloning is cheap (one `Arc`). Two identities are equal when their served
/// chains, CA certificates and keys are. `Debug` shows the common name,
/// serial and expiry, never the key. Errors never quote what they refuse:
///
/// ```
/// # use vault_config::tls::Identity;
/// let answer = serde_json::json!({
///     "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
///     "private_key": "not a key",
///     "serial_number": "3a:0f:bc:11",
/// });
/// let err = serde_json::from_value::<Identity>(answer).unwrap_err();
/// assert!(err.to_string().starts_with("the first certificate of `certificate` cannot be read"));
/// ```
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    /// What the leaf says.
    leaf: Certificate,
    /// The served chain (leaf first) and the signing key: parsed once.
    certified: Arc<CertifiedKey>,
    /// The CA certificates given (`ca_chain` or `issuing_ca`), roots included.
    ca: Vec<CertificateDer<'static>>,
    /// The private key (DER) and its PEM label.
    key: Zeroizing<Vec<u8>>,
    key_label: &'static str,
}

/// What a health endpoint or a metric shows of an [`Identity`]: no key, no
/// certificate. Times are seconds since the Unix epoch.
///
/// ```
/// # fn show(identity: &vault_config::tls::Identity) {
/// let info = identity.info();
/// println!("{} (CN {:?}) renews at {}", info.serial, info.common_name, info.renew_at);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IdentityInfo {
    /// The leaf's serial number, as Vault shows it (`3a:0f:...`).
    pub serial: String,
    /// The leaf's subject common name, if any.
    pub common_name: Option<String>,
    /// When the leaf becomes valid.
    pub not_before: u64,
    /// When the leaf expires.
    pub not_after: u64,
    /// When to issue its successor: [`Identity::renew_at`].
    pub renew_at: u64,
}

impl Identity {
    /// An identity from PEM text: `certificate` holds the leaf, maybe
    /// followed by intermediates; each `ca_chain` entry holds one or several
    /// CA certificates (Vault's `ca_chain` items, or a `ca.pem` file).
    ///
    /// Fails with [`Error::Identity`] when `certificate` holds no
    /// certificate, when `private_key` holds no key (or one rustls cannot
    /// sign with), when the key does not match the leaf, or when the leaf
    /// is not valid now: expired, or not valid for another five minutes
    /// (a notBefore up to five minutes ahead is taken, for clocks a little
    /// behind the CA's).
    pub fn from_pem(certificate: &str, private_key: &str, ca_chain: &[&str]) -> Result<Identity> {
        Identity::build(
            certificate,
            private_key,
            ca_chain,
            "ca_chain",
            Some(SystemTime::now()),
        )
        .map_err(|reason| Error::Identity { reason })
    }

    /// [`from_pem`](Self::from_pem) at time `now` (`None`: no time check),
    /// failing with the reason alone; `ca_field` names where `ca` came from
    /// (`ca_chain`, `issuing_ca`).
    pub(crate) fn build(
        certificate: &str,
        private_key: &str,
        ca: &[&str],
        ca_field: &str,
        now: Option<SystemTime>,
    ) -> std::result::Result<Identity, String> {
        let given = pem::certificates(certificate, "`certificate`")?;
        let Some((leaf_der, rest)) = given.split_first() else {
            return Err("`certificate` holds no PEM certificate; write the certificate as issued (the leaf first, then any intermediates), each a PEM `CERTIFICATE` section".to_owned());
        };
        let leaf = Certificate::parse(leaf_der).ok_or(
            "the first certificate of `certificate` cannot be read as an X.509 certificate; write the certificate as issued",
        )?;
        let rest = read_all(rest, |i| format!("certificate {} of `certificate`", i + 2))?;
        let ca_certs = read_ca(ca, ca_field)?;
        let key = pem::private_key(private_key)?;
        let signing = signing_key(&key, &leaf, &rest)?;
        if let Some(now) = now {
            check_validity(&leaf, now)?;
        }

        // Served: the leaf, then the others given, each once, no root.
        let mut served = vec![leaf_der.clone()];
        for (der, cert) in rest.iter().chain(&ca_certs) {
            if !cert.self_signed && !served.contains(der) {
                served.push(der.clone());
            }
        }
        let mut ca = Vec::new();
        for (der, _) in ca_certs {
            if !ca.contains(&der) {
                ca.push(der);
            }
        }
        Ok(Identity {
            inner: Arc::new(Inner {
                leaf,
                certified: Arc::new(CertifiedKey::new(served, signing)),
                ca,
                key: Zeroizing::new(key.secret_der().to_vec()),
                key_label: pem::key_label(&key),
            }),
        })
    }

    /// The leaf's serial number as Vault's `serial_number` shows it:
    /// lowercase hex bytes joined by `:` (`3a:0f:...`; `openssl x509
    /// -serial` prints the same digits in upper case, without colons).
    pub fn serial(&self) -> &str {
        &self.inner.leaf.serial
    }

    /// When the leaf becomes valid (its notBefore).
    pub fn not_before(&self) -> SystemTime {
        time::system_time(self.inner.leaf.not_before)
    }

    /// When the leaf expires (its notAfter).
    pub fn not_after(&self) -> SystemTime {
        time::system_time(self.inner.leaf.not_after)
    }

    /// The leaf's subject common name, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.inner.leaf.common_name.as_deref()
    }

    /// The DNS names of the leaf's subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.inner.leaf.dns_names
    }

    /// The IP addresses of the leaf's subject alternative names.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.inner.leaf.ip_addresses
    }

    /// How long the leaf is valid: notAfter - notBefore.
    pub fn valid_for(&self) -> Duration {
        let leaf = &self.inner.leaf;
        Duration::from_secs(u64::try_from(leaf.not_after - leaf.not_before).unwrap_or(0))
    }

    /// When to replace this identity: notBefore plus two thirds of its
    /// validity, leaving a third to retry in while this one still serves.
    /// A watcher issues a PKI certificate again two thirds of the way from
    /// when it received it to its notAfter: the same time, but for the 30 s
    /// by which Vault backdates notBefore (which would make a certificate of
    /// a minute due almost at once).
    pub fn renew_at(&self) -> SystemTime {
        time::system_time(renew_at_unix(&self.inner.leaf))
    }

    /// The served chain as PEM: the leaf, then intermediates, without
    /// self-signed roots.
    pub fn certificate_pem(&self) -> String {
        to_pem(&self.inner.certified.cert)
    }

    /// The CA certificates given (`ca_chain`, else `issuing_ca`), roots
    /// included, as PEM: what a client of this service trusts.
    pub fn ca_pem(&self) -> String {
        to_pem(&self.inner.ca)
    }

    /// The private key as PEM, in its format as given (`RSA PRIVATE KEY`,
    /// `EC PRIVATE KEY` or `PRIVATE KEY`), to write for a process that
    /// reads files.
    pub fn private_key_pem(&self) -> SecretString {
        let text = pem::encode_key(self.inner.key_label, &self.inner.key);
        SecretString::from(text.as_str())
    }

    /// The served chain, leaf first, as DER.
    pub fn chain_der(&self) -> impl Iterator<Item = &[u8]> {
        self.inner.certified.cert.iter().map(|c| c.as_ref())
    }

    /// The CA certificates given, roots included, as DER (for a
    /// `rustls::RootCertStore`).
    pub fn ca_der(&self) -> impl Iterator<Item = &[u8]> {
        self.inner.ca.iter().map(|c| c.as_ref())
    }

    /// Serial, common name and times, for a health endpoint or metrics.
    pub fn info(&self) -> IdentityInfo {
        IdentityInfo::of(&self.inner.leaf)
    }
}

impl IdentityInfo {
    fn of(leaf: &Certificate) -> IdentityInfo {
        let unix = |t: i64| u64::try_from(t).unwrap_or(0);
        IdentityInfo {
            serial: leaf.serial.clone(),
            common_name: leaf.common_name.clone(),
            not_before: unix(leaf.not_before),
            not_after: unix(leaf.not_after),
            renew_at: unix(renew_at_unix(leaf)),
        }
    }
}

/// Two thirds into `leaf`'s validity.
fn renew_at_unix(leaf: &Certificate) -> i64 {
    leaf.not_before + (leaf.not_after - leaf.not_before) * 2 / 3
}

/// What the first certificate of `pem` says, with no check of a key or of
/// the time: for health, which shows an identity in force that expired.
pub(crate) fn leaf_info(pem: &str) -> Option<IdentityInfo> {
    let certificates = pem::certificates(pem, "`certificate`").ok()?;
    Certificate::parse(certificates.first()?).map(|leaf| IdentityInfo::of(&leaf))
}

/// With the `rustls` feature: the identity as rustls and reqwest take it.
#[cfg(feature = "rustls")]
impl Identity {
    /// The served chain and signing key as rustls serves them. Built once,
    /// when the identity was made: every call returns the same `Arc`.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.inner.certified)
    }

    /// The served chain and key as a reqwest client certificate, for mutual
    /// TLS to another service (`ClientBuilder::identity`).
    pub fn reqwest_identity(&self) -> Result<reqwest::Identity> {
        let key = pem::encode_key(self.inner.key_label, &self.inner.key);
        let chain = self.certificate_pem();
        // Sized up front: growing would leave a copy of the key behind.
        let mut text = Zeroizing::new(String::with_capacity(key.len() + chain.len()));
        text.push_str(&key);
        text.push_str(&chain);
        reqwest::Identity::from_pem(text.as_bytes()).map_err(|_| Error::Identity {
            reason: format!(
                "reqwest refused the identity ({}); build the client's TLS by hand with `certified_key`",
                describe(&self.inner.leaf)
            ),
        })
    }
}

/// The CA certificates of each entry of `ca` (from field `ca_field`), in order.
fn read_ca(ca: &[&str], ca_field: &str) -> std::result::Result<Vec<Parsed>, String> {
    let mut all = Vec::new();
    for (i, text) in ca.iter().enumerate() {
        let field = match ca.len() {
            1 => format!("`{ca_field}`"),
            _ => format!("entry {} of `{ca_field}`", i + 1),
        };
        let certs = pem::certificates(text, &field)?;
        if certs.is_empty() && !text.trim().is_empty() {
            // A key, or anything else, where CA certificates belong: the
            // trust store a client builds from it would be empty.
            return Err(format!(
                "{field} holds no PEM certificate; write the CA certificates there (the issuing CA, then its issuers), each a PEM `CERTIFICATE` section"
            ));
        }
        all.extend(read_all(&certs, |j| {
            format!("certificate {} of {field}", j + 1)
        })?);
    }
    Ok(all)
}

/// The signing key of `key`, which must be the leaf's: when it is the key
/// of another certificate given (`rest`), the error says to reorder them.
fn signing_key(
    key: &PrivateKeyDer<'_>,
    leaf: &Certificate,
    rest: &[Parsed],
) -> std::result::Result<Arc<dyn SigningKey>, String> {
    let signing = any_supported_type(key).map_err(|_| {
        format!(
            "`private_key` is not a key rustls can sign with (RSA of 2048 bits or more, ECDSA P-256 or P-384, Ed25519); issue the certificate with such a key ({})",
            describe(leaf)
        )
    })?;
    // Every key type of the ring provider reports its public key.
    let Some(public) = signing.public_key() else {
        return Ok(signing);
    };
    if public.as_ref() == leaf.spki.as_slice() {
        return Ok(signing);
    }
    Err(match rest.iter().position(|(_, c)| c.spki == public.as_ref()) {
        Some(i) => format!(
            "the private key matches certificate {} of `certificate`, not the first: put the leaf certificate first, then its intermediates",
            i + 2
        ),
        None => format!(
            "the private key does not match the certificate ({}): write the key issued with this certificate",
            describe(leaf)
        ),
    })
}

/// A certificate's DER and what it says.
type Parsed = (CertificateDer<'static>, Certificate);

/// Reads each certificate; `name(i)` names the `i`th (0-based) in an error.
fn read_all(
    certs: &[CertificateDer<'static>],
    name: impl Fn(usize) -> String,
) -> std::result::Result<Vec<Parsed>, String> {
    certs
        .iter()
        .enumerate()
        .map(|(i, der)| match Certificate::parse(der) {
            Some(cert) => Ok((der.clone(), cert)),
            None => Err(format!(
                "{} cannot be read as an X.509 certificate; write the certificates as issued",
                name(i)
            )),
        })
        .collect()
}

/// How far ahead of this machine's clock a notBefore may be: a clock a
/// little behind the CA's (Vault backdates by 30 s only) still loads.
const NOT_BEFORE_LEEWAY: i64 = 300;

/// The leaf valid at `now`: notBefore <= now (give or take
/// [`NOT_BEFORE_LEEWAY`]) < notAfter.
fn check_validity(leaf: &Certificate, now: SystemTime) -> std::result::Result<(), String> {
    let now = time::unix(now);
    if now.saturating_add(NOT_BEFORE_LEEWAY) < leaf.not_before {
        return Err(format!(
            "the certificate is not valid before {} ({}): check this machine's clock, or write one valid now",
            time::rfc3339(leaf.not_before),
            describe(leaf)
        ));
    }
    if now >= leaf.not_after {
        return Err(format!(
            "the certificate expired at {} ({}): issue a new one and write it with its key",
            time::rfc3339(leaf.not_after),
            describe(leaf)
        ));
    }
    Ok(())
}

/// `serial 3a:0f:..., CN gateway.internal`: which certificate, for errors.
fn describe(leaf: &Certificate) -> String {
    match &leaf.common_name {
        Some(cn) => format!("serial {}, CN {cn}", leaf.serial),
        None => format!("serial {}", leaf.serial),
    }
}

fn to_pem(certs: &[CertificateDer<'_>]) -> String {
    let mut text = String::new();
    for der in certs {
        pem::encode("CERTIFICATE", der, &mut text);
    }
    text
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        Arc::ptr_eq(&self.inner, &other.inner)
            || (a.certified.cert == b.certified.cert && a.ca == b.ca && *a.key == *b.key)
    }
}

impl Eq for Identity {}

/// Names the certificate, never the key.
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("common_name", &self.common_name())
            .field("serial", &self.serial())
            .field("not_after", &time::rfc3339(self.inner.leaf.not_after))
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::fixtures::*;
    use secrecy::ExposeSecret;

    fn identity(cert: &str, key: &str) -> Identity {
        match Identity::from_pem(cert, key, &[INTERMEDIATE, ROOT]) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// The reason `build` refuses with, checked to quote no PEM.
    fn refused(cert: &str, key: &str, ca: &[&str], now: SystemTime) -> String {
        let reason = match Identity::build(cert, key, ca, "ca_chain", Some(now)) {
            Ok(id) => panic!("accepted: {id:?}"),
            Err(reason) => reason,
        };
        let e = Error::Identity {
            reason: reason.clone(),
        };
        assert_eq!(e.to_string(), format!("invalid TLS identity: {reason}"));
        assert_quotes_no_pem(&e.to_string());
        assert_quotes_no_pem(&format!("{e:?}"));
        reason
    }

    #[test]
    fn each_key_format_vault_issues_loads() {
        for (cert, key, label) in [
            (RSA, RSA_KEY, "RSA PRIVATE KEY"),
            (EC, EC_KEY, "EC PRIVATE KEY"),
            (ED25519, ED25519_KEY, "PRIVATE KEY"),
        ] {
            let id = identity(cert, key);
            assert_eq!(id.inner.key_label, label);
            // Written back exactly as OpenSSL wrote it.
            assert_eq!(id.private_key_pem().expose_secret(), key);
            assert_eq!(id.certificate_pem(), format!("{cert}{INTERMEDIATE}"));
        }
        let id = identity(ED25519, ED25519_KEY);
        assert_eq!(id.serial(), "5e:2d:0c:1b");
        assert_eq!(id.common_name(), Some("ed25519.internal"));
        assert_eq!(id.dns_names(), ["gateway.internal", "localhost"]);
        assert_eq!(id.ip_addresses(), [IpAddr::from([127, 0, 0, 1])]);
    }

    #[test]
    fn the_served_chain_is_leaf_then_intermediates_without_duplicates_or_roots() {
        // A full chain file (root included) and a CA bundle repeating it.
        let fullchain = format!("{EC}{INTERMEDIATE}{ROOT}");
        let bundle = format!("{INTERMEDIATE}\n{ROOT}");
        let id = Identity::from_pem(&fullchain, EC_KEY, &[&bundle, ROOT, INTERMEDIATE]).unwrap();
        let served: Vec<&[u8]> = id.chain_der().collect();
        let ec = pem::certificates(EC, "").unwrap();
        let intermediate = pem::certificates(INTERMEDIATE, "").unwrap();
        let root = pem::certificates(ROOT, "").unwrap();
        assert_eq!(served, [ec[0].as_ref(), intermediate[0].as_ref()]);
        assert_eq!(id.certificate_pem(), format!("{EC}{INTERMEDIATE}"));
        // The CA certificates given, roots kept, each once.
        let ca: Vec<&[u8]> = id.ca_der().collect();
        assert_eq!(ca, [intermediate[0].as_ref(), root[0].as_ref()]);
        assert_eq!(id.ca_pem(), format!("{INTERMEDIATE}{ROOT}"));
        // No CA certificates: the leaf alone.
        let alone = Identity::from_pem(EC, EC_KEY, &[]).unwrap();
        assert_eq!(alone.chain_der().count(), 1);
        assert_eq!(alone.ca_pem(), "");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_certificate() {
        let now = SystemTime::now();
        let reason = refused(EC, OTHER_KEY, &[INTERMEDIATE], now);
        assert_eq!(
            reason,
            "the private key does not match the certificate (serial 3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3, CN gateway.internal): write the key issued with this certificate"
        );
        let reason = refused(RSA, EC_KEY, &[], now);
        assert!(
            reason.starts_with("the private key does not match the certificate (serial 9a:0f:3c:"),
            "{reason}"
        );
        // The leaf after its issuer: the key matches the second certificate.
        let reason = refused(&format!("{OTHER}{EC}"), EC_KEY, &[], now);
        assert!(
            reason.starts_with(
                "the private key matches certificate 2 of `certificate`, not the first"
            ),
            "{reason}"
        );
    }

    #[test]
    fn unusable_input_is_refused_saying_what_to_write() {
        let now = SystemTime::now();
        let reason = refused("", EC_KEY, &[], now);
        assert!(
            reason.starts_with("`certificate` holds no PEM certificate;"),
            "{reason}"
        );
        let reason = refused(EC_KEY, EC_KEY, &[], now);
        assert!(
            reason.starts_with("`certificate` holds no PEM certificate;"),
            "{reason}"
        );
        let reason = refused(EC, "", &[], now);
        assert!(
            reason.starts_with("`private_key` holds no PEM private key;"),
            "{reason}"
        );
        let reason = refused(EC, EC, &[], now);
        assert!(reason.contains("swapped"), "{reason}");
        let reason = refused(EC, P521_KEY, &[], now);
        assert!(
            reason.starts_with("`private_key` is not a key rustls can sign with"),
            "{reason}"
        );
        let truncated = &EC[..EC.len() - 30];
        let reason = refused(truncated, EC_KEY, &[], now);
        assert!(
            reason.starts_with("`certificate` is not valid PEM (a BEGIN line has no END line)"),
            "{reason}"
        );
        let reason = refused(EC, EC_KEY, &[INTERMEDIATE, truncated], now);
        assert!(
            reason.starts_with("entry 2 of `ca_chain` is not valid PEM"),
            "{reason}"
        );
        // Base64 that decodes to something that is no certificate.
        let junk = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
        let reason = refused(&format!("{EC}{junk}"), EC_KEY, &[], now);
        assert!(
            reason.starts_with("certificate 2 of `certificate` cannot be read"),
            "{reason}"
        );
        let reason = refused(EC, EC_KEY, &[junk], now);
        assert!(
            reason.starts_with("certificate 1 of `ca_chain` cannot be read"),
            "{reason}"
        );
    }

    #[test]
    fn a_ca_chain_with_no_certificate_is_refused() {
        let reason = refused(EC, EC_KEY, &[EC_KEY], SystemTime::now());
        assert!(
            reason.starts_with("`ca_chain` holds no PEM certificate;"),
            "{reason}"
        );
    }

    #[test]
    fn the_leaf_must_be_valid_at_the_time_checked() {
        let id = identity(EC, EC_KEY);
        let (not_before, not_after) = (id.not_before(), id.not_after());
        let second = Duration::from_secs(1);
        let at = |now| Identity::build(EC, EC_KEY, &[], "ca_chain", Some(now)).map(|_| ());
        assert_eq!(at(not_before), Ok(()));
        assert_eq!(at(not_after - second), Ok(()));
        // A clock up to five minutes behind the CA's still loads it.
        assert_eq!(at(not_before - Duration::from_secs(300)), Ok(()));
        // No time check at all: an identity in force that expired since.
        let unchecked = Identity::build(EC, EC_KEY, &[], "ca_chain", None);
        assert!(unchecked.is_ok());
        let reason = refused(EC, EC_KEY, &[], not_after);
        let expiry = time::rfc3339(time::unix(not_after));
        assert_eq!(
            reason,
            format!("the certificate expired at {expiry} (serial 3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3, CN gateway.internal): issue a new one and write it with its key")
        );
        assert!(
            expiry.starts_with("2126-") && expiry.ends_with('Z'),
            "{expiry}"
        );
        let reason = refused(EC, EC_KEY, &[], not_before - Duration::from_secs(301));
        assert!(
            reason.starts_with("the certificate is not valid before 20"),
            "{reason}"
        );
        assert!(reason.contains("check this machine's clock"), "{reason}");
    }

    #[test]
    fn times_renewal_and_info() {
        let id = identity(RSA, RSA_KEY);
        let valid_for = id.valid_for();
        assert_eq!(id.not_before() + valid_for, id.not_after());
        assert!(valid_for > Duration::from_secs(99 * 365 * 86_400));
        assert_eq!(id.renew_at(), id.not_before() + valid_for * 2 / 3);
        let info = id.info();
        let unix = |t: SystemTime| time::unix(t) as u64;
        assert_eq!(
            info,
            IdentityInfo {
                serial: "9a:0f:3c:5e:7b:1d:2f:4a:6c:8e:0a:1b:3c:5d:7e:9f:01:23:45:67".into(),
                common_name: Some("gateway.internal".into()),
                not_before: unix(id.not_before()),
                not_after: unix(id.not_after()),
                renew_at: unix(id.renew_at()),
            }
        );
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["common_name"], "gateway.internal");
        assert_eq!(json["renew_at"], unix(id.renew_at()));
    }

    #[test]
    fn debug_names_the_certificate_and_redacts_the_key() {
        let id = identity(EC, EC_KEY);
        let text = format!("{id:?}");
        let expiry = time::rfc3339(time::unix(id.not_after()));
        assert_eq!(
            text,
            format!("Identity {{ common_name: Some(\"gateway.internal\"), serial: \"3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3\", not_after: \"{expiry}\", private_key: \"[REDACTED]\" }}")
        );
        assert_quotes_no_pem(&text);
        assert_quotes_no_pem(&format!("{id:#?}"));
        assert_quotes_no_pem(&format!("{:?}", id.private_key_pem()));
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn a_reqwest_client_takes_it_as_its_certificate() {
        for (cert, key) in [(RSA, RSA_KEY), (EC, EC_KEY), (ED25519, ED25519_KEY)] {
            let id = identity(cert, key).reqwest_identity().unwrap();
            reqwest::Client::builder().identity(id).build().unwrap();
        }
    }

    #[test]
    fn equal_when_chain_ca_and_key_are() {
        let a = identity(EC, EC_KEY);
        assert_eq!(a, a.clone());
        assert!(Arc::ptr_eq(&a.inner, &a.clone().inner));
        assert_eq!(a, identity(EC, EC_KEY));
        assert_ne!(a, identity(RSA, RSA_KEY));
        assert_ne!(a, Identity::from_pem(EC, EC_KEY, &[INTERMEDIATE]).unwrap());
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Identity>();
    }
}
