//! `#[vault(crate = "...")]` for a runtime crate known under another name (a
//! renamed dependency, or a re-export): generated code names only that path.

use ::vault_config as vc;

#[derive(serde::Deserialize, vc::VaultConfig)]
#[vault(crate = "vc")]
#[allow(dead_code)]
struct Config {
    #[vault("database#DATABASE_URL")]
    url: String,
    #[vault("database#DATABASE_URL", version = 2)]
    previous_url: String,
}

#[test]
fn generated_code_uses_the_named_crate() {
    let specs = <Config as vc::VaultConfig>::specs();
    ::std::assert_eq!(specs.len(), 2);
    ::std::assert_eq!(specs[1].version, ::std::option::Option::Some(2));
}
