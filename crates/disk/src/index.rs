//! The disk tier's in-memory index: where each live object record is, and how purges find it.
//!
//! Owns [`DiskEntry`] (one live object record: its metadata, place and purge marks) and
//! [`DiskIndex`]: the engine's invalidation [`Index`] over the entries (purges cost
//! O(matched)), the entries by resource (lookups), by segment (a segment's eviction drops its
//! entries with it) and by retention time (expired entries leave the index), plus the
//! purge state that records being read back must be checked against (the `all` boundary, the
//! soft `all`, the purges that came while the index was being rebuilt). It does no I/O;
//! callers hold it under one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use vanish_engine::object::{ObjectId, ObjectMeta};
use vanish_engine::purge::index::{Entry, Index};
use vanish_engine::purge::selector::PurgeMode;
use vanish_engine::variant::{VariantKey, VaryNames};
use vanish_engine::{PurgeRequest, ResourceKey};

use crate::codec::{unix_ms, StoredMeta};

/// The segment a record seq is in.
pub fn segment_of(seq: u64) -> u32 {
    (seq >> 32) as u32
}

/// One live object record on disk.
#[derive(Debug)]
pub struct DiskEntry {
    /// What purges match on (a process-local id).
    pub meta: ObjectMeta,
    /// The `Vary` names.
    pub vary: VaryNames,
    /// The variant key.
    pub variant: VariantKey,
    /// When the object was stored (with the variant, what names the same object in memory).
    pub stored_at: SystemTime,
    /// When it may be forgotten.
    pub retain_until: SystemTime,
    /// Its record's seq.
    pub seq: u64,
    /// Where its record starts in its segment.
    pub offset: u64,
    /// Its record's length.
    pub len: u64,
    soft_at_ms: AtomicU64,
    dead: AtomicBool,
    written: AtomicBool,
}

impl DiskEntry {
    /// An entry for a record; `written` is false while its bytes are still being written.
    pub fn new(m: StoredMeta, seq: u64, offset: u64, len: u64, written: bool) -> Self {
        DiskEntry {
            meta: m.meta,
            vary: m.vary,
            variant: m.variant,
            stored_at: m.timing.stored_at,
            retain_until: m.retain_until,
            seq,
            offset,
            len,
            soft_at_ms: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            written: AtomicBool::new(written),
        }
    }

    /// The segment its record is in.
    pub fn segment(&self) -> u32 {
        segment_of(self.seq)
    }

    /// Marks it hard-purged (never read again).
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// Its record's bytes are all written.
    pub fn mark_written(&self) {
        self.written.store(true, Ordering::Release);
    }

    /// True once its bytes are all written.
    pub fn is_written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    /// Marks it stale from `ms` (unix ms) on; the earliest mark wins.
    pub fn mark_soft(&self, ms: u64) {
        let ms = ms.max(1);
        let _ = self
            .soft_at_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur == 0 || ms < cur).then_some(ms)
            });
    }

    /// When it was soft-purged (unix ms; 0: never).
    pub fn soft_at_ms(&self) -> u64 {
        self.soft_at_ms.load(Ordering::Acquire)
    }
}

impl DiskEntry {
    /// True once hard-purged.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
}

/// What the engine's purge index holds: a shared entry.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<DiskEntry>);

impl Entry for Shared {
    fn meta(&self) -> &ObjectMeta {
        &self.0.meta
    }

    fn is_dead(&self) -> bool {
        self.0.is_dead()
    }
}

/// The index (not thread-safe by itself: the tier keeps it under a lock).
#[derive(Default)]
pub struct DiskIndex {
    purge: Index<Shared>,
    by_key: HashMap<ResourceKey, Vec<Arc<DiskEntry>>>,
    by_segment: BTreeMap<u32, Vec<ObjectId>>,
    by_expiry: BTreeSet<(u64, ObjectId)>,
    /// Bytes of the live records.
    live_bytes: u64,
    /// The next record's seq.
    pub next_seq: u64,
    /// Every record with a smaller seq is dead (hard `all`).
    pub all_boundary: u64,
    /// Records with a seq below `.0` are stale from `.1` (unix ms) on (soft `all`).
    pub soft_all: (u64, u64),
    /// Segments up to this id are gone (evicted oldest first, or dropped by `all`); `None`:
    /// none yet.
    pub gone_upto: Option<u32>,
    /// Purges acknowledged while the index was being rebuilt: records read back afterwards
    /// are checked against them (with the seq boundary they apply below).
    pub rebuild_purges: Vec<RebuildPurge>,
    /// The rebuild is over.
    pub rebuilt: bool,
}

/// A purge acknowledged while the index was being rebuilt.
#[derive(Debug, Clone)]
pub struct RebuildPurge {
    /// It applies to the records with a smaller seq.
    pub boundary: u64,
    /// When it ran (unix ms: a soft purge marks stale from then).
    pub at_ms: u64,
    /// The purge.
    pub req: Arc<PurgeRequest>,
}

/// What the purge state says of a record read back from disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Live.
    Live,
    /// Live but stale from this unix ms on.
    Soft(u64),
    /// Purged.
    Dead,
}

impl DiskIndex {
    /// Live objects.
    pub fn len(&self) -> usize {
        self.purge.len()
    }

    /// True when no object is live.
    pub fn is_empty(&self) -> bool {
        self.purge.is_empty()
    }

    /// Bytes of the live records.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// True when the segment is gone (its entries must not come back).
    pub fn is_gone(&self, segment: u32) -> bool {
        self.gone_upto.is_some_and(|g| segment <= g)
    }

    /// What the `all` purges and the purges of the rebuild say of a record.
    pub fn verdict(&self, seq: u64, meta: &ObjectMeta) -> Verdict {
        if seq < self.all_boundary || self.is_gone(segment_of(seq)) {
            return Verdict::Dead;
        }
        let mut soft = 0u64;
        if seq < self.soft_all.0 {
            soft = self.soft_all.1;
        }
        for p in &self.rebuild_purges {
            if seq < p.boundary && p.req.matches(meta) {
                match p.req.mode {
                    PurgeMode::Hard => return Verdict::Dead,
                    PurgeMode::Soft if soft == 0 => soft = p.at_ms.max(1),
                    PurgeMode::Soft => soft = soft.min(p.at_ms.max(1)),
                }
            }
        }
        if soft > 0 {
            Verdict::Soft(soft)
        } else {
            Verdict::Live
        }
    }

    /// The live entries of a resource (written or not).
    pub fn get(&self, key: &ResourceKey) -> Option<&Vec<Arc<DiskEntry>>> {
        self.by_key.get(key)
    }

    /// True when the same variant, stored at the same instant, is indexed.
    pub fn holds(
        &self,
        key: &ResourceKey,
        vary: &VaryNames,
        variant: &VariantKey,
        at: SystemTime,
    ) -> bool {
        self.by_key.get(key).is_some_and(|es| {
            es.iter()
                .any(|e| e.stored_at == at && &e.vary == vary && &e.variant == variant)
        })
    }

    /// Adds an entry, replacing an older record of the same variant (a newer one already
    /// indexed wins: records are read back oldest first, but an entry written meanwhile may
    /// be newer). Keeps at most `max_variants` per resource. Returns whether it was added.
    pub fn insert(&mut self, entry: Arc<DiskEntry>, max_variants: usize) -> bool {
        let key = entry.meta.key.clone();
        let list = self.by_key.entry(key.clone()).or_default();
        let mut dropped = Vec::new();
        let mut i = 0;
        while i < list.len() {
            let o = &list[i];
            if o.vary == entry.vary && o.variant == entry.variant {
                if o.seq > entry.seq {
                    return false;
                }
                dropped.push(list.remove(i));
            } else {
                i += 1;
            }
        }
        list.push(entry.clone());
        list.sort_by_key(|e| e.seq);
        while list.len() > max_variants.max(1) {
            dropped.push(list.remove(0));
        }
        for d in dropped {
            self.unlink(&d);
        }
        self.live_bytes += entry.len;
        self.by_segment
            .entry(entry.segment())
            .or_default()
            .push(entry.meta.id);
        self.by_expiry
            .insert((unix_ms(entry.retain_until), entry.meta.id));
        self.purge.insert(Shared(entry));
        true
    }

    /// Removes an entry from every index but its resource's list.
    fn unlink(&mut self, e: &DiskEntry) {
        if self.purge.remove(e.meta.id).is_some() {
            self.live_bytes = self.live_bytes.saturating_sub(e.len);
            self.by_expiry.remove(&(unix_ms(e.retain_until), e.meta.id));
        }
    }

    /// Removes the entries of the same variant as `m` older than `seq` (a newer record of it,
    /// even a purged one, replaced them); returns their seqs.
    pub fn supersede(&mut self, m: &StoredMeta, seq: u64) -> Vec<u64> {
        let Some(list) = self.by_key.get(&m.meta.key) else {
            return Vec::new();
        };
        let old: Vec<(ObjectId, u64)> = list
            .iter()
            .filter(|e| e.seq < seq && e.vary == m.vary && e.variant == m.variant)
            .map(|e| (e.meta.id, e.seq))
            .collect();
        for (id, _) in &old {
            self.remove(*id);
        }
        old.into_iter().map(|(_, s)| s).collect()
    }

    /// Removes an entry by id; returns it.
    pub fn remove(&mut self, id: ObjectId) -> Option<Arc<DiskEntry>> {
        let e = self.purge.get(id)?.0.clone();
        self.unlink(&e);
        if let Some(list) = self.by_key.get_mut(&e.meta.key) {
            list.retain(|o| o.meta.id != id);
            if list.is_empty() {
                self.by_key.remove(&e.meta.key);
            }
        }
        Some(e)
    }

    /// Removes every entry of the segments up to `upto` and marks them gone; returns how many.
    pub fn drop_segments(&mut self, upto: u32) -> usize {
        self.gone_upto = Some(self.gone_upto.map_or(upto, |g| g.max(upto)));
        let mut n = 0;
        while let Some((&seg, _)) = self.by_segment.first_key_value() {
            if seg > upto {
                break;
            }
            let ids = self.by_segment.remove(&seg).unwrap_or_default();
            for id in ids {
                if self.purge.get(id).is_some_and(|e| e.0.segment() == seg) {
                    self.remove(id);
                    n += 1;
                }
            }
        }
        n
    }

    /// Removes the entries whose retention ended before `now_ms`, up to `max`; returns them.
    pub fn expire(&mut self, now_ms: u64, max: usize) -> usize {
        let mut ids = Vec::new();
        for &(until, id) in self.by_expiry.iter() {
            if until >= now_ms || ids.len() >= max {
                break;
            }
            ids.push(id);
        }
        for id in &ids {
            self.remove(*id);
        }
        ids.len()
    }

    /// The live entries a purge matches.
    pub fn select(&self, req: &PurgeRequest) -> Vec<Arc<DiskEntry>> {
        self.purge.select(req).into_iter().map(|s| s.0).collect()
    }

    /// Every live entry (the `all` purges, compaction).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<DiskEntry>> {
        self.purge.iter().map(|s| &s.0)
    }

    /// Forgets every entry (a hard `all`): returns the old index to be dropped elsewhere.
    pub fn take_entries(&mut self) -> DiskIndex {
        let mut old = DiskIndex::default();
        std::mem::swap(&mut old.purge, &mut self.purge);
        std::mem::swap(&mut old.by_key, &mut self.by_key);
        std::mem::swap(&mut old.by_expiry, &mut self.by_expiry);
        std::mem::swap(&mut old.by_segment, &mut self.by_segment);
        self.live_bytes = 0;
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vanish_engine::Selector;

    fn entry(url: &str, seq: u64, tags: &[&str]) -> Arc<DiskEntry> {
        let now = SystemTime::now();
        let m = StoredMeta {
            meta: ObjectMeta {
                id: vanish_engine::object::next_object_id(),
                key: ResourceKey::parse_url(url).unwrap(),
                vary_values: vec![],
                tags: tags.iter().map(|t| Arc::<str>::from(*t)).collect(),
            },
            vary: VaryNames::default(),
            variant: VariantKey::default(),
            timing: vanish_engine::object::Timing {
                stored_at: now,
                age_at_store: Duration::ZERO,
                ttl_at_store: Duration::from_secs(60),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
                keep: Duration::ZERO,
            },
            retain_until: now + Duration::from_secs(60),
        };
        Arc::new(DiskEntry::new(m, seq, 0, 100, true))
    }

    #[test]
    fn replacing_evicting_and_expiring_leave_no_entry_behind() {
        let mut idx = DiskIndex::default();
        assert!(idx.insert(entry("http://h/a", 1, &["t"]), 8));
        assert!(
            idx.insert(entry("http://h/a", 2, &["t"]), 8),
            "newer replaces"
        );
        assert!(
            !idx.insert(entry("http://h/a", 1, &["t"]), 8),
            "older loses"
        );
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.live_bytes(), 100);
        idx.insert(entry("http://h/b", (1 << 32) | 1, &["t"]), 8);
        let tag = PurgeRequest::new(vec![Selector::tag("t")]);
        assert_eq!(idx.select(&tag).len(), 2);
        assert_eq!(idx.drop_segments(0), 1, "segment 0 held /a");
        assert!(idx.is_gone(0) && !idx.is_gone(1));
        assert_eq!(idx.select(&tag).len(), 1);
        assert_eq!(idx.expire(u64::MAX, 10), 1);
        assert!(idx.is_empty());
        assert!(idx
            .get(&ResourceKey::parse_url("http://h/b").unwrap())
            .is_none());
        assert_eq!(idx.live_bytes(), 0);
    }

    #[test]
    fn verdicts_follow_all_and_rebuild_purges() {
        let mut idx = DiskIndex::default();
        let e = entry("http://h/a", 5, &["x"]);
        assert_eq!(idx.verdict(5, &e.meta), Verdict::Live);
        idx.rebuild_purges.push(RebuildPurge {
            boundary: 10,
            at_ms: 1,
            req: Arc::new(PurgeRequest::new(vec![Selector::tag("x")])),
        });
        assert_eq!(idx.verdict(5, &e.meta), Verdict::Dead);
        assert_eq!(
            idx.verdict(11, &e.meta),
            Verdict::Live,
            "newer than the purge"
        );
        idx.rebuild_purges.clear();
        idx.soft_all = (6, 1234);
        assert_eq!(idx.verdict(5, &e.meta), Verdict::Soft(1234));
        idx.all_boundary = 6;
        assert_eq!(idx.verdict(5, &e.meta), Verdict::Dead);
    }
}
