//! The store's one-second housekeeping.
//!
//! Owns the task that, every second, unindexes expired objects, refreshes the cached sizes,
//! notices when Redis is back (or still gone), and learns the purge sequence even if its
//! messages were lost (so fills are checked against few log entries). It holds the L1 and the
//! L2 weakly: the task ends with the store. What each step does is theirs (`l2` sweeps and
//! counts, `l1` learns the sequence); this module only runs them in turn.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::NOT_CONNECTED;
use crate::l1::L1;
use crate::l2::L2;
use crate::ticks::Ticks;

/// Spawns the task; it ends when the store stops or is dropped.
pub(crate) fn start(l1: &Arc<L1>, l2: &Arc<L2>, stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(run(Arc::downgrade(l1), Arc::downgrade(l2), stop));
}

async fn run(l1: Weak<L1>, l2: Weak<L2>, stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = Ticks::new(Duration::from_secs(1), stop);
    while ticks.next().await {
        let (Some(l1), Some(l2)) = (l1.upgrade(), l2.upgrade()) else {
            return;
        };
        if !l2.connection().connected() {
            l2.connection().mark_down(&NOT_CONNECTED);
            continue;
        }
        let _ = l2.sweep(1).await;
        let _ = l2.refresh_stats(l1.capacity()).await;
        if let Some(seq) = l2.current_seq().await {
            l1.learn_seq(seq);
        }
    }
}
