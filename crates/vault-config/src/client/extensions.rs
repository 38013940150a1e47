//! Per-client state that the layers above the client keep (the KV cache,
//! the watch hub), without the client naming their types: one value per
//! type, made on first use and shared by every clone of the client.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// One value of each type, shared by the clones of a client.
#[derive(Default)]
pub(crate) struct Extensions {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// The client's `T`, made by `init` the first time it is asked for.
    pub(crate) fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let existing = values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.clone().downcast::<T>().ok());
        if let Some(value) = existing {
            return value;
        }
        let value = Arc::new(init());
        values.insert(TypeId::of::<T>(), value.clone());
        value
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Extensions").field("values", &n).finish()
    }
}
