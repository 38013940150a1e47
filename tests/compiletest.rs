//! Compile-time behaviour of `#[derive(VaultConfig)]`: clear errors with spans,
//! one folder per kind of mistake under `ui/`. (Code that must compile lives in
//! `pass/`, part of the integration binary, so this suite only runs `cargo check`.)
//!
//! The `.stderr` files follow the compiler's wording: after a toolchain update,
//! regenerate them with `TRYBUILD=overwrite cargo test -p vault-config-tests --test compiletest`
//! and read the diff before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    for kind in [
        "malformed",
        "unknown",
        "unsupported",
        "conflict",
        "reserved",
    ] {
        t.compile_fail(format!("ui/{kind}/*.rs"));
    }
}

/// The derive refuses at compile time the default env fallback names the
/// runtime refuses at run time (`ui/reserved/`): the list lives in
/// `env_names.rs`, one copy in each crate, since the derive cannot depend on
/// the runtime. The two copies must be the same file.
#[test]
fn the_derive_and_the_runtime_reserve_the_same_env_names() {
    let derive = include_str!("../crates/vault-config-derive/src/env_names.rs");
    let runtime = include_str!("../crates/vault-config/src/base/env_names.rs");
    assert!(
        derive == runtime,
        "crates/vault-config-derive/src/env_names.rs and crates/vault-config/src/base/env_names.rs differ: edit one, copy it onto the other"
    );
    assert!(vault_config::env::RESERVED_ENV_NAMES.contains(&"PORT"));
}
