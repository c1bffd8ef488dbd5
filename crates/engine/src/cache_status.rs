//! The RFC 9211 `Cache-Status` header value, built from what happened to a request.
//!
//! Owns the header's syntax only.

use http::{HeaderName, HeaderValue};

/// The header carrying the RFC 9211 cache status.
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Why the request went forward (RFC 9211 section 2.2 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// Not in cache.
    Miss,
    /// In cache but stale.
    Stale,
    /// The request's directives asked for it.
    Request,
    /// The method is not cached.
    Method,
    /// The cache was configured not to serve from cache.
    Bypass,
}

impl Fwd {
    fn as_str(self) -> &'static str {
        match self {
            Fwd::Miss => "miss",
            Fwd::Stale => "stale",
            Fwd::Request => "request",
            Fwd::Method => "method",
            Fwd::Bypass => "bypass",
        }
    }
}

/// What the cache did, as `Cache-Status` says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// Served from cache without going forward.
    pub hit: bool,
    /// Why it went forward.
    pub fwd: Option<Fwd>,
    /// The status the origin answered.
    pub fwd_status: Option<u16>,
    /// Freshness left (negative: stale), for served objects.
    pub ttl: Option<i64>,
    /// The response was stored.
    pub stored: bool,
    /// Free-form detail (e.g. `stale-while-revalidate`, `set-cookie`).
    pub detail: Option<&'static str>,
}

impl CacheStatus {
    /// A hit with `ttl` seconds left.
    pub fn hit(ttl: i64) -> Self {
        CacheStatus {
            hit: true,
            ttl: Some(ttl),
            ..Default::default()
        }
    }

    /// Forwarded for `fwd`.
    pub fn forward(fwd: Fwd) -> Self {
        CacheStatus {
            fwd: Some(fwd),
            ..Default::default()
        }
    }

    /// Adds a detail.
    pub fn detail(mut self, d: &'static str) -> Self {
        self.detail = Some(d);
        self
    }

    /// The header value, prefixed by the cache's name.
    ///
    /// ```
    /// use vanish_engine::cache_status::{CacheStatus, Fwd};
    /// let mut s = CacheStatus::forward(Fwd::Miss);
    /// s.fwd_status = Some(200);
    /// s.stored = true;
    /// assert_eq!(s.to_header("vanish").to_str().unwrap(), "vanish; fwd=miss; fwd-status=200; stored");
    /// ```
    pub fn to_header(&self, name: &str) -> HeaderValue {
        let mut s = String::with_capacity(48);
        s.push_str(name);
        if self.hit {
            s.push_str("; hit");
        }
        if let Some(f) = self.fwd {
            s.push_str("; fwd=");
            s.push_str(f.as_str());
        }
        if let Some(st) = self.fwd_status {
            s.push_str("; fwd-status=");
            s.push_str(&st.to_string());
        }
        if let Some(ttl) = self.ttl {
            s.push_str("; ttl=");
            s.push_str(&ttl.to_string());
        }
        if self.stored {
            s.push_str("; stored");
        }
        if let Some(d) = self.detail {
            s.push_str("; detail=");
            s.push_str(d);
        }
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("vanish"))
    }
}
