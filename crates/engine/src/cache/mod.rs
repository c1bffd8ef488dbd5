//! The cache: one request's path through lookup, fill, store and delivery.
//!
//! Owns what happens to a request the cache handles: a `GET`/`HEAD` ([`Cache::serve`]), a
//! request the front end forwards itself ([`Cache::begin_forward`], [`Cache::finish_forward`])
//! and the invalidations an unsafe method triggers ([`Cache::after_unsafe`]). Each stage of an
//! object's life has its own file, each adding methods to the [`Cache`] handle
//! (`handle.rs`):
//!
//! | file | stage |
//! |---|---|
//! | `serve.rs` | the order of the stages, coalescing, pass-through |
//! | `lookup.rs` | find the variant a request selects and judge it |
//! | `fill.rs` | fetch from the origin, stream to the client, keep a copy |
//! | `admission.rs` | what of a response an object keeps (the one way objects are built) |
//! | `revalidate.rs` | `304` refreshes and background refresh |
//! | `deliver.rs` | the client's response: `Age`, `Cache-Status`, `304`s, errors |
//! | `range.rs` | `Range`/`If-Range` on stored `200`s: `206`, multipart, `416` |
//! | `forward.rs` | requests the front end sends itself (unsafe methods) |
//! | `unsafe_methods.rs` | RFC 9111 section 4.4 invalidation |
//!
//! The stages never talk to a socket: the front end passes an [`crate::Origin`] and writes
//! the returned response. No stage imports this file; they import `handle.rs` and each other
//! downward (serve, revalidate and forward above fill, fill above admission, lookup and
//! deliver).

mod admission;
mod deliver;
mod fill;
mod forward;
mod handle;
mod lookup;
mod range;
mod revalidate;
mod serve;
mod unsafe_methods;

pub use forward::Forward;
pub use handle::Cache;
pub use lookup::Judgement;
