//! The L1's lease: how long the L1 may still be served without fresh proof.
//!
//! Owns the rule that makes L1 copies safe: the L1 may be served only while the node has
//! *proof* that it received every purge acknowledged more than `lease` ago. Proof comes from
//! heartbeats the node publishes to itself through Redis, on the connection and shard that
//! carry the purge messages: a heartbeat sent at `t0` and received means every purge published
//! before `t0` was received (and applied) first. Without fresh proof, the L1 is emptied, and
//! then emptied again every `lease` for as long as the proof is missing, so no L1 copy is ever
//! served more than `lease` after a purge's acknowledgement, whatever the connections do.
//!
//! Only the clock and the bookkeeping: emptying the L1 is the job of `l1`, sending and
//! receiving heartbeats that of `notify`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds since a process-wide base instant (monotonic).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    /// Milliseconds since the base (at least 1).
    pub fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The L1 lease.
#[derive(Debug)]
pub struct Lease {
    clock: Clock,
    lease_ms: u64,
    /// The L1 may be served before this instant (clock ms).
    valid_until: AtomicU64,
    /// Bumped when the purge subscription may have lost messages; heartbeats of an older
    /// session prove nothing.
    session: AtomicU64,
}

impl Lease {
    /// A lease of `lease`, not yet valid.
    pub fn new(lease: Duration) -> Self {
        Lease {
            clock: Clock::new(),
            lease_ms: lease.as_millis().max(1) as u64,
            valid_until: AtomicU64::new(0),
            session: AtomicU64::new(1),
        }
    }

    /// The clock the lease runs on.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// True while the L1 may be served.
    pub fn valid(&self) -> bool {
        self.clock.now_ms() < self.valid_until.load(Ordering::Acquire)
    }

    /// The current subscription session.
    pub fn session(&self) -> u64 {
        self.session.load(Ordering::Acquire)
    }

    /// A heartbeat of `session` sent at `sent_ms` came back: every purge published before it
    /// has been applied.
    pub fn confirmed(&self, session: u64, sent_ms: u64) {
        if session == self.session() {
            self.valid_until
                .fetch_max(sent_ms + self.lease_ms, Ordering::AcqRel);
        }
    }

    /// The subscription may have lost messages: heartbeats sent so far prove nothing more.
    pub fn new_session(&self) -> u64 {
        self.session.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The L1 was just emptied: it may be served for one lease from now.
    pub fn emptied(&self) {
        let now = self.clock.now_ms();
        self.valid_until
            .store(now + self.lease_ms, Ordering::Release);
    }

    /// True when the L1 must be emptied now (its lease ran out without proof).
    pub fn expired(&self) -> bool {
        !self.valid()
    }

    /// Milliseconds of validity left (0 when expired), for metrics and tests.
    pub fn remaining_ms(&self) -> u64 {
        self.valid_until
            .load(Ordering::Acquire)
            .saturating_sub(self.clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_needs_proof_from_the_current_session() {
        let l = Lease::new(Duration::from_millis(200));
        assert!(!l.valid(), "not valid before any proof");
        let s = l.session();
        let t0 = l.now_ms();
        l.confirmed(s, t0);
        assert!(l.valid());
        let old = s;
        l.new_session();
        l.confirmed(old, l.now_ms() + 10_000);
        assert!(l.remaining_ms() <= 200, "old sessions prove nothing");
        l.emptied();
        assert!(l.valid());
    }
}
