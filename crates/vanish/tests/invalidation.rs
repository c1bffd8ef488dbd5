//! Issue 3 end to end: the Django ticket's asks through the real proxy and admin API, the
//! admin API's errors and auth, Varnish-style PURGE, the IETF draft format, soft purges,
//! metrics and explain, and read-after-purge under concurrency.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// An origin for pages of two hosts, varying on Accept-Language, tagged by path.
async fn site() -> (TestOrigin, TestVanish) {
    let origin = TestOrigin::start(|s, n| site_page(s, &format!("#{n}"))).await;
    let v = TestVanish::start(&origin.url()).await;
    (origin, v)
}

const HOSTS: [&str; 2] = ["a.example", "b.example"];
const LANGS: [&str; 2] = ["en", "fr"];
const PAGES: [&str; 5] = ["/p?x=1", "/p?x=2", "/p", "/blog/1", "/blog/2"];

/// Fills every (host, page, lang).
async fn fill_all(v: &TestVanish) {
    for h in HOSTS {
        for p in PAGES {
            for l in LANGS {
                let g = get_with(&v.url(p), &[("host", h), ("accept-language", l)]).await;
                assert_eq!(g.status, 200);
                assert!(get_with(&v.url(p), &[("host", h), ("accept-language", l)])
                    .await
                    .is_hit());
            }
        }
    }
}

/// Which (host, page, lang) are still hits.
async fn cached(v: &TestVanish) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for h in HOSTS {
        for p in PAGES {
            for l in LANGS {
                // Explain reads the store without filling it.
                let url = format!("http://{h}{p}");
                let q = format!(
                    "/explain?url={}&header=accept-language:{l}",
                    urlencode(&url)
                );
                let e = get(&v.admin(&q)).await.json();
                let selected = e["variants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["selected"] == true);
                if selected {
                    out.push((h.to_owned(), p.to_owned(), l.to_owned()));
                }
            }
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn all_except(gone: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for h in HOSTS {
        for p in PAGES {
            for l in LANGS {
                if !gone.contains(&(h, p, l)) {
                    out.push((h.to_owned(), p.to_owned(), l.to_owned()));
                }
            }
        }
    }
    out
}

async fn purge_ok(v: &TestVanish, json: &str, expect: u64) {
    let r = purge(v, json).await;
    assert_eq!(r.status, 200, "{json}: {}", r.body);
    assert_eq!(r.json()["matched"], expect, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_ask_a_url_with_its_query_all_header_variants() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    purge_ok(&v, r#"{"type":"url","url":"https://a.example/p?x=1"}"#, 2).await;
    assert_eq!(
        cached(&v).await,
        all_except(&[("a.example", "/p?x=1", "en"), ("a.example", "/p?x=1", "fr")])
    );
    // The next request reaches the origin, the others stay hits.
    let g = get_with(
        &v.url("/p?x=1"),
        &[("host", "a.example"), ("accept-language", "fr")],
    )
    .await;
    assert!(!g.is_hit());
    assert!(get_with(
        &v.url("/p?x=2"),
        &[("host", "a.example"), ("accept-language", "fr")]
    )
    .await
    .is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_ask_b_url_any_query_only_french() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    purge_ok(
        &v,
        r#"{"type":"url","url":"http://a.example/p","any_query":true,"headers":{"Accept-Language":"fr"}}"#,
        3,
    )
    .await;
    assert_eq!(
        cached(&v).await,
        all_except(&[
            ("a.example", "/p?x=1", "fr"),
            ("a.example", "/p?x=2", "fr"),
            ("a.example", "/p", "fr")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_ask_c_group_by_tag_and_by_prefix() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    purge_ok(
        &v,
        r#"{"selectors":[{"type":"tag","tag":"path:/blog/1"}]}"#,
        4,
    )
    .await;
    assert_eq!(
        cached(&v).await,
        all_except(&[
            ("a.example", "/blog/1", "en"),
            ("a.example", "/blog/1", "fr"),
            ("b.example", "/blog/1", "en"),
            ("b.example", "/blog/1", "fr"),
        ])
    );
    purge_ok(
        &v,
        r#"{"type":"prefix","prefix":"/blog/","host":"b.example"}"#,
        2,
    )
    .await;
    let blog_b2 = [
        ("b.example", "/blog/2", "en"),
        ("b.example", "/blog/2", "fr"),
    ];
    let mut gone = vec![
        ("a.example", "/blog/1", "en"),
        ("a.example", "/blog/1", "fr"),
        ("b.example", "/blog/1", "en"),
        ("b.example", "/blog/1", "fr"),
    ];
    gone.extend(blog_b2);
    assert_eq!(cached(&v).await, all_except(&gone));
    purge_ok(&v, r#"{"type":"tag","tag":"blog"}"#, 2).await;
    gone.extend([
        ("a.example", "/blog/2", "en"),
        ("a.example", "/blog/2", "fr"),
    ]);
    assert_eq!(cached(&v).await, all_except(&gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_ask_d_by_path_alone_across_hosts() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    // Path with its exact query, every host.
    purge_ok(&v, r#"{"type":"path","path":"/p","query":"x=2"}"#, 4).await;
    // Path with any query, only French, every host.
    purge_ok(
        &v,
        r#"{"type":"path","path":"/p","any_query":true,"headers":{"accept-language":"fr"}}"#,
        4,
    )
    .await;
    // Path without a query, every host, every variant.
    purge_ok(&v, r#"{"type":"path","path":"/p"}"#, 2).await;
    let mut gone = Vec::new();
    for h in HOSTS {
        gone.extend([
            (h, "/p?x=2", "en"),
            (h, "/p?x=2", "fr"),
            (h, "/p?x=1", "fr"),
            (h, "/p", "fr"),
            (h, "/p", "en"),
        ]);
    }
    assert_eq!(cached(&v).await, all_except(&gone));
    // And a whole host.
    purge_ok(&v, r#"{"type":"host","host":"A.EXAMPLE"}"#, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bad_input_gets_400_naming_the_field_and_purges_nothing() {
    let (_o, v) = site().await;
    get_with(&v.url("/p"), &[("host", "a.example")]).await;
    let cases = [
        ("{not json", ""),
        (r#"{"selectors":[]}"#, "selectors"),
        (
            r#"{"selectors":[{"type":"everything"}]}"#,
            "selectors[0].type",
        ),
        (
            r#"{"selectors":[{"type":"url","url":"not a url"}]}"#,
            "selectors[0].url",
        ),
        (
            r#"{"selectors":[{"type":"url","url":"/relative"}]}"#,
            "selectors[0].url",
        ),
        (r#"{"selectors":[{"type":"tag"}]}"#, "selectors[0].tag"),
        (
            r#"{"selectors":[{"type":"prefix","prefix":"blog"}]}"#,
            "selectors[0].prefix",
        ),
        (r#"{"selectors":[{"type":"all"}],"mode":"nuke"}"#, "mode"),
        (
            r#"{"selectors":[{"type":"all"}],"dry_run":"yes"}"#,
            "dry_run",
        ),
    ];
    for (body, field) in cases {
        let r = purge(&v, body).await;
        assert_eq!(r.status, 400, "{body}");
        let j = r.json();
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
        if field.is_empty() {
            assert!(j.get("field").is_none(), "{body}");
        } else {
            assert_eq!(j["field"], field, "{body}");
        }
    }
    assert!(
        get_with(&v.url("/p"), &[("host", "a.example")])
            .await
            .is_hit(),
        "nothing purged"
    );
    let big = format!(
        r#"{{"selectors":[{{"type":"tag","tag":"{}"}}]}}"#,
        "x".repeat(2 << 20)
    );
    assert_eq!(purge(&v, &big).await.status, 413);
    assert_eq!(get(&v.admin("/nope")).await.status, 404);
    assert_eq!(
        send("DELETE", &v.admin("/invalidate"), &[], "")
            .await
            .status,
        405
    );
    let e = get(&v.admin("/explain?url=nope")).await;
    assert_eq!(e.status, 400);
    assert_eq!(e.json()["field"], "url");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_auth_refusals_purge_nothing() {
    let origin =
        TestOrigin::start(|_, n| Reply::ok(format!("v{n}")).header("cache-control", "max-age=60"))
            .await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[admin]\ntokens = [\"correct-horse-battery\"]\n",
    )
    .await;
    get(&v.url("/x")).await;
    let body = r#"{"type":"all"}"#;
    for auth in [
        None,
        Some("Bearer wrong-token-here"),
        Some("correct-horse-battery"),
        Some("Basic abc"),
    ] {
        let mut h = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let r = send("POST", &v.admin("/invalidate"), &h, body).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert!(r.json()["error"].as_str().unwrap().contains("Bearer"));
    }
    let r = send("PURGE", &v.admin("/x"), &[], "").await;
    assert_eq!(r.status, 401, "PURGE needs the token too");
    assert!(get(&v.url("/x")).await.is_hit(), "nothing purged");
    let ok = send(
        "POST",
        &v.admin("/invalidate"),
        &[
            ("authorization", "Bearer correct-horse-battery"),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(!get(&v.url("/x")).await.is_hit());

    // No token and a source outside the allow-list: 403.
    let v2 = TestVanish::start_with(&origin.url(), "[admin]\nallow = [\"10.0.0.0/8\"]\n").await;
    get(&v2.url("/y")).await;
    let r = purge(&v2, body).await;
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].is_string());
    assert!(get(&v2.url("/y")).await.is_hit());
    assert_eq!(get(&v2.admin("/healthz")).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_style_purge_requests() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    // `curl -X PURGE -H 'Host: a.example' http://admin/p?x=1`, as Wagtail's HTTPBackend sends.
    let r = send("PURGE", &v.admin("/p?x=1"), &[("host", "a.example")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["matched"], 2);
    // Matching nothing still answers 200 (such tools log anything else as a failure).
    let r = send(
        "PURGE",
        &v.admin("/never-cached"),
        &[("host", "a.example")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["matched"], 0);
    // Tags, as xkey and Fastly-style clients send them.
    let r = send(
        "PURGE",
        &v.admin("/"),
        &[("xkey-purge", "path:/blog/1 path:/blog/2")],
        "",
    )
    .await;
    assert_eq!(r.json()["matched"], 8);
    let r = send("PURGE", &v.admin("/"), &[("surrogate-key", "path:/p")], "").await;
    assert_eq!(
        r.json()["matched"],
        10,
        "/p with any query on both hosts, both languages, but the two already purged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_draft_format_is_accepted() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    purge_ok(
        &v,
        r#"{"type":"uri","selectors":["http://a.example/p?x=1"]}"#,
        2,
    )
    .await;
    purge_ok(
        &v,
        r#"{"type":"uri-prefix","selectors":["http://b.example/blog/"]}"#,
        4,
    )
    .await;
    purge_ok(&v, r#"{"type":"group","selectors":["blog"]}"#, 4).await;
    purge_ok(
        &v,
        r#"{"type":"origin","selectors":["http://a.example"]}"#,
        4,
    )
    .await;
    assert_eq!(
        cached(&v).await.len(),
        6,
        "only b.example's /p pages remain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_and_changes_nothing() {
    let (_o, v) = site().await;
    fill_all(&v).await;
    let r = purge(&v, r#"{"selectors":[{"type":"all"}],"dry_run":true}"#).await;
    assert_eq!(r.json()["matched"], 20);
    assert_eq!(r.json()["dry_run"], true);
    assert_eq!(cached(&v).await.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_purge_revalidates_or_serves_stale_where_allowed() {
    let origin = TestOrigin::start(|s, n| {
        let cc = if s.path_and_query == "/swr" {
            "max-age=300, stale-while-revalidate=60"
        } else {
            "max-age=300"
        };
        if s.headers.get("if-none-match").is_some() {
            return Reply::ok("")
                .status(304)
                .header("etag", "\"v\"")
                .header("cache-control", cc);
        }
        Reply::ok(format!("{} #{n}", s.path_and_query))
            .header("cache-control", cc)
            .header("etag", "\"v\"")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/plain")).await;
    get(&v.url("/swr")).await;
    purge_ok(&v, r#"{"selectors":[{"type":"path","path":"/plain"},{"type":"path","path":"/swr"}],"mode":"soft"}"#, 2).await;
    // Soft-purged: kept, but the next request revalidates with the origin.
    let e = get(&v.admin("/explain?url=http%3A%2F%2F127.0.0.1%2Fplain")).await;
    let _ = e;
    let r = get(&v.url("/plain")).await;
    assert_eq!(r.body, "/plain #0", "304: the kept body is served");
    assert!(
        r.cache_status().contains("fwd=stale; fwd-status=304"),
        "{}",
        r.cache_status()
    );
    assert!(origin.last().headers.contains_key("if-none-match"));
    assert!(get(&v.url("/plain")).await.is_hit(), "refreshed");
    // With stale-while-revalidate: served stale at once, refreshed in the background.
    let r = get(&v.url("/swr")).await;
    assert!(
        r.cache_status().contains("stale-while-revalidate"),
        "{}",
        r.cache_status()
    );
    eventually(
        "the background refresh reaches the origin",
        Duration::from_secs(20),
        || async { origin.count("/swr") >= 2 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_from_every_configured_header_and_are_stripped() {
    let origin = TestOrigin::start(|s, _| {
        Reply::ok("t")
            .header("cache-control", "max-age=60")
            .header("surrogate-key", "sk")
            .header("cache-tag", "ct1, ct2")
            .header("xkey", &format!("xk{}", s.path_and_query.len()))
            .header("cache-groups", "\"cg\"")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let g = get(&v.url("/t")).await;
    for h in ["surrogate-key", "cache-tag", "xkey", "cache-groups"] {
        assert!(g.header(h).is_none(), "{h} stripped from the miss");
    }
    let hit = get(&v.url("/t")).await;
    assert!(hit.header("surrogate-key").is_none(), "and from hits");
    for tag in ["sk", "ct2", "xk2", "cg"] {
        let r = purge(
            &v,
            &format!(r#"{{"type":"tag","tag":"{tag}","dry_run":true}}"#),
        )
        .await;
        assert_eq!(r.json()["matched"], 1, "{tag}");
    }
    // Configurable: read only xkey, and keep the headers.
    let v2 = TestVanish::start_with(
        &origin.url(),
        "[cache]\ntag_headers = [\"xkey\"]\nstrip_tag_headers = false\n",
    )
    .await;
    let g = get(&v2.url("/t")).await;
    assert_eq!(g.header("surrogate-key"), Some("sk"));
    assert_eq!(
        purge(&v2, r#"{"type":"tag","tag":"sk","dry_run":true}"#)
            .await
            .json()["matched"],
        0
    );
    assert_eq!(
        purge(&v2, r#"{"type":"tag","tag":"xk2","dry_run":true}"#)
            .await
            .json()["matched"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_group_invalidation_on_unsafe_responses() {
    let origin = TestOrigin::start(|s, n| {
        if s.method == "POST" {
            return Reply::ok("ok").header("cache-group-invalidation", "\"articles\"");
        }
        Reply::ok(format!("#{n}"))
            .header("cache-control", "max-age=60")
            .header("cache-groups", "\"articles\"")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/a/1")).await;
    get(&v.url("/a/2")).await;
    send("POST", &v.url("/api/edit"), &[], "x").await;
    assert!(!get(&v.url("/a/1")).await.is_hit());
    assert!(!get(&v.url("/a/2")).await.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health() {
    let (_o, v) = site().await;
    get_with(&v.url("/p"), &[("host", "a.example")]).await;
    get_with(&v.url("/p"), &[("host", "a.example")]).await;
    purge_ok(&v, r#"{"type":"tag","tag":"path:/p"}"#, 1).await;
    let m = get(&v.admin("/metrics")).await;
    assert_eq!(m.status, 200);
    for needle in [
        "vanish_requests_total{result=\"hit\"}",
        "vanish_requests_total{result=\"miss\"}",
        "vanish_purge_requests_total{selector=\"tag\"}",
        "vanish_purged_objects_total",
        "vanish_store_objects",
        "vanish_store_bytes",
    ] {
        assert!(m.body.contains(needle), "{needle} in\n{}", m.body);
    }
    let h = get(&v.admin("/healthz")).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_key_variants_tags_and_state() {
    let (_o, v) = site().await;
    let filled = Instant::now();
    get_with(
        &v.url("/blog/1?x=1"),
        &[("host", "A.example:80"), ("accept-language", "fr")],
    )
    .await;
    let e = get(&v.admin(
        "/explain?url=http%3A%2F%2Fa.example%2Fblog%2F1%3Fx%3D1&header=Accept-Language%3Afr",
    ))
    .await
    .json();
    assert_eq!(e["key"], "http://a.example/blog/1?x=1");
    assert_eq!(e["cached"], true);
    let var = &e["variants"][0];
    assert_eq!(var["selected"], true);
    assert_eq!(var["vary"]["accept-language"], "fr");
    assert_eq!(var["state"], "fresh");
    // max-age=300, less the time this test took since the fill (a busy machine may be slow).
    let waited = filled.elapsed().as_secs() as i64;
    assert!(var["ttl_s"].as_i64().unwrap() > 290 - waited, "{var}");
    assert!(var["tags"].as_array().unwrap().iter().any(|t| t == "blog"));
    let e = get(&v.admin(
        "/explain?url=http%3A%2F%2Fa.example%2Fblog%2F1%3Fx%3D1&header=Accept-Language%3Aen",
    ))
    .await
    .json();
    assert_eq!(
        e["variants"][0]["selected"], false,
        "no English variant stored"
    );
}

/// Read-after-purge under concurrency: slow fills race purges; once a purge is acknowledged,
/// no request that starts afterwards is served a body older than the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_after_an_acknowledged_purge_gets_a_pre_purge_body() {
    let version = Arc::new(AtomicU64::new(0));
    let v2 = version.clone();
    let origin = TestOrigin::start(move |_, n| {
        // The body carries the version current when the origin rendered it.
        let ver = v2.load(Ordering::SeqCst);
        Reply::ok(format!("{ver}"))
            .header("cache-control", "max-age=300")
            .header("surrogate-key", "all-pages")
            .delay(Duration::from_millis((n as u64 * 7) % 40))
    })
    .await;
    let v = Arc::new(TestVanish::start(&origin.url()).await);
    let purges: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    // The race runs for 4 s, and on until enough purges and enough requests after one were
    // seen, however slowly a busy machine runs it (the counts are checked below).
    let (stop, purged_once) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let after_a_purge = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (v, stop, purged_once, after_a_purge) = (
            v.clone(),
            stop.clone(),
            purged_once.clone(),
            after_a_purge.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let path = format!("/page{}", (c + i) % 3);
                i += 1;
                let after = purged_once.load(Ordering::SeqCst);
                let started = Instant::now();
                let g = get(&v.url(&path)).await;
                assert_eq!(g.status, 200);
                seen.push((started, g.body.parse::<u64>().unwrap(), path));
                if after {
                    after_a_purge.fetch_add(1, Ordering::SeqCst);
                }
            }
            seen
        }));
    }
    let purger = {
        let (v, version, purges) = (v.clone(), version.clone(), purges.clone());
        let (stop, purged_once, after_a_purge) =
            (stop.clone(), purged_once.clone(), after_a_purge.clone());
        tokio::spawn(async move {
            let selectors = [
                r#"{"type":"tag","tag":"all-pages"}"#,
                r#"{"type":"prefix","prefix":"/page"}"#,
                r#"{"type":"host","host":"127.0.0.1"}"#,
                r#"{"type":"all"}"#,
            ];
            let start = Instant::now();
            let limit = Duration::from_secs(120);
            let mut i = 0;
            while start.elapsed() < Duration::from_secs(4)
                || purges.lock().unwrap().len() <= 20
                || after_a_purge.load(Ordering::SeqCst) <= 100
            {
                assert!(
                    start.elapsed() < limit,
                    "not 21 purges and 101 requests after one within {limit:?}"
                );
                let new = version.fetch_add(1, Ordering::SeqCst) + 1;
                let r = purge(&v, selectors[i % selectors.len()]).await;
                assert_eq!(r.status, 200);
                purges.lock().unwrap().push((Instant::now(), new));
                purged_once.store(true, Ordering::SeqCst);
                i += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let purged = purger.await;
    stop.store(true, Ordering::SeqCst); // also when the purger failed
    purged.unwrap();
    let purges = purges.lock().unwrap().clone();
    assert!(purges.len() > 20, "enough purges: {}", purges.len());
    let mut checked = 0;
    for c in clients {
        for (started, body_version, path) in c.await.unwrap() {
            // The newest purge acknowledged before this request started.
            if let Some((_, min)) = purges
                .iter()
                .filter(|(acked, _)| *acked < started)
                .max_by_key(|(a, _)| *a)
            {
                assert!(
                    body_version >= *min,
                    "{path}: a request started after purge v{min} was acknowledged got v{body_version}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "enough requests checked: {checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_sent_after_a_complete_miss_response_finds_its_object() {
    // The store copy is written before the client gets the body's last byte (Content-Length)
    // or its end (chunked): an app that fetches a page and then purges it never races the fill.
    let origin = TestOrigin::start(|s, _| {
        // Bodies of 0 to 60 KB, so some arrive in several chunks.
        let i: usize = s
            .path_and_query
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let reply = Reply::ok(format!(
            "{} {}",
            s.path_and_query,
            "x".repeat(i % 4 * 20_000)
        ))
        .header("cache-control", "public, max-age=300")
        .header("surrogate-key", "fresh");
        if s.path_and_query.starts_with("/chunked") {
            reply.header("transfer-encoding", "chunked")
        } else {
            reply
        }
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    for i in 0..100 {
        let path = if i % 2 == 0 {
            format!("/cl/{i}")
        } else {
            format!("/chunked/{i}")
        };
        let g = get(&v.url(&path)).await;
        assert_eq!(g.status, 200);
        assert!(!g.is_hit());
        purge_ok(&v, r#"{"type":"tag","tag":"fresh"}"#, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_index_entry_leaks_after_heavy_churn() {
    let origin = TestOrigin::start(|s, _| {
        let short = s.path_and_query.contains("short");
        Reply::ok(vec![b'c'; 8 * 1024])
            .header(
                "cache-control",
                if short { "max-age=1" } else { "max-age=300" },
            )
            .header("vary", "Accept-Language")
            .header(
                "surrogate-key",
                &format!("t{} common", s.path_and_query.len() % 7),
            )
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[memory]\ncapacity = \"1MiB\"\n").await;
    let mut last_short = Instant::now();
    for i in 0..600 {
        let p = if i % 3 == 0 {
            format!("/short/{i}")
        } else {
            format!("/long/{}/{}", i % 50, i)
        };
        let lang = ["en", "fr", "de"][i % 3];
        get_with(&v.url(&p), &[("accept-language", lang)]).await;
        if i % 3 == 0 {
            last_short = Instant::now();
        }
        if i % 97 == 0 {
            purge(&v, r#"{"type":"prefix","prefix":"/long/1"}"#).await;
        }
    }
    let store = v.running.cache.store().clone();
    store.sync();
    let stats = vanish_engine::Store::stats(&store);
    let idx = store.index_stats();
    assert!(stats.bytes <= 1024 * 1024, "{stats:?}");
    assert_eq!(idx.objects as u64, stats.objects);
    // After every object expires or is purged, nothing is left in any index structure.
    purge(&v, r#"{"type":"prefix","prefix":"/long/"}"#).await;
    // Time must pass (a sleep): the last short object's max-age=1, plus one tick of the
    // timer wheel the memory store's cache (moka) expires entries with: it evicts an expired
    // entry only once its clock has moved past the entry's 1.07 s bucket, `sync` cannot force
    // it sooner.
    let expired = last_short + Duration::from_secs(1) + Duration::from_millis(1074 + 200);
    tokio::time::sleep_until(expired.into()).await;
    store.sync();
    assert_eq!(
        store.index_stats(),
        vanish_engine::purge::index::IndexStats::default(),
        "{:?}",
        store.index_stats()
    );
    assert_eq!(vanish_engine::Store::stats(&store).objects, 0);
}
