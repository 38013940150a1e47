use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
#[vault(path_env = "AION_DB_SECRET_PATH")]
struct Db {
    #[vault("aionos/db-main#password")]
    password: String,
}

fn main() {}
