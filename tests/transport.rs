//! HTTP behaviour where a real Vault meets the network: redirects, response
//! size, path encoding, what is retried, and addresses with credentials.
//! Redirects to another host and oversized bodies come from a loopback
//! `CannedServer`, since a real server cannot be made to send them.

use std::time::Duration;

use serde_json::json;
use vault_config::kv::KvVersion;
use vault_config::{AuthMethod, Error, SecretId, SecretString, VaultClient, VaultClientBuilder};
use vault_test_support::{dead_addr, env_of, CannedServer, CountingProxy, DevServer, FaultyProxy};

fn client_at(addr: &str) -> VaultClientBuilder {
    VaultClientBuilder::default()
        .address(addr)
        .token("hvs.NEVER-LEAVES")
        .env_source(env_of(&[]))
        .kv_version("secret", KvVersion::V2)
        .cache_ttl(Duration::ZERO)
        .retry_backoff(Duration::from_millis(5))
}

fn response(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn a_redirect_to_another_host_carries_neither_token_nor_login() {
    let foreign = CannedServer::start(|_| response("200 OK", "", "{}"))
        .await
        .unwrap();
    let target = format!("{}/v1/secret/data/database", foreign.addr());
    let redirector = CannedServer::start(move |_| {
        response(
            "307 Temporary Redirect",
            &format!("location: {target}\r\n"),
            "",
        )
    })
    .await
    .unwrap();

    let client = client_at(redirector.addr()).build().unwrap();
    let err = client.read("secret", "database").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not the configured address"), "{text}");
    assert!(!text.contains("NEVER-LEAVES"), "{text}");

    // An AppRole login body (role ID, secret ID) is not replayed there either.
    let approle = VaultClientBuilder::default()
        .address(redirector.addr())
        .auth(AuthMethod::approle(
            "role-id",
            SecretId::Plain(SecretString::from("secret-id-NEVER-LEAVES".to_owned())),
        ))
        .env_source(env_of(&[]))
        .build()
        .unwrap();
    let err = approle.read("secret", "database").await.unwrap_err();
    assert!(
        err.to_string().contains("not the configured address"),
        "{err}"
    );

    assert!(
        foreign.requests().is_empty(),
        "the foreign host was contacted: {:?}",
        foreign.requests()
    );
    assert!(redirector.requests().len() >= 2);
}

#[tokio::test]
async fn a_redirect_back_to_the_configured_address_is_followed_once() {
    // Each answer redirects to the server itself: followed once, then refused.
    let looping = CannedServer::start(|own| {
        response(
            "307 Temporary Redirect",
            &format!("location: {own}/v1/secret/data/database\r\n"),
            "",
        )
    })
    .await
    .unwrap();
    let client = client_at(looping.addr()).max_retries(0).build().unwrap();
    let before = looping.requests().len(); // nothing yet: no request at build
    assert_eq!(before, 0);
    let err = client.read("secret", "database").await.unwrap_err();
    assert!(err.to_string().contains("redirected twice"), "{err}");
    let heads = looping.requests();
    assert_eq!(
        heads.len(),
        4,
        "two requests (the token's lookup, the read), each redirected and followed once: {heads:?}"
    );
    assert_eq!(
        heads
            .iter()
            .filter(|h| h.starts_with("GET /v1/auth/token/lookup-self"))
            .count(),
        1,
        "{heads:?}"
    );
    // The followed request kept the token: it went back to the configured address.
    assert!(looping
        .requests()
        .iter()
        .all(|h| h.to_ascii_lowercase().contains("x-vault-token")));
}

#[tokio::test]
async fn an_oversized_answer_is_refused_with_or_without_a_length() {
    let big = format!(
        "{{\"data\":{{\"data\":{{\"k\":\"{}\"}}}}}}",
        "x".repeat(300_000)
    );
    let with_length = {
        let big = big.clone();
        CannedServer::start(move |_| response("200 OK", "", &big))
            .await
            .unwrap()
    };
    // No content-length: the body runs to the end of the connection.
    let without_length = CannedServer::start(move |_| {
        format!("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{big}").into_bytes()
    })
    .await
    .unwrap();
    for server in [&with_length, &without_length] {
        let client = client_at(server.addr())
            .max_response_bytes(100_000)
            .build()
            .unwrap();
        let err = client.read("secret", "database").await.unwrap_err();
        assert!(
            matches!(&err, Error::Malformed { reason, .. } if reason.contains("larger than 100000 bytes")),
            "{err:?}"
        );
        // Under the limit, the same answer reads.
        let roomy = client_at(server.addr()).build().unwrap();
        let secret = roomy.read("secret", "database").await.unwrap();
        assert_eq!(
            secret.get("k").and_then(|v| v.as_str()).map(str::len),
            Some(300_000)
        );
    }
}

#[tokio::test]
async fn names_with_query_or_dot_segments_stay_what_they_are() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "plain", json!({"K": "v"}))
        .await
        .unwrap();
    let proxy = CountingProxy::start(server.addr()).await.unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .kv_version("secret", KvVersion::V2)
        .build()
        .unwrap();

    // `?` is part of the name, and the pin is kept: nothing there, version 3 named.
    let err = client.read_version("secret", "a?b", 3).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { path, version: Some(3), .. } if path == "a?b"),
        "{err:?}"
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|l| l.contains("/v1/secret/data/a%3Fb?version=3")),
        "{:?}",
        proxy.requests()
    );

    // A `..` segment is refused before any request (the URL would resolve it).
    proxy.reset();
    for path in ["team/../plain", "team//plain", "./plain"] {
        let err = client.read("secret", path).await.unwrap_err();
        assert!(matches!(err, Error::Mapping { .. }), "{path}: {err:?}");
        assert!(err.to_string().contains("segment"), "{err}");
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_eq!(
        client.read("secret", "plain").await.unwrap().get("K"),
        Some(&json!("v"))
    );
}

#[tokio::test]
async fn an_unwrap_that_may_have_happened_is_not_repeated() {
    let server = DevServer::start().await;
    server.enable_auth("approle", "approle").await.unwrap();
    server
        .write_policy(
            "reader",
            r#"path "secret/data/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "database", json!({"K": "v"}))
        .await
        .unwrap();
    let role_id = server
        .approle_role("svc", json!({"token_policies": ["reader"]}))
        .await
        .unwrap();
    let wrapping = server.approle_wrapped_secret_id("svc").await.unwrap();
    // The first request (the unwrap) meets a 502 from the proxy, as if Vault
    // had answered it and the answer was lost.
    let flaky = FaultyProxy::start(server.addr(), 1, 502).await.unwrap();
    let client = VaultClientBuilder::default()
        .address(flaky.addr())
        .auth(AuthMethod::approle(
            role_id,
            SecretId::Wrapped(SecretString::from(wrapping.clone())),
        ))
        .env_source(env_of(&[]))
        .kv_version("secret", KvVersion::V2)
        .retry_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    let err = client.read("secret", "database").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not retried"), "{text}");
    assert!(!text.contains(&wrapping), "{text}");
    assert_eq!(flaky.faults(), 1, "one attempt, no retry");
    // The proxy ate that request, so the wrapping token is still good: once
    // the login backoff (1 s after a first failure) has passed, the next read
    // unwraps it, logs in and reads.
    let early = client.read("secret", "database").await.unwrap_err();
    assert_eq!(
        early.to_string(),
        text,
        "inside the backoff: the same error, nothing sent"
    );
    assert_eq!(flaky.faults(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let secret = client.read("secret", "database").await.unwrap();
    assert_eq!(secret.get("K"), Some(&json!("v")));
}

#[tokio::test]
async fn credentials_in_the_address_are_never_shown() {
    let dead = dead_addr();
    let with_user = dead.replace("http://", "http://ops:pa55word@");
    let builder = client_at(&with_user).max_retries(0);
    assert!(!format!("{builder:?}").contains("pa55word"), "{builder:?}");
    let client: VaultClient = builder.build().unwrap();
    for text in [
        format!("{client:?}"),
        client.address().unwrap_or_default().to_owned(),
        client.read("secret", "x").await.unwrap_err().to_string(),
    ] {
        assert!(!text.contains("pa55word"), "{text}");
        assert!(!text.contains("ops:"), "{text}");
    }
}
