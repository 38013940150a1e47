//! Mappings: which Vault `path#key` fills which configuration key.

use std::time::Duration;

use crate::base::env_names;
use crate::error::{Error, Result};
use crate::tls::CertificateRequest;

/// One configuration key filled from one key of one Vault secret, with an
/// environment variable as fallback.
///
/// ```
/// use vault_config::Mapping;
/// let m = Mapping::new("db.url", "database#DATABASE_URL")?
///     .mount("agenticverz")
///     .env("APP_DATABASE_URL");
/// assert_eq!(m.path(), "database");
/// assert_eq!(m.secret_key(), "DATABASE_URL");
/// assert_eq!(m.env_var(None), "APP_DATABASE_URL");
/// assert!(Mapping::new("db.url", "database").is_err()); // no `#key`
/// # Ok::<(), vault_config::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    key: String,
    mount: Option<String>,
    path: String,
    secret_key: String,
    version: Option<u64>,
    env: Option<String>,
    path_env: Option<String>,
    ttl: Option<Duration>,
    dynamic: bool,
    /// For a certificate a PKI role issues: what it is asked for.
    issue: Option<CertificateRequest>,
    json: bool,
    /// Where the `vault://` reference this mapping stands for was written
    /// (`db.url in TOML file app.toml`), for a mapping `refs_from` added.
    referenced_by: Option<String>,
}

impl Mapping {
    /// Maps the configuration key `key` (dotted for nesting: `db.url`) to `source`,
    /// written `path#key` (`database#DATABASE_URL`).
    pub fn new(key: impl Into<String>, source: &str) -> Result<Self> {
        let (path, secret_key) = parse_source(source)?;
        Self::from_parts(key, path, secret_key)
    }

    /// Maps `key` to the Vault key `secret_key` of the secret at `path`.
    pub fn from_parts(
        key: impl Into<String>,
        path: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self> {
        let key = key.into();
        let path = path.into();
        let secret_key = secret_key.into();
        let shown = format!("{key} <- {path}#{secret_key}");
        let bad = |reason: &str| Error::Mapping {
            mapping: shown.clone(),
            reason: reason.to_owned(),
        };
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad(
                "the configuration key is empty or has an empty `.` segment",
            ));
        }
        let path = normalize_path(&path).map_err(|r| bad(&r))?;
        if secret_key.is_empty() {
            return Err(bad("the Vault key after `#` is empty"));
        }
        Ok(Mapping {
            key,
            mount: None,
            path,
            secret_key,
            version: None,
            env: None,
            path_env: None,
            ttl: None,
            dynamic: false,
            issue: None,
            json: false,
            referenced_by: None,
        })
    }

    /// Maps `key` to the key `secret_key` of credentials leased from a secrets
    /// engine at `path` (e.g. `database/creds/app`), not from a KV mount. All
    /// mappings of one such path in a fetch share one read: one lease.
    pub fn dynamic(
        key: impl Into<String>,
        path: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self> {
        let mut m = Self::from_parts(key, path, secret_key)?;
        m.dynamic = true;
        Ok(m)
    }

    /// Maps `key` to a certificate and private key the PKI role at `path`
    /// (`pki/issue/web`) issues for `request`: the whole answer
    /// (`certificate`, `private_key`, `ca_chain`, ...), which a
    /// [`tls::Identity`](crate::tls::Identity) deserializes from. Issued at
    /// each load; a [`Watcher`](crate::Watcher) issues again before two
    /// thirds of the certificate's validity have passed and publishes the new
    /// one. No env fallback.
    ///
    /// ```
    /// use vault_config::{tls::CertificateRequest, Mapping};
    /// let m = Mapping::pki("tls", "pki/issue/web", CertificateRequest::new("gateway.internal"))?;
    /// assert_eq!(m.certificate_request().map(|r| r.common_name()), Some("gateway.internal"));
    /// assert!(m.is_whole_secret());
    /// // Only an issue path: a write to `pki/roles/web` would change the role.
    /// assert!(Mapping::pki("tls", "pki/roles/web", CertificateRequest::new("a.internal")).is_err());
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn pki(
        key: impl Into<String>,
        path: impl Into<String>,
        request: CertificateRequest,
    ) -> Result<Self> {
        let mut m = Self::from_parts(key, path, WHOLE_SECRET)?;
        let segments: Vec<&str> = m.path.split('/').collect();
        if !matches!(segments.as_slice(), [.., _, "issue", _]) {
            return Err(Error::Mapping {
                mapping: format!("{} <- {}", m.key, m.path),
                reason: "not a PKI role's issue path: write `<mount>/issue/<role>` (e.g. pki/issue/web) or `<mount>/issuer/<issuer>/issue/<role>`; a write elsewhere could change the engine (a role's settings)".to_owned(),
            });
        }
        if request.common_name().trim().is_empty() {
            return Err(Error::Mapping {
                mapping: format!("{} <- {}", m.key, m.path),
                reason: "the certificate request has an empty common name: give the name the role issues for, e.g. CertificateRequest::new(\"gateway.internal\")".to_owned(),
            });
        }
        m.issue = Some(request);
        Ok(m.no_env())
    }

    /// For a [`pki`](Self::pki) mapping: what the role is asked for.
    pub fn certificate_request(&self) -> Option<&CertificateRequest> {
        self.issue.as_ref()
    }

    /// For a [`dynamic`](Self::dynamic) mapping: asks for leases of `ttl`
    /// (renewed to it right after each read, and by it afterwards), bounded by
    /// the role's max TTL. All mappings of one path share one lease: give them
    /// the same TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl).filter(|t| !t.is_zero());
        self
    }

    /// The lease TTL asked for, if any.
    pub fn lease_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// True for a mapping made with [`dynamic`](Self::dynamic).
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// Reads from `mount` instead of the client's default KV mount.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into().trim_matches('/').to_owned()).filter(|m| !m.is_empty());
        self
    }

    /// Pins KV v2 version `version` of the secret.
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Reads env var `name` (exactly, with no prefix) when Vault lacks the key
    /// (never for a whole secret, `path#*`). Any name may be given here, even
    /// one of [`RESERVED_ENV_NAMES`](crate::env::RESERVED_ENV_NAMES).
    ///
    /// A fallback variable (this one or the default name) whose value is a
    /// [`Reference`](crate::Reference), `vault://PATH#KEY`, is read from Vault:
    /// the mapping's own `path#key` first, then, when Vault lacks it, the key
    /// the reference names (PATH on the client's KV mount, read by the same
    /// load and polled by a watcher like any other path). A reference that
    /// does not resolve (Vault lacks the key, or was not read) fails the load
    /// with an error naming the variable and the reference; it is never used
    /// as a value. The variable is read when the load or watcher starts.
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.env = Some(name.into());
        self
    }

    /// Reads no env var: a key Vault lacks is missing. For callers that want
    /// Vault's value or nothing (a command line exporting secrets).
    ///
    /// ```
    /// use vault_config::Mapping;
    /// let m = Mapping::new("t0", "database#port")?.no_env();
    /// assert_eq!(m.env_var(None), "");
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn no_env(mut self) -> Self {
        self.env = Some(String::new());
        self
    }

    /// Reads the secret's path from env var `name` when it is set at load
    /// time (read through the client's [`EnvSource`](crate::EnvSource)), so an
    /// operator can move the service to another secret without a rebuild:
    /// `AION_DB_SECRET_PATH=aionos/db-replica`. The value is the whole path
    /// inside the mount.
    ///
    /// ```
    /// use vault_config::Mapping;
    /// let m = Mapping::new("db.password", "aionos/db-main#password")?.path_env("AION_DB_SECRET_PATH");
    /// assert_eq!(m.path_env_var(), Some("AION_DB_SECRET_PATH"));
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn path_env(mut self, name: impl Into<String>) -> Self {
        self.path_env = Some(name.into()).filter(|n: &String| !n.is_empty());
        self
    }

    /// Parses a string value (from Vault or env) as JSON before extraction, so
    /// `FEATURE_FLAGS={"beta": true}`, which Vault's CLI and `.env` files
    /// store as a string, fills a struct or a map. A value that is already
    /// JSON (an object a KV write stored as such, a number) is taken as is. A
    /// string that is not JSON makes extraction fail with [`Error::Invalid`]
    /// naming the key, the source and the JSON error's line and column, never
    /// the text.
    ///
    /// ```
    /// use vault_config::Mapping;
    /// let m = Mapping::new("flags", "app#FEATURE_FLAGS")?.env("FEATURE_FLAGS").json();
    /// assert!(m.is_json());
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn json(mut self) -> Self {
        self.json = true;
        self
    }

    /// True for a mapping made with [`json`](Self::json).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The env var that may move the path, if any.
    pub fn path_env_var(&self) -> Option<&str> {
        self.path_env.as_deref()
    }

    /// This mapping with its path as `env` moves it: `Ok(None)` when it has no
    /// `path_env` or the variable is unset; an error naming the variable when
    /// its value is not a usable path.
    pub(crate) fn moved_by(
        &self,
        env: &crate::base::EnvSource,
    ) -> Result<Option<(String, String)>> {
        let Some(var) = &self.path_env else {
            return Ok(None);
        };
        let Some(value) = env.get(var) else {
            return Ok(None);
        };
        let path = normalize_path(value.trim()).map_err(|reason| Error::Mapping {
            mapping: format!("{} <- ${var}", self.key),
            reason: format!("{var} = `{value}` is not a usable Vault path: {reason}"),
        })?;
        Ok(Some((path, var.clone())))
    }

    /// This mapping as one that stands for a `vault://` reference written at
    /// `by`: it reads no env var, and a key Vault lacks is an error naming
    /// `by` and the reference, not a missing value.
    pub(crate) fn referenced_by(mut self, by: String) -> Self {
        self.referenced_by = Some(by);
        self.no_env()
    }

    /// Where the reference this mapping stands for was written, if it does.
    pub(crate) fn reference_site(&self) -> Option<&str> {
        self.referenced_by.as_deref()
    }

    /// The configuration key it fills.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The mount set on this mapping, if any (else the client's is used).
    pub fn mount_override(&self) -> Option<&str> {
        self.mount.as_deref()
    }

    /// The secret's path inside the mount.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The key inside the secret.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The pinned KV v2 version, if any.
    pub fn pinned_version(&self) -> Option<u64> {
        self.version
    }

    /// The env var read as fallback: the one set with [`env`](Self::env), else
    /// `prefix` + the Vault key in upper case, with every character that is not
    /// a letter, digit or `_` turned into `_` (`DATABASE_URL` stays
    /// `DATABASE_URL`; `db-port` becomes `DB_PORT`). Empty when none is read
    /// (a whole secret, [`no_env`](Self::no_env)).
    ///
    /// That default may not be one of
    /// [`RESERVED_ENV_NAMES`](crate::env::RESERVED_ENV_NAMES), the variables
    /// shells, container runtimes and platforms set (`USER`, `HOME`, `PORT`,
    /// ...): a provider built with such a mapping fails with
    /// [`Error::Mapping`] naming the variable and the fix, an
    /// [`env`](Self::env) name or an
    /// [`env_prefix`](crate::VaultProviderBuilder::env_prefix).
    ///
    /// ```
    /// use vault_config::Mapping;
    /// let m = Mapping::new("port", "database#port")?; // would read PORT: refused when fetched
    /// assert_eq!(m.env_var(None), "PORT");
    /// assert_eq!(m.env_var(Some("APP_")), "APP_PORT"); // fine
    /// assert_eq!(m.env("DATABASE_PORT").env_var(None), "DATABASE_PORT"); // fine
    /// # Ok::<(), vault_config::Error>(())
    /// ```
    pub fn env_var(&self, prefix: Option<&str>) -> String {
        match &self.env {
            Some(name) => name.clone(),
            None if self.is_whole_secret() => String::new(),
            None => default_env_var(prefix, &self.secret_key),
        }
    }

    /// True when the mapping takes the whole secret (`path#*`): every key of
    /// it, as a map. Such a mapping has no env fallback.
    pub fn is_whole_secret(&self) -> bool {
        self.secret_key == WHOLE_SECRET
    }

    /// Refuses a default env fallback name (no [`env`](Self::env) given) that
    /// is one of [`RESERVED_ENV_NAMES`](crate::env::RESERVED_ENV_NAMES): when
    /// Vault lacked the key, the service would silently read its own `PORT`,
    /// `USER`, ... `prefix`: the provider's `env_prefix`.
    pub(crate) fn check_default_env(&self, prefix: Option<&str>) -> Result<()> {
        if self.env.is_some() || self.is_whole_secret() {
            return Ok(());
        }
        let name = self.env_var(prefix);
        let Some(why) = env_names::reserved(&name) else {
            return Ok(());
        };
        let suggested = env_names::suggested_env_name(&self.path, &name);
        let prefix_fix = match prefix {
            Some(p) => format!("change the provider's .env_prefix(\"{p}\")"),
            None => "prefix every default name with .env_prefix(\"APP_\") on the provider builder"
                .to_owned(),
        };
        Err(Error::Mapping {
            mapping: format!("{} <- {}#{}", self.key, self.path, self.secret_key),
            reason: format!(
                "it falls back to env `{name}` by default, which is {why}: when Vault lacks the key, the service would silently run on that value; name the variable, e.g. .env(\"{suggested}\"), or {prefix_fix}"
            ),
        })
    }
}

/// The Vault key that stands for every key of a secret: `gateway/api-keys#*`.
pub const WHOLE_SECRET: &str = "*";

/// `prefix` + `secret_key` in upper case, every character that is not a letter
/// or digit turned into `_`: the env var a key falls back to by default (the
/// derive names it the same way, from the same `env_names.rs`).
pub(crate) fn default_env_var(prefix: Option<&str>, secret_key: &str) -> String {
    env_names::default_env_name(prefix, secret_key)
}

/// Splits `path#key`.
pub(crate) fn parse_source(source: &str) -> Result<(String, String)> {
    let bad = |reason: &str| Error::Mapping {
        mapping: source.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = source.split('#');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(path), Some(key), None) => {
            if path.trim_matches('/').is_empty() {
                Err(bad(
                    "the path before `#` is empty; write `path#key`, e.g. `database#DATABASE_URL`",
                ))
            } else if key.is_empty() {
                Err(bad(
                    "the key after `#` is empty; write `path#key`, e.g. `database#DATABASE_URL`",
                ))
            } else {
                Ok((path.to_owned(), key.to_owned()))
            }
        }
        (_, None, _) => Err(bad(
            "no `#`; write `path#key`, e.g. `database#DATABASE_URL`",
        )),
        _ => Err(bad("more than one `#`; write `path#key` with a single `#`")),
    }
}

fn normalize_path(path: &str) -> std::result::Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err("the Vault path is empty".to_owned());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return Err(format!(
                "the Vault path `{path}` has an empty segment (`//`)"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!("the Vault path `{path}` has a `{segment}` segment"));
        }
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_errors_say_what_to_write() {
        for (src, needle) in [
            ("database", "no `#`"),
            ("#KEY", "path before `#` is empty"),
            ("database#", "key after `#` is empty"),
            ("a#b#c", "more than one `#`"),
        ] {
            let e = Mapping::new("k", src).unwrap_err().to_string();
            assert!(e.contains(needle), "{src}: {e}");
        }
    }

    #[test]
    fn paths_are_normalized_and_checked() {
        assert_eq!(
            Mapping::new("k", "/aionos/db-main/#x").unwrap().path(),
            "aionos/db-main"
        );
        assert!(Mapping::new("k", "a//b#x").is_err());
        assert!(Mapping::new("k", "a/../b#x").is_err());
        assert!(Mapping::new("a..b", "p#x").is_err());
    }

    #[test]
    fn default_env_names() {
        let m = Mapping::new("port", "database#db-port").unwrap();
        assert_eq!(m.env_var(None), "DB_PORT");
        assert_eq!(m.env_var(Some("APP_")), "APP_DB_PORT");
        assert_eq!(m.clone().env("PORT").env_var(Some("APP_")), "PORT");
        assert_eq!(m.no_env().env_var(Some("APP_")), "");
    }

    #[test]
    fn a_reserved_default_env_name_is_refused() {
        let m = Mapping::new("db.port", "database#port").unwrap();
        let e = m.check_default_env(None).unwrap_err();
        assert!(matches!(e, Error::Mapping { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "invalid mapping `db.port <- database#port`: it falls back to env `PORT` by default, \
             which is the HTTP port to listen on, set by Heroku, Cloud Run, Render and most platforms: \
             when Vault lacks the key, the service would silently run on that value; name the variable, \
             e.g. .env(\"DATABASE_PORT\"), or prefix every default name with .env_prefix(\"APP_\") on the provider builder"
        );
        let user = Mapping::new("user", "/aionos/db-main/#user").unwrap();
        let e = user.check_default_env(Some("")).unwrap_err().to_string();
        assert!(
            e.contains("`USER`") && e.contains("the login name on every Unix"),
            "{e}"
        );
        assert!(
            e.contains(".env(\"DB_MAIN_USER\")") && e.contains(".env_prefix(\"\")"),
            "{e}"
        );
        // Upper-cased and `-` as `_` before the check.
        let tmp = Mapping::new("tmp", "app#tmp-dir").unwrap();
        assert!(
            tmp.check_default_env(None).is_ok(),
            "TMP_DIR is not reserved"
        );
        let lc = Mapping::new("lc", "app#lc-all").unwrap();
        assert!(lc.check_default_env(None).is_err(), "LC_ALL is");
    }

    #[test]
    fn an_explicit_env_a_prefix_a_whole_secret_or_no_env_is_allowed() {
        let m = || Mapping::new("port", "database#port").unwrap();
        assert!(m().env("PORT").check_default_env(None).is_ok());
        assert!(m().env("DATABASE_PORT").check_default_env(None).is_ok());
        assert!(m().check_default_env(Some("APP_")).is_ok());
        assert!(m().no_env().check_default_env(None).is_ok());
        let all = Mapping::new("all", "database#*").unwrap();
        assert!(all.check_default_env(None).is_ok());
        for name in crate::base::env_names::RESERVED_ENV_NAMES {
            let m = Mapping::new("k", &format!("p#{}", name.to_lowercase())).unwrap();
            assert!(m.check_default_env(None).is_err(), "{name}");
        }
    }
}
