//! Reclamation: carrying moka's evictions and expiries to the invalidation index.
//!
//! Owns the queues of ids waiting to leave the index: what the eviction listener reports (it
//! must not take the index lock: moka may call it while a fill holds that lock) and what hard
//! purges killed (unlinked off the purge's path), and the housekeeper thread that drains them,
//! woken by purges and at least once a second, and
//! stopped and joined when the store is dropped.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
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

/// Wakes the housekeeper early (after a hard purge), or stops it (the store is dropped).
#[derive(Default)]
pub(crate) struct Wake {
    state: Mutex<WakeState>,
    cond: Condvar,
}

#[derive(Default)]
struct WakeState {
    pending: bool,
    stopped: bool,
}

impl Wake {
    pub(crate) fn notify_one(&self) {
        self.lock().pending = true;
        self.cond.notify_one();
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.cond.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a notification or the timeout; false once the housekeeper must stop.
    fn wait(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (mut guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |s| !s.pending && !s.stopped)
            .unwrap_or_else(|e| e.into_inner());
        guard.pending = false;
        !guard.stopped
    }
}

/// The housekeeper thread: runs moka's pending maintenance and reclaims index entries every
/// second, and at once when woken.
///
/// It holds the store only while it works, never while it waits, and dropping this handle
/// (which the last `MemoryStore` clone does before releasing the store) stops the thread and
/// waits for it: a dropped store's memory is freed at once, on the dropping thread, and no
/// thread of the store outlives it.
pub(crate) struct Housekeeper {
    wake: Arc<Wake>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Housekeeper {
    pub(crate) fn spawn(inner: Weak<Inner>, wake: Arc<Wake>) -> Self {
        let thread_wake = wake.clone();
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
                if !thread_wake.wait(Duration::from_secs(1)) {
                    return;
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the memory store housekeeper; index entries are reclaimed on fills and purges only");
                None
            }
        };
        Housekeeper {
            wake,
            thread: Mutex::new(thread),
        }
    }
}

impl Drop for Housekeeper {
    fn drop(&mut self) {
        self.wake.stop();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            // At most one round of housekeeping; a panic in it was already reported.
            let _ = t.join();
        }
    }
}
