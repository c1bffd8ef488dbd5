//! Tags (surrogate keys, cache groups): reading them from response headers.
//!
//! Owns the syntax of `Surrogate-Key`, `Cache-Tag`, `xkey` and RFC 9875 `Cache-Groups` /
//! `Cache-Group-Invalidation`. Matching tags against purges belongs to [`crate::purge::index`].

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

/// A response header that carries tags, and how its list is separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHeader {
    /// The header name.
    pub name: HeaderName,
    /// The list syntax.
    pub syntax: TagSyntax,
}

/// How a tag header separates its tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSyntax {
    /// Space-separated (`Surrogate-Key`, `xkey`).
    Spaces,
    /// Comma-separated (`Cache-Tag`).
    Commas,
    /// An RFC 8941 list of strings (RFC 9875 `Cache-Groups`).
    StructuredStrings,
}

impl TagHeader {
    /// `Surrogate-Key`, `Cache-Tag`, `xkey` and `Cache-Groups`.
    pub fn all_default() -> Vec<TagHeader> {
        vec![
            TagHeader::new("surrogate-key", TagSyntax::Spaces),
            TagHeader::new("cache-tag", TagSyntax::Commas),
            TagHeader::new("xkey", TagSyntax::Spaces),
            TagHeader::new("cache-groups", TagSyntax::StructuredStrings),
        ]
    }

    /// Builds a tag header description.
    ///
    /// # Panics
    /// If `name` is not a valid header name (use [`TagHeader::parse`] for user input).
    pub fn new(name: &str, syntax: TagSyntax) -> TagHeader {
        TagHeader {
            name: HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            syntax,
        }
    }

    /// Parses a header name from configuration, picking its usual syntax.
    pub fn parse(name: &str) -> Result<TagHeader, String> {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("invalid tag header name {name:?}"))?;
        let syntax = match name.as_str() {
            "cache-tag" => TagSyntax::Commas,
            "cache-groups" | "cache-group-invalidation" => TagSyntax::StructuredStrings,
            _ => TagSyntax::Spaces,
        };
        Ok(TagHeader { name, syntax })
    }
}

/// Reads the tags of a response from the given headers, de-duplicated, in order.
///
/// ```
/// use vanish_engine::purge::tags::{read_tags, TagHeader};
/// let mut h = http::HeaderMap::new();
/// h.insert("surrogate-key", "post-1 blog".parse().unwrap());
/// h.insert("cache-groups", r#""blog", "a,b""#.parse().unwrap());
/// let tags = read_tags(&h, &TagHeader::all_default());
/// assert_eq!(tags.iter().map(|t| &**t).collect::<Vec<_>>(), ["post-1", "blog", "a,b"]);
/// ```
pub fn read_tags(headers: &HeaderMap, tag_headers: &[TagHeader]) -> Vec<Arc<str>> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for th in tag_headers {
        for value in headers.get_all(&th.name) {
            let Ok(s) = value.to_str() else { continue };
            let mut push = |t: &str| {
                if !t.is_empty() && !out.iter().any(|o| &**o == t) {
                    out.push(Arc::from(t));
                }
            };
            match th.syntax {
                TagSyntax::Spaces => s.split_ascii_whitespace().for_each(&mut push),
                TagSyntax::Commas => s.split(',').map(str::trim).for_each(&mut push),
                TagSyntax::StructuredStrings => parse_sf_strings(s).iter().for_each(|t| push(t)),
            }
        }
    }
    out
}

/// Parses an RFC 8941 list of strings (parameters are ignored; non-string members skipped).
pub fn parse_sf_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        match chars.peek() {
            None => break,
            Some('"') => {
                chars.next();
                let mut cur = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => cur.push(c),
                    }
                }
                if closed {
                    out.push(cur);
                }
                // Skip parameters up to the next member.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            }
            Some(_) => {
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_syntax() {
        let mut h = HeaderMap::new();
        h.append("surrogate-key", "a  b".parse().unwrap());
        h.append("cache-tag", "c, d,,".parse().unwrap());
        h.append("xkey", "e".parse().unwrap());
        h.append("cache-groups", r#""f";p=1, token, "g\"h""#.parse().unwrap());
        let tags = read_tags(&h, &TagHeader::all_default());
        let tags: Vec<&str> = tags.iter().map(|t| &**t).collect();
        assert_eq!(tags, ["a", "b", "c", "d", "e", "f", "g\"h"]);
    }

    #[test]
    fn only_configured_headers_are_read() {
        let mut h = HeaderMap::new();
        h.append("xkey", "e".parse().unwrap());
        assert!(read_tags(&h, &[TagHeader::parse("surrogate-key").unwrap()]).is_empty());
    }
}
