use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
#[vault(mout = "agenticverz")]
struct Config {
    #[vault(pth = "database", key = "DATABASE_URL")]
    url: String,
    #[vault("database#USER", colour = "blue")]
    user: String,
    #[vault("database#PORT", mount = "kv")]
    port: u16,
}

fn main() {}
