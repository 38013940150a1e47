use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(path = "database")]
    url: String,
}

fn main() {}
