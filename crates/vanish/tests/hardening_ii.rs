//! Issue 17 (hardening II): the classes an independent attack run got through, each with
//! several members, through the real proxy. The origin reflects what it received, so each test
//! proves that no attacker value reached a stored response.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EVIL: &str = "evil.example";

/// An origin whose body lists every request header it received (sorted `name=value` lines),
/// cacheable for a minute.
fn reflecting_origin() -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    |s, n| {
        let mut seen: Vec<String> = s
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?")))
            .collect();
        seen.sort();
        Reply::ok(format!("render #{n}\n{}\n", seen.join("\n")))
            .header("cache-control", "public, max-age=60")
    }
}

/// The forwarding and rewriting families as an attacker spells them.
const POISON: [&str; 24] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-forwarded-path",
    "x-forwarded-uri",
    "x-forwarded-ssl",
    "x-forwarded-protocol",
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-server",
    "x-forwarded-for",
    "x-original-uri",
    "x-original-host",
    "x-original-url",
    "x-rewrite-url",
    "x-http-host-override",
    "x-http-method-override",
    "front-end-https",
    "x-url-scheme",
    "x_forwarded_host",
    "x_forwarded_proto",
    "x-real-ip",
    "true-client-ip",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_forwarding_headers_never_reach_the_origin_and_vanish_sets_its_own() {
    let origin = TestOrigin::start(reflecting_origin()).await;
    let v = TestVanish::start(&origin.url()).await;
    for (i, name) in POISON.iter().enumerate() {
        let url = v.url(&format!("/page?case={i}"));
        let value = format!("{EVIL}-{i}");
        let first = get_with(&url, &[(name, &value)]).await;
        assert_eq!(first.status, 200, "{name}");
        assert!(
            !first.body.contains(EVIL),
            "{name}: the attacker's value reached the origin:\n{}",
            first.body
        );
        // Vanish's own forwarding headers, from what it knows.
        let host = v.url("").trim_start_matches("http://").to_owned();
        let host = host.trim_end_matches('/');
        for want in [
            "x-forwarded-for=127.0.0.1".to_owned(),
            "x-forwarded-proto=http".to_owned(),
            format!("x-forwarded-host={host}"),
            format!("forwarded=for=127.0.0.1;proto=http;host=\"{host}\""),
            "via=1.1 vanish".to_owned(),
        ] {
            assert!(
                first.body.lines().any(|l| l == want),
                "{name}: expected {want:?} at the origin:\n{}",
                first.body
            );
        }
        let clean = get(&url).await;
        assert!(clean.is_hit(), "{name}: {}", clean.cache_status());
        assert!(!clean.body.contains(EVIL), "{name}: poisoned hit");
    }
    assert_eq!(origin.total(), POISON.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_and_the_pass_list_keep_forwarding_headers_in_the_key() {
    let origin = TestOrigin::start(reflecting_origin()).await;
    // The test's client is on loopback: trusted as a load balancer in front.
    let trusted = TestVanish::start_with(
        &origin.url(),
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    )
    .await;
    let url = trusted.url("/t");
    let https = get_with(&url, &[("x-forwarded-proto", "https")]).await;
    assert!(
        https.body.contains("\nx-forwarded-proto=https\n"),
        "{}",
        https.body
    );
    let xff = get_with(
        &url,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "198.51.100.7"),
        ],
    )
    .await;
    assert!(
        xff.is_hit(),
        "client addresses are not keyed: {}",
        xff.cache_status()
    );
    let http = get_with(&url, &[("x-forwarded-proto", "http")]).await;
    assert!(!http.is_hit(), "the scheme a trusted hop names is keyed");
    assert!(
        http.body.contains("\nx-forwarded-proto=http\n"),
        "{}",
        http.body
    );
    assert!(get_with(&url, &[("x-forwarded-proto", "https")])
        .await
        .is_hit());
    let fresh = get_with(&trusted.url("/t2"), &[("x-forwarded-for", "198.51.100.7")]).await;
    assert!(
        fresh
            .body
            .contains("\nx-forwarded-for=198.51.100.7, 127.0.0.1\n"),
        "a trusted hop's X-Forwarded-For is appended to:\n{}",
        fresh.body
    );

    // Loopback not trusted; one header passed from every client, and keyed.
    let passing = TestVanish::start_with(
        &origin.url(),
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\nforward_headers = [\"X-Forwarded-Prefix\"]\n",
    )
    .await;
    let url = passing.url("/p");
    let a = get_with(
        &url,
        &[("x-forwarded-prefix", "/a"), ("x-forwarded-host", EVIL)],
    )
    .await;
    assert!(a.body.contains("\nx-forwarded-prefix=/a\n"), "{}", a.body);
    assert!(!a.body.contains(EVIL), "{}", a.body);
    let b = get_with(&url, &[("x_forwarded_prefix", "/b")]).await;
    assert!(!b.is_hit(), "another prefix is another key");
    assert!(b.body.contains("/b"), "{}", b.body);
    let again = get_with(&url, &[("x-forwarded-prefix", "/a")]).await;
    assert!(again.is_hit());
    assert!(again.body.contains("\nx-forwarded-prefix=/a\n"));
    let none = get(&url).await;
    assert!(!none.is_hit(), "no prefix is a key of its own");
    assert!(!none.body.contains("x-forwarded-prefix"), "{}", none.body);

    // Configuration errors name the key.
    let bad = vanish::config::parse_file("[server]\nforward_headers = [\"accept-language\"]\n")
        .and_then(|f| {
            vanish::config::Settings::from_parts(
                f,
                &vanish::config::Overrides {
                    upstream: Some(origin.url()),
                    ..Default::default()
                },
            )
        });
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.to_string().contains("server.forward_headers[0]")),
        "{:?}",
        bad.err()
    );
}

/// What the origin renders from: Host, Accept-Language (Vary), X-Device (a key header) and a
/// `currency` cookie (a key cookie).
fn rendering_origin() -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    |s, n| {
        let h = |name: &str| {
            s.headers
                .get(name)
                .map_or("-".to_owned(), |v| v.to_str().unwrap_or("?").to_owned())
        };
        Reply::ok(format!(
            "host={} lang={} device={} cookie={} #{n}",
            h("host"),
            h("accept-language"),
            h("x-device"),
            h("cookie")
        ))
        .header("cache-control", "public, max-age=60")
        .header("vary", "Accept-Language")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_remove_what_the_key_uses() {
    let origin = TestOrigin::start(rendering_origin()).await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[default_rule]\nkey_headers = [\"X-Device\"]\nkey_cookies = [\"currency\"]\n",
    )
    .await;
    let site = v
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Each attack nominates a header the key, the rules or Vary use, and sends a value for it.
    let attacks: [(&str, (&str, &str), &str); 4] = [
        ("host", ("host", &site), "host="),
        ("accept-language", ("accept-language", "fr"), "lang=fr"),
        ("x-device", ("x-device", "mobile"), "device=mobile"),
        ("cookie", ("cookie", "currency=eur"), "cookie=currency=eur"),
    ];
    for (i, (nominated, header, rendered)) in attacks.iter().enumerate() {
        let url = v.url(&format!("/c{i}"));
        let attack = get_with(&url, &[("connection", nominated), *header]).await;
        assert_eq!(attack.status, 200, "{nominated}");
        if *nominated == "host" {
            assert!(
                attack.body.contains(&format!("host={site}")),
                "Host cannot be removed: {}",
                attack.body
            );
            continue;
        }
        // The nominated header was removed before keying: the origin rendered without it,
        // and that page is stored for requests without it only.
        assert!(
            !attack.body.contains(rendered),
            "{nominated}: {}",
            attack.body
        );
        let clean = get_with(&url, &[*header]).await;
        assert!(
            clean.body.contains(rendered),
            "{nominated}: a clean client with {header:?} got a page rendered without it: {}",
            clean.body
        );
        let plain = get(&url).await;
        assert!(
            !plain.body.contains(rendered),
            "{nominated}: {}",
            plain.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_receives_the_normalised_host() {
    let origin = TestOrigin::start(rendering_origin()).await;
    let v = TestVanish::start(&origin.url()).await;
    let first = get_with(&v.url("/h"), &[("host", "site.test")]).await;
    assert!(first.body.contains("host=site.test "), "{}", first.body);
    for raw in ["SITE.TEST", "site.test:80", "site.test.", "Site.Test.:80"] {
        let r = get_with(&v.url("/h"), &[("host", raw)]).await;
        assert!(r.is_hit(), "{raw}: {}", r.cache_status());
        assert!(r.body.contains("host=site.test "), "{raw}: {}", r.body);
        let path = format!("/h-{}", raw.len());
        let miss = get_with(&v.url(&path), &[("host", raw)]).await;
        assert!(
            miss.body.contains("host=site.test "),
            "{raw}: the origin got the raw Host: {}",
            miss.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_responses_with_ambiguous_framing_are_refused_and_never_stored() {
    let cases: [(&str, &'static [u8]); 4] = [
        (
            "chunked with a shorter Content-Length",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\ncontent-length: 10\r\n\r\n50\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n0\r\n\r\n",
        ),
        (
            "chunked with a longer Content-Length",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\ncontent-length: 500\r\n\r\n14\r\nBBBBBBBBBBBBBBBBBBBB\r\n0\r\n\r\n",
        ),
        (
            "Content-Length equal to the first chunk",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: max-age=60\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n4\r\nCCCC\r\n4\r\nDDDD\r\n0\r\n\r\n",
        ),
        (
            "a transfer coding other than chunked",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: max-age=60\r\ntransfer-encoding: gzip, chunked\r\n\r\n5\r\nEEEEE\r\n0\r\n\r\n",
        ),
    ];
    for (what, response) in cases {
        let (url, count) = raw_origin(vec![response]).await;
        let v = TestVanish::start(&url).await;
        // Two requests pipelined on one connection: each answer must be framed by what is
        // sent, so the second one is a response of its own, not bytes of the first.
        let host = v.running.proxy_addr;
        let pipelined = format!(
            "GET /x HTTP/1.1\r\nhost: {host}\r\n\r\nGET /x HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
        );
        let out = raw(v.running.proxy_addr, pipelined.as_bytes()).await;
        assert_eq!(
            out.matches("HTTP/1.1 502").count(),
            2,
            "{what}: expected two 502 answers, got:\n{out}"
        );
        for body in ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"] {
            assert!(!out.contains(body), "{what}: relayed: {out}");
        }
        let again = get(&v.url("/x")).await;
        assert_eq!(again.status, 502, "{what}: never stored");
        assert_eq!(
            count.load(Ordering::SeqCst),
            3,
            "{what}: every request went to the origin"
        );
        // Forwarded methods are refused the same way.
        let post = send("POST", &v.url("/x"), &[], "data").await;
        assert_eq!(post.status, 502, "{what}: POST");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_framing_is_the_stored_bodys_own() {
    // A plain chunked body (no Content-Length): the hit carries the exact length.
    let (url, count) = raw_origin(vec![
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    ])
    .await;
    let v = TestVanish::start(&url).await;
    let miss = get(&v.url("/c")).await;
    assert_eq!(miss.body, "abcdefg");
    let hit = get(&v.url("/c")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert_eq!(hit.header("content-length"), Some("7"));
    assert_eq!(hit.body, "abcdefg");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_web_pages() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("v{n}"))
            .header("cache-control", "public, max-age=60")
            .header("vary", "Cookie")
    })
    .await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[admin]\nhosts = [\"admin.internal\"]\nallow_origins = [\"https://ops.example.com\"]\nredact_headers = [\"X-Api-Key\"]\n",
    )
    .await;
    let page = v.url("/secret");
    get_with(&page, &[("cookie", "sessionid=alice-secret")]).await;
    let all = r#"{"type":"all"}"#;
    let json = ("content-type", "application/json");
    // A page's "simple" cross-site POSTs: no JSON content type.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = send(
            "POST",
            &v.admin("/invalidate"),
            &[("content-type", ct)],
            all,
        )
        .await;
        assert_eq!(r.status, 415, "{ct}");
        assert_eq!(r.json()["field"], "content-type");
    }
    let r = send("POST", &v.admin("/invalidate"), &[], all).await;
    assert_eq!(r.status, 415, "no content type");
    // Requests from web pages carry Origin.
    for o in ["https://evil.example", "null", "http://127.0.0.1:8081"] {
        let r = send("POST", &v.admin("/invalidate"), &[json, ("origin", o)], all).await;
        assert_eq!(r.status, 403, "{o}");
        assert_eq!(r.json()["field"], "origin");
        let r = send("PURGE", &v.admin("/secret"), &[("origin", o)], "").await;
        assert_eq!(r.status, 403, "PURGE from {o}");
    }
    let hit = get_with(&page, &[("cookie", "sessionid=alice-secret")]).await;
    assert!(hit.is_hit(), "nothing was purged: {}", hit.cache_status());
    // DNS rebinding: a Host that does not name the listener.
    let explain = format!("/explain?url=http://{}/secret", v.running.proxy_addr);
    for host in [EVIL, "evil.example:8081", "127.0.0.1.evil.example"] {
        let r = send("GET", &v.admin(&explain), &[("host", host)], "").await;
        assert_eq!(r.status, 403, "{host}");
        assert_eq!(r.json()["field"], "host");
    }
    for host in ["localhost", "admin.internal:9000", "127.0.0.1"] {
        let r = send("GET", &v.admin(&explain), &[("host", host)], "").await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // explain never shows stored Cookie values.
    let r = send("GET", &v.admin(&explain), &[], "").await;
    assert!(!r.body.contains("alice-secret"), "{}", r.body);
    assert_eq!(r.json()["variants"][0]["vary"]["cookie"], "<redacted>");
    // An allowed origin, JSON, and a Varnish-style PURGE naming the site in Host still work.
    let ok = send(
        "POST",
        &v.admin("/invalidate"),
        &[json, ("origin", "https://ops.example.com")],
        r#"{"type":"path","path":"/secret"}"#,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["matched"], 1);
    get(&v.url("/other")).await;
    let site = v.running.proxy_addr.to_string();
    let purge = send("PURGE", &v.admin("/other"), &[("host", &site)], "").await;
    assert_eq!(purge.status, 200, "{}", purge.body);
    assert_eq!(purge.json()["matched"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_status_says_stored_only_for_what_was_stored() {
    let origin = TestOrigin::start(|s, _| {
        let cc = ("cache-control", "public, max-age=60");
        match s.path_and_query.as_str() {
            // Fails after 10 bytes of 100.
            "/broken" => {
                let mut r = Reply::ok(vec![b'b'; 100]).header(cc.0, cc.1);
                r.truncate_after = Some(10);
                r
            }
            "/huge" => Reply::ok(vec![b'h'; 2 * 1024 * 1024]).header(cc.0, cc.1),
            _ => Reply::ok("small").header(cc.0, cc.1),
        }
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nmax_object_size = \"1MiB\"\n").await;
    let small = get(&v.url("/small")).await;
    assert_eq!(
        small.cache_status(),
        "vanish; fwd=miss; fwd-status=200; stored"
    );
    // A body that fails before the answer starts: 502, not a truncated 200 said "stored".
    let broken = get(&v.url("/broken")).await;
    assert_eq!(broken.status, 502, "{}", broken.body);
    assert!(
        !broken.cache_status().contains("stored"),
        "{}",
        broken.cache_status()
    );
    assert!(!get(&v.url("/broken")).await.is_hit());
    // Too large to store: said so, never "stored".
    let huge = get(&v.url("/huge")).await;
    assert_eq!(huge.body.len(), 2 * 1024 * 1024);
    assert!(
        !huge.cache_status().contains("stored"),
        "{}",
        huge.cache_status()
    );
    assert!(!get(&v.url("/huge")).await.is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_miss_does_not_claim_stored_before_it_is() {
    // The origin sends the head and 100 KiB of a 200 KiB body, then waits for the test to
    // have read the proxy's response head before it sends the rest.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let go = Arc::new(tokio::sync::Notify::new());
    let go2 = go.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s)
            .await
            .expect("the proxy closed before its request was complete");
        let mut buf = [0u8; 64];
        let body = vec![b'g'; 200 * 1024];
        let res = format!(
            "HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(res.as_bytes()).await.unwrap();
        s.write_all(&body[..100 * 1024]).await.unwrap();
        go2.notified().await;
        s.write_all(&body[100 * 1024..]).await.unwrap();
        // Keep the connection open until the proxy is done with it.
        let _ = s.read(&mut buf).await;
    });
    let v = TestVanish::start(&origin).await;
    let mut c = TcpStream::connect(v.running.proxy_addr).await.unwrap();
    let req = format!(
        "GET /big HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        v.running.proxy_addr
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut got = read_head(&mut c)
        .await
        .expect("closed before the response head");
    let text = String::from_utf8_lossy(&got).to_lowercase();
    let status_line = text
        .lines()
        .find(|l| l.starts_with("cache-status:"))
        .unwrap_or("")
        .to_owned();
    assert!(status_line.contains("fwd=miss"), "{text}");
    assert!(
        !status_line.contains("stored"),
        "claimed stored before the body was read: {status_line}"
    );
    go.notify_one();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut got))
        .await
        .expect("the rest of the body within 20 s")
        .unwrap();
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - split, 200 * 1024);
    // Stored all the same once complete (the copy goes in before the last byte is sent).
    assert!(get(&v.url("/big")).await.is_hit(), "it was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_set_on_a_revalidation_reaches_that_client_and_is_never_stored() {
    let origin = TestOrigin::start(|s, n| {
        if s.headers.get("if-none-match").map(|v| v.as_bytes()) == Some(b"\"e1\"") {
            return Reply::ok("")
                .status(304)
                .header("etag", "\"e1\"")
                .header("cache-control", "public, max-age=60")
                .header("set-cookie", &format!("seen={n}; Path=/"));
        }
        // Stale at once, so the next request revalidates.
        Reply::ok("page")
            .header("cache-control", "public, max-age=0")
            .header("etag", "\"e1\"")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    let first = get(&v.url("/r")).await;
    assert_eq!(first.body, "page");
    let revalidated = get(&v.url("/r")).await;
    assert!(
        revalidated.cache_status().contains("fwd-status=304"),
        "{}",
        revalidated.cache_status()
    );
    assert_eq!(revalidated.body, "page");
    assert_eq!(revalidated.header("set-cookie"), Some("seen=1; Path=/"));
    let hit = get(&v.url("/r")).await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert_eq!(hit.header("set-cookie"), None, "the cookie was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_by_timeouts() {
    let origin = TestOrigin::start(reflecting_origin()).await;
    let v = TestVanish::start_with(&origin.url(), "[limits]\nheader_read_timeout = \"1s\"\n").await;
    let addr = v.running.proxy_addr;
    // No byte at all; half a request head; a keep-alive connection left idle after a request.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /kept HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(silent).await.is_empty());
    let slow_out = read_to_close(slow).await;
    assert!(!slow_out.contains("200 OK"), "the half head was not served");
    let kept_out = read_to_close(kept).await;
    assert!(kept_out.starts_with("HTTP/1.1 200"), "{kept_out}");
    assert_eq!(origin.count("/slow"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_hold_every_slot() {
    let origin = TestOrigin::start(reflecting_origin()).await;
    // Long header timeout: only the slot reserve can free the slots here.
    let v = TestVanish::start_with(
        &origin.url(),
        "[limits]\nmax_client_connections = 4\nheader_read_timeout = \"300s\"\n",
    )
    .await;
    let addr = v.running.proxy_addr;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // A client with a request is served although idle connections took every slot.
    for i in 0..3 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(
            format!("GET /real-{i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let out = read_to_close(c).await;
        assert!(out.starts_with("HTTP/1.1 200"), "request {i}: {out}");
    }
    // The oldest idle connections were closed to make room.
    let first = idle.remove(0);
    assert!(read_to_close(first).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_coming_is_answered_408() {
    let origin = TestOrigin::start(reflecting_origin()).await;
    let v = TestVanish::start_with(&origin.url(), "[limits]\nbody_read_timeout = \"1s\"\n").await;
    let mut c = TcpStream::connect(v.running.proxy_addr).await.unwrap();
    c.write_all(b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let out = read_to_close(c).await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    // A body that keeps coming, however slowly overall, is forwarded whole.
    let ok = send("POST", &v.url("/form"), &[], "complete body").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_timeout_never_cuts_a_request_in_progress() {
    // The response takes longer than the header read timeout: a connection with a request in
    // progress is not closed by the deadline for its first request head.
    let origin = TestOrigin::start(|_, _| {
        Reply::ok("slow but complete")
            .header("cache-control", "no-store")
            .delay(Duration::from_millis(2500))
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[limits]\nheader_read_timeout = \"1s\"\n").await;
    let out = raw(
        v.running.proxy_addr,
        b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("slow but complete"), "{out}");
}
