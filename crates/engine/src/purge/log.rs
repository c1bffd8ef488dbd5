//! The invalidation epoch and the log of recent purges, for read-after-purge.
//!
//! Owns the rule that a fill which began before a purge must not be stored as fresh if the
//! purge matches it: every fill is stamped with the epoch at its start ([`PurgeLog::epoch`]),
//! and at insert the store asks [`PurgeLog::purged_since`]. It stores nothing else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::selector::{PurgeMode, PurgeRequest};
use crate::object::ObjectMeta;

/// How many recent purges are kept; a fill older than all of them is treated as purged.
pub const DEFAULT_LOG_CAPACITY: usize = 4096;

/// Most heap bytes the kept purges may hold (their selectors): with large purges the log
/// keeps fewer of them, never more than this (beyond the newest one).
pub const DEFAULT_LOG_BYTES: usize = 2 * 1024 * 1024;

/// What recent purges say about an object a fill wants to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SincePurge {
    /// No purge since the fill began matches it: store as fresh.
    Untouched,
    /// A soft purge matched: store, but marked stale.
    Soft,
    /// A hard purge matched (or the log no longer reaches back to the fill): do not store.
    Hard,
}

/// Epoch counter plus a log of the purges that bumped it, bounded in count and in bytes.
///
/// Forgetting old purges never weakens read-after-purge: a fill older than the oldest purge
/// kept is treated as purged (not stored), so a smaller log only costs some fills' copies.
#[derive(Debug)]
pub struct PurgeLog {
    epoch: AtomicU64,
    log: Mutex<Kept>,
    capacity: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Kept {
    entries: VecDeque<(u64, Arc<PurgeRequest>, usize)>,
    bytes: usize,
}

impl Default for PurgeLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_LOG_CAPACITY)
    }
}

impl PurgeLog {
    /// A log that remembers `capacity` purges (and at most [`DEFAULT_LOG_BYTES`] of them).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_limits(capacity, DEFAULT_LOG_BYTES)
    }

    /// A log that remembers at most `capacity` purges holding at most `max_bytes` (the newest
    /// purge is always kept, whatever its size).
    pub fn with_limits(capacity: usize, max_bytes: usize) -> Self {
        PurgeLog {
            epoch: AtomicU64::new(0),
            log: Mutex::new(Kept::default()),
            capacity: capacity.max(1),
            max_bytes,
        }
    }

    /// Heap bytes the kept purges hold now (what the byte bound counts).
    pub fn bytes(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The current epoch: stamp a fill with it when the fill starts.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a purge (before its matches are removed) and returns its epoch.
    pub fn record(&self, req: Arc<PurgeRequest>) -> u64 {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let size = std::mem::size_of::<PurgeRequest>() + req.heap_size();
        log.entries.push_back((epoch, req, size));
        log.bytes += size;
        while log.entries.len() > self.capacity
            || (log.bytes > self.max_bytes && log.entries.len() > 1)
        {
            if let Some((_, _, n)) = log.entries.pop_front() {
                log.bytes -= n;
            }
        }
        epoch
    }

    /// Whether a purge recorded after `fill_epoch` matches the object.
    pub fn purged_since(&self, fill_epoch: u64, meta: &ObjectMeta) -> SincePurge {
        if self.epoch() == fill_epoch {
            return SincePurge::Untouched;
        }
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        match log.entries.front() {
            Some((oldest, _, _)) if *oldest <= fill_epoch + 1 => {}
            _ => return SincePurge::Hard,
        }
        let mut verdict = SincePurge::Untouched;
        for (epoch, req, _) in log.entries.iter().rev() {
            if *epoch <= fill_epoch {
                break;
            }
            if req.matches(meta) {
                match req.mode {
                    PurgeMode::Hard => return SincePurge::Hard,
                    PurgeMode::Soft => verdict = SincePurge::Soft,
                }
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ResourceKey;
    use crate::purge::selector::Selector;

    fn meta(url: &str) -> ObjectMeta {
        ObjectMeta {
            id: 1,
            key: ResourceKey::parse_url(url).unwrap(),
            vary_values: vec![],
            tags: vec![],
        }
    }

    #[test]
    fn fills_see_only_later_matching_purges() {
        let log = PurgeLog::with_capacity(2);
        let e0 = log.epoch();
        assert_eq!(
            log.purged_since(e0, &meta("http://h/a")),
            SincePurge::Untouched
        );
        log.record(Arc::new(PurgeRequest::new(vec![Selector::path("/a")])));
        assert_eq!(log.purged_since(e0, &meta("http://h/a")), SincePurge::Hard);
        assert_eq!(
            log.purged_since(e0, &meta("http://h/b")),
            SincePurge::Untouched
        );
        let e1 = log.epoch();
        let mut soft = PurgeRequest::new(vec![Selector::path("/b")]);
        soft.mode = PurgeMode::Soft;
        log.record(Arc::new(soft));
        assert_eq!(
            log.purged_since(e1, &meta("http://h/a")),
            SincePurge::Untouched
        );
        assert_eq!(log.purged_since(e1, &meta("http://h/b")), SincePurge::Soft);
        log.record(Arc::new(PurgeRequest::new(vec![Selector::path("/c")])));
        // The log (capacity 2) no longer reaches back to e0: be conservative.
        assert_eq!(log.purged_since(e0, &meta("http://h/z")), SincePurge::Hard);
    }

    #[test]
    fn large_purges_are_bounded_by_bytes_and_stay_safe() {
        let log = PurgeLog::with_limits(4096, 64 * 1024);
        let big = |i: usize| {
            let tags = (0..1000)
                .map(|j| Selector::tag(&format!("tag-{i}-{j}-{}", "x".repeat(80))))
                .collect();
            Arc::new(PurgeRequest::new(tags))
        };
        let e0 = log.epoch();
        for i in 0..100 {
            let req = big(i);
            let newest = std::mem::size_of::<PurgeRequest>() + req.heap_size();
            assert!(newest > 64 * 1024, "each purge holds {newest} B");
            log.record(req);
            // Over the bound, only the newest purge is kept (and counted).
            assert_eq!(log.bytes(), newest);
        }
        // A fill from before the forgotten purges is not stored fresh: read-after-purge holds.
        assert_eq!(log.purged_since(e0, &meta("http://h/z")), SincePurge::Hard);
        // A fill that began just before the newest purge is judged by it.
        let e = log.epoch();
        log.record(Arc::new(PurgeRequest::new(vec![Selector::path("/a")])));
        assert_eq!(
            log.purged_since(e, &meta("http://h/b")),
            SincePurge::Untouched
        );
        assert_eq!(log.purged_since(e, &meta("http://h/a")), SincePurge::Hard);
    }
}
