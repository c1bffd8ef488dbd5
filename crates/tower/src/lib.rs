//! # vanish-tower
//!
//! A [`tower::Layer`] that puts Vanish's cache in front of any `tower` service (an `axum`
//! `Router`, a `hyper` service), with the same engine, stores and [`Invalidator`] as the
//! `vanish` proxy. Handlers tag responses with the [`Tags`] extension (or a `Surrogate-Key`
//! header) and purge through the `Invalidator` after a write.
//!
//! Requests pass the engine's entrance rules first ([`vanish_engine::forwarding`]): a client's
//! `X-Forwarded-*`, `Forwarded` and similar headers are dropped before the inner service sees
//! a cached route's request, so no client can poison a page through them. Behind a load
//! balancer, list it in `CacheConfig::forwarding.trusted_proxies` and put the peer's address in
//! the request's [`vanish_engine::forwarding::ClientAddr`] extension (e.g. from axum's
//! `ConnectInfo`); its forwarding headers are then kept, and keyed.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{Service, ServiceExt};
//! use vanish_engine::{CacheConfig, Selector};
//! use vanish_memory::MemoryStore;
//! use vanish_tower::{CacheLayer, Tags};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = CacheLayer::new(MemoryStore::new(64 << 20), CacheConfig::default());
//! let invalidator = layer.invalidator();
//! let app = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     let mut res = Response::builder()
//!         .header("cache-control", "public, max-age=60")
//!         .body(Full::new(Bytes::from("hello")))
//!         .unwrap();
//!     res.extensions_mut().insert(Tags::new(["greetings"]));
//!     Ok::<_, Infallible>(res)
//! });
//! let mut svc = tower::Layer::layer(&layer, app);
//! let req = || Request::get("/hello").header("host", "example.com").body(Full::default()).unwrap();
//! let first = svc.ready().await.unwrap().call(req()).await.unwrap();
//! assert!(first.headers()["cache-status"].to_str().unwrap().contains("fwd=miss"));
//! let second = svc.ready().await.unwrap().call(req()).await.unwrap();
//! assert!(second.headers()["cache-status"].to_str().unwrap().contains("hit"));
//! let purged = invalidator.purge(Selector::tag("greetings")).await.unwrap();
//! assert_eq!(purged.matched, 1);
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod layer;
mod origin;
mod tags;

pub use layer::{CacheLayer, CacheService};
pub use tags::Tags;
pub use vanish_engine::{Invalidator, Selector};
