//! Vanish's disk tier: a cache that survives restarts and holds more than RAM.
//!
//! [`HybridStore`] is a [`vanish_engine::Store`]: the memory store ([`vanish_memory`]) is the
//! hot tier, and a log-structured disk tier ([`DiskTier`]) bounded by bytes lies beneath it.
//! The invalidation model stays Vanish's: the disk tier indexes its objects with the engine's
//! own purge index, so every selector finds them in O(matched), and it checks admissions
//! against the engine's purge log, so read-after-purge holds across both tiers.
//!
//! # Why not a crate
//!
//! `foyer` (hybrid cache) 0.22 needs Rust 1.91 (this workspace's MSRV is 1.87), is pre-1.0,
//! and has neither key enumeration nor per-entry expiry, so purges by tag, prefix or host
//! would need a second index kept in step with evictions it does not report durably, and its
//! purges are not durable. `fjall` 3 and `redb` 4 need Rust 1.90; both are general key-value
//! stores whose write paths (an LSM tree with compaction; a copy-on-write B-tree with a sync
//! per commit) rewrite data a cache never needs to keep, and whose recovery would still leave
//! checksums of served bodies, the purge log and the index to us. What a page cache needs is
//! simpler than either: append, read at an offset, drop the oldest, and a small durable log
//! of purges. `crc32fast` (hardware CRC-32) checks every byte.
//!
//! # On disk
//!
//! - `segments/NNNNNNNNNN.seg`: append-only files of object [`record`]s (header with its own
//!   checksum, head, body, body checksum). A record's `seq` is its segment id << 32 plus its
//!   place in the segment, so seqs grow across restarts. One writer thread appends; a
//!   segment is sealed past 1/16 of the capacity (64 KiB to 256 MiB).
//! - `purges.log`: records of purges: tombstones (the seqs a hard purge killed), soft marks,
//!   `all` boundaries (every record with a smaller seq is dead, O(1)), and selector purges
//!   that came while the index was being rebuilt. Appended and `fdatasync`ed before the purge
//!   is acknowledged; rewritten (atomically) after each rebuild to what still matters.
//!
//! # Start
//!
//! The purge log is loaded (small), the segments listed, and a new segment started at once:
//! the store serves and stores immediately. A background thread reads the old segments'
//! headers and heads (never bodies) back into the index, oldest first, judging each record
//! against the purge log; time is linear in the records. Until it is done, disk lookups miss
//! (the origin answers), and every purge is also logged as a selector purge that the rebuild
//! applies to each record it reads afterwards, so no purge sent during the rebuild is lost,
//! even if the process dies before the rebuild ends.
//!
//! # Crash safety
//!
//! - A torn write (the process dies mid-append) fails its lengths or checksums: it is cut off
//!   at the next start and never served. Every record read to serve is checked whole (header,
//!   head and body checksums, and its seq against the index); a damaged one is dropped and
//!   counted (`vanish_disk_damaged_total`).
//! - A purge is durable when acknowledged. If the purge log cannot be written, every segment
//!   is deleted instead (data is lost, the purge is not); if even that fails the purge
//!   answers an error.
//! - Inserts are written to the page cache at once (a `kill -9` loses nothing acknowledged)
//!   and synced every second and when a segment is sealed.
//! - A damaged purge log (other than a torn tail) makes every older object count as purged.
//! - An I/O error or a full disk turns writing off ("degraded": a log line, the
//!   `vanish_disk_degraded` gauge, `/healthz` says why); memory keeps serving; writing is
//!   retried every 30 s.
//!
//! # Admission and eviction
//!
//! By default an object is written on its second request ([`Admit::Second`]): a hit in
//! memory, or a refill of a variant seen before, tracked by a bounded doorkeeper; one-hit
//! wonders never reach the disk. [`Admit::First`] writes every stored object. Past the
//! capacity the oldest segment is deleted with its index entries (FIFO, as a log-structured
//! cache does; no compaction, so each byte is written once: write amplification is the
//! record framing plus the purge log, reported as metrics). Expired objects leave the index
//! every second.
//!
//! Not done: bodies are held whole in memory while written and read (no streaming of large
//! objects), and the Redis store's L1 has no disk tier beneath it.
//!
//! ```no_run
//! use vanish_disk::{DiskConfig, HybridStore};
//! use vanish_memory::MemoryStore;
//! use vanish_engine::Store;
//! let store = HybridStore::open(
//!     MemoryStore::new(64 * 1024 * 1024),
//!     &DiskConfig::new("/var/cache/vanish", 10 << 30),
//! )?;
//! assert_eq!(store.name(), "memory+disk");
//! # Ok::<(), std::io::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod codec;
mod hybrid;
pub mod index;
mod metrics;
pub mod purge_log;
mod rebuild;
pub mod record;
pub mod segments;
mod state;
mod tier;
mod wire;
mod writer;

pub use admission::Admit;
pub use hybrid::HybridStore;
pub use metrics::Counters;
pub use tier::{DiskConfig, DiskStats, DiskTier};
