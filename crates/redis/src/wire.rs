//! The wire form of a purge request: what the Lua scripts match on, what the purge log in
//! Redis keeps, and what is published to the other nodes.
//!
//! Owns one compact JSON encoding of [`PurgeRequest`] (selectors already normalised by the
//! engine, so decoding gives back exactly the same request) and its decoder. Field names are
//! short because every purge-log entry and every message carries them:
//! `{"m":"h"|"s","s":[{"k":kind,"h":host,"p":path-or-prefix,"q":query,"qa":true,"t":tag,
//! "x":[[header,value],...]}]}`. For `url` and `path`, no `q` and no `qa` means "no query".
//! It talks to no server and knows nothing of messages or of the purge log's keys.

use http::HeaderName;
use serde::{Deserialize, Serialize};
use vanish_engine::purge::selector::{QueryMatch, Selector, Target};
use vanish_engine::{PurgeMode, PurgeRequest};

#[derive(Serialize, Deserialize)]
struct WireRequest {
    m: String,
    s: Vec<WireSelector>,
}

#[derive(Serialize, Deserialize, Default)]
struct WireSelector {
    k: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    h: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    q: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    qa: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    t: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    x: Vec<(String, String)>,
}

fn query_fields(w: &mut WireSelector, q: &QueryMatch) {
    match q {
        QueryMatch::Any => w.qa = true,
        QueryMatch::Exact(q) => w.q = q.clone(),
    }
}

fn query_of(w: &WireSelector) -> QueryMatch {
    if w.qa {
        QueryMatch::Any
    } else {
        QueryMatch::Exact(w.q.clone())
    }
}

/// Encodes a request's mode and selectors (not `dry_run`, which never reaches the log).
pub fn encode(req: &PurgeRequest) -> String {
    let s = req
        .selectors
        .iter()
        .map(|sel| {
            let mut w = WireSelector {
                k: sel.kind().to_owned(),
                x: sel
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
                    .collect(),
                ..Default::default()
            };
            match &sel.target {
                Target::Url { host, path, query } => {
                    w.h = Some(host.clone());
                    w.p = Some(path.clone());
                    query_fields(&mut w, query);
                }
                Target::Path { path, query } => {
                    w.p = Some(path.clone());
                    query_fields(&mut w, query);
                }
                Target::Prefix { prefix, host } => {
                    w.p = Some(prefix.clone());
                    w.h = host.clone();
                }
                Target::Tag(t) => w.t = Some(t.clone()),
                Target::Host(h) => w.h = Some(h.clone()),
                Target::All => {}
            }
            w
        })
        .collect();
    let m = match req.mode {
        PurgeMode::Hard => "h",
        PurgeMode::Soft => "s",
    };
    serde_json::to_string(&WireRequest { m: m.into(), s }).unwrap_or_default()
}

/// Decodes [`encode`]'s output.
pub fn decode(text: &str) -> Result<PurgeRequest, String> {
    let w: WireRequest = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mode = match w.m.as_str() {
        "h" => PurgeMode::Hard,
        "s" => PurgeMode::Soft,
        other => return Err(format!("unknown purge mode {other:?}")),
    };
    let mut selectors = Vec::with_capacity(w.s.len());
    for s in w.s {
        let need = |v: &Option<String>, what: &str| {
            v.clone()
                .ok_or_else(|| format!("{} selector without {what}", s.k))
        };
        let target = match s.k.as_str() {
            "url" => Target::Url {
                host: need(&s.h, "host")?,
                path: need(&s.p, "path")?,
                query: query_of(&s),
            },
            "path" => Target::Path {
                path: need(&s.p, "path")?,
                query: query_of(&s),
            },
            "prefix" => Target::Prefix {
                prefix: need(&s.p, "prefix")?,
                host: s.h.clone(),
            },
            "tag" => Target::Tag(need(&s.t, "tag")?),
            "host" => Target::Host(need(&s.h, "host")?),
            "all" => Target::All,
            other => return Err(format!("unknown selector kind {other:?}")),
        };
        let mut headers = Vec::with_capacity(s.x.len());
        for (n, v) in s.x {
            let n = HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?;
            headers.push((n, v));
        }
        selectors.push(Selector { target, headers });
    }
    Ok(PurgeRequest::new(selectors).with_mode(mode))
}

/// True when every selector is a `url` (so the purge touches only the URLs' buckets).
pub fn url_only(req: &PurgeRequest) -> bool {
    req.selectors
        .iter()
        .all(|s| matches!(s.target, Target::Url { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_selector() {
        let mut req = PurgeRequest::new(vec![
            Selector::url("https://h.example:8443/a?b=1").unwrap(),
            Selector::url("http://h/a").unwrap().any_query(),
            Selector::url("http://h/a").unwrap(),
            Selector::path("/p").query("x=1"),
            Selector::path("/p")
                .any_query()
                .header("accept-language", "fr"),
            Selector::prefix("/blog/").on_host("h.example"),
            Selector::prefix("/"),
            Selector::tag("post-1"),
            Selector::host("h.example:8080"),
            Selector::all(),
        ]);
        req.mode = PurgeMode::Soft;
        let back = decode(&encode(&req)).unwrap();
        assert_eq!(back, req);
        assert!(!url_only(&req));
        assert!(url_only(&PurgeRequest::new(vec![Selector::url(
            "http://h/a"
        )
        .unwrap()])));
    }
}
