use vault_config::VaultConfig;

#[derive(VaultConfig)]
union Config {
    a: u32,
}

fn main() {}
