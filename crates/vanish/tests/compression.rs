//! Compression through the real proxy and a real origin (the Varnish model): one stored object
//! per content coding, `Accept-Encoding` negotiated by default, `gzip`/`br` bodies decoded on
//! the fly for clients that accept neither (weak `ETag`, decoded `Content-Length`, ranges over
//! the decoded bytes), decompression bombs refused, and compression at store time.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A response with its body as bytes (`Got` keeps text).
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn coding(&self) -> &str {
        self.header("content-encoding").unwrap_or("identity")
    }
    fn is_hit(&self) -> bool {
        self.header("cache-status").unwrap_or("").contains("; hit")
    }
    fn stored(&self) -> bool {
        self.header("cache-status").unwrap_or("").contains("stored")
    }
    /// The body as the client reads it, decoded from its `Content-Encoding`.
    fn decoded(&self) -> Vec<u8> {
        match self.coding() {
            "gzip" => gunzip(&self.body),
            "br" => unbr(&self.body),
            "identity" => self.body.clone(),
            other => panic!("unexpected coding {other}"),
        }
    }
    fn varies_on_accept_encoding(&self) -> bool {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    }
}

async fn fetch(method: &str, url: &str, headers: &[(&str, &str)]) -> Raw {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        client.request(b.body(Full::new(Bytes::new())).unwrap()),
    )
    .await
    .expect("response within 20s")
    .expect("request succeeds");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), res.into_body().collect())
        .await
        .expect("body within 20s")
        .expect("body completes")
        .to_bytes()
        .to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

async fn get_ae(url: &str, ae: Option<&str>) -> Raw {
    match ae {
        Some(ae) => fetch("GET", url, &[("accept-encoding", ae)]).await,
        None => fetch("GET", url, &[]).await,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        e.write_all(data).unwrap();
    }
    out
}

fn unbr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .expect("valid br");
    out
}

/// A page of `n` bytes of HTML-like text.
fn page(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0u32;
    while out.len() < n {
        out.extend_from_slice(format!("<li id=\"{i}\">item {}</li>\n", i * 7919 % 1000).as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// Which codings an origin can send: it picks the first of them the request accepts (by
/// name), else identity.
#[derive(Clone, Copy)]
enum Can {
    Gzip,
    Br,
    BrAndGzip,
}

fn accepts(s: &Seen, coding: &str) -> bool {
    s.headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|c| c.trim().split(';').next() == Some(coding))
        })
}

/// An origin that negotiates the coding of `body` (and says `Vary: Accept-Encoding`).
fn negotiating(can: Can, body: Vec<u8>) -> impl Fn(&Seen, usize) -> Reply + Send + Sync {
    move |s, _| {
        let offered: &[&str] = match can {
            Can::Gzip => &["gzip"],
            Can::Br => &["br"],
            Can::BrAndGzip => &["br", "gzip"],
        };
        let base = |b: Vec<u8>| {
            Reply::ok(b)
                .header("cache-control", "public, max-age=300")
                .header("content-type", "text/html")
                .header("etag", "\"v1\"")
                .header("vary", "Accept-Encoding")
        };
        match offered.iter().find(|c| accepts(s, c)) {
            Some(&"gzip") => base(gzip(&body)).header("content-encoding", "gzip"),
            Some(&"br") => base(br(&body)).header("content-encoding", "br"),
            _ => base(body.clone()),
        }
    }
}

const GZIP: Option<&str> = Some("gzip");
const BR_GZIP: Option<&str> = Some("gzip, deflate, br");
const BR: Option<&str> = Some("br");
const IDENTITY: Option<&str> = None;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_origin_serves_gzip_br_and_identity_clients_from_one_object() {
    let body = page(20_000);
    // Every order of the three clients: whoever comes first, one fetch serves all.
    let orders: [[Option<&str>; 3]; 3] = [
        [GZIP, BR_GZIP, IDENTITY],
        [IDENTITY, GZIP, BR_GZIP],
        [BR_GZIP, IDENTITY, GZIP],
    ];
    for order in orders {
        let (origin, v) = pair(negotiating(Can::Gzip, body.clone())).await;
        for (i, ae) in order.iter().enumerate() {
            let r = get_ae(&v.url("/p"), *ae).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.decoded(), body, "{ae:?}: byte-identical after decoding");
            let want = if ae.is_some() { "gzip" } else { "identity" };
            assert_eq!(r.coding(), want, "{ae:?}");
            assert_eq!(r.is_hit(), i > 0, "{ae:?} in {order:?}");
            assert!(r.varies_on_accept_encoding(), "{ae:?}");
        }
        assert_eq!(origin.count("/p"), 1, "{order:?}: one origin fetch");
        let asked = origin.last().headers["accept-encoding"].clone();
        assert!(
            asked == "gzip" || asked == "br, gzip",
            "the origin is asked in the normal form: {asked:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_br_origin_stores_br_and_identity_objects() {
    let body = page(30_000);
    let (origin, v) = pair(negotiating(Can::Br, body.clone())).await;
    let b = get_ae(&v.url("/p"), BR).await;
    assert_eq!((b.coding(), b.decoded() == body), ("br", true));
    assert_eq!(origin.last().headers["accept-encoding"], "br");
    // A gzip client cannot take br: a miss, asked for gzip, answered (and stored) identity.
    let g = get_ae(&v.url("/p"), GZIP).await;
    assert!(!g.is_hit());
    assert_eq!((g.coding(), g.decoded() == body), ("identity", true));
    assert_eq!(origin.last().headers["accept-encoding"], "gzip");
    assert_eq!(origin.count("/p"), 2, "two fetches, two objects");
    let i = get_ae(&v.url("/p"), IDENTITY).await;
    assert!(i.is_hit(), "the identity object serves identity clients");
    assert_eq!((i.coding(), i.body == body), ("identity", true));
    let b = get_ae(&v.url("/p"), BR_GZIP).await;
    assert!(b.is_hit());
    assert_eq!(
        b.coding(),
        "br",
        "the br object is preferred for a br client"
    );
    assert_eq!(
        i.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(origin.count("/p"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_spellings_do_not_fragment_and_purges_name_a_coding() {
    let body = page(8_000);
    let (origin, v) = pair(negotiating(Can::BrAndGzip, body.clone())).await;
    let br_clients = [
        "gzip, deflate, br",
        "gzip, deflate, br, zstd",
        "br;q=1.0, gzip;q=0.8, *;q=0.1",
        "br",
        "BR, GZIP",
    ];
    for (i, ae) in br_clients.iter().enumerate() {
        let r = get_ae(&v.url("/p"), Some(ae)).await;
        assert_eq!(r.is_hit(), i > 0, "{ae}");
        assert_eq!((r.coding(), r.decoded() == body), ("br", true), "{ae}");
    }
    assert_eq!(origin.count("/p"), 1, "five spellings, one object");
    for (i, ae) in ["gzip, deflate", "gzip", "x-gzip, deflate"]
        .iter()
        .enumerate()
    {
        let r = get_ae(&v.url("/p"), Some(ae)).await;
        assert_eq!(r.is_hit(), i > 0, "{ae}");
        assert_eq!((r.coding(), r.decoded() == body), ("gzip", true), "{ae}");
    }
    assert_eq!(origin.count("/p"), 2, "one object per coding");
    // An identity client is served from one of them, decoded.
    let i = get_ae(&v.url("/p"), IDENTITY).await;
    assert!(i.is_hit());
    assert_eq!((i.coding(), i.body == body), ("identity", true));
    assert_eq!(origin.count("/p"), 2);
    // A purge's header filter names a coding (spelled as a coding, or as a client would).
    let r = purge(
        &v,
        r#"{"type":"path","path":"/p","headers":{"Accept-Encoding":"gzip, deflate"}}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["matched"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    assert!(!get_ae(&v.url("/p"), GZIP).await.is_hit(), "gzip purged");
    assert!(get_ae(&v.url("/p"), BR).await.is_hit(), "br kept");
    let r = purge(
        &v,
        r#"{"type":"path","path":"/p","headers":{"accept-encoding":"br"}}"#,
    )
    .await;
    assert_eq!(r.json()["matched"], 1, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_always_sends_gzip_gives_identity_clients_identity() {
    let body = page(12_000);
    let gz = gzip(&body);
    // No `Vary`: the origin ignores what clients accept.
    let (origin, v) = pair(move |s, _| {
        let cc = if s.path_and_query == "/private" {
            "private"
        } else {
            "public, max-age=300"
        };
        Reply::ok(gz.clone())
            .header("cache-control", cc)
            .header("content-encoding", "gzip")
            .header("etag", "\"abc\"")
    })
    .await;
    let i = get_ae(&v.url("/p"), IDENTITY).await;
    assert_eq!(i.status, 200);
    assert_eq!(i.coding(), "identity", "no Accept-Encoding: identity");
    assert_eq!(i.body, body);
    assert!(i.stored(), "{:?}", i.header("cache-status"));
    assert_eq!(i.header("etag"), Some("W/\"abc\""), "weak: other bytes");
    assert_eq!(
        i.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(i.varies_on_accept_encoding(), "the cache negotiated it");
    for ae in ["identity", "deflate", "gzip;q=0", "*;q=0"] {
        let r = get_ae(&v.url("/p"), Some(ae)).await;
        assert!(r.is_hit(), "{ae}");
        assert_eq!((r.coding(), r.body == body), ("identity", true), "{ae}");
    }
    let g = get_ae(&v.url("/p"), GZIP).await;
    assert!(g.is_hit());
    assert_eq!(g.coding(), "gzip");
    assert_eq!(g.header("etag"), Some("\"abc\""), "as the origin sent it");
    assert!(g.varies_on_accept_encoding());
    assert_eq!(gunzip(&g.body), body);
    assert_eq!(origin.count("/p"), 1);
    // HEAD of the decoded delivery: its headers, no body.
    let h = fetch("HEAD", &v.url("/p"), &[]).await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-encoding"), None);
    assert_eq!(
        h.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    // Not storable: passed, and still decoded for the identity client.
    let p = get_ae(&v.url("/private"), IDENTITY).await;
    assert_eq!((p.coding(), p.body == body), ("identity", true));
    assert!(!p.stored());
    let p = get_ae(&v.url("/private"), GZIP).await;
    assert_eq!(p.coding(), "gzip");
    assert_eq!(gunzip(&p.body), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_and_corrupt_bodies_are_not_stored() {
    // 8 MiB of zeros in about 8 KiB: far past the default 100:1.
    let bomb = gzip(&vec![0u8; 8 << 20]);
    let mut corrupt = gzip(&page(5_000));
    let n = corrupt.len();
    corrupt[n - 6] ^= 0xff; // the CRC no longer matches
    let (bomb2, corrupt2) = (bomb.clone(), corrupt.clone());
    let (origin, v) = pair(move |s, _| {
        let body = match s.path_and_query.as_str() {
            "/bomb" => bomb2.clone(),
            _ => corrupt2.clone(),
        };
        Reply::ok(body)
            .header("cache-control", "public, max-age=300")
            .header("content-encoding", "gzip")
            .header("vary", "Accept-Encoding")
    })
    .await;
    // A gzip client gets the body untouched; nothing is stored.
    let g = get_ae(&v.url("/bomb"), GZIP).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body, bomb, "delivered untouched");
    assert!(!g.stored(), "{:?}", g.header("cache-status"));
    assert!(
        g.header("cache-status")
            .unwrap()
            .contains("decoded-too-large"),
        "{:?}",
        g.header("cache-status")
    );
    let again = get_ae(&v.url("/bomb"), GZIP).await;
    assert!(!again.is_hit());
    assert_eq!(origin.count("/bomb"), 2, "the origin is asked again");
    // A client that cannot take gzip gets the cache's own 502.
    let i = get_ae(&v.url("/bomb"), IDENTITY).await;
    assert_eq!(i.status, 502);
    let text = String::from_utf8_lossy(&i.body);
    assert!(text.contains("max_decoded_ratio"), "{text}");
    assert_eq!(i.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(origin.count("/bomb"), 3);
    // A corrupt body: not stored either.
    let g = get_ae(&v.url("/corrupt"), GZIP).await;
    assert_eq!(g.body, corrupt);
    assert!(!g.stored());
    let i = get_ae(&v.url("/corrupt"), IDENTITY).await;
    assert_eq!(i.status, 502);
    assert!(String::from_utf8_lossy(&i.body).contains("does not decode"));
    assert_eq!(origin.count("/corrupt"), 2);
    let metrics = get(&v.admin("/metrics")).await.body;
    assert!(
        metrics.contains("vanish_decode_refused_total"),
        "refusals are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_absolute_decode_limit_applies() {
    let body = page(200_000);
    let (origin, _) = pair(negotiating(Can::Gzip, body.clone())).await;
    let v = TestVanish::start_with(&origin.url(), "[limits]\nmax_decoded_size = \"64KiB\"\n").await;
    let g = get_ae(&v.url("/p"), GZIP).await;
    assert_eq!(gunzip(&g.body), body);
    assert!(!g.stored());
    assert!(!get_ae(&v.url("/p"), GZIP).await.is_hit());
    let i = get_ae(&v.url("/p"), IDENTITY).await;
    assert_eq!(i.status, 502);
    assert!(String::from_utf8_lossy(&i.body).contains("max_decoded_size"));
    let small = page(10_000);
    let (origin, _) = pair(negotiating(Can::Gzip, small.clone())).await;
    let v = TestVanish::start_with(&origin.url(), "[limits]\nmax_decoded_size = \"64KiB\"\n").await;
    get_ae(&v.url("/p"), GZIP).await;
    assert!(
        get_ae(&v.url("/p"), GZIP).await.is_hit(),
        "within the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_true_stores_once_and_serves_each_client_its_coding() {
    let body = page(40_000);
    let small = page(500);
    let (b, s) = (body.clone(), small.clone());
    let origin = TestOrigin::start(move |seen, _| {
        let (payload, ty, cc) = match seen.path_and_query.as_str() {
            "/page" => (b.clone(), "text/html; charset=utf-8", "public, max-age=300"),
            "/small" => (s.clone(), "text/html", "public, max-age=300"),
            "/image" => (b.clone(), "image/png", "public, max-age=300"),
            _ => (b.clone(), "text/html", "public, max-age=300, no-transform"),
        };
        Reply::ok(payload)
            .header("cache-control", cc)
            .header("content-type", ty)
            .header("etag", "\"p1\"")
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\ncompress = true\n").await;
    let first = get_ae(&v.url("/page"), GZIP).await;
    assert_eq!(
        first.decoded(),
        body,
        "the fill streams what the origin sent"
    );
    assert!(first.varies_on_accept_encoding());
    let g = get_ae(&v.url("/page"), GZIP).await;
    assert!(g.is_hit());
    assert_eq!(g.coding(), "gzip", "stored compressed");
    assert!(g.body.len() < body.len() / 3, "{} bytes", g.body.len());
    assert_eq!(gunzip(&g.body), body);
    assert_eq!(
        g.header("etag"),
        Some("W/\"p1\""),
        "the cache's bytes: weak"
    );
    let b = get_ae(&v.url("/page"), BR_GZIP).await;
    assert!(b.is_hit());
    assert_eq!(b.coding(), "gzip");
    let i = get_ae(&v.url("/page"), IDENTITY).await;
    assert!(i.is_hit());
    assert_eq!((i.coding(), i.body == body), ("identity", true));
    assert_eq!(
        i.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(i.header("etag"), Some("W/\"p1\""));
    // HEAD, for each: the headers its GET would have.
    let hg = fetch("HEAD", &v.url("/page"), &[("accept-encoding", "gzip")]).await;
    assert_eq!((hg.status, hg.coding()), (200, "gzip"));
    assert_eq!(
        hg.header("content-length"),
        Some(g.body.len().to_string().as_str())
    );
    assert!(hg.body.is_empty());
    let hi = fetch("HEAD", &v.url("/page"), &[]).await;
    assert_eq!((hi.status, hi.coding()), (200, "identity"));
    assert_eq!(
        hi.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(hi.body.is_empty());
    assert_eq!(origin.count("/page"), 1, "compressed once, at store");
    // Too small, another type, or no-transform: stored as they came.
    for path in ["/small", "/image", "/no-transform"] {
        get_ae(&v.url(path), GZIP).await;
        let r = get_ae(&v.url(path), GZIP).await;
        assert!(r.is_hit(), "{path}");
        assert_eq!(r.coding(), "identity", "{path}");
        assert_eq!(r.header("etag"), Some("\"p1\""), "{path}");
        assert_eq!(origin.count(path), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_encoding_br_stores_br() {
    let body = page(20_000);
    let b = body.clone();
    let origin = TestOrigin::start(move |_, _| {
        Reply::ok(b.clone())
            .header("cache-control", "public, max-age=300")
            .header("content-type", "application/json")
    })
    .await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[cache]\ncompress = true\ncompress_encoding = \"br\"\n",
    )
    .await;
    get_ae(&v.url("/j"), BR_GZIP).await;
    let r = get_ae(&v.url("/j"), BR_GZIP).await;
    assert_eq!((r.is_hit(), r.coding()), (true, "br"));
    assert_eq!(unbr(&r.body), body);
    // A gzip client cannot take br: its fill is stored in gzip (not br again, which would
    // make every gzip client miss).
    let g = get_ae(&v.url("/j"), GZIP).await;
    assert!(!g.is_hit());
    let g = get_ae(&v.url("/j"), GZIP).await;
    assert_eq!((g.is_hit(), g.coding()), (true, "gzip"));
    assert_eq!(gunzip(&g.body), body);
    let i = get_ae(&v.url("/j"), IDENTITY).await;
    assert_eq!(
        (i.is_hit(), i.coding(), i.body == body),
        (true, "identity", true)
    );
    assert!(get_ae(&v.url("/j"), BR_GZIP).await.is_hit());
    assert_eq!(origin.count("/j"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_apply_to_the_bytes_the_client_receives() {
    let body = page(50_000);
    let gz = gzip(&body);
    let gz2 = gz.clone();
    let (origin, v) = pair(move |_, _| {
        Reply::ok(gz2.clone())
            .header("cache-control", "public, max-age=300")
            .header("content-encoding", "gzip")
            .header("vary", "Accept-Encoding")
            .header("etag", "\"r1\"")
    })
    .await;
    // A range miss for an identity client: filled whole, answered from the stored copy.
    let r = fetch("GET", &v.url("/r"), &[("range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &body[10..20]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{}", body.len()).as_str())
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(origin.count("/r"), 1);
    // Decoded delivery: ranges over the decoded bytes.
    let cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=40000-", 40_000, body.len() - 1),
        ("bytes=-100", body.len() - 100, body.len() - 1),
        ("bytes=49990-60000", 49_990, body.len() - 1),
    ];
    for (range, first, last) in cases {
        let r = fetch("GET", &v.url("/r"), &[("range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert!(r.is_hit(), "{range}");
        assert_eq!(r.body, &body[first..=last], "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {first}-{last}/{}", body.len()).as_str()),
            "{range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((last - first + 1).to_string().as_str())
        );
    }
    let several = fetch("GET", &v.url("/r"), &[("range", "bytes=0-9, 100-109")]).await;
    assert_eq!((several.status, several.body == body), (200, true), "whole");
    let past = fetch("GET", &v.url("/r"), &[("range", "bytes=60000-")]).await;
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{}", body.len()).as_str())
    );
    // If-Range with the weak tag a decoded delivery carries never holds: the whole body.
    let ir = fetch(
        "GET",
        &v.url("/r"),
        &[("range", "bytes=0-9"), ("if-range", "W/\"r1\"")],
    )
    .await;
    assert_eq!((ir.status, ir.body == body), (200, true));
    // Encoded delivery: ranges over the encoded bytes.
    let e = fetch(
        "GET",
        &v.url("/r"),
        &[("range", "bytes=0-9"), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(e.status, 206);
    assert_eq!(e.header("content-encoding"), Some("gzip"));
    assert_eq!(e.body, &gz[..10]);
    assert_eq!(
        e.header("content-range"),
        Some(format!("bytes 0-9/{}", gz.len()).as_str())
    );
    assert_eq!(origin.count("/r"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditionals_on_a_decoded_delivery_use_the_weak_tag() {
    let body = page(5_000);
    let (origin, v) = pair(negotiating(Can::Gzip, body.clone())).await;
    get_ae(&v.url("/c"), GZIP).await;
    let i = get_ae(&v.url("/c"), IDENTITY).await;
    assert_eq!(i.header("etag"), Some("W/\"v1\""));
    let nm = fetch("GET", &v.url("/c"), &[("if-none-match", "W/\"v1\"")]).await;
    assert_eq!(nm.status, 304);
    assert_eq!(nm.header("etag"), Some("W/\"v1\""));
    assert!(nm.varies_on_accept_encoding());
    let g = fetch(
        "GET",
        &v.url("/c"),
        &[("if-none-match", "\"v1\""), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(g.status, 304);
    assert_eq!(
        g.header("etag"),
        Some("\"v1\""),
        "the gzip client's tag is strong"
    );
    assert_eq!(origin.count("/c"), 1);
}
