use vault_config::VaultConfig;

// `PORT` is the HTTP port most platforms assign: not a default fallback.
#[derive(serde::Deserialize, VaultConfig)]
struct Config {
    #[vault(path = "database", key = "DATABASE_URL")]
    url: String,
    #[vault(path = "database", key = "port", default = 5432)]
    port: u16,
    // Named explicitly: allowed, even a reserved name.
    #[vault(path = "listener", key = "port", env = "PORT")]
    listen_port: u16,
}

fn main() {}
