use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(dynamic = "database/creds/app", path = "database", key = "username")]
    username: String,
    #[vault(dynamic = "database/creds/app")]
    password: String,
    #[vault(dynamic = "database/creds/app", key = "x", version = 2)]
    other: String,
}

fn main() {}
