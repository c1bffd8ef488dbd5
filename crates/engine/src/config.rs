//! Engine settings: what a front end (proxy, `tower` Layer) tells the engine.
//!
//! Owns plain values with their defaults; how sizes and durations are written is
//! [`crate::settings`], and reading TOML or flags belongs to the front ends.

use std::time::Duration;

use http::HeaderName;

use crate::compress::Compression;
use crate::decode::DecodeLimits;
use crate::forwarding::Forwarding;
use crate::purge::tags::TagHeader;
use crate::url::Scheme;
use crate::vary_normalize::ValueForm;

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
    /// Heuristic freshness (RFC 9111 section 4.2.2) as a fraction of the time since
    /// `Last-Modified`, for heuristically cacheable statuses only (0: off, the default, so a
    /// response without explicit freshness is not stored).
    pub heuristic_fraction: f32,
    /// The longest heuristic freshness lifetime.
    pub heuristic_max: Duration,
    /// The cache-specific targeted field (RFC 9213) that overrides `CDN-Cache-Control` and
    /// `Cache-Control` for this cache; never sent to clients. Default `vanish-cache-control`.
    pub targeted_field: HeaderName,
    /// Honour a client's `no-cache`, `Pragma: no-cache`, `max-age` and `min-fresh` by
    /// revalidating a fresh stored response (the default). `false`: any client can no longer
    /// make the cache go to the origin for a fresh object (a shared cache's load guard).
    pub client_revalidation: bool,
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
    /// How requests' values for `Vary` names are compared: in their meaning-preserving normal
    /// form (the default; see [`crate::vary_normalize`]) or byte for byte.
    pub vary_values: ValueForm,
    /// Most range-specs a client's `Range` header may hold; a header with more is ignored
    /// and the whole response is served (RFC 9110 section 14.2 allows it).
    pub max_ranges: usize,
    /// Compression of identity responses at store time (off by default).
    pub compression: Compression,
    /// Bounds a stored `gzip`/`br` body must keep once decoded; one that breaks them, or
    /// does not decode, is not stored.
    pub decode_limits: DecodeLimits,
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
            heuristic_max: Duration::from_secs(24 * 3600),
            targeted_field: HeaderName::from_static("vanish-cache-control"),
            client_revalidation: true,
            tag_headers: TagHeader::all_default(),
            strip_tag_headers: true,
            name: "vanish".to_owned(),
            origin_body_timeout: Duration::from_secs(30),
            max_tags: 256,
            max_tag_bytes: 512,
            forwarding: Forwarding::default(),
            vary_values: ValueForm::Normal,
            max_ranges: 100,
            compression: Compression::default(),
            decode_limits: DecodeLimits::default(),
        }
    }
}
