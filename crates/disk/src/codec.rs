//! The head of an object record: what a [`CachedObject`] is besides its body.
//!
//! Owns one encoding in two parts, so the index can be rebuilt without parsing what it does
//! not need: `meta_len` (u32 little-endian), the *meta* JSON (key with its original parts,
//! `Vary` names, variant key, variant header values, tags, timing, retention) and the
//! *response* JSON (status, headers, the RFC 9111 policy). Bodies are never in JSON. It knows
//! no file and no index.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use vanish_engine::object::{self, next_object_id, ObjectMeta, Timing};
use vanish_engine::url::Scheme;
use vanish_engine::variant::{VariantKey, VaryNames};
use vanish_engine::{CachedObject, ResourceKey};

#[derive(Serialize, Deserialize)]
struct MetaJson {
    /// scheme, host, path, query, key-policy extra.
    k: (String, String, String, Option<String>, Option<String>),
    /// `Vary` names.
    n: Vec<String>,
    /// The variant key's bytes.
    v: Vec<u8>,
    /// Variant header values (`None`: absent).
    vv: Vec<(String, Option<String>)>,
    /// Tags.
    t: Vec<String>,
    /// stored_at (ns since the epoch), age_at_store, ttl_at_store, swr, sie, keep (ns).
    tm: [u64; 6],
    /// Retain until (unix ms): the end of its stale windows and keep period.
    ru: u64,
}

/// A header value: text when it is visible ASCII, bytes otherwise.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct ResponseJson {
    s: u16,
    h: Vec<(String, Value)>,
    p: CachePolicy,
    /// The decoded length of a `gzip`/`br` body (absent in records written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<u64>,
}

/// What the index keeps of an object record (everything purges and lookups match on).
#[derive(Debug, Clone)]
pub struct StoredMeta {
    /// Purge metadata, with a fresh process-local id.
    pub meta: ObjectMeta,
    /// The `Vary` names.
    pub vary: VaryNames,
    /// The variant key.
    pub variant: VariantKey,
    /// Freshness timing.
    pub timing: Timing,
    /// When the object may be forgotten.
    pub retain_until: SystemTime,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Unix milliseconds of a time.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The time of unix milliseconds.
pub fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The head bytes of an object.
pub fn encode_head(obj: &CachedObject) -> Result<Vec<u8>, String> {
    let key = &obj.meta.key;
    let t = &obj.timing;
    let meta = MetaJson {
        k: (
            key.scheme().as_str().to_owned(),
            key.host().to_owned(),
            key.path().to_owned(),
            key.query().map(str::to_owned),
            key.extra().map(str::to_owned),
        ),
        n: obj.vary.iter().map(|n| n.as_str().to_owned()).collect(),
        v: obj.variant.as_bytes().to_vec(),
        vv: obj
            .meta
            .vary_values
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
            .collect(),
        t: obj.meta.tags.iter().map(|t| t.to_string()).collect(),
        tm: [
            ns(t.stored_at.duration_since(UNIX_EPOCH).unwrap_or_default()),
            ns(t.age_at_store),
            ns(t.ttl_at_store),
            ns(t.stale_while_revalidate),
            ns(t.stale_if_error),
            ns(t.keep),
        ],
        ru: unix_ms(obj.retain_until()),
    };
    let response = ResponseJson {
        s: obj.status.as_u16(),
        h: obj
            .headers
            .iter()
            .map(|(n, v)| {
                let v = match v.to_str() {
                    Ok(s) => Value::Text(s.to_owned()),
                    Err(_) => Value::Bytes(v.as_bytes().to_vec()),
                };
                (n.as_str().to_owned(), v)
            })
            .collect(),
        p: obj.policy.clone(),
        d: obj.decoded_len,
    };
    let meta = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
    let response = serde_json::to_vec(&response).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(4 + meta.len() + response.len());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&response);
    Ok(out)
}

fn split(head: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if head.len() < 4 {
        return Err("object head too short".into());
    }
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if head.len() - 4 < n {
        return Err("object head's meta part runs past its end".into());
    }
    Ok((&head[4..4 + n], &head[4 + n..]))
}

fn name(n: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())
}

/// Reads the meta part of an object head (what the index needs).
pub fn decode_meta(head: &[u8]) -> Result<StoredMeta, String> {
    let (meta, _) = split(head)?;
    let m: MetaJson = serde_json::from_slice(meta).map_err(|e| e.to_string())?;
    let (scheme, host, path, query, extra) = m.k;
    let scheme = Scheme::parse(&scheme).ok_or("bad scheme")?;
    let key = ResourceKey::new(scheme, &host, &path, query.as_deref()).with_extra(extra);
    let mut vary_values = Vec::with_capacity(m.vv.len());
    for (n, v) in m.vv {
        vary_values.push((name(&n)?, v));
    }
    for n in &m.n {
        name(n)?;
    }
    let d = Duration::from_nanos;
    let t = m.tm;
    let timing = Timing {
        stored_at: UNIX_EPOCH + d(t[0]),
        age_at_store: d(t[1]),
        ttl_at_store: d(t[2]),
        stale_while_revalidate: d(t[3]),
        stale_if_error: d(t[4]),
        keep: d(t[5]),
    };
    Ok(StoredMeta {
        meta: ObjectMeta {
            id: next_object_id(),
            key,
            vary_values,
            tags: m.t.into_iter().map(Arc::<str>::from).collect(),
        },
        variant: VariantKey::from_bytes(&m.v).ok_or("bad variant key")?,
        vary: VaryNames::from_names(m.n),
        timing,
        retain_until: from_ms(m.ru),
    })
}

/// Rebuilds the whole object from its head and body (with a fresh process-local id).
pub fn decode_object(head: &[u8], body: Bytes) -> Result<CachedObject, String> {
    let stored = decode_meta(head)?;
    let (_, response) = split(head)?;
    let r: ResponseJson = serde_json::from_slice(response).map_err(|e| e.to_string())?;
    let mut headers = HeaderMap::with_capacity(r.h.len());
    for (n, v) in r.h {
        let v = match v {
            Value::Text(s) => HeaderValue::from_str(&s),
            Value::Bytes(b) => HeaderValue::from_bytes(&b),
        }
        .map_err(|e| e.to_string())?;
        headers.append(name(&n)?, v);
    }
    Ok(CachedObject::new(
        object::Head {
            meta: stored.meta,
            variant: stored.variant,
            vary: stored.vary,
            status: StatusCode::from_u16(r.s).map_err(|e| e.to_string())?,
            headers,
            policy: r.p,
            timing: stored.timing,
            decoded_len: r.d,
        },
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vanish_engine::CacheConfig;

    fn object(url: &str, lang: Option<&str>) -> CachedObject {
        let key = ResourceKey::parse_url(url).unwrap();
        let mut req = HeaderMap::new();
        if let Some(l) = lang {
            req.insert("accept-language", l.parse().unwrap());
        }
        let res = http::Response::builder()
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language, X-Other")
            .header("surrogate-key", "a b")
            .header("x-bin", HeaderValue::from_bytes(b"\xff\xfe").unwrap())
            .body(Bytes::from_static(b"hello\x00world"))
            .unwrap();
        CachedObject::from_response(key, &req, res, &CacheConfig::default(), SystemTime::now())
            .unwrap()
    }

    #[test]
    fn objects_round_trip() {
        for (url, lang) in [
            ("https://h.example:8443/p?q=1", Some("fr")),
            ("http://h/p", None),
        ] {
            let mut o = object(url, lang);
            // As admission records it for a gzip/br body.
            o.decoded_len = lang.map(|_| 4321);
            let head = encode_head(&o).unwrap();
            let back = decode_object(&head, o.body.clone()).unwrap();
            assert_eq!(back.meta.key, o.meta.key);
            assert_eq!(back.meta.key.extra(), o.meta.key.extra());
            assert_eq!(back.variant, o.variant, "variant keys are identical");
            assert_eq!(back.vary, o.vary);
            assert_eq!(back.meta.vary_values, o.meta.vary_values);
            assert_eq!(back.meta.tags, o.meta.tags);
            assert_eq!(back.status, o.status);
            assert_eq!(back.headers, o.headers);
            assert_eq!(back.body, o.body);
            assert_eq!(back.timing, o.timing);
            assert_eq!(back.decoded_len, o.decoded_len);
            assert_ne!(back.id(), o.id(), "a fresh process-local id");
            let meta = decode_meta(&head).unwrap();
            assert_eq!(unix_ms(meta.retain_until), unix_ms(o.retain_until()));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x05\0\0\0{}",
            b"\xff\xff\xff\xff",
            b"\x02\0\0\0{}{}",
        ] {
            assert!(decode_meta(bad).is_err());
            assert!(decode_object(bad, Bytes::new()).is_err());
        }
        assert!(VariantKey::from_bytes(&[1, 0, 0, 0, 9, b'a']).is_none());
        assert!(VariantKey::from_bytes(&[7]).is_none());
    }
}
