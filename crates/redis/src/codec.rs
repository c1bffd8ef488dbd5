//! Serialising cached objects for Redis.
//!
//! Owns three encodings: the object *blob* (everything a [`CachedObject`] holds: status,
//! headers, policy, timing, metadata, and the body as raw bytes), the *resource key string*
//! that names a resource's hash in Redis, and the *index record* (the small JSON the Lua
//! scripts match purges on and unindex with). Nothing here talks to Redis.
//!
//! Blob layout: `VO1` magic, a 4-byte big-endian length, that many bytes of JSON head, then the
//! body. Bodies are never copied into JSON.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use vanish_engine::object::{self, next_object_id, ObjectMeta, Timing};
use vanish_engine::url::{hostname, Scheme};
use vanish_engine::variant::{VariantKey, VaryNames};
use vanish_engine::{CachedObject, ResourceKey};

const MAGIC: &[u8; 3] = b"VO1";

/// A header value: text when it is UTF-8, bytes otherwise.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct Head {
    /// scheme, host, path, query, extra.
    key: (String, String, String, Option<String>, Option<String>),
    vary: Vec<String>,
    /// The variant key, hex.
    variant: String,
    vary_values: Vec<(String, Option<String>)>,
    tags: Vec<String>,
    status: u16,
    headers: Vec<(String, Value)>,
    policy: CachePolicy,
    /// stored_at (ns since the epoch), age_at_store, ttl_at_store, swr, sie, keep (ns).
    timing: [u64; 6],
    /// The decoded length of a `gzip`/`br` body (absent in blobs written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decoded_len: Option<u64>,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("bad hex digit {:?}", c as char)),
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    b.chunks(2)
        .map(|p| Ok((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// The string naming a resource in Redis (unambiguous: a JSON array of its parts).
pub fn resource_key(key: &ResourceKey) -> String {
    serde_json::to_string(&(
        key.scheme().as_str(),
        key.host(),
        key.path(),
        key.query(),
        key.extra(),
    ))
    .unwrap_or_default()
}

/// The field naming a variant inside its resource's hash: the `Vary` names and the variant
/// key, hex-encoded.
pub fn variant_field(obj: &CachedObject) -> String {
    let mut raw = Vec::new();
    for n in obj.vary.iter() {
        raw.extend_from_slice(n.as_str().as_bytes());
        raw.push(b'\n');
    }
    raw.push(0);
    raw.extend_from_slice(obj.variant.as_bytes());
    hex(&raw)
}

#[derive(Serialize)]
struct Record<'a> {
    /// Resource key string.
    r: &'a str,
    /// Variant field.
    f: &'a str,
    /// Host (with port) and host name (without).
    h: &'a str,
    n: &'a str,
    p: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<&'a str>,
    t: Vec<&'a str>,
    /// Vary values: `[name, value]`, or `[name]` when the request had no such header.
    v: Vec<Vec<&'a str>>,
    /// Approximate size in bytes (for the byte count).
    z: usize,
}

/// The index record the Lua scripts keep per object (what purges match on).
pub fn record(obj: &CachedObject, rkey: &str, vfield: &str, size: usize) -> String {
    let key = &obj.meta.key;
    let rec = Record {
        r: rkey,
        f: vfield,
        h: key.host(),
        n: hostname(key.host()),
        p: key.path(),
        q: key.query(),
        t: obj.meta.tags.iter().map(|t| &**t).collect(),
        v: obj
            .meta
            .vary_values
            .iter()
            .map(|(n, v)| match v {
                Some(v) => vec![n.as_str(), v.as_str()],
                None => vec![n.as_str()],
            })
            .collect(),
        z: size,
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

/// Serialises an object into a blob.
pub fn encode(obj: &CachedObject) -> Result<Bytes, String> {
    let key = &obj.meta.key;
    let t = &obj.timing;
    let head = Head {
        key: (
            key.scheme().as_str().to_owned(),
            key.host().to_owned(),
            key.path().to_owned(),
            key.query().map(str::to_owned),
            key.extra().map(str::to_owned),
        ),
        vary: obj.vary.iter().map(|n| n.as_str().to_owned()).collect(),
        variant: hex(obj.variant.as_bytes()),
        vary_values: obj
            .meta
            .vary_values
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
            .collect(),
        tags: obj.meta.tags.iter().map(|t| t.to_string()).collect(),
        status: obj.status.as_u16(),
        headers: obj
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
        policy: obj.policy.clone(),
        timing: [
            ns(t.stored_at.duration_since(UNIX_EPOCH).unwrap_or_default()),
            ns(t.age_at_store),
            ns(t.ttl_at_store),
            ns(t.stale_while_revalidate),
            ns(t.stale_if_error),
            ns(t.keep),
        ],
        decoded_len: obj.decoded_len,
    };
    let json = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(7 + json.len() + obj.body.len());
    out.put_slice(MAGIC);
    out.put_u32(json.len() as u32);
    out.put_slice(&json);
    out.put_slice(&obj.body);
    Ok(out.freeze())
}

/// Rebuilds an object from a blob (with a fresh process-local id).
pub fn decode(blob: Bytes) -> Result<CachedObject, String> {
    if blob.len() < 7 || &blob[..3] != MAGIC {
        return Err("not a Vanish object blob".into());
    }
    let len = u32::from_be_bytes([blob[3], blob[4], blob[5], blob[6]]) as usize;
    if blob.len() < 7 + len {
        return Err("truncated object blob".into());
    }
    let head: Head = serde_json::from_slice(&blob[7..7 + len]).map_err(|e| e.to_string())?;
    // A copy, not a slice: the blob may share its allocation with the client's read buffer,
    // and an L1 copy must hold only what the memory store's weigher counts.
    let body = Bytes::copy_from_slice(&blob[7 + len..]);
    let (scheme, host, path, query, extra) = head.key;
    let scheme = Scheme::parse(&scheme).ok_or("bad scheme")?;
    let key = ResourceKey::new(scheme, &host, &path, query.as_deref()).with_extra(extra);
    let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string());
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (n, v) in head.headers {
        let v = match v {
            Value::Text(s) => HeaderValue::from_str(&s),
            Value::Bytes(b) => HeaderValue::from_bytes(&b),
        }
        .map_err(|e| e.to_string())?;
        headers.append(name(&n)?, v);
    }
    let mut vary_values = Vec::with_capacity(head.vary_values.len());
    for (n, v) in head.vary_values {
        vary_values.push((name(&n)?, v));
    }
    let meta = ObjectMeta {
        id: next_object_id(),
        key,
        vary_values,
        tags: head.tags.into_iter().map(Arc::<str>::from).collect(),
    };
    let t = head.timing;
    let d = Duration::from_nanos;
    let timing = Timing {
        stored_at: UNIX_EPOCH + d(t[0]),
        age_at_store: d(t[1]),
        ttl_at_store: d(t[2]),
        stale_while_revalidate: d(t[3]),
        stale_if_error: d(t[4]),
        keep: d(t[5]),
    };
    let variant = variant_key_from(&head.variant)?;
    Ok(CachedObject::new(
        object::Head {
            meta,
            variant,
            vary: VaryNames::from_names(head.vary),
            status: StatusCode::from_u16(head.status).map_err(|e| e.to_string())?,
            headers,
            decoded_len: head.decoded_len,
            policy: head.policy,
            timing,
        },
        body,
    ))
}

/// The variant key from its hex encoding.
fn variant_key_from(hex_bytes: &str) -> Result<VariantKey, String> {
    let raw = unhex(hex_bytes)?;
    VariantKey::from_bytes(&raw).ok_or_else(|| "not a variant key's framing".to_owned())
}

/// Unix milliseconds of a time.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
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
        let o = object("https://h.example:8443/p?q=1", Some("fr"));
        let back = decode(encode(&o).unwrap()).unwrap();
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
        assert_eq!(back.retain_until(), o.retain_until());
        let absent = object("http://h/p", None);
        let back = decode(encode(&absent).unwrap()).unwrap();
        assert_eq!(back.variant, absent.variant);
        assert_ne!(back.variant, o.variant);
        assert!(decode(Bytes::from_static(b"nope")).is_err());
    }

    #[test]
    fn coded_objects_round_trip() {
        use std::io::Write;
        use vanish_engine::coding::Coding;
        let page = "<p>hello</p>".repeat(200);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(page.as_bytes()).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        let key = ResourceKey::parse_url("http://h/coded").unwrap();
        let mut req = HeaderMap::new();
        req.insert("accept-encoding", "gzip, deflate, br".parse().unwrap());
        req.insert("accept-language", "fr".parse().unwrap());
        let res = http::Response::builder()
            .header("cache-control", "max-age=60")
            .header("content-encoding", "gzip")
            .header("vary", "Accept-Language")
            .body(gz)
            .unwrap();
        let o =
            CachedObject::from_response(key, &req, res, &CacheConfig::default(), SystemTime::now())
                .unwrap();
        assert_eq!(o.decoded_len, Some(page.len() as u64));
        assert!(
            o.vary.has_accept_encoding(),
            "the coding is a dimension of the variant"
        );
        let back = decode(encode(&o).unwrap()).unwrap();
        assert_eq!(
            back.variant, o.variant,
            "the coding survives in the variant key"
        );
        assert_eq!(back.vary, o.vary);
        assert_eq!(back.meta.vary_values, o.meta.vary_values);
        assert_eq!(back.decoded_len, o.decoded_len);
        assert_eq!(back.coding(), Some(Coding::Gzip));
        assert_eq!(variant_field(&back), variant_field(&o));
        // The stored object serves a gzip client as it is, and an identity one (decoded).
        let resource = vanish_engine::store::Resource {
            variants: vec![std::sync::Arc::new(back)],
        };
        let mut gzip_client = HeaderMap::new();
        gzip_client.insert("accept-encoding", "gzip".parse().unwrap());
        gzip_client.insert("accept-language", "fr".parse().unwrap());
        assert!(resource.select(&gzip_client).is_some());
        let mut identity_client = HeaderMap::new();
        identity_client.insert("accept-language", "fr".parse().unwrap());
        assert!(resource.select(&identity_client).is_some());
        identity_client.insert("accept-language", "de".parse().unwrap());
        assert!(
            resource.select(&identity_client).is_none(),
            "other Vary fields still count"
        );
    }

    #[test]
    fn keys_are_unambiguous() {
        let a = ResourceKey::parse_url("http://h/p?").unwrap();
        let b = ResourceKey::parse_url("http://h/p").unwrap();
        assert_ne!(resource_key(&a), resource_key(&b));
    }
}
