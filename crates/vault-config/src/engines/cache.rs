//! The per-client cache of KV reads, with a time to live (kept in the
//! client's extensions).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::VaultClient;
use crate::engines::secret::KvSecret;

/// What a cached read found: a secret, or nothing at that path.
pub(crate) type Cached = Option<Arc<KvSecret>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) mount: String,
    pub(crate) path: String,
    pub(crate) version: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, Cached)>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<Cached> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, key: CacheKey, value: Cached) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(key, (Instant::now(), value));
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl VaultClient {
    /// Forgets every cached read, so the next load reads Vault again.
    pub fn clear_cache(&self) {
        self.kv_cache().clear();
    }

    /// This client's cache of KV reads.
    pub(crate) fn kv_cache(&self) -> Arc<Cache> {
        self.extension(|| Cache::new(self.inner.cache_ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> CacheKey {
        CacheKey {
            mount: "secret".into(),
            path: p.into(),
            version: None,
        }
    }

    #[test]
    fn zero_ttl_disables() {
        let c = Cache::new(Duration::ZERO);
        c.put(key("a"), None);
        assert!(c.get(&key("a")).is_none());
    }

    #[test]
    fn entries_expire() {
        let c = Cache::new(Duration::from_millis(30));
        c.put(key("a"), None);
        assert!(matches!(c.get(&key("a")), Some(None)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get(&key("a")).is_none());
    }
}
