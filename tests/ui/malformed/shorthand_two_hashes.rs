use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("database#URL#again")]
    url: String,
}

fn main() {}
