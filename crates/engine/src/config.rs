//! Engine settings: what a front end (proxy, `tower` Layer) tells the engine.
//!
//! Owns plain values with their defaults; how sizes and durations are written is
//! [`crate::settings`], and reading TOML or flags belongs to the front ends.

use std::time::Duration;

use crate::forwarding::Forwarding;
use crate::purge::tags::TagHeader;
use crate::url::Scheme;

/// Settings of a [`crate::Cache`].
///
/// ```
/// use vanish_engine::CacheConfig;
/// let cfg = CacheConfig { max_object_size: 1 << 20, ..CacheConfig::default() };
/// assert!(!cfg.store_set_cookie);
/// ```
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Scheme the cache's clients use (keys record it; `https` behind a TLS terminator).
    pub scheme: Scheme,
    /// Responses with bodies larger than this are streamed through and not stored.
    pub max_object_size: usize,
    /// Store responses that carry `Set-Cookie` (the header is kept). Off by default.
    pub store_set_cookie: bool,
    /// `stale-while-revalidate` applied when a response gives none.
    pub default_stale_while_revalidate: Duration,
    /// `stale-if-error` applied when a response gives none.
    pub default_stale_if_error: Duration,
    /// How long a stale object with a validator is kept for revalidation.
    pub keep: Duration,
    /// Heuristic freshness as a fraction of the `Last-Modified` age (0: off, the default, so
    /// a response without explicit freshness is not stored).
    pub heuristic_fraction: f32,
    /// Response headers read for tags.
    pub tag_headers: Vec<TagHeader>,
    /// Remove the tag headers from responses sent to clients.
    pub strip_tag_headers: bool,
    /// Name used in `Cache-Status` and `Via`.
    pub name: String,
    /// Longest wait for the next piece of an origin body before the fill fails.
    pub origin_body_timeout: Duration,
    /// Most tags one object may carry; a response with more is not stored (a silently
    /// dropped tag would make a later purge miss it).
    pub max_tags: usize,
    /// Longest tag in bytes; a response with a longer one is not stored.
    pub max_tag_bytes: usize,
    /// Who may set forwarding headers (`X-Forwarded-*`, `Forwarded`, ...): by default nobody,
    /// so every client-sent one is dropped (see [`crate::forwarding`]).
    pub forwarding: Forwarding,
    /// Most range-specs a client's `Range` header may hold; a header with more is ignored
    /// and the whole response is served (RFC 9110 section 14.2 allows it).
    pub max_ranges: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            scheme: Scheme::Http,
            max_object_size: 16 * 1024 * 1024,
            store_set_cookie: false,
            default_stale_while_revalidate: Duration::ZERO,
            default_stale_if_error: Duration::ZERO,
            keep: Duration::from_secs(600),
            heuristic_fraction: 0.0,
            tag_headers: TagHeader::all_default(),
            strip_tag_headers: true,
            name: "vanish".to_owned(),
            origin_body_timeout: Duration::from_secs(30),
            max_tags: 256,
            max_tag_bytes: 512,
            forwarding: Forwarding::default(),
            max_ranges: 100,
        }
    }
}
