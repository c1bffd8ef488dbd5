//! Query normalisation: drop or keep parameters, sort them, canonical percent-encoding.
//!
//! Owns the rewriting of one query string; which rule applies is decided in
//! [`super::rules`].

use globset::GlobSet;

use crate::url::{canonical_encoding, form_decode};

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
            let name = form_decode(canon.split('=').next().unwrap_or(""));
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
}
