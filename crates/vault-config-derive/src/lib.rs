//! `#[derive(VaultConfig)]` for the `vault-config` crate: maps struct fields to
//! Vault `path#key`s.
//!
//! Use it through `vault_config::VaultConfig`, whose docs list the attributes;
//! this crate is an implementation detail whose version moves with the runtime's.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod ctxt;
mod env_names;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Derives `vault_config::VaultConfig`. See the `vault_config` crate docs for the attributes.
#[proc_macro_derive(VaultConfig, attributes(vault))]
pub fn derive_vault_config(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
