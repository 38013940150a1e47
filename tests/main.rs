//! Every integration suite of vault-config in one test binary, each test
//! against its own real OpenBao/Vault dev server (see `vault-test-support`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod adapters;
mod auth;
mod cluster;
mod convergence;
mod derive;
mod dynamic;
mod env_json;
mod errors;
mod hub;
mod kv;
mod layouts;
mod pass;
mod provider;
mod refs;
mod reliability;
mod telemetry;
mod tls;
mod transport;
mod watch;
