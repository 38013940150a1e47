use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("database#URL", version = "x")]
    url: String,
    #[vault(path = database, key = "USER")]
    user: String,
    #[vault("database#PORT", version = 0)]
    port: u16,
}

fn main() {}
