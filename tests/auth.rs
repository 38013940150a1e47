//! Authentication and token lifecycle against a real OpenBao/Vault dev server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::json;
use vault_config::{
    kv::KvVersion, AuthMethod, Error, ExposeSecret, SecretId, SecretString, VaultClient,
    VaultClientBuilder, VaultConfig, WatchOptions,
};
use vault_test_support::{env_of, eventually, DevServer, JwtSigner};

#[derive(Debug, Deserialize, VaultConfig)]
#[vault(mount = "agenticverz")]
struct Svc {
    #[vault("database#DATABASE_URL")]
    database_url: SecretString,
    #[vault("app-prod#AOS_API_KEY")]
    api_key: SecretString,
}

/// A server holding `Svc`'s two secrets and the policy `svc` made from `Svc::vault_policy`.
async fn svc_server(database_url: &str, api_key: &str) -> DevServer {
    let server = DevServer::start().await;
    server.enable_kv("agenticverz", 2, None).await.unwrap();
    server
        .kv_put(
            "agenticverz",
            "database",
            json!({ "DATABASE_URL": database_url }),
        )
        .await
        .unwrap();
    server
        .kv_put("agenticverz", "app-prod", json!({ "AOS_API_KEY": api_key }))
        .await
        .unwrap();
    server
        .write_policy("svc", &Svc::vault_policy_with("secret", &|_| KvVersion::V2))
        .await
        .unwrap();
    server
}

/// A server with the seeds' secrets, a policy made from `Svc::vault_policy`, and
/// an AppRole role `svc` holding it with `settings`.
async fn approle_server(settings: serde_json::Value) -> (DevServer, String) {
    let server = svc_server("postgres://svc", "aos").await;
    server
        .kv_put("agenticverz", "unrelated", json!({"X": "y"}))
        .await
        .unwrap();
    server.enable_auth("approle", "approle").await.unwrap();
    let mut role = json!({"token_policies": ["svc"]});
    if let (Some(role), Some(extra)) = (role.as_object_mut(), settings.as_object()) {
        role.extend(extra.clone());
    }
    let role_id = server.approle_role("svc", role).await.unwrap();
    (server, role_id)
}

fn approle_client(server: &DevServer, role_id: &str, secret_id: SecretId) -> VaultClient {
    VaultClientBuilder::default()
        .address(server.addr())
        .auth(AuthMethod::approle(role_id, secret_id))
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap()
}

#[tokio::test]
async fn approle_with_the_generated_policy_reads_exactly_its_paths() {
    let (server, role_id) = approle_server(json!({"token_ttl": "60s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id.clone())),
    );

    let cfg = Svc::load(&client).await.unwrap();
    assert_eq!(cfg.database_url.expose_secret(), "postgres://svc");
    let status = client.auth_status().unwrap();
    assert_eq!((status.method, status.logins), ("approle", 1));

    let denied = client.read("agenticverz", "unrelated").await.unwrap_err();
    assert!(
        matches!(&denied, Error::PermissionDenied { path, .. } if path == "agenticverz/data/unrelated"),
        "{denied:?}"
    );

    // The env contract, prefixed as the AION deployment names it.
    let env = env_of(&[
        ("AION_VAULT_ADDR", server.addr()),
        ("AION_VAULT_AUTH_METHOD", "approle"),
        ("AION_VAULT_APPROLE_ROLE_ID", &role_id),
        ("AION_VAULT_APPROLE_SECRET_ID", &secret_id),
    ]);
    let from_env = VaultClientBuilder::from_env_source(Some("AION"), env)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        Svc::load(&from_env).await.unwrap().api_key.expose_secret(),
        "aos"
    );
    for shown in [
        format!("{client:?}"),
        format!("{from_env:?}"),
        format!("{denied}"),
    ] {
        assert!(!shown.contains(&secret_id), "secret ID leaked: {shown}");
    }
}

#[tokio::test]
async fn a_wrapped_secret_id_is_unwrapped_once_and_a_second_use_fails_clearly() {
    let (server, role_id) = approle_server(json!({"token_ttl": "60s"})).await;
    let wrapping = server.approle_wrapped_secret_id("svc").await.unwrap();

    let client = approle_client(
        &server,
        &role_id,
        SecretId::Wrapped(SecretString::from(wrapping.clone())),
    );
    assert_eq!(
        Svc::load(&client).await.unwrap().api_key.expose_secret(),
        "aos"
    );

    let again = approle_client(
        &server,
        &role_id,
        SecretId::Wrapped(SecretString::from(wrapping.clone())),
    );
    let err = Svc::load(&again).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("wrapped secret ID cannot be unwrapped"),
        "{text}"
    );
    assert!(!text.contains(&wrapping), "{text}");
}

#[tokio::test]
async fn a_secret_id_file_and_a_missing_one() {
    let (server, role_id) = approle_server(json!({"token_ttl": "60s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let file = std::env::temp_dir().join(format!("vault-config-secret-id-{}", std::process::id()));
    std::fs::write(&file, format!("{secret_id}\n")).unwrap();
    let client = approle_client(&server, &role_id, SecretId::File(file.clone()));
    let loaded = Svc::load(&client).await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(loaded.unwrap().api_key.expose_secret(), "aos");

    let missing = approle_client(
        &server,
        &role_id,
        SecretId::File("/nonexistent/secret-id".into()),
    );
    let err = Svc::load(&missing).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/secret-id"), "{err}");
}

#[tokio::test]
async fn a_short_ttl_token_is_renewed_while_a_watcher_runs() {
    let (server, role_id) =
        approle_server(json!({"token_ttl": "3s", "token_max_ttl": "60s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id)),
    );
    let watcher = Svc::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap();
    // Past the first token's whole TTL, renewed at two thirds of it each time.
    eventually(Duration::from_secs(10), || {
        client.auth_status().unwrap().renewals >= 2
    })
    .await;
    let status = client.auth_status().unwrap();
    assert_eq!(status.logins, 1, "renewed, never replaced: {status:?}");
    assert!(status.renewable);
    let health = watcher.health();
    assert!(
        health.vault_connected && health.last_error.is_none(),
        "{health:?}"
    );
    assert_eq!(health.token.unwrap().method, "approle");
}

#[tokio::test]
async fn a_non_renewable_token_is_replaced_by_logging_in_before_it_expires() {
    let (server, role_id) = approle_server(json!({"token_type": "batch", "token_ttl": "2s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id)),
    );
    let watcher = Svc::watch(
        &client,
        WatchOptions::default()
            .interval(Duration::from_millis(200))
            .jitter(0.0),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), || {
        client.auth_status().unwrap().logins >= 3
    })
    .await;
    assert!(!client.auth_status().unwrap().renewable);
    assert!(watcher.refresh().await.is_ok());
    let health = watcher.health();
    assert!(
        health.vault_connected && health.last_error.is_none(),
        "{health:?}"
    );
}

#[tokio::test]
async fn a_revoked_token_is_recovered_by_logging_in_again() {
    let (server, role_id) = approle_server(json!({"token_ttl": "60s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id)),
    );
    Svc::load(&client).await.unwrap();
    // Revokes every token the AppRole login issued, as `bao token revoke` would ours.
    server
        .api(
            "PUT",
            "sys/leases/revoke-prefix/auth/approle/login",
            None,
            Some(json!({})),
        )
        .await
        .unwrap();

    let cfg = Svc::load(&client).await.unwrap();
    assert_eq!(cfg.api_key.expose_secret(), "aos");
    assert_eq!(client.auth_status().unwrap().logins, 2);
}

#[tokio::test]
async fn concurrent_reads_share_one_login() {
    let (server, role_id) = approle_server(json!({"token_ttl": "60s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id)),
    );
    let reads = (0..8).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let path = if i % 2 == 0 { "database" } else { "app-prod" };
            client.read("agenticverz", path).await.map(|_| ())
        })
    });
    for r in futures_util::future::join_all(reads).await {
        r.unwrap().unwrap();
    }
    assert_eq!(client.auth_status().unwrap().logins, 1);
}

async fn jwt_server(mount: &str) -> (DevServer, JwtSigner) {
    let server = svc_server("postgres://jwt", "aos-jwt").await;
    let signer = JwtSigner::generate().await.unwrap();
    server.enable_auth(mount, "jwt").await.unwrap();
    server
        .api(
            "POST",
            &format!("auth/{mount}/config"),
            None,
            Some(json!({"jwt_validation_pubkeys": [signer.public_pem], "bound_issuer": "vault-config-test"})),
        )
        .await
        .unwrap();
    server
        .api(
            "POST",
            &format!("auth/{mount}/role/svc"),
            None,
            Some(
                json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault-config"],
                "token_policies": ["svc"], "token_ttl": "60s"}),
            ),
        )
        .await
        .unwrap();
    (server, signer)
}

async fn service_jwt(signer: &JwtSigner, sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    signer
        .sign(&json!({"iss": "vault-config-test", "sub": sub, "aud": "vault-config", "iat": now, "nbf": now - 5, "exp": now + 300}))
        .await
        .unwrap()
}

#[tokio::test]
async fn jwt_login_with_a_key_pair_made_in_the_test() {
    let (server, signer) = jwt_server("jwt").await;
    let file = signer
        .write("token.jwt", &service_jwt(&signer, "svc-1").await)
        .unwrap();
    let env = env_of(&[
        ("VAULT_ADDR", server.addr()),
        ("VAULT_AUTH_METHOD", "jwt"),
        ("VAULT_AUTH_ROLE", "svc"),
        ("VAULT_JWT_FILE", file.to_str().unwrap()),
    ]);
    let client = VaultClientBuilder::from_env_source(None, env)
        .unwrap()
        .build()
        .unwrap();
    let cfg = Svc::load(&client).await.unwrap();
    assert_eq!(cfg.database_url.expose_secret(), "postgres://jwt");
    assert_eq!(client.auth_status().unwrap().method, "jwt");

    // A JWT signed by another key is refused with a clear error.
    let stranger = JwtSigner::generate().await.unwrap();
    let bad = stranger
        .write("bad.jwt", &service_jwt(&stranger, "svc-1").await)
        .unwrap();
    let client = VaultClientBuilder::default()
        .address(server.addr())
        .auth(AuthMethod::jwt("svc", bad))
        .env_source(env_of(&[]))
        .build()
        .unwrap();
    let err = Svc::load(&client).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn kubernetes_login_request_against_a_jwt_method_mounted_at_kubernetes() {
    let (server, signer) = jwt_server("kubernetes").await;
    let sa_token = signer
        .write(
            "sa-token",
            &service_jwt(&signer, "system:serviceaccount:aos:svc").await,
        )
        .unwrap();
    let client = VaultClientBuilder::default()
        .address(server.addr())
        .auth(AuthMethod::Kubernetes {
            mount: "kubernetes".into(),
            role: "svc".into(),
            token_file: sa_token,
        })
        .env_source(env_of(&[]))
        .build()
        .unwrap();
    assert_eq!(
        Svc::load(&client).await.unwrap().api_key.expose_secret(),
        "aos-jwt"
    );
    assert_eq!(client.auth_status().unwrap().method, "kubernetes");
}

#[tokio::test]
async fn a_static_token_about_to_expire_shows_in_health() {
    let server = DevServer::start().await;
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "u"}))
        .await
        .unwrap();
    let token = server
        .create_token(json!({"policies": ["root"], "ttl": "30s", "renewable": false}))
        .await
        .unwrap();
    let client = server.client_builder(&[]).token(token).build().unwrap();

    #[derive(Debug, Deserialize, VaultConfig)]
    struct Db {
        #[vault("database#DATABASE_URL")]
        database_url: String,
    }
    let watcher = Db::watch(
        &client,
        WatchOptions::default().interval(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let token_status = watcher.health().token.unwrap();
    assert_eq!(token_status.method, "token");
    assert!(!token_status.renewable);
    let left = token_status.expires_in_secs.unwrap();
    assert!(left <= 30 && left > 0, "{token_status:?}");
    assert_eq!(watcher.current().database_url, "u");
}

/// How many tokens are alive on `server`, root's own included.
async fn live_tokens(server: &DevServer) -> usize {
    let answer = server
        .api("LIST", "auth/token/accessors", None, None)
        .await
        .unwrap();
    answer["data"]["keys"]
        .as_array()
        .map_or(0, std::vec::Vec::len)
}

#[tokio::test]
async fn logout_revokes_the_tokens_it_logged_in_for_and_never_a_given_one() {
    // A renewal at two thirds of 6 s is cut short by the 9 s max TTL: the
    // client logs in again and leaves the replaced token to expire.
    let (server, role_id) = approle_server(json!({"token_ttl": "6s", "token_max_ttl": "9s"})).await;
    let secret_id = server.approle_secret_id("svc").await.unwrap();
    let client = approle_client(
        &server,
        &role_id,
        SecretId::Plain(SecretString::from(secret_id)),
    );
    let before = live_tokens(&server).await;
    Svc::load(&client).await.unwrap();
    assert_eq!(live_tokens(&server).await, before + 1);

    client.logout().await.unwrap();
    assert_eq!(
        live_tokens(&server).await,
        before,
        "the login's token is revoked"
    );
    client.logout().await.unwrap();
    assert_eq!(
        live_tokens(&server).await,
        before,
        "a second logout is a no-op"
    );
    assert_eq!(
        client.auth_status().unwrap().state,
        vault_config::auth::AuthState::Pending
    );

    // Used again, it logs in again; a token it replaced is revoked too.
    Svc::load(&client).await.unwrap();
    assert_eq!(client.auth_status().unwrap().logins, 2);
    tokio::time::sleep(Duration::from_millis(4300)).await;
    Svc::load(&client).await.unwrap();
    assert_eq!(
        client.auth_status().unwrap().logins,
        3,
        "replaced at the max TTL"
    );
    assert_eq!(
        live_tokens(&server).await,
        before + 2,
        "the replaced token is left to expire"
    );
    client.logout().await.unwrap();
    assert_eq!(live_tokens(&server).await, before, "both are revoked");

    // A token the service was given is never revoked.
    let given = server
        .create_token(json!({"policies": ["svc"]}))
        .await
        .unwrap();
    let static_client = VaultClientBuilder::default()
        .address(server.addr())
        .token(given.clone())
        .env_source(env_of(&[]))
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    Svc::load(&static_client).await.unwrap();
    let tokens = live_tokens(&server).await;
    static_client.logout().await.unwrap();
    assert_eq!(live_tokens(&server).await, tokens);
    server
        .api(
            "POST",
            "auth/token/lookup",
            None,
            Some(json!({"token": given})),
        )
        .await
        .expect("the given token was revoked");
    Svc::load(&static_client).await.unwrap();
}
