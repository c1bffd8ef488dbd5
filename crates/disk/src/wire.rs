//! The encoding of a purge request kept in the purge log while the index is being rebuilt
//! (a [`crate::record::Kind::Selector`] record's head).
//!
//! Owns one JSON form of [`PurgeRequest`]'s mode and selectors (already normalised by the
//! engine, so decoding gives back the same request) and its decoder. Nothing else.

use http::HeaderName;
use serde::{Deserialize, Serialize};
use vanish_engine::purge::selector::{QueryMatch, Selector, Target};
use vanish_engine::{PurgeMode, PurgeRequest};

#[derive(Serialize, Deserialize)]
struct Request {
    soft: bool,
    selectors: Vec<(Sel, Vec<(String, String)>)>,
}

#[derive(Serialize, Deserialize)]
enum Sel {
    Url(String, String, Query),
    Path(String, Query),
    Prefix(String, Option<String>),
    Tag(String),
    Host(String),
    All,
}

#[derive(Serialize, Deserialize)]
enum Query {
    Exact(Option<String>),
    Any,
}

fn query(q: &QueryMatch) -> Query {
    match q {
        QueryMatch::Any => Query::Any,
        QueryMatch::Exact(q) => Query::Exact(q.clone()),
    }
}

fn query_back(q: Query) -> QueryMatch {
    match q {
        Query::Any => QueryMatch::Any,
        Query::Exact(q) => QueryMatch::Exact(q),
    }
}

/// Encodes a request's mode and selectors (`dry_run` never reaches the log).
pub fn encode(req: &PurgeRequest) -> Vec<u8> {
    let selectors = req
        .selectors
        .iter()
        .map(|s| {
            let sel = match &s.target {
                Target::Url {
                    host,
                    path,
                    query: q,
                } => Sel::Url(host.clone(), path.clone(), query(q)),
                Target::Path { path, query: q } => Sel::Path(path.clone(), query(q)),
                Target::Prefix { prefix, host } => Sel::Prefix(prefix.clone(), host.clone()),
                Target::Tag(t) => Sel::Tag(t.clone()),
                Target::Host(h) => Sel::Host(h.clone()),
                Target::All => Sel::All,
            };
            let headers = s
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
                .collect();
            (sel, headers)
        })
        .collect();
    let r = Request {
        soft: req.mode == PurgeMode::Soft,
        selectors,
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

/// Decodes [`encode`]'s output.
pub fn decode(bytes: &[u8]) -> Result<PurgeRequest, String> {
    let r: Request = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut selectors = Vec::with_capacity(r.selectors.len());
    for (sel, headers) in r.selectors {
        let target = match sel {
            Sel::Url(host, path, q) => Target::Url {
                host,
                path,
                query: query_back(q),
            },
            Sel::Path(path, q) => Target::Path {
                path,
                query: query_back(q),
            },
            Sel::Prefix(prefix, host) => Target::Prefix { prefix, host },
            Sel::Tag(t) => Target::Tag(t),
            Sel::Host(h) => Target::Host(h),
            Sel::All => Target::All,
        };
        let mut hs = Vec::with_capacity(headers.len());
        for (n, v) in headers {
            hs.push((
                HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?,
                v,
            ));
        }
        selectors.push(Selector {
            target,
            headers: hs,
        });
    }
    let mode = if r.soft {
        PurgeMode::Soft
    } else {
        PurgeMode::Hard
    };
    Ok(PurgeRequest::new(selectors).with_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_selector() {
        let req = PurgeRequest::new(vec![
            Selector::url("https://h.example:8443/a?b=1").unwrap(),
            Selector::url("http://h/a").unwrap().any_query(),
            Selector::path("/p").query("x=1"),
            Selector::path("/p")
                .any_query()
                .header("accept-language", "fr"),
            Selector::prefix("/blog/").on_host("h.example"),
            Selector::tag("post-1"),
            Selector::host("h.example:8080"),
            Selector::all(),
        ])
        .soft();
        assert_eq!(decode(&encode(&req)).unwrap(), req);
        assert!(decode(b"{").is_err());
    }
}
