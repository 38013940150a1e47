use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("team/../admin#TOKEN")]
    token: String,
}

fn main() {}
