//! [`CertResolver`]: the identity in force, for each new TLS handshake of
//! a rustls server or client (feature `rustls`).

use std::fmt;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use tokio::sync::watch;

use super::identity::Identity;

/// Gives each new TLS handshake the identity in force: a
/// `rustls::server::ResolvesServerCert` for a server, and a
/// `rustls::client::ResolvesClientCert` for a client's certificate (mutual
/// TLS). Fed by a [`Watcher`](crate::Watcher)'s channel, a rotation
/// published there serves from the next handshake on; connections already
/// open keep the identity they started with, and so does a client resuming
/// a session (see the [module docs](super#serving-it-feature-rustls)).
///
/// A handshake only borrows the channel's current value and clones an
/// `Arc`: no lock held while it runs, no await, no key parsing (each
/// [`Identity`] parsed its key once, when made).
///
/// ```
/// use std::sync::Arc;
/// use vault_config::tls::{rustls, CertResolver, Identity};
/// use vault_config::Watcher;
///
/// struct Config {
///     tls: Identity,
/// }
///
/// fn server_config(watcher: &Watcher<Config>) -> rustls::ServerConfig {
///     let resolver = CertResolver::new(watcher.subscribe(), |c: &Config| &c.tls);
///     rustls::ServerConfig::builder()
///         .with_no_client_auth()
///         .with_cert_resolver(Arc::new(resolver))
/// }
/// ```
pub struct CertResolver {
    source: Box<dyn Source>,
}

/// Where the identity in force comes from.
trait Source: Send + Sync {
    fn current(&self) -> Option<Identity>;
}

impl Source for Identity {
    fn current(&self) -> Option<Identity> {
        Some(self.clone())
    }
}

/// A config channel and the identity's place in the config.
struct Watched<T, F> {
    config: watch::Receiver<Arc<T>>,
    select: F,
}

impl<T, F> Source for Watched<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> &Identity + Send + Sync + 'static,
{
    fn current(&self) -> Option<Identity> {
        // The channel's lock is held for the clone of one `Arc` only.
        let config = Arc::clone(&self.config.borrow());
        Some((self.select)(&config).clone())
    }
}

/// A config channel and an optional identity's place in the config.
struct WatchedOption<T, F> {
    config: watch::Receiver<Arc<T>>,
    select: F,
}

impl<T, F> Source for WatchedOption<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Option<&Identity> + Send + Sync + 'static,
{
    fn current(&self) -> Option<Identity> {
        let config = Arc::clone(&self.config.borrow());
        (self.select)(&config).cloned()
    }
}

impl CertResolver {
    /// A resolver serving the identity `select` finds in the config in
    /// force on `config`: [`Watcher::subscribe`](crate::Watcher::subscribe)
    /// (or any `tokio::sync::watch` channel of configs).
    pub fn new<T, F>(config: watch::Receiver<Arc<T>>, select: F) -> CertResolver
    where
        T: Send + Sync + 'static,
        F: Fn(&T) -> &Identity + Send + Sync + 'static,
    {
        CertResolver {
            source: Box::new(Watched { config, select }),
        }
    }

    /// [`new`](Self::new) for an `Option<Identity>` field (a `pki` field
    /// that is `None` while Vault is off, say): while it is `None`, a
    /// server's handshakes fail (rustls: no certificate to present) and a
    /// client presents none.
    pub fn new_optional<T, F>(config: watch::Receiver<Arc<T>>, select: F) -> CertResolver
    where
        T: Send + Sync + 'static,
        F: Fn(&T) -> Option<&Identity> + Send + Sync + 'static,
    {
        CertResolver {
            source: Box::new(WatchedOption { config, select }),
        }
    }

    /// A resolver that always serves `identity`.
    pub fn fixed(identity: Identity) -> CertResolver {
        CertResolver {
            source: Box::new(identity),
        }
    }

    /// The identity the next handshake gets (`None` only from
    /// [`new_optional`](Self::new_optional)).
    pub fn current(&self) -> Option<Identity> {
        self.source.current()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().map(|i| i.certified_key())
    }
}

impl ResolvesClientCert for CertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current().map(|i| i.certified_key())
    }

    fn has_certs(&self) -> bool {
        self.current().is_some()
    }
}

/// Shows the identity in force (never its key).
impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("identity", &self.current())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::fixtures::*;

    struct Config {
        tls: Identity,
    }

    fn config(cert: &str, key: &str) -> Arc<Config> {
        let tls = Identity::from_pem(cert, key, &[INTERMEDIATE, ROOT]).unwrap();
        Arc::new(Config { tls })
    }

    #[test]
    fn each_handshake_takes_the_identity_published_last() {
        let (tx, rx) = watch::channel(config(EC, EC_KEY));
        let resolver = CertResolver::new(rx, |c: &Config| &c.tls);
        let first = tx.borrow().tls.clone();
        let key = ResolvesClientCert::resolve(&resolver, &[], &[]).unwrap();
        // The key parsed when the identity was made, not per handshake.
        assert!(Arc::ptr_eq(&key, &first.certified_key()));
        assert!(Arc::ptr_eq(
            &key,
            &resolver.current().unwrap().certified_key()
        ));
        assert!(resolver.has_certs());

        tx.send(config(RSA, RSA_KEY)).unwrap();
        assert_eq!(
            resolver.current().unwrap().serial(),
            "9a:0f:3c:5e:7b:1d:2f:4a:6c:8e:0a:1b:3c:5d:7e:9f:01:23:45:67"
        );
        let key = ResolvesClientCert::resolve(&resolver, &[], &[]).unwrap();
        assert_eq!(
            key.cert.first().map(|c| c.to_vec()),
            resolver
                .current()
                .unwrap()
                .chain_der()
                .next()
                .map(<[u8]>::to_vec)
        );
        // The sender gone, the last identity stays.
        drop(tx);
        assert_eq!(
            resolver.current().unwrap().common_name(),
            Some("gateway.internal")
        );
        assert_eq!(
            resolver.current().unwrap().serial(),
            "9a:0f:3c:5e:7b:1d:2f:4a:6c:8e:0a:1b:3c:5d:7e:9f:01:23:45:67"
        );
    }

    #[test]
    fn an_optional_identity_serves_while_it_is_there() {
        let (tx, rx) = watch::channel(Arc::new(None::<Identity>));
        let resolver = CertResolver::new_optional(rx, |c: &Option<Identity>| c.as_ref());
        assert!(resolver.current().is_none());
        assert!(!resolver.has_certs());
        assert!(ResolvesClientCert::resolve(&resolver, &[], &[]).is_none());
        tx.send(Arc::new(Some(config(EC, EC_KEY).tls.clone())))
            .unwrap();
        assert!(resolver.has_certs());
        assert_eq!(
            resolver
                .current()
                .map(|i| i.common_name().map(str::to_owned)),
            Some(Some("gateway.internal".to_owned()))
        );
    }

    #[test]
    fn debug_shows_the_identity_in_force_redacted() {
        let resolver = CertResolver::fixed(config(ED25519, ED25519_KEY).tls.clone());
        let text = format!("{resolver:?}");
        assert!(text.starts_with("CertResolver { identity: Some(Identity { common_name: Some(\"ed25519.internal\"), serial: \"5e:2d:0c:1b\""), "{text}");
        assert!(text.contains("private_key: \"[REDACTED]\""), "{text}");
        assert_quotes_no_pem(&text);
    }
}
