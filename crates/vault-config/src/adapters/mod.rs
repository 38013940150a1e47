//! Framework adapters, each behind its cargo feature: the core (plan →
//! snapshot → typed struct, in `load`) owns no framework, and these make its
//! [`VaultProvider`](crate::VaultProvider) a provider or source of one.
//!
//! | module | feature | what it adds |
//! |---|---|---|
//! | `figment` | `figment` (default) | `VaultProvider: figment::Provider`, `VaultProvider::figment` (one provider per value), `VaultConfig::defaults` |
//! | `figment2` | `figment2` | `VaultProvider: figment2::Provider`, `VaultProvider::figment2` |
//! | `config_rs` | `config` | `VaultProvider: config::Source` (sync), `config_rs::VaultSource: config::AsyncSource` |
//!
//! Each uses its framework's supported API only, and each error of a
//! framework goes through `VaultProvider::explain` into an [`Error`](crate::Error) that names the key and its source but
//! never quotes the value. Adapters use the load layer; nothing below uses them.

#[cfg(any(feature = "figment", feature = "figment2"))]
#[macro_use]
mod figment_common;

#[cfg(feature = "config")]
pub mod config_rs;
#[cfg(feature = "figment")]
pub mod figment;
#[cfg(feature = "figment2")]
pub mod figment2;

#[cfg(any(feature = "figment", feature = "figment2", feature = "config"))]
pub use framework::*;

#[cfg(any(feature = "figment", feature = "figment2", feature = "config"))]
mod framework {
    use crate::error::Error;
    use crate::load::de::Failure;
    use crate::load::provider::VaultProvider;

    /// The name under which a [`VaultProvider`] merged as a whole appears in a
    /// framework's metadata; its values' own sources are in the provider.
    pub(crate) const PROVIDER_NAME: &str = "vault-config";

    /// An error of a configuration framework that [`VaultProvider::explain`]
    /// turns into an [`Error`] without the value (figment's, figment2's,
    /// config-rs's, each with its feature). Sealed: implemented here only.
    pub trait FrameworkError: sealed::Sealed {}

    pub(crate) mod sealed {
        /// What an adapter reads of a framework's error. Not public API.
        pub trait Sealed {
            /// The failure (path and kind, no value) and the framework's name for
            /// the source of the value at fault, if it knows one; or the crate's
            /// own error, when the framework only carried it (a source's fetch).
            fn failure(self) -> Result<(super::Failure, Option<String>), super::Error>;
        }
    }

    impl<E: sealed::Sealed> FrameworkError for E {}

    impl VaultProvider {
        /// Rewrites an error of a framework this provider was layered into
        /// (figment, figment2 or config-rs) into an [`Error`] that names the key
        /// and its source, never quoting the value as the framework's own text
        /// does (`invalid type: found string "hunter2", expected u16`). A value
        /// this provider holds is named by its own source (`vault
        /// secret/data/database#port`) even when the framework saw the provider
        /// as one source.
        pub fn explain<E: FrameworkError>(&self, err: E) -> Error {
            let (failure, named) = match err.failure() {
                Ok(found) => found,
                Err(ours) => return ours,
            };
            let key = failure.key();
            let ours = named.as_deref().is_none_or(|n| n == PROVIDER_NAME);
            let origin = if ours {
                self.origin_of(&key).or(named)
            } else {
                named
            };
            crate::load::extract::explain(failure, origin, self.value_of(&key), None, self)
        }
    }
}
