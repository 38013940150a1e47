use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(key = "DATABASE_URL")]
    url: String,
}

fn main() {}
