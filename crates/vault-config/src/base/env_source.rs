//! [`EnvSource`]: where environment variables are read from.

use std::fmt;
use std::sync::Arc;

/// Where environment variables are read from: the process environment by
/// default, or any function (a map in tests, a `.env` file parsed by the caller).
#[derive(Clone)]
pub struct EnvSource(Arc<LookupFn>);

type LookupFn = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EnvSource {
    /// The process environment (`std::env::var`).
    pub fn process() -> Self {
        EnvSource(Arc::new(|name| std::env::var(name).ok()))
    }

    /// Reads variables through `lookup`.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use vault_config::EnvSource;
    /// let vars = HashMap::from([("DATABASE_URL".to_owned(), "postgres://localhost/app".to_owned())]);
    /// let env = EnvSource::from_fn(move |name| vars.get(name).cloned());
    /// assert_eq!(env.get("DATABASE_URL").as_deref(), Some("postgres://localhost/app"));
    /// assert_eq!(env.get("UNSET"), None);
    /// ```
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        EnvSource(Arc::new(lookup))
    }

    /// The value of `name`; empty values count as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }
}

impl Default for EnvSource {
    fn default() -> Self {
        EnvSource::process()
    }
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvSource(..)")
    }
}
