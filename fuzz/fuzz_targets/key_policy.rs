//! The key policy normaliser: `QueryRule::apply`, `canonical_encoding` and
//! `RulesPolicy::prepare`.
//!
//! Input format (so seeds are readable): the first line is a request target (origin form
//! `/p?q` or absolute form `http://h/p?q`); each further line is a request header
//! `name: value`. Bytes that are not UTF-8 end the input.
//!
//! Properties checked on every input:
//! - nothing panics;
//! - `canonical_encoding` is idempotent: encoding twice equals encoding once;
//! - each fixed `QueryRule` is idempotent: applying it to its own output changes nothing;
//! - `prepare` is idempotent: preparing the request it rewrote gives the same key (and the same
//!   bypass decision);
//! - after `prepare`, the query the origin will be sent is the key's query (policy/mod.rs:
//!   "it rewrites the request ... so the origin sees what the key says");
//! - read-after-purge at the key level: a purge naming the URL that was requested, as a `url`
//!   selector or as a `path` selector with that query, normalised by the same policy (as the
//!   admin API does), matches the object stored under the prepared key.
#![no_main]

#[path = "common/policy.rs"]
mod common_policy;

use std::sync::OnceLock;

use globset::{Glob, GlobSet, GlobSetBuilder};
use libfuzzer_sys::fuzz_target;
use vanish_engine::object::ObjectMeta;
use vanish_engine::policy::query::QueryRule;
use vanish_engine::url::canonical_encoding;
use vanish_engine::{KeyPolicy, Scheme, Selector};

use common_policy::policy;

fn set(globs: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).unwrap());
    }
    b.build().unwrap()
}

fn query_rules() -> &'static [QueryRule] {
    static R: OnceLock<Vec<QueryRule>> = OnceLock::new();
    R.get_or_init(|| {
        vec![
            QueryRule {
                drop: Some(set(&["utm_*", "gclid", "fbclid"])),
                ..Default::default()
            },
            QueryRule {
                keep: Some(set(&["page", "q", "a*"])),
                ..Default::default()
            },
            QueryRule {
                sort: true,
                ..Default::default()
            },
            QueryRule {
                drop: Some(set(&["utm_*", "_"])),
                sort: true,
                ..Default::default()
            },
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or("").trim_end_matches('\r');

    // Query normalisation on the raw text after '?' (or the whole line).
    let query = target.split_once('?').map_or(target, |(_, q)| q);
    let c1 = canonical_encoding(query);
    let c2 = canonical_encoding(&c1);
    assert_eq!(c1, c2, "canonical_encoding is not idempotent on {query:?}");
    for (i, rule) in query_rules().iter().enumerate() {
        if let Some(once) = rule.apply(query) {
            let twice = rule.apply(&once);
            assert_eq!(
                twice.as_deref(),
                Some(once.as_str()),
                "query rule {i} is not idempotent on {query:?}"
            );
        }
    }

    // The whole policy on a request.
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let mut builder = http::Request::builder().uri(uri);
    let mut has_host = false;
    for line in lines {
        let Some((name, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        has_host |= name == http::header::HOST;
        builder = builder.header(name, value);
    }
    if !has_host {
        builder = builder.header("host", "www.example.com");
    }
    let Ok(req) = builder.body(()) else {
        return;
    };
    let (mut parts, ()) = req.into_parts();
    let authority = match parts.uri.authority() {
        Some(a) => Some(a.as_str().to_owned()),
        None => parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    };
    let requested_path = parts.uri.path().to_owned();
    let requested_query = parts.uri.query().map(str::to_owned);
    let Ok(first) = policy().prepare(&mut parts, Scheme::Https) else {
        return;
    };
    if !first.bypass {
        assert_eq!(
            parts.uri.query(),
            first.key.query(),
            "the origin would be sent another query than the key's ({target:?})"
        );
    }
    // An asterisk-form target (`*`, for OPTIONS) names no URL.
    if !first.bypass && requested_path.starts_with('/') {
        let stored = ObjectMeta {
            id: 1,
            key: first.key.clone(),
            vary_values: Vec::new(),
            tags: Vec::new(),
        };
        let pq = match &requested_query {
            Some(q) => format!("{requested_path}?{q}"),
            None => requested_path.clone(),
        };
        // Only a Host that is an authority can be named in a URL (the proxy answers 400 to
        // other Host values before the policy sees them).
        let named = authority
            .as_deref()
            .filter(|a| a.parse::<http::uri::Authority>().is_ok());
        let url = format!("https://{}{pq}", named.unwrap_or(""));
        if let (Some(_), Ok(mut sel)) = (named, Selector::url(&url)) {
            policy().normalize_selector(&mut sel);
            assert!(
                sel.matches(&stored),
                "purging the requested URL {url:?} misses the stored key {:?} (selector {sel:?})",
                first.key
            );
        }
        let mut sel = Selector::path(&requested_path);
        if let Some(q) = &requested_query {
            // `query` takes the query without its `?` and forgives one written anyway, so a
            // query that itself starts with `?` is named with one more.
            sel = sel.query(&if q.starts_with('?') {
                format!("?{q}")
            } else {
                q.clone()
            });
        }
        if sel.validate().is_ok() {
            // A path selector names every host: the purge runs every form the policy gives.
            let forms = policy().normalize_selector_forms(sel);
            assert!(
                forms.iter().any(|f| f.matches(&stored)),
                "purging path {requested_path:?} query {requested_query:?} misses the stored key {:?} (selector forms {forms:?})",
                first.key
            );
        }
    }
    let rewritten = parts.clone();
    let second = policy()
        .prepare(&mut parts, Scheme::Https)
        .unwrap_or_else(|e| panic!("a prepared request no longer prepares: {e} ({target:?})"));
    assert_eq!(first.bypass, second.bypass, "bypass changed ({target:?})");
    assert_eq!(
        first.key,
        second.key,
        "prepare is not idempotent on {target:?}: {:?} then {:?}",
        first.key.path_and_query(),
        second.key.path_and_query()
    );
    assert_eq!(
        rewritten.uri, parts.uri,
        "second prepare rewrote the URI again"
    );
});
