//! Vary variants: which of a resource's stored responses a request selects.
//!
//! Owns the parsing of a response's `Vary` header into [`VaryNames`] and the length-framed
//! encoding of a request's values for those names into a [`VariantKey`]. An absent header and
//! an empty one encode differently, and no concatenation of values can collide. Values are
//! encoded in the normal form of [`crate::vary_normalize`], so spellings that mean the same
//! select the same variant. `Accept-Encoding` is the one exception: its value in a variant
//! key is the stored body's content coding ([`crate::coding`]), not the request's header, so
//! a resource holds one object per coding however clients spell what they accept.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName};

use crate::coding::Coding;
use crate::vary_normalize::ValueForm;

/// The header names a response varies on, lower-cased, sorted and de-duplicated.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VaryNames(Arc<[HeaderName]>);

/// The result of reading a response's `Vary` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// The response varies on these names (possibly none).
    Names(VaryNames),
    /// `Vary: *`: the response must never be stored.
    Star,
}

impl VaryNames {
    /// Reads every `Vary` header of a response.
    ///
    /// ```
    /// use vanish_engine::variant::{Vary, VaryNames};
    /// let mut h = http::HeaderMap::new();
    /// h.append("vary", "Accept-Language, accept-encoding".parse().unwrap());
    /// h.append("vary", "Accept-Language".parse().unwrap());
    /// let Vary::Names(names) = VaryNames::from_response(&h) else { panic!() };
    /// assert_eq!(names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
    ///            ["accept-encoding", "accept-language"]);
    /// ```
    pub fn from_response(headers: &HeaderMap) -> Vary {
        let mut names: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(http::header::VARY) {
            let Ok(s) = value.to_str() else {
                return Vary::Star;
            };
            for part in s.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                if part == "*" {
                    return Vary::Star;
                }
                match HeaderName::from_bytes(part.as_bytes()) {
                    Ok(n) => names.push(n),
                    Err(_) => return Vary::Star,
                }
            }
        }
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        Vary::Names(VaryNames(names.into()))
    }

    /// Builds names from a list (for tests and the Rust API).
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v: Vec<HeaderName> = names
            .into_iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_ref().trim().as_bytes()).ok())
            .collect();
        v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        v.dedup();
        VaryNames(v.into())
    }

    /// True when the response does not vary.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &HeaderName> {
        self.0.iter()
    }

    /// The variant key a request with these headers selects, its values in their normal
    /// form.
    pub fn variant_key(&self, headers: &HeaderMap) -> VariantKey {
        self.variant_key_in(headers, ValueForm::Normal)
    }

    /// The variant key a request with these headers selects, its values in `form`.
    pub fn variant_key_in(&self, headers: &HeaderMap, form: ValueForm) -> VariantKey {
        self.key(headers, form, None)
    }

    /// The variant key of an object whose body is in `coding`, for a request with these
    /// headers: as [`VaryNames::variant_key_in`], but `Accept-Encoding` (when varied on) is
    /// `coding`'s token, whatever the request sent.
    ///
    /// ```
    /// use vanish_engine::{coding::Coding, variant::VaryNames, vary_normalize::ValueForm};
    /// let names = VaryNames::from_names(["accept-encoding"]);
    /// let h = |ae: &str| {
    ///     let mut m = http::HeaderMap::new();
    ///     m.insert("accept-encoding", ae.parse().unwrap());
    ///     m
    /// };
    /// let form = ValueForm::Normal;
    /// assert_eq!(
    ///     names.variant_key_coded(&h("gzip, deflate, br"), form, Coding::Gzip),
    ///     names.variant_key_coded(&h("gzip"), form, Coding::Gzip),
    /// );
    /// assert_ne!(
    ///     names.variant_key_coded(&h("gzip"), form, Coding::Gzip),
    ///     names.variant_key_coded(&h("gzip"), form, Coding::Identity),
    /// );
    /// ```
    pub fn variant_key_coded(
        &self,
        headers: &HeaderMap,
        form: ValueForm,
        coding: Coding,
    ) -> VariantKey {
        self.key(headers, form, Some(coding))
    }

    fn key(&self, headers: &HeaderMap, form: ValueForm, coding: Option<Coding>) -> VariantKey {
        if self.0.is_empty() {
            return VariantKey::default();
        }
        let mut buf = BytesMut::with_capacity(32);
        for name in self.0.iter() {
            if let Some(c) = coding.filter(|_| *name == header::ACCEPT_ENCODING) {
                let token = c.token().as_bytes();
                buf.put_u8(1);
                buf.put_u32(token.len() as u32);
                buf.put_slice(token);
                continue;
            }
            let mut values = headers.get_all(name).iter().peekable();
            if values.peek().is_none() {
                buf.put_u8(0);
                continue;
            }
            buf.put_u8(1);
            // Repeated fields are combined as a list, as HTTP defines them to be, and put in
            // their meaning-preserving normal form.
            let joined = form.apply(name, values.map(|v| v.as_bytes()));
            buf.put_u32(joined.len() as u32);
            buf.put_slice(&joined);
        }
        VariantKey(buf.freeze())
    }

    /// True when the names include `Accept-Encoding`.
    pub fn has_accept_encoding(&self) -> bool {
        self.0.contains(&header::ACCEPT_ENCODING)
    }

    /// These names with `Accept-Encoding` added (for a response whose coding the cache
    /// negotiates although the origin did not say it varies on it).
    pub fn with_accept_encoding(&self) -> VaryNames {
        if self.has_accept_encoding() {
            return self.clone();
        }
        let mut v: Vec<HeaderName> = self.0.to_vec();
        v.push(header::ACCEPT_ENCODING);
        v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        VaryNames(v.into())
    }

    /// The request's values for these names in the normal form variant keys compare
    /// ([`crate::vary_normalize`]; `None` for an absent header): what purge header filters
    /// match.
    pub fn values(&self, headers: &HeaderMap) -> Vec<(HeaderName, Option<String>)> {
        self.values_in(headers, ValueForm::Normal)
    }

    /// The request's values for these names in `form`, as [`VaryNames::variant_key_in`]
    /// encodes them.
    pub fn values_in(
        &self,
        headers: &HeaderMap,
        form: ValueForm,
    ) -> Vec<(HeaderName, Option<String>)> {
        self.0
            .iter()
            .map(|name| {
                let mut it = headers.get_all(name).iter().peekable();
                if it.peek().is_none() {
                    return (name.clone(), None);
                }
                let joined = form.apply(name, it.map(|v| v.as_bytes()));
                (
                    name.clone(),
                    Some(String::from_utf8_lossy(&joined).into_owned()),
                )
            })
            .collect()
    }

    /// The request's values for these names as an object whose body is in `coding` records
    /// them ([`VaryNames::variant_key_coded`]): `Accept-Encoding` is the coding's token.
    pub fn values_coded(
        &self,
        headers: &HeaderMap,
        form: ValueForm,
        coding: Coding,
    ) -> Vec<(HeaderName, Option<String>)> {
        let mut values = self.values_in(headers, form);
        for (name, value) in &mut values {
            if *name == header::ACCEPT_ENCODING {
                *value = Some(coding.token().to_owned());
            }
        }
        values
    }
}

impl fmt::Debug for VaryNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| n.as_str()))
            .finish()
    }
}

/// A length-framed encoding of a request's values for a resource's [`VaryNames`].
///
/// Empty when the resource does not vary.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VariantKey(Bytes);

impl VariantKey {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A variant key read back from its bytes (as a store kept them), or `None` when they are
    /// not a variant key's framing: each frame is `0` (the header was absent) or `1`, a
    /// big-endian `u32` length and that many bytes of value.
    ///
    /// ```
    /// use vanish_engine::variant::{VariantKey, VaryNames};
    /// let mut h = http::HeaderMap::new();
    /// h.insert("accept-language", "fr".parse().unwrap());
    /// let key = VaryNames::from_names(["accept-language", "x-absent"]).variant_key(&h);
    /// assert_eq!(VariantKey::from_bytes(key.as_bytes()), Some(key));
    /// assert_eq!(VariantKey::from_bytes(&[1, 0, 0, 0, 9, b'a']), None);
    /// assert_eq!(VariantKey::from_bytes(&[7]), None);
    /// ```
    pub fn from_bytes(raw: &[u8]) -> Option<VariantKey> {
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                0 => i += 1,
                1 => {
                    let len = u32::from_be_bytes(raw.get(i + 1..i + 5)?.try_into().ok()?);
                    i = (i + 5).checked_add(len as usize)?;
                    if i > raw.len() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        Some(VariantKey(Bytes::copy_from_slice(raw)))
    }
}

impl fmt::Debug for VariantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VariantKey({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        crate::headers::from_pairs(pairs)
    }

    #[test]
    fn star_is_detected() {
        assert_eq!(
            VaryNames::from_response(&headers(&[("vary", "accept, *")])),
            Vary::Star
        );
    }

    #[test]
    fn absent_and_empty_differ() {
        let names = VaryNames::from_names(["x-a"]);
        let absent = names.variant_key(&headers(&[]));
        let empty = names.variant_key(&headers(&[("x-a", "")]));
        assert_ne!(absent, empty);
    }

    #[test]
    fn framing_prevents_collisions() {
        let names = VaryNames::from_names(["x-a", "x-b"]);
        let one = names.variant_key(&headers(&[("x-a", "ab"), ("x-b", "c")]));
        let two = names.variant_key(&headers(&[("x-a", "a"), ("x-b", "bc")]));
        assert_ne!(one, two);
        let same = names.variant_key(&headers(&[("x-b", "c"), ("x-a", "ab")]));
        assert_eq!(one, same);
    }

    #[test]
    fn repeated_fields_join_as_a_list() {
        let names = VaryNames::from_names(["accept"]);
        let split = names.variant_key(&headers(&[("accept", "a"), ("accept", "b")]));
        let joined = names.variant_key(&headers(&[("accept", "a, b")]));
        assert_eq!(split, joined);
    }

    #[test]
    fn spellings_that_mean_the_same_select_the_same_variant() {
        let names = VaryNames::from_names(["accept-language", "accept-encoding"]);
        let key = |al: &str, ae: &str| {
            names.variant_key(&headers(&[
                ("accept-language", al),
                ("accept-encoding", ae),
            ]))
        };
        let base = key("en, fr", "gzip, br");
        assert_eq!(key("en,fr", "gzip,br"), base);
        assert_eq!(key("EN, Fr", "GZIP, BR"), base);
        assert_ne!(
            key("fr, en", "gzip, br"),
            base,
            "the order is the preference"
        );
        assert_eq!(
            key("fr;q=0.5, en;q=0.9", "br"),
            key("en;q=0.9,fr;q=0.50", "br")
        );
        let values = names.values(&headers(&[("accept-language", "EN ,fr")]));
        assert_eq!(values[1].1.as_deref(), Some("en, fr"));
        let raw = |al: &str| {
            let h = headers(&[("accept-language", al)]);
            names.variant_key_in(&h, ValueForm::AsReceived)
        };
        assert_ne!(raw("en,fr"), raw("en, fr"), "as received: byte-exact");
        let values = names.values_in(
            &headers(&[("accept-language", "EN ,fr")]),
            ValueForm::AsReceived,
        );
        assert_eq!(values[1].1.as_deref(), Some("EN ,fr"));
    }
}
