//! Purge selectors: what a purge names, built in Rust or parsed by [`super::dialects`].
//!
//! Owns the selector model (url, path, prefix, tag, host, all, each with an optional header
//! filter; the table is in [`super`]), the [`PurgeRequest`] and its builders, validation
//! with errors naming the field, and the exact matching rule ([`Selector::matches`]) every
//! index and test agrees on. Finding candidates fast belongs to [`super::index`].

use std::fmt;

use http::HeaderName;

use crate::key::ResourceKey;
use crate::object::ObjectMeta;
use crate::url::{canonical_encoding, encode_unsafe, host_matches, normalize_host, normalize_path};

/// Which queries a `url` or `path` selector matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryMatch {
    /// Exactly this query (`None`: no query string).
    Exact(Option<String>),
    /// Any query string, or none.
    Any,
}

impl QueryMatch {
    fn matches(&self, q: Option<&str>) -> bool {
        match self {
            QueryMatch::Any => true,
            QueryMatch::Exact(want) => want.as_deref() == q,
        }
    }
}

/// What a selector names, before the optional header filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One host's path (all schemes), with a query rule.
    Url {
        /// Normalised host (with non-default port).
        host: String,
        /// The path.
        path: String,
        /// The query rule.
        query: QueryMatch,
    },
    /// A path on any scheme and host.
    Path {
        /// The path.
        path: String,
        /// The query rule.
        query: QueryMatch,
    },
    /// Every path starting with `prefix`, optionally on one host.
    Prefix {
        /// The path prefix.
        prefix: String,
        /// Restrict to this normalised host (without a port: on every port).
        host: Option<String>,
    },
    /// Every object carrying this tag.
    Tag(String),
    /// Everything of one normalised host (without a port: on every port).
    Host(String),
    /// Everything.
    All,
}

/// One selector of a purge: a target and an optional filter on variant header values.
///
/// ```
/// use vanish_engine::Selector;
/// let s = Selector::path("/news").any_query().header("Accept-Language", "fr");
/// assert_eq!(s.kind(), "path");
/// let u = Selector::url("https://example.com/a?b=1").unwrap();
/// assert_eq!(u.kind(), "url");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// What is named.
    pub target: Target,
    /// Only variants whose request had exactly these values (an object that does not vary on
    /// a header serves every value of it, so it matches).
    pub headers: Vec<(HeaderName, String)>,
}

/// A selector or purge request that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// JSON path of the field, e.g. `selectors[0].url`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl SelectorError {
    /// An error for `field` (a JSON path or header name; empty for the whole body).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SelectorError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for SelectorError {}

impl Selector {
    fn of(target: Target) -> Self {
        Selector {
            target,
            headers: Vec::new(),
        }
    }

    /// One URL (exact query; all variants). Any scheme: `http://h/p` and `https://h/p` are
    /// the same page to a purge.
    pub fn url(url: &str) -> Result<Self, SelectorError> {
        let key = ResourceKey::parse_url(&encode_unsafe(url))
            .map_err(|e| SelectorError::new("url", e.to_string()))?;
        Ok(Self::of(Target::Url {
            host: key.host().to_owned(),
            path: normalize_path(key.path()),
            query: QueryMatch::Exact(key.query().map(canonical_encoding)),
        }))
    }

    /// Exactly the URL of `key` (its query, every variant and scheme), as a purge of one
    /// page names it.
    pub fn for_key(key: &ResourceKey) -> Self {
        Self::of(Target::Url {
            host: key.host().to_owned(),
            path: key.path().to_owned(),
            query: QueryMatch::Exact(key.query().map(str::to_owned)),
        })
    }

    /// A path on any host (no query unless [`Selector::query`] or [`Selector::any_query`]).
    pub fn path(path: &str) -> Self {
        let path = if path.starts_with('/') {
            normalize_path(&encode_unsafe(path))
        } else {
            path.to_owned() // refused by validate()
        };
        Self::of(Target::Path {
            path,
            query: QueryMatch::Exact(None),
        })
    }

    /// Every path starting with `prefix`, on any host (see [`Selector::on_host`]).
    pub fn prefix(prefix: &str) -> Self {
        Self::of(Target::Prefix {
            prefix: canonical_encoding(&encode_unsafe(prefix)),
            host: None,
        })
    }

    /// Every object carrying `tag`.
    pub fn tag(tag: &str) -> Self {
        Self::of(Target::Tag(tag.to_owned()))
    }

    /// Everything of one host.
    pub fn host(host: &str) -> Self {
        Self::of(Target::Host(normalize_host(host)))
    }

    /// Everything.
    pub fn all() -> Self {
        Self::of(Target::All)
    }

    /// Match every query string of a `url` or `path` selector.
    pub fn any_query(mut self) -> Self {
        match &mut self.target {
            Target::Url { query, .. } | Target::Path { query, .. } => *query = QueryMatch::Any,
            _ => {}
        }
        self
    }

    /// Match exactly this query string (without `?`) on a `path` selector.
    pub fn query(mut self, q: &str) -> Self {
        if let Target::Path { query, .. } = &mut self.target {
            let q = q.strip_prefix('?').unwrap_or(q);
            *query = QueryMatch::Exact(Some(canonical_encoding(&encode_unsafe(q))));
        }
        self
    }

    /// Restrict a `prefix` selector to one host.
    pub fn on_host(mut self, h: &str) -> Self {
        if let Target::Prefix { host, .. } = &mut self.target {
            *host = Some(normalize_host(h));
        }
        self
    }

    /// Only variants whose request had exactly `value` for header `name`.
    ///
    /// # Panics
    /// If `name` is not a valid header name (JSON input is validated instead).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        self.headers.push((name, value.to_owned()));
        self
    }

    /// The selector type as in JSON (`url`, `path`, `prefix`, `tag`, `host`, `all`).
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Url { .. } => "url",
            Target::Path { .. } => "path",
            Target::Prefix { .. } => "prefix",
            Target::Tag(_) => "tag",
            Target::Host(_) => "host",
            Target::All => "all",
        }
    }

    /// Checks the selector can match something; the error names the field.
    pub fn validate(&self) -> Result<(), SelectorError> {
        match &self.target {
            Target::Path { path, .. } if !path.starts_with('/') => {
                Err(SelectorError::new("path", "must start with '/'"))
            }
            Target::Path { path, .. } if path.contains(['?', '#']) => Err(SelectorError::new(
                "path",
                "must not contain '?' or '#' (give the query in \"query\", or use \"any_query\")",
            )),
            Target::Prefix { prefix, .. } if !prefix.starts_with('/') => {
                Err(SelectorError::new("prefix", "must start with '/'"))
            }
            Target::Tag(t) if t.is_empty() => Err(SelectorError::new("tag", "must not be empty")),
            Target::Host(h) if h.is_empty() => Err(SelectorError::new("host", "must not be empty")),
            Target::Host(h) | Target::Prefix { host: Some(h), .. }
                if h.contains(['/', '?', '#', ' ', '@']) =>
            {
                Err(SelectorError::new(
                    "host",
                    "must be a host name, optionally with a port (not a URL)",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The exact rule: does this selector match the object?
    pub fn matches(&self, meta: &ObjectMeta) -> bool {
        let key = &meta.key;
        let target = match &self.target {
            Target::Url { host, path, query } => {
                key.host() == host && key.path() == path && query.matches(key.query())
            }
            Target::Path { path, query } => key.path() == path && query.matches(key.query()),
            Target::Prefix { prefix, host } => {
                key.path().starts_with(prefix.as_str())
                    && host.as_deref().is_none_or(|h| host_matches(h, key.host()))
            }
            Target::Tag(t) => meta.tags.iter().any(|x| **x == **t),
            Target::Host(h) => host_matches(h, key.host()),
            Target::All => true,
        };
        target && self.headers_match(meta)
    }

    /// The header filter alone.
    pub fn headers_match(&self, meta: &ObjectMeta) -> bool {
        self.headers
            .iter()
            .all(|(name, want)| match meta.vary_value(name) {
                None => true,
                Some(got) => got == Some(want.as_str()),
            })
    }
}

/// Remove objects, or keep them marked stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PurgeMode {
    /// Remove matched objects (the default).
    #[default]
    Hard,
    /// Keep matched objects but mark them stale: the next request revalidates, or is served
    /// stale only where `stale-while-revalidate` allows.
    Soft,
}

impl PurgeMode {
    /// `hard` or `soft`.
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeMode::Hard => "hard",
            PurgeMode::Soft => "soft",
        }
    }
}

/// One purge: the union of its selectors' matches.
///
/// ```
/// use vanish_engine::{PurgeRequest, PurgeMode};
/// let r = PurgeRequest::from_json(br#"{"selectors":[{"type":"tag","tag":"post-1"}],"mode":"soft"}"#).unwrap();
/// assert_eq!(r.mode, PurgeMode::Soft);
/// let e = PurgeRequest::from_json(br#"{"selectors":[{"type":"nope"}]}"#).unwrap_err();
/// assert_eq!(e.field, "selectors[0].type");
/// ```
///
/// Built in Rust with [`PurgeRequest::new`] and its builders:
///
/// ```
/// use vanish_engine::{PurgeMode, PurgeRequest, Selector};
/// let r = PurgeRequest::new(vec![Selector::tag("post-1"), Selector::prefix("/blog/")])
///     .soft()
///     .dry_run();
/// assert_eq!((r.mode, r.dry_run), (PurgeMode::Soft, true));
/// ```
#[derive(Debug, Clone)]
pub struct PurgeRequest {
    /// What to purge.
    pub selectors: Vec<Selector>,
    /// Hard or soft.
    pub mode: PurgeMode,
    /// Count only; change nothing.
    pub dry_run: bool,
    /// Its selectors were checked where it came in (a parsed dialect), as they were then.
    checked: bool,
}

impl PartialEq for PurgeRequest {
    /// Requests are equal when they purge the same way (whether checked yet does not count).
    fn eq(&self, other: &Self) -> bool {
        (&self.selectors, self.mode, self.dry_run) == (&other.selectors, other.mode, other.dry_run)
    }
}

impl Eq for PurgeRequest {}

impl From<Selector> for PurgeRequest {
    /// A hard purge of one selector.
    fn from(selector: Selector) -> Self {
        PurgeRequest::new(vec![selector])
    }
}

impl PurgeRequest {
    /// Heap bytes this request holds (its selectors' strings and vectors), for bounds on
    /// what keeps requests (the purge log).
    pub fn heap_size(&self) -> usize {
        let s = |s: &String| s.capacity();
        let q = |q: &QueryMatch| match q {
            QueryMatch::Exact(Some(v)) => v.capacity(),
            _ => 0,
        };
        self.selectors.capacity() * std::mem::size_of::<Selector>()
            + self
                .selectors
                .iter()
                .map(|sel| {
                    let target = match &sel.target {
                        Target::Url { host, path, query } => s(host) + s(path) + q(query),
                        Target::Path { path, query } => s(path) + q(query),
                        Target::Prefix { prefix, host } => s(prefix) + host.as_ref().map_or(0, s),
                        Target::Tag(t) | Target::Host(t) => s(t),
                        Target::All => 0,
                    };
                    let headers = sel.headers.capacity()
                        * std::mem::size_of::<(HeaderName, String)>()
                        + sel
                            .headers
                            .iter()
                            .map(|(n, v)| n.as_str().len() + v.capacity())
                            .sum::<usize>();
                    target + headers
                })
                .sum::<usize>()
    }

    /// A hard purge of these selectors.
    pub fn new(selectors: Vec<Selector>) -> Self {
        PurgeRequest {
            selectors,
            mode: PurgeMode::Hard,
            dry_run: false,
            checked: false,
        }
    }

    /// The same request, soft: matched objects are kept, marked stale.
    pub fn soft(self) -> Self {
        self.with_mode(PurgeMode::Soft)
    }

    /// The same request with this mode.
    pub fn with_mode(mut self, mode: PurgeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same request as a dry run: count what it matches, change nothing.
    pub fn dry_run(self) -> Self {
        self.with_dry_run(true)
    }

    /// The same request, a dry run or not.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Checks every selector; an empty list is an error. Fields are named
    /// `selectors[i].field`.
    pub fn validate(&self) -> Result<(), SelectorError> {
        self.validate_naming(|i, f| format!("selectors[{i}].{f}"))
    }

    /// [`PurgeRequest::validate`], naming the field of selector `i` with `field(i, name)`
    /// (each dialect names its fields its own way).
    fn validate_naming(&self, field: impl Fn(usize, &str) -> String) -> Result<(), SelectorError> {
        if self.selectors.is_empty() {
            return Err(SelectorError::new("selectors", "must not be empty"));
        }
        for (i, s) in self.selectors.iter().enumerate() {
            s.validate()
                .map_err(|e| SelectorError::new(field(i, &e.field), e.message))?;
        }
        Ok(())
    }

    /// Checks the request once, where it comes in (a dialect's parser), and remembers it:
    /// [`PurgeRequest::checked`] does not check it again.
    pub(crate) fn check_naming(
        mut self,
        field: impl Fn(usize, &str) -> String,
    ) -> Result<Self, SelectorError> {
        self.validate_naming(field)?;
        self.checked = true;
        Ok(self)
    }

    /// The request, checked: as it was where it came in, or now if it was built in Rust.
    pub(crate) fn checked(self) -> Result<Self, SelectorError> {
        if self.checked {
            return Ok(self);
        }
        self.check_naming(|i, f| format!("selectors[{i}].{f}"))
    }

    /// True when any selector matches the object.
    pub fn matches(&self, meta: &ObjectMeta) -> bool {
        self.selectors.iter().any(|s| s.matches(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn meta(url: &str, vary: &[(&str, Option<&str>)], tags: &[&str]) -> ObjectMeta {
        ObjectMeta {
            id: 1,
            key: ResourceKey::parse_url(url).unwrap(),
            vary_values: vary
                .iter()
                .map(|(n, v)| {
                    (
                        HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        v.map(str::to_owned),
                    )
                })
                .collect(),
            tags: tags.iter().map(|t| Arc::<str>::from(*t)).collect(),
        }
    }

    #[test]
    fn matching_rules() {
        let m = meta(
            "https://a.example/p?x=1",
            &[("accept-language", Some("fr"))],
            &["t1"],
        );
        let yes = [
            Selector::url("http://a.example/p?x=1").unwrap(),
            Selector::url("https://A.example:443/p")
                .unwrap()
                .any_query(),
            Selector::path("/p").query("x=1"),
            Selector::path("/p").any_query(),
            Selector::prefix("/"),
            Selector::prefix("/p").on_host("a.example"),
            Selector::tag("t1"),
            Selector::host("a.example"),
            Selector::all(),
            Selector::path("/p")
                .any_query()
                .header("accept-language", "fr"),
            Selector::path("/p").any_query().header("x-other", "v"),
        ];
        for s in yes {
            assert!(s.matches(&m), "{s:?}");
        }
        let no = [
            Selector::url("https://a.example/p").unwrap(),
            Selector::url("https://b.example/p?x=1").unwrap(),
            Selector::path("/p"),
            Selector::path("/p/").any_query(),
            Selector::prefix("/q"),
            Selector::prefix("/p").on_host("b.example"),
            Selector::tag("t2"),
            Selector::host("b.example"),
            Selector::path("/p")
                .any_query()
                .header("accept-language", "en"),
        ];
        for s in no {
            assert!(!s.matches(&m), "{s:?}");
        }
        let encoded = meta("https://a.example/caf%C3%A9?q=%C3%A9", &[], &[]);
        assert!(Selector::path("/café").query("q=é").matches(&encoded));
        assert!(Selector::url("https://a.example/café?q=é")
            .unwrap()
            .matches(&encoded));
        assert!(Selector::prefix("/caf\u{e9}").matches(&encoded));
        let absent = meta("https://a.example/p", &[("accept-language", None)], &[]);
        assert!(!Selector::path("/p")
            .header("accept-language", "")
            .matches(&absent));
    }
}
