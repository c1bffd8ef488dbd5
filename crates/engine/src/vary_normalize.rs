//! The normal form in which a request's value for a selecting header is compared (RFC 9111
//! section 4.1): two requests whose values differ only in ways the field's syntax says mean
//! nothing select the same stored variant.
//!
//! Owns the meaning-preserving rewrites, and nothing that could change what a value means:
//! - every field: its lines combined into one list (`a` and `b` are `a, b`);
//! - the list fields it knows the syntax of (`Accept`, `Accept-Charset`, `Accept-Encoding`,
//!   `Accept-Language`): whitespace around `,`, `;` and the weight removed, empty list
//!   elements and parameters dropped (RFC 9110 sections 5.6.1 and 5.6.6), parameter names
//!   and the values the RFCs define as case-insensitive lower-cased (language ranges, content
//!   codings, charsets, media types and subtypes), weights written in their shortest form and
//!   `q=1` (the default) dropped;
//! - `Accept-Language` whose ranges are all different and whose weights are all different:
//!   ranges sorted by descending weight (the weights alone then say the whole preference).
//!
//! A value it cannot parse (an unbalanced quote, whitespace inside a parameter, an invalid
//! weight, bytes that are not visible ASCII) is kept as received, only its lines combined.
//! Choosing among languages or encodings (which does change meaning) is the key policy's
//! opt-in [`crate::policy::negotiation`], not this. It must not touch the encoding of variant
//! keys ([`crate::variant`]) or anything a request sends to the origin.

use http::header::{self, HeaderName};

/// How a known list field's elements may be rewritten.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// `Accept`: media ranges (type and subtype are case-insensitive, parameter values not).
    MediaRanges,
    /// `Accept-Charset`, `Accept-Encoding`: case-insensitive tokens.
    Tokens,
    /// `Accept-Language`: case-insensitive language ranges; order only matters among equal
    /// weights.
    Languages,
}

fn kind(name: &HeaderName) -> Option<ListKind> {
    if name == header::ACCEPT {
        Some(ListKind::MediaRanges)
    } else if name == header::ACCEPT_CHARSET || name == header::ACCEPT_ENCODING {
        Some(ListKind::Tokens)
    } else if name == header::ACCEPT_LANGUAGE {
        Some(ListKind::Languages)
    } else {
        None
    }
}

/// The normal form of a request's field lines for `name` (at least one line), as compared
/// by Vary matching and purge header filters.
///
/// ```
/// use http::header::ACCEPT_LANGUAGE;
/// use vanish_engine::vary_normalize::normalize;
/// let n = |lines: &[&str]| normalize(&ACCEPT_LANGUAGE, lines.iter().map(|l| l.as_bytes()));
/// assert_eq!(n(&["en,fr"]), n(&["en, fr"]));
/// assert_eq!(n(&["en"]), n(&["EN"]));
/// assert_eq!(n(&["en", "fr"]), n(&["en, fr"]));
/// assert_eq!(n(&["fr;q=0.5, en;q=0.9"]), n(&["en;q=0.9, fr;q=0.5"]));
/// assert_ne!(n(&["fr, en"]), n(&["en, fr"]), "equal weights: the order is the preference");
/// ```
pub fn normalize<'a>(name: &HeaderName, lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let joined = combine(lines);
    let Some(kind) = kind(name) else {
        return joined;
    };
    match std::str::from_utf8(&joined)
        .ok()
        .filter(|s| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
        .and_then(|s| normalize_list(s, kind))
    {
        Some(normal) => normal.into_bytes(),
        None => joined,
    }
}

/// How a request's values for a response's `Vary` names are compared (`[cache]
/// normalize_vary` in the proxy's configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValueForm {
    /// In the normal form of [`normalize`] (the default).
    #[default]
    Normal,
    /// As received, only the lines combined (byte-exact matching, for an origin that tells
    /// spellings apart that the RFCs say are the same).
    AsReceived,
}

impl ValueForm {
    /// A request's field lines for `name` in this form.
    pub fn apply<'a>(
        self,
        name: &HeaderName,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<u8> {
        match self {
            ValueForm::Normal => normalize(name, lines),
            ValueForm::AsReceived => combine(lines),
        }
    }
}

/// Field lines combined into one list value (RFC 9110 section 5.3), as received otherwise.
pub fn combine<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut joined: Vec<u8> = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line);
    }
    joined
}

/// [`normalize`] for one value given as text (a purge's header filter).
pub fn normalize_str(name: &HeaderName, value: &str) -> String {
    String::from_utf8_lossy(&normalize(name, [value.as_bytes()])).into_owned()
}

/// One list element: its value, its other parameters, and its weight in thousandths.
struct Element {
    value: String,
    params: Vec<String>,
    weight: u16,
}

fn normalize_list(s: &str, kind: ListKind) -> Option<String> {
    let mut elements = Vec::new();
    for item in split_outside_quotes(s, ',')? {
        let item = trim_ows(item);
        if item.is_empty() {
            continue; // RFC 9110 section 5.6.1: empty elements do not count
        }
        elements.push(element(item, kind)?);
    }
    if kind == ListKind::Languages && reorderable(&elements) {
        elements.sort_by_key(|e| std::cmp::Reverse(e.weight));
    }
    let out: Vec<String> = elements
        .into_iter()
        .map(|e| {
            let mut s = e.value;
            for p in e.params {
                s.push(';');
                s.push_str(&p);
            }
            if e.weight != 1000 {
                s.push_str(";q=");
                s.push_str(&weight_text(e.weight));
            }
            s
        })
        .collect();
    Some(out.join(", "))
}

/// True when every range and every weight differs: then the weights order the whole list.
fn reorderable(elements: &[Element]) -> bool {
    elements.iter().enumerate().all(|(i, a)| {
        elements[..i]
            .iter()
            .all(|b| a.weight != b.weight && a.value != b.value)
    })
}

fn element(item: &str, kind: ListKind) -> Option<Element> {
    let mut parts = split_outside_quotes(item, ';')?.into_iter();
    let value = trim_ows(parts.next()?);
    if value.is_empty() || value.contains([' ', '\t', '"']) {
        return None;
    }
    let value = match kind {
        ListKind::Tokens | ListKind::Languages => value.to_ascii_lowercase(),
        ListKind::MediaRanges => {
            let (t, sub) = value.split_once('/')?;
            format!("{}/{}", t.to_ascii_lowercase(), sub.to_ascii_lowercase())
        }
    };
    let mut params = Vec::new();
    let mut weight = 1000;
    for p in parts {
        let p = trim_ows(p);
        if p.is_empty() {
            continue; // RFC 9110 section 5.6.6: `*( OWS ";" OWS [ parameter ] )`
        }
        let (name, v) = p.split_once('=')?;
        if name.is_empty() || name.contains([' ', '\t', '"']) || v.starts_with([' ', '\t']) {
            return None; // no whitespace around `=`: not a parameter
        }
        let name = name.to_ascii_lowercase();
        if name == "q" {
            weight = parse_weight(v)?;
        } else if kind == ListKind::MediaRanges {
            params.push(format!("{name}={v}"));
        } else {
            return None; // these fields have no parameter but the weight
        }
    }
    Some(Element {
        value,
        params,
        weight,
    })
}

/// A `qvalue` (RFC 9110 section 12.4.2) in thousandths.
fn parse_weight(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let frac = thousandths.fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

fn weight_text(w: u16) -> String {
    if w == 0 {
        return "0".to_owned();
    }
    let s = format!("0.{w:03}");
    s.trim_end_matches('0').to_owned()
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Splits on `sep` outside quoted strings (with their `\` escapes); `None` when a quote is
/// not closed.
fn split_outside_quotes(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    if quoted {
        return None;
    }
    out.push(&s[start..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str, lines: &[&str]) -> String {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        String::from_utf8(normalize(&name, lines.iter().map(|l| l.as_bytes()))).unwrap()
    }

    #[test]
    fn normal_forms() {
        let al = "accept-language";
        let cases: &[(&str, &[&str], &str)] = &[
            (al, &["en, fr"], "en, fr"),
            (al, &["en,fr"], "en, fr"),
            (al, &["en ,\tfr"], "en, fr"),
            (al, &["en", "fr"], "en, fr"),
            (al, &["EN-gb"], "en-gb"),
            (al, &["en,,fr,"], "en, fr"),
            (al, &["en; q=0.8"], "en;q=0.8"),
            (al, &["en;Q=0.80"], "en;q=0.8"),
            (al, &["en;q=1.000"], "en"),
            (al, &["en;q=0.000"], "en;q=0"),
            (al, &["fr;q=0.5, en;q=0.9"], "en;q=0.9, fr;q=0.5"),
            (al, &["fr;q=0.5, en"], "en, fr;q=0.5"),
            (al, &["de;q=0.1, fr;q=0.5, en"], "en, fr;q=0.5, de;q=0.1"),
            // Equal weights: the order is the preference, kept.
            (al, &["fr, en"], "fr, en"),
            (al, &["fr;q=0.5, en;q=0.5, de"], "fr;q=0.5, en;q=0.5, de"),
            // A repeated range: which weight applies is not defined, so nothing moves.
            (al, &["en;q=0.1, en;q=0.9"], "en;q=0.1, en;q=0.9"),
            (al, &[""], ""),
            (al, &["*"], "*"),
            // Not parseable: kept as received.
            (al, &["en;q=2"], "en;q=2"),
            (al, &["en;q = 0.5"], "en;q = 0.5"),
            (al, &["en;level=1"], "en;level=1"),
            ("accept-encoding", &["GZIP,br;q=0.5"], "gzip, br;q=0.5"),
            // Accept-Encoding keeps its order whatever the weights (only languages move).
            ("accept-encoding", &["br;q=0.5, gzip"], "br;q=0.5, gzip"),
            (
                "accept-charset",
                &["UTF-8 , iso-8859-1;q=0.5"],
                "utf-8, iso-8859-1;q=0.5",
            ),
            (
                "accept",
                &["Text/HTML;Level=1 ; q=0.5,application/json"],
                "text/html;level=1;q=0.5, application/json",
            ),
            (
                "accept",
                &["text/html;a=\"X, Y\";q=0.5"],
                "text/html;a=\"X, Y\";q=0.5",
            ),
            ("accept", &["text/html;a=\"open"], "text/html;a=\"open"),
            // Fields whose syntax is not known: lines combined, nothing else.
            ("x-device", &["Mobile ,A"], "Mobile ,A"),
            ("x-device", &["a", "b"], "a, b"),
        ];
        for (name, lines, want) in cases {
            assert_eq!(n(name, lines), *want, "{name}: {lines:?}");
        }
    }

    #[test]
    fn normal_forms_are_fixed_points() {
        for v in ["EN ,fr;q=0.5", "fr;q=0.5, en", "text/html ;q=0.5", "a,b"] {
            for name in ["accept-language", "accept", "x-other"] {
                let once = n(name, &[v]);
                assert_eq!(n(name, &[&once]), once, "{name}: {v}");
            }
        }
    }
}
