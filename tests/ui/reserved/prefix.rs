use vault_config::VaultConfig;

// The name is checked after the prefix and the upper-casing: `LC_` + `all`.
#[derive(serde::Deserialize, VaultConfig)]
#[vault(env_prefix = "LC_")]
struct Locale {
    #[vault("locale#all")]
    all: String,
    #[vault("locale#time")]
    time: String,
}

fn main() {}
