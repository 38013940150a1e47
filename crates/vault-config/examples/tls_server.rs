//! An HTTPS server whose certificate comes from Vault's PKI engine and is
//! swapped in without a restart: issued at start, issued again before two
//! thirds of its validity have passed, and every new TLS handshake takes the
//! certificate in force (connections already open keep theirs).
//!
//! Needs a PKI engine at `pki/` with a role `web` that may issue for
//! `localhost` and 127.0.0.1 (`bash scripts/demo.sh tls` sets one up and
//! runs this example under `curl`). The client reads `VAULT_ADDR` and
//! `VAULT_TOKEN` as usual; `TLS_ADDR` is where to listen (default
//! `127.0.0.1:8443`), `EXIT_AFTER_RELOADS` stops it after that many new
//! certificates.
//!
//! A certificate kept in KV instead (`bao kv put secret/tls/web
//! certificate=@cert.pem private_key=@key.pem ca_chain=@ca.pem`) is one
//! attribute away: `#[vault(path = "tls/web", key = "*")]`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use vault_config::tls::{CertResolver, Identity};
use vault_config::{VaultClient, VaultConfig, WatchOptions};

#[derive(Debug, Deserialize, VaultConfig)]
struct Config {
    /// A certificate for localhost, asked for 24 h (the role's `max_ttl`
    /// may cap it: the demo's role caps it at 12 s, to show a re-issue).
    #[vault(
        pki = "pki/issue/web",
        common_name = "localhost",
        ip_sans = "127.0.0.1",
        ttl = "24h"
    )]
    identity: Identity,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "vault_config=info".to_owned()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let client = VaultClient::from_env()?;
    let watcher = Config::watch(&client, WatchOptions::default()).await?;
    let first = watcher.current();
    // Debug shows the common name, serial and expiry, never the key.
    println!("tls_server: certificate in force: {:?}", first.identity);

    // Every handshake asks the resolver, which reads the watcher's newest config.
    let resolver = CertResolver::new(watcher.subscribe(), |c: &Config| &c.identity);
    let tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let addr = std::env::var("TLS_ADDR").unwrap_or_else(|_| "127.0.0.1:8443".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("tls_server: serving https://{addr}/");

    // Say when a new certificate is published (the resolver needs nothing).
    let mut changes = watcher.subscribe();
    let exit_after: Option<u32> = std::env::var("EXIT_AFTER_RELOADS")
        .ok()
        .and_then(|n| n.parse().ok());
    let reloads = tokio::spawn(async move {
        let mut seen = 0u32;
        while changes.changed().await.is_ok() {
            let identity = changes.borrow_and_update().identity.clone();
            seen += 1;
            println!(
                "tls_server: new certificate, serial {}, expires in {} s",
                identity.serial(),
                identity
                    .not_after()
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
                    .as_secs()
            );
            if exit_after.is_some_and(|n| seen >= n) {
                return;
            }
        }
    });

    let serve = async {
        loop {
            let (tcp, _) = listener.accept().await?;
            let acceptor = acceptor.clone();
            let current = watcher.subscribe();
            tokio::spawn(async move {
                let Ok(Ok(mut stream)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    return;
                };
                // One small HTTP/1.1 answer per connection: the certificate in
                // force now (the one this handshake got, unless a new one
                // was published in between).
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let serial = current.borrow().identity.serial().to_owned();
                let body =
                    format!("hello over TLS; the certificate in force has serial {serial}\n");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        result = serve => result?,
        _ = reloads => println!("tls_server: done"),
    }
    watcher.shutdown().await;
    Ok(())
}
