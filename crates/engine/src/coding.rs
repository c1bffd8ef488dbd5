//! Content codings the cache negotiates: `br`, `gzip` and identity (RFC 9110 section 8.4).
//!
//! Owns reading a response's `Content-Encoding` into a [`Coding`], reading a client's
//! `Accept-Encoding` into what it accepts and in which order the cache tries stored
//! encodings for it ([`Accepted`]), the `Accept-Encoding` a fill sends the origin, and the
//! token a purge's `accept-encoding` header filter means. Parsing allocates nothing. It
//! decodes nothing ([`crate::decode`] does) and touches no header map it is not handed.

use http::{header, HeaderMap, HeaderValue};

/// A content coding the cache can store, decode and serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// No content coding.
    Identity,
    /// `gzip` (also read as `x-gzip`).
    Gzip,
    /// `br` (Brotli).
    Br,
}

impl Coding {
    /// The coding's token, as `Content-Encoding` and variant keys write it.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }

    /// The coding a token names (case-insensitive; `x-gzip` is `gzip`), if the cache knows it.
    ///
    /// ```
    /// use vanish_engine::coding::Coding;
    /// assert_eq!(Coding::from_token("X-GZIP"), Some(Coding::Gzip));
    /// assert_eq!(Coding::from_token("zstd"), None);
    /// ```
    pub fn from_token(token: &str) -> Option<Coding> {
        let t = token.trim_matches([' ', '\t']);
        if t.eq_ignore_ascii_case("gzip") || t.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else if t.eq_ignore_ascii_case("br") {
            Some(Coding::Br)
        } else if t.eq_ignore_ascii_case("identity") || t.is_empty() {
            Some(Coding::Identity)
        } else {
            None
        }
    }

    /// The coding of a response body from its `Content-Encoding` field(s): identity without
    /// one, `None` when it names a coding the cache cannot decode or several codings.
    ///
    /// ```
    /// use vanish_engine::coding::Coding;
    /// let h = |v: &str| {
    ///     let mut m = http::HeaderMap::new();
    ///     m.insert("content-encoding", v.parse().unwrap());
    ///     m
    /// };
    /// assert_eq!(Coding::of_response(&http::HeaderMap::new()), Some(Coding::Identity));
    /// assert_eq!(Coding::of_response(&h("GZIP")), Some(Coding::Gzip));
    /// assert_eq!(Coding::of_response(&h("gzip, br")), None);
    /// assert_eq!(Coding::of_response(&h("deflate")), None);
    /// ```
    pub fn of_response(headers: &HeaderMap) -> Option<Coding> {
        let mut lines = headers.get_all(header::CONTENT_ENCODING).iter();
        let Some(first) = lines.next() else {
            return Some(Coding::Identity);
        };
        if lines.next().is_some() {
            return None;
        }
        let s = first.to_str().ok()?;
        let mut codings = s
            .split(',')
            .map(|c| c.trim_matches([' ', '\t']))
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
        match (codings.next(), codings.next()) {
            (None, _) => Some(Coding::Identity),
            (Some(c), None) => Coding::from_token(c),
            (Some(_), Some(_)) => None,
        }
    }

    /// The `Content-Encoding` value of this coding (`None` for identity).
    pub fn header_value(self) -> Option<HeaderValue> {
        match self {
            Coding::Identity => None,
            c => Some(HeaderValue::from_static(c.token())),
        }
    }
}

/// What a client's `Accept-Encoding` accepts of the cache's codings: each one's weight in
/// thousandths (0: refused).
///
/// Read as RFC 9110 section 12.5.3 says, but for one deliberate difference: a request
/// *without* `Accept-Encoding` accepts identity only (the RFC would allow any coding;
/// browsers always send the field, and tools that omit it cannot read `gzip`). `*` weighs
/// every coding not named; identity not named (nor covered by `*`) is accepted at the lowest
/// weight; `x-gzip` is `gzip`; an element with an invalid weight is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    br: u16,
    gzip: u16,
    identity: u16,
}

/// The weight of identity when the client does not name it: below every named weight.
const UNNAMED_IDENTITY: u16 = 1;

/// How a stored object serves a client, as ranked by [`Accepted::rank`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank(u8);

impl Rank {
    /// The object is sent decoded (the client accepts neither `br` nor `gzip`).
    pub fn decoded(self) -> bool {
        self.0 >= 4
    }

    /// The best rank there is: nothing else can serve better.
    pub fn is_best(self) -> bool {
        self.0 == 0
    }
}

impl Accepted {
    /// A client that accepts identity only.
    pub const IDENTITY: Accepted = Accepted {
        br: 0,
        gzip: 0,
        identity: 1000,
    };

    /// Reads a request's `Accept-Encoding` field lines.
    ///
    /// ```
    /// use vanish_engine::coding::{Accepted, Coding};
    /// let mut h = http::HeaderMap::new();
    /// h.insert("accept-encoding", "gzip, deflate, br, zstd".parse().unwrap());
    /// let a = Accepted::of(&h);
    /// assert!(a.accepts(Coding::Br) && a.accepts(Coding::Gzip));
    /// assert!(!Accepted::of(&http::HeaderMap::new()).accepts(Coding::Gzip));
    /// ```
    pub fn of(headers: &HeaderMap) -> Accepted {
        let mut lines = headers.get_all(header::ACCEPT_ENCODING).iter().peekable();
        if lines.peek().is_none() {
            return Accepted::IDENTITY;
        }
        let mut w = Weights::default();
        for line in lines {
            if let Ok(s) = line.to_str() {
                w.read(s);
            }
        }
        w.accepted()
    }

    /// Reads one `Accept-Encoding` value.
    pub fn parse(value: &str) -> Accepted {
        let mut w = Weights::default();
        w.read(value);
        w.accepted()
    }

    /// True when the client may be sent a body in `coding` as it is (identity always may:
    /// a client that refuses it gets it when nothing else can be had).
    pub fn accepts(&self, coding: Coding) -> bool {
        match coding {
            Coding::Identity => true,
            Coding::Gzip => self.gzip > 0,
            Coding::Br => self.br > 0,
        }
    }

    /// True when the client accepts neither `br` nor `gzip`: a stored object in either can
    /// serve it only decoded.
    pub fn identity_only(&self) -> bool {
        self.br == 0 && self.gzip == 0
    }

    /// How well a stored object in `coding` serves this client (lower is better): the
    /// accepted codings by weight, ties broken `br`, `gzip`, identity; then identity when the
    /// client refused it; then, for a client that accepts neither `br` nor `gzip`, a `gzip`
    /// and then a `br` object decoded. `None`: the object cannot serve this client (a `gzip`
    /// client is not sent a `br` object decoded: it is a miss, and the origin is asked for
    /// what the client accepts).
    ///
    /// ```
    /// use vanish_engine::coding::{Accepted, Coding};
    /// let a = Accepted::parse("gzip;q=0.8, br");
    /// assert!(a.rank(Coding::Br) < a.rank(Coding::Gzip));
    /// assert!(a.rank(Coding::Gzip) < a.rank(Coding::Identity));
    /// let identity = Accepted::parse("");
    /// assert!(identity.rank(Coding::Gzip).unwrap().decoded());
    /// assert_eq!(Accepted::parse("gzip").rank(Coding::Br), None);
    /// ```
    pub fn rank(&self, coding: Coding) -> Option<Rank> {
        let weight = self.weight(coding);
        if weight > 0 {
            let better = [Coding::Br, Coding::Gzip, Coding::Identity]
                .into_iter()
                .filter(|&c| {
                    let w = self.weight(c);
                    w > weight || (w == weight && (c as u8) > (coding as u8))
                })
                .count();
            return Some(Rank(better as u8));
        }
        match coding {
            Coding::Identity => Some(Rank(3)),
            Coding::Gzip if self.identity_only() => Some(Rank(4)),
            Coding::Br if self.identity_only() => Some(Rank(5)),
            _ => None,
        }
    }

    fn weight(&self, coding: Coding) -> u16 {
        match coding {
            Coding::Identity => self.identity,
            Coding::Gzip => self.gzip,
            Coding::Br => self.br,
        }
    }

    /// The coding this client is best served in (what a purge filter spelled as an
    /// `Accept-Encoding` value names).
    pub fn best(&self) -> Coding {
        [Coding::Br, Coding::Gzip, Coding::Identity]
            .into_iter()
            .min_by_key(|&c| self.rank(c).map_or(u8::MAX, |r| r.0))
            .unwrap_or(Coding::Identity)
    }

    /// The `Accept-Encoding` a fill sends the origin for this client: the cache's codings it
    /// accepts, and `gzip` for a client that accepts neither (as Varnish does: a `gzip` object
    /// serves `gzip` and `br` clients as it is, and identity clients decoded).
    pub fn ask(&self) -> HeaderValue {
        HeaderValue::from_static(match (self.br > 0, self.gzip > 0) {
            (true, true) => "br, gzip",
            (true, false) => "br",
            _ => "gzip",
        })
    }
}

/// The token a purge's `accept-encoding` header filter stands for, as stored variants record
/// it: a coding named alone (`gzip`, `x-gzip`, `br`, `identity`, or nothing), else the coding
/// a client sending that value is best served in.
///
/// ```
/// use vanish_engine::coding::filter_token;
/// assert_eq!(filter_token("GZIP"), "gzip");
/// assert_eq!(filter_token("gzip, deflate, br"), "br");
/// assert_eq!(filter_token(""), "identity");
/// ```
pub fn filter_token(value: &str) -> &'static str {
    match Coding::from_token(value) {
        Some(c) => c.token(),
        None => Accepted::parse(value).best().token(),
    }
}

/// Weights as read: `None` when the element was not named.
#[derive(Default)]
struct Weights {
    br: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    star: Option<u16>,
}

impl Weights {
    fn read(&mut self, value: &str) {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let name = parts.next().unwrap_or("").trim_matches([' ', '\t']);
            if name.is_empty() {
                continue;
            }
            let Some(weight) = weight(parts) else {
                continue;
            };
            let slot = if name.eq_ignore_ascii_case("br") {
                &mut self.br
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                &mut self.gzip
            } else if name.eq_ignore_ascii_case("identity") {
                &mut self.identity
            } else if name == "*" {
                &mut self.star
            } else {
                continue;
            };
            // The first mention of a coding decides.
            slot.get_or_insert(weight);
        }
    }

    fn accepted(&self) -> Accepted {
        let star = self.star.unwrap_or(0);
        Accepted {
            br: self.br.unwrap_or(star),
            gzip: self.gzip.unwrap_or(star),
            identity: self.identity.or(self.star).unwrap_or(UNNAMED_IDENTITY),
        }
    }
}

/// The `q` parameter of an element's parameters in thousandths (1000 without one); `None`
/// when it is not a valid `qvalue` (RFC 9110 section 12.4.2).
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    for p in params {
        let p = p.trim_matches([' ', '\t']);
        let Some((name, v)) = p.split_once('=') else {
            continue;
        };
        if !name.trim_end_matches([' ', '\t']).eq_ignore_ascii_case("q") {
            continue;
        }
        let v = v.trim_matches([' ', '\t']);
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let thousandths = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        return match int {
            "0" => Some(thousandths),
            "1" if thousandths == 0 => Some(1000),
            _ => None,
        };
    }
    Some(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_clients_accept() {
        use Coding::*;
        // (Accept-Encoding, accepts br, accepts gzip, the best coding)
        let cases = [
            ("gzip, deflate, br", true, true, Br),
            ("gzip, deflate, br, zstd", true, true, Br),
            ("br;q=1.0, gzip;q=0.8, *;q=0.1", true, true, Br),
            ("gzip, deflate", false, true, Gzip),
            ("gzip;q=1, br;q=0.5", true, true, Gzip),
            ("GZIP", false, true, Gzip),
            ("x-gzip", false, true, Gzip),
            ("br;q=0, gzip", false, true, Gzip),
            ("br", true, false, Br),
            ("*", true, true, Br),
            ("*;q=0", false, false, Identity),
            ("*, gzip;q=0", true, false, Br),
            ("identity", false, false, Identity),
            ("identity;q=0", false, false, Identity),
            ("identity;q=0, gzip", false, true, Gzip),
            ("identity, gzip;q=0.5", false, true, Identity),
            ("deflate", false, false, Identity),
            ("", false, false, Identity),
            ("gzip;q=2", false, false, Identity),
            ("gzip;q=0.5;x=1", false, true, Gzip),
            ("gzip ; Q = 0.5", false, true, Gzip),
            ("br;q=0.001", true, false, Br),
        ];
        for (v, br, gzip, best) in cases {
            let a = Accepted::parse(v);
            assert_eq!(
                (a.accepts(Br), a.accepts(Gzip), a.best()),
                (br, gzip, best),
                "{v:?}"
            );
            assert!(a.accepts(Identity), "{v:?}: identity is the last resort");
        }
    }

    #[test]
    fn ranks_order_the_stored_encodings() {
        use Coding::*;
        let order = |v: &str| {
            let a = Accepted::parse(v);
            let mut cs: Vec<(Rank, Coding)> = [Br, Gzip, Identity]
                .into_iter()
                .filter_map(|c| a.rank(c).map(|r| (r, c)))
                .collect();
            cs.sort_by_key(|(r, _)| *r);
            cs.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
        };
        assert_eq!(order("gzip, br"), [Br, Gzip, Identity]);
        assert_eq!(order("gzip"), [Gzip, Identity]);
        assert_eq!(order("br"), [Br, Identity]);
        assert_eq!(order(""), [Identity, Gzip, Br], "decoded last");
        assert_eq!(order("identity;q=0, gzip"), [Gzip, Identity]);
        assert_eq!(order("identity, gzip;q=0.5"), [Identity, Gzip]);
        let identity = Accepted::parse("deflate");
        assert!(!identity.rank(Identity).unwrap().decoded());
        assert!(identity.rank(Br).unwrap().decoded());
        assert!(Accepted::parse("br, gzip").rank(Br).unwrap().is_best());
    }

    #[test]
    fn the_origin_is_asked_for_what_the_cache_can_store() {
        let ask = |v: &str| Accepted::parse(v).ask();
        assert_eq!(ask("gzip, deflate, br, zstd"), "br, gzip");
        assert_eq!(ask("br"), "br");
        assert_eq!(ask("gzip;q=0.5"), "gzip");
        assert_eq!(
            ask(""),
            "gzip",
            "identity clients too: the object is decoded for them"
        );
        assert_eq!(Accepted::of(&HeaderMap::new()).ask(), "gzip");
    }

    #[test]
    fn field_lines_combine() {
        let mut h = HeaderMap::new();
        h.append(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        h.append(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(Accepted::of(&h), Accepted::parse("gzip, br"));
    }
}
