use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(default = 5432)]
    port: u16,
}

fn main() {}
