//! Purge selectors: what a purge names, parsed from JSON or built in Rust.
//!
//! Owns the selector model of design.md section 2, its JSON forms (Vanish's and the IETF
//! draft's), validation with errors naming the field, and the exact matching rule
//! ([`Selector::matches`]) every index and test agrees on. Finding candidates fast belongs to
//! [`crate::index`].

use std::fmt;

use http::HeaderName;
use serde_json::Value;

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
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
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
            .map_err(|e| SelectorError::new("url", e.0))?;
        Ok(Self::of(Target::Url {
            host: key.host().to_owned(),
            path: normalize_path(key.path()),
            query: QueryMatch::Exact(key.query().map(canonical_encoding)),
        }))
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

    /// Parses one selector object (`{"type":"url",...}`); `field` prefixes error paths.
    pub fn from_json(v: &Value, field: &str) -> Result<Self, SelectorError> {
        let obj = v
            .as_object()
            .ok_or_else(|| SelectorError::new(field, "must be an object"))?;
        let f = |name: &str| format!("{field}.{name}");
        let str_field = |name: &str| -> Result<Option<&str>, SelectorError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(SelectorError::new(f(name), "must be a string")),
            }
        };
        let required = |name: &str| -> Result<&str, SelectorError> {
            match str_field(name)? {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(SelectorError::new(f(name), "is required")),
            }
        };
        let any_query = match obj.get("any_query") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(SelectorError::new(f("any_query"), "must be true or false")),
        };
        let kind = required("type")?;
        let allowed: &[&str] = match kind {
            "url" => &["url", "any_query"],
            "path" => &["path", "any_query", "query"],
            "prefix" => &["prefix", "host"],
            "tag" => &["tag"],
            "host" => &["host"],
            "all" => &[],
            other => {
                return Err(SelectorError::new(
                    f("type"),
                    format!(
                        "unknown selector type {other:?} (expected url, path, prefix, tag, host or all)"
                    ),
                ))
            }
        };
        for k in obj.keys() {
            if k != "type" && k != "headers" && !allowed.contains(&k.as_str()) {
                return Err(SelectorError::new(
                    f(k),
                    format!("unknown field for a {kind} selector"),
                ));
            }
        }
        let mut sel = match kind {
            "url" => {
                let url = required("url")?;
                Selector::url(url).map_err(|e| SelectorError::new(f("url"), e.message))?
            }
            "path" => {
                let mut s = Selector::path(required("path")?);
                if let Some(q) = str_field("query")? {
                    if any_query {
                        return Err(SelectorError::new(
                            f("query"),
                            "cannot be combined with any_query",
                        ));
                    }
                    s = s.query(q);
                }
                s
            }
            "prefix" => {
                let mut s = Selector::prefix(required("prefix")?);
                if let Some(h) = str_field("host")? {
                    s = s.on_host(h);
                }
                s
            }
            "tag" => Selector::tag(required("tag")?),
            "host" => Selector::host(required("host")?),
            _ => Selector::all(),
        };
        if any_query {
            sel = sel.any_query();
        }
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (name, value) in h {
                    let hn = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        SelectorError::new(f("headers"), format!("invalid header name {name:?}"))
                    })?;
                    let value = value.as_str().ok_or_else(|| {
                        SelectorError::new(format!("{field}.headers.{name}"), "must be a string")
                    })?;
                    sel.headers.push((hn, value.to_owned()));
                }
            }
            Some(_) => {
                return Err(SelectorError::new(
                    f("headers"),
                    "must be an object of header name to value",
                ))
            }
        }
        sel.validate()
            .map_err(|e| SelectorError::new(f(&e.field), e.message))?;
        Ok(sel)
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRequest {
    /// What to purge.
    pub selectors: Vec<Selector>,
    /// Hard or soft.
    pub mode: PurgeMode,
    /// Count only; change nothing.
    pub dry_run: bool,
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
        }
    }

    /// Checks every selector; an empty list is an error.
    pub fn validate(&self) -> Result<(), SelectorError> {
        if self.selectors.is_empty() {
            return Err(SelectorError::new("selectors", "must not be empty"));
        }
        for (i, s) in self.selectors.iter().enumerate() {
            s.validate().map_err(|e| {
                SelectorError::new(format!("selectors[{i}].{}", e.field), e.message)
            })?;
        }
        Ok(())
    }

    /// True when any selector matches the object.
    pub fn matches(&self, meta: &ObjectMeta) -> bool {
        self.selectors.iter().any(|s| s.matches(meta))
    }

    /// Parses Vanish's JSON form (`{"selectors":[...],"mode":..,"dry_run":..}`, or one bare
    /// selector object) or the IETF draft form (`{"type":"uri",...,"selectors":["..."]}`).
    pub fn from_json(body: &[u8]) -> Result<Self, SelectorError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| SelectorError::new("", format!("body is not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| SelectorError::new("", "body must be a JSON object"))?;
        let draft_type = obj
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| matches!(*t, "uri" | "uri-prefix" | "origin" | "group"));
        if let Some(t) = draft_type {
            return Self::from_draft(t, obj);
        }
        let mode = match obj.get("mode") {
            None | Some(Value::Null) => PurgeMode::Hard,
            Some(Value::String(s)) if s == "hard" => PurgeMode::Hard,
            Some(Value::String(s)) if s == "soft" => PurgeMode::Soft,
            Some(_) => return Err(SelectorError::new("mode", "must be \"hard\" or \"soft\"")),
        };
        let dry_run = match obj.get("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(SelectorError::new("dry_run", "must be true or false")),
        };
        let selectors = if obj.contains_key("type") {
            let mut bare = obj.clone();
            bare.remove("mode");
            bare.remove("dry_run");
            vec![Selector::from_json(&Value::Object(bare), "selector")?]
        } else {
            for k in obj.keys() {
                if !matches!(k.as_str(), "selectors" | "mode" | "dry_run") {
                    return Err(SelectorError::new(k.as_str(), "unknown field"));
                }
            }
            let list = match obj.get("selectors") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(SelectorError::new("selectors", "must be an array")),
                None => return Err(SelectorError::new("selectors", "is required")),
            };
            list.iter()
                .enumerate()
                .map(|(i, s)| Selector::from_json(s, &format!("selectors[{i}]")))
                .collect::<Result<Vec<_>, _>>()?
        };
        let req = PurgeRequest {
            selectors,
            mode,
            dry_run,
        };
        req.validate()?;
        Ok(req)
    }

    fn from_draft(kind: &str, obj: &serde_json::Map<String, Value>) -> Result<Self, SelectorError> {
        let list = match obj.get("selectors") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => {
                return Err(SelectorError::new("selectors", "must not be empty"))
            }
            _ => {
                return Err(SelectorError::new(
                    "selectors",
                    "must be an array of strings",
                ))
            }
        };
        let mode = match obj.get("purge") {
            None | Some(Value::Null) | Some(Value::Bool(true)) => PurgeMode::Hard,
            Some(Value::Bool(false)) => PurgeMode::Soft,
            Some(_) => return Err(SelectorError::new("purge", "must be true or false")),
        };
        let mut selectors = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let field = format!("selectors[{i}]");
            let s = item
                .as_str()
                .ok_or_else(|| SelectorError::new(&field, "must be a string"))?;
            let err = |m: String| SelectorError::new(&field, m);
            let sel = match kind {
                "uri" => Selector::url(s).map_err(|e| err(e.message))?,
                "uri-prefix" => {
                    let key = ResourceKey::parse_url(s).map_err(|e| err(e.0))?;
                    Selector::prefix(key.path()).on_host(key.host())
                }
                "origin" => {
                    let key = ResourceKey::parse_url(s).map_err(|e| err(e.0))?;
                    Selector::host(key.host())
                }
                _ => Selector::tag(s),
            };
            sel.validate().map_err(|e| err(e.message))?;
            selectors.push(sel);
        }
        Ok(PurgeRequest {
            selectors,
            mode,
            dry_run: false,
        })
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

    #[test]
    fn json_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("not json", ""),
            ("[]", ""),
            (r#"{"selectors":[]}"#, "selectors"),
            (r#"{"selectors":{}}"#, "selectors"),
            (r#"{"selectors":[{"type":"nope"}]}"#, "selectors[0].type"),
            (r#"{"selectors":[{"type":"url"}]}"#, "selectors[0].url"),
            (
                r#"{"selectors":[{"type":"url","url":"/rel"}]}"#,
                "selectors[0].url",
            ),
            (
                r#"{"selectors":[{"type":"path","path":"p"}]}"#,
                "selectors[0].path",
            ),
            (
                r#"{"selectors":[{"type":"tag","tag":""}]}"#,
                "selectors[0].tag",
            ),
            (
                r#"{"selectors":[{"type":"tag","tag":"a","bogus":1}]}"#,
                "selectors[0].bogus",
            ),
            (
                r#"{"selectors":[{"type":"path","path":"/p","headers":{"bad name":"x"}}]}"#,
                "selectors[0].headers",
            ),
            (r#"{"selectors":[{"type":"all"}],"mode":"medium"}"#, "mode"),
            (r#"{"type":"uri","selectors":[]}"#, "selectors"),
            (r#"{"type":"uri","selectors":["nope"]}"#, "selectors[0]"),
            (
                r#"{"selectors":[{"type":"path","path":"/about?x=1"}]}"#,
                "selectors[0].path",
            ),
            (
                r#"{"selectors":[{"type":"host","host":"http://h:8080"}]}"#,
                "selectors[0].host",
            ),
            (
                r#"{"selectors":[{"type":"prefix","prefix":"/a","host":"h/x"}]}"#,
                "selectors[0].host",
            ),
        ];
        for (body, field) in cases {
            let e = PurgeRequest::from_json(body.as_bytes()).unwrap_err();
            assert_eq!(e.field, *field, "{body}: {e}");
        }
    }

    #[test]
    fn json_forms() {
        let r = PurgeRequest::from_json(
            br#"{"selectors":[{"type":"path","path":"/p","any_query":true,"headers":{"Accept-Language":"fr"}},{"type":"prefix","prefix":"/b/","host":"H"}],"dry_run":true}"#,
        )
        .unwrap();
        assert!(r.dry_run);
        assert_eq!(
            r.selectors,
            vec![
                Selector::path("/p")
                    .any_query()
                    .header("accept-language", "fr"),
                Selector::prefix("/b/").on_host("h"),
            ]
        );
        let bare = PurgeRequest::from_json(br#"{"type":"host","host":"x.example","mode":"soft"}"#)
            .unwrap();
        assert_eq!(bare.selectors, vec![Selector::host("x.example")]);
        assert_eq!(bare.mode, PurgeMode::Soft);
        let draft = PurgeRequest::from_json(
            br#"{"type":"uri-prefix","selectors":["https://h.example/blog/"],"purge":false}"#,
        )
        .unwrap();
        assert_eq!(
            draft.selectors,
            vec![Selector::prefix("/blog/").on_host("h.example")]
        );
        assert_eq!(draft.mode, PurgeMode::Soft);
        let group = PurgeRequest::from_json(br#"{"type":"group","selectors":["a","b"]}"#).unwrap();
        assert_eq!(
            group.selectors,
            vec![Selector::tag("a"), Selector::tag("b")]
        );
    }
}
