//! Cache directive syntax: `Cache-Control` (RFC 9111 section 5.2) and the targeted fields of
//! RFC 9213 (`CDN-Cache-Control`, Vanish's own), read the same way for requests and responses.
//!
//! Owns the parsing rules only: names are case-insensitive, values may be quoted, a quoted
//! value may hold commas, a directive given twice with different values is invalid, and
//! `delta-seconds` are digits only, capped at 2^31 (RFC 9111 section 1.2.2). What a directive
//! means for storing or reuse is decided in [`crate::freshness`] and the cache's lookup; this
//! module holds no policy and touches no other Vanish module.

/// The cap RFC 9111 section 1.2.2 puts on `delta-seconds` (2^31).
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// A directive's `delta-seconds` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// A valid number of seconds (at most [`MAX_DELTA_SECONDS`]).
    Secs(u64),
    /// Missing, not digits (`abc`, `-1`, `1.5`), or given twice with different values.
    Invalid,
}

/// The directives of one field (all its lines), names lower-cased, values unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    entries: Vec<(String, Option<String>)>,
}

impl Directives {
    /// Parses every line of a `Cache-Control`-style field leniently (RFC 9111 section 5.2):
    /// unknown or malformed members are kept or skipped, never fatal.
    ///
    /// ```
    /// use vanish_engine::directives::{Delta, Directives};
    /// let d = Directives::parse(["No-CaChE, MaX-AgE=\"60\""]);
    /// assert!(d.has("no-cache"));
    /// assert_eq!(d.delta("max-age"), Some(Delta::Secs(60)));
    /// ```
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Directives {
        let mut entries = Vec::new();
        for line in lines {
            for member in split_members(line) {
                let (name, value) = match member.split_once('=') {
                    Some((n, v)) => (n, Some(unquote(v.trim()))),
                    None => (member, None),
                };
                let name = name.trim();
                if !name.is_empty() {
                    entries.push((name.to_ascii_lowercase(), value));
                }
            }
        }
        Directives { entries }
    }

    /// Parses a targeted field (RFC 9213 section 2.1) as a Structured Fields dictionary:
    /// `None` when the value is not one (an upper-case key, a stray character, an empty
    /// member), in which case the field is ignored as a whole.
    ///
    /// ```
    /// use vanish_engine::directives::Directives;
    /// assert!(Directives::parse_structured("max-age=600, must-revalidate").is_some());
    /// assert!(Directives::parse_structured("Max-Age=600").is_none());
    /// ```
    pub fn parse_structured(line: &str) -> Option<Directives> {
        let mut entries = Vec::new();
        for member in split_members(line) {
            // Parameters (`;a=b`) are allowed and ignored.
            let member = member.split(';').next().unwrap_or("").trim();
            let (name, value) = match member.split_once('=') {
                Some((n, v)) => (n, Some(v.trim())),
                None => (member, None),
            };
            if !is_sf_key(name) {
                return None;
            }
            let value = match value {
                None => None,
                Some(v) if is_sf_bare_item(v) => Some(unquote(v)),
                Some(_) => return None,
            };
            entries.push((name.to_owned(), value));
        }
        if entries.is_empty() && !line.trim().is_empty() {
            return None;
        }
        Some(Directives { entries })
    }

    /// True when no directive is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the directive (lower-case name) is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// The first value of a directive: `None` when absent, `Some(None)` when it has no value.
    pub fn value(&self, name: &str) -> Option<Option<&str>> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// A directive's `delta-seconds`: `None` when absent; [`Delta::Invalid`] when its value
    /// is missing or not digits, or when it appears again with another value (RFC 9111
    /// section 4.2.1 lets a cache consider such a response stale, which it does).
    pub fn delta(&self, name: &str) -> Option<Delta> {
        let mut found: Option<Delta> = None;
        for (_, v) in self.entries.iter().filter(|(n, _)| n == name) {
            let this = v
                .as_deref()
                .and_then(parse_delta)
                .map_or(Delta::Invalid, Delta::Secs);
            found = match found {
                None => Some(this),
                Some(prev) if prev == this => Some(prev),
                Some(_) => Some(Delta::Invalid),
            };
        }
        found
    }
}

/// `delta-seconds`: one or more digits; larger than 2^31 counts as 2^31.
pub fn parse_delta(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u64>().unwrap_or(u64::MAX).min(MAX_DELTA_SECONDS))
}

/// Splits a field line at the commas outside quoted strings.
fn split_members(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(line[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(line[start..].trim());
    out.retain(|m| !m.is_empty());
    out
}

/// A quoted-string's content (escapes resolved), or the token as it is.
fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out
        }
        None => v.to_owned(),
    }
}

fn is_sf_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'*'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
}

/// An sf-integer, sf-decimal, sf-string, sf-token or sf-boolean.
fn is_sf_bare_item(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.starts_with(|c: char| c.is_ascii_digit()) {
        return digits.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return true;
    }
    if v == "?0" || v == "?1" {
        return true;
    }
    v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '*')
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !b",;=\"".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_table() {
        use Delta::*;
        // (field lines, directive, expected delta)
        let cases: &[(&[&str], &str, Option<Delta>)] = &[
            (&["max-age=60"], "max-age", Some(Secs(60))),
            (&["MaX-AgE=60"], "max-age", Some(Secs(60))),
            (&["max-age=\"60\""], "max-age", Some(Secs(60))),
            (&["max-age = 60"], "max-age", Some(Secs(60))),
            (&["max-age=abc"], "max-age", Some(Invalid)),
            (&["max-age=-1"], "max-age", Some(Invalid)),
            (&["max-age=1.5"], "max-age", Some(Invalid)),
            (&["max-age"], "max-age", Some(Invalid)),
            (&["max-age="], "max-age", Some(Invalid)),
            (
                &["max-age=99999999999999999999"],
                "max-age",
                Some(Secs(MAX_DELTA_SECONDS)),
            ),
            (
                &["max-age=4294967296"],
                "max-age",
                Some(Secs(MAX_DELTA_SECONDS)),
            ),
            (&["max-age=60, max-age=60"], "max-age", Some(Secs(60))),
            (&["max-age=60", "max-age=600"], "max-age", Some(Invalid)),
            (&["max-age=60, max-age=abc"], "max-age", Some(Invalid)),
            (&["no-cache=\"a, max-age=5\", s-maxage=9"], "max-age", None),
            (
                &["no-cache=\"a, max-age=5\", s-maxage=9"],
                "s-maxage",
                Some(Secs(9)),
            ),
            (&[""], "max-age", None),
            (&[" , ,max-age=7,"], "max-age", Some(Secs(7))),
        ];
        for (lines, name, want) in cases {
            let d = Directives::parse(lines.iter().copied());
            assert_eq!(d.delta(name), *want, "{lines:?} {name}");
        }
    }

    #[test]
    fn names_values_and_quotes() {
        let d = Directives::parse(["No-Store, PRIVATE=\"Set-Cookie\", x=\"a\\\"b\""]);
        assert!(d.has("no-store"));
        assert_eq!(d.value("private"), Some(Some("Set-Cookie")));
        assert_eq!(d.value("x"), Some(Some("a\"b")));
        assert_eq!(d.value("absent"), None);
    }

    #[test]
    fn structured_table() {
        // (targeted field value, valid?)
        let cases = [
            ("max-age=600", true),
            ("max-age=600, stale-while-revalidate=30", true),
            ("no-store", true),
            ("private, max-age=0", true),
            ("max-age=600;foo=bar", true),
            ("max-age=\"600\"", true),
            ("Max-Age=600", false),
            ("max-age=600,, no-store", true),
            ("max-age=6 0", false),
            ("max-age=600 no-store", false),
            ("@bad", false),
        ];
        for (v, valid) in cases {
            assert_eq!(Directives::parse_structured(v).is_some(), valid, "{v}");
        }
        let d = Directives::parse_structured("max-age=\"600\"").unwrap();
        assert_eq!(d.delta("max-age"), Some(Delta::Secs(600)));
    }
}
