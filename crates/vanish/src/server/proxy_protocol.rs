//! The PROXY protocol (HAProxy's v1 text and v2 binary headers) on a client listener.
//!
//! Owns reading the header a load balancer sends before anything else on a connection, and
//! what it says: the client's address (TCP over IPv4 or IPv6), or nothing for a `LOCAL` (v2)
//! or `UNKNOWN` (v1) header, which keep the socket's own address. Parsing is the `ppp`
//! crate's; this module adds the streaming read (bytes arrive in any pieces: a v1 line is
//! parsed only once whole), the size bound,
//! and [`Prefixed`], which hands the bytes read past the header to whatever speaks next (TLS
//! or HTTP). Deadlines are the caller's (the connection watchdog in `accept.rs`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use ppp::{v1, v2, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The most bytes read while looking for a header: a v1 header is at most 107 bytes; a v2
/// header is 16 bytes plus its addresses and TLVs, which in practice (AWS, GCP, HAProxy)
/// stay well under this.
pub const MAX_HEADER_BYTES: usize = 4096;

/// What the start of a connection says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of `len` bytes: the client's address, or `None` to keep the socket's.
    Header {
        /// The client the proxy in front speaks for.
        client: Option<SocketAddr>,
        /// The header's length; the connection's own bytes follow it.
        len: usize,
    },
    /// A header may still come: read more.
    Incomplete,
    /// Not a PROXY header (the reason, one line).
    Invalid(String),
}

/// The longest v1 header, CRLF included (the protocol's limit).
const V1_MAX: usize = 107;

/// Parses the start of a connection (the bytes received so far).
///
/// A v1 header is parsed only once its line is whole: `ppp` judges a line cut just after a
/// space as a bad one, and a header split there across reads must still be accepted.
pub fn parse(buf: &[u8]) -> Parsed {
    let v1_start = match buf.len() < 6 {
        true => b"PROXY ".starts_with(buf),
        false => buf.starts_with(b"PROXY "),
    };
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    if v1_start {
        let window = &buf[..buf.len().min(V1_MAX)];
        return match window.windows(2).position(|w| w == b"\r\n") {
            Some(cr) => v1_header(&buf[..cr + 2]),
            None if buf.len() < V1_MAX => Parsed::Incomplete,
            None => Parsed::Invalid(format!(
                "not a PROXY v1 header (no end of line in its first {V1_MAX} bytes)"
            )),
        };
    }
    let result = v2::Header::try_from(buf);
    if result.is_incomplete() {
        return match buf.len() >= MAX_HEADER_BYTES {
            true => Parsed::Invalid(format!(
                "no whole PROXY header in the first {MAX_HEADER_BYTES} bytes"
            )),
            false => Parsed::Incomplete,
        };
    }
    match result {
        Ok(h) => {
            let client = match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                // UNIX sockets and unspecified families: no IP to speak of.
                (v2::Command::Proxy, _) => None,
            };
            Parsed::Header {
                client,
                len: h.len(),
            }
        }
        Err(v2::ParseError::Prefix) => Parsed::Invalid("no PROXY header".into()),
        Err(e) => Parsed::Invalid(one_line(format!("not a PROXY v2 header ({e})"))),
    }
}

/// A reason fit for one log line: `ppp`'s messages may quote `\r\n` as the bytes themselves.
fn one_line(why: String) -> String {
    match why.contains(['\r', '\n']) {
        true => why.replace('\r', "\\r").replace('\n', "\\n"),
        false => why,
    }
}

/// A whole v1 line, CRLF included.
fn v1_header(line: &[u8]) -> Parsed {
    match v1::Header::try_from(line) {
        Ok(h) => {
            let client = match h.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            };
            Parsed::Header {
                client,
                len: line.len(),
            }
        }
        Err(e) => Parsed::Invalid(one_line(format!("not a PROXY v1 header ({e})"))),
    }
}

/// A PROXY header that could not be read: the connection is to be closed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed before a whole header.
    Closed,
    /// The bytes are no PROXY header.
    Invalid(String),
    /// The socket failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("closed before a whole PROXY header"),
            ReadError::Invalid(why) => f.write_str(why),
            ReadError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a PROXY header from the start of `io`. Returns the connection (its bytes past the
/// header come first) and the client's address, `None` when the header keeps the socket's.
pub async fn read_header<IO: AsyncRead + Unpin>(
    mut io: IO,
) -> Result<(Prefixed<IO>, Option<SocketAddr>), ReadError> {
    // Most headers arrive whole in the first read, often with the client's first bytes.
    let mut buf = Vec::with_capacity(512);
    loop {
        let room = MAX_HEADER_BYTES - buf.len();
        let n = (&mut io)
            .take(room as u64)
            .read_buf(&mut buf)
            .await
            .map_err(ReadError::Io)?;
        match parse(&buf) {
            Parsed::Header { client, len } => {
                buf.drain(..len);
                return Ok((Prefixed::new(buf, io), client));
            }
            Parsed::Invalid(why) => return Err(ReadError::Invalid(why)),
            Parsed::Incomplete if n == 0 => return Err(ReadError::Closed),
            Parsed::Incomplete => {}
        }
    }
}

/// A connection whose first bytes were already read: they are read again first.
pub struct Prefixed<IO> {
    first: Vec<u8>,
    pos: usize,
    inner: IO,
}

impl<IO> Prefixed<IO> {
    /// `first` is read before `inner`.
    pub fn new(first: Vec<u8>, inner: IO) -> Self {
        Prefixed {
            first,
            pos: 0,
            inner,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.first.len() {
            let n = out.remaining().min(self.first.len() - self.pos);
            let pos = self.pos;
            out.put_slice(&self.first[pos..pos + n]);
            self.pos += n;
            if self.pos == self.first.len() {
                self.first = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(command: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    fn v2_tcp4(src: [u8; 4], port: u16, tlvs: &[u8]) -> Vec<u8> {
        let mut a = src.to_vec();
        a.extend_from_slice(&[10, 0, 0, 1]);
        a.extend_from_slice(&port.to_be_bytes());
        a.extend_from_slice(&443u16.to_be_bytes());
        v2(1, 0x11, &a, tlvs)
    }

    #[test]
    fn v1_and_v2_headers_give_the_client_and_their_length() {
        let text = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(text),
            Parsed::Header {
                client: Some("192.0.2.7:5555".parse().unwrap()),
                len: 40
            }
        );
        let text6 = b"PROXY TCP6 2001:db8::9 ::1 6000 80\r\n";
        assert_eq!(
            parse(text6),
            Parsed::Header {
                client: Some("[2001:db8::9]:6000".parse().unwrap()),
                len: text6.len()
            }
        );
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header { client: None, .. }
        ));
        let bin = v2_tcp4([198, 51, 100, 4], 4000, &[0x04, 0, 2, b'h', b'i']);
        let mut with_data = bin.clone();
        with_data.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse(&with_data),
            Parsed::Header {
                client: Some("198.51.100.4:4000".parse().unwrap()),
                len: bin.len()
            }
        );
        let local = v2(0, 0x11, &[0; 12], &[]);
        assert!(matches!(parse(&local), Parsed::Header { client: None, .. }));
    }

    #[test]
    fn other_bytes_are_refused_and_a_prefix_waits() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00",
            b"PROXY TCP4 nonsense 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 443\r\n",
        ] {
            assert!(matches!(parse(bad), Parsed::Invalid(_)), "{bad:?}");
        }
        assert_eq!(parse(b"PROXY TCP4 192.0"), Parsed::Incomplete);
        assert_eq!(parse(b"\r\n\r\n"), Parsed::Incomplete);
        assert_eq!(parse(b""), Parsed::Incomplete);
        // A v1 line that never ends is refused at its protocol limit, long before ours.
        assert!(matches!(parse(&[b'P'; 200]), Parsed::Invalid(_)));
        // Found by the fuzzer: ppp's message quotes the CRLF it wanted as the bytes themselves.
        match parse(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 443\r\x08GET / HTTP/1.1\r\n\r\n") {
            Parsed::Invalid(why) => assert!(!why.contains(['\r', '\n']), "{why:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bytes_after_the_header_are_read_next() {
        let (mut client, server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let (mut conn, client) = read_header(server).await.unwrap();
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await.unwrap();
            (client, rest)
        });
        use tokio::io::AsyncWriteExt;
        for piece in [
            &b"PROXY TCP4 192.0.2.7 10.0"[..],
            b".0.1 5555 443\r\nhel",
            b"lo",
        ] {
            client.write_all(piece).await.unwrap();
        }
        drop(client);
        let (addr, rest) = reader.await.unwrap();
        assert_eq!(addr, Some("192.0.2.7:5555".parse().unwrap()));
        assert_eq!(rest, b"hello");
    }

    #[tokio::test]
    async fn closing_early_or_sending_junk_is_an_error() {
        let r = read_header(&b"PROXY TCP4 1.2"[..]).await;
        assert!(matches!(r, Err(ReadError::Closed)));
        let r = read_header(&b"GET / HTTP/1.1\r\n\r\n"[..]).await;
        assert!(matches!(r, Err(ReadError::Invalid(_))));
    }

    proptest! {
        /// A valid header cut anywhere is incomplete until its last byte: a header split
        /// across reads is never refused early.
        #[test]
        fn every_prefix_of_a_header_waits(
            v4 in any::<[u8; 4]>(), port in any::<u16>(), tlv in proptest::collection::vec(any::<u8>(), 0..40),
            text in any::<bool>(),
        ) {
            let header = match text {
                true => format!("PROXY TCP4 {}.{}.{}.{} 10.0.0.1 {port} 443\r\n", v4[0], v4[1], v4[2], v4[3]).into_bytes(),
                false => {
                    let mut t = vec![0x04, 0, tlv.len() as u8];
                    t.extend_from_slice(&tlv);
                    v2_tcp4(v4, port, &t)
                }
            };
            let want = Parsed::Header { client: Some(SocketAddr::from((v4, port))), len: header.len() };
            prop_assert_eq!(parse(&header), want);
            for cut in 0..header.len() {
                prop_assert_eq!(parse(&header[..cut]), Parsed::Incomplete, "cut at {}", cut);
            }
        }
    }
}
