use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Cfg {
    #[vault("database#DATABASE_URL", no_env, env = "DB_URL")]
    url: String,
}

fn main() {}
