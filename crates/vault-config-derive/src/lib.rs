//! `#[derive(VaultConfig)]` for the `vault-config` crate: maps struct fields to
//! Vault `path#key`s.
//!
//! Use it through `vault_config::VaultConfig`; this crate is an implementation
//! detail whose version moves together with the runtime's. The derive itself
//! arrives with the next release; this crate compiles empty until then.
#![forbid(unsafe_code)]
