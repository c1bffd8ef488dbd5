//! RFC 9111 revalidation, `HEAD` and interim responses, through the real proxy against a real
//! origin: which `304` updates a stored response and how (sections 3.2 and 4.3.4), what a
//! `HEAD` to a stale object does (section 4.3.5), and `1xx` answers from the origin.

mod common;

use std::sync::atomic::Ordering;

use common::*;

fn inm(s: &Seen) -> Option<String> {
    s.headers
        .get("if-none-match")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Stale at once (so every later request revalidates), with a validator.
fn stale_page(body: &str, etag: &str) -> Reply {
    Reply::ok(body)
        .header("cache-control", "public, max-age=0")
        .header("etag", etag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_that_selects_no_stored_response_is_refetched_unconditionally() {
    // The stored response has "e1"; the origin's 304 names "e2", a response the cache does
    // not hold. That used to become a 502.
    let (origin, v) = pair(|s, n| match (n, inm(s)) {
        (0, _) => stale_page("old body", "\"e1\""),
        (_, Some(_)) => Reply::ok("")
            .status(304)
            .header("etag", "\"e2\"")
            .header("cache-control", "public, max-age=60"),
        (_, None) => Reply::ok("new body")
            .header("etag", "\"e2\"")
            .header("cache-control", "public, max-age=60"),
    })
    .await;
    assert_eq!(get(&v.url("/m")).await.body, "old body");
    let r = get(&v.url("/m")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "new body");
    assert_eq!(r.header("etag"), Some("\"e2\""));
    assert!(
        r.cache_status().contains("fwd-status=200; stored"),
        "{}",
        r.cache_status()
    );
    let seen = origin.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "stored, conditional, unconditional");
    assert_eq!(inm(&seen[1]).as_deref(), Some("\"e1\""));
    assert_eq!(inm(&seen[2]), None, "the second request is unconditional");
    let hit = get(&v.url("/m")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert_eq!(hit.body, "new body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_304_never_selects_a_strong_mismatch_and_a_strong_one_needs_the_same_tag() {
    // Table: the stored ETag, the 304's ETag, and whether the 304 refreshes the stored body.
    let cases = [
        ("\"a\"", "\"a\"", true),
        ("\"a\"", "W/\"a\"", true),
        ("W/\"a\"", "W/\"a\"", true),
        ("W/\"a\"", "\"a\"", false),
        ("\"a\"", "\"b\"", false),
    ];
    for (stored, answered, refreshes) in cases {
        let (_origin, v) = pair(move |s, n| match (n, inm(s)) {
            (0, _) => stale_page("kept", stored),
            (_, Some(_)) => Reply::ok("")
                .status(304)
                .header("etag", answered)
                .header("cache-control", "public, max-age=60"),
            (_, None) => Reply::ok("refetched").header("cache-control", "public, max-age=60"),
        })
        .await;
        get(&v.url("/t")).await;
        let r = get(&v.url("/t")).await;
        assert_eq!(r.status, 200, "{stored} / {answered}");
        let want = if refreshes { "kept" } else { "refetched" };
        assert_eq!(r.body, want, "stored {stored}, 304 {answered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_updates_every_field_it_carries_except_content_length() {
    let (_origin, v) = pair(|s, _| {
        if inm(s).is_some() {
            return Reply::ok("")
                .status(304)
                .header("etag", "\"e1\"")
                .header("cache-control", "public, max-age=60")
                .header("x-added", "new field")
                .header("link", "</c.css>; rel=preload")
                .header("link", "</d.js>; rel=preload")
                .header("content-length", "999");
        }
        stale_page("twelve bytes", "\"e1\"")
            .header("link", "</a.css>; rel=preload")
            .header("link", "</b.js>; rel=preload")
            .header("x-kept", "stored field")
    })
    .await;
    get(&v.url("/u")).await;
    let r = get(&v.url("/u")).await;
    assert!(
        r.cache_status().contains("fwd-status=304"),
        "{}",
        r.cache_status()
    );
    for got in [r, get(&v.url("/u")).await] {
        assert_eq!(got.body, "twelve bytes");
        assert_eq!(
            got.header("content-length"),
            Some("12"),
            "the body's own length"
        );
        assert_eq!(
            got.header("x-added"),
            Some("new field"),
            "a field the 304 adds"
        );
        assert_eq!(got.header("x-kept"), Some("stored field"));
        let links: Vec<_> = got.headers.get_all("link").iter().collect();
        assert_eq!(links, ["</c.css>; rel=preload", "</d.js>; rel=preload"]);
    }
    assert!(get(&v.url("/u")).await.is_hit(), "refreshed for a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_to_a_stale_object_is_sent_as_head_and_a_matching_200_freshens_it() {
    let (origin, v) = pair(|s, n| {
        if s.method == "HEAD" {
            // A 200 (the origin ignores the conditional) with the stored validator.
            return Reply::ok("hello")
                .header("etag", "\"e1\"")
                .header("cache-control", "public, max-age=60")
                .header("x-version", &format!("{n}"));
        }
        stale_page("hello", "\"e1\"").header("x-version", "0")
    })
    .await;
    assert_eq!(get(&v.url("/h")).await.body, "hello");
    let h = send("HEAD", &v.url("/h"), &[], "").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body, "");
    assert_eq!(h.header("x-version"), Some("1"));
    let last = origin.last();
    assert_eq!(last.method, "HEAD", "a HEAD to a stale GET stays a HEAD");
    assert_eq!(inm(&last).as_deref(), Some("\"e1\""), "with the validators");
    let g = get(&v.url("/h")).await;
    assert!(g.is_hit(), "the HEAD freshened it: {}", g.cache_status());
    assert_eq!(g.body, "hello");
    assert_eq!(g.header("x-version"), Some("1"), "updated from the HEAD");
    assert_eq!(g.header("content-length"), Some("5"));
    assert_eq!(origin.count("/h"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_answered_304_freshens_the_stored_get() {
    let (origin, v) = pair(|s, _| {
        if inm(s).is_some() {
            return Reply::ok("")
                .status(304)
                .header("etag", "\"e1\"")
                .header("cache-control", "public, max-age=60");
        }
        stale_page("body", "\"e1\"")
    })
    .await;
    get(&v.url("/h3")).await;
    let h = send("HEAD", &v.url("/h3"), &[], "").await;
    assert_eq!((h.status, h.body.as_str()), (200, ""));
    assert_eq!(h.header("content-length"), Some("4"));
    assert_eq!(origin.last().method, "HEAD");
    let g = get(&v.url("/h3")).await;
    assert!(g.is_hit(), "{}", g.cache_status());
    assert_eq!(g.body, "body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_whose_200_disagrees_leaves_the_stored_get_stale_and_never_stores_itself() {
    // Table: what the HEAD's 200 says against a stored `"e1"`, 5-byte body.
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("another ETag", &[("etag", "\"e2\"")]),
        ("another length", &[("etag", "\"e1\""), ("x-len", "6")]),
        ("no validator", &[]),
    ];
    for (what, head_headers) in cases {
        let (origin, v) = pair(move |s, n| {
            if s.method == "HEAD" {
                let len = head_headers.iter().find(|(k, _)| *k == "x-len");
                let body = if len.is_some() { "hello!" } else { "hello" };
                let mut r = Reply::ok(body).header("cache-control", "public, max-age=60");
                for (k, val) in head_headers.iter().filter(|(k, _)| *k != "x-len") {
                    r = r.header(k, val);
                }
                return r;
            }
            if n == 0 {
                return Reply::ok("hello")
                    .header("cache-control", "public, max-age=60")
                    .header("etag", "\"e1\"");
            }
            Reply::ok("fresh GET")
                .header("cache-control", "public, max-age=60")
                .header("etag", "\"e2\"")
        })
        .await;
        assert_eq!(get(&v.url("/d")).await.body, "hello");
        // The stored response is fresh: the client's no-cache sends the HEAD forward.
        let h = send("HEAD", &v.url("/d"), &[("cache-control", "no-cache")], "").await;
        assert_eq!((h.status, h.body.as_str()), (200, ""), "{what}");
        assert_eq!(origin.last().method, "HEAD", "{what}");
        assert!(
            !h.cache_status().contains("stored"),
            "{what}: {}",
            h.cache_status()
        );
        let g = get(&v.url("/d")).await;
        assert!(!g.is_hit(), "{what}: the stored GET is stale now");
        assert_eq!(g.body, "fresh GET", "{what}: never the HEAD's empty body");
        assert_eq!(origin.count("/d"), 3, "{what}");
        let again = get(&v.url("/d")).await;
        assert!(again.is_hit(), "{what}: {}", again.cache_status());
        assert_eq!(again.body, "fresh GET", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_from_the_origin_are_never_errors_stored_or_mixed_in() {
    let fin: &'static [u8] = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: public, max-age=60\r\ncontent-length: 5\r\n\r\nfinal";
    let cases: [(&str, &'static [u8]); 3] = [
        (
            "103",
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\nx-interim: 1\r\n\r\n",
        ),
        ("102", b"HTTP/1.1 102 Processing\r\nx-interim: 1\r\n\r\n"),
        (
            "103",
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </b.css>; rel=preload\r\nx-interim: 1\r\n\r\n",
        ),
    ];
    for (what, interim) in cases {
        let (url, count) = raw_origin(vec![interim, fin]).await;
        let v = TestVanish::start(&url).await;
        let miss = get(&v.url("/i")).await;
        assert_eq!((miss.status, miss.body.as_str()), (200, "final"), "{what}");
        let hit = get(&v.url("/i")).await;
        assert!(hit.is_hit(), "{what}: the final response is stored");
        for got in [&miss, &hit] {
            assert_eq!(
                got.header("x-interim"),
                None,
                "{what}: interim fields mixed in"
            );
            assert_eq!(got.header("link"), None, "{what}: interim fields mixed in");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "{what}");
        // Received and counted (the metrics are the process's, shared by the cases).
        let m = get(&v.admin("/metrics")).await;
        let needle = format!("vanish_origin_interim_responses_total{{status=\"{what}\"}}");
        assert!(m.body.contains(&needle), "{needle} in\n{}", m.body);
    }
}
