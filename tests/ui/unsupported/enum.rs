use vault_config::VaultConfig;

#[derive(VaultConfig)]
enum Config {
    A,
}

fn main() {}
