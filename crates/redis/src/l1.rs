//! The optional in-memory L1 in front of Redis, and everything that keeps it safe to serve.
//!
//! Owns the memory store itself (present when `l1_capacity > 0`), its [`Lease`] (see
//! [`lease`]), this node's [`Epochs`] (every purge the node learns of, and every emptying of the
//! L1, advances them together with the L1's own epoch), and the drop logic: applying purges,
//! dropping copies a node made partial, and emptying the L1 whenever proof of a complete purge
//! stream is missing or messages may have been lost. It talks to no server and reads no
//! message: `notify` tells it what arrived, the store what it read and wrote.

pub mod lease;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use vanish_engine::store::{Inserted, Resource, Store};
use vanish_engine::{CachedObject, PurgeRequest, ResourceKey, Selector};
use vanish_memory::MemoryStore;

use crate::epochs::{Epochs, Snapshot};
pub use lease::{Clock, Lease};

/// Why the L1 is emptied when its lease runs out.
const NO_PROOF: &str = "no proof of a complete purge stream within the lease";

/// The L1 (or its absence), its lease, and this node's epochs.
pub(crate) struct L1 {
    store: Option<MemoryStore>,
    lease: Lease,
    epochs: Epochs,
    drops: AtomicU64,
    /// Highest purge sequence number applied to the L1.
    applied: tokio::sync::watch::Sender<u64>,
}

impl L1 {
    /// An L1 of `capacity` bytes (none when 0) served under a lease of `lease`, for a node
    /// that knows of purges up to `seq`.
    pub(crate) fn new(capacity: u64, max_variants: usize, lease: Duration, seq: u64) -> L1 {
        let store = (capacity > 0).then(|| MemoryStore::with_max_variants(capacity, max_variants));
        let l1_epoch = store.as_ref().map_or(0, |l| l.epoch());
        L1 {
            lease: Lease::new(lease),
            epochs: Epochs::new(l1_epoch, seq),
            store,
            drops: AtomicU64::new(0),
            applied: tokio::sync::watch::channel(0).0,
        }
    }

    /// True when an L1 is configured.
    pub(crate) fn configured(&self) -> bool {
        self.store.is_some()
    }

    /// True while the L1 may be served (its lease holds).
    pub(crate) fn valid(&self) -> bool {
        self.store.is_some() && self.lease.valid()
    }

    /// The lease.
    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// How many times the L1 was emptied for lack of proof it saw every purge.
    pub(crate) fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Watches the highest purge sequence number applied to the L1.
    pub(crate) fn applied_purges(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// This node's current local epoch (what fills are stamped with).
    pub(crate) fn epoch(&self) -> u64 {
        self.epochs.current()
    }

    /// What a fill's local epoch stood for; `None` when too old to know.
    pub(crate) fn snapshot(&self, fill_epoch: u64) -> Option<Snapshot> {
        self.epochs.resolve(fill_epoch)
    }

    /// The memory store's own epoch, taken before a read from Redis (see [`L1::promote`]).
    pub(crate) fn read_epoch(&self) -> u64 {
        self.store.as_ref().map_or(0, |l| l.epoch())
    }

    /// The L1's capacity in bytes (0 without an L1).
    pub(crate) fn capacity(&self) -> u64 {
        self.store.as_ref().map_or(0, |l| l.stats().capacity)
    }

    /// The L1's copy, if the lease allows serving it (no await, no allocation).
    pub(crate) fn hit(&self, key: &ResourceKey) -> Option<Arc<Resource>> {
        let l1 = self.store.as_ref()?;
        if !self.lease.valid() {
            // No proof this node saw every purge for a whole lease: start afresh now rather
            // than at the next heartbeat tick.
            self.drop_all(NO_PROOF);
        }
        l1.lookup(key).now_or_never()?.ok()?
    }

    /// Stores a fill in the L1, checked against the purges since `snap` (none: too old to
    /// know, not stored). `None` without an L1.
    pub(crate) fn insert(&self, object: CachedObject, snap: Option<Snapshot>) -> Option<Inserted> {
        let (l1, snap) = (self.store.as_ref()?, snap?);
        l1.insert(object, snap.l1).now_or_never()?.ok()
    }

    /// Copies objects read from Redis into the L1, unless a purge reached the L1 since
    /// `l1_epoch` (taken before the read, [`L1::read_epoch`]) and matches them.
    pub(crate) fn promote(&self, objects: &[CachedObject], l1_epoch: u64) {
        let Some(l1) = &self.store else { return };
        for o in objects {
            // Shares body and headers; keeps the soft-purge mark.
            let _ = l1.insert(o.clone(), l1_epoch).now_or_never();
        }
    }

    /// Applies purge `seq` (learned from Redis: this node's or another's) to the L1.
    pub(crate) fn apply_purge(&self, seq: u64, req: Arc<PurgeRequest>) {
        self.purge_and_advance(seq, req);
        self.applied.send_modify(|v| *v = (*v).max(seq));
    }

    /// Purges the L1 (if any) and advances the epochs past it, atomically with respect to
    /// other advances (`seq` 0: no purge in Redis, only the L1 changed).
    fn purge_and_advance(&self, seq: u64, req: Arc<PurgeRequest>) {
        self.epochs.advance(seq, || match &self.store {
            Some(l1) => {
                let _ = l1.purge(req).now_or_never();
                l1.epoch()
            }
            None => 0,
        });
    }

    /// Drops the L1's copies `req` selects because another node made them partial (a
    /// resource gained a variant there). Not a purge: recorded in the L1's own log only, so
    /// a concurrent promotion of the partial copy is refused too.
    pub(crate) fn drop_copies(&self, req: Arc<PurgeRequest>) {
        if let Some(l1) = &self.store {
            let _ = l1.purge(req).now_or_never();
        }
    }

    /// Empties the L1 (it may have missed purges) and records it as a purge of everything.
    pub(crate) fn drop_all(&self, why: &str) {
        if self.store.is_none() {
            return;
        }
        self.purge_and_advance(0, Arc::new(PurgeRequest::new(vec![Selector::all()])));
        self.lease.emptied();
        self.drops.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vanish_redis_l1_drops_total").increment(1);
        tracing::debug!(reason = why, "L1 emptied");
    }

    /// Purge messages may have been lost: heartbeats sent so far prove nothing, and the L1 is
    /// emptied.
    pub(crate) fn lost_messages(&self, why: &str) {
        self.lease.new_session();
        self.drop_all(why);
    }

    /// Empties the L1 if its lease ran out without proof.
    pub(crate) fn check_lease(&self) {
        if self.lease.expired() {
            self.drop_all(NO_PROOF);
        }
    }

    /// Learns that Redis's purge sequence reached `seq` (even if its messages were lost), so
    /// fills are checked against few log entries.
    pub(crate) fn learn_seq(&self, seq: u64) {
        if seq > self.epochs.known_seq() {
            self.epochs.advance(seq, || self.read_epoch());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purges_and_drops_advance_the_epochs() {
        let l1 = L1::new(1 << 20, 2, Duration::from_millis(200), 5);
        assert!(l1.configured() && !l1.valid(), "not valid before any proof");
        assert_eq!(l1.snapshot(0).map(|s| s.seq), Some(5));
        let watch = l1.applied_purges();
        l1.apply_purge(7, Arc::new(PurgeRequest::new(vec![Selector::tag("t")])));
        assert_eq!(*watch.borrow(), 7);
        assert_eq!(l1.snapshot(l1.epoch()).map(|s| s.seq), Some(7));
        l1.drop_all("test");
        assert_eq!(l1.drops(), 1);
        assert!(l1.valid(), "emptied: valid for one lease");
        l1.learn_seq(6);
        let before = l1.epoch();
        l1.learn_seq(9);
        assert!(l1.epoch() > before);
        assert_eq!(l1.snapshot(l1.epoch()).map(|s| s.seq), Some(9));
        let none = L1::new(0, 2, Duration::from_millis(200), 0);
        assert!(!none.configured() && !none.valid());
        none.drop_all("test");
        assert_eq!(none.drops(), 0, "nothing to empty");
    }
}
