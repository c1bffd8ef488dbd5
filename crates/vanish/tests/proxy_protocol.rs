//! PROXY protocol on the proxy's listeners: the address a v1 or v2 header carries is the
//! client's (in `X-Forwarded-For`), a `LOCAL`/`UNKNOWN` header keeps the socket's, and a
//! connection without a valid header is closed before anything reaches the origin, on the
//! plain and the TLS listener alike.

mod common;
mod common_tls;

use std::time::Duration;

use common::*;
use common_tls::*;
use tokio::io::AsyncWriteExt;

fn echo(_: &Seen, _: usize) -> Reply {
    Reply::ok("hello").header("cache-control", "no-store")
}

fn v2(command: u8, family: u8, addrs: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(addrs);
    h
}

fn v2_tcp6(src: std::net::Ipv6Addr, port: u16) -> Vec<u8> {
    let mut a = src.octets().to_vec();
    a.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    a.extend_from_slice(&port.to_be_bytes());
    a.extend_from_slice(&80u16.to_be_bytes());
    v2(1, 0x21, &a)
}

fn v2_tcp4(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut a = src.to_vec();
    a.extend_from_slice(&[127, 0, 0, 1]);
    a.extend_from_slice(&port.to_be_bytes());
    a.extend_from_slice(&80u16.to_be_bytes());
    v2(1, 0x11, &a)
}

fn request(path: &str) -> Vec<u8> {
    // The client's own X-Forwarded-For is not trusted: the header's address replaces it.
    format!("GET {path} HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn xff(origin: &TestOrigin, path: &str) -> String {
    let seen = origin.seen.lock().unwrap();
    let s = seen
        .iter()
        .find(|s| s.path_and_query == path)
        .unwrap_or_else(|| panic!("the origin saw no {path}"));
    s.headers["x-forwarded-for"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_addresses_reach_the_origin_as_x_forwarded_for() {
    let origin = TestOrigin::start(echo).await;
    let v = TestVanish::start_with(&origin.url(), "[server]\nproxy_protocol = true\n").await;
    let addr = v.running.proxy_addr;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "/v1",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n".to_vec(),
            "192.0.2.7",
        ),
        (
            "/v1-6",
            b"PROXY TCP6 2001:db8::7 ::1 5555 80\r\n".to_vec(),
            "2001:db8::7",
        ),
        ("/v1-unknown", b"PROXY UNKNOWN\r\n".to_vec(), "127.0.0.1"),
        ("/v2", v2_tcp4([198, 51, 100, 9], 4000), "198.51.100.9"),
        (
            "/v2-6",
            v2_tcp6("2001:db8::5".parse().unwrap(), 4000),
            "2001:db8::5",
        ),
        // LOCAL (a health check from the balancer itself): the socket's address.
        ("/v2-local", v2(0, 0x00, &[]), "127.0.0.1"),
    ];
    for (path, header, want) in cases {
        let mut bytes = header;
        bytes.extend_from_slice(&request(path));
        let res = raw(addr, &bytes).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{path}: {res}");
        assert_eq!(xff(&origin, path), want, "{path}");
    }
    // A header in pieces (the client's writes, whatever TCP makes of them) is still one.
    let mut s = connect_and_send(addr, b"PROXY TCP4 192.0.2.").await;
    s.flush().await.unwrap();
    s.write_all(b"8 10.0.0.1 5555 80\r\n").await.unwrap();
    s.write_all(&request("/pieces")).await.unwrap();
    let res = read_to_close(s).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(xff(&origin, "/pieces"), "192.0.2.8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_header_closes_the_connection() {
    let origin = TestOrigin::start(echo).await;
    let v = TestVanish::start_with(
        &origin.url(),
        "[server]\nproxy_protocol = true\n[limits]\nheader_read_timeout = \"1s\"\n",
    )
    .await;
    let addr = v.running.proxy_addr;
    let mut bad_version = v2_tcp4([192, 0, 2, 1], 1);
    bad_version[12] = 0x31;
    let cases: Vec<Vec<u8>> = vec![
        request("/none"),
        b"PROXY TCP4 garbage 10.0.0.1 1 2\r\n".to_vec(),
        b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 80\r\n".to_vec(),
        b"PROXY TCP5 192.0.2.7 10.0.0.1 1 80\r\n".to_vec(),
        bad_version,
        vec![b'P'; 300],
    ];
    for mut bytes in cases {
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        bytes.extend_from_slice(&request("/after"));
        let res = raw(addr, &bytes).await;
        assert_eq!(res, "", "{shown:?} was answered");
    }
    // Half a header, then nothing: closed at the header read timeout.
    let s = connect_and_send(addr, b"PROXY TCP4 192.0").await;
    assert_eq!(read_to_close(s).await, "");
    assert_eq!(origin.total(), 0, "nothing reached the origin");
    // The listener still serves clients that send a header.
    let mut ok = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n".to_vec();
    ok.extend_from_slice(&request("/fine"));
    assert!(raw(addr, &ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_reads_the_header_before_the_handshake() {
    let origin = TestOrigin::start(echo).await;
    let v = TlsVanish::start(&origin.url(), &["site.test"], "proxy_protocol = true\n").await;
    let config = client_config(&[&v.cert], &[b"h2"]);
    let mut tcp = tokio::net::TcpStream::connect(v.tls_addr).await.unwrap();
    tcp.write_all(&v2_tcp6("2001:db8::42".parse().unwrap(), 7000))
        .await
        .unwrap();
    let tls = tls_over(tcp, "site.test", config.clone()).await;
    let h = h2(tls).await;
    let got = h2_get(&h, "site.test", "/tls").await;
    assert_eq!(got.status, 200);
    assert_eq!(xff(&origin, "/tls"), "2001:db8::42");

    // A TLS client that sends no header is refused: its ClientHello is no PROXY header.
    let tcp = tokio::net::TcpStream::connect(v.tls_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("site.test").unwrap();
    let handshake = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .expect("the server answers within 20s");
    assert!(
        handshake.is_err(),
        "a handshake without a PROXY header succeeded"
    );
    assert_eq!(origin.total(), 1);
}
