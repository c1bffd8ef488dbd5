//! Key layout: buckets, hash tags and key names.
//!
//! Owns how cached objects are spread over Redis: every resource belongs to one *bucket*
//! (chosen from its host name and path, so a `url` purge touches one bucket), and every key of
//! a bucket carries the bucket's hash tag, so each Lua script touches exactly one Cluster slot.
//! The hash tags are chosen so the buckets' slots are spread evenly over the slot space (and so
//! over the shards of a cluster with the usual even slot ranges). It talks to no server.

use vanish_engine::url::hostname;

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16/XMODEM, the checksum Redis Cluster uses for key slots.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Cluster slot of a key (honouring `{hash tags}`), as Redis computes it.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// Where one deployment's keys live: a name prefix and its buckets.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    /// Hash-tagged bucket prefixes, e.g. `{vanish:17}`.
    tags: Vec<String>,
}

impl Layout {
    /// A layout of `buckets` buckets under `prefix` (which must not contain `{` or `}`).
    pub fn new(prefix: &str, buckets: usize) -> Layout {
        let buckets = buckets.clamp(1, SLOTS as usize);
        let width = SLOTS as usize / buckets;
        let mut tags = Vec::with_capacity(buckets);
        for b in 0..buckets {
            // Find the first suffix whose slot lies in this bucket's share of the slot range.
            let lo = b * width;
            let hi = if b + 1 == buckets {
                SLOTS as usize
            } else {
                lo + width
            };
            let mut n: u64 = 0;
            let tag = loop {
                let candidate = format!("{prefix}:{b}.{n}");
                let slot = crc16(candidate.as_bytes()) as usize % SLOTS as usize;
                if (lo..hi).contains(&slot) || n > 2_000_000 {
                    break candidate;
                }
                n += 1;
            };
            tags.push(format!("{{{tag}}}"));
        }
        Layout {
            prefix: prefix.to_owned(),
            tags,
        }
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        self.tags.len()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bucket of a resource (or of a `url` selector): from its host name and path.
    pub fn bucket_of(&self, host: &str, path: &str) -> usize {
        let name = hostname(host);
        let mut data = Vec::with_capacity(name.len() + path.len() + 1);
        data.extend_from_slice(name.as_bytes());
        data.push(0);
        data.extend_from_slice(path.as_bytes());
        // FNV-1a: stable across versions and platforms (unlike std's hasher).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % self.tags.len() as u64) as usize
    }

    /// The bucket's control hash (generation, purge-log floor, id counter); every bucket script
    /// names it as `KEYS[1]` and derives the bucket's other keys from it.
    pub fn control_key(&self, bucket: usize) -> String {
        format!("{}:m", self.tags[bucket])
    }

    /// The hash-tagged prefix of a bucket's keys.
    pub fn bucket_tag(&self, bucket: usize) -> &str {
        &self.tags[bucket]
    }

    /// The global purge sequence counter.
    pub fn seq_key(&self) -> String {
        format!("{{{}}}:seq", self.prefix)
    }

    /// The layout record (bucket count), checked by every node at start.
    pub fn layout_key(&self) -> String {
        format!("{{{}}}:layout", self.prefix)
    }

    /// The channel purges are published on.
    pub fn purge_channel(&self) -> String {
        format!("{{{}}}:purge", self.prefix)
    }

    /// A node's heartbeat channel (same hash tag as the purge channel, so in Cluster mode both
    /// are served, in order, by the same shard).
    pub fn heartbeat_channel(&self, node: &str) -> String {
        format!("{{{}}}:hb:{node}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
    }

    #[test]
    fn buckets_spread_over_the_slot_range() {
        let l = Layout::new("vanish", 16);
        let mut slots: Vec<u16> = (0..16)
            .map(|b| key_slot(l.control_key(b).as_bytes()))
            .collect();
        for (b, s) in slots.iter().enumerate() {
            assert_eq!(*s as usize / 1024, b, "bucket {b} in its 1/16th");
        }
        slots.dedup();
        assert_eq!(slots.len(), 16);
        let b = l.bucket_of("example.com:8080", "/a");
        assert_eq!(b, l.bucket_of("example.com", "/a"), "ports share a bucket");
        assert!(b < 16);
    }
}
