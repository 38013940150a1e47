use vault_config::VaultConfig;

#[derive(serde::Deserialize, VaultConfig)]
struct Inner {
    #[vault("inner#X")]
    x: String,
}

#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    // `env` alone reads env only: nothing that acts on a Vault read goes with it.
    #[vault(env = "PORT", version = 2)]
    port: u16,
    #[vault(env = "LOG_LEVEL", path_env = "LOG_PATH")]
    log_level: String,
    #[vault(nested, env = "INNER")]
    inner: Inner,
    #[vault(no_env)]
    nothing: String,
}

fn main() {}
