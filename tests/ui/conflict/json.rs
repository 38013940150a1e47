use std::collections::HashMap;
use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Flags {
    #[vault("flags#beta")]
    beta: bool,
}

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    // `json` reads one value into the type; a nested struct maps its own fields.
    #[vault(nested, json)]
    flags: Flags,
    #[vault("gateway/limits#*", json)]
    limits: HashMap<String, String>,
    #[vault(env = "FEATURE_FLAGS", json = true)]
    features: HashMap<String, bool>,
}

fn main() {}
