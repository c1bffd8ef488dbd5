//! `Accept-Encoding` and `Accept-Language` normalisation, so one page does not fragment into
//! hundreds of variants. Owns the header rewriting only.
//!
//! The engine negotiates content codings itself, for every request ([`crate::coding`]): a
//! rule's `normalize_accept_encoding` only rewrites the header the origin of a pass sees.

use crate::coding::{Accepted, Coding};

/// Reduces an `Accept-Encoding` value to the codings the cache serves that it accepts:
/// `br, gzip`, `br`, `gzip`, or nothing (identity), read as [`Accepted`] reads it.
///
/// ```
/// use vanish_engine::policy::negotiation::normalize_accept_encoding;
/// assert_eq!(normalize_accept_encoding("gzip, deflate, br;q=0.9"), Some("br, gzip"));
/// assert_eq!(normalize_accept_encoding("gzip;q=1, br;q=0"), Some("gzip"));
/// assert_eq!(normalize_accept_encoding("deflate"), None);
/// ```
pub fn normalize_accept_encoding(value: &str) -> Option<&'static str> {
    let a = Accepted::parse(value);
    match (a.accepts(Coding::Br), a.accepts(Coding::Gzip)) {
        (true, true) => Some("br, gzip"),
        (true, false) => Some("br"),
        (false, true) => Some("gzip"),
        (false, false) => None,
    }
}

fn quality<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    for p in params {
        if let Some(q) = p
            .trim()
            .strip_prefix("q=")
            .or_else(|| p.trim().strip_prefix("Q="))
        {
            return q.trim().parse().unwrap_or(0.0);
        }
    }
    1.0
}

/// Picks the best of `supported` languages (the first is the default) for an
/// `Accept-Language` value: exact tags first, then primary subtags, by quality.
///
/// ```
/// use vanish_engine::policy::negotiation::normalize_accept_language;
/// let langs = ["en".to_owned(), "fr".to_owned(), "pt-br".to_owned()];
/// assert_eq!(normalize_accept_language("fr-CA,fr;q=0.9,en;q=0.8", &langs), "fr");
/// assert_eq!(normalize_accept_language("pt-BR", &langs), "pt-br");
/// assert_eq!(normalize_accept_language("de", &langs), "en");
/// ```
pub fn normalize_accept_language<'a>(value: &str, supported: &'a [String]) -> &'a str {
    let mut prefs: Vec<(f32, usize, String)> = value
        .split(',')
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let q = quality(parts);
            (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
        })
        .collect();
    prefs.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    });
    for (_, _, tag) in &prefs {
        if let Some(s) = supported.iter().find(|s| s.eq_ignore_ascii_case(tag)) {
            return s;
        }
        let primary = tag.split('-').next().unwrap_or(tag);
        if let Some(s) = supported.iter().find(|s| {
            s.eq_ignore_ascii_case(primary)
                || s.split('-')
                    .next()
                    .is_some_and(|p| p.eq_ignore_ascii_case(primary))
        }) {
            return s;
        }
    }
    supported.first().map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let cases = [
            ("br", Some("br")),
            ("gzip, deflate, br", Some("br, gzip")),
            ("gzip", Some("gzip")),
            ("GZIP", Some("gzip")),
            ("br;q=0, gzip", Some("gzip")),
            ("identity", None),
            ("*", Some("br, gzip")),
            ("*;q=0", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(normalize_accept_encoding(v), want, "{v}");
        }
    }

    #[test]
    fn languages() {
        let langs: Vec<String> = ["en", "fr", "de"].iter().map(|s| s.to_string()).collect();
        let cases = [
            ("fr", "fr"),
            ("FR-ca", "fr"),
            ("de;q=0.5, fr;q=0.9", "fr"),
            ("es, de;q=0.1", "de"),
            ("es", "en"),
            ("", "en"),
            ("fr;q=0, de", "de"),
            ("*", "en"),
        ];
        for (v, want) in cases {
            assert_eq!(normalize_accept_language(v, &langs), want, "{v}");
        }
    }
}
