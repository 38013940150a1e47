use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("database#DATABASE_URL")]
    url: String,
    #[vault(path = "database", key = "DATABASE_URL")]
    url_again: String,
}

fn main() {}
