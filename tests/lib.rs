//! The test suites of vault-config, as a workspace member of their own.
//!
//! - `main.rs`: every integration suite in one test binary (one link step),
//!   each against real OpenBao/Vault dev servers started by `vault-test-support`.
//! - `compiletest.rs`: the derive's compile errors, with trybuild; cases in
//!   `ui/<kind>/` (`malformed`, `unknown`, `unsupported`, `conflict`).
//! - `pass/`: derived code that must compile (no prelude, shadowed names),
//!   compiled into the integration binary.
//!
//! This library itself is empty: Cargo needs one target besides the tests.
