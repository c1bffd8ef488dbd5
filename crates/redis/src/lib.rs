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
//!
//! ## Layers
//!
//! A module imports only modules of lower layers (none of its own layer, none above):
//!
//! 1. Foundations, importing no module of the crate: [`config`] (settings), [`layout`] (key
//!    and channel names), [`wire`] (purge requests as text), [`codec`] (objects as bytes),
//!    [`scripts`] (the Lua scripts), [`epochs`] (this node's epochs), `error` (the words of
//!    every store error), `ticks` (the beat of periodic tasks).
//! 2. [`messages`] (node-to-node messages; imports `wire`), `connection` (the clients and
//!    whether Redis can be reached; `config`, `error`), [`l1`] (the in-memory tier, its lease
//!    and the epochs; `epochs`).
//! 3. `l2` (Redis as the shared tier; `codec`, `config`, `connection`, `error`, `layout`,
//!    `scripts`, `wire`) and [`notify`] (purge messages in, heartbeats out; `connection`,
//!    `l1`, `layout`, `messages`, `ticks`).
//! 4. `housekeeping` (the one-second sweep; `error`, `l1`, `l2`, `ticks`).
//! 5. `store`: [`RedisStore`], composing all of them.
//!
//! `testing` (built with the `testing` feature only: real `redis-server` processes for tests)
//! stands apart and imports nothing of the crate.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod config;
mod connection;
pub mod epochs;
mod error;
mod housekeeping;
pub mod l1;
mod l2;
pub mod layout;
pub mod messages;
pub mod notify;
pub mod scripts;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod ticks;
pub mod wire;

pub use config::RedisConfig;
pub use store::RedisStore;
