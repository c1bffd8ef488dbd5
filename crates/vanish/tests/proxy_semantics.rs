//! Issue 2: each caching semantic, through the real proxy against a real origin.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const CC60: (&str, &str) = ("cache-control", "public, max-age=60");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_get_is_a_hit_with_age_and_cache_status() {
    let (origin, v) = pair(|_, n| Reply::ok(format!("v{n}")).header(CC60.0, CC60.1)).await;
    // The object is stored after this instant, so its Age can be no more than the whole
    // seconds elapsed since (0 when both requests take under a second, as they normally do).
    let before = Instant::now();
    let a = get(&v.url("/a")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.cache_status(), "vanish; fwd=miss; fwd-status=200; stored");
    assert!(
        a.header("age").is_none(),
        "a miss carries the origin's Age, none here"
    );
    let b = get(&v.url("/a")).await;
    assert_eq!(b.body, "v0");
    assert!(b.is_hit(), "{}", b.cache_status());
    assert!(b.cache_status().starts_with("vanish; hit; ttl="));
    let elapsed = before.elapsed();
    let age: u64 = b
        .header("age")
        .expect("a hit carries Age")
        .parse()
        .expect("Age is whole seconds");
    assert!(
        age <= elapsed.as_secs(),
        "Age {age} counts from the store, {elapsed:?} ago at most"
    );
    assert_eq!(origin.count("/a"), 1);
    // A different query is a different resource.
    get(&v.url("/a?x=1")).await;
    assert_eq!(origin.count("/a?x=1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_keeps_one_variant_per_header_value() {
    let (origin, v) = pair(|s, _| {
        let lang = s
            .headers
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_owned());
        Reply::ok(format!("lang={lang:?}"))
            .header(CC60.0, CC60.1)
            .header("vary", "Accept-Language")
    })
    .await;
    let en = get_with(&v.url("/p"), &[("accept-language", "en")]).await;
    let fr = get_with(&v.url("/p"), &[("accept-language", "fr")]).await;
    let none = get(&v.url("/p")).await;
    let empty = get_with(&v.url("/p"), &[("accept-language", "")]).await;
    assert_eq!(
        origin.count("/p"),
        4,
        "absent and empty are different variants"
    );
    assert!(!en.is_hit() && !fr.is_hit() && !none.is_hit() && !empty.is_hit());
    let en2 = get_with(&v.url("/p"), &[("accept-language", "en")]).await;
    let fr2 = get_with(&v.url("/p"), &[("accept-language", "fr")]).await;
    let none2 = get(&v.url("/p")).await;
    assert!(en2.is_hit() && fr2.is_hit() && none2.is_hit());
    assert_eq!(en2.body, "lang=Some(\"en\")");
    assert_eq!(fr2.body, "lang=Some(\"fr\")");
    assert_eq!(none2.body, "lang=None");
    assert_eq!(origin.count("/p"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_star_is_never_stored() {
    let (origin, v) = pair(|_, _| Reply::ok("x").header(CC60.0, CC60.1).header("vary", "*")).await;
    get(&v.url("/s")).await;
    let b = get(&v.url("/s")).await;
    assert!(!b.is_hit());
    assert!(b.cache_status().contains("detail=vary-star"));
    assert_eq!(origin.count("/s"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_served_from_a_cached_get_and_fills_with_get() {
    let (origin, v) = pair(|_, _| Reply::ok("hello body").header(CC60.0, CC60.1)).await;
    let h = send("HEAD", &v.url("/h"), &[], "").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, "");
    assert_eq!(origin.last().method, "GET", "a HEAD miss fills with GET");
    let g = get(&v.url("/h")).await;
    assert!(g.is_hit());
    assert_eq!(g.body, "hello body");
    let h2 = send("HEAD", &v.url("/h"), &[], "").await;
    assert!(h2.is_hit());
    assert_eq!(h2.body, "");
    assert_eq!(h2.header("content-length"), Some("10"));
    assert_eq!(origin.count("/h"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_conditionals_are_answered_304_from_cache() {
    let (origin, v) = pair(|_, _| {
        Reply::ok("body")
            .header(CC60.0, CC60.1)
            .header("etag", "\"e1\"")
            .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
    })
    .await;
    get(&v.url("/c")).await;
    let inm = get_with(&v.url("/c"), &[("if-none-match", "\"e1\"")]).await;
    assert_eq!(inm.status, 304);
    assert_eq!(inm.header("etag"), Some("\"e1\""));
    assert!(inm.is_hit());
    let ims = get_with(
        &v.url("/c"),
        &[("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT")],
    )
    .await;
    assert_eq!(ims.status, 304);
    let other = get_with(&v.url("/c"), &[("if-none-match", "\"nope\"")]).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body, "body");
    assert_eq!(origin.count("/c"), 1);
    // The fill itself never forwards the client's conditionals.
    assert!(origin.last().headers.get("if-none-match").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_objects_are_revalidated_and_304_refreshes_headers() {
    let (origin, v) = pair(|s, n| {
        if s.headers.get("if-none-match").map(|v| v.as_bytes()) == Some(b"\"e1\"") {
            return Reply::ok("")
                .status(304)
                .header("cache-control", "max-age=60")
                .header("etag", "\"e1\"")
                .header("x-version", &format!("{n}"));
        }
        Reply::ok("original")
            .header("cache-control", "max-age=1")
            .header("etag", "\"e1\"")
            .header("x-version", "0")
    })
    .await;
    get(&v.url("/r")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&v.url("/r")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "original", "the stored body is kept");
    assert_eq!(
        r.header("x-version"),
        Some("1"),
        "304 headers replace the stored ones"
    );
    assert!(
        r.cache_status().contains("fwd=stale; fwd-status=304"),
        "{}",
        r.cache_status()
    );
    assert_eq!(
        origin.last().headers.get("if-none-match").unwrap(),
        "\"e1\""
    );
    let again = get(&v.url("/r")).await;
    assert!(
        again.is_hit(),
        "refreshed for 60s: {}",
        again.cache_status()
    );
    assert_eq!(again.header("x-version"), Some("1"));
    assert_eq!(again.body, "original");
    assert_eq!(origin.count("/r"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_modified_revalidation() {
    let (origin, v) = pair(|s, _| {
        if s.headers.contains_key("if-modified-since") {
            return Reply::ok("")
                .status(304)
                .header("cache-control", "max-age=60");
        }
        Reply::ok("lm body")
            .header("cache-control", "max-age=1")
            .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
    })
    .await;
    get(&v.url("/lm")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&v.url("/lm")).await;
    assert_eq!(r.body, "lm body");
    assert_eq!(
        origin.last().headers.get("if-modified-since").unwrap(),
        "Wed, 21 Oct 2015 07:28:00 GMT"
    );
    assert!(get(&v.url("/lm")).await.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_directives_table() {
    // (path, response headers, request headers, stored?)
    let far = "Wed, 21 Oct 2099 07:28:00 GMT";
    type Pairs = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Pairs, Pairs, bool)> = vec![
        (
            "/max-age",
            vec![("cache-control", "max-age=60")],
            vec![],
            true,
        ),
        (
            "/s-maxage",
            vec![("cache-control", "max-age=0, s-maxage=60")],
            vec![],
            true,
        ),
        ("/expires", vec![("expires", far)], vec![], true),
        (
            "/expires-past",
            vec![("expires", "Wed, 21 Oct 2015 07:28:00 GMT")],
            vec![],
            false,
        ),
        (
            "/no-store",
            vec![("cache-control", "no-store, max-age=60")],
            vec![],
            false,
        ),
        (
            "/private",
            vec![("cache-control", "private, max-age=60")],
            vec![],
            false,
        ),
        (
            "/no-freshness",
            vec![("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
            vec![],
            false,
        ),
        (
            "/set-cookie",
            vec![("cache-control", "max-age=60"), ("set-cookie", "sid=1")],
            vec![],
            false,
        ),
        (
            "/auth",
            vec![("cache-control", "max-age=60")],
            vec![("authorization", "Bearer t")],
            false,
        ),
        (
            "/auth-public",
            vec![("cache-control", "public, max-age=60")],
            vec![("authorization", "Bearer t")],
            true,
        ),
        (
            "/auth-smaxage",
            vec![("cache-control", "s-maxage=60")],
            vec![("authorization", "Bearer t")],
            true,
        ),
        (
            "/req-no-store",
            vec![("cache-control", "max-age=60")],
            vec![("cache-control", "no-store")],
            false,
        ),
    ];
    type Table = Vec<(String, Vec<(String, String)>)>;
    let table: Arc<Table> = Arc::new(
        cases
            .iter()
            .map(|(p, h, _, _)| {
                (
                    p.to_string(),
                    h.iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                )
            })
            .collect(),
    );
    let t2 = table.clone();
    let (origin, v) = pair(move |s, n| {
        let (_, headers) = t2
            .iter()
            .find(|(p, _)| *p == s.path_and_query)
            .expect("known path");
        let mut r = Reply::ok(format!("{} #{n}", s.path_and_query));
        for (k, val) in headers {
            r = r.header(k, val);
        }
        r
    })
    .await;
    for (path, _, req, stored) in &cases {
        get_with(&v.url(path), req).await;
        let second = get_with(&v.url(path), req).await;
        assert_eq!(
            second.is_hit(),
            *stored,
            "{path}: {}",
            second.cache_status()
        );
        assert_eq!(origin.count(path), if *stored { 1 } else { 2 }, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_cookie_is_never_served_to_another_client() {
    let (origin, v) = pair(|_, n| {
        Reply::ok(format!("for user {n}"))
            .header("cache-control", "public, max-age=60")
            .header("set-cookie", &format!("session=user{n}"))
    })
    .await;
    let alice = get(&v.url("/account")).await;
    assert_eq!(alice.header("set-cookie"), Some("session=user0"));
    let bob = get(&v.url("/account")).await;
    assert_eq!(
        bob.header("set-cookie"),
        Some("session=user1"),
        "bob gets his own response"
    );
    assert_eq!(bob.body, "for user 1");
    assert_eq!(origin.count("/account"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_cookie_when_configured_is_stored_without_the_cookie() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("page {n}"))
            .header("cache-control", "public, max-age=60")
            .header("set-cookie", "tracking=1")
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nstore_set_cookie = true\n").await;
    let first = get(&v.url("/")).await;
    assert_eq!(
        first.header("set-cookie"),
        Some("tracking=1"),
        "the filling client keeps its cookie"
    );
    let second = get(&v.url("/")).await;
    assert!(second.is_hit());
    assert!(
        second.header("set-cookie").is_none(),
        "a cookie is never shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_and_must_revalidate_go_to_the_origin() {
    let (origin, v) = pair(|s, _| {
        if s.headers.contains_key("if-none-match") {
            return Reply::ok("")
                .status(304)
                .header("etag", "\"n\"")
                .header("cache-control", "no-cache");
        }
        Reply::ok("nc")
            .header("cache-control", "no-cache")
            .header("etag", "\"n\"")
    })
    .await;
    get(&v.url("/nc")).await;
    let second = get(&v.url("/nc")).await;
    assert_eq!(second.body, "nc");
    assert!(!second.is_hit());
    assert_eq!(origin.count("/nc"), 2);
    assert!(
        origin.last().headers.contains_key("if-none-match"),
        "no-cache revalidates conditionally"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_no_cache_revalidates() {
    let (_origin, v) = pair(|_, n| Reply::ok(format!("v{n}")).header(CC60.0, CC60.1)).await;
    get(&v.url("/x")).await;
    let forced = get_with(&v.url("/x"), &[("cache-control", "no-cache")]).await;
    assert_eq!(forced.body, "v1");
    assert!(
        forced.cache_status().contains("fwd=request"),
        "{}",
        forced.cache_status()
    );
    let after = get(&v.url("/x")).await;
    assert!(after.is_hit());
    assert_eq!(after.body, "v1", "the refreshed response was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_objects_are_not_served() {
    // Fresh for 5 s: the hit right after the fill needs no fast machine.
    let (origin, v) =
        pair(|_, n| Reply::ok(format!("v{n}")).header("cache-control", "max-age=5")).await;
    get(&v.url("/e")).await;
    // The object was stored before the fill's response completed.
    let stored_by = Instant::now();
    assert!(get(&v.url("/e")).await.is_hit());
    // Let its 5 s run out (more time can only make it more stale).
    tokio::time::sleep_until((stored_by + Duration::from_millis(5100)).into()).await;
    let late = get(&v.url("/e")).await;
    assert!(!late.is_hit());
    assert_eq!(late.body, "v1");
    assert_eq!(origin.count("/e"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_methods_invalidate_url_and_same_origin_locations() {
    let (origin, v) = pair(|s, n| match s.method.as_str() {
        "POST" if s.path_and_query == "/fail" => Reply::ok("no").status(500),
        "POST" => Reply::ok("created")
            .status(201)
            .header("location", "/items/1")
            .header("content-location", "http://elsewhere.example/items/2"),
        _ => Reply::ok(format!("{} #{n}", s.path_and_query)).header(CC60.0, CC60.1),
    })
    .await;
    for p in ["/items", "/items/1", "/fail"] {
        get(&v.url(p)).await;
        assert!(get(&v.url(p)).await.is_hit());
    }
    let post = send(
        "POST",
        &v.url("/items"),
        &[("content-type", "text/plain")],
        "new item",
    )
    .await;
    assert_eq!(post.status, 201);
    assert_eq!(post.body, "created");
    assert!(
        !get(&v.url("/items")).await.is_hit(),
        "request URL invalidated"
    );
    assert!(
        !get(&v.url("/items/1")).await.is_hit(),
        "Location invalidated"
    );
    let failed = send("POST", &v.url("/fail"), &[], "x").await;
    assert_eq!(failed.status, 500);
    assert!(
        get(&v.url("/fail")).await.is_hit(),
        "an error response invalidates nothing"
    );
    let put = send("PUT", &v.url("/fail"), &[], "y").await;
    assert_eq!(put.status, 200);
    assert!(!get(&v.url("/fail")).await.is_hit());
    // The body reached the origin.
    assert!(origin
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.method == "POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_origin_request() {
    let (origin, v) = pair(|_, _| {
        Reply::ok("slow page")
            .header(CC60.0, CC60.1)
            .delay(Duration::from_millis(300))
    })
    .await;
    let url = v.url("/hot");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { get(&url).await }));
    }
    let mut hits = 0;
    for t in tasks {
        let g = t.await.unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(g.body, "slow page");
        if g.is_hit() {
            hits += 1;
        }
    }
    assert_eq!(
        origin.count("/hot"),
        1,
        "one origin request for 100 concurrent misses"
    );
    assert!(hits >= 90, "followers are served from the fill: {hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_stale_and_refreshes_in_background() {
    let (origin, v) = pair(|_, n| {
        // The first copy goes stale after 1 s; the refreshed one stays fresh for the test.
        let cc = if n == 0 {
            "max-age=1, stale-while-revalidate=30"
        } else {
            "max-age=60, stale-while-revalidate=30"
        };
        Reply::ok(format!("v{n}")).header("cache-control", cc)
    })
    .await;
    get(&v.url("/swr")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stale = get(&v.url("/swr")).await;
    assert_eq!(stale.body, "v0", "served stale at once");
    assert!(
        stale
            .cache_status()
            .contains("detail=stale-while-revalidate"),
        "{}",
        stale.cache_status()
    );
    // The refresh leads a fill until its copy is stored.
    eventually(
        "the background refresh ends",
        Duration::from_secs(20),
        || async { v.running.cache.fills_in_flight() == 0 },
    )
    .await;
    assert_eq!(origin.count("/swr"), 2, "refreshed in the background");
    let fresh = get(&v.url("/swr")).await;
    assert_eq!(fresh.body, "v1");
    assert!(fresh.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_as_config_default() {
    let origin =
        TestOrigin::start(|_, n| Reply::ok(format!("v{n}")).header("cache-control", "max-age=1"))
            .await;
    let v =
        TestVanish::start_with(&origin.url(), "[cache]\nstale_while_revalidate = \"30s\"\n").await;
    get(&v.url("/d")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stale = get(&v.url("/d")).await;
    assert_eq!(stale.body, "v0");
    assert!(stale.cache_status().contains("stale-while-revalidate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_serves_stale_when_the_origin_fails() {
    let broken = Arc::new(AtomicUsize::new(0));
    let b2 = broken.clone();
    let (_origin, v) = pair(move |s, n| {
        if b2.load(Ordering::SeqCst) == 1 {
            return Reply::ok("down").status(503);
        }
        let cc = if s.path_and_query == "/sie" {
            "max-age=1, stale-if-error=60"
        } else {
            "max-age=1"
        };
        Reply::ok(format!("v{n}")).header("cache-control", cc)
    })
    .await;
    get(&v.url("/sie")).await;
    get(&v.url("/plain")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    broken.store(1, Ordering::SeqCst);
    let s = get(&v.url("/sie")).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body, "v0");
    assert!(
        s.cache_status().contains("detail=stale-if-error"),
        "{}",
        s.cache_status()
    );
    let p = get(&v.url("/plain")).await;
    assert_eq!(
        p.status, 503,
        "without stale-if-error the error passes through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_down_gives_stale_with_stale_if_error_else_502() {
    let origin = TestOrigin::start(|s, n| {
        let cc = if s.path_and_query == "/sie" {
            "max-age=1, stale-if-error=60"
        } else {
            "max-age=1"
        };
        Reply::ok(format!("v{n}")).header("cache-control", cc)
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/sie")).await;
    get(&v.url("/plain")).await;
    let stored_by = Instant::now();
    // Pooled keep-alive connections are closed too, and the port refuses connections (held
    // so that no other listener takes it) until the end of the test.
    let _dead = origin.stop_and_hold().await;
    // Let both objects' 1 s run out.
    tokio::time::sleep_until((stored_by + Duration::from_millis(1100)).into()).await;
    let s = get(&v.url("/sie")).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body, "v0");
    assert!(s.cache_status().contains("stale-if-error"));
    let p = get(&v.url("/plain")).await;
    assert!(p.status == 502 || p.status == 504, "{}", p.status);
    assert!(p.body.contains("origin"), "clear message: {}", p.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_revalidate_forbids_stale_on_error() {
    let broken = Arc::new(AtomicUsize::new(0));
    let b2 = broken.clone();
    let (_o, v) = pair(move |_, n| {
        if b2.load(Ordering::SeqCst) == 1 {
            return Reply::ok("down").status(503);
        }
        Reply::ok(format!("v{n}")).header(
            "cache-control",
            "max-age=1, must-revalidate, stale-if-error=60",
        )
    })
    .await;
    get(&v.url("/mr")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    broken.store(1, Ordering::SeqCst);
    assert_eq!(get(&v.url("/mr")).await.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_hop_by_hop_forwarding_and_repeats() {
    let (origin, v) = pair(|_, _| {
        Reply::ok("h")
            .header(CC60.0, CC60.1)
            .header("connection", "x-hop")
            .header("x-hop", "secret")
            .header("x-multi", "one")
            .header("x-multi", "two")
    })
    .await;
    let g = get_with(
        &v.url("/hdr"),
        &[
            ("connection", "x-client-hop"),
            ("x-client-hop", "1"),
            ("x-keep", "yes"),
            ("x-forwarded-for", "10.9.9.9"),
        ],
    )
    .await;
    assert!(
        g.header("x-hop").is_none(),
        "hop-by-hop response header removed"
    );
    let multi: Vec<_> = g
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(multi, ["one", "two"]);
    assert!(g.header("via").unwrap().contains("vanish"));
    let seen = origin.last();
    assert!(
        seen.headers.get("x-client-hop").is_none(),
        "hop-by-hop request header removed"
    );
    assert_eq!(seen.headers.get("x-keep").unwrap(), "yes");
    assert!(seen
        .headers
        .get("via")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("vanish"));
    // A client's own X-Forwarded-For is dropped (it is no trusted proxy): Vanish names the
    // address it sees.
    assert_eq!(seen.headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
    assert!(seen
        .headers
        .get("forwarded")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("for=127.0.0.1"));
    let hit = get(&v.url("/hdr")).await;
    assert!(hit.is_hit());
    let multi: Vec<_> = hit
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(multi, ["one", "two"], "repeated headers survive storage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_larger_than_the_maximum_stream_through_unstored() {
    let big = vec![b'x'; 300 * 1024];
    let origin = TestOrigin::start(move |s, _| {
        let body = if s.path_and_query == "/big" {
            big.clone()
        } else {
            b"small".to_vec()
        };
        Reply::ok(body).header(CC60.0, CC60.1)
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nmax_object_size = \"100KiB\"\n").await;
    let a = get(&v.url("/big")).await;
    assert_eq!(a.body.len(), 300 * 1024);
    assert!(
        a.cache_status().contains("detail=too-large"),
        "{}",
        a.cache_status()
    );
    let b = get(&v.url("/big")).await;
    assert_eq!(b.body.len(), 300 * 1024);
    assert!(!b.is_hit());
    assert_eq!(origin.count("/big"), 2);
    get(&v.url("/small")).await;
    assert!(get(&v.url("/small")).await.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_maximum_is_not_stored() {
    // No Content-Length: the limit is found while streaming.
    let origin = TestOrigin::start(|_, n| {
        let mut r = Reply::ok(vec![b'y'; 200 * 1024]).header(CC60.0, CC60.1);
        r.truncate_after = None;
        let _ = n;
        r
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nmax_object_size = \"100KiB\"\n").await;
    assert_eq!(get(&v.url("/c")).await.body.len(), 200 * 1024);
    assert_eq!(get(&v.url("/c")).await.body.len(), 200 * 1024);
    assert_eq!(origin.count("/c"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bodies_are_never_stored() {
    use tokio::io::AsyncWriteExt;
    // Longer than what a miss reads before answering (64 KiB), so the answer has started when
    // the origin cuts the body: the client must see the cut.
    const LEN: usize = 200 * 1024;
    // A raw origin: the first response sends its head and half the body, then closes the
    // connection once the test has the proxy's response head (not after some time: the proxy
    // must have answered first); later responses are whole.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(tokio::sync::Notify::new());
    let (s2, c2) = (served.clone(), cut.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let (served, cut) = (s2.clone(), c2.clone());
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                let n = served.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=60\r\n\
                     Content-Length: {LEN}\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
                if n == 0 {
                    let _ = s.write_all(&vec![b'z'; LEN / 2]).await;
                    cut.notified().await;
                } else {
                    let _ = s.write_all(&vec![b'z'; LEN]).await;
                }
                // Dropping the socket closes the connection.
            });
        }
    });
    let v = TestVanish::start(&format!("http://{addr}")).await;
    let url = v.url("/t");
    // The first response is cut: the client sees an error or a short body.
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let res = tokio::time::timeout(Duration::from_secs(20), client.get(url.parse().unwrap()))
        .await
        .expect("response headers within 20s")
        .unwrap();
    use http_body_util::BodyExt;
    assert_eq!(res.status(), 200);
    cut.notify_one();
    let body = tokio::time::timeout(Duration::from_secs(20), res.into_body().collect())
        .await
        .expect("the truncated body ends within 20s");
    assert!(body.is_err(), "the client must see the truncation");
    let second = get(&url).await;
    assert!(!second.is_hit(), "the truncated body was not stored");
    assert_eq!(second.body.len(), LEN);
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_timeouts_and_refusals_are_clear_504_and_502() {
    // The origin answers far later than the timeout (and than the client waits), so the
    // timeout fires however slow the machine is.
    let origin = TestOrigin::start(|_, _| Reply::ok("late").delay(Duration::from_secs(120))).await;
    let v = TestVanish::start_with(&origin.url(), "[upstream]\nresponse_timeout = \"1s\"\n").await;
    let slow = get(&v.url("/slow")).await;
    assert_eq!(slow.status, 504);
    assert!(slow.body.contains("timed out"), "{}", slow.body);
    // A port nobody listens on (held, so nobody can start listening there).
    let (_dead, dead) = refusing_addr();
    let v2 = TestVanish::start(&format!("http://{dead}")).await;
    let refused = get(&v2.url("/x")).await;
    assert_eq!(refused.status, 502);
    assert!(
        refused.body.contains("origin unreachable"),
        "{}",
        refused.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_o, v) = pair(|_, _| Reply::ok("fine").header(CC60.0, CC60.1)).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(v.running.proxy_addr)
            .await
            .unwrap();
        s.write_all(garbage).await.unwrap();
        let mut buf = vec![0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("an answer within 20s")
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 400"), "{garbage:?} -> {head}");
    }
    assert_eq!(get(&v.url("/")).await.body, "fine");
    // A request without Host cannot name a resource.
    let mut s = tokio::net::TcpStream::connect(v.running.proxy_addr)
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_string(&mut out))
        .await
        .expect("the answer to a request without Host ends within 20s");
    assert!(
        out.starts_with("HTTP/1.0 400") || out.starts_with("HTTP/1.1 400"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_stays_within_its_byte_capacity() {
    let (_o, _) = (0, 0);
    let origin =
        TestOrigin::start(|_, _| Reply::ok(vec![b'm'; 64 * 1024]).header(CC60.0, CC60.1)).await;
    let v = TestVanish::start_with(&origin.url(), "[memory]\ncapacity = \"2MiB\"\n").await;
    for i in 0..100 {
        get(&v.url(&format!("/m{i}"))).await;
    }
    let store = v.running.cache.store().clone();
    store.sync();
    let stats = vanish_engine::Store::stats(&store);
    assert!(stats.bytes <= 2 * 1024 * 1024, "{stats:?}");
    assert!(stats.objects > 5 && stats.objects < 100, "{stats:?}");
    assert_eq!(
        store.index_stats().objects as u64,
        stats.objects,
        "index follows evictions"
    );
}
