//! TLS identities from Vault: a real OpenBao PKI engine (its root CA
//! generated in the test) and a real TLS server built on
//! `tls::CertResolver`, fed by a watcher. Certificates come from KV (a
//! rotation publishes the new one; an expired or mismatched one is held
//! back) and from PKI (issued at load, issued again at two thirds of its
//! validity). No timing assertions: each wait is for an event, bounded
//! only so a broken build fails instead of hanging.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vault_config::kv::KvVersion;
use vault_config::tls::{CertResolver, Identity};
use vault_config::{Health, VaultConfig, WatchOptions, Watcher};
use vault_test_support::DevServer;

/// A bound on waits for something that happens within a few poll intervals.
const EVENT: Duration = Duration::from_secs(30);

const NAME: &str = "gateway.internal";

/// Mounts `pki` with a root CA and role `web` (names under `internal`, up
/// to one hour); returns the CA certificate.
async fn pki(server: &DevServer) -> String {
    server
        .enable_pki(
            "pki",
            "web",
            json!({"allowed_domains": "internal", "allow_subdomains": true,
                   "allow_ip_sans": true, "max_ttl": "1h"}),
        )
        .await
        .unwrap()
}

/// An HTTPS-less TLS echo server on loopback whose certificate `resolver` picks
/// at each handshake.
async fn serve(resolver: CertResolver) -> SocketAddr {
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A client trusting `ca_pem` connects to `addr` as `gateway.internal`;
/// returns the connection and the leaf certificate the server showed.
async fn connect(addr: SocketAddr, ca_pem: &str) -> (TlsStream<TcpStream>, Vec<u8>) {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(NAME).unwrap(), tcp)
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (tls, leaf)
}

/// Sends `text` on an open connection and reads it back.
async fn echo(tls: &mut TlsStream<TcpStream>, text: &str) {
    tls.write_all(text.as_bytes()).await.unwrap();
    let mut back = vec![0u8; text.len()];
    timeout(EVENT, tls.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, text.as_bytes());
}

fn leaf_of(identity: &Identity) -> Vec<u8> {
    identity.chain_der().next().unwrap().to_vec()
}

/// Waits for the watcher to publish a config whose identity differs from `old`.
async fn next_identity<T: Send + Sync + 'static>(
    watcher: &Watcher<T>,
    select: impl Fn(&T) -> &Identity,
    old: &Identity,
) -> Identity {
    let mut rx = watcher.subscribe();
    timeout(EVENT, async {
        loop {
            let now = select(&rx.borrow_and_update()).clone();
            if now != *old {
                return now;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("no new identity was published")
}

fn options() -> WatchOptions {
    WatchOptions::default()
        .interval(Duration::from_millis(300))
        .jitter(0.0)
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Issued {
    #[vault(
        pki = "pki/issue/web",
        common_name = "gateway.internal",
        alt_names = "gateway-alt.internal",
        ip_sans = "127.0.0.1",
        ttl = "6s"
    )]
    identity: Identity,
}

#[tokio::test]
async fn a_pki_certificate_is_served_and_issued_again_before_it_expires() {
    let server = DevServer::start().await;
    let ca = pki(&server).await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Issued::watch(&client, options()).await.unwrap();
    let first = watcher.current().identity.clone();
    assert_eq!(first.common_name(), Some(NAME));
    assert!(first
        .dns_names()
        .iter()
        .any(|n| n == "gateway-alt.internal"));
    // Vault's 6 s, plus the 30 s it backdates notBefore by.
    assert!(first.valid_for() <= Duration::from_secs(40), "{first:?}");

    let health = watcher.health();
    let shown = &health.certificates["identity"];
    assert_eq!(shown.serial, first.serial());
    assert_eq!(shown.common_name.as_deref(), Some(NAME));
    assert!(shown.reissue_at.is_some(), "{shown:?}");
    let text = serde_json::to_string(&health).unwrap();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("BEGIN"),
        "{text}"
    );

    let addr = serve(CertResolver::new(watcher.subscribe(), |c: &Issued| {
        &c.identity
    }))
    .await;
    let (mut open, leaf) = connect(addr, &ca).await;
    assert_eq!(leaf, leaf_of(&first), "the client sees the issued leaf");
    echo(&mut open, "before").await;

    // Two thirds of 6 s later, a new certificate, published like any value.
    let second = next_identity(&watcher, |c: &Issued| &c.identity, &first).await;
    assert_ne!(second.serial(), first.serial());
    let (_, leaf) = connect(addr, &ca).await;
    assert_eq!(leaf, leaf_of(&second), "a new handshake gets the new one");
    echo(&mut open, "still open").await;
    assert_eq!(
        watcher.health().certificates["identity"].serial,
        second.serial()
    );

    // The policy it needs: `update` on the issue path, and nothing else.
    let hcl = Issued::vault_policy_with("secret", &|_| KvVersion::V2);
    assert!(
        hcl.contains("path \"pki/issue/web\" {\n  capabilities = [\"update\"]\n}"),
        "{hcl}"
    );
    let token = server.token_with_policy("issuer", &hcl).await.unwrap();
    let least = server.client_builder(&[]).token(token).build().unwrap();
    let loaded = Issued::load(&least).await.unwrap();
    assert_ne!(
        loaded.identity.serial(),
        second.serial(),
        "each load issues"
    );
}

#[derive(Debug, Deserialize, VaultConfig)]
struct FromKv {
    #[vault(path = "tls/gateway", key = "*")]
    identity: Identity,
}

/// A certificate for `gateway.internal` issued by root, valid `ttl`.
async fn issue(server: &DevServer, ttl: &str) -> Value {
    server
        .pki_issue("pki", "web", json!({"common_name": NAME, "ttl": ttl}))
        .await
        .unwrap()
}

/// The KV secret an operator writes by hand: certificate, key, CA chain.
fn by_hand(issued: &Value, key_of: &Value) -> Value {
    json!({
        "certificate": issued["certificate"],
        "private_key": key_of["private_key"],
        "ca_chain": issued["issuing_ca"],
    })
}

#[tokio::test]
async fn a_kv_certificate_rotates_and_a_bad_one_is_held_back() {
    let server = DevServer::start().await;
    let ca = pki(&server).await;
    let a = issue(&server, "1h").await;
    let b = issue(&server, "1h").await;
    server
        .kv_put("secret", "tls/gateway", by_hand(&a, &a))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = FromKv::watch(&client, options()).await.unwrap();
    let first = watcher.current().identity.clone();
    assert_eq!(first.serial(), a["serial_number"].as_str().unwrap());
    assert_eq!(watcher.health().certificates["identity"].reissue_at, None);

    let addr = serve(CertResolver::new(watcher.subscribe(), |c: &FromKv| {
        &c.identity
    }))
    .await;
    let (mut open, leaf) = connect(addr, &ca).await;
    assert_eq!(leaf, leaf_of(&first));

    // A rotation in KV reaches new handshakes; the open connection stays.
    server
        .kv_put("secret", "tls/gateway", by_hand(&b, &b))
        .await
        .unwrap();
    let second = next_identity(&watcher, |c: &FromKv| &c.identity, &first).await;
    assert_eq!(second.serial(), b["serial_number"].as_str().unwrap());
    let (_, leaf) = connect(addr, &ca).await;
    assert_eq!(leaf, leaf_of(&second));
    echo(&mut open, "after rotation").await;

    // B's certificate with A's key: held back, the error in health.
    server
        .kv_put("secret", "tls/gateway", by_hand(&b, &a))
        .await
        .unwrap();
    let error = held_back(&watcher).await;
    assert!(error.contains("does not match"), "{error}");
    assert!(error.contains("identity"), "names the field: {error}");
    assert_secret_free(&error, &[&a, &b]);
    let (_, leaf) = connect(addr, &ca).await;
    assert_eq!(leaf, leaf_of(&second), "the identity in force stays");

    // An expired certificate: held back too. Vault backdates notBefore by
    // 30 s, so a 1 s certificate has expired once a second has passed.
    let expired = issue(&server, "1s").await;
    let gone = expired["expiration"].as_u64().unwrap();
    while vault_config_unix_now() <= gone {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server
        .kv_put("secret", "tls/gateway", by_hand(&expired, &expired))
        .await
        .unwrap();
    let h = health_when(&watcher, EVENT, "the expired certificate held back", |h| {
        h.last_error
            .as_deref()
            .is_some_and(|e| e.contains("expired"))
    })
    .await;
    let error = h.last_error.unwrap_or_default();
    assert_secret_free(&error, &[&expired]);
    assert_eq!(watcher.current().identity, second);
    echo(&mut open, "still serving").await;

    // A restart now would not start (Vault's newest is the expired one), as
    // with any rotation held back; the operator rolls back to B (version 2).
    let fresh = server.client_builder(&[]).build().unwrap();
    let e = FromKv::load(&fresh).await.unwrap_err().to_string();
    assert!(e.contains("expired"), "{e}");
    server
        .kv_rollback("secret", "tls/gateway", 2)
        .await
        .unwrap();
    let h = health_when(&watcher, EVENT, "the error cleared by the rollback", |h| {
        h.last_error.is_none()
    })
    .await;
    assert_eq!(h.versions["secret/tls/gateway"], 5, "{h:?}");
    // The watcher ends where a fresh load does.
    let restarted = FromKv::load(&fresh).await.unwrap();
    assert_eq!(restarted.identity, watcher.current().identity);
    assert_eq!(restarted.identity, second);
}

fn vault_config_unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits (at most `limit`) for the watcher's health to satisfy `ready`;
/// returns that health. Panics saying `what` did not happen.
async fn health_when<T: Send + Sync + 'static>(
    watcher: &Watcher<T>,
    limit: Duration,
    what: &str,
    ready: impl Fn(&Health) -> bool,
) -> Health {
    let mut rx = watcher.subscribe_health();
    timeout(limit, async {
        loop {
            {
                let h = rx.borrow_and_update();
                if ready(&h) {
                    return h.clone();
                }
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not happen; health: {:?}", watcher.health()))
}

/// Waits for health to show a held-back config; returns its error.
async fn held_back<T: Send + Sync + 'static>(watcher: &Watcher<T>) -> String {
    let h = health_when(watcher, EVENT, "a held-back config", |h| {
        h.last_error.is_some()
    })
    .await;
    h.last_error.unwrap_or_default()
}

/// No line of any PEM in `answers` appears in `text`.
fn assert_secret_free(text: &str, answers: &[&Value]) {
    for answer in answers {
        for key in ["certificate", "private_key"] {
            let pem = answer[key].as_str().unwrap();
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!text.contains(line), "{key} leaked into: {text}");
            }
        }
    }
}

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "kv1")]
struct Mixed {
    #[vault(path = "gateway/limits", key = "port", env = "GATEWAY_PORT")]
    port: u16,
    #[vault(pki = "pki/issue/web", common_name = "gateway.internal", ttl = "6s")]
    identity: Identity,
}

/// A KV rotation that does not make a valid config is held back; the
/// certificate due meanwhile is still issued and published on its own, so a
/// bad write never lets the certificate in force expire. On KV v1 (no
/// versions to remember a rejection by) the bad value is read at every
/// poll, so the issue comes in the same poll as a KV change that fails.
#[tokio::test]
async fn a_certificate_is_issued_again_while_a_bad_kv_rotation_is_held_back() {
    let server = DevServer::start().await;
    pki(&server).await;
    server.enable_kv("kv1", 1, None).await.unwrap();
    server
        .kv_put("kv1", "gateway/limits", json!({"port": "8443"}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Mixed::watch(&client, options()).await.unwrap();
    let first = watcher.current().identity.clone();
    server
        .kv_put("kv1", "gateway/limits", json!({"port": "not a port"}))
        .await
        .unwrap();
    let error = held_back(&watcher).await;
    assert!(error.contains("port"), "{error}");
    let second = next_identity(&watcher, |c: &Mixed| &c.identity, &first).await;
    assert_ne!(second.serial(), first.serial());
    let now = watcher.current();
    assert_eq!(now.port, 8443, "the bad rotation stays out");
    let health = watcher.health();
    assert!(health.last_error.is_some(), "still says why: {health:?}");
    assert_eq!(health.certificates["identity"].serial, second.serial());
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Longer {
    #[vault(pki = "pki/issue/web", common_name = "gateway.internal", ttl = "30s")]
    identity: Identity,
}

/// Vault is down when the certificate is due: the one in force keeps
/// serving (a third of its validity is left), health says Vault is
/// unreachable while each attempt fails, and once Vault is back (an empty dev
/// server, its PKI set up again with a new CA) a new certificate is issued
/// and reaches new handshakes.
#[tokio::test]
async fn an_outage_at_issue_time_keeps_the_certificate_until_vault_is_back() {
    let mut server = DevServer::start().await;
    let first_ca = pki(&server).await;
    let client = server.client_builder(&[]).build().unwrap();
    let options = options().max_backoff(Duration::from_secs(1));
    let watcher = Longer::watch(&client, options).await.unwrap();
    let first = watcher.current().identity.clone();
    let addr = serve(CertResolver::new(watcher.subscribe(), |c: &Longer| {
        &c.identity
    }))
    .await;
    let (mut open, leaf) = connect(addr, &first_ca).await;
    assert_eq!(leaf, leaf_of(&first));

    server.stop().await;
    // Past the time to issue again (20 s in): the attempt fails, and says so.
    let due = watcher.health().certificates["identity"]
        .reissue_at
        .unwrap();
    let limit = EVENT + Duration::from_secs(30);
    health_when(&watcher, limit, "a failed issue in health", |h| {
        !h.vault_connected && vault_config_unix_now() > due
    })
    .await;
    let (_, leaf) = connect(addr, &first_ca).await;
    assert_eq!(leaf, leaf_of(&first), "the certificate in force stays");
    echo(&mut open, "during the outage").await;
    // Each poll tries again (the certificate is due), with backoff; health
    // stays disconnected meanwhile.
    let failures = watcher.health().consecutive_failures;
    let h = health_when(&watcher, EVENT, "two more failures", |h| {
        h.consecutive_failures >= failures + 2
    })
    .await;
    assert!(!h.vault_connected && h.last_error.is_some(), "{h:?}");
    assert_eq!(watcher.current().identity, first);

    server.restart().await.unwrap();
    let second_ca = pki(&server).await;
    let second = next_identity(&watcher, |c: &Longer| &c.identity, &first).await;
    let (_, leaf) = connect(addr, &second_ca).await;
    assert_eq!(leaf, leaf_of(&second), "issued by the new CA");
    let h = watcher.health();
    assert!(h.vault_connected && h.last_error.is_none(), "{h:?}");
    echo(&mut open, "after the outage").await;
}

/// The role settings of `pki`, with `key` (`{"key_type": ...}`) merged in.
fn role(key: Value) -> Value {
    let mut settings = json!({"allowed_domains": "internal", "allow_subdomains": true,
                              "allow_ip_sans": true, "max_ttl": "1h"});
    for (k, v) in key.as_object().unwrap() {
        settings[k] = v.clone();
    }
    settings
}

/// How many certificates the PKI mount has issued (its CA included).
async fn issued_count(server: &DevServer) -> usize {
    let list = server.api("LIST", "pki/certs", None, None).await.unwrap();
    list["data"]["keys"].as_array().unwrap().len()
}

/// The role starts issuing P-521 keys, which rustls cannot sign with: each
/// new certificate is refused, the one in force stays, and attempts back
/// off (polls in between do not issue); once the role is fixed, the next
/// attempt publishes a certificate and health is clear again.
#[tokio::test]
async fn a_certificate_that_cannot_serve_is_refused_and_retried_with_backoff() {
    let server = DevServer::start().await;
    pki(&server).await;
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Issued::watch(&client, options()).await.unwrap();
    let first = watcher.current().identity.clone();
    server
        .api(
            "POST",
            "pki/roles/web",
            None,
            Some(role(json!({"key_type": "ec", "key_bits": 521}))),
        )
        .await
        .unwrap();
    let before = issued_count(&server).await;

    let failed = |n: u32| move |h: &Health| h.certificates["identity"].reissue_failures >= n;
    let one = health_when(&watcher, EVENT, "a failed issue", failed(1)).await;
    let three = health_when(&watcher, EVENT, "three failed issues", failed(3)).await;
    let error = three.last_error.clone().unwrap_or_default();
    assert!(error.contains("rustls can sign"), "{error}");
    // Why, on the certificate itself too, naming the read.
    let why = three.certificates["identity"]
        .reissue_error
        .clone()
        .unwrap_or_default();
    assert!(
        why.contains("rustls can sign") && why.contains("pki/issue/web"),
        "{why}"
    );
    assert!(error.contains("identity"), "names the field: {error}");
    // Between the first and third failure the polls went on without
    // issuing: at least the 1 s + 2 s of backoff at 300 ms intervals.
    assert!(
        three.polls >= one.polls + 3,
        "polls {} -> {}: attempts did not back off",
        one.polls,
        three.polls
    );
    let attempts = three.certificates["identity"].reissue_failures as usize;
    let issued = issued_count(&server).await - before;
    assert!(
        issued <= attempts + 1,
        "{issued} issued for {attempts} attempts"
    );
    assert_eq!(
        watcher.current().identity,
        first,
        "the identity in force stays"
    );

    server
        .api(
            "POST",
            "pki/roles/web",
            None,
            Some(role(json!({"key_type": "rsa", "key_bits": 2048}))),
        )
        .await
        .unwrap();
    let second = next_identity(&watcher, |c: &Issued| &c.identity, &first).await;
    assert_ne!(second.serial(), first.serial());
    let h = watcher.health();
    assert_eq!(h.certificates["identity"].reissue_failures, 0, "{h:?}");
    assert_eq!(h.certificates["identity"].reissue_error, None, "{h:?}");
    assert!(h.last_error.is_none(), "{h:?}");
}

#[derive(Debug, Deserialize, VaultConfig)]
struct WithDatabase {
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app", key = "password")]
    password: vault_config::SecretString,
    #[vault(pki = "pki/issue/web", common_name = "gateway.internal", ttl = "6s")]
    identity: Identity,
}

/// Certificates and leased database credentials in one config, the role
/// refusing to issue usable certificates: the certificate in force expires
/// (nothing replaces it), and the credentials leased for 3 s are still
/// replaced and published after that, each new login working. An expired
/// identity in force, or a refused new one, never holds back the others.
#[tokio::test]
async fn credentials_are_replaced_while_certificates_are_refused_and_expired() {
    let server = DevServer::start().await;
    pki(&server).await;
    let pg = vault_test_support::Postgres::start().await;
    pg.configure_vault(&server, "app", "3s", "3s")
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let options = options().revoke_replaced_leases_after(Duration::from_millis(200));
    let watcher = WithDatabase::watch(&client, options).await.unwrap();
    let first = watcher.current().identity.clone();
    server
        .api(
            "POST",
            "pki/roles/web",
            None,
            Some(role(json!({"key_type": "ec", "key_bits": 521}))),
        )
        .await
        .unwrap();
    let expired = vault_config_unix(first.not_after());
    while vault_config_unix_now() <= expired {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Two more leases after the certificate in force expired.
    let mut rx = watcher.subscribe();
    for _ in 0..2 {
        let before = rx.borrow_and_update().username.clone();
        let now = timeout(EVENT, async {
            loop {
                rx.changed().await.unwrap();
                let now = rx.borrow_and_update().clone();
                if now.username != before {
                    return now;
                }
            }
        })
        .await
        .expect("no new credentials were published");
        assert_eq!(now.identity, first, "no usable certificate was issued");
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(pg.port())
            .user(&now.username)
            .password(vault_config::ExposeSecret::expose_secret(&now.password))
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let (db, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let row = db.query_one("select 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
        drop(db);
        let _ = driver.await;
    }
    let h = watcher.health();
    assert!(h.certificates["identity"].reissue_failures >= 1, "{h:?}");
    assert!(
        h.certificates["identity"].expires_at <= vault_config_unix_now(),
        "{h:?}"
    );
}

fn vault_config_unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[derive(Debug, Deserialize, VaultConfig)]
struct Capped {
    #[vault(pki = "pki/issue/short", common_name = "gateway.internal", ttl = "1h")]
    identity: Identity,
}

/// A role whose `max_ttl` caps certificates far below the TTL asked: Vault
/// issues them without an error, the watcher issues again at two thirds of
/// what each one got, and says why once, not at every issue.
#[tokio::test]
async fn a_certificate_capped_below_the_ttl_asked_is_kept_fresh_and_said_once() {
    let logs = crate::telemetry::Captured::start();
    let server = DevServer::start().await;
    server
        .enable_pki(
            "pki",
            "short",
            json!({"allowed_domains": "internal", "allow_subdomains": true, "max_ttl": "4s"}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    let watcher = Capped::watch(&client, options()).await.unwrap();
    let first = watcher.current().identity.clone();
    let second = next_identity(&watcher, |c: &Capped| &c.identity, &first).await;
    let third = next_identity(&watcher, |c: &Capped| &c.identity, &second).await;
    assert_ne!(third.serial(), first.serial());
    let text = logs.text();
    let said: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("the certificate issued is valid for"))
        .collect();
    assert_eq!(said.len(), 1, "once, for three certificates: {text}");
    assert!(
        said[0].contains("s where 3600 s were asked (the role's max_ttl"),
        "{}",
        said[0]
    );
}
