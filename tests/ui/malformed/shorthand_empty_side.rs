use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("#DATABASE_URL")]
    url: String,
    #[vault("database#")]
    user: String,
}

fn main() {}
