//! Decoding `gzip` and `br` bodies: once at admission, counting (the decompression-bomb
//! check), and on the fly for clients that accept neither.
//!
//! Owns the limits a decoded body must keep ([`DecodeLimits`]), the counting check
//! ([`Inflater`]: a streaming decoder whose output is counted and dropped, fed as the
//! origin's body arrives) and the streaming decoder a client's body is read through
//! ([`decoded`]). The check uses `flate2`'s and `brotli`'s `Write` decoders (push: fed
//! chunk by chunk from the fill's tee, output never kept); delivery uses `async-compression`
//! (pull: each poll decodes at most one chunk, so a body decoded for a slow client never
//! holds more than that chunk, and an origin body still arriving is read as it comes). It
//! decides nothing about storing or headers.

use std::fmt;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder};
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncBufRead;

use crate::body::{BoxError, CacheBody};
use crate::coding::Coding;

/// Bounds a `gzip` or `br` body must keep once decoded (`[limits] max_decoded_ratio` and
/// `max_decoded_size` in the proxy's configuration); a stored body that breaks one is not
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most decoded bytes per encoded byte.
    pub max_ratio: u64,
    /// Most decoded bytes.
    pub max_size: u64,
}

impl Default for DecodeLimits {
    /// 100 decoded bytes per encoded byte, and 64 MiB (four times the default largest
    /// stored object).
    fn default() -> Self {
        DecodeLimits {
            max_ratio: 100,
            max_size: 64 * 1024 * 1024,
        }
    }
}

impl DecodeLimits {
    /// The most a body of `encoded` bytes (when known) may decode to.
    pub fn bound(&self, encoded: Option<u64>) -> u64 {
        match encoded {
            Some(n) => self.max_size.min(n.saturating_mul(self.max_ratio)),
            None => self.max_size,
        }
    }
}

/// Why an encoded body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It decodes to more than `max_size` bytes.
    TooLarge {
        /// The coding.
        coding: Coding,
        /// The limit.
        limit: u64,
    },
    /// It decodes to more than `max_ratio` bytes per encoded byte.
    Ratio {
        /// The coding.
        coding: Coding,
        /// The limit.
        limit: u64,
    },
    /// It does not decode.
    Corrupt {
        /// The coding.
        coding: Coding,
        /// What the decoder said.
        reason: String,
    },
}

impl Refused {
    /// A short token for metrics and `Cache-Status` details.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::TooLarge { .. } | Refused::Ratio { .. } => "decoded-too-large",
            Refused::Corrupt { .. } => "corrupt-encoding",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::TooLarge { coding, limit } => write!(
                f,
                "the origin's {} body decodes to more than {limit} bytes (limits.max_decoded_size)",
                coding.token()
            ),
            Refused::Ratio { coding, limit } => write!(
                f,
                "the origin's {} body decodes to more than {limit} bytes per byte (limits.max_decoded_ratio)",
                coding.token()
            ),
            Refused::Corrupt { coding, reason } => {
                write!(f, "the origin's {} body does not decode: {reason}", coding.token())
            }
        }
    }
}

impl std::error::Error for Refused {}

/// Counts decoded bytes, refusing past a bound (and refusing again on every later write,
/// so a decoder that flushes on drop stops at once too).
struct Counter {
    count: u64,
    bound: u64,
    over: bool,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if self.over || self.count > self.bound {
            self.over = true;
            return Err(io::Error::other("decoded size limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Push {
    Gzip(Box<flate2::write::GzDecoder<Counter>>),
    Br(Box<brotli::DecompressorWriter<Counter>>),
}

/// The decompression-bomb check: a streaming decoder fed the encoded body piece by piece
/// whose output is only counted.
///
/// ```
/// use std::io::Write;
/// use vanish_engine::coding::Coding;
/// use vanish_engine::decode::{DecodeLimits, Inflater};
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// gz.write_all(&[b'a'; 10_000]).unwrap();
/// let body = gz.finish().unwrap();
/// let limits = DecodeLimits { max_ratio: 1000, max_size: 1 << 20 };
/// let mut check = Inflater::new(Coding::Gzip, limits, Some(body.len() as u64)).unwrap();
/// check.feed(&body).unwrap();
/// assert_eq!(check.finish(), Ok(10_000));
///
/// let strict = DecodeLimits { max_ratio: 10, max_size: 1 << 20 };
/// let mut check = Inflater::new(Coding::Gzip, strict, None).unwrap();
/// check.feed(&body).unwrap();
/// assert!(check.finish().is_err(), "a ratio over 10 is refused");
/// ```
pub struct Inflater {
    push: Push,
    coding: Coding,
    limits: DecodeLimits,
    encoded: u64,
}

impl Inflater {
    /// A check for a body in `coding` (`None` for identity, which needs none); `encoded` is
    /// the body's length when the origin said it, so a bomb stops early.
    pub fn new(coding: Coding, limits: DecodeLimits, encoded: Option<u64>) -> Option<Inflater> {
        let counter = Counter {
            count: 0,
            bound: limits.bound(encoded),
            over: false,
        };
        let push = match coding {
            Coding::Identity => return None,
            Coding::Gzip => Push::Gzip(Box::new(flate2::write::GzDecoder::new(counter))),
            Coding::Br => Push::Br(Box::new(brotli::DecompressorWriter::new(counter, 8192))),
        };
        Some(Inflater {
            push,
            coding,
            limits,
            encoded: 0,
        })
    }

    /// Decodes the next piece of the body.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Refused> {
        self.encoded += data.len() as u64;
        let result = match &mut self.push {
            Push::Gzip(d) => d.write_all(data),
            Push::Br(d) => d.write_all(data),
        };
        result.map_err(|e| self.refusal(e))
    }

    /// Ends the body: the decoded length, or why it is refused.
    pub fn finish(mut self) -> Result<u64, Refused> {
        let result = match &mut self.push {
            Push::Gzip(d) => d.try_finish(),
            Push::Br(d) => d.close(),
        };
        result.map_err(|e| self.refusal(e))?;
        let decoded = self.counter().count;
        let ratio_bound = self.encoded.max(1).saturating_mul(self.limits.max_ratio);
        if decoded > ratio_bound {
            return Err(Refused::Ratio {
                coding: self.coding,
                limit: self.limits.max_ratio,
            });
        }
        Ok(decoded)
    }

    fn counter(&self) -> &Counter {
        match &self.push {
            Push::Gzip(d) => d.get_ref(),
            Push::Br(d) => d.get_ref(),
        }
    }

    fn refusal(&self, e: io::Error) -> Refused {
        let c = self.counter();
        if !c.over {
            return Refused::Corrupt {
                coding: self.coding,
                reason: e.to_string(),
            };
        }
        if c.bound < self.limits.max_size {
            Refused::Ratio {
                coding: self.coding,
                limit: self.limits.max_ratio,
            }
        } else {
            Refused::TooLarge {
                coding: self.coding,
                limit: self.limits.max_size,
            }
        }
    }
}

/// Which decoded bytes a client gets: all, or one range (for a `206`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Decoded bytes skipped first.
    pub skip: u64,
    /// Decoded bytes sent after them (`None`: to the end).
    pub take: Option<u64>,
}

/// The largest piece a decoded body yields at once.
const CHUNK: usize = 32 * 1024;

// The enum lives inside the response body's box: boxing the gzip decoder too would only add
// an allocation to every decoded response.
#[allow(clippy::large_enum_variant)]
enum Pull<R> {
    Gzip(GzipDecoder<R>),
    Br(BrotliDecoder<R>),
}

/// A body that decodes `R`'s bytes as it is read.
struct Decoded<R> {
    pull: Pull<R>,
    buf: BytesMut,
    window: Window,
    /// Decoded bytes read so far.
    produced: u64,
    /// Decoded bytes still expected, when known (sizes each read's buffer).
    expected: Option<u64>,
    /// Refuse past this many decoded bytes.
    bound: u64,
    coding: Coding,
    done: bool,
}

impl<R: AsyncBufRead + Unpin> Decoded<R> {
    fn new(reader: R, coding: Coding, window: Window, expected: Option<u64>, bound: u64) -> Self {
        let pull = match coding {
            Coding::Br => Pull::Br(BrotliDecoder::new(reader)),
            _ => Pull::Gzip(GzipDecoder::new(reader)),
        };
        Decoded {
            pull,
            buf: BytesMut::new(),
            window,
            produced: 0,
            expected,
            bound,
            coding,
            done: false,
        }
    }

    fn poll_read_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let want = match self.expected {
            // A stored body was checked whole at admission: once its length is read, the
            // rest (the trailer) is not read again.
            Some(left) if left <= self.produced => return Poll::Ready(Ok(0)),
            Some(left) => ((left - self.produced) as usize).min(CHUNK),
            None => CHUNK,
        };
        self.buf.reserve(want);
        match &mut self.pull {
            Pull::Gzip(d) => tokio_util::io::poll_read_buf(Pin::new(d), cx, &mut self.buf),
            Pull::Br(d) => tokio_util::io::poll_read_buf(Pin::new(d), cx, &mut self.buf),
        }
    }
}

impl<R: AsyncBufRead + Unpin> Body for Decoded<R> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let n = match this.poll_read_some(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    let why = Refused::Corrupt {
                        coding: this.coding,
                        reason: e.to_string(),
                    };
                    return Poll::Ready(Some(Err(why.into())));
                }
                Poll::Ready(Ok(n)) => n,
            };
            if n == 0 {
                this.done = true;
                return Poll::Ready(None);
            }
            this.produced += n as u64;
            if this.produced > this.bound {
                this.done = true;
                let why = Refused::TooLarge {
                    coding: this.coding,
                    limit: this.bound,
                };
                return Poll::Ready(Some(Err(why.into())));
            }
            if this.window.skip > 0 {
                let skip = this.window.skip.min(this.buf.len() as u64);
                this.buf.advance(skip as usize);
                this.window.skip -= skip;
                if this.buf.is_empty() {
                    continue;
                }
            }
            if let Some(take) = &mut this.window.take {
                if (this.buf.len() as u64) >= *take {
                    this.buf.truncate(*take as usize);
                    this.done = true;
                }
                *take -= this.buf.len() as u64;
            }
            if this.buf.is_empty() {
                continue;
            }
            return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
        }
    }

    fn size_hint(&self) -> SizeHint {
        match (self.window.take, self.expected) {
            (Some(t), _) => SizeHint::with_exact(t),
            (None, Some(len)) if self.produced == 0 && self.window.skip == 0 => {
                SizeHint::with_exact(len)
            }
            _ => SizeHint::default(),
        }
    }
}

/// A stored body in `coding`, decoded as the client reads it: the bytes of `window`, of a
/// body that decodes to `decoded_len` bytes (when known).
///
/// ```
/// # async fn demo() {
/// use std::io::Write;
/// use http_body_util::BodyExt;
/// use vanish_engine::coding::Coding;
/// use vanish_engine::decode::{decoded, Window};
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// gz.write_all(b"hello, world").unwrap();
/// let stored = bytes::Bytes::from(gz.finish().unwrap());
/// let body = decoded(stored, Coding::Gzip, Window { skip: 7, take: Some(5) }, Some(12));
/// assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"world");
/// # }
/// ```
pub fn decoded(body: Bytes, coding: Coding, window: Window, decoded_len: Option<u64>) -> CacheBody {
    let bound = decoded_len.unwrap_or(u64::MAX);
    CacheBody::boxed(Decoded::new(
        io::Cursor::new(body),
        coding,
        window,
        decoded_len,
        bound,
    ))
}

/// A body arriving from the origin in `coding`, decoded as it is read, and failed (the
/// client's connection then ends early) past `limits`' absolute bound.
pub fn decoded_stream<B>(body: B, coding: Coding, limits: DecodeLimits) -> CacheBody
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    let stream = body
        .map_err(|e| io::Error::other(e.into()))
        .into_data_stream();
    let reader = tokio_util::io::StreamReader::new(stream);
    CacheBody::boxed(Decoded::new(
        reader,
        coding,
        Window::default(),
        None,
        limits.max_size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            e.write_all(data).unwrap();
        }
        out
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"abcdefghij"[i % 10] ^ (i / 997) as u8)
            .collect()
    }

    const ROOMY: DecodeLimits = DecodeLimits {
        max_ratio: 10_000,
        max_size: 1 << 30,
    };

    fn check(
        coding: Coding,
        body: &[u8],
        limits: DecodeLimits,
        pieces: usize,
    ) -> Result<u64, Refused> {
        let mut i = Inflater::new(coding, limits, None).unwrap();
        for chunk in body.chunks(body.len().div_ceil(pieces).max(1)) {
            i.feed(chunk)?;
        }
        i.finish()
    }

    #[test]
    fn the_check_counts_what_a_body_decodes_to() {
        let data = text(100_000);
        for (coding, enc) in [(Coding::Gzip, gzip(&data)), (Coding::Br, br(&data))] {
            for pieces in [1, 7, 1000] {
                assert_eq!(
                    check(coding, &enc, ROOMY, pieces),
                    Ok(100_000),
                    "{coding:?}/{pieces}"
                );
            }
        }
    }

    #[test]
    fn bombs_and_corrupt_bodies_are_refused() {
        let zeros = vec![0u8; 4 << 20];
        for (coding, enc) in [(Coding::Gzip, gzip(&zeros)), (Coding::Br, br(&zeros))] {
            let small = DecodeLimits {
                max_ratio: 10_000_000,
                max_size: 1 << 20,
            };
            assert!(
                matches!(check(coding, &enc, small, 3), Err(Refused::TooLarge { .. })),
                "{coding:?}: absolute"
            );
            let ratio = DecodeLimits {
                max_ratio: 100,
                max_size: 1 << 30,
            };
            assert!(
                matches!(check(coding, &enc, ratio, 3), Err(Refused::Ratio { .. })),
                "{coding:?}: ratio"
            );
            // With the length known up front, the ratio stops the decoding early.
            let mut early = Inflater::new(coding, ratio, Some(enc.len() as u64)).unwrap();
            assert!(
                matches!(early.feed(&enc), Err(Refused::Ratio { .. })),
                "{coding:?}"
            );
            let truncated = &enc[..enc.len() / 2];
            assert!(
                matches!(
                    check(coding, truncated, ROOMY, 2),
                    Err(Refused::Corrupt { .. })
                ),
                "{coding:?}: truncated"
            );
        }
        assert!(matches!(
            check(Coding::Gzip, b"not gzip at all", ROOMY, 1),
            Err(Refused::Corrupt { .. })
        ));
        let refused = check(
            Coding::Gzip,
            &gzip(&zeros),
            DecodeLimits {
                max_ratio: 2,
                max_size: 1 << 30,
            },
            1,
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("max_decoded_ratio"));
    }

    async fn read(body: CacheBody) -> Result<Vec<u8>, String> {
        body.collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn stored_bodies_decode_whole_and_in_windows() {
        let data = text(200_000);
        for (coding, enc) in [(Coding::Gzip, gzip(&data)), (Coding::Br, br(&data))] {
            let enc = Bytes::from(enc);
            let whole = decoded(enc.clone(), coding, Window::default(), Some(200_000));
            assert_eq!(whole.size_hint().exact(), Some(200_000));
            assert_eq!(read(whole).await.unwrap(), data, "{coding:?}");
            let unknown = decoded(enc.clone(), coding, Window::default(), None);
            assert_eq!(
                read(unknown).await.unwrap(),
                data,
                "{coding:?}: length unknown"
            );
            for (skip, take) in [
                (0, 1),
                (5, 10),
                (40_000, 70_000),
                (199_999, 1),
                (150_000, 50_000),
            ] {
                let w = Window {
                    skip,
                    take: Some(take),
                };
                let part = read(decoded(enc.clone(), coding, w, Some(200_000)))
                    .await
                    .unwrap();
                assert_eq!(
                    part,
                    &data[skip as usize..(skip + take) as usize],
                    "{coding:?} {w:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn streams_decode_and_stop_at_the_limit() {
        let data = text(300_000);
        let enc = gzip(&data);
        let body = || Pieces(enc.chunks(1000).map(Bytes::copy_from_slice).collect());
        assert_eq!(
            read(decoded_stream(body(), Coding::Gzip, ROOMY))
                .await
                .unwrap(),
            data
        );
        let tight = DecodeLimits {
            max_ratio: 100,
            max_size: 100_000,
        };
        let err = read(decoded_stream(body(), Coding::Gzip, tight))
            .await
            .unwrap_err();
        assert!(err.contains("max_decoded_size"), "{err}");
        let corrupt = http_body_util::Full::new(Bytes::from_static(b"\x1f\x8bnot really"));
        assert!(read(decoded_stream(corrupt, Coding::Gzip, ROOMY))
            .await
            .is_err());
    }

    /// An origin body arriving in pieces.
    struct Pieces(std::collections::VecDeque<Bytes>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }
}
