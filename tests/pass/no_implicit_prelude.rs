//! Generated code names everything by full path: it compiles in a module with
//! no prelude (`#[no_implicit_prelude]` on the `mod` in `pass/mod.rs`) and no `use`.
#![deny(warnings)]

#[derive(::serde::Deserialize, ::vault_config::VaultConfig)]
#[vault(mount = "agenticverz", prefix = "app", env_prefix = "APP_")]
#[allow(dead_code)]
struct Config {
    #[vault(path = "database", key = "DATABASE_URL", env = "DB_URL")]
    url: ::vault_config::SecretString,
    #[vault("database#port", default = 5432, version = 2)]
    port: u16,
    #[vault("external-apis#KEY")]
    key: ::std::option::Option<::std::string::String>,
    #[vault(nested)]
    inner: Inner,
    plain: bool,
    #[vault(env = "LISTEN_PORT", default = 8080)]
    listen_port: u16,
    #[vault(env = "FEATURE_FLAGS", json)]
    flags: ::std::option::Option<::std::collections::BTreeMap<::std::string::String, bool>>,
    #[vault(
        pki = "pki/issue/web",
        common_name = "gateway.internal",
        ttl = "1h",
        ip_sans = "127.0.0.1"
    )]
    tls: ::std::option::Option<::vault_config::tls::Identity>,
    #[vault(path = "tls/admin", key = "*")]
    admin_tls: ::vault_config::tls::Identity,
}

#[derive(::serde::Deserialize, ::vault_config::VaultConfig)]
#[allow(dead_code)]
struct Inner {
    #[vault("keycloak#ADMIN")]
    #[serde(rename = "admin_name")]
    admin: ::std::string::String,
}

#[test]
fn generated_code_needs_no_prelude() {
    let specs = <Config as ::vault_config::VaultConfig>::specs();
    ::std::assert_eq!(specs.len(), 8);
}
