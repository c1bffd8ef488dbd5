//! # vanish-engine
//!
//! The framework-agnostic core of Vanish, an HTTP page cache whose first-class feature is
//! invalidation. It works on `http` types only: the proxy binary and a `tower` Layer are thin
//! front ends over it, and stores (memory, Redis) plug in through the [`Store`] trait.
//!
//! The life of an object, one module each (`docs/architecture.md` is the map):
//! - [`url`]: the canonical form of a URL (the ground floor every other module builds on);
//! - [`forwarding`]: what of a client's request travels on (the entrance every request passes);
//! - [`key`] and [`variant`]: which resource and which variant a request names;
//! - [`object`]: what is stored (a [`object::Head`] and a body);
//! - [`directives`]: the syntax of `Cache-Control` and the targeted fields of RFC 9213;
//! - [`lifetime`]: the directives in force, freshness lifetime and age of a response;
//! - [`freshness`]: whether a response may be stored, and for how long it is fresh;
//! - [`policy`]: how a request becomes a key, per route;
//! - [`purge`]: invalidation: what a purge names, its dialects, the index that finds matches in
//!   O(matched) and the log that keeps read-after-purge;
//! - [`store`]: where objects live; [`invalidator`]: the handle every purge runs through;
//! - [`cache`]: lookup, fill (with coalescing), admission, revalidation, delivery, forwarding;
//! - [`coding`], [`decode`] and [`compress`]: content codings (`br`, `gzip`, identity): what
//!   a client accepts, decoding for clients that accept neither, compressing at store time.
//!
//! Beside them, [`settings`]: how every front end writes sizes and durations, errors naming keys.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod cache;
pub mod cache_status;
pub mod coalesce;
pub mod coding;
pub mod compress;
pub mod config;
pub mod decode;
pub mod directives;
pub mod forwarding;
pub mod freshness;
pub mod headers;
pub mod invalidator;
pub mod key;
pub mod lifetime;
pub mod object;
pub mod origin;
pub mod policy;
pub mod preconditions;
pub mod purge;
pub mod settings;
pub mod store;
pub mod url;
pub mod validators;
pub mod variant;
pub mod vary_normalize;

pub use body::{BoxError, CacheBody};
pub use cache::Cache;
pub use config::CacheConfig;
pub use invalidator::{Invalidator, PurgeError};
pub use key::ResourceKey;
pub use object::CachedObject;
pub use origin::{Origin, OriginError};
pub use policy::{DefaultPolicy, KeyPolicy, RulesPolicy};
pub use purge::{PurgeMode, PurgeRequest, Selector, SelectorError};
pub use store::{PurgeReport, Store, StoreError, StoreStats};
pub use url::Scheme;
