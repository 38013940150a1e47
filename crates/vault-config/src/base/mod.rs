//! The bottom layer: small shared vocabulary every other layer may use, and
//! that uses nothing of the crate but [`Error`](crate::Error) (time,
//! randomness for jitter, zeroizing, env lookups, env names, the KV version).
//!
//! | module | what it holds |
//! |---|---|
//! | `env_source` | [`EnvSource`]: where environment variables are read from |
//! | `env_names` | the names a default env fallback may not be |
//! | `kv_version` | [`KvVersion`]: KV v1 or v2, and the API path of a read |
//! | `time` | UTC civil dates as Unix seconds, RFC 3339 text, `SystemTime` (certificates, KV times) |
//! | `tree` | configuration trees: values at dotted keys, merged, found |

pub(crate) mod env_names;
mod env_source;
mod kv_version;
pub(crate) mod time;
pub(crate) mod tree;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use zeroize::Zeroize;

use crate::error::{Error, Result};

pub use env_source::EnvSource;
pub use kv_version::KvVersion;

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A number in `[0, 1)` that differs between calls and processes: enough to
/// spread retries and polls, not for anything secret.
pub(crate) fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    h.write_u32(nanos);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Zeroes every string inside `v` (secrets held in JSON).
pub(crate) fn zeroize_value(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

/// A Vault path part (`what`: mount, path) that Vault would read as another
/// one is refused before any request: an empty, `.` or `..` segment (URL
/// handling would drop or resolve it). `shown` is the whole location.
pub(crate) fn check_segments(what: &str, value: &str, shown: &str) -> Result<()> {
    let trimmed = value.trim_matches('/');
    let bad = trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(Error::Mapping {
            mapping: shown.to_owned(),
            reason: format!(
                "the Vault {what} `{value}` is empty or has an empty, `.` or `..` segment; name the secret by its plain path"
            ),
        });
    }
    Ok(())
}
