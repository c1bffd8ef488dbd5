//! The variant encoder: `VaryNames::from_response` and `VaryNames::variant_key`.
//!
//! Input format (so seeds are readable), one item a line, bytes after the prefix taken as is:
//! `vary:<value>` is a `Vary` header of the response; `a:<name>:<value>` and `b:<name>:<value>`
//! add a header to request A or request B (a line `a:<name>` with no second colon adds
//! nothing but is ignored). Other lines are ignored.
//!
//! Properties checked on every input:
//! - nothing panics;
//! - `Vary: *` (alone or in a list) is never turned into names;
//! - framing, for values as received (`ValueForm::AsReceived`): the two requests get the same
//!   variant key if and only if they have the same value list for the varied names, where a
//!   name's value is absent, or its field values joined with ", " (HTTP's list rule, which the
//!   encoder applies on purpose). So an absent header and an empty one differ, and no
//!   concatenation of values collides;
//! - in the normal form (the default, `vary_normalize`), the same value lists still give the
//!   same key (spellings the RFCs call the same, such as `fr` and `fR`, may also share one);
//! - the key depends only on the varied names: headers not varied on don't change it.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use vanish_engine::variant::{Vary, VaryNames};
use vanish_engine::vary_normalize::ValueForm;

/// What the key must distinguish: per varied name, absent or the joined values.
fn model(names: &VaryNames, h: &HeaderMap) -> Vec<Option<Vec<u8>>> {
    names
        .iter()
        .map(|n| {
            let values: Vec<&[u8]> = h.get_all(n).iter().map(HeaderValue::as_bytes).collect();
            if values.is_empty() {
                None
            } else {
                Some(values.join(&b", "[..]))
            }
        })
        .collect()
}

fn only_varied(names: &VaryNames, h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (n, v) in h {
        if names.iter().any(|m| m == n) {
            out.append(n.clone(), v.clone());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut response = HeaderMap::new();
    let mut a = HeaderMap::new();
    let mut b = HeaderMap::new();
    let mut star = false;
    for line in data.split(|&c| c == b'\n') {
        if let Some(v) = line.strip_prefix(b"vary:") {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                star |= v
                    .to_str()
                    .map(|s| s.split(',').any(|p| p.trim() == "*"))
                    .unwrap_or(false);
                response.append(http::header::VARY, v);
            }
            continue;
        }
        let (map, rest) = match line {
            [b'a', b':', rest @ ..] => (&mut a, rest),
            [b'b', b':', rest @ ..] => (&mut b, rest),
            _ => continue,
        };
        let Some(colon) = rest.iter().position(|&c| c == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&rest[..colon]),
            HeaderValue::from_bytes(&rest[colon + 1..]),
        ) else {
            continue;
        };
        map.append(name, value);
    }

    let names = match VaryNames::from_response(&response) {
        Vary::Star => return,
        Vary::Names(n) => n,
    };
    assert!(!star, "Vary: * was read as names {names:?}");

    let ka = names.variant_key_in(&a, ValueForm::AsReceived);
    let kb = names.variant_key_in(&b, ValueForm::AsReceived);
    let (ma, mb) = (model(&names, &a), model(&names, &b));
    if ma == mb {
        assert_eq!(ka, kb, "same values, different keys for {names:?}: {ma:?}");
        assert_eq!(
            names.variant_key(&a),
            names.variant_key(&b),
            "same values, different normal-form keys for {names:?}: {ma:?}"
        );
    } else {
        assert_ne!(
            ka.as_bytes(),
            kb.as_bytes(),
            "collision for {names:?}: {ma:?} and {mb:?} give the same key"
        );
    }
    assert_eq!(
        ka,
        names.variant_key_in(&a, ValueForm::AsReceived),
        "not deterministic"
    );
    let normal = names.variant_key(&a);
    assert_eq!(normal, names.variant_key(&a), "not deterministic");
    assert_eq!(
        ka,
        names.variant_key_in(&only_varied(&names, &a), ValueForm::AsReceived),
        "a header not varied on changed the key"
    );
    assert_eq!(
        normal,
        names.variant_key(&only_varied(&names, &a)),
        "a header not varied on changed the normal-form key"
    );
    if names.is_empty() {
        assert!(
            ka.as_bytes().is_empty() && normal.as_bytes().is_empty(),
            "a response varying on nothing has a non-empty key"
        );
    }
});
