//! Query normalisation: drop or keep parameters, sort them, canonical percent-encoding.
//!
//! Owns the rewriting of one query string; which rule applies is decided in
//! [`super::rules`].

use globset::GlobSet;

/// How a rule rewrites queries.
#[derive(Debug, Clone, Default)]
pub struct QueryRule {
    /// Parameters (by decoded name) to remove.
    pub drop: Option<GlobSet>,
    /// Only these parameters are kept (by decoded name).
    pub keep: Option<GlobSet>,
    /// Sort parameters by name (stable: repeated names keep their order).
    pub sort: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Canonical percent-encoding: `%7e` becomes `~` (unreserved characters are decoded), other
/// escapes get upper-case hex (`%2f` becomes `%2F`), and a `%` that starts no escape becomes
/// `%25` (so a second pass changes nothing: `%%34%31` is `%2541`, never `%41` then `A`).
///
/// ```
/// use vanish_engine::policy::query::canonical_encoding;
/// assert_eq!(canonical_encoding("a%7eb%2fc+d"), "a~b%2Fc+d");
/// ```
pub fn canonical_encoding(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = h * 16 + l;
                if unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        if b[i] == b'%' {
            out.push_str("%25");
            i += 1;
            continue;
        }
        // Copy one UTF-8 character.
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// Fully decodes a parameter name for matching (`+` is a space, `%XX` a byte).
fn decoded_name(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl QueryRule {
    /// True when the rule changes queries at all.
    pub fn is_active(&self) -> bool {
        self.drop.is_some() || self.keep.is_some() || self.sort
    }

    /// Rewrites a query. `None` when no parameter remains.
    ///
    /// Parameters are split on `&` only (a `;` stays inside its parameter, so it can never
    /// smuggle a parameter past the key: what the key drops, the origin never sees).
    pub fn apply(&self, query: &str) -> Option<String> {
        let mut params: Vec<(String, String)> = Vec::new();
        for part in query.split('&') {
            if part.is_empty() {
                continue;
            }
            let canon = canonical_encoding(part);
            let name = decoded_name(canon.split('=').next().unwrap_or(""));
            if self.drop.as_ref().is_some_and(|g| g.is_match(&name)) {
                continue;
            }
            if self.keep.as_ref().is_some_and(|g| !g.is_match(&name)) {
                continue;
            }
            params.push((name, canon));
        }
        if self.sort {
            params.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if params.is_empty() {
            return None;
        }
        Some(
            params
                .into_iter()
                .map(|(_, p)| p)
                .collect::<Vec<_>>()
                .join("&"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use globset::{Glob, GlobSetBuilder};

    fn set(globs: &[&str]) -> GlobSet {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            b.add(Glob::new(g).unwrap());
        }
        b.build().unwrap()
    }

    #[test]
    fn table() {
        let drop = QueryRule {
            drop: Some(set(&["utm_*", "gclid", "fbclid"])),
            ..Default::default()
        };
        let keep = QueryRule {
            keep: Some(set(&["page", "q"])),
            ..Default::default()
        };
        let sort = QueryRule {
            sort: true,
            ..Default::default()
        };
        let both = QueryRule {
            drop: Some(set(&["utm_*"])),
            sort: true,
            ..Default::default()
        };
        let cases: &[(&QueryRule, &str, Option<&str>)] = &[
            (&drop, "a=1&utm_source=x&b=2", Some("a=1&b=2")),
            (&drop, "utm_source=x&utm_medium=y", None),
            (&drop, "gclid=1&fbclid=2&x=3", Some("x=3")),
            // Encoded names are matched decoded.
            (&drop, "utm%5Fsource=x&a=1", Some("a=1")),
            (&drop, "UTM_source=x", Some("UTM_source=x")),
            // Percent-encoding is made canonical, values otherwise untouched.
            (&drop, "a=%7e%2f", Some("a=~%2F")),
            (&drop, "a=b+c", Some("a=b+c")),
            // Repeated parameters and empty values are kept as they are.
            (&drop, "a=1&a=2&a=", Some("a=1&a=2&a=")),
            (&drop, "a&a=", Some("a&a=")),
            (&drop, "a=1&&b=2", Some("a=1&b=2")),
            // `;` is not a separator: the parameter stays whole.
            (&drop, "utm_content=x;callback=evil&a=1", Some("a=1")),
            (
                &keep,
                "page=2&utm_source=x&q=shoes&sid=9",
                Some("page=2&q=shoes"),
            ),
            (&keep, "sid=9", None),
            (&sort, "b=2&a=1&c=3", Some("a=1&b=2&c=3")),
            (&sort, "b=1&a=2&b=0", Some("a=2&b=1&b=0")),
            (&both, "z=1&utm_x=1&a=1", Some("a=1&z=1")),
        ];
        for (rule, q, want) in cases {
            assert_eq!(rule.apply(q).as_deref(), *want, "{q}");
        }
    }

    #[test]
    fn encoding_edge_cases() {
        assert_eq!(canonical_encoding("%"), "%25");
        assert_eq!(canonical_encoding("%4"), "%254");
        assert_eq!(canonical_encoding("%zz"), "%25zz");
        for s in ["%%34%31", "a%2", "%%%", "%25%", "x%7e%"] {
            let once = canonical_encoding(s);
            assert_eq!(canonical_encoding(&once), once, "{s}");
        }
        assert_eq!(canonical_encoding("%41%e2%82%ac"), "A%E2%82%AC");
        assert_eq!(canonical_encoding("é%20"), "é%20");
    }
}
