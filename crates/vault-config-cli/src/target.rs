//! What a command line names: `PATH` (every key of a secret), `PATH#KEY`
//! (one key), on the KV mount or, for a path on another secrets engine
//! (`database/creds/app` on a `database` mount), leased credentials: which
//! one, the mount's type says (`read::resolve`), never the path's
//! spelling.

use std::fmt;

use crate::exit::{Failure, Kind, Result};

/// One `PATH[#KEY]` of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The path, without leading or trailing `/`.
    pub path: String,
    /// One key, or every key.
    pub key: Option<String>,
    /// Leased credentials from a secrets engine, not a KV secret: false
    /// until `read::resolve` looked the path's mount up.
    pub leased: bool,
}

impl Target {
    /// Parses `PATH` or `PATH#KEY`.
    pub fn parse(arg: &str) -> Result<Target> {
        let (path, key) = match arg.split_once('#') {
            Some((path, key)) => (path, Some(key)),
            None => (arg, None),
        };
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Err(Failure::new(
                Kind::Invalid,
                format!("`{arg}` names no path; write PATH or PATH#KEY (app-prod#API_KEY)"),
            ));
        }
        if key.is_some_and(|k| k.is_empty() || k == "*") {
            return Err(Failure::new(
                Kind::Invalid,
                format!(
                    "`{arg}` has no key after `#`; write PATH for every key or PATH#KEY for one"
                ),
            ));
        }
        Ok(Target {
            path: path.to_owned(),
            key: key.map(str::to_owned),
            leased: false,
        })
    }

    /// Parses every argument, reporting the first bad one.
    pub fn parse_all(args: &[String]) -> Result<Vec<Target>> {
        args.iter().map(|a| Target::parse(a)).collect()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}#{key}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_keys() {
        let t = Target::parse("/app-prod/#API_KEY").unwrap();
        assert_eq!(
            (t.path.as_str(), t.key.as_deref(), t.leased),
            ("app-prod", Some("API_KEY"), false)
        );
        // Leased or not is the mount's type, looked up later: not the spelling.
        assert!(!Target::parse("team/creds").unwrap().leased);
        assert!(!Target::parse("database/creds/app").unwrap().leased);
        assert_eq!(Target::parse("#KEY").unwrap_err().kind, Kind::Invalid);
        assert_eq!(Target::parse("app#").unwrap_err().kind, Kind::Invalid);
        assert_eq!(Target::parse("app#KEY").unwrap().to_string(), "app#KEY");
    }
}
