//! Model-based test of the invalidation index (issue 3): random fills and random purges of
//! every selector type against the memory store; after each step, exactly the objects an
//! independent brute-force filter over all live objects matches are gone, and no others.

use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use proptest::prelude::*;
use vanish_engine::object::ObjectId;
use vanish_engine::{
    CacheConfig, CachedObject, PurgeMode, PurgeRequest, ResourceKey, Selector, Store,
};
use vanish_memory::MemoryStore;

const HOSTS: [&str; 3] = ["a.example", "b.example", "c.example:8080"];
const PATHS: [&str; 7] = [
    "/",
    "/blog/",
    "/blog/1",
    "/blog/12",
    "/blog/2",
    "/shop/x",
    "/shop/x/y",
];
const QUERIES: [Option<&str>; 4] = [None, Some("a=1"), Some("a=2"), Some("")];
const LANGS: [Option<&str>; 4] = [None, Some("en"), Some("fr"), Some("")];
const TAGS: [&str; 3] = ["t1", "t2", "t3"];

#[derive(Debug, Clone)]
struct Fill {
    host: usize,
    path: usize,
    query: usize,
    /// None: the response does not vary; Some(i): varies on Accept-Language, request had LANGS[i].
    lang: Option<usize>,
    tags: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Target {
    Url {
        host: usize,
        path: usize,
        query: Option<usize>,
    },
    Path {
        path: usize,
        query: Option<usize>,
    },
    Prefix {
        prefix: &'static str,
        host: Option<usize>,
    },
    Tag(usize),
    Host(usize),
    All,
}

#[derive(Debug, Clone)]
enum Op {
    Fill(Fill),
    Purge {
        target: Target,
        lang: Option<usize>,
        dry_run: bool,
    },
}

/// One live object, as the model sees it.
#[derive(Debug, Clone)]
struct Live {
    id: ObjectId,
    fill: Fill,
}

fn url(host: usize, path: usize, query: usize) -> String {
    match QUERIES[query] {
        None => format!("http://{}{}", HOSTS[host], PATHS[path]),
        Some(q) => format!("http://{}{}?{q}", HOSTS[host], PATHS[path]),
    }
}

fn fill_strategy() -> impl Strategy<Value = Fill> {
    (
        0..HOSTS.len(),
        0..PATHS.len(),
        0..QUERIES.len(),
        prop::option::of(0..LANGS.len()),
        prop::collection::vec(0..TAGS.len(), 0..3),
    )
        .prop_map(|(host, path, query, lang, tags)| Fill {
            host,
            path,
            query,
            lang,
            tags,
        })
}

fn target_strategy() -> impl Strategy<Value = Target> {
    prop_oneof![
        (
            0..HOSTS.len(),
            0..PATHS.len(),
            prop::option::of(0..QUERIES.len())
        )
            .prop_map(|(host, path, query)| Target::Url { host, path, query }),
        (0..PATHS.len(), prop::option::of(0..QUERIES.len()))
            .prop_map(|(path, query)| Target::Path { path, query }),
        (
            prop::sample::select(vec![
                "/", "/blog", "/blog/", "/blog/1", "/shop/", "/nothing"
            ]),
            prop::option::of(0..HOSTS.len())
        )
            .prop_map(|(prefix, host)| Target::Prefix { prefix, host }),
        (0..TAGS.len()).prop_map(Target::Tag),
        (0..HOSTS.len()).prop_map(Target::Host),
        Just(Target::All),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => fill_strategy().prop_map(Op::Fill),
        1 => (target_strategy(), prop::option::of(1..LANGS.len()), any::<bool>())
            .prop_map(|(target, lang, dry_run)| Op::Purge { target, lang, dry_run }),
    ]
}

/// The selector for a target, built through the public API.
fn selector(t: &Target, lang: Option<usize>) -> Selector {
    let s = match t {
        Target::Url { host, path, query } => match query {
            Some(q) => Selector::url(&url(*host, *path, *q)).unwrap(),
            None => Selector::url(&url(*host, *path, 0)).unwrap().any_query(),
        },
        Target::Path { path, query } => match query {
            None => Selector::path(PATHS[*path]).any_query(),
            Some(q) => match QUERIES[*q] {
                None => Selector::path(PATHS[*path]),
                Some(qs) => Selector::path(PATHS[*path]).query(qs),
            },
        },
        Target::Prefix { prefix, host } => match host {
            Some(h) => Selector::prefix(prefix).on_host(HOSTS[*h]),
            None => Selector::prefix(prefix),
        },
        Target::Tag(t) => Selector::tag(TAGS[*t]),
        Target::Host(h) => Selector::host(HOSTS[*h]),
        Target::All => Selector::all(),
    };
    match lang.and_then(|l| LANGS[l]) {
        Some(v) => s.header("accept-language", v),
        None => s,
    }
}

/// Brute force, written independently of the engine's matcher.
fn brute_matches(t: &Target, lang: Option<usize>, f: &Fill) -> bool {
    let target = match t {
        Target::Url { host, path, query } => {
            *host == f.host
                && *path == f.path
                && query.is_none_or(|q| QUERIES[q] == QUERIES[f.query])
        }
        Target::Path { path, query } => {
            *path == f.path && query.is_none_or(|q| QUERIES[q] == QUERIES[f.query])
        }
        Target::Prefix { prefix, host } => {
            PATHS[f.path].starts_with(prefix) && host.is_none_or(|h| h == f.host)
        }
        Target::Tag(t) => f.tags.contains(t),
        Target::Host(h) => *h == f.host,
        Target::All => true,
    };
    let headers = match (lang.and_then(|l| LANGS[l]), f.lang) {
        (None, _) => true,
        // An object that does not vary on the header serves every value of it.
        (Some(_), None) => true,
        (Some(want), Some(have)) => LANGS[have] == Some(want),
    };
    target && headers
}

fn object(f: &Fill) -> CachedObject {
    let key = ResourceKey::parse_url(&url(f.host, f.path, f.query)).unwrap();
    let mut req = HeaderMap::new();
    let mut res = http::Response::builder().header("cache-control", "max-age=3600");
    if let Some(l) = f.lang {
        res = res.header("vary", "Accept-Language");
        if let Some(v) = LANGS[l] {
            req.insert("accept-language", v.parse().unwrap());
        }
    }
    if !f.tags.is_empty() {
        let tags: Vec<&str> = f.tags.iter().map(|t| TAGS[*t]).collect();
        res = res.header("surrogate-key", tags.join(" "));
    }
    CachedObject::from_response(
        key,
        &req,
        res.body(Bytes::from_static(b"body")).unwrap(),
        &CacheConfig::default(),
        SystemTime::now(),
    )
    .expect("storable")
}

fn stored_ids(store: &MemoryStore, rt: &tokio::runtime::Runtime, live: &[Live]) -> Vec<ObjectId> {
    let mut ids = Vec::new();
    let mut keys: Vec<String> = live
        .iter()
        .map(|l| url(l.fill.host, l.fill.path, l.fill.query))
        .collect();
    for h in 0..HOSTS.len() {
        for p in 0..PATHS.len() {
            for q in 0..QUERIES.len() {
                keys.push(url(h, p, q));
            }
        }
    }
    keys.sort();
    keys.dedup();
    for k in keys {
        let key = ResourceKey::parse_url(&k).unwrap();
        if let Some(r) = rt.block_on(store.lookup(&key)).unwrap() {
            // What lookups can still return (hard-purged objects are dead at once and
            // unlinked in the background).
            ids.extend(r.variants.iter().filter(|o| !o.is_dead()).map(|o| o.id()));
        }
    }
    ids.sort();
    ids
}

fn same_variant(a: &Fill, b: &Fill) -> bool {
    a.host == b.host
        && a.path == b.path
        && QUERIES[a.query] == QUERIES[b.query]
        && match (a.lang, b.lang) {
            (None, None) => true,
            (Some(x), Some(y)) => LANGS[x] == LANGS[y],
            _ => false,
        }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn purges_match_exactly_what_brute_force_matches(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = MemoryStore::new(1 << 30);
        let mut live: Vec<Live> = Vec::new();
        for op in ops {
            match op {
                Op::Fill(f) => {
                    let obj = object(&f);
                    let id = obj.id();
                    rt.block_on(store.insert(obj, store.epoch())).unwrap();
                    live.retain(|l| !same_variant(&l.fill, &f));
                    live.push(Live { id, fill: f });
                }
                Op::Purge { target, lang, dry_run } => {
                    let mut req = PurgeRequest::new(vec![selector(&target, lang)]);
                    req.dry_run = dry_run;
                    req.mode = PurgeMode::Hard;
                    let expected: Vec<ObjectId> = live.iter().filter(|l| brute_matches(&target, lang, &l.fill)).map(|l| l.id).collect();
                    let report = rt.block_on(store.purge(std::sync::Arc::new(req))).unwrap();
                    prop_assert_eq!(report.matched as usize, expected.len(), "{:?} lang {:?}", target, lang);
                    if !dry_run {
                        live.retain(|l| !expected.contains(&l.id));
                    }
                }
            }
            let mut want: Vec<ObjectId> = live.iter().map(|l| l.id).collect();
            want.sort();
            prop_assert_eq!(stored_ids(&store, &rt, &live), want);
            store.sync();
            prop_assert_eq!(store.index_stats().objects, live.len());
        }
    }
}
