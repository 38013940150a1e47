//! Error cases against a real OpenBao/Vault dev server, and that no secret leaks into them.

use serde_json::json;
use vault_config::{Error, VaultProvider};
use vault_test_support::DevServer;

const SECRET: &str = "pw-8c1f2e-NEVER-PRINT";

#[tokio::test]
async fn denied_path_is_a_permission_error_naming_the_path() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": SECRET}))
        .await
        .unwrap();
    server
        .kv_put("secret", "other", json!({"X": "y"}))
        .await
        .unwrap();
    let token = server
        .token_with_policy(
            "only-other",
            r#"path "secret/data/other" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .token(token.clone())
        .build()
        .unwrap();

    assert!(
        client.read("secret", "other").await.is_ok(),
        "the policy grants this path"
    );
    let err = client.read("secret", "database").await.unwrap_err();
    assert!(
        matches!(&err, Error::PermissionDenied { path, .. } if path == "secret/data/database"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("secret/data/database"), "{text}");

    // Permission errors are not outages: even fallback mode reports them.
    let fallback = server
        .client_builder(&[("DATABASE_URL", "env")])
        .token(token.clone())
        .fallback_mode(vault_config::FallbackMode::Fallback)
        .build()
        .unwrap();
    let err = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .fetch(&fallback)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    for shown in [format!("{err}"), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains(&token), "token leaked: {shown}");
        assert!(!shown.contains(SECRET), "secret leaked: {shown}");
    }
}

#[tokio::test]
async fn sealed_server_gives_the_sealed_error() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": SECRET}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();
    assert!(client.read("secret", "database").await.is_ok());

    server.cli(&["operator", "seal"]).await.unwrap();
    let err = client.read("secret", "database").await.unwrap_err();
    assert!(
        matches!(&err, Error::Sealed { addr } if addr.starts_with(server.addr())),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(err.to_string().contains("sealed"), "{err}");
}

#[tokio::test]
async fn no_secret_value_in_any_display_or_debug() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": SECRET, "port": "not-a-number"}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();

    let secret = client.read("secret", "database").await.unwrap();
    let provider = VaultProvider::builder()
        .map("url", "database#DATABASE_URL")
        .mapping(
            vault_config::Mapping::new("port", "database#port")
                .unwrap()
                .env("DATABASE_PORT"),
        )
        .fetch(&client)
        .await
        .unwrap();
    let errors = [
        client.read("secret", "missing").await.unwrap_err(),
        client
            .read_version("secret", "database", 7)
            .await
            .unwrap_err(),
        client.read_metadata("secret", "missing").await.unwrap_err(),
    ];
    let mut shown = vec![
        format!("{secret:?}"),
        format!("{provider:?}"),
        format!("{client:?}"),
    ];
    for e in &errors {
        shown.push(format!("{e}"));
        shown.push(format!("{e:?}"));
    }
    for text in &shown {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(server.root_token()), "token leaked: {text}");
    }
    assert!(
        shown[1].contains("vault secret/data/database#DATABASE_URL"),
        "{}",
        shown[1]
    );
}

#[tokio::test]
async fn tls_needs_the_servers_ca() {
    let server = DevServer::start_tls().await;
    assert!(server.addr().starts_with("https://"));
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": SECRET}))
        .await
        .unwrap();

    let untrusted = server.client_builder(&[]).max_retries(0).build().unwrap();
    let err = untrusted.read("secret", "database").await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("VAULT_CACERT"), "{err}");

    let ca = server.ca_file();
    let env = vault_test_support::env_of(&[
        ("VAULT_ADDR", server.addr()),
        ("VAULT_TOKEN", server.root_token()),
        ("VAULT_CACERT", ca.to_str().unwrap()),
    ]);
    let trusted = vault_config::VaultClientBuilder::from_env_source(None, env)
        .unwrap()
        .build()
        .unwrap();
    let secret = trusted.read("secret", "database").await.unwrap();
    assert_eq!(secret.version(), Some(1));

    let skipping = server
        .client_builder(&[])
        .skip_verify(true)
        .build()
        .unwrap();
    assert!(skipping.read("secret", "database").await.is_ok());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and never answers: what a hung Vault looks like.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    let client = vault_config::VaultClient::builder()
        .address(&addr)
        .token("t")
        .timeout(std::time::Duration::from_millis(200))
        .kv_version("secret", vault_config::kv::KvVersion::V2)
        .build()
        .unwrap();
    let err = client.read("secret", "database").await.unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { path, .. } if path == "secret/data/database"),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    hold.abort();
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times_and_4xx_never() {
    use vault_test_support::FaultyProxy;
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "x"}))
        .await
        .unwrap();
    let client_via = |addr: &str| {
        server
            .client_builder(&[])
            .address(addr)
            .kv_version("secret", vault_config::kv::KvVersion::V2)
            .max_retries(2)
            .retry_backoff(std::time::Duration::from_millis(5))
            .build()
            .unwrap()
    };

    // The first request (the token's lookup) meets two 502s; two retries absorb them.
    let flaky = FaultyProxy::start(server.addr(), 2, 502).await.unwrap();
    assert!(client_via(flaky.addr())
        .read("secret", "database")
        .await
        .is_ok());
    assert_eq!(flaky.faults(), 2);

    // 503s throughout: each request is tried exactly three times (the lookup,
    // whose failure only leaves the TTL unknown, then the read), and the read's
    // error says what Vault answered.
    let down = FaultyProxy::start(server.addr(), 100, 503).await.unwrap();
    let err = client_via(down.addr())
        .read("secret", "database")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Vault { status: 503, errors, .. } if errors == &["injected fault"]),
        "{err:?}"
    );
    assert_eq!(
        down.faults(),
        6,
        "1 + 2 retries, for each of the two requests"
    );

    // A 4xx is never retried: one attempt per request.
    let bad = FaultyProxy::start(server.addr(), 100, 400).await.unwrap();
    let err = client_via(bad.addr())
        .read("secret", "database")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Vault { status: 400, .. }), "{err:?}");
    assert_eq!(bad.faults(), 2);
}
