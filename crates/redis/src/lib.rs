//! # vanish-redis
//!
//! A Redis/Valkey store for Vanish (standalone or Cluster), so several nodes share one cache
//! and a purge on any node takes effect on all of them.
//!
//! - Objects, and the invalidation indexes beside them (by tag, by host and ordered path, by
//!   path), live in Redis and are changed together by Lua scripts ([`scripts`]), one bucket
//!   (one Cluster slot) per call ([`layout`]). Index entries expire with their objects and are
//!   pruned, so nothing leaks.
//! - A purge takes a sequence number, runs in every bucket it may touch (logging itself there
//!   for fills still running: read-after-purge), is applied to this node's L1 and published to
//!   the others, then acknowledged. Acknowledged means durable in Redis.
//! - An optional in-memory L1 per node ([`l1`]) is served only under a lease that bounds how
//!   long after a purge's acknowledgement it can still serve a purged object ([`notify`]).
//! - When Redis is unreachable the store says so ([`vanish_engine::Store::health`]), lookups
//!   miss (or hit the L1), purges fail with an error (503 at the admin API), and the client
//!   reconnects by itself.
//!
//! See `docs/redis.md` for the key layout and the guarantees.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod epochs;
mod error;
pub mod l1;
pub mod layout;
pub mod messages;
pub mod notify;
pub mod scripts;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use config::RedisConfig;
pub use store::RedisStore;
