//! Issue 7: attacks that must fail, limits, and faults that must not lose or corrupt data,
//! each through the real proxy.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CC60: (&str, &str) = ("cache-control", "public, max-age=60");

fn echo_origin() -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    |s, n| {
        let mut seen: Vec<String> = s
            .headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-"))
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("")))
            .collect();
        seen.sort();
        Reply::ok(format!(
            "{} {} body={} #{n} {}",
            s.method,
            s.path_and_query,
            s.body.len(),
            seen.join(",")
        ))
        .header(CC60.0, CC60.1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_headers_never_reach_the_origin() {
    let origin = TestOrigin::start(echo_origin()).await;
    let v = TestVanish::start(&origin.url()).await;
    let poison = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-scheme", "http"),
        ("x-forwarded-proto", "javascript"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-http-method-override", "DELETE"),
        ("x-host", "evil.example"),
    ];
    let first = get_with(&v.url("/page"), &poison).await;
    let seen = origin.last();
    // Vanish sets X-Forwarded-Host and X-Forwarded-Proto itself, from what it knows; none of
    // the client's values reach the origin.
    let host = v.running.proxy_addr.to_string();
    for (h, value) in poison {
        let own = match h {
            "x-forwarded-host" => Some(host.as_str()),
            "x-forwarded-proto" => Some("http"),
            _ => None,
        };
        assert_eq!(
            seen.headers.get(h).map(|v| v.to_str().unwrap()),
            own,
            "{h}: the client's {value:?} reached the origin"
        );
    }
    assert_eq!(seen.method, "GET");
    assert!(!first.body.contains("evil"), "{}", first.body);
    // What everyone else gets is the clean page.
    let other = get(&v.url("/page")).await;
    assert!(other.is_hit());
    assert_eq!(other.body, first.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fat_get_bodies_are_not_forwarded() {
    let origin = TestOrigin::start(echo_origin()).await;
    let v = TestVanish::start(&origin.url()).await;
    let g = send(
        "GET",
        &v.url("/fat"),
        &[("content-type", "application/json")],
        r#"{"q":"evil"}"#,
    )
    .await;
    assert_eq!(g.status, 200);
    assert!(
        origin.last().body.is_empty(),
        "a GET body never reaches the origin"
    );
    assert!(g.body.contains("body=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_confusion_is_refused_or_made_consistent() {
    let origin = TestOrigin::start(|s, _| {
        let host = s.headers.get("host").unwrap().to_str().unwrap().to_owned();
        Reply::ok(format!("page for {host}")).header(CC60.0, CC60.1)
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let addr = v.running.proxy_addr;
    let dup = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\n\r\n",
    )
    .await;
    assert!(dup.starts_with("HTTP/1.1 400"), "{dup}");
    assert_eq!(origin.total(), 0, "nothing forwarded");
    // Absolute-form target naming one host, Host naming another: the target wins for both the
    // key and the origin (RFC 9112 section 3.2.2).
    let abs = raw(
        addr,
        b"GET http://good.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(abs.contains("page for good.example"), "{abs}");
    let good = get_with(&v.url("/"), &[("host", "good.example")]).await;
    assert!(good.is_hit());
    assert_eq!(good.body, "page for good.example");
    let evil = get_with(&v.url("/"), &[("host", "evil.example")]).await;
    assert!(
        !evil.is_hit(),
        "the evil host's key was never filled with the good page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalisation_tricks_never_serve_one_url_for_another() {
    let origin = TestOrigin::start(|s, n| {
        Reply::ok(format!("{} #{n}", s.path_and_query)).header(CC60.0, CC60.1)
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let b = get(&v.url("/b")).await;
    // Equivalent spellings share the object (the origin received the normal form).
    for same in ["/a/../b", "/a/%2e%2e/b", "/./b", "/%62"] {
        let g = get(&v.url(same)).await;
        assert!(g.is_hit(), "{same}");
        assert_eq!(g.body, b.body, "{same}");
    }
    assert_eq!(origin.total(), 1);
    // Different URLs stay different, whatever the origin makes of them.
    for (i, other) in [
        "/B",
        "//b",
        "/b/",
        "/a%2F..%2Fb",
        "/b;x=1",
        "/b?",
        "/b?x=1",
        "/b?x=1;y=2",
    ]
    .iter()
    .enumerate()
    {
        let g = get(&v.url(other)).await;
        assert!(!g.is_hit(), "{other}");
        assert!(g.body.starts_with(&other[..2]), "{other}: {}", g.body);
        assert_eq!(origin.total(), i + 2, "{other}");
    }
    // Repeated and reordered parameters are different keys unless a rule says otherwise.
    let r1 = get(&v.url("/q?a=1&a=2")).await;
    let r2 = get(&v.url("/q?a=2&a=1")).await;
    assert_ne!(r1.body, r2.body);
    // Purges use the same normal form.
    let r = purge(&v, r#"{"type":"path","path":"/x/../b"}"#).await;
    assert_eq!(r.json()["matched"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_cloaking_with_semicolons_fails() {
    let origin = TestOrigin::start(|s, n| {
        Reply::ok(format!("{} #{n}", s.path_and_query)).header(CC60.0, CC60.1)
    })
    .await;
    let v =
        TestVanish::start_with(&origin.url(), "[default_rule]\ndrop_query = [\"utm_*\"]\n").await;
    let evil = get(&v.url("/js?utm_content=x;callback=alert(1)")).await;
    assert_eq!(
        origin.last().path_and_query,
        "/js",
        "the dropped parameter (and what hides in it) never reaches the origin"
    );
    let clean = get(&v.url("/js")).await;
    assert!(clean.is_hit());
    assert!(!clean.body.contains("callback"));
    assert_eq!(evil.body, clean.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_cache_deception_is_decided_by_the_response() {
    let (origin, v) = {
        let o = TestOrigin::start(|s, n| {
            let r = Reply::ok(format!("secret account page #{n}"));
            if s.path_and_query.contains("cookie") {
                r.header("cache-control", "public, max-age=60")
                    .header("set-cookie", "session=1")
            } else {
                r.header("cache-control", "private, max-age=60")
            }
        })
        .await;
        let v = TestVanish::start(&o.url()).await;
        (o, v)
    };
    for path in ["/account/settings/x.css", "/account/cookie/logo.png"] {
        get(&v.url(path)).await;
        let second = get(&v.url(path)).await;
        assert!(!second.is_hit(), "{path}");
        assert_eq!(
            second.body, "secret account page #1",
            "{path}: each client gets its own"
        );
        assert_eq!(origin.count(path), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_and_the_connection_closed() {
    let origin = TestOrigin::start(echo_origin()).await;
    let v = TestVanish::start(&origin.url()).await;
    let addr = v.running.proxy_addr;
    // Content-Length with Transfer-Encoding: hyper applies RFC 9112 section 6.1 (the chunked
    // framing alone, Content-Length removed, connection closed after the response), so the
    // bytes after the chunked body are never read as a request and the origin sees one
    // unambiguous request.
    let out = raw(
        addr,
        b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        1,
        "one response, then the connection closes: {out}"
    );
    let seen = origin.last();
    assert_eq!(seen.path_and_query, "/s");
    assert!(
        seen.headers.get("content-length").is_none_or(|v| v == "0"),
        "{:?}",
        seen.headers
    );
    let cases: [&[u8]; 5] = [
        b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"GET /s HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
        b"POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        b"GET /s HTTP/1.1\r\nHost : a\r\n\r\n",
    ];
    for (i, c) in cases.iter().enumerate() {
        let out = raw(addr, c).await;
        assert!(out.starts_with("HTTP/1.1 400"), "case {i}: {out}");
        assert_eq!(
            out.matches("HTTP/1.1").count(),
            1,
            "case {i}: one response, then the connection closes: {out}"
        );
    }
    assert!(
        !origin
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.path_and_query == "/smuggled"),
        "no smuggled request reached the origin"
    );
    assert_eq!(get(&v.url("/ok")).await.status, 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_responses_stay_private_through_head_and_revalidation() {
    let origin = TestOrigin::start(|s, n| {
        if s.path_and_query == "/reval" {
            if s.headers.contains_key("if-none-match") {
                // The page became private: the 304 must not make the stored copy shareable.
                return Reply::ok("")
                    .status(304)
                    .header("etag", "\"e\"")
                    .header("cache-control", "private, max-age=60");
            }
            return Reply::ok(format!("public v{n}"))
                .header("etag", "\"e\"")
                .header("cache-control", "max-age=1");
        }
        Reply::ok(format!("private #{n}")).header("cache-control", "private, max-age=60")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let h = send("HEAD", &v.url("/p"), &[], "").await;
    assert_eq!(h.status, 200);
    let g = get(&v.url("/p")).await;
    assert!(!g.is_hit());
    assert_eq!(origin.count("/p"), 2, "the HEAD's fill was not stored");
    get(&v.url("/reval")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&v.url("/reval")).await;
    assert_eq!(r.status, 200);
    assert!(!r.cache_status().contains("stored"), "{}", r.cache_status());
    let again = get(&v.url("/reval")).await;
    assert!(!again.is_hit(), "{}", again.cache_status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_url_limits() {
    let origin = TestOrigin::start(echo_origin()).await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[limits]\nmax_header_bytes = \"16KiB\"\nmax_url_bytes = \"1KiB\"\n",
    )
    .await;
    let long_url = format!("/{}", "a".repeat(2000));
    let g = get(&v.url(&long_url)).await;
    assert_eq!(g.status, 414);
    let big = "x".repeat(20_000);
    let out = raw(
        v.running.proxy_addr,
        format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 431"),
        "{}",
        &out[..out.len().min(80)]
    );
    assert_eq!(origin.total(), 0);
    let m = get(&v.admin("/metrics")).await.body;
    assert!(
        m.contains("vanish_refused_requests_total{status=\"414\"}"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_tag_selector_and_admin_body_limits() {
    let origin = TestOrigin::start(|s, _| {
        let tags = if s.path_and_query == "/tags" {
            "a b c"
        } else {
            "a"
        };
        Reply::ok("x")
            .header(CC60.0, CC60.1)
            .header("vary", "x-v")
            .header("surrogate-key", tags)
    })
    .await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[limits]\nmax_variants = 3\nmax_tags = 2\nmax_selectors = 2\nmax_admin_body = \"1KiB\"\n",
    )
    .await;
    for i in 0..5 {
        get_with(&v.url("/v"), &[("x-v", &i.to_string())]).await;
    }
    let e = get(&v.admin(&format!(
        "/explain?url={}",
        v.url("/v").replace(':', "%3A").replace('/', "%2F")
    )))
    .await
    .json();
    assert_eq!(
        e["variants"].as_array().unwrap().len(),
        3,
        "oldest variants go first"
    );
    let t = get(&v.url("/tags")).await;
    assert!(
        t.cache_status().contains("detail=tag-limit"),
        "{}",
        t.cache_status()
    );
    let r = purge(&v, r#"{"selectors":[{"type":"tag","tag":"a"},{"type":"tag","tag":"b"},{"type":"tag","tag":"c"}]}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "selectors");
    let big = format!(r#"{{"type":"tag","tag":"{}"}}"#, "t".repeat(2000));
    assert_eq!(purge(&v, &big).await.status, 413);
    let m = get(&v.admin("/metrics")).await.body;
    for limit in ["tags", "selectors", "admin_body"] {
        assert!(
            m.contains(&format!("vanish_limit_hits_total{{limit=\"{limit}\"}}")),
            "{limit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_concurrency_is_bounded() {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper_util::rt::TokioIo;
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    // An origin that counts the requests it is answering: a request counts from its arrival
    // until just before its response is sent. Vanish holds an origin slot from before it
    // sends a request until its response arrives, so what is counted is never more than the
    // slots in use, on any machine.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (n2, m2) = (now.clone(), max.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (n3, m3) = (n2.clone(), m2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: http::Request<Incoming>| {
                    let (now, max) = (n3.clone(), m3.clone());
                    async move {
                        let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(cur, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        let res = http::Response::builder()
                            .header(CC60.0, CC60.1)
                            .body(Full::new(Bytes::from_static(b"slow")))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let v = TestVanish::start_with(
        &format!("http://{addr}"),
        "[limits]\nmax_origin_connections = 2\n",
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let url = v.url(&format!("/c{i}"));
        tasks.push(tokio::spawn(async move { get(&url).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(now.load(Ordering::SeqCst), 0, "every request was answered");
    assert!(
        max.load(Ordering::SeqCst) <= 2,
        "at most 2 at once, saw {}",
        max.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_are_bounded() {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper_util::rt::TokioIo;
    use tokio::sync::Notify;
    // Busy connections hold the slots (idle ones may be closed to make room): an origin that
    // answers /hold/N only when the test releases it keeps its requests in progress for as
    // long as the test needs, on any machine.
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let release = Arc::new([Notify::new(), Notify::new()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = listener.local_addr().unwrap();
    let (seen2, release2) = (seen.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (seen, release) = (seen2.clone(), release2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let (seen, release) = (seen.clone(), release.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        seen.lock().unwrap().push(path.clone());
                        if let Some(i) = path.strip_prefix("/hold/") {
                            release[i.parse::<usize>().unwrap()].notified().await;
                        }
                        let res = http::Response::builder()
                            .header("cache-control", "no-store")
                            .body(Full::new(Bytes::from(path)))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let v = TestVanish::start_with(
        &format!("http://{origin_addr}"),
        "[limits]\nmax_client_connections = 2\n",
    )
    .await;
    let addr = v.running.proxy_addr;
    let saw = |path: &str| seen.lock().unwrap().iter().any(|p| p == path);
    // Each holding connection is busy (its request reached the origin) before the next one
    // connects.
    let mut holds = Vec::new();
    for i in 0..2 {
        let req = format!("GET /hold/{i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        holds.push(connect_and_send(addr, req.as_bytes()).await);
        let path = format!("/hold/{i}");
        eventually(
            &format!("{path} reaches the origin"),
            Duration::from_secs(20),
            || async { saw(&path) },
        )
        .await;
    }
    // The third connection is made and its request sent: it waits in the backlog.
    let third = connect_and_send(
        addr,
        b"GET /third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    // Time for a proxy that ignored the limit to forward it (a slow machine can only hide
    // such a bug here, never fail a correct proxy).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!saw("/third"), "the third connection waits");
    // One holding request ends and its connection closes: the third gets its slot.
    release[0].notify_one();
    let mut holds = holds.into_iter();
    let first = read_to_close(holds.next().unwrap()).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let out = read_to_close(third).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    release[1].notify_one();
    let second = read_to_close(holds.next().unwrap()).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_length_is_never_stored() {
    // A raw origin that promises 100 bytes and sends 50.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let s2 = served.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let n = s2.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                let body = if n == 0 {
                    "y".repeat(50)
                } else {
                    "z".repeat(100)
                };
                let head =
                    "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n";
                let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let v = TestVanish::start(&format!("http://{addr}")).await;
    let first = raw(
        v.running.proxy_addr,
        b"GET /cl HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    // The body fails within what a miss reads before answering: a 502, not a short 200.
    assert!(first.starts_with("HTTP/1.1 502"), "{first}");
    assert!(!first.contains(&"z".repeat(100)));
    let second = get(&v.url("/cl")).await;
    assert!(!second.is_hit(), "the short body was not stored");
    assert_eq!(second.body, "z".repeat(100));
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_does_not_break_the_fill() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok(vec![b'd'; 4 * 1024 * 1024])
            .header(CC60.0, CC60.1)
            .delay(Duration::from_millis(200))
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let addr = v.running.proxy_addr;
    // The leader reads the headers and a little, then leaves.
    let leader = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET /big HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("the leader gets the start of the response within 20s");
        drop(s);
    });
    // The leader's request leads the fill once it reached the origin (which answers 200 ms
    // later); from then on the follower waits for that fill or finds its copy stored.
    eventually(
        "the leader's request reaches the origin",
        Duration::from_secs(20),
        || async { origin.count("/big") == 1 },
    )
    .await;
    let follower = get(&v.url("/big")).await;
    assert!(
        follower.is_hit(),
        "served from the leader's fill: {}",
        follower.cache_status()
    );
    tokio::time::timeout(Duration::from_secs(20), leader)
        .await
        .expect("the leader is done within 20s")
        .unwrap();
    assert_eq!(
        follower.body.len(),
        4 * 1024 * 1024,
        "the waiting client got the whole body"
    );
    let later = get(&v.url("/big")).await;
    assert!(
        later.is_hit(),
        "the fill completed and was stored: {}",
        later.cache_status()
    );
    assert_eq!(later.body.len(), 4 * 1024 * 1024);
    assert_eq!(origin.count("/big"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_flood_keeps_every_receipt() {
    let origin = TestOrigin::start(|s, n| {
        Reply::ok(format!("{} #{n}", s.path_and_query)).header(CC60.0, CC60.1)
    })
    .await;
    let v = Arc::new(TestVanish::start(&origin.url()).await);
    for i in 0..50 {
        get(&v.url(&format!("/f/{i}"))).await;
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let v = v.clone();
        tasks.push(tokio::spawn(async move {
            purge(&v, &format!(r#"{{"type":"path","path":"/f/{}"}}"#, i % 50)).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut matched = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200);
        let j = r.json();
        assert!(
            ids.insert(j["id"].as_str().unwrap().to_owned()),
            "unique receipts"
        );
        matched += j["matched"].as_u64().unwrap();
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(matched, 50, "each object purged exactly once");
    for i in 0..50 {
        assert!(!get(&v.url(&format!("/f/{i}"))).await.is_hit());
    }
}
