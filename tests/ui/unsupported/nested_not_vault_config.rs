use vault_config::VaultConfig;

#[derive(serde::Deserialize)]
struct Plain {
    admin: String,
}

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(nested)]
    inner: Plain,
}

fn main() {}
