//! # vanish-engine
//!
//! The framework-agnostic core of Vanish, an HTTP page cache whose first-class feature is
//! invalidation. It works on `http` types only: the proxy binary and a `tower` Layer are thin
//! front ends over it, and stores (memory, Redis) plug in through the [`Store`] trait.
//!
//! The life of an object, one module each:
//! - [`forwarding`]: what of a client's request travels on (the entrance every request passes);
//! - [`key`] and [`variant`]: which resource and which variant a request names;
//! - [`freshness`]: whether a response may be stored, and for how long it is fresh;
//! - [`cache`]: lookup, fill (with coalescing), revalidation and delivery;
//! - [`store`]: where objects live; [`index`] and [`purge_log`]: how purges find them in
//!   O(matched) and how read-after-purge holds;
//! - [`selector`] and [`invalidator`]: what a purge names, and the handle that runs it.
//!
//! Beside them, [`settings`]: how every front end writes sizes and durations, errors naming keys.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod cache;
pub mod cache_status;
pub mod coalesce;
pub mod config;
pub mod forwarding;
pub mod freshness;
pub mod headers;
pub mod index;
pub mod invalidator;
pub mod key;
pub mod object;
pub mod origin;
pub mod policy;
pub mod purge_log;
pub mod selector;
pub mod settings;
pub mod store;
pub mod tags;
pub mod variant;

pub use body::{BoxError, CacheBody};
pub use cache::Cache;
pub use config::CacheConfig;
pub use invalidator::{Invalidator, PurgeError};
pub use key::{ResourceKey, Scheme};
pub use object::CachedObject;
pub use origin::{Origin, OriginError};
pub use policy::{DefaultPolicy, KeyPolicy, RulesPolicy};
pub use selector::{PurgeMode, PurgeRequest, Selector, SelectorError};
pub use store::{PurgeReport, Store, StoreError, StoreStats};
