//! `GET /explain`: what the cache holds for a URL, and why.
//!
//! Owns the JSON description of a resource's variants (key, variant values, tags, age, TTL,
//! state). Reads the store; changes nothing.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use vanish_engine::object::State;
use vanish_engine::{Cache, ResourceKey, Store};

/// Request headers whose stored values are never shown: they carry other users' secrets.
const ALWAYS_REDACTED: [HeaderName; 3] = [
    http::header::COOKIE,
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
];

/// Describes what is stored for `url`; `headers` pick the variant a request would get.
/// Stored `Vary` values of `Cookie`, `Authorization` and the `redact` headers show as
/// `"<redacted>"`.
pub async fn explain<S: Store + Clone>(
    cache: &Cache<S>,
    url: &str,
    headers: &[(String, String)],
    redact: &[HeaderName],
) -> Result<Value, (String, String)> {
    let store = cache.store();
    ResourceKey::parse_url(url).map_err(|e| ("url".to_owned(), e.to_string()))?;
    let mut req_headers = HeaderMap::new();
    for (n, v) in headers {
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| ("header".to_owned(), format!("invalid header name {n:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| ("header".to_owned(), format!("invalid value for {n}")))?;
        req_headers.append(name, value);
    }
    // Run the key policy on the request this URL and these headers make.
    let mut request = http::Request::get(url)
        .body(())
        .map_err(|e| ("url".to_owned(), e.to_string()))?;
    *request.headers_mut() = req_headers;
    let (mut parts, ()) = request.into_parts();
    let prepared = cache
        .prepare(&mut parts)
        .map_err(|e| ("url".to_owned(), e.to_string()))?;
    let key = prepared.key;
    let req_headers = parts.headers;
    let policy = json!({
        "rule": prepared.rule.name,
        "bypass": prepared.bypass,
        "key_extra": key.extra(),
        "ttl_override_s": prepared.rule.overrides.ttl.map(|d| d.as_secs()),
    });
    let resource = store
        .lookup(&key)
        .await
        .map_err(|e| ("store".to_owned(), e.to_string()))?;
    let now = SystemTime::now();
    let Some(resource) = resource else {
        return Ok(
            json!({"key": key.to_string(), "policy": policy, "cached": false, "variants": []}),
        );
    };
    let selected = resource
        .select_in(&req_headers, cache.config().vary_values)
        .map(|o| o.id());
    let variants: Vec<Value> = resource
        .variants
        .iter()
        .map(|o| {
            let state = match o.state(now) {
                State::Fresh => "fresh",
                State::Stale(_) if o.soft_purged_at().is_some() => "stale (soft-purged)",
                State::Stale(_) => "stale",
            };
            let vary: serde_json::Map<String, Value> = o
                .meta
                .vary_values
                .iter()
                .map(|(n, v)| {
                    let secret = ALWAYS_REDACTED.contains(n) || redact.contains(n);
                    let shown = match v {
                        None => Value::Null,
                        Some(_) if secret => Value::String("<redacted>".to_owned()),
                        Some(v) => Value::String(v.clone()),
                    };
                    (n.as_str().to_owned(), shown)
                })
                .collect();
            json!({
                "id": o.id(),
                "selected": Some(o.id()) == selected,
                "status": o.status.as_u16(),
                "vary": vary,
                "tags": o.meta.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "age_s": o.age(now).as_secs(),
                "ttl_s": o.ttl_secs(now),
                "state": state,
                "stale_while_revalidate_s": o.timing.stale_while_revalidate.as_secs(),
                "stale_if_error_s": o.timing.stale_if_error.as_secs(),
                "body_bytes": o.body.len(),
                "weight_bytes": o.weight(),
            })
        })
        .collect();
    Ok(json!({"key": key.to_string(), "policy": policy, "cached": true, "variants": variants}))
}
