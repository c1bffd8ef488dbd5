//! Issue 4: per-route key policy through the real proxy, and purges under each policy.

mod common;

use std::time::Instant;

use common::*;

const CONFIG: &str = r#"
[[rules]]
name = "blog"
host = "*.example.com"
path = "/blog/*"
drop_query = ["utm_*", "gclid", "fbclid"]
sort_query = true
accept_language = ["en", "fr"]

[[rules]]
name = "shop"
path = "/shop/*"
key_headers = ["x-device"]
key_cookies = ["currency"]
strip_cookies = true
bypass_cookies = ["sessionid"]
ttl = "5m"
cacheable_status = [200]

[host_aliases]
"www.example.com" = "example.com"
"#;

async fn setup() -> (TestOrigin, TestVanish) {
    let origin = TestOrigin::start(|s, n| {
        let lang = s
            .headers
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_owned());
        let device = s
            .headers
            .get("x-device")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = format!("{} lang={lang:?} device={device:?} #{n}", s.path_and_query);
        if s.path_and_query.starts_with("/shop/missing") {
            return Reply::ok("no such product")
                .status(404)
                .header("cache-control", "max-age=60");
        }
        if s.path_and_query.starts_with("/shop/") {
            // No freshness from the origin: the route's TTL makes it storable.
            return Reply::ok(body).header("vary", "Accept-Language");
        }
        Reply::ok(body)
            .header("cache-control", "max-age=300")
            .header("vary", "Accept-Language")
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), CONFIG).await;
    (origin, v)
}

fn h(host: &'static str) -> (&'static str, &'static str) {
    ("host", host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_normalisation_shares_one_object_and_purges_reach_it() {
    let (origin, v) = setup().await;
    let a = get_with(
        &v.url("/blog/1?utm_source=news&b=2&a=1"),
        &[h("a.example.com")],
    )
    .await;
    assert!(!a.is_hit());
    assert_eq!(
        origin.last().path_and_query,
        "/blog/1?a=1&b=2",
        "the origin sees the cleaned URL"
    );
    for q in ["a=1&b=2", "b=2&a=1", "gclid=9&a=1&b=2&utm_medium=x"] {
        let g = get_with(&v.url(&format!("/blog/1?{q}")), &[h("a.example.com")]).await;
        assert!(g.is_hit(), "{q}: {}", g.cache_status());
    }
    assert_eq!(origin.total(), 1);
    // Purging with the tracking parameters, or in another order, reaches the stored object.
    let r = purge(
        &v,
        r#"{"type":"url","url":"https://a.example.com/blog/1?utm_source=x&b=2&a=1"}"#,
    )
    .await;
    assert_eq!(r.json()["matched"], 1, "{}", r.body);
    get_with(&v.url("/blog/1?a=1&b=2"), &[h("a.example.com")]).await;
    let r = purge(&v, r#"{"type":"path","path":"/blog/1","query":"b=2&a=1"}"#).await;
    assert_eq!(r.json()["matched"], 1, "{}", r.body);
    // Outside the rule, queries are the key verbatim.
    get_with(&v.url("/other?utm_source=x"), &[h("a.example.com")]).await;
    assert!(!get_with(&v.url("/other"), &[h("a.example.com")])
        .await
        .is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_language_normalisation_and_header_filtered_purges() {
    let (origin, v) = setup().await;
    get_with(
        &v.url("/blog/2"),
        &[h("a.example.com"), ("accept-language", "fr-CA,fr;q=0.9")],
    )
    .await;
    assert_eq!(origin.last().headers.get("accept-language").unwrap(), "fr");
    let again = get_with(
        &v.url("/blog/2"),
        &[h("a.example.com"), ("accept-language", "fr")],
    )
    .await;
    assert!(again.is_hit(), "fr-CA and fr share the fr variant");
    get_with(
        &v.url("/blog/2"),
        &[h("a.example.com"), ("accept-language", "de")],
    )
    .await;
    assert!(
        get_with(
            &v.url("/blog/2"),
            &[h("a.example.com"), ("accept-language", "es")]
        )
        .await
        .is_hit(),
        "both default to en"
    );
    assert_eq!(origin.total(), 2);
    // The filter accepts the value as a client sends it: it is normalised like requests.
    let r = purge(
        &v,
        r#"{"type":"url","url":"http://a.example.com/blog/2","headers":{"accept-language":"fr-CA,fr;q=0.9"}}"#,
    )
    .await;
    assert_eq!(r.json()["matched"], 1);
    assert!(!get_with(
        &v.url("/blog/2"),
        &[h("a.example.com"), ("accept-language", "fr")]
    )
    .await
    .is_hit());
    assert!(get_with(
        &v.url("/blog/2"),
        &[h("a.example.com"), ("accept-language", "en")]
    )
    .await
    .is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_cookie_key_headers_key_cookies_and_stripping() {
    let (origin, v) = setup().await;
    let logged_in = get_with(
        &v.url("/shop/1"),
        &[("cookie", "sessionid=abc; currency=EUR")],
    )
    .await;
    assert!(
        logged_in.cache_status().contains("fwd=bypass"),
        "{}",
        logged_in.cache_status()
    );
    assert_eq!(
        origin.last().headers.get("cookie").unwrap(),
        "sessionid=abc; currency=EUR",
        "bypassed requests are untouched"
    );
    assert!(!get_with(&v.url("/shop/1"), &[("cookie", "sessionid=abc")])
        .await
        .is_hit());
    // Anonymous: cookies other than `currency` are stripped before the origin.
    get_with(
        &v.url("/shop/1"),
        &[("cookie", "_ga=1; currency=EUR"), ("x-device", "mobile")],
    )
    .await;
    assert_eq!(origin.last().headers.get("cookie").unwrap(), "currency=EUR");
    assert!(get_with(
        &v.url("/shop/1"),
        &[("cookie", "currency=EUR; _gid=2"), ("x-device", "mobile")]
    )
    .await
    .is_hit());
    // Another currency or device is another object.
    assert!(!get_with(
        &v.url("/shop/1"),
        &[("cookie", "currency=USD"), ("x-device", "mobile")]
    )
    .await
    .is_hit());
    assert!(!get_with(
        &v.url("/shop/1"),
        &[("cookie", "currency=EUR"), ("x-device", "desktop")]
    )
    .await
    .is_hit());
    // A URL purge reaches every partition.
    let r = purge(
        &v,
        &format!(r#"{{"type":"url","url":"{}"}}"#, v.url("/shop/1")),
    )
    .await;
    assert_eq!(r.json()["matched"], 3, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_override_and_cacheable_statuses() {
    let (origin, v) = setup().await;
    // Stored after this instant: the route's 300 s less the time since.
    let before = Instant::now();
    get(&v.url("/shop/2")).await;
    let hit = get(&v.url("/shop/2")).await;
    let elapsed = before.elapsed();
    assert!(
        hit.is_hit(),
        "stored for the route's TTL though the origin gave no freshness"
    );
    let ttl: i64 = hit
        .cache_status()
        .split("; ")
        .find_map(|p| p.strip_prefix("ttl="))
        .unwrap_or_else(|| panic!("a hit shows its ttl: {}", hit.cache_status()))
        .parse()
        .unwrap();
    // Whole seconds left: 299 when both requests take under a second, as they normally do.
    assert!(
        ttl < 300 && ttl as f64 >= (300.0 - elapsed.as_secs_f64()).floor(),
        "the route's 5m, {elapsed:?} after the fill at most: {}",
        hit.cache_status()
    );
    get(&v.url("/shop/missing")).await;
    let miss = get(&v.url("/shop/missing")).await;
    assert!(
        !miss.is_hit(),
        "404 is not a cacheable status on this route"
    );
    assert!(
        miss.cache_status().contains("detail=status"),
        "{}",
        miss.cache_status()
    );
    assert_eq!(origin.count("/shop/missing"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_aliases_share_objects_and_purges() {
    let (origin, v) = setup().await;
    get_with(&v.url("/about"), &[h("www.example.com")]).await;
    assert!(get_with(&v.url("/about"), &[h("example.com")])
        .await
        .is_hit());
    assert_eq!(origin.total(), 1);
    let r = purge(&v, r#"{"type":"host","host":"www.example.com"}"#).await;
    assert_eq!(r.json()["matched"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_rule_and_the_key() {
    let (_o, v) = setup().await;
    get_with(
        &v.url("/blog/3?utm_source=x&z=1&a=2"),
        &[h("a.example.com"), ("accept-language", "fr")],
    )
    .await;
    let e = get(&v.admin(
        "/explain?url=http%3A%2F%2Fa.example.com%2Fblog%2F3%3Fz%3D1%26a%3D2%26utm_source%3Dy&header=accept-language%3Afr-CA",
    ))
    .await
    .json();
    assert_eq!(e["key"], "http://a.example.com/blog/3?a=2&z=1");
    assert_eq!(e["policy"]["rule"], "blog");
    assert_eq!(e["cached"], true);
    assert_eq!(e["variants"][0]["selected"], true);
}
