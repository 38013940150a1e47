use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Gateway {
    #[vault(path = "gateway/api-keys", key = "*")]
    keys: Vec<String>,
}

fn main() {}
