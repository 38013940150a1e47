use vault_config::VaultConfig;

// The default names `USER` and `HOST` are the login name and the machine's.
#[derive(serde::Deserialize, VaultConfig)]
#[vault(path = "aionos/db-main")]
struct Db {
    #[vault("database#user")]
    user: String,
    #[vault(key = "host")]
    host: String,
    #[vault(dynamic = "database/creds/app", key = "username")]
    username: String,
}

// A prefix from the struct that holds this one does not count: each struct
// is checked on its own.
#[derive(serde::Deserialize, VaultConfig)]
#[vault(env_prefix = "APP_")]
struct App {
    #[vault(nested)]
    db: Db,
}

fn main() {}
