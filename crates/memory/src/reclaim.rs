//! Reclamation: carrying moka's evictions and expiries to the invalidation index.
//!
//! Owns the queue the eviction listener fills (it must not take the index lock: moka may call
//! it while a fill holds that lock) and the housekeeper thread that drains it once a second
//! even when no fill or purge comes along.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use vanish_engine::object::ObjectId;

use crate::Inner;

/// Ids of objects moka removed, waiting to leave the index.
#[derive(Clone, Default)]
pub(crate) struct Removed(Arc<Mutex<Vec<ObjectId>>>);

impl Removed {
    pub(crate) fn push(&self, ids: impl Iterator<Item = ObjectId>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
    }

    pub(crate) fn drain(&self) -> Vec<ObjectId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Runs moka's pending maintenance and reclaims index entries every second, until the store
/// is dropped.
pub(crate) fn spawn_housekeeper(inner: Weak<Inner>) {
    let spawned = std::thread::Builder::new()
        .name("vanish-memory-housekeeper".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(inner) = inner.upgrade() else { return };
            inner.cache.run_pending_tasks();
            let mut idx = inner.lock_index();
            inner.reclaim(&mut idx);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the memory store housekeeper; index entries are reclaimed on fills and purges only");
    }
}
