//! Compile-time behaviour of `#[derive(VaultConfig)]`: clear errors with spans
//! (`tests/ui`), and generated code that compiles under `no_implicit_prelude`,
//! `deny(warnings)` and shadowed names (`tests/pass`).
//!
//! The `.stderr` files follow the compiler's wording: after a toolchain update,
//! regenerate them with `TRYBUILD=overwrite cargo test --test compiletest` and
//! read the diff before committing.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
