use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("database#DATABASE_URL", ttl = "1h")]
    url: String,
}

fn main() {}
