//! Test support for vault-config: a real OpenBao (or Vault) dev server per test,
//! and a TCP proxy that counts the requests a client sends.
//!
//! The server binary is found as: env `VAULT_BIN`; else `bao`, then `vault`, on
//! `PATH`; else the project's own install at `.tools/bin/bao` (made by
//! `scripts/install-openbao.sh`). A missing binary fails the test with a message
//! saying how to install it.

#![forbid(unsafe_code)]

/// [`DevServer`]'s administration: API calls, KV, mounts, policies, AppRole, CLI.
mod admin;
/// [`CannedServer`], a loopback stand-in for conditions a real Vault cannot produce.
mod canned;
/// [`Cluster`], three Raft nodes on loopback.
mod cluster;
/// [`JwtSigner`] and [`base64url`], for JWT auth.
mod jwt;
/// [`Postgres`], a throwaway cluster for the database secrets engine.
mod postgres;
/// [`CountingProxy`] and [`FaultyProxy`].
mod proxy;
/// Finding the binary, starting, stopping and restarting a [`DevServer`].
mod server;
/// [`TestResult`], [`eventually`], [`env_of`], [`dead_addr`] and the crate's own helpers.
mod util;

pub use canned::CannedServer;
pub use cluster::Cluster;
pub use jwt::{base64url, JwtSigner};
pub use postgres::{Admin, Postgres, POSTGRES_HINT};
pub use proxy::{CountingProxy, DelayProxy, FaultyProxy, RoundRobinProxy};
pub use server::{server_binary, workspace_root, DevServer, INSTALL_HINT};
pub use util::{dead_addr, env_of, eventually, TestResult};
