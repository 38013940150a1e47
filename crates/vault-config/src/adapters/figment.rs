//! The figment adapter (feature `figment`, on by default): a
//! [`VaultProvider`] is a `figment::Provider`, [`VaultProvider::figment`]
//! gives one provider per value (each naming its Vault `path#key` or env
//! var), and [`VaultConfig::defaults`](crate::VaultConfig::defaults) the
//! derive's defaults.
//!
//! ```no_run
//! # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
//! use figment::{Figment, providers::{Format, Toml}};
//! use vault_config::{Mapping, VaultProvider};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { url: String, port: u16, log_level: String }
//!
//! let vault = VaultProvider::builder()
//!     .map("url", "database#DATABASE_URL")
//!     .mapping(Mapping::new("port", "database#port")?.env("DATABASE_PORT"))
//!     .fetch(&client)
//!     .await?;
//! let config: Config = Figment::new()
//!     .merge(Toml::file("app.toml")) // log_level, and values Vault overrides
//!     .merge(vault.figment()) // or `.merge(&vault)`: one source, `vault-config`
//!     .extract_lossy()
//!     .map_err(|e| vault.explain(e))?; // names `vault secret/data/database#port`, never the value
//! # let _ = config; Ok(()) }
//! ```
//!
//! Only figment's supported API is used. Its `Provider` trait has no public
//! way for one provider to give each value its own metadata, so
//! `merge(&vault)` shows one source, `vault-config`, in figment's metadata
//! and errors; `merge(vault.figment())` shows each value's own, and
//! [`VaultProvider::explain`] restores it for either.

figment_adapter!(figment, figment);

mod layers {
    use figment::{Figment, Metadata, Source};
    use serde_json::{Map, Value};

    use crate::describe::layer::{Layer, Leaf};
    use crate::describe::mapping::Mapping;
    use crate::describe::reference::Reference;
    use crate::error::{Error, Result};
    use crate::load::provider::{VaultProvider, VaultProviderBuilder};

    impl VaultProviderBuilder {
        /// Adds one mapping per string value of `figment` (its selected
        /// profile) that is a [`Reference`], `vault://PATH#KEY`, at its key:
        /// `db.url = "vault://database#DATABASE_URL"` in a TOML file maps
        /// `db.url` to `database#DATABASE_URL` on the client's KV mount. Such a
        /// mapping reads no env var.
        ///
        /// [`fetch`](Self::fetch) then gives a provider to merge over that
        /// figment, each referenced value with provenance naming both the
        /// Vault key and where the reference was written (`vault
        /// secret/data/database#DATABASE_URL (referenced by db.url in TOML file
        /// app.toml)`); [`watch`](Self::watch) keeps the values current. A
        /// reference Vault lacks fails `fetch` (and stops a watcher's update)
        /// with an error naming the key, the source and the reference: the
        /// reference is never passed on as a value.
        ///
        /// ```no_run
        /// # async fn demo(client: vault_config::VaultClient) -> Result<(), vault_config::Error> {
        /// use figment::{Figment, providers::{Format, Toml}};
        /// use vault_config::VaultProvider;
        ///
        /// #[derive(serde::Deserialize)]
        /// struct Db { url: String, pool: u32 }
        /// #[derive(serde::Deserialize)]
        /// struct Config { db: Db }
        ///
        /// // app.toml: [db] url = "vault://database#DATABASE_URL", pool = 8
        /// let file = Figment::from(Toml::file("app.toml"));
        /// let vault = VaultProvider::builder().refs_from(&file)?.fetch(&client).await?;
        /// let config: Config = file
        ///     .merge(vault.figment())
        ///     .extract_lossy()
        ///     .map_err(|e| vault.explain(e))?;
        /// # let _ = config; Ok(()) }
        /// ```
        ///
        /// The figment is read once, here; a reference inside a list is not
        /// looked for. Fails when the figment cannot be read (naming the
        /// source, not the value) or a value starts with `vault://` but is
        /// malformed.
        pub fn refs_from(self, figment: &Figment) -> Result<Self> {
            let layer = layer_of(figment)?;
            let refs: Vec<Mapping> = layer.references().cloned().collect();
            Ok(self.mappings(refs))
        }
    }

    /// `figment`'s values (its selected profile), each with its source's
    /// name, and a mapping for each reference among them.
    pub(crate) fn layer_of(figment: &Figment) -> Result<Layer> {
        let tree: Map<String, Value> = figment
            .extract()
            .map_err(|e| VaultProvider::from_values(Vec::new()).explain(e))?;
        let mut leaves = Vec::new();
        collect(figment, &tree, "", &mut leaves)?;
        Ok(Layer { leaves })
    }

    fn collect(
        figment: &Figment,
        tree: &Map<String, Value>,
        prefix: &str,
        out: &mut Vec<Leaf>,
    ) -> Result<()> {
        for (name, value) in tree {
            let key = format!("{prefix}{name}");
            if let Value::Object(inner) = value {
                collect(figment, inner, &format!("{key}."), out)?;
                continue;
            }
            let origin = figment.find_metadata(&key).map(source_of);
            let reference = match value.as_str().and_then(Reference::parse) {
                None => None,
                Some(parsed) => {
                    let by = match &origin {
                        Some(o) => format!("{key} in {o}"),
                        None => key.clone(),
                    };
                    let r = parsed.map_err(|reason| Error::Mapping {
                        mapping: key.clone(),
                        reason: format!("{by}: {reason}"),
                    })?;
                    Some(Mapping::from_parts(&key, r.path(), r.key())?.referenced_by(by))
                }
            };
            out.push(Leaf {
                key,
                value: value.clone(),
                origin,
                reference,
            });
        }
        Ok(())
    }

    /// `TOML file app.toml`: the provider's name, and the file it read.
    fn source_of(m: &Metadata) -> String {
        match &m.source {
            Some(Source::File(path)) => format!("{} {}", m.name, path.display()),
            _ => m.name.to_string(),
        }
    }
}

pub(crate) use layers::layer_of;
