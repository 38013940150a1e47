use vault_config::VaultConfig;

#[derive(VaultConfig)]
struct Config(#[vault("database#DATABASE_URL")] String);

fn main() {}
