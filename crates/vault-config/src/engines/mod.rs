//! The engines layer: what the client reads and writes on Vault's secrets
//! engines and system backend, as methods of [`VaultClient`](crate::VaultClient)
//! and the types they return. Uses the client layer and the base; knows
//! nothing of descriptions, loads or watchers.
//!
//! | module | what it holds |
//! |---|---|
//! | [`kv`] | KV v1/v2 reads, writes, versions and metadata; the secret types |
//! | `cache` | the per-client cache of KV reads |
//! | [`lease`] | leased (dynamic) credentials: read, renew, revoke |
//! | [`pki`] | certificates a PKI role issues: the request and the call |
//! | [`sys`] | seal and HA state, the token's policies and TTL, capabilities |
//! | `secret` | what reads return: [`KvSecret`](kv::KvSecret), [`SecretMap`](kv::SecretMap), [`Lease`](lease::Lease), [`Rotation`](lease::Rotation) |
//!
//! Imports run one way: `kv`, `lease`, `pki`, `sys` → `cache` → `secret` (a leaf).

pub(crate) mod cache;
pub mod kv;
pub mod lease;
pub mod pki;
mod secret;
pub mod sys;
