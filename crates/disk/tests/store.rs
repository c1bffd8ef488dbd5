//! The hybrid store over real files: persistence across reopening, purges that survive it,
//! damaged records, the rebuild's purges, capacity.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use vanish_disk::{Admit, DiskConfig, HybridStore};
use vanish_engine::store::Store;
use vanish_engine::{CacheConfig, CachedObject, PurgeRequest, ResourceKey, Selector};
use vanish_memory::MemoryStore;

fn object(url: &str, tags: &str, body: &[u8]) -> CachedObject {
    let key = ResourceKey::parse_url(url).unwrap();
    let res = http::Response::builder()
        .header("cache-control", "max-age=600")
        .header("surrogate-key", tags)
        .header("x-check", format!("{:08x}", crc32fast::hash(body)))
        .body(Bytes::copy_from_slice(body))
        .unwrap();
    CachedObject::from_response(
        key,
        &HeaderMap::new(),
        res,
        &CacheConfig::default(),
        SystemTime::now(),
    )
    .unwrap()
}

fn open(dir: &std::path::Path, capacity: u64) -> HybridStore {
    let mut c = DiskConfig::new(dir, capacity);
    c.admit = Admit::First;
    HybridStore::open(MemoryStore::new(64 << 20), &c).unwrap()
}

fn wait_ready(s: &HybridStore) {
    let start = Instant::now();
    while !s.disk().is_ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "rebuild within 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn url(i: usize) -> String {
    format!("http://h{}.example/p/{i}?q={i}", i % 3)
}

fn body(i: usize) -> Vec<u8> {
    format!("body of {i} ").repeat(1 + i % 50).into_bytes()
}

async fn fill(s: &HybridStore, n: usize) {
    for i in 0..n {
        let tags = format!("all t{} one-{i}", i % 10);
        s.insert(object(&url(i), &tags, &body(i)), s.epoch())
            .await
            .unwrap();
    }
    assert!(s.flush(Duration::from_secs(30)));
    assert_eq!(s.disk_stats().objects, n as u64);
}

/// Looks up on disk only (memory is a fresh store after reopening).
async fn has(s: &HybridStore, i: usize) -> bool {
    let r = s
        .lookup(&ResourceKey::parse_url(&url(i)).unwrap())
        .await
        .unwrap();
    match r {
        None => false,
        Some(r) => {
            let o = r.select(&HeaderMap::new()).expect("a variant");
            assert_eq!(
                o.body.as_ref(),
                body(i).as_slice(),
                "object {i}: same bytes"
            );
            assert_eq!(
                o.headers.get("x-check").unwrap().to_str().unwrap(),
                format!("{:08x}", crc32fast::hash(&body(i)))
            );
            assert!(o.meta.tags.iter().any(|t| **t == *format!("one-{i}")));
            true
        }
    }
}

fn hard(sel: Selector) -> Arc<PurgeRequest> {
    Arc::new(PurgeRequest::new(vec![sel]))
}

#[tokio::test]
async fn objects_and_purges_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300;
    {
        let s = open(dir.path(), 64 << 20);
        wait_ready(&s);
        fill(&s, n).await;
        // Purged before the restart: tag t3 (30 objects).
        let r = s.purge(hard(Selector::tag("t3"))).await.unwrap();
        assert_eq!(r.matched, 30, "objects in both tiers count once");
    }
    let s = open(dir.path(), 64 << 20);
    wait_ready(&s);
    assert_eq!(s.disk_stats().objects, (n - 30) as u64);
    for i in 0..n {
        assert_eq!(has(&s, i).await, i % 10 != 3, "object {i}");
    }
    let dry = |sel| Arc::new(PurgeRequest::new(vec![sel]).dry_run());
    let r = s.purge(dry(Selector::host("h1.example"))).await.unwrap();
    assert_eq!(
        r.matched,
        (0..n).filter(|i| i % 3 == 1 && i % 10 != 3).count() as u64
    );
    // Each selector type, then reopen: gone for good.
    s.purge(hard(Selector::url(&url(1)).unwrap()))
        .await
        .unwrap();
    s.purge(hard(Selector::path("/p/2").query("q=2")))
        .await
        .unwrap();
    s.purge(hard(Selector::prefix("/p/4"))).await.unwrap(); // 4, 40..49
    s.purge(hard(Selector::host("h2.example"))).await.unwrap();
    drop(s);
    let s = open(dir.path(), 64 << 20);
    wait_ready(&s);
    for i in 0..n {
        let purged =
            i % 10 == 3 || i == 1 || i == 2 || i == 4 || (40..50).contains(&i) || i % 3 == 2;
        assert_eq!(has(&s, i).await, !purged, "object {i}");
    }
    s.purge(hard(Selector::all())).await.unwrap();
    drop(s);
    let s = open(dir.path(), 64 << 20);
    wait_ready(&s);
    assert_eq!(s.disk_stats().objects, 0);
    assert!(!has(&s, 0).await);
}

#[tokio::test]
async fn a_damaged_body_is_dropped_and_counted_never_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), 64 << 20);
        wait_ready(&s);
        fill(&s, 3).await;
    }
    // Flip a byte in the middle of the first record's body.
    let seg = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(10)
        .position(|w| w == b"body of 0 ")
        .expect("the body is in the segment");
    bytes[at + 3] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let s = open(dir.path(), 64 << 20);
    wait_ready(&s);
    assert!(!has(&s, 0).await, "damaged: a miss");
    assert!(has(&s, 1).await && has(&s, 2).await);
    assert_eq!(s.disk_stats().damaged, 1);
    assert_eq!(s.disk_stats().objects, 2, "its index entry is gone");
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), 64 << 20);
        wait_ready(&s);
        fill(&s, 5).await;
    }
    let seg = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    let s = open(dir.path(), 64 << 20);
    wait_ready(&s);
    assert_eq!(s.disk_stats().objects, 4);
    for i in 0..4 {
        assert!(has(&s, i).await);
    }
    assert!(!has(&s, 4).await, "the torn record is not served");
}

#[tokio::test]
async fn purges_during_the_rebuild_are_applied_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    {
        let s = open(dir.path(), 1 << 30);
        wait_ready(&s);
        fill(&s, n).await;
    }
    let start = Instant::now();
    let s = open(dir.path(), 1 << 30);
    // At once, most likely while the rebuild runs.
    let during = !s.disk().is_ready();
    s.purge(hard(Selector::tag("t7"))).await.unwrap();
    wait_ready(&s);
    let took = start.elapsed();
    eprintln!(
        "rebuild of {n} objects: {} ms (index rebuild alone), {:?} to ready; purge sent during it: {during}",
        s.disk_stats().rebuild_ms,
        took
    );
    assert_eq!(s.disk_stats().objects, (n - n / 10) as u64);
    for i in (0..n).step_by(97) {
        assert_eq!(has(&s, i).await, i % 10 != 7, "object {i}");
    }
    drop(s);
    let s = open(dir.path(), 1 << 30);
    wait_ready(&s);
    assert_eq!(s.disk_stats().objects, (n - n / 10) as u64);
}

#[tokio::test]
async fn a_capacity_smaller_than_the_data_evicts_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 1 << 20;
    let s = open(dir.path(), cap);
    wait_ready(&s);
    let n = 3000;
    for i in 0..n {
        s.insert(
            object(&url(i), &format!("t{} one-{i}", i % 10), &body(i)),
            s.epoch(),
        )
        .await
        .unwrap();
        if i == 100 {
            s.purge(hard(Selector::tag("t5"))).await.unwrap();
        }
    }
    assert!(s.flush(Duration::from_secs(30)));
    let st = s.disk_stats();
    assert!(
        st.bytes <= cap,
        "{} bytes on disk, capacity {cap}",
        st.bytes
    );
    assert!(st.evicted_segments > 0);
    assert!(st.objects > 0 && st.objects < n as u64);
    drop(s);
    let s = open(dir.path(), cap);
    wait_ready(&s);
    let mut served = 0;
    for i in 0..n {
        if has(&s, i).await {
            served += 1;
            assert!(i > 100 || i % 10 != 5, "object {i} was purged");
        }
    }
    assert_eq!(served, s.disk_stats().objects);
}
