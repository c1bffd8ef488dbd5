//! This node's invalidation epoch, and what it stands for in the L1 and in Redis.
//!
//! The engine stamps every fill with one `u64` ([`vanish_engine::Store::epoch`]) and hands it
//! back at insert. For the Redis store that number must say two things: the L1's own epoch
//! (checked by the L1's purge log) and the highest purge sequence number this node knew of in
//! Redis (checked by the insert script against the bucket's purge log). This module owns a
//! local counter, bumped each time the node learns of a purge, and a ring of snapshots
//! from that counter to both values. A fill older than the ring is treated conservatively.
//! It only keeps numbers: purging the L1 is the caller's (`l1`), and it talks to no server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Snapshots kept (one per purge this node learned of).
const RING: usize = 8192;

/// What a local epoch stood for when it was current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The L1's epoch.
    pub l1: u64,
    /// The highest Redis purge sequence number known.
    pub seq: u64,
}

struct State {
    /// Local epoch of `ring[0]`.
    first: u64,
    ring: VecDeque<Snapshot>,
    known: u64,
}

/// The local epoch counter and its snapshots.
pub struct Epochs {
    state: Mutex<State>,
    current: AtomicU64,
}

impl Epochs {
    /// Starts at local epoch 0, standing for `l1` and Redis sequence `seq`.
    pub fn new(l1: u64, seq: u64) -> Self {
        let mut ring = VecDeque::with_capacity(RING);
        ring.push_back(Snapshot { l1, seq });
        Epochs {
            state: Mutex::new(State {
                first: 0,
                ring,
                known: seq,
            }),
            current: AtomicU64::new(0),
        }
    }

    /// The current local epoch.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// The highest Redis purge sequence number known.
    pub fn known_seq(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).known
    }

    /// Records that the node learned of purge `seq` (0: of none, only that the L1 changed):
    /// runs `apply` (which purges the L1 and returns its new epoch) and publishes a new
    /// local epoch standing for both, atomically with respect to other advances.
    pub fn advance(&self, seq: u64, apply: impl FnOnce() -> u64) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let l1 = apply();
        st.known = st.known.max(seq);
        let snap = Snapshot { l1, seq: st.known };
        st.ring.push_back(snap);
        while st.ring.len() > RING {
            st.ring.pop_front();
            st.first += 1;
        }
        let local = st.first + st.ring.len() as u64 - 1;
        self.current.store(local, Ordering::Release);
        local
    }

    /// What a local epoch stood for; `None` when it is too old to know.
    pub fn resolve(&self, local: u64) -> Option<Snapshot> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let i = local.checked_sub(st.first)?;
        st.ring.get(i as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_follow_advances() {
        let e = Epochs::new(3, 10);
        assert_eq!(e.current(), 0);
        assert_eq!(e.resolve(0), Some(Snapshot { l1: 3, seq: 10 }));
        let l = e.advance(12, || 4);
        assert_eq!(l, 1);
        assert_eq!(e.resolve(1), Some(Snapshot { l1: 4, seq: 12 }));
        // Sequence numbers learned out of order never lower what is known.
        e.advance(11, || 5);
        assert_eq!(e.resolve(2), Some(Snapshot { l1: 5, seq: 12 }));
        for _ in 0..RING {
            e.advance(0, || 6);
        }
        assert_eq!(e.resolve(0), None, "too old: unknown");
        assert_eq!(e.resolve(e.current()).unwrap().seq, 12);
    }
}
