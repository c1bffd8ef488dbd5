//! Invalidation: what a purge names, how it is written, and how stores find what it matches.
//!
//! The product's headline, in one wing. A purge is a [`PurgeRequest`]: one or more
//! [`Selector`]s (their matches are united), hard or soft, optionally a dry run.
//!
//! | selector | names | built with | JSON |
//! |---|---|---|---|
//! | `url` | one URL, exact query, every variant and scheme | [`Selector::url`], [`Selector::for_key`] | `{"type":"url","url":"https://h/p?q=1"}` |
//! | `path` | a path on any host; exact query, or any with `any_query` | [`Selector::path`], [`Selector::query`], [`Selector::any_query`] | `{"type":"path","path":"/p","any_query":true}` |
//! | `prefix` | every path under a prefix, optionally on one host | [`Selector::prefix`], [`Selector::on_host`] | `{"type":"prefix","prefix":"/blog/","host":"h"}` |
//! | `tag` | every object carrying a tag (surrogate key, cache group) | [`Selector::tag`] | `{"type":"tag","tag":"post-1"}` |
//! | `host` | everything of one host (every port unless one is given) | [`Selector::host`] | `{"type":"host","host":"h"}` |
//! | `all` | everything | [`Selector::all`] | `{"type":"all"}` |
//!
//! Any selector may add `headers` (`{"Accept-Language":"fr"}`, [`Selector::header`]): only
//! the variants whose request had exactly those values.
//!
//! Files, one concern each:
//! - `selector.rs`: the model, its builders, validation and the exact matching rule;
//! - `dialects.rs`: Vanish JSON, the IETF draft's JSON, Varnish's `PURGE` method; each
//!   request is checked once, where it comes in;
//! - `index.rs`: the secondary indexes that find matches in O(matched);
//! - `log.rs`: the epoch and recent purges, so a fill that overlapped a purge is not stored
//!   fresh;
//! - `tags.rs`: reading tags from response headers.
//!
//! Running a purge against a store is [`crate::Invalidator`]'s (above the store); this wing
//! imports only keys, objects and the URL's canonical form.
//!
//! ```
//! use std::time::SystemTime;
//! use vanish_engine::{CacheConfig, CachedObject, PurgeRequest, ResourceKey, Selector};
//!
//! // An object as a store would hold it: tagged by its origin, varied on Accept-Language.
//! let key = ResourceKey::parse_url("https://example.com/news?page=2").unwrap();
//! let mut req = http::HeaderMap::new();
//! req.insert("accept-language", "fr".parse().unwrap());
//! let res = http::Response::builder()
//!     .header("cache-control", "max-age=60")
//!     .header("vary", "accept-language")
//!     .header("surrogate-key", "news")
//!     .body(bytes::Bytes::from_static(b"<h1>Nouvelles</h1>"))
//!     .unwrap();
//! let obj = CachedObject::from_response(key, &req, res, &CacheConfig::default(),
//!     SystemTime::now()).unwrap();
//!
//! // The path with any query, only the French variants: matches.
//! let fr = PurgeRequest::from_json(br#"{"selectors":[{"type":"path","path":"/news",
//!     "any_query":true,"headers":{"Accept-Language":"fr"}}]}"#).unwrap();
//! assert!(fr.matches(&obj.meta));
//! // The same, built in Rust, soft: still matches; the German variants do not.
//! let de = PurgeRequest::new(vec![Selector::path("/news").any_query().header("accept-language", "de")]).soft();
//! assert!(!de.matches(&obj.meta));
//! // Errors name the field at fault.
//! let e = PurgeRequest::from_json(br#"{"selectors":[{"type":"path","path":"news"}]}"#).unwrap_err();
//! assert_eq!(e.to_string(), "selectors[0].path: must start with '/'");
//! ```

pub mod dialects;
pub mod index;
pub mod log;
pub mod selector;
pub mod tags;

pub use selector::{PurgeMode, PurgeRequest, QueryMatch, Selector, SelectorError, Target};
