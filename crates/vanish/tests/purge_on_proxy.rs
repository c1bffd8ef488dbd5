//! `PURGE` on the proxy listener: with `[server] purge_on_proxy = true` it is the admin's
//! `PURGE` (same authentication, same answers, same metrics); off (the default) it is refused
//! with 405. Either way the origin never sees it.

mod common;

use common::*;

const TOKEN: &str = "proxy-purge-token";

/// The origin of these tests: the shared site (cacheable pages tagged `path:<path>`, and
/// `blog` under `/blog/`).
async fn site(toml: &str) -> (TestOrigin, TestVanish) {
    let origin = TestOrigin::start(|s, n| site_page(s, &format!("r{n}"))).await;
    let vanish = TestVanish::start_with(&origin.url(), toml).await;
    (origin, vanish)
}

fn with_token() -> String {
    format!("[server]\npurge_on_proxy = true\n[admin]\ntokens = [\"{TOKEN}\"]\n")
}

const HOST: (&str, &str) = ("host", "www.example.com");

/// Fills `path` and checks the next request is a hit.
async fn cached(v: &TestVanish, path: &str) {
    let first = get_with(&v.url(path), &[HOST]).await;
    assert_eq!(first.status, 200, "{path}: {}", first.body);
    let again = get_with(&v.url(path), &[HOST]).await;
    assert!(again.is_hit(), "{path}: {}", again.cache_status());
}

async fn is_hit(v: &TestVanish, path: &str) -> bool {
    get_with(&v.url(path), &[HOST]).await.is_hit()
}

fn no_purge_reached(origin: &TestOrigin) {
    let seen = origin.seen.lock().unwrap();
    assert!(
        seen.iter().all(|s| s.method != "PURGE"),
        "the origin saw a PURGE: {:?}",
        seen.iter().map(|s| &s.method).collect::<Vec<_>>()
    );
}

/// A counter's value in `/metrics` (0 when absent).
async fn counter(v: &TestVanish, name: &str) -> u64 {
    let auth = format!("Bearer {TOKEN}");
    let m = get_with(&v.admin("/metrics"), &[("authorization", &auth)])
        .await
        .body;
    m.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_with_the_token_purges_the_url_and_never_reaches_the_origin() {
    let (origin, v) = site(&with_token()).await;
    cached(&v, "/page").await;
    cached(&v, "/other").await;
    let before = counter(&v, "vanish_purged_objects_total").await;
    let auth = format!("Bearer {TOKEN}");
    let r = send(
        "PURGE",
        &v.url("/page"),
        &[HOST, ("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let receipt = r.json();
    assert_eq!(receipt["matched"], 1, "{receipt}");
    assert!(receipt["id"].is_string(), "{receipt}");
    assert_eq!(receipt["mode"], "hard");
    assert!(
        counter(&v, "vanish_purged_objects_total").await > before,
        "counted as an admin purge"
    );
    let after = get_with(&v.url("/page"), &[HOST]).await;
    assert!(
        after.cache_status().contains("fwd=miss"),
        "{}",
        after.cache_status()
    );
    assert_eq!(origin.count("/page"), 2, "filled again after the purge");
    assert!(is_hit(&v, "/other").await, "only the named URL went");
    no_purge_reached(&origin);
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_headers_purge_tags() {
    let (origin, v) = site(&with_token()).await;
    for p in ["/blog/a", "/blog/b", "/about"] {
        cached(&v, p).await;
    }
    let auth = format!("Bearer {TOKEN}");
    let r = send(
        "PURGE",
        &v.url("/"),
        &[HOST, ("authorization", &auth), ("xkey-purge", "blog")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["matched"], 2, "{}", r.body);
    assert!(!is_hit(&v, "/blog/a").await);
    assert!(!is_hit(&v, "/blog/b").await);
    assert!(is_hit(&v, "/about").await);
    // Surrogate-Key names tags too.
    let r = send(
        "PURGE",
        &v.url("/"),
        &[
            HOST,
            ("authorization", &auth),
            ("surrogate-key", "path:/about"),
        ],
        "",
    )
    .await;
    assert_eq!(r.json()["matched"], 1, "{}", r.body);
    assert!(!is_hit(&v, "/about").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_missing_token_is_refused_and_purges_nothing() {
    let (origin, v) = site(&with_token()).await;
    cached(&v, "/page").await;
    for auth in [
        vec![("authorization", "Bearer wrong-token-123")],
        vec![("authorization", "proxy-purge-token")],
        vec![],
    ] {
        let mut h = vec![HOST, ("xkey-purge", "path:/page")];
        h.extend(auth.iter().copied());
        let r = send("PURGE", &v.url("/page"), &h, "").await;
        assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(r.json()["field"], "authorization");
        assert!(is_hit(&v, "/page").await, "{auth:?}: nothing purged");
    }
    // A browser page cannot use it either, token or not.
    let auth = format!("Bearer {TOKEN}");
    let r = send(
        "PURGE",
        &v.url("/page"),
        &[
            HOST,
            ("authorization", &auth),
            ("origin", "https://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(is_hit(&v, "/page").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_allow_list_lets_in_direct_purges_but_not_relayed_ones() {
    // No token: the admin allow-list is loopback, and the test's client is on loopback.
    let (origin, v) = site("[server]\npurge_on_proxy = true\n").await;
    cached(&v, "/page").await;
    // Relayed by a proxy in front: the address is the relay's, so it does not count.
    for relay in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ] {
        let r = send("PURGE", &v.url("/page"), &[HOST, relay], "").await;
        assert_eq!(r.status, 403, "{relay:?}: {}", r.body);
        assert!(r.body.contains("relayed"), "{}", r.body);
        assert!(is_hit(&v, "/page").await, "{relay:?}: nothing purged");
    }
    let r = send("PURGE", &v.url("/page"), &[HOST], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["matched"], 1);
    assert!(!is_hit(&v, "/page").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;

    // From a trusted proxy (a load balancer in front), even without forwarding headers.
    let toml = "[server]\npurge_on_proxy = true\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let (origin, v) = site(toml).await;
    cached(&v, "/page").await;
    let r = send("PURGE", &v.url("/page"), &[HOST], "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(is_hit(&v, "/page").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;

    // An allow-list without loopback: refused (403, no token configured).
    let toml = "[server]\npurge_on_proxy = true\n[admin]\nallow = [\"10.0.0.0/8\"]\n";
    let (origin, v) = site(toml).await;
    cached(&v, "/page").await;
    let r = send("PURGE", &v.url("/page"), &[HOST], "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(is_hit(&v, "/page").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_purge_is_refused_with_405_and_never_forwarded() {
    let (origin, v) = site("").await;
    cached(&v, "/page").await;
    // Even with a valid-looking token and tags: the proxy listener does not purge.
    for extra in [vec![], vec![("xkey-purge", "path:/page")]] {
        let mut h = vec![HOST, ("authorization", "Bearer anything-at-all")];
        h.extend(extra.iter().copied());
        let r = send("PURGE", &v.url("/page"), &h, "").await;
        assert_eq!(r.status, 405, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.body.trim().lines().count(), 1, "{}", r.body);
        assert!(
            r.body.contains("admin listener") && r.body.contains("purge_on_proxy"),
            "{}",
            r.body
        );
        let allow = r.header("allow").expect("a 405 says what is allowed");
        assert!(allow.contains("GET") && !allow.contains("PURGE"), "{allow}");
        assert!(is_hit(&v, "/page").await, "nothing purged");
    }
    // The admin listener still purges as always.
    let r = send("PURGE", &v.admin("/page"), &[HOST], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!is_hit(&v, "/page").await);
    no_purge_reached(&origin);
    v.running.shutdown().await;
}
