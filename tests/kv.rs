//! KV reads against a real OpenBao/Vault dev server.

use serde_json::json;
use vault_config::kv::KvVersion;
use vault_config::{Error, ExposeSecret};
use vault_test_support::DevServer;

#[tokio::test]
async fn reads_kv_v2_with_version_and_metadata() {
    let server = DevServer::start().await;
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://a", "port": 5432}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://b", "port": 5433}),
        )
        .await
        .unwrap();
    let client = server.client_builder(&[]).build().unwrap();

    assert_eq!(client.kv_version("secret").await.unwrap(), KvVersion::V2);
    let current = client.read("secret", "database").await.unwrap();
    assert_eq!(current.version(), Some(2));
    assert_eq!(current.get("DATABASE_URL"), Some(&json!("postgres://b")));
    assert_eq!(
        current.get("port"),
        Some(&json!(5433)),
        "JSON numbers stay numbers"
    );

    let pinned = client.read_version("secret", "database", 1).await.unwrap();
    assert_eq!(pinned.version(), Some(1));
    assert_eq!(
        pinned.data().expose_secret().get("DATABASE_URL"),
        Some(&json!("postgres://a"))
    );

    let meta = client.read_metadata("secret", "database").await.unwrap();
    assert_eq!(meta.current_version, 2);

    let missing = client.read("secret", "nothing-here").await.unwrap_err();
    assert!(
        matches!(&missing, Error::NotFound { mount, path, .. } if mount == "secret" && path == "nothing-here"),
        "{missing:?}"
    );
    let missing_version = client
        .read_version("secret", "database", 9)
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing_version,
            Error::NotFound {
                version: Some(9),
                ..
            }
        ),
        "{missing_version:?}"
    );
}

#[tokio::test]
async fn reads_kv_v1_and_a_custom_mount() {
    let server = DevServer::start().await;
    server.enable_kv("legacy", 1, None).await.unwrap();
    server.enable_kv("agenticverz", 2, None).await.unwrap();
    server
        .kv_put("legacy", "app/config", json!({"API_KEY": "v1-value"}))
        .await
        .unwrap();
    server
        .kv_put("agenticverz", "app-prod", json!({"AOS_API_KEY": "aos-key"}))
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .kv_mount("agenticverz")
        .build()
        .unwrap();

    assert_eq!(client.kv_version("legacy").await.unwrap(), KvVersion::V1);
    let v1 = client.read("legacy", "app/config").await.unwrap();
    assert_eq!(v1.version(), None);
    assert_eq!(v1.get("API_KEY"), Some(&json!("v1-value")));
    assert!(
        client
            .read_version("legacy", "app/config", 1)
            .await
            .is_err(),
        "KV v1 has no versions"
    );

    let custom = client.read(client.kv_mount(), "app-prod").await.unwrap();
    assert_eq!(custom.get("AOS_API_KEY"), Some(&json!("aos-key")));
}

#[tokio::test]
async fn explicit_kv_version_skips_the_mount_lookup() {
    let server = DevServer::start().await;
    server.enable_kv("legacy", 1, None).await.unwrap();
    server
        .kv_put("legacy", "x", json!({"k": "v"}))
        .await
        .unwrap();
    let proxy = vault_test_support::CountingProxy::start(server.addr())
        .await
        .unwrap();
    let client = server
        .client_builder(&[])
        .address(proxy.addr())
        .kv_version("legacy", KvVersion::V1)
        .build()
        .unwrap();
    assert_eq!(
        client.read("legacy", "x").await.unwrap().get("k"),
        Some(&json!("v"))
    );
    assert_eq!(
        proxy.count("GET", "/v1/sys/internal/ui/mounts"),
        0,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("GET", "/v1/legacy/x"), 1);
}

#[tokio::test]
async fn reads_inside_a_namespace() {
    let server = DevServer::start().await;
    server.create_namespace("team-a").await.unwrap();
    server.enable_kv("secret", 2, Some("team-a")).await.unwrap();
    server
        .kv_put_in(
            Some("team-a"),
            "secret",
            "database",
            json!({"DATABASE_URL": "ns-value"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "database", json!({"DATABASE_URL": "root-value"}))
        .await
        .unwrap();

    let in_ns = server
        .client_builder(&[])
        .namespace("team-a")
        .build()
        .unwrap();
    let secret = in_ns.read("secret", "database").await.unwrap();
    assert_eq!(secret.get("DATABASE_URL"), Some(&json!("ns-value")));

    let root = server.client_builder(&[]).build().unwrap();
    assert_eq!(
        root.read("secret", "database")
            .await
            .unwrap()
            .get("DATABASE_URL"),
        Some(&json!("root-value"))
    );
}
