//! Test harness for the edge listeners: certificates made by the test (rcgen), a real TLS
//! client (rustls), HTTP/1.1 and HTTP/2 clients on one connection (hyper's `conn` API), and
//! a Vanish with a TLS listener in front of a real origin.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::common::*;

/// A certificate made by the test for some DNS names, with its key.
#[derive(Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

/// A self-signed certificate for `names`.
pub fn make_cert(names: &[&str]) -> TestCert {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("rcgen makes a certificate");
    TestCert {
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
        der: c.cert.der().clone(),
    }
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("vanish-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `cert` as `NAME.pem` and `NAME.key` in `dir`; returns both paths.
pub fn write_cert(dir: &Path, name: &str, cert: &TestCert) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    // Written to a temporary name and renamed: a reload never sees half a file.
    for (path, text) in [(&c, &cert.cert_pem), (&k, &cert.key_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (c, k)
}

/// TOML for a TLS listener on a free port with one certificate.
pub fn tls_toml(cert: &Path, key: &Path) -> String {
    format!(
        "[server]\nlisten_tls = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.to_str().unwrap(),
        key.to_str().unwrap()
    )
}

/// A client configuration trusting `roots`, offering `alpn`.
pub fn client_config(roots: &[&TestCert], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

/// Connects with TLS to `addr`, sending `sni`.
pub async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tls_over(tcp, sni, config).await
}

/// TLS over an already open connection (after a PROXY header, say).
pub async fn tls_over<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> TlsStream<IO> {
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio_rustls::TlsConnector::from(config).connect(name, io),
    )
    .await
    .expect("TLS handshake within 20s")
    .expect("TLS handshake succeeds")
}

/// The certificate the server presented.
pub fn peer_cert<IO>(s: &TlsStream<IO>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The protocol ALPN chose.
pub fn alpn<IO>(s: &TlsStream<IO>) -> Option<Vec<u8>> {
    s.get_ref().1.alpn_protocol().map(|p| p.to_vec())
}

/// An HTTP/1.1 client on one connection (keep-alive).
pub async fn h1<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// An HTTP/2 client on one connection.
pub async fn h2<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

/// A GET request for `path` on `host`, in the form either protocol takes.
pub fn get_req(host: &str, path: &str, h2: bool) -> Request<Empty<Bytes>> {
    let b = match h2 {
        true => Request::get(format!("https://{host}{path}")),
        false => Request::get(path).header("host", host),
    };
    b.body(Empty::new()).unwrap()
}

/// Collects a response into what the tests compare.
pub async fn collect(res: http::Response<hyper::body::Incoming>) -> Got {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), res.into_body().collect())
        .await
        .expect("body within 20s")
        .expect("body completes")
        .to_bytes();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// GET over an HTTP/1.1 connection.
pub async fn h1_get(
    send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
) -> Got {
    send.ready().await.unwrap();
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        send.send_request(get_req(host, path, false)),
    )
    .await
    .expect("response within 20s")
    .expect("request succeeds");
    collect(res).await
}

/// GET over an HTTP/2 connection (a new stream).
pub async fn h2_get(
    send: &hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
) -> Got {
    let mut send = send.clone();
    send.ready().await.unwrap();
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        send.send_request(get_req(host, path, true)),
    )
    .await
    .expect("response within 20s")
    .expect("request succeeds");
    collect(res).await
}

/// Vanish with a TLS listener (one certificate for `names`) in front of `origin`, plus `toml`
/// (its lines before any `[section]` are more `[server]` keys).
pub struct TlsVanish {
    pub vanish: TestVanish,
    pub cert: TestCert,
    pub dir: PathBuf,
    pub tls_addr: SocketAddr,
}

impl TlsVanish {
    pub async fn start(origin: &str, names: &[&str], toml: &str) -> Self {
        let dir = temp_dir("tls");
        let cert = make_cert(names);
        let (c, k) = write_cert(&dir, "site", &cert);
        let vanish = TestVanish::start_with(origin, &format!("{}{toml}", tls_toml(&c, &k))).await;
        let tls_addr = vanish.running.tls_addr.expect("a TLS listener");
        TlsVanish {
            vanish,
            cert,
            dir,
            tls_addr,
        }
    }
}
