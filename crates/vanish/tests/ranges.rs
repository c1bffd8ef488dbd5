//! Byte ranges from cache (RFC 9110 section 14, RFC 9111 sections 3.3 and 3.4), through the real
//! proxy against a real origin: `206` single and multipart, `416`, `If-Range`, `HEAD`, misses
//! that fill the whole object, and ranges the origin answers when nothing can be stored.

mod common;

use common::*;

const CC60: (&str, &str) = ("cache-control", "public, max-age=60");

/// A printable body of `len` bytes that repeats no short pattern (so a wrong offset shows).
fn body_of(len: usize) -> String {
    (0..len)
        .map(|i| (b'!' + ((i * 7 + i / 94) % 94) as u8) as char)
        .collect()
}

/// Stores `path` with a plain `GET` and checks the next one is a hit.
async fn warm(v: &TestVanish, path: &str) {
    get(&v.url(path)).await;
    let again = get(&v.url(path)).await;
    assert!(again.is_hit(), "{path} is stored: {}", again.cache_status());
}

/// A cacheable origin serving `/len/N` as `body_of(N)`, with validators.
async fn sized_origin() -> (TestOrigin, TestVanish) {
    pair(|s, _| {
        let n: usize = s
            .path_and_query
            .trim_start_matches("/len/")
            .parse()
            .unwrap_or(0);
        Reply::ok(body_of(n))
            .header(CC60.0, CC60.1)
            .header("content-type", "text/plain")
            .header("etag", "\"e1\"")
            .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
    })
    .await
}

/// What a range request should get: status, `Content-Range`, and the body's slice.
enum Want {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_headers_on_hits_of_0_1_4096_and_200k_bytes() {
    use Want::*;
    let (origin, v) = sized_origin().await;
    let table: &[(usize, &str, Want)] = &[
        (4096, "bytes=0-99", Part(0, 99)),
        (4096, "bytes=4000-", Part(4000, 4095)),
        (4096, "bytes=-500", Part(3596, 4095)),
        (4096, "bytes=-10000", Part(0, 4095)),
        (4096, "bytes=100-99999", Part(100, 4095)),
        (4096, "bytes=4095-4095", Part(4095, 4095)),
        (4096, "Bytes=1-1", Part(1, 1)),
        (4096, "bytes= 5-9 ,", Part(5, 9)),
        (4096, "bytes=0-9,10-19", Part(0, 19)),
        (4096, "bytes=0-99,50-150", Part(0, 150)),
        (4096, "bytes=4096-", Unsatisfiable),
        (4096, "bytes=5000-6000,-0", Unsatisfiable),
        (4096, "bytes=9-3", Whole),
        (4096, "bytes=abc", Whole),
        (4096, "bytes=", Whole),
        (4096, "items=0-9", Whole),
        (4096, "0-9", Whole),
        (0, "bytes=0-", Unsatisfiable),
        (0, "bytes=-5", Whole),
        (1, "bytes=0-0", Part(0, 0)),
        (1, "bytes=0-", Part(0, 0)),
        (1, "bytes=-1", Part(0, 0)),
        (1, "bytes=-100", Part(0, 0)),
        (1, "bytes=1-", Unsatisfiable),
        (200 * 1024, "bytes=0-1023", Part(0, 1023)),
        (200 * 1024, "bytes=100000-", Part(100_000, 204_799)),
        (200 * 1024, "bytes=-70000", Part(134_800, 204_799)),
        (200 * 1024, "bytes=65530-131080", Part(65530, 131_080)),
    ];
    for len in [0, 1, 4096, 200 * 1024] {
        warm(&v, &format!("/len/{len}")).await;
    }
    for (len, range, want) in table {
        let path = format!("/len/{len}");
        let full = body_of(*len);
        let got = get_with(&v.url(&path), &[("range", range)]).await;
        let what = format!("{range} of {len} bytes");
        assert!(got.is_hit(), "{what}: {}", got.cache_status());
        assert_eq!(got.header("accept-ranges"), Some("bytes"), "{what}");
        match *want {
            Whole => {
                assert_eq!(got.status, 200, "{what}");
                assert_eq!(got.body, full, "{what}");
                assert_eq!(got.header("content-range"), None, "{what}");
            }
            Part(a, b) => {
                assert_eq!(got.status, 206, "{what}");
                assert_eq!(
                    got.header("content-range"),
                    Some(format!("bytes {a}-{b}/{len}").as_str()),
                    "{what}"
                );
                assert_eq!(got.body, full[a as usize..=b as usize], "{what}");
                assert_eq!(
                    got.header("content-length"),
                    Some((b - a + 1).to_string().as_str())
                );
                assert_eq!(got.header("content-type"), Some("text/plain"), "{what}");
                assert_eq!(got.header("etag"), Some("\"e1\""), "{what}");
            }
            Unsatisfiable => {
                assert_eq!(got.status, 416, "{what}");
                assert_eq!(
                    got.header("content-range"),
                    Some(format!("bytes */{len}").as_str()),
                    "{what}"
                );
                assert_eq!(got.body, "", "{what}");
                assert_eq!(
                    got.header("cache-control"),
                    None,
                    "a 416 is not for storing"
                );
            }
        }
    }
    for len in [0, 1, 4096, 200 * 1024] {
        assert_eq!(origin.count(&format!("/len/{len}")), 1, "ranges are hits");
    }
}

/// The parts of a `multipart/byteranges` body: (Content-Type, Content-Range, data).
fn multipart(got: &Got) -> Vec<(String, String, String)> {
    let ct = got
        .header("content-type")
        .expect("a multipart Content-Type");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart/byteranges: {ct}"));
    let (open, close) = (format!("--{boundary}\r\n"), format!("--{boundary}--\r\n"));
    let mut rest = got.body.as_str();
    let mut out = Vec::new();
    while rest != close {
        rest = rest.strip_prefix(open.as_str()).expect("a part opens");
        let (head, after) = rest.split_once("\r\n\r\n").unwrap();
        let mut ct = String::new();
        let mut cr = String::new();
        for line in head.split("\r\n") {
            match line.split_once(": ").unwrap() {
                ("Content-Type", v) => ct = v.to_owned(),
                ("Content-Range", v) => cr = v.to_owned(),
                (k, _) => panic!("unexpected part header {k}"),
            }
        }
        let (a, b) = cr[6..].split_once('/').unwrap().0.split_once('-').unwrap();
        let n = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
        out.push((ct, cr.clone(), after[..n].to_owned()));
        rest = after[n..].strip_prefix("\r\n").expect("CRLF after a part");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_ranges_are_one_multipart_byteranges_in_request_order() {
    let (origin, v) = sized_origin().await;
    warm(&v, "/len/4096").await;
    let full = body_of(4096);
    let got = get_with(&v.url("/len/4096"), &[("range", "bytes=-6,0-4,100-109")]).await;
    assert_eq!(got.status, 206);
    assert!(got.is_hit());
    assert_eq!(got.header("content-range"), None, "the parts carry them");
    assert_eq!(
        got.header("content-length"),
        Some(got.body.len().to_string().as_str())
    );
    let parts = multipart(&got);
    let want = [(4090, 4095), (0, 4), (100, 109)];
    assert_eq!(parts.len(), want.len());
    for ((ct, cr, data), (a, b)) in parts.iter().zip(want) {
        assert_eq!(ct, "text/plain");
        assert_eq!(cr, &format!("bytes {a}-{b}/4096"));
        assert_eq!(data, &full[a..=b]);
    }
    // Overlapping ranges are coalesced: what remains is one part, sent as a plain 206.
    let merged = get_with(&v.url("/len/4096"), &[("range", "bytes=0-10,5-20,21-30")]).await;
    assert_eq!(merged.status, 206);
    assert_eq!(merged.header("content-range"), Some("bytes 0-30/4096"));
    assert_eq!(merged.body, full[..=30]);
    // More range-specs than [limits] max_ranges (100): the header is ignored.
    let many: Vec<String> = (0..101)
        .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
        .collect();
    let absurd = get_with(
        &v.url("/len/4096"),
        &[("range", &format!("bytes={}", many.join(",")))],
    )
    .await;
    assert_eq!(absurd.status, 200);
    assert_eq!(absurd.body, full);
    let hundred = format!("bytes={}", many[..100].join(","));
    let allowed = get_with(&v.url("/len/4096"), &[("range", &hundred)]).await;
    assert_eq!(allowed.status, 206);
    assert_eq!(multipart(&allowed).len(), 100);
    assert_eq!(origin.count("/len/4096"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_range_needs_the_strong_etag_or_the_last_modified_date() {
    let (_origin, v) = sized_origin().await;
    warm(&v, "/len/4096").await;
    let table: &[(&str, u16)] = &[
        ("\"e1\"", 206),
        ("\"e2\"", 200),
        ("W/\"e1\"", 200),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 206),
        ("Wed, 21 Oct 2015 07:28:01 GMT", 200),
        ("not a validator", 200),
    ];
    for (if_range, status) in table {
        let got = get_with(
            &v.url("/len/4096"),
            &[("range", "bytes=0-9"), ("if-range", if_range)],
        )
        .await;
        assert_eq!(got.status, *status, "If-Range: {if_range}");
        let want = if *status == 206 { 10 } else { 4096 };
        assert_eq!(got.body.len(), want, "If-Range: {if_range}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_with_range_gets_the_206_head_and_conditionals_still_304() {
    let (_origin, v) = sized_origin().await;
    warm(&v, "/len/4096").await;
    let head = send("HEAD", &v.url("/len/4096"), &[("range", "bytes=10-19")], "").await;
    assert_eq!(head.status, 206);
    assert_eq!(head.body, "");
    assert_eq!(head.header("content-range"), Some("bytes 10-19/4096"));
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    let plain = send("HEAD", &v.url("/len/4096"), &[], "").await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("accept-ranges"), Some("bytes"));
    // A satisfied conditional wins over the range (RFC 9110 section 13.2.2).
    for conditional in [
        ("if-none-match", "\"e1\""),
        ("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ] {
        let got = get_with(&v.url("/len/4096"), &[("range", "bytes=0-9"), conditional]).await;
        assert_eq!(got.status, 304, "{conditional:?}");
        assert_eq!(got.body, "");
    }
    let unmatched = get_with(
        &v.url("/len/4096"),
        &[("range", "bytes=0-9"), ("if-none-match", "\"other\"")],
    )
    .await;
    assert_eq!(unmatched.status, 206);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_apply_only_to_200_objects() {
    let (origin, v) = pair(|_, _| {
        Reply::ok("gone for good")
            .status(404)
            .header(CC60.0, CC60.1)
    })
    .await;
    warm(&v, "/missing").await;
    let got = get_with(&v.url("/missing"), &[("range", "bytes=0-3")]).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.body, "gone for good");
    assert_eq!(got.header("accept-ranges"), None);
    assert_eq!(origin.count("/missing"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_miss_fills_the_whole_object_and_answers_the_range() {
    let (origin, v) = sized_origin().await;
    for (len, range, a, b) in [
        (4096usize, "bytes=10-19", 10usize, 19usize),
        (200 * 1024, "bytes=-1024", 200 * 1024 - 1024, 200 * 1024 - 1),
    ] {
        let path = format!("/len/{len}");
        let full = body_of(len);
        let miss = get_with(&v.url(&path), &[("range", range), ("if-range", "\"e1\"")]).await;
        assert_eq!(miss.status, 206, "{path}: {}", miss.cache_status());
        assert_eq!(
            miss.cache_status(),
            "vanish; fwd=miss; fwd-status=200; stored"
        );
        assert_eq!(
            miss.header("content-range"),
            Some(format!("bytes {a}-{b}/{len}").as_str())
        );
        assert_eq!(miss.body, full[a..=b]);
        let seen = origin.last();
        assert!(
            seen.headers.get("range").is_none() && seen.headers.get("if-range").is_none(),
            "the fill asks for the whole object: {:?}",
            seen.headers
        );
        let whole = get(&v.url(&path)).await;
        assert!(whole.is_hit());
        assert_eq!(whole.body, full);
        assert_eq!(origin.count(&path), 1);
    }
    // HEAD with a range, on a miss.
    let head = send("HEAD", &v.url("/len/300"), &[("range", "bytes=0-0")], "").await;
    assert_eq!(head.status, 206);
    assert_eq!(head.header("content-range"), Some("bytes 0-0/300"));
    assert_eq!(head.body, "");
    // An invalid range on a miss streams the whole response as usual.
    let invalid = get_with(&v.url("/len/500"), &[("range", "bytes=x")]).await;
    assert_eq!(invalid.status, 200);
    assert_eq!(invalid.body, body_of(500));
}

/// An origin that honours `Range` itself (one `first-last` range), for uncacheable answers.
fn ranged_reply(s: &Seen, body: &str) -> Reply {
    let range = s
        .headers
        .get("range")
        .map(|v| v.to_str().unwrap().to_owned());
    match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            Reply::ok(&body.as_bytes()[a..=b])
                .status(206)
                .header("content-range", &format!("bytes {a}-{b}/{}", body.len()))
        }
        None => Reply::ok(body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_that_cannot_be_stored_is_forwarded_and_nothing_is_stored() {
    let body = body_of(2000);
    let b2 = body.clone();
    let origin = TestOrigin::start(move |s, _| {
        let cc = match s.path_and_query.as_str() {
            "/private" => "private, max-age=60",
            "/nostore" => "no-store",
            _ => "public, max-age=60", // /big, over max_object_size
        };
        ranged_reply(s, &b2).header("cache-control", cc)
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nmax_object_size = \"1KiB\"\n").await;
    for (path, detail) in [
        ("/private", "forbidden"),
        ("/nostore", "forbidden"),
        ("/big", "too-large"),
    ] {
        for round in 0..2 {
            let got = get_with(&v.url(path), &[("range", "bytes=100-199")]).await;
            assert_eq!(got.status, 206, "{path}: {}", got.cache_status());
            assert_eq!(got.header("content-range"), Some("bytes 100-199/2000"));
            assert_eq!(got.body, body[100..200]);
            assert!(!got.is_hit());
            assert!(
                got.cache_status().contains(&format!("detail={detail}")),
                "{path}: {}",
                got.cache_status()
            );
            assert_eq!(
                origin
                    .last()
                    .headers
                    .get("range")
                    .map(|v| v.to_str().unwrap()),
                Some("bytes=100-199"),
                "the origin answers the range"
            );
            // The whole-object fill, then the forwarded range, each round.
            assert_eq!(origin.count(path), 2 * (round + 1), "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bypassed_range_goes_to_the_origin_as_asked() {
    let body = body_of(2000);
    let origin = TestOrigin::start(move |s, _| {
        ranged_reply(s, &body).header("cache-control", "public, max-age=60")
    })
    .await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[default_rule]\nbypass_cookies = [\"sid\"]\n",
    )
    .await;
    let got = get_with(&v.url("/b"), &[("range", "bytes=0-9"), ("cookie", "sid=1")]).await;
    assert_eq!(got.status, 206);
    assert!(
        got.cache_status().contains("fwd=bypass"),
        "{}",
        got.cache_status()
    );
    assert_eq!(origin.count("/b"), 1, "one request, with the range");
    assert_eq!(
        origin
            .last()
            .headers
            .get("range")
            .map(|v| v.to_str().unwrap()),
        Some("bytes=0-9")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_answering_206_to_everything_is_never_stored() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok("0123456789")
            .status(206)
            .header("content-range", "bytes 0-9/100")
            .header("cache-control", "public, max-age=60")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    for round in 1..=3 {
        let plain = get(&v.url("/p")).await;
        assert_eq!(plain.status, 206);
        assert!(!plain.is_hit());
        assert!(
            plain.cache_status().contains("detail=partial"),
            "{}",
            plain.cache_status()
        );
        let ranged = get_with(&v.url("/p"), &[("range", "bytes=0-3")]).await;
        assert_eq!(ranged.status, 206);
        assert!(!ranged.is_hit());
        assert_eq!(origin.count("/p"), 3 * round, "nothing stored, ever");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revalidated_object_answers_the_range_from_the_kept_body() {
    let body = body_of(3000);
    let b2 = body.clone();
    let (origin, v) = pair(move |s, _| {
        let validated = s
            .headers
            .get("if-none-match")
            .is_some_and(|t| t == "\"r1\"");
        let reply = if validated {
            Reply::ok("").status(304)
        } else {
            Reply::ok(b2.clone())
        };
        // Stored, but stale at once: every use revalidates.
        reply
            .header("cache-control", "public, max-age=0")
            .header("etag", "\"r1\"")
    })
    .await;
    let first = get(&v.url("/r")).await;
    assert_eq!(first.body, body);
    let got = get_with(&v.url("/r"), &[("range", "bytes=2990-")]).await;
    assert_eq!(got.status, 206, "{}", got.cache_status());
    assert!(
        got.cache_status().contains("fwd-status=304"),
        "{}",
        got.cache_status()
    );
    assert_eq!(got.header("content-range"), Some("bytes 2990-2999/3000"));
    assert_eq!(got.body, body[2990..]);
    assert_eq!(origin.count("/r"), 2);
    assert!(
        origin.last().headers.get("range").is_none(),
        "the revalidation asks for the whole object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_miss_of_an_error_is_answered_once_with_the_error() {
    let (origin, v) = pair(|_, _| Reply::ok("origin trouble").status(500)).await;
    let got = get_with(&v.url("/e"), &[("range", "bytes=0-3")]).await;
    assert_eq!(got.status, 500);
    assert_eq!(got.body, "origin trouble");
    assert_eq!(
        origin.count("/e"),
        1,
        "a range of an error is not asked again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_range_misses_share_one_whole_object_fill() {
    let body = body_of(5000);
    let b2 = body.clone();
    let (origin, v) = pair(move |_, _| {
        Reply::ok(b2.clone())
            .header(CC60.0, CC60.1)
            .delay(std::time::Duration::from_millis(300))
    })
    .await;
    let url = v.url("/c");
    let (a, b, c) = tokio::join!(
        get_with(&url, &[("range", "bytes=0-9")]),
        get_with(&url, &[("range", "bytes=-10")]),
        get_with(&url, &[("range", "bytes=0-1,3-4")]),
    );
    assert_eq!((a.status, b.status, c.status), (206, 206, 206));
    assert_eq!(a.body, body[..10]);
    assert_eq!(b.body, body[4990..]);
    assert_eq!(multipart(&c).len(), 2);
    assert_eq!(origin.count("/c"), 1, "one fill for all three");
}
