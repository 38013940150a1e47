use vault_config::VaultConfig;

#[derive(VaultConfig)]
struct Config;

fn main() {}
