use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault("external-apis#OPENAI_API_KEY", default = "none")]
    openai_api_key: Option<String>,
}

fn main() {}
