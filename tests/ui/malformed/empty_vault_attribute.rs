use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(env = "DATABASE_URL")]
    url: String,
}

fn main() {}
