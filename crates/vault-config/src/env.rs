//! The environment contract: which variables configure a client, and how their values parse.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

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

/// Names the variables of the contract: `VAULT_<X>`, or `<PREFIX>_VAULT_<X>`.
#[derive(Debug, Clone)]
pub(crate) struct ContractNames {
    prefix: Option<String>,
}

impl ContractNames {
    pub(crate) fn new(prefix: Option<&str>) -> Self {
        let prefix = prefix
            .map(|p| p.trim_end_matches('_').to_owned())
            .filter(|p| !p.is_empty());
        ContractNames { prefix }
    }

    /// `VAULT_ADDR` or `AION_VAULT_ADDR`.
    pub(crate) fn vault(&self, suffix: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}_VAULT_{suffix}"),
            None => format!("VAULT_{suffix}"),
        }
    }

    /// OpenBao's name (`BAO_ADDR`), read when the `VAULT_` one is unset; none when prefixed.
    pub(crate) fn bao(&self, suffix: &str) -> Option<String> {
        match &self.prefix {
            Some(_) => None,
            None => Some(format!("BAO_{suffix}")),
        }
    }

    /// Reads `suffix`, returning the value and the variable it came from.
    pub(crate) fn read(&self, env: &EnvSource, suffix: &str) -> Option<(String, String)> {
        let primary = self.vault(suffix);
        if let Some(v) = env.get(&primary) {
            return Some((primary, v));
        }
        let bao = self.bao(suffix)?;
        env.get(&bao).map(|v| (bao, v))
    }

    /// How to refer to a setting in an error: `VAULT_ADDR (or BAO_ADDR)`.
    pub(crate) fn describe(&self, suffix: &str) -> String {
        match self.bao(suffix) {
            Some(bao) => format!("{} (or {bao})", self.vault(suffix)),
            None => self.vault(suffix),
        }
    }
}

pub(crate) fn parse_bool(setting: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            setting,
            format!("`{value}` is not a boolean; use true or false"),
        )),
    }
}

/// Parses `30`, `30s`, `500ms`, `5m` or `1h` (a bare number is seconds, as the vault CLI reads it).
pub(crate) fn parse_duration(setting: &str, value: &str) -> Result<Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let bad = || {
        Error::config(
            setting,
            format!("`{value}` is not a duration; write seconds (`30`) or use a unit (`500ms`, `30s`, `5m`, `1h`)"),
        )
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_prefix() {
        let plain = ContractNames::new(None);
        assert_eq!(plain.vault("ADDR"), "VAULT_ADDR");
        assert_eq!(plain.describe("TOKEN"), "VAULT_TOKEN (or BAO_TOKEN)");
        let aion = ContractNames::new(Some("AION_"));
        assert_eq!(aion.vault("KV_MOUNT"), "AION_VAULT_KV_MOUNT");
        assert_eq!(aion.bao("ADDR"), None);
    }

    #[test]
    fn vault_names_win_over_bao_names() {
        let env = EnvSource::from_fn(|n| match n {
            "VAULT_ADDR" => Some("http://v".into()),
            "BAO_ADDR" | "BAO_TOKEN" => Some("bao".into()),
            "VAULT_TOKEN" => Some(String::new()),
            _ => None,
        });
        let names = ContractNames::new(None);
        assert_eq!(
            names.read(&env, "ADDR").unwrap(),
            ("VAULT_ADDR".into(), "http://v".into())
        );
        // An empty VAULT_TOKEN counts as unset.
        assert_eq!(names.read(&env, "TOKEN").unwrap().0, "BAO_TOKEN");
    }

    #[test]
    fn bools_and_durations() {
        assert!(!parse_bool("X", "False").unwrap());
        assert!(parse_bool("X", "1").unwrap());
        assert!(parse_bool("X", "maybe")
            .unwrap_err()
            .to_string()
            .contains("`X`"));
        assert_eq!(parse_duration("T", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("T", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("T", "5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("T", "5 parsecs").is_err());
        assert!(parse_duration("T", "").is_err());
    }
}
