use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
#[vault(crate = "not a path")]
struct Config {
    #[vault("database#DATABASE_URL")]
    url: String,
}

fn main() {}
