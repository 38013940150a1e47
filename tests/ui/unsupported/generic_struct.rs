use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config<T> {
    #[vault("database#DB_PORT")]
    port: T,
}

fn main() {}
