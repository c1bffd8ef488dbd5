//! The [`Tags`] response extension: how a handler tags what it rendered. Owns its
//! conversion to an RFC 9875 `Cache-Groups` header, which the engine reads like any other
//! tag header.

use http::HeaderValue;

/// Tags (surrogate keys) for a response, set by a handler as a response extension.
///
/// ```
/// let mut res = http::Response::new(());
/// res.extensions_mut().insert(vanish_tower::Tags::new(["post-42", "posts"]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(pub Vec<String>);

impl Tags {
    /// Tags from any list of strings.
    pub fn new<I, T>(tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Tags(tags.into_iter().map(Into::into).collect())
    }

    /// The tags as an RFC 8941 list of strings (`"a", "b"`), for `Cache-Groups`.
    pub fn to_header(&self) -> Option<HeaderValue> {
        let items: Vec<String> = self
            .0
            .iter()
            .filter(|t| !t.is_empty() && t.chars().all(|c| (' '..='~').contains(&c)))
            .map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        if items.is_empty() {
            return None;
        }
        HeaderValue::from_str(&items.join(", ")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vanish_engine::purge::tags::parse_sf_strings;

    #[test]
    fn round_trips_through_cache_groups() {
        let t = Tags::new(["a b", "q\"uote", "back\\slash", ""]);
        let h = t.to_header().unwrap();
        assert_eq!(
            parse_sf_strings(h.to_str().unwrap()),
            ["a b", "q\"uote", "back\\slash"]
        );
        assert!(Tags::default().to_header().is_none());
    }
}
