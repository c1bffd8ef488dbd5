//! The store's weigher against the heap: what an object really costs once it is stored (its
//! body, headers, the policy's copies, its key and tags, the index and moka entries) must not
//! exceed what the weigher counts, or a store bounded by bytes holds more than its capacity.
//!
//! A counting global allocator measures the heap around inserting a few thousand objects shaped
//! like real pages (headers of a typical origin, tags, some `Vary`); the weights must cover the
//! measured bytes and not overstate them by more than the allocator's size-class rounding.
//! One test in this file, so no other test allocates while it measures; the runtime is
//! single-threaded, and dropping a store stops and joins its housekeeper thread before the
//! store is freed on the dropping thread, so no frees of one measurement land in the next.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use vanish_engine::{CacheConfig, CachedObject, ResourceKey, Store};
use vanish_memory::MemoryStore;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counter only records sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from `System` with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A header value with its own allocation, as the fill path stores them (`headers::detach`).
fn owned(v: &str) -> HeaderValue {
    HeaderValue::from_bytes(v.as_bytes()).unwrap()
}

/// A response the way a typical origin sends it, for request `i`, with a body of `len` bytes.
fn response(i: usize, len: usize) -> (ResourceKey, HeaderMap, Response<Bytes>) {
    let varied = i.is_multiple_of(5);
    let key = ResourceKey::parse_url(&format!(
        "http://site-{}.example.com/section-{}/articles/{i}?page={}",
        i % 3,
        i % 17,
        i % 4
    ))
    .unwrap();
    let mut req = HeaderMap::new();
    req.insert("host", owned(&format!("site-{}.example.com", i % 3)));
    req.insert("accept-language", owned(["en", "fr", "de"][i % 3]));
    req.insert("user-agent", owned("Mozilla/5.0 (X11; Linux x86_64)"));
    let mut res = Response::builder()
        .status(200)
        .header("date", owned("Thu, 26 Nov 2026 15:00:00 GMT"))
        .header("server", owned("origin/1.0"))
        .header("content-type", owned("text/html; charset=utf-8"))
        .header("content-length", owned(&len.to_string()))
        .header("cache-control", owned("public, max-age=600"))
        .header("etag", owned(&format!("\"v{i}-abcdef0123\"")))
        .header("last-modified", owned("Wed, 25 Nov 2026 10:00:00 GMT"))
        .header(
            "surrogate-key",
            owned(&format!("item-{i} section-{} grp-{}", i % 17, i % 64)),
        )
        .header("x-request-id", owned(&format!("{:032x}", i * 2654435761)));
    if varied {
        res = res.header("vary", owned("Accept-Language"));
    }
    let res = res.body(Bytes::from(vec![b'x'; len])).unwrap();
    (key, req, res)
}

/// Inserts `n` objects with bodies from `body_len` into a fresh store; returns the heap bytes
/// they hold and the sum of their weights.
async fn measure(n: usize, body_len: impl Fn(usize) -> usize) -> (u64, u64) {
    let config = CacheConfig::default();
    let store = MemoryStore::new(1 << 40);
    // Warm up lazily built structures (moka's, the index's) outside the count.
    for i in 0..200 {
        let (key, req, res) = response(1_000_000 + i, 1000);
        let obj = CachedObject::from_response(key, &req, res, &config, SystemTime::now()).unwrap();
        store.insert(obj, 0).await.unwrap();
    }
    store.sync();
    // Counted from before the inputs exist: the responses become the stored objects, and the
    // request headers are freed by the end.
    let before = LIVE.load(Ordering::SeqCst);
    let inputs: Vec<_> = (0..n).map(|i| response(i, body_len(i))).collect();
    let mut weights = 0u64;
    for (key, req, res) in inputs {
        let obj = CachedObject::from_response(key, &req, res, &config, SystemTime::now()).unwrap();
        weights += u64::from(obj.weight());
        store.insert(obj, 0).await.unwrap();
    }
    store.sync();
    let held = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(store.resource_count(), (n + 200) as u64);
    // A negative count means memory allocated before the window was freed inside it: the
    // measurement would be wrong, whatever the weigher does.
    let held = u64::try_from(held).unwrap_or_else(|_| {
        panic!("{held} B held: frees of earlier allocations fell inside the measuring window")
    });
    (held, weights)
}

#[tokio::test(flavor = "current_thread")]
async fn weights_cover_what_objects_hold_in_the_heap() {
    const N: usize = 3000;
    type BodyLen = fn(usize) -> usize;
    let shapes: [(&str, BodyLen); 2] = [
        ("pages of 2-48 KiB", |i| 2048 + (i * 7919) % (46 * 1024)),
        ("small responses of 50-1050 B", |i| 50 + (i * 7919) % 1000),
    ];
    for (shape, body_len) in shapes {
        let (held, weights) = measure(N, body_len).await;
        eprintln!(
            "{shape}: {:.0} B held per object, {:.0} B weighed",
            held as f64 / N as f64,
            weights as f64 / N as f64
        );
        assert!(
            weights >= held,
            "{shape}: the weigher under-counts: {weights} B weighed, {held} B held by {N} objects"
        );
        // What the weigher adds beyond this count is the allocator's size-class rounding
        // (jemalloc: up to a quarter of a power-of-two step), which a counting allocator
        // does not see.
        assert!(
            weights as f64 <= held as f64 * 1.2,
            "{shape}: the weigher over-counts: {weights} B weighed, {held} B held by {N} objects"
        );
    }
}
