//! Engine settings: what a front end (proxy, `tower` Layer) tells the engine.
//!
//! Owns plain values with their defaults, and the size syntax (`"256MiB"`) every front end's
//! settings share ([`parse_size`]); reading TOML or flags belongs to the front ends.

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
        }
    }
}

/// Parses a size as written in settings: `1024`, `64KiB`/`64K`, `256MiB`/`256M`, `1GiB`/`1G`
/// (powers of two), `10KB`, `10MB`, `2GB` (powers of ten); `name` is the setting, for the error.
///
/// ```
/// use vanish_engine::config::parse_size;
/// assert_eq!(parse_size("memory.capacity", "256MiB"), Ok(256 << 20));
/// assert_eq!(parse_size("memory.capacity", "10MB"), Ok(10_000_000));
/// assert_eq!(
///     parse_size("memory.capacity", "5 parsecs").unwrap_err(),
///     "memory.capacity: unknown size unit in \"5 parsecs\""
/// );
/// ```
pub fn parse_size(name: &str, text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{name}: {text:?} is not a size such as \"256MiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{name}: unknown size unit in {text:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{name}: {text:?} is too large"))
}
