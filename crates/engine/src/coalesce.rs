//! Request coalescing: one origin fill per resource, however many clients miss at once.
//!
//! Owns the table of fills in flight. The first request for a resource leads; later ones
//! follow and are told how the fill ended. A follower that arrives after a purge does not
//! join a fill that began before it (read-after-purge). It does not fetch or store anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::StatusCode;
use tokio::sync::watch;

use crate::key::ResourceKey;

/// How a fill ended, as its followers learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An object was stored: look it up again.
    Stored,
    /// The response may not be stored: go to the origin yourself.
    NotStored,
    /// The origin failed with this status (502, 504): answer it too.
    Failed(StatusCode),
    /// The leader went away before an answer: try again.
    Abandoned,
}

struct Flight {
    epoch: u64,
    tx: watch::Sender<Option<Outcome>>,
}

/// The fills in flight.
#[derive(Default)]
pub struct Coalescer {
    flights: Mutex<HashMap<ResourceKey, Arc<Flight>>>,
}

/// What a request should do about a miss.
pub enum Join {
    /// Fetch from the origin, then report through the guard.
    Lead(Leader),
    /// Wait for the leader's outcome.
    Follow(watch::Receiver<Option<Outcome>>),
}

/// Held by the request that fills; reports [`Outcome::Abandoned`] if dropped unfinished.
pub struct Leader {
    coalescer: Arc<Coalescer>,
    key: ResourceKey,
    flight: Arc<Flight>,
    done: bool,
}

impl Coalescer {
    /// Leads a new fill, or follows one in flight that began at the current `epoch`.
    pub fn join(self: &Arc<Self>, key: &ResourceKey, epoch: u64) -> Join {
        let mut map = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(key) {
            if f.epoch == epoch {
                return Join::Follow(f.tx.subscribe());
            }
        }
        let (tx, _) = watch::channel(None);
        let flight = Arc::new(Flight { epoch, tx });
        map.insert(key.clone(), flight.clone());
        Join::Lead(Leader {
            coalescer: self.clone(),
            key: key.clone(),
            flight,
            done: false,
        })
    }

    /// Fills in flight (for metrics and tests).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Leader {
    /// Reports the outcome to followers and leaves the table.
    pub fn finish(mut self, outcome: Outcome) {
        self.publish(outcome);
    }

    fn publish(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        {
            let mut map = self
                .coalescer
                .flights
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        self.flight.tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.publish(Outcome::Abandoned);
    }
}

/// Waits for a followed fill to end.
pub async fn wait(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.unwrap_or(Outcome::Abandoned),
        Err(_) => Outcome::Abandoned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_outcome_and_new_epochs_lead() {
        let c = Arc::new(Coalescer::default());
        let k = ResourceKey::parse_url("http://h/a").unwrap();
        let Join::Lead(leader) = c.join(&k, 0) else {
            panic!("first must lead")
        };
        let Join::Follow(rx) = c.join(&k, 0) else {
            panic!("second must follow")
        };
        let Join::Lead(late) = c.join(&k, 1) else {
            panic!("after a purge: lead anew")
        };
        leader.finish(Outcome::Stored);
        assert_eq!(wait(rx).await, Outcome::Stored);
        assert_eq!(c.in_flight(), 1, "the newer flight stays");
        drop(late);
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn dropped_leader_abandons() {
        let c = Arc::new(Coalescer::default());
        let k = ResourceKey::parse_url("http://h/a").unwrap();
        let Join::Lead(leader) = c.join(&k, 0) else {
            panic!()
        };
        let Join::Follow(rx) = c.join(&k, 0) else {
            panic!()
        };
        drop(leader);
        assert_eq!(wait(rx).await, Outcome::Abandoned);
    }
}
