//! Clients' preconditions (RFC 9110 section 13) answered by the cache, through the real proxy
//! against a real origin: `If-Match` and `If-Unmodified-Since` (`412`), `If-None-Match` and
//! `If-Modified-Since` (`304`), on hits and on misses (the cache never forwards them on a fill,
//! so it answers them itself), and `proxy-revalidate` (RFC 9111 section 5.2.2.8).

mod common;

use common::*;

const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const EARLIER: &str = "Tue, 20 Oct 2015 07:28:00 GMT";

fn page() -> Reply {
    Reply::ok("the page")
        .header("cache-control", "public, max-age=600")
        .header("etag", "\"v1\"")
        .header("last-modified", LM)
}

/// Each row: the request's preconditions, and the status the client gets.
const TABLE: &[(&[(&str, &str)], u16)] = &[
    (&[("if-match", "\"v1\"")], 200),
    (&[("if-match", "\"v0\", \"v1\"")], 200),
    (&[("if-match", "*")], 200),
    (&[("if-match", "\"v2\"")], 412),
    (&[("if-match", "W/\"v1\"")], 412),
    (&[("if-unmodified-since", LM)], 200),
    (&[("if-unmodified-since", EARLIER)], 412),
    (
        &[("if-match", "\"v1\""), ("if-unmodified-since", EARLIER)],
        200,
    ),
    (&[("if-none-match", "\"v1\"")], 304),
    (&[("if-none-match", "W/\"v1\"")], 304),
    (&[("if-none-match", "\"v2\"")], 200),
    (&[("if-modified-since", LM)], 304),
    (&[("if-modified-since", EARLIER)], 200),
    (&[("if-match", "\"v2\""), ("if-none-match", "\"v1\"")], 412),
];

fn check(r: &Got, want: u16, pre: &[(&str, &str)], when: &str) {
    assert_eq!(r.status, want, "{when}: {pre:?}: {}", r.cache_status());
    match want {
        200 => assert_eq!(r.body, "the page", "{when}: {pre:?}"),
        _ => assert_eq!(r.body, "", "{when}: {pre:?}: a {want} has no body"),
    }
    if want != 200 {
        assert_eq!(r.header("etag"), Some("\"v1\""), "{when}: {pre:?}");
    }
    if want == 412 {
        assert!(
            r.header("cache-control").is_none(),
            "{when}: a 412 carries only the validators"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_are_answered_on_hits() {
    let (origin, v) = pair(|_, _| page()).await;
    assert_eq!(get(&v.url("/p")).await.status, 200);
    for (pre, want) in TABLE {
        let r = get_with(&v.url("/p"), pre).await;
        assert!(r.is_hit(), "{pre:?}: {}", r.cache_status());
        check(&r, *want, pre, "hit");
    }
    assert_eq!(origin.total(), 1, "every answer came from the stored page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_are_answered_on_misses_and_the_page_is_stored_all_the_same() {
    let (origin, v) = pair(|_, _| page()).await;
    for (i, (pre, want)) in TABLE.iter().enumerate() {
        let path = format!("/m{i}");
        let r = get_with(&v.url(&path), pre).await;
        check(&r, *want, pre, "miss");
        assert!(
            r.cache_status().contains("stored"),
            "{pre:?}: {}",
            r.cache_status()
        );
        let seen = origin.last();
        for name in [
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ] {
            assert!(
                !seen.headers.contains_key(name),
                "{name} reached the origin on a fill"
            );
        }
        let again = get(&v.url(&path)).await;
        assert!(again.is_hit(), "{pre:?}: {}", again.cache_status());
        assert_eq!(again.body, "the page");
    }
    assert_eq!(origin.total(), TABLE.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_are_answered_when_the_response_is_not_stored() {
    // `no-store`: passed to the client, stored nowhere; the client's If-Match was not sent,
    // so the cache still answers it.
    let (_origin, v) = pair(|_, _| {
        Reply::ok("the page")
            .header("cache-control", "no-store")
            .header("etag", "\"v1\"")
    })
    .await;
    let failed = get_with(&v.url("/n"), &[("if-match", "\"v2\"")]).await;
    assert_eq!(failed.status, 412, "{}", failed.cache_status());
    let ok = get_with(&v.url("/n"), &[("if-match", "\"v1\"")]).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "the page"));
    let nm = get_with(&v.url("/n"), &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((nm.status, nm.body.as_str()), (304, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preconditions_do_not_apply_to_error_statuses() {
    let (_origin, v) = pair(|_, _| {
        Reply::ok("gone")
            .status(404)
            .header("cache-control", "public, max-age=600")
            .header("etag", "\"v1\"")
    })
    .await;
    for _ in 0..2 {
        let r = get_with(&v.url("/e"), &[("if-match", "\"v2\"")]).await;
        assert_eq!((r.status, r.body.as_str()), (404, "gone"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_revalidate_is_fresh_for_its_lifetime_and_never_served_stale() {
    let (origin, v) = pair(|_, n| {
        Reply::ok(format!("v{n}"))
            .header("cache-control", "public, max-age=600, proxy-revalidate")
            .header("etag", "\"v\"")
    })
    .await;
    assert_eq!(get(&v.url("/r")).await.body, "v0");
    let hit = get(&v.url("/r")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert_eq!(hit.body, "v0");
    assert_eq!(
        origin.total(),
        1,
        "fresh: no revalidation while max-age holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_revalidate_overrides_stale_while_revalidate() {
    // Stale at once; without proxy-revalidate the stale copy would be served while it is
    // refreshed in the background.
    let (origin, v) = pair(|_, n| {
        Reply::ok(format!("v{n}"))
            .header(
                "cache-control",
                "public, max-age=0, stale-while-revalidate=600, proxy-revalidate",
            )
            .header("etag", format!("\"{n}\"").as_str())
    })
    .await;
    assert_eq!(get(&v.url("/s")).await.body, "v0");
    let next = get(&v.url("/s")).await;
    assert_eq!(next.body, "v1", "{}", next.cache_status());
    assert_eq!(origin.total(), 2);
}
