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
    for kind in ["malformed", "unknown", "unsupported", "conflict"] {
        t.compile_fail(format!("ui/{kind}/*.rs"));
    }
}
