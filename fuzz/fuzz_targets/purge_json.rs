//! The admin API's purge body parser: `PurgeRequest::from_json` (Vanish's JSON and the IETF
//! draft form).
//!
//! Properties checked on every input:
//! - it never panics, whatever the bytes;
//! - a request it accepts validates, and has at least one selector;
//! - written back as Vanish's JSON and parsed again, it is the same request (the parser and
//!   the documented JSON form agree; skipped when a selector repeats a header name, which one
//!   JSON object cannot say twice, or names a host that is no authority by itself);
//! - normalising its selectors through a configured key policy is idempotent (a purge that is
//!   already in normal form is not changed again);
//! - matching against a few stored objects does not panic.
#![no_main]

#[path = "common/policy.rs"]
mod common_policy;

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use vanish_engine::object::ObjectMeta;
use vanish_engine::purge::selector::{QueryMatch, Target};
use vanish_engine::{KeyPolicy, PurgeMode, PurgeRequest, ResourceKey, Selector};

use common_policy::policy;

fn objects() -> &'static [ObjectMeta] {
    static O: OnceLock<Vec<ObjectMeta>> = OnceLock::new();
    O.get_or_init(|| {
        let lang = http::HeaderName::from_static("accept-language");
        [
            (
                "https://example.com/blog/post-1?a=1",
                Some("fr"),
                &["post-1", "posts"][..],
            ),
            ("http://example.com:8080/search?q=x", None, &[][..]),
            ("http://[::1]/", Some(""), &["root"][..]),
            ("http://other.test/blog/", None, &["posts"][..]),
        ]
        .iter()
        .enumerate()
        .map(|(i, (url, vary, tags))| ObjectMeta {
            id: i as u64,
            key: ResourceKey::parse_url(url).unwrap(),
            vary_values: vec![(lang.clone(), vary.map(str::to_owned))],
            tags: tags.iter().map(|t| Arc::<str>::from(*t)).collect(),
        })
        .collect()
    })
}

/// Vanish's JSON form of one selector (what docs/admin-api.md documents).
fn selector_json(s: &Selector) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(s.kind()));
    match &s.target {
        Target::Url { host, path, query } => {
            // The scheme is not kept, and the one written decides which default port is
            // dropped on the way back: write the scheme for which the port is not the default.
            let scheme = if host.ends_with(":80") {
                "https"
            } else {
                "http"
            };
            let url = match query {
                QueryMatch::Exact(Some(q)) => format!("{scheme}://{host}{path}?{q}"),
                _ => format!("{scheme}://{host}{path}"),
            };
            o.insert("url".into(), json!(url));
            if *query == QueryMatch::Any {
                o.insert("any_query".into(), json!(true));
            }
        }
        Target::Path { path, query } => {
            o.insert("path".into(), json!(path));
            match query {
                QueryMatch::Any => {
                    o.insert("any_query".into(), json!(true));
                }
                QueryMatch::Exact(Some(q)) => {
                    o.insert("query".into(), json!(q));
                }
                QueryMatch::Exact(None) => {}
            }
        }
        Target::Prefix { prefix, host } => {
            o.insert("prefix".into(), json!(prefix));
            if let Some(h) = host {
                o.insert("host".into(), json!(h));
            }
        }
        Target::Tag(t) => {
            o.insert("tag".into(), json!(t));
        }
        Target::Host(h) => {
            o.insert("host".into(), json!(h));
        }
        Target::All => {}
    }
    if !s.headers.is_empty() {
        let h: Map<String, Value> = s
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), json!(v)))
            .collect();
        o.insert("headers".into(), Value::Object(h));
    }
    Value::Object(o)
}

fn request_json(r: &PurgeRequest) -> Vec<u8> {
    let v = json!({
        "selectors": r.selectors.iter().map(selector_json).collect::<Vec<_>>(),
        "mode": match r.mode { PurgeMode::Hard => "hard", PurgeMode::Soft => "soft" },
        "dry_run": r.dry_run,
    });
    serde_json::to_vec(&v).unwrap()
}

/// The request with each selector's header filters in a fixed order (their order means
/// nothing: every filter must hold; a JSON object does not keep it).
fn sorted_headers(r: &PurgeRequest) -> PurgeRequest {
    let mut r = r.clone();
    for s in &mut r.selectors {
        s.headers
            .sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    }
    r
}

/// The round trip needs the selector's host to be an authority by itself. A URL's user info is
/// dropped from its host (`http://u[:@h/` names host `h`), and the `http` crate accepts
/// characters in user info that it refuses in a host: such a URL is purgeable but has no
/// written-back form.
fn writable(s: &Selector) -> bool {
    match &s.target {
        Target::Url { host, .. } => format!("http://{host}/").parse::<http::Uri>().is_ok(),
        _ => true,
    }
}

fn repeats_a_header(s: &Selector) -> bool {
    s.headers
        .iter()
        .enumerate()
        .any(|(i, (n, _))| s.headers[..i].iter().any(|(m, _)| m == n))
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = PurgeRequest::from_json(data) else {
        return;
    };
    assert!(!req.selectors.is_empty(), "accepted an empty selector list");
    if let Err(e) = req.validate() {
        panic!("from_json accepted a request that does not validate: {e}\n{req:?}");
    }

    if !req.selectors.iter().any(repeats_a_header) && req.selectors.iter().all(writable) {
        let again = request_json(&req);
        match PurgeRequest::from_json(&again) {
            Ok(r2) => assert_eq!(
                sorted_headers(&r2),
                sorted_headers(&req),
                "round trip through {} changed the request",
                String::from_utf8_lossy(&again)
            ),
            Err(e) => panic!(
                "the JSON form of an accepted request is refused: {e}\n{}",
                String::from_utf8_lossy(&again)
            ),
        }
    }

    for s in &req.selectors {
        let mut once = s.clone();
        policy().normalize_selector(&mut once);
        let mut twice = once.clone();
        policy().normalize_selector(&mut twice);
        assert_eq!(
            once, twice,
            "selector normalisation is not idempotent for {s:?}"
        );
        for o in objects() {
            let _ = s.matches(o);
            let _ = once.matches(o);
        }
    }
});
