//! What the figment and figment2 adapters share (the two crates have the same
//! API): a macro that implements one adapter for the crate it names.

/// Implements the adapter for figment crate `$f`, with `$method` the name of
/// the provider's per-value Figment.
macro_rules! figment_adapter {
    ($f:ident, $method:ident) => {
        use $f::error::{Actual, Kind};
        use $f::value::{Dict, Map as FMap, Value as FValue};
        use $f::{Figment, Metadata, Profile, Provider};

        use crate::adapters::{sealed, PROVIDER_NAME};
        use crate::load::de::{Failure, Fault};
        use crate::load::provider::VaultProvider;

        /// `serde_json` tree → the framework's dictionary (its error type is large).
        #[allow(clippy::result_large_err)]
        fn to_dict(tree: &serde_json::Map<String, serde_json::Value>) -> Result<Dict, $f::Error> {
            Ok(FValue::serialize(tree)?.into_dict().unwrap_or_default())
        }

        /// The defaults tree of a derive as a provider.
        #[allow(dead_code)]
        pub(crate) fn defaults(
            tree: serde_json::Map<String, serde_json::Value>,
        ) -> $f::providers::Serialized<Dict> {
            $f::providers::Serialized::from(to_dict(&tree).unwrap_or_default(), Profile::Default)
        }

        /// The provider as a whole: one source named `vault-config`. Merge
        /// the per-value Figment instead to keep each value's source in the
        /// framework's metadata; errors name it either way through `explain`.
        impl Provider for VaultProvider {
            fn metadata(&self) -> Metadata {
                Metadata::named(PROVIDER_NAME)
            }

            fn data(&self) -> Result<FMap<Profile, Dict>, $f::Error> {
                Ok(Profile::Default.collect(to_dict(self.tree())?))
            }
        }

        impl VaultProvider {
            #[doc = concat!("The snapshot as a [`", stringify!($f), "::Figment`] of one provider per value,")]
            /// each with its own metadata (its Vault `path#key` or env var):
            /// the framework's `find_metadata` and its errors name the source
            /// of each value. Merging the provider itself gives one source,
            /// `vault-config`, for all of them (the framework has no supported
            /// way for one provider to name a source per value).
            ///
            /// Its values sit in the default profile, and a `Figment` merged
            /// into another selects its own profile: after the merge, call
            /// `select(...)` again if you use profiles, or merge the provider itself.
            pub fn $method(&self) -> Figment {
                let mut figment = Figment::new();
                for (r, value) in self.entries() {
                    let Some(value) = value else { continue };
                    let mut tree = serde_json::Map::new();
                    crate::base::tree::insert(&mut tree, &r.key, value.clone());
                    figment = figment.merge(Single {
                        metadata: Metadata::named(r.origin.to_string())
                            .interpolater(|_profile, keys| keys.join(".")),
                        tree,
                    });
                }
                figment
            }
        }

        /// One value with its own metadata.
        struct Single {
            metadata: Metadata,
            tree: serde_json::Map<String, serde_json::Value>,
        }

        impl Provider for Single {
            fn metadata(&self) -> Metadata {
                self.metadata.clone()
            }

            fn data(&self) -> Result<FMap<Profile, Dict>, $f::Error> {
                Ok(Profile::Default.collect(to_dict(&self.tree)?))
            }
        }

        impl sealed::Sealed for $f::Error {
            fn failure(self) -> Result<(Failure, Option<String>), crate::Error> {
                let fault = match self.kind {
                    Kind::MissingField(name) => Fault::Missing(name.into_owned()),
                    Kind::InvalidType(actual, expected) => Fault::InvalidType {
                        found: kind_of(&actual),
                        expected,
                    },
                    Kind::InvalidValue(actual, expected) => Fault::InvalidValue {
                        found: kind_of(&actual),
                        expected,
                    },
                    Kind::InvalidLength(len, expected) => Fault::InvalidLength { len, expected },
                    Kind::UnknownVariant(_, expected) => Fault::UnknownVariant { expected },
                    Kind::UnknownField(field, expected) => Fault::UnknownField { field, expected },
                    Kind::DuplicateField(name) => Fault::DuplicateField(name),
                    Kind::Message(msg) => Fault::Message(msg),
                    // The framework's own text for these quotes the value.
                    Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => Fault::InvalidValue {
                        found: "an integer",
                        expected: "a number in the field's range".to_owned(),
                    },
                    Kind::Unsupported(actual) => Fault::Message(format!(
                        "{} is not supported here",
                        kind_of(&actual)
                    )),
                    Kind::UnsupportedKey(actual, expected) => Fault::Message(format!(
                        "a map key of another kind ({}; expected {expected})",
                        kind_of(&actual)
                    )),
                };
                let named = self.metadata.map(|m| m.name.to_string());
                Ok((
                    Failure {
                        path: self.path,
                        fault,
                    },
                    named,
                ))
            }
        }

        fn kind_of(actual: &Actual) -> &'static str {
            match actual {
                Actual::Bool(_) => "a boolean",
                Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
                Actual::Float(_) => "a float",
                Actual::Char(_) => "a character",
                Actual::Str(_) => "a string",
                Actual::Bytes(_) => "bytes",
                Actual::Unit => "nothing",
                Actual::Option => "an option",
                Actual::Seq => "a list",
                Actual::Map => "a map",
                _ => "a value of another kind",
            }
        }
    };
}
