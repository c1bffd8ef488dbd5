//! Admission to disk: which objects are worth writing.
//!
//! Owns the policy ([`Admit`]) and the doorkeeper behind the default one: a bounded memory of
//! the variants seen recently (a hash each), so that an object is written on its *second*
//! request (a hit in memory, or a new fill of a variant seen before) and one-hit wonders never
//! reach the disk. When a shard of the doorkeeper is full it is cleared (like TinyLFU's
//! doorkeeper reset): a forgotten variant only waits one more request. It does no I/O.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use vanish_engine::CachedObject;

/// Which stored objects are written to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admit {
    /// On the second request of a variant (default): a memory hit, or a refill.
    #[default]
    Second,
    /// Every stored object, at once (write-through).
    First,
}

impl Admit {
    /// Parses `"second"` or `"first"`.
    pub fn parse(s: &str) -> Option<Admit> {
        match s {
            "second" => Some(Admit::Second),
            "first" => Some(Admit::First),
            _ => None,
        }
    }
}

const SHARDS: usize = 16;
const SEEN: u8 = 1;
const ADMITTED: u8 = 2;

/// The doorkeeper: per variant hash, seen once or already admitted.
pub struct Doorkeeper {
    shards: Vec<Mutex<HashMap<u64, u8>>>,
    per_shard: usize,
}

/// The hash naming an object's variant (key, `Vary` names, variant key).
pub fn variant_hash(o: &CachedObject) -> u64 {
    let mut h = DefaultHasher::new();
    o.meta.key.hash(&mut h);
    for n in o.vary.iter() {
        n.as_str().hash(&mut h);
    }
    o.variant.as_bytes().hash(&mut h);
    h.finish()
}

impl Doorkeeper {
    /// A doorkeeper remembering about `capacity` variants.
    pub fn new(capacity: usize) -> Self {
        Doorkeeper {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(64),
        }
    }

    fn with<R>(&self, h: u64, f: impl FnOnce(&mut HashMap<u64, u8>) -> R) -> R {
        let mut m = self.shards[(h as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.per_shard {
            m.clear();
        }
        f(&mut m)
    }

    /// A fill stores the variant: true when it is to be written (it was seen before).
    pub fn on_fill(&self, h: u64) -> bool {
        self.with(h, |m| match m.insert(h, ADMITTED) {
            Some(_) => true,
            None => {
                m.insert(h, SEEN);
                false
            }
        })
    }

    /// The variant was found in memory: true when it is to be written now (its second
    /// request); false once it was admitted.
    pub fn on_hit(&self, h: u64) -> bool {
        self.with(h, |m| match m.get(&h).copied() {
            Some(SEEN) => {
                m.insert(h, ADMITTED);
                true
            }
            Some(_) => false,
            None => {
                m.insert(h, SEEN);
                false
            }
        })
    }

    /// The variant is on disk (written, or read back from it).
    pub fn admitted(&self, h: u64) {
        self.with(h, |m| m.insert(h, ADMITTED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_request_admits_once() {
        let d = Doorkeeper::new(1000);
        assert!(!d.on_fill(1), "a first fill is not written");
        assert!(d.on_hit(1), "its first hit is its second request");
        assert!(!d.on_hit(1), "written once");
        assert!(d.on_fill(1), "a refill of a variant seen before is written");
        assert!(
            !d.on_hit(2) && d.on_hit(2),
            "forgotten: the next hit admits"
        );
        d.admitted(3);
        assert!(!d.on_hit(3));
        assert_eq!(Admit::parse("first"), Some(Admit::First));
        assert_eq!(Admit::parse("x"), None);
    }

    #[test]
    fn it_stays_bounded() {
        let d = Doorkeeper::new(16 * 64);
        for h in 0..100_000u64 {
            d.on_fill(h);
        }
        let total: usize = d.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 16 * 64, "{total}");
    }
}
