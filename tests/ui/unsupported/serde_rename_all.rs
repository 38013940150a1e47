use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
#[serde(rename_all = "UPPERCASE")]
struct Config {
    #[vault("database#URL")]
    url: String,
}

fn main() {}
