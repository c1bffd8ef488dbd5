//! Reclamation: carrying moka's evictions and expiries to the invalidation index.
//!
//! Owns the queues of ids waiting to leave the index: what the eviction listener reports (it
//! must not take the index lock: moka may call it while a fill holds that lock) and what hard
//! purges killed (unlinked off the purge's path), and the housekeeper thread that drains them,
//! woken by purges and at least once a second.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use vanish_engine::object::ObjectId;

use crate::Inner;

/// A queue of object ids waiting to leave the index (and moka, for purged ones).
#[derive(Clone, Default)]
pub(crate) struct Removed(Arc<Mutex<Vec<ObjectId>>>);

impl Removed {
    pub(crate) fn push(&self, ids: impl Iterator<Item = ObjectId>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
    }

    pub(crate) fn drain(&self) -> Vec<ObjectId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes up to `n` ids.
    pub(crate) fn take(&self, n: usize) -> Vec<ObjectId> {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let keep = q.len().saturating_sub(n);
        q.split_off(keep)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Wakes the housekeeper early (after a hard purge).
#[derive(Default)]
pub(crate) struct Wake {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    pub(crate) fn notify_one(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
    }

    /// Waits for a notification or the timeout.
    fn wait(&self, timeout: Duration) {
        let guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |p| !*p)
            .unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }
}

/// Runs moka's pending maintenance and reclaims index entries every second, until the store
/// is dropped.
pub(crate) fn spawn_housekeeper(inner: Weak<Inner>) {
    let spawned = std::thread::Builder::new()
        .name("vanish-memory-housekeeper".into())
        .spawn(move || loop {
            {
                let Some(inner) = inner.upgrade() else { return };
                inner.reclaim_dead(usize::MAX);
                inner.cache.run_pending_tasks();
                let mut idx = inner.lock_index();
                inner.reclaim(&mut idx);
            }
            let Some(inner) = inner.upgrade() else { return };
            inner.wake_reclaimer.wait(Duration::from_secs(1));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the memory store housekeeper; index entries are reclaimed on fills and purges only");
    }
}
