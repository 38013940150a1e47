//! [`Reference`]: a value that names a key in Vault, `vault://PATH#KEY`,
//! instead of holding it. Pure data; the one parser of the syntax, for the
//! library (env fallbacks, `refs_from`) and the command line alike.

use std::fmt;

/// A reference to one key of a secret in Vault, written
/// `vault://PATH#KEY`: PATH is relative to the client's KV mount
/// (`vault://database#DATABASE_URL` is `secret/database#DATABASE_URL` on the
/// default mount), never a mount of its own; a PATH on a mount of another
/// secrets engine is leased credentials, as in the command line
/// (`vault://database/creds/app#username` and `...#password` share one
/// lease, which a watcher renews and replaces).
///
/// Where the library reads a value that is a reference (an env var a field
/// falls back to, a string of a figment given to
/// [`VaultProviderBuilder::refs_from`](crate::VaultProviderBuilder::refs_from)),
/// it reads the referenced key from Vault; a reference that cannot be
/// resolved is an error naming where it was written and the reference, never
/// a literal value.
///
/// ```
/// use vault_config::Reference;
/// let r = Reference::parse("vault://database#DATABASE_URL").unwrap()?;
/// assert_eq!((r.path(), r.key()), ("database", "DATABASE_URL"));
/// assert_eq!(r.to_string(), "vault://database#DATABASE_URL");
/// assert!(Reference::parse("postgres://db:5432").is_none()); // a literal
/// assert!(Reference::parse("vault://database").unwrap().is_err()); // no #KEY
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    path: String,
    key: String,
}

impl Reference {
    /// What a reference starts with.
    pub const SCHEME: &'static str = "vault://";

    /// `None` when `value` is not a reference (does not start with
    /// [`SCHEME`](Self::SCHEME)); `Some(Err(reason))` when it starts with it
    /// but is malformed. The reason never quotes `value` (whatever follows
    /// the scheme may be a secret).
    pub fn parse(value: &str) -> Option<Result<Reference, String>> {
        let rest = value.strip_prefix(Self::SCHEME)?;
        let parsed = rest.split_once('#').and_then(|(path, key)| {
            let path = path.trim_matches('/');
            let ok = !path.is_empty()
                && !key.is_empty()
                && key != "*"
                && !key.contains('#')
                && !path.split('/').any(|s| s == "..");
            ok.then(|| Reference {
                path: path.to_owned(),
                key: key.to_owned(),
            })
        });
        Some(parsed.ok_or_else(|| {
            format!(
                "the value starts with {} but is not a reference: write {}PATH#KEY, PATH relative to the KV mount ({}database#DATABASE_URL)",
                Self::SCHEME,
                Self::SCHEME,
                Self::SCHEME
            )
        }))
    }

    /// The secret's path inside the KV mount.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The key inside the secret.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// `vault://PATH#KEY`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}#{}", Self::SCHEME, self.path, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let r = Reference::parse("vault:///app-prod/#AOS_API_KEY")
            .unwrap()
            .unwrap();
        assert_eq!((r.path(), r.key()), ("app-prod", "AOS_API_KEY"));
        for bad in [
            "vault://#K",
            "vault://p#",
            "vault://p#*",
            "vault://p",
            "vault://a/../b#k",
        ] {
            let e = Reference::parse(bad).unwrap().unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert!(Reference::parse("Vault://p#k").is_none());
    }
}
