//! Local items named like what generated code uses must not capture it.
#![deny(warnings)]

#[allow(dead_code)]
mod vault_config {}
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct FieldDecl;

#[derive(serde::Deserialize, ::vault_config::VaultConfig)]
#[allow(dead_code)]
struct Config {
    #[vault("database#DATABASE_URL", env = "URL")]
    url: String,
}

#[test]
fn generated_code_ignores_shadowing_names() {
    ::std::assert_eq!(
        <Config as ::vault_config::VaultConfig>::specs()[0].env_var,
        "URL"
    );
}
