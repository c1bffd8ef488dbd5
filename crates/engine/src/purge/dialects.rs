//! The three ways a purge is written down, parsed into one [`PurgeRequest`].
//!
//! Owns the dialects: Vanish's JSON (`{"selectors":[...],"mode":..,"dry_run":..}` or one bare
//! selector object), the IETF cache-invalidation draft's JSON (`{"type":"uri",...}`) and
//! Varnish's `PURGE` method (the URL, or `xkey-purge`/`xkey-softpurge`/`Surrogate-Key` tag
//! headers). Each checks structure as it parses and the selectors once at the end, with
//! errors naming the field; what a selector means is [`super::selector`]'s.

use http::{header, HeaderMap, HeaderName};
use serde_json::Value;

use super::selector::{PurgeMode, PurgeRequest, Selector, SelectorError};
use crate::key::ResourceKey;

impl Selector {
    /// Parses and checks one selector object (`{"type":"url",...}`); `field` prefixes error
    /// paths.
    pub fn from_json(v: &Value, field: &str) -> Result<Self, SelectorError> {
        let sel = parse_selector(v, field)?;
        sel.validate()
            .map_err(|e| SelectorError::new(format!("{field}.{}", e.field), e.message))?;
        Ok(sel)
    }
}

/// One selector object's structure (types, required and unknown fields), unchecked.
fn parse_selector(v: &Value, field: &str) -> Result<Selector, SelectorError> {
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
    Ok(sel)
}

impl PurgeRequest {
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
            vec![parse_selector(&Value::Object(bare), "selector")?]
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
                .map(|(i, s)| parse_selector(s, &format!("selectors[{i}]")))
                .collect::<Result<Vec<_>, _>>()?
        };
        let bare = obj.contains_key("type");
        PurgeRequest::new(selectors)
            .with_mode(mode)
            .with_dry_run(dry_run)
            .check_naming(|i, f| {
                if bare {
                    format!("selector.{f}")
                } else {
                    format!("selectors[{i}].{f}")
                }
            })
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
                    let key = ResourceKey::parse_url(s).map_err(|e| err(e.to_string()))?;
                    Selector::prefix(key.path()).on_host(key.host())
                }
                "origin" => {
                    let key = ResourceKey::parse_url(s).map_err(|e| err(e.to_string()))?;
                    Selector::host(key.host())
                }
                _ => Selector::tag(s),
            };
            selectors.push(sel);
        }
        PurgeRequest::new(selectors)
            .with_mode(mode)
            .check_naming(|i, _| format!("selectors[{i}]"))
    }
    /// Parses Varnish's `PURGE` method: with `xkey-purge`, `xkey`, `Surrogate-Key` (hard) or
    /// `xkey-softpurge` (soft), the whitespace-separated tags they list; otherwise the
    /// request's URL (`Host` and `path_and_query`), all its variants. Errors name the header.
    ///
    /// ```
    /// use vanish_engine::{PurgeMode, PurgeRequest, Selector};
    /// let mut h = http::HeaderMap::new();
    /// h.insert("xkey-softpurge", "post-1 home".parse().unwrap());
    /// let r = PurgeRequest::from_purge_method(&h, "/ignored").unwrap();
    /// assert_eq!(r.mode, PurgeMode::Soft);
    /// assert_eq!(r.selectors, vec![Selector::tag("post-1"), Selector::tag("home")]);
    /// ```
    pub fn from_purge_method(
        headers: &HeaderMap,
        path_and_query: &str,
    ) -> Result<Self, SelectorError> {
        let tag_header = ["xkey-purge", "xkey", "surrogate-key", "xkey-softpurge"]
            .iter()
            .find_map(|n| headers.get(*n).map(|v| (*n, v)));
        if let Some((name, value)) = tag_header {
            let tags = value
                .to_str()
                .map_err(|_| SelectorError::new(name, "tags must be visible ASCII"))?;
            let selectors: Vec<Selector> =
                tags.split_ascii_whitespace().map(Selector::tag).collect();
            if selectors.is_empty() {
                return Err(SelectorError::new(name, "names no tag"));
            }
            let mode = if name == "xkey-softpurge" {
                PurgeMode::Soft
            } else {
                PurgeMode::Hard
            };
            return PurgeRequest::new(selectors)
                .with_mode(mode)
                .check_naming(|_, _| name.to_owned());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                SelectorError::new("host", "PURGE needs a Host header naming the site")
            })?;
        let selector = Selector::url(&format!("http://{host}{path_and_query}"))
            .map_err(|e| SelectorError::new("url", e.message))?;
        PurgeRequest::new(vec![selector]).check_naming(|_, _| "url".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
