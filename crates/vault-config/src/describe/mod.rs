//! The description layer: what a service asks for, as pure data. A
//! [`Mapping`](crate::Mapping) (one configuration key ← one Vault `path#key`
//! with its env fallback), the derive's field specs, and what a table of them
//! implies (the Vault policy, `.env.example`). Uses only the base layer, the
//! error type and one plain data type of `tls` (a PKI
//! [`CertificateRequest`](crate::tls::CertificateRequest)): never the client, so a description can be built, checked
//! and rendered without Vault.
//!
//! | module | what it holds |
//! |---|---|
//! | `layer` | the values of a figment put under Vault's (`load_with`), with their sources |
//! | `mapping` | [`Mapping`](crate::Mapping) and the env fallback naming rules |
//! | `spec` | the derive's description of a struct: fields, scopes, defaults |
//! | `reference` | [`Reference`](crate::Reference): `vault://PATH#KEY`, parsed once |
//! | [`policy`] | the Vault policy and `.env.example` a mapping table implies |

pub(crate) mod layer;
pub(crate) mod mapping;
pub mod policy;
pub(crate) mod reference;
pub(crate) mod spec;
