//! The beat of the store's periodic tasks: a tick every period, until the store stops.
//!
//! Owns only that timer and the stop signal it listens to; what runs on each tick belongs to
//! `notify` (heartbeats) and the housekeeping task.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// Ticks every period (a late tick delays the next ones) until the store stops.
pub(crate) struct Ticks {
    tick: Interval,
    stop: watch::Receiver<bool>,
}

impl Ticks {
    /// Ticks every `period`, the first at once, until `stop` changes or its sender goes.
    pub(crate) fn new(period: Duration, stop: watch::Receiver<bool>) -> Ticks {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticks { tick, stop }
    }

    /// Waits for the next tick: `false` once the store stopped.
    pub(crate) async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => true,
            _ = self.stop.changed() => false,
        }
    }
}
