//! TLS identities, no server: what `Identity` costs when a config is made
//! (PEM, X.509, the key check) against rustls parsing the same PEM and key
//! alone, and what `CertResolver` costs per handshake against rustls's own
//! fixed certificate, both as a bare `resolve` and as whole TLS 1.3
//! handshakes over an in-memory pipe.
//!
//! `cargo bench -p vault-config --features rustls --bench tls`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::crypto::ring::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::ResolvesServerCert;
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vault_config::tls::{CertResolver, Identity};

fn fixture(name: &str) -> String {
    let path = format!("{}/src/tls/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(f());
    }
    started.elapsed() / rounds
}

/// rustls alone: the PEM decoded and the key loaded, nothing checked.
fn rustls_alone(cert: &str, key: &str) -> CertifiedKey {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    CertifiedKey::new(chain, any_supported_type(&key).unwrap())
}

struct Config {
    identity: Identity,
}

/// `rounds` TLS 1.3 handshakes (and one echoed byte) over an in-memory pipe.
async fn handshakes(server: Arc<ServerConfig>, client: Arc<ClientConfig>, rounds: u32) -> Duration {
    let (acceptor, connector) = (TlsAcceptor::from(server), TlsConnector::from(client));
    let started = Instant::now();
    for _ in 0..rounds {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let accept = acceptor.clone();
        let serve = tokio::spawn(async move {
            let mut tls = accept.accept(a).await.unwrap();
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.unwrap();
            tls.write_all(&byte).await.unwrap();
            tls.flush().await.unwrap();
        });
        let name = ServerName::try_from("gateway.internal").unwrap();
        let mut tls = connector.connect(name, b).await.unwrap();
        tls.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        serve.await.unwrap();
    }
    started.elapsed() / rounds
}

fn main() {
    let intermediate = fixture("intermediate.pem");
    let root = fixture("root.pem");
    println!("making an identity | Identity::from_pem (PEM, X.509, key match, validity) | rustls alone (PEM, key)");
    for (name, cert, key) in [
        ("RSA 2048", "rsa.pem", "rsa.key"),
        ("EC P-256", "ec.pem", "ec.key"),
        ("Ed25519", "ed25519.pem", "ed25519.key"),
    ] {
        let (cert, key) = (fixture(cert), fixture(key));
        let ours = time(200, || {
            Identity::from_pem(&cert, &key, &[&intermediate, &root]).unwrap()
        });
        let alone = time(200, || rustls_alone(&cert, &key));
        println!(
            "{name:>9} | {:>10.1} µs | {:>10.1} µs",
            ours.as_secs_f64() * 1e6,
            alone.as_secs_f64() * 1e6
        );
    }

    let (cert, key) = (fixture("ec.pem"), fixture("ec.key"));
    let identity = Identity::from_pem(&cert, &key, &[&intermediate, &root]).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(Config {
        identity: identity.clone(),
    }));
    let resolver = Arc::new(CertResolver::new(rx, |c: &Config| &c.identity));
    let fixed = identity.certified_key();
    let rounds = 1_000_000;
    let ours = time(rounds, || resolver.current().map(|i| i.certified_key()));
    let baseline = time(rounds, || Arc::clone(&fixed));
    println!();
    println!("per handshake, the certificate to present | CertResolver (watch channel) | a fixed Arc<CertifiedKey>");
    println!(
        "  resolve | {:>8.1} ns | {:>8.1} ns",
        ours.as_secs_f64() * 1e9,
        baseline.as_secs_f64() * 1e9
    );

    let mut roots = RootCertStore::empty();
    for der in identity.ca_der() {
        roots.add(der.to_vec().into()).unwrap();
    }
    let client = Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let ours = Arc::new(
        ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone() as Arc<dyn ResolvesServerCert>),
    );
    let fixed_chain: Vec<CertificateDer<'static>> = identity
        .chain_der()
        .map(|d| CertificateDer::from(d.to_vec()))
        .collect();
    let fixed_key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let baseline = Arc::new(
        ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(fixed_chain, fixed_key)
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rounds = 300;
    // Warm up both, then measure each twice, interleaved.
    rt.block_on(handshakes(ours.clone(), client.clone(), 20));
    rt.block_on(handshakes(baseline.clone(), client.clone(), 20));
    let mut with_resolver = Duration::ZERO;
    let mut with_fixed = Duration::ZERO;
    for _ in 0..2 {
        with_resolver += rt.block_on(handshakes(ours.clone(), client.clone(), rounds)) / 2;
        with_fixed += rt.block_on(handshakes(baseline.clone(), client.clone(), rounds)) / 2;
    }
    println!(
        "handshake | {:>8.1} µs | {:>8.1} µs   (TLS 1.3, EC P-256, in memory, client and server)",
        with_resolver.as_secs_f64() * 1e6,
        with_fixed.as_secs_f64() * 1e6
    );
}
