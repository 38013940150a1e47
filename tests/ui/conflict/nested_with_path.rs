use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Inner {
    #[vault("keycloak#ADMIN")]
    admin: String,
}

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(nested, path = "keycloak")]
    inner: Inner,
}

fn main() {}
