//! `CertResolver` in real TLS handshakes (tokio-rustls on 127.0.0.1): a
//! server serves the identity published last on a config channel, to new
//! connections only, and a client presents one for mutual TLS.
//!
//! The certificates are the crate's fixtures (`src/tls/testdata`): a root,
//! an intermediate, and leaves for `gateway.internal` the intermediate signs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vault_config::tls::rustls::client::Resumption;
use vault_config::tls::rustls::pki_types::ServerName;
use vault_config::tls::rustls::server::WebPkiClientVerifier;
use vault_config::tls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use vault_config::tls::{CertResolver, Identity};

const ROOT: &str = include_str!("../src/tls/testdata/root.pem");
const INTERMEDIATE: &str = include_str!("../src/tls/testdata/intermediate.pem");
const EC: &str = include_str!("../src/tls/testdata/ec.pem");
const EC_KEY: &str = include_str!("../src/tls/testdata/ec.key");
const RSA: &str = include_str!("../src/tls/testdata/rsa.pem");
const RSA_KEY: &str = include_str!("../src/tls/testdata/rsa.key");

/// A service's config, as a watcher publishes it.
struct Config {
    tls: Identity,
}

fn config(cert: &str, key: &str) -> Arc<Config> {
    let tls = Identity::from_pem(cert, key, &[INTERMEDIATE, ROOT]).unwrap();
    Arc::new(Config { tls })
}

fn leaf(identity: &Identity) -> Vec<u8> {
    identity.chain_der().next().unwrap().to_vec()
}

/// The CA certificates an identity came with, as a trust store.
fn roots(identity: &Identity) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for der in identity.ca_der() {
        roots.add(der.to_vec().into()).unwrap();
    }
    Arc::new(roots)
}

/// Accepts connections on 127.0.0.1 and echoes what each one sends.
async fn echo_server(config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr, config: ClientConfig) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("gateway.internal").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The certificates the server presented, leaf first.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<Vec<u8>> {
    let certs = stream.get_ref().1.peer_certificates().unwrap();
    certs.iter().map(|c| c.to_vec()).collect()
}

async fn echo(stream: &mut TlsStream<TcpStream>, text: &[u8]) {
    stream.write_all(text).await.unwrap();
    stream.flush().await.unwrap();
    let mut back = vec![0u8; text.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, text);
}

#[tokio::test]
async fn new_connections_get_the_identity_published_last_open_ones_keep_theirs() {
    let (tx, rx) = watch::channel(config(EC, EC_KEY));
    let first = tx.borrow().tls.clone();
    let resolver = CertResolver::new(rx, |c: &Config| &c.tls);
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let addr = echo_server(server).await;
    // The client trusts the root alone: the server sends the intermediate.
    let mut client = ClientConfig::builder()
        .with_root_certificates(roots(&first))
        .with_no_client_auth();
    // A resumed session skips the certificate (it keeps the first one's):
    // each connection here is a new client's.
    client.resumption = Resumption::disabled();

    let mut a = connect(addr, client.clone()).await;
    let intermediate = first.chain_der().nth(1).unwrap().to_vec();
    assert_eq!(presented(&a), [leaf(&first), intermediate.clone()]);
    echo(&mut a, b"before the rotation").await;

    let second = config(RSA, RSA_KEY);
    tx.send(Arc::clone(&second)).unwrap();
    let mut b = connect(addr, client).await;
    assert_eq!(presented(&b), [leaf(&second.tls), intermediate]);
    assert_ne!(leaf(&first), leaf(&second.tls));
    echo(&mut b, b"after").await;

    // The connection made before the rotation still works, on its identity.
    echo(&mut a, b"after the rotation, on the first connection").await;
    assert_eq!(presented(&a)[0], leaf(&first));
}

#[tokio::test]
async fn a_client_presents_the_identity_in_force_for_mutual_tls() {
    let server_identity = config(RSA, RSA_KEY).tls.clone();
    let verifier = WebPkiClientVerifier::builder(roots(&server_identity))
        .build()
        .unwrap();
    let server = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(CertResolver::fixed(server_identity.clone())));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    // Accepts two connections; reports the client certificates of each (an
    // error for one refused).
    let accepted = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            seen.push(match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
                    let certs: Vec<Vec<u8>> = certs.iter().map(|c| c.to_vec()).collect();
                    let mut buf = [0u8; 2];
                    tls.read_exact(&mut buf).await.unwrap();
                    tls.write_all(&buf).await.unwrap();
                    tls.flush().await.unwrap();
                    Ok(certs)
                }
                Err(e) => Err(e.to_string()),
            });
        }
        seen
    });

    let (_tx, rx) = watch::channel(config(EC, EC_KEY));
    let client_identity = rx.borrow().tls.clone();
    let client = ClientConfig::builder()
        .with_root_certificates(roots(&client_identity))
        .with_client_cert_resolver(Arc::new(CertResolver::new(rx, |c: &Config| &c.tls)));
    let mut stream = connect(addr, client).await;
    echo(&mut stream, b"hi").await;

    // Without a client certificate the server refuses the handshake.
    let anonymous = ClientConfig::builder()
        .with_root_certificates(roots(&client_identity))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("gateway.internal").unwrap();
    if let Ok(mut tls) = TlsConnector::from(Arc::new(anonymous))
        .connect(name, tcp)
        .await
    {
        // TLS 1.3: the client finishes first and learns of the refusal on read.
        let mut buf = [0u8; 1];
        assert!(tls.read_exact(&mut buf).await.is_err());
    }

    let seen = accepted.await.unwrap();
    assert_eq!(
        seen[0],
        Ok(client_identity.chain_der().map(<[u8]>::to_vec).collect())
    );
    assert!(seen[1].is_err(), "{:?}", seen[1]);
}
