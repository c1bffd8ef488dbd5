//! RFC 9111 freshness, storability and request directives, and RFC 9213 targeted fields,
//! through the real proxy against a real origin.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

/// The origin answers each path with the headers the table gives it (a body naming the path
/// and how many requests it saw before), plus `etag` when asked.
type Table = Vec<(&'static str, Vec<(&'static str, &'static str)>)>;

async fn table_origin(table: Table, status: u16) -> TestOrigin {
    let table = Arc::new(table);
    TestOrigin::start(move |s, n| {
        let (_, headers) = table
            .iter()
            .find(|(p, _)| *p == s.path_and_query)
            .expect("known path");
        let mut r = Reply::ok(format!("{} #{n}", s.path_and_query)).status(status);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r
    })
    .await
}

/// Sends two plain GETs to each path; asserts whether the second is a hit.
async fn assert_reuse(v: &TestVanish, origin: &TestOrigin, cases: &[(&str, bool)]) {
    for (path, reused) in cases {
        get(&v.url(path)).await;
        let second = get(&v.url(path)).await;
        assert_eq!(
            second.is_hit(),
            *reused,
            "{path}: {}",
            second.cache_status()
        );
        let want = if *reused { 1 } else { 2 };
        assert_eq!(origin.count(path), want, "{path}");
    }
}

/// (path, response headers, reused without validation?)
type Cases = Vec<(&'static str, Vec<(&'static str, &'static str)>, bool)>;

/// Starts an origin answering the table's paths and a Vanish in front, and checks the table.
async fn reuse_table(cases: &Cases) -> (TestOrigin, TestVanish) {
    let table = cases.iter().map(|(p, h, _)| (*p, h.clone())).collect();
    let origin = table_origin(table, 200).await;
    let v = TestVanish::start(&origin.url()).await;
    let reuse: Vec<(&str, bool)> = cases.iter().map(|(p, _, r)| (*p, *r)).collect();
    assert_reuse(&v, &origin, &reuse).await;
    (origin, v)
}

fn ttl(g: &Got) -> i64 {
    let cs = g.cache_status();
    let at = cs.find("ttl=").unwrap_or_else(|| panic!("no ttl in {cs}"));
    cs[at + 4..]
        .split(';')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directive_parsing_table() {
    // (path, response headers, reused without validation?)
    let cases: Cases = vec![
        ("/plain", vec![("cache-control", "max-age=3600")], true),
        ("/upper", vec![("cache-control", "MaX-AgE=3600")], true),
        ("/quoted", vec![("cache-control", "max-age=\"3600\"")], true),
        ("/spaced", vec![("cache-control", "max-age = 3600")], true),
        ("/smaxage", vec![("cache-control", "S-MaxAge=3600")], true),
        (
            "/huge",
            vec![("cache-control", "max-age=99999999999999999999")],
            true,
        ),
        (
            "/no-cache-upper",
            vec![
                ("cache-control", "No-CaChE, max-age=3600"),
                ("etag", "\"e\""),
            ],
            false,
        ),
        (
            "/no-store-upper",
            vec![("cache-control", "No-Store, max-age=3600")],
            false,
        ),
        (
            "/private-upper",
            vec![("cache-control", "PRIVATE, max-age=3600")],
            false,
        ),
        ("/abc", vec![("cache-control", "max-age=abc")], false),
        ("/negative", vec![("cache-control", "max-age=-60")], false),
        ("/decimal", vec![("cache-control", "max-age=6.5")], false),
        (
            "/dup-disagree",
            vec![("cache-control", "max-age=60, max-age=3600")],
            false,
        ),
        (
            "/dup-lines-disagree",
            vec![
                ("cache-control", "max-age=3600"),
                ("cache-control", "max-age=60"),
            ],
            false,
        ),
        (
            "/dup-lines-agree",
            vec![
                ("cache-control", "max-age=3600"),
                ("cache-control", "max-age=3600"),
            ],
            true,
        ),
        (
            "/quoted-comma",
            vec![(
                "cache-control",
                "no-cache=\"x-a, max-age=5\", s-maxage=3600",
            )],
            false,
        ),
    ];
    reuse_table(&cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_expires_and_age_mean_stale() {
    let far = "Wed, 21 Oct 2099 07:28:00 GMT";
    // (path, response headers, reused?)
    let cases: Cases = vec![
        ("/expires", vec![("expires", far)], true),
        (
            "/expires-spaces",
            vec![("expires", "Wed,  21 Oct 2099  07:28:00 GMT")],
            false,
        ),
        ("/expires-zero", vec![("expires", "0")], false),
        (
            "/expires-two",
            vec![
                ("expires", far),
                ("expires", "Thu, 22 Oct 2099 07:28:00 GMT"),
            ],
            false,
        ),
        (
            "/age-list",
            vec![("cache-control", "max-age=3600"), ("age", "old, 0")],
            false,
        ),
        (
            "/age-invalid",
            vec![("cache-control", "max-age=3600"), ("age", "-5")],
            false,
        ),
        (
            "/age-first",
            vec![("cache-control", "max-age=3600"), ("age", "5, 9999")],
            true,
        ),
    ];
    let (_origin, v) = reuse_table(&cases).await;
    let hit = get(&v.url("/age-first")).await;
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!(age >= 5, "the first member of Age counts: {age}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_final_status_with_explicit_freshness_is_stored() {
    for status in [299u16, 400, 404, 499, 500, 502, 503, 504, 599] {
        let table: Table = vec![
            ("/explicit", vec![("cache-control", "max-age=3600")]),
            (
                "/implicit",
                vec![("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
            ),
        ];
        let origin = table_origin(table, status).await;
        let v = TestVanish::start(&origin.url()).await;
        let first = get(&v.url("/explicit")).await;
        assert_eq!(first.status, status);
        let second = get(&v.url("/explicit")).await;
        assert!(second.is_hit(), "{status}: {}", second.cache_status());
        assert_eq!(second.status, status);
        assert_reuse(&v, &origin, &[("/implicit", false)]).await;
        // A route's cacheable_status still restricts what is stored.
        let only_200 =
            TestVanish::start_with(&origin.url(), "[default_rule]\ncacheable_status = [200]\n")
                .await;
        get(&only_200.url("/explicit")).await;
        let again = get(&only_200.url("/explicit")).await;
        assert!(!again.is_hit(), "{status}: {}", again.cache_status());
        assert!(again.cache_status().contains("detail=status"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_with_explicit_freshness_does_not_replace_stale_if_error() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b2 = broken.clone();
    let origin = TestOrigin::start(move |_, n| {
        if b2.load(std::sync::atomic::Ordering::SeqCst) {
            return Reply::ok("down")
                .status(503)
                .header("cache-control", "max-age=3600");
        }
        Reply::ok(format!("v{n}")).header("cache-control", "max-age=1, stale-if-error=600")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/p")).await;
    broken.store(true, std::sync::atomic::Ordering::SeqCst);
    // Once stale, the 503 is answered with the stored copy, and the copy stays.
    eventually(
        "the stored copy served stale on error",
        Duration::from_secs(10),
        || async {
            let r = get(&v.url("/p")).await;
            r.status == 200 && r.cache_status().contains("detail=stale-if-error")
        },
    )
    .await;
    let again = get(&v.url("/p")).await;
    assert_eq!((again.status, again.body.as_str()), (200, "v0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_if_cached_never_contacts_the_origin() {
    let origin =
        TestOrigin::start(|_, n| Reply::ok(format!("v{n}")).header("cache-control", "max-age=1"))
            .await;
    let v = TestVanish::start(&origin.url()).await;
    let oic = [("cache-control", "only-if-cached")];
    let none = get_with(&v.url("/o"), &oic).await;
    assert_eq!(none.status, 504);
    assert!(none.cache_status().contains("detail=only-if-cached"));
    assert_eq!(origin.count("/o"), 0);
    get(&v.url("/o")).await;
    let fresh = get_with(&v.url("/o"), &[("cache-control", "Only-If-Cached")]).await;
    assert!(
        fresh.is_hit() && fresh.body == "v0",
        "{}",
        fresh.cache_status()
    );
    // Once stale (max-age=1), it is 504 again, still without asking the origin.
    eventually("stale gives 504", Duration::from_secs(10), || async {
        get_with(&v.url("/o"), &oic).await.status == 504
    })
    .await;
    assert_eq!(origin.count("/o"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_stale_accepts_stale_unless_the_response_forbids_it() {
    let origin = TestOrigin::start(|s, n| {
        let cc = match s.path_and_query.as_str() {
            "/must" => "max-age=1, must-revalidate",
            "/shared" => "s-maxage=1",
            _ => "max-age=1",
        };
        // A validator keeps the stale object stored (`keep`) so that max-stale can use it.
        Reply::ok(format!("v{n}"))
            .header("cache-control", cc)
            .header("etag", "\"e\"")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    for path in ["/s", "/must", "/shared"] {
        get(&v.url(path)).await;
    }
    let oic = [("cache-control", "only-if-cached")];
    for path in ["/s", "/must", "/shared"] {
        eventually("stale", Duration::from_secs(10), || async {
            get_with(&v.url(path), &oic).await.status == 504
        })
        .await;
    }
    for asks in ["max-stale", "MAX-STALE=3600", "max-stale=\"3600\""] {
        let r = get_with(&v.url("/s"), &[("cache-control", asks)]).await;
        assert_eq!(r.body, "v0", "{asks}");
        assert!(
            r.cache_status().contains("detail=max-stale"),
            "{asks}: {}",
            r.cache_status()
        );
    }
    assert_eq!(origin.count("/s"), 1);
    // max-stale=0 does not cover a response stale for a while: it is revalidated.
    let r = get_with(&v.url("/s"), &[("cache-control", "max-stale=0")]).await;
    assert!(
        !r.is_hit() && origin.count("/s") == 2,
        "{}",
        r.cache_status()
    );
    for path in ["/must", "/shared"] {
        let r = get_with(&v.url(path), &[("cache-control", "max-stale")]).await;
        assert_eq!(r.body, "v1", "{path} may not be served stale");
        assert_eq!(origin.count(path), 2, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_fresh_and_max_age_revalidate_a_fresh_object() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("v{n}")).header("cache-control", "max-age=3600")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/f")).await;
    // (request Cache-Control, reused?)
    let cases = [
        ("max-age=3600", true),
        ("min-fresh=60", true),
        ("max-age=abc", true),
        ("min-fresh=7200", false),
        ("Min-Fresh=7200", false),
        ("max-age=0", false),
        ("MAX-AGE=0", false),
        ("no-cache", false),
    ];
    let mut fetched = 1;
    for (asks, reused) in cases {
        let r = get_with(&v.url("/f"), &[("cache-control", asks)]).await;
        if !reused {
            fetched += 1;
            assert!(
                r.cache_status().contains("fwd=request"),
                "{asks}: {}",
                r.cache_status()
            );
        }
        assert_eq!(r.is_hit(), reused, "{asks}: {}", r.cache_status());
        assert_eq!(origin.count("/f"), fetched, "{asks}");
    }
    let pragma = get_with(&v.url("/f"), &[("pragma", "no-cache")]).await;
    assert!(!pragma.is_hit(), "Pragma: no-cache without Cache-Control");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_revalidation_off_keeps_fresh_objects_off_the_origin() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("v{n}")).header("cache-control", "max-age=3600")
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nclient_revalidation = false\n").await;
    get(&v.url("/g")).await;
    for asks in ["no-cache", "max-age=0", "min-fresh=7200"] {
        let r = get_with(&v.url("/g"), &[("cache-control", asks)]).await;
        assert!(r.is_hit(), "{asks}: {}", r.cache_status());
    }
    let r = get_with(&v.url("/g"), &[("pragma", "no-cache")]).await;
    assert!(r.is_hit());
    assert_eq!(origin.count("/g"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_to_a_no_store_request_is_not_stored() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("v{n}")).header("cache-control", "max-age=3600")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    for asks in ["no-store", "No-Store", "max-age=60, NO-STORE"] {
        let r = get_with(&v.url("/n"), &[("cache-control", asks)]).await;
        assert!(
            !r.cache_status().contains("stored"),
            "{asks}: {}",
            r.cache_status()
        );
    }
    let plain = get(&v.url("/n")).await;
    assert!(
        !plain.is_hit(),
        "nothing was stored: {}",
        plain.cache_status()
    );
    assert_eq!(origin.count("/n"), 4);
    // A stored response may still answer a no-store request (nothing new is stored).
    let r = get_with(&v.url("/n"), &[("cache-control", "no-store")]).await;
    assert!(r.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_cache_control_overrides_cache_control() {
    let long = ("cache-control", "max-age=3600");
    // (path, response headers, reused?)
    let cases: Cases = vec![
        (
            "/no-store",
            vec![long, ("cdn-cache-control", "no-store")],
            false,
        ),
        (
            "/private",
            vec![long, ("cdn-cache-control", "private")],
            false,
        ),
        (
            "/no-cache",
            vec![long, ("cdn-cache-control", "no-cache")],
            false,
        ),
        (
            "/zero",
            vec![long, ("cdn-cache-control", "max-age=0")],
            false,
        ),
        (
            "/expires-ignored",
            vec![
                ("expires", "Wed, 21 Oct 2099 07:28:00 GMT"),
                ("cdn-cache-control", "max-age=0"),
            ],
            false,
        ),
        (
            "/longer",
            vec![
                ("cache-control", "no-cache"),
                ("cdn-cache-control", "max-age=600"),
            ],
            true,
        ),
        // Not a valid dictionary (upper-case key): ignored, Cache-Control decides.
        (
            "/invalid",
            vec![
                ("cache-control", "max-age=0"),
                ("cdn-cache-control", "Max-Age=600"),
            ],
            false,
        ),
        (
            "/short",
            vec![long, ("cdn-cache-control", "max-age=30")],
            true,
        ),
    ];
    let (_origin, v) = reuse_table(&cases).await;
    let short = get(&v.url("/short")).await;
    assert!(ttl(&short) <= 30, "{}", short.cache_status());
    // CDN-Cache-Control travels on for the CDNs in front (RFC 9213 section 3), Cache-Control
    // for the browser.
    assert_eq!(short.header("cdn-cache-control"), Some("max-age=30"));
    assert_eq!(short.header("cache-control"), Some("max-age=3600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanish_cache_control_wins_and_stays_in_the_proxy() {
    // What a Django view says for "600 s in the proxy, 60 s in the browser".
    let table: Table = vec![
        (
            "/page",
            vec![
                ("cache-control", "max-age=60"),
                ("cdn-cache-control", "no-store"),
                ("vanish-cache-control", "max-age=600"),
            ],
        ),
        (
            "/custom",
            vec![
                ("cache-control", "no-store"),
                ("edge-control", "max-age=600"),
            ],
        ),
    ];
    let origin = table_origin(table, 200).await;
    let v = TestVanish::start(&origin.url()).await;
    let miss = get(&v.url("/page")).await;
    let hit = get(&v.url("/page")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert!(ttl(&hit) > 60 && ttl(&hit) <= 600, "{}", hit.cache_status());
    for r in [&miss, &hit] {
        assert!(r.header("vanish-cache-control").is_none());
        assert_eq!(r.header("cache-control"), Some("max-age=60"));
        assert_eq!(r.header("cdn-cache-control"), Some("no-store"));
    }
    // The field's name is a setting.
    let custom = TestVanish::start_with(
        &origin.url(),
        "[cache]\ntargeted_field = \"Edge-Control\"\n",
    )
    .await;
    get(&custom.url("/custom")).await;
    let hit = get(&custom.url("/custom")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert!(hit.header("edge-control").is_none());
    assert_eq!(origin.count("/custom"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_on_hits_and_on_aged_or_delayed_misses() {
    let origin = TestOrigin::start(|s, _| {
        let r = Reply::ok("x").header("cache-control", "max-age=3600");
        match s.path_and_query.as_str() {
            "/aged" => r.header("age", "100"),
            "/slow" => r.delay(Duration::from_millis(1100)),
            _ => r,
        }
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let age = |g: &Got| -> u64 { g.header("age").expect("Age").parse().unwrap() };
    let miss = get(&v.url("/aged")).await;
    assert!(age(&miss) >= 100, "the origin's Age is kept");
    let hit = get(&v.url("/aged")).await;
    assert!(hit.is_hit() && age(&hit) >= 100);
    let slow = get(&v.url("/slow")).await;
    assert!(age(&slow) >= 1, "a delayed miss counts the delay");
    let slow_hit = get(&v.url("/slow")).await;
    assert!(slow_hit.is_hit() && age(&slow_hit) >= 1);
    let plain = get(&v.url("/plain")).await;
    assert!(
        plain.header("age").is_none(),
        "an immediate miss without Age has none"
    );
    assert!(
        get(&v.url("/plain")).await.header("age").is_some(),
        "every hit has Age"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heuristic_freshness_is_opt_in_and_capped() {
    let table: Table = vec![(
        "/lm",
        vec![("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
    )];
    let origin = table_origin(table.clone(), 200).await;
    let off = TestVanish::start(&origin.url()).await;
    assert_reuse(&off, &origin, &[("/lm", false)]).await;
    let origin = table_origin(table.clone(), 200).await;
    let on = TestVanish::start_with(
        &origin.url(),
        "[cache]\nheuristic_fraction = 0.1\nheuristic_max = \"30s\"\n",
    )
    .await;
    assert_reuse(&on, &origin, &[("/lm", true)]).await;
    let hit = get(&on.url("/lm")).await;
    assert!(ttl(&hit) <= 30, "capped: {}", hit.cache_status());
    // Only heuristically cacheable statuses get heuristic freshness.
    let errors = table_origin(table, 500).await;
    let on = TestVanish::start_with(&errors.url(), "[cache]\nheuristic_fraction = 0.1\n").await;
    assert_reuse(&on, &errors, &[("/lm", false)]).await;
}
