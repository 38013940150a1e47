use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Config<T> {
    #[vault("database#PORT")]
    port: T,
}

fn main() {}
