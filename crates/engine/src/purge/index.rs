//! The invalidation index: from a selector to the objects it matches, without a scan.
//!
//! Owns the in-memory secondary indexes over stored objects: one ordered set of
//! `(path, host name, query, id)` (serving `url`, `path` and `prefix` selectors as range scans),
//! a set of ids per host name, and a set of ids per tag. It holds references to what a store
//! keeps (an [`Entry`]), never copies of keys, tags or bodies; keeping it in step with the store
//! (insert on fill, remove on purge, eviction and expiry) is the store's job.
//!
//! Costs: `url`, `path` and `prefix` are O(log n + matched); `tag` and `host` one hash lookup
//! plus the matched; `all` is handled by the store (it swaps the index out in O(1)). An entry
//! costs about 80 bytes plus 12 per tag (see `docs/benchmarks.md`).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use super::selector::{PurgeRequest, QueryMatch, Selector, Target};
use crate::key::ResourceKey;
use crate::object::{CachedObject, ObjectId, ObjectMeta};
use crate::url::{hostname, Scheme};

/// What the index refers to: anything that exposes an object's metadata.
pub trait Entry: Clone {
    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;

    /// True when the object was hard-purged and awaits reclamation: never selected again.
    fn is_dead(&self) -> bool {
        false
    }
}

impl Entry for Arc<ObjectMeta> {
    fn meta(&self) -> &ObjectMeta {
        self
    }
}

impl Entry for Arc<CachedObject> {
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn is_dead(&self) -> bool {
        CachedObject::is_dead(self)
    }
}

/// One object in the ordered path set, ordered by path, host name, query, then id.
#[derive(Clone)]
struct ByPath {
    key: ResourceKey,
    id: ObjectId,
}

impl ByPath {
    fn parts(&self) -> (&str, &str, Option<&str>, ObjectId) {
        (
            self.key.path(),
            hostname(self.key.host()),
            self.key.query(),
            self.id,
        )
    }

    /// The smallest entry for a path, host name and query (`""` and `None` are the smallest).
    fn probe(path: &str, host: &str, query: Option<&str>) -> ByPath {
        ByPath {
            key: ResourceKey::new(Scheme::Http, host, path, query),
            id: 0,
        }
    }
}

impl PartialEq for ByPath {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.parts() == other.parts()
    }
}

impl Eq for ByPath {}

impl PartialOrd for ByPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// The index. Not thread-safe by itself: stores wrap it in a lock.
#[derive(Debug)]
pub struct Index<E = Arc<ObjectMeta>> {
    entries: HashMap<ObjectId, E>,
    by_path: BTreeSet<ByPath>,
    hosts: HashMap<Box<str>, HashSet<ObjectId>>,
    tags: HashMap<Arc<str>, Members<E>>,
}

/// The objects of one tag, with their entries (a tag purge walks them without a lookup per
/// object). Most tags name one object (`post-42`), so that one is kept inline.
#[derive(Debug)]
enum Members<E> {
    One(ObjectId, E),
    // Boxed on purpose: it keeps the common one-object tag small.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<ObjectId, E>>),
}

impl<E: Clone> Members<E> {
    fn insert(&mut self, id: ObjectId, e: &E) {
        match self {
            Members::One(x, _) if *x == id => {}
            Members::One(x, first) => {
                let map = HashMap::from([(*x, first.clone()), (id, e.clone())]);
                *self = Members::Many(Box::new(map));
            }
            Members::Many(map) => {
                map.insert(id, e.clone());
            }
        }
    }

    /// Removes `id`; true when no member remains.
    fn remove(&mut self, id: ObjectId) -> bool {
        match self {
            Members::One(x, _) => *x == id,
            Members::Many(map) => {
                map.remove(&id);
                map.is_empty()
            }
        }
    }

    fn for_each(&self, mut f: impl FnMut(ObjectId, &E)) {
        match self {
            Members::One(id, e) => f(*id, e),
            Members::Many(map) => map.iter().for_each(|(id, e)| f(*id, e)),
        }
    }
}

impl std::fmt::Debug for ByPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}#{}", self.key, self.id)
    }
}

impl<E> Default for Index<E> {
    fn default() -> Self {
        Index {
            entries: HashMap::new(),
            by_path: BTreeSet::new(),
            hosts: HashMap::new(),
            tags: HashMap::new(),
        }
    }
}

/// Counts of index entries, to prove nothing leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Objects indexed.
    pub objects: usize,
    /// Host names with at least one object.
    pub hosts: usize,
    /// Entries of the ordered path set (one per object).
    pub paths: usize,
    /// Distinct tags.
    pub tags: usize,
}

impl<E: Entry> Index<E> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes an object. Re-inserting an id replaces its previous entry.
    pub fn insert(&mut self, entry: E) {
        let meta = entry.meta();
        let id = meta.id;
        if self.entries.contains_key(&id) {
            self.remove(id);
        }
        let meta = entry.meta();
        self.by_path.insert(ByPath {
            key: meta.key.clone(),
            id,
        });
        self.hosts
            .entry(hostname(meta.key.host()).into())
            .or_default()
            .insert(id);
        for t in &meta.tags {
            match self.tags.get_mut(t) {
                Some(members) => members.insert(id, &entry),
                None => {
                    self.tags.insert(t.clone(), Members::One(id, entry.clone()));
                }
            }
        }
        self.entries.insert(id, entry);
    }

    /// Forgets an object; unknown ids are ignored. Returns its entry.
    pub fn remove(&mut self, id: ObjectId) -> Option<E> {
        let entry = self.entries.remove(&id)?;
        let meta = entry.meta();
        self.by_path.remove(&ByPath {
            key: meta.key.clone(),
            id,
        });
        let name = hostname(meta.key.host());
        if let Some(ids) = self.hosts.get_mut(name) {
            ids.remove(&id);
            if ids.is_empty() {
                self.hosts.remove(name);
            }
        }
        for t in &meta.tags {
            if self.tags.get_mut(t).is_some_and(|ids| ids.remove(id)) {
                self.tags.remove(t);
            }
        }
        Some(entry)
    }

    /// The entry of an indexed object.
    pub fn get(&self, id: ObjectId) -> Option<&E> {
        self.entries.get(&id)
    }

    /// Number of indexed objects (including dead ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry counts of every structure.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            objects: self.entries.len(),
            hosts: self.hosts.len(),
            paths: self.by_path.len(),
            tags: self.tags.len(),
        }
    }

    /// Every indexed entry (for `all`, tests and reclamation).
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.entries.values()
    }

    /// Entries of the ordered path set from `from`, while `keep` holds.
    fn scan<'a>(
        &'a self,
        from: ByPath,
        keep: impl Fn(&ByPath) -> bool + 'a,
    ) -> impl Iterator<Item = ObjectId> + 'a {
        self.by_path
            .range((Bound::Included(from), Bound::Unbounded))
            .take_while(move |e| keep(e))
            .map(|e| e.id)
    }

    /// Ids that may match `sel`, and whether they match exactly (else each must still be
    /// checked with [`Selector::matches`]: ports, header filters).
    fn candidates(&self, sel: &Selector, out: &mut Vec<ObjectId>) -> bool {
        let exact_target = match &sel.target {
            Target::Url { host, path, query } => {
                let name = hostname(host);
                match query {
                    QueryMatch::Any => {
                        out.extend(self.scan(ByPath::probe(path, name, None), |e| {
                            e.key.path() == path && hostname(e.key.host()) == name
                        }))
                    }
                    QueryMatch::Exact(q) => {
                        out.extend(self.scan(ByPath::probe(path, name, q.as_deref()), |e| {
                            e.key.path() == path
                                && hostname(e.key.host()) == name
                                && e.key.query() == q.as_deref()
                        }))
                    }
                }
                false // the port is checked by `matches`
            }
            Target::Path { path, query } => {
                out.extend(self.scan(ByPath::probe(path, "", None), |e| e.key.path() == path));
                matches!(query, QueryMatch::Any)
            }
            Target::Prefix { prefix, host } => {
                out.extend(self.scan(ByPath::probe(prefix, "", None), |e| {
                    e.key.path().starts_with(prefix.as_str())
                }));
                host.is_none()
            }
            Target::Tag(t) => {
                if let Some(members) = self.tags.get(t.as_str()) {
                    members.for_each(|id, _| out.push(id));
                }
                true
            }
            Target::Host(h) => {
                if let Some(ids) = self.hosts.get(hostname(h)) {
                    out.extend(ids.iter().copied());
                }
                hostname(h) == h
            }
            Target::All => {
                out.extend(self.entries.keys().copied());
                true
            }
        };
        exact_target && sel.headers.is_empty()
    }

    /// Calls `f` once for each live object a purge request matches (exactly), without
    /// cloning anything; returns how many matched.
    pub fn for_each_match(&self, req: &PurgeRequest, mut f: impl FnMut(&E)) -> usize {
        let mut ids = Vec::new();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let single = req.selectors.len() == 1;
        let mut n = 0;
        for sel in &req.selectors {
            if let (Target::Tag(t), true) = (&sel.target, sel.headers.is_empty()) {
                // The common group purge: walk the tag's members, no lookup per object.
                if let Some(members) = self.tags.get(t.as_str()) {
                    members.for_each(|id, entry| {
                        if !entry.is_dead() && (single || seen.insert(id)) {
                            n += 1;
                            f(entry);
                        }
                    });
                }
                continue;
            }
            ids.clear();
            let exact = self.candidates(sel, &mut ids);
            for id in &ids {
                let Some(entry) = self.entries.get(id) else {
                    continue;
                };
                if entry.is_dead() || !(exact || sel.matches(entry.meta())) {
                    continue;
                }
                if single || seen.insert(*id) {
                    n += 1;
                    f(entry);
                }
            }
        }
        n
    }

    /// The live objects a purge request matches (exactly), without duplicates.
    pub fn select(&self, req: &PurgeRequest) -> Vec<E> {
        let mut out = Vec::new();
        self.for_each_match(req, |e| out.push(e.clone()));
        out
    }

    /// How many live objects a purge request matches (a dry run).
    pub fn count(&self, req: &PurgeRequest) -> usize {
        self.for_each_match(req, |_| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: ObjectId, url: &str, tags: &[&str]) -> Arc<ObjectMeta> {
        Arc::new(ObjectMeta {
            id,
            key: ResourceKey::parse_url(url).unwrap(),
            vary_values: vec![],
            tags: tags.iter().map(|t| Arc::<str>::from(*t)).collect(),
        })
    }

    fn ids(idx: &Index, sel: Selector) -> Vec<ObjectId> {
        let mut v: Vec<_> = idx
            .select(&PurgeRequest::new(vec![sel]))
            .iter()
            .map(|m| m.id)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn selects_by_each_target() {
        let mut idx = Index::new();
        idx.insert(meta(1, "http://a/blog/1", &["post-1", "blog"]));
        idx.insert(meta(2, "http://a/blog/1?page=2", &["blog"]));
        idx.insert(meta(3, "http://b/blog/1", &[]));
        idx.insert(meta(4, "http://a/blogger", &[]));
        idx.insert(meta(5, "http://a/about", &[]));
        assert_eq!(ids(&idx, Selector::url("http://a/blog/1").unwrap()), [1]);
        assert_eq!(
            ids(&idx, Selector::url("http://a/blog/1").unwrap().any_query()),
            [1, 2]
        );
        assert_eq!(ids(&idx, Selector::path("/blog/1")), [1, 3]);
        assert_eq!(ids(&idx, Selector::path("/blog/1").query("page=2")), [2]);
        assert_eq!(ids(&idx, Selector::prefix("/blog/")), [1, 2, 3]);
        assert_eq!(ids(&idx, Selector::prefix("/blog")), [1, 2, 3, 4]);
        assert_eq!(ids(&idx, Selector::prefix("/blog/").on_host("b")), [3]);
        assert_eq!(ids(&idx, Selector::tag("blog")), [1, 2]);
        assert_eq!(ids(&idx, Selector::host("a")), [1, 2, 4, 5]);
        idx.insert(meta(6, "http://a:8080/blog/1", &[]));
        assert_eq!(
            ids(&idx, Selector::host("a")),
            [1, 2, 4, 5, 6],
            "no port: every port"
        );
        assert_eq!(ids(&idx, Selector::host("a:8080")), [6]);
        assert_eq!(
            ids(&idx, Selector::url("http://a:8080/blog/1").unwrap()),
            [6]
        );
        assert_eq!(ids(&idx, Selector::prefix("/blog/").on_host("a:8080")), [6]);
        assert_eq!(ids(&idx, Selector::all()), [1, 2, 3, 4, 5, 6]);
        let union = idx.select(&PurgeRequest::new(vec![
            Selector::tag("blog"),
            Selector::path("/blog/1"),
        ]));
        assert_eq!(
            union.len(),
            4,
            "blog tag (1, 2) and /blog/1 on every host (1, 3, 6)"
        );
    }

    #[test]
    fn removal_leaves_nothing_behind() {
        let mut idx = Index::new();
        for i in 0..100 {
            idx.insert(meta(
                i,
                &format!("http://h{}/p/{}?q={}", i % 3, i % 7, i),
                &["t", "u"],
            ));
        }
        for i in 0..100 {
            assert!(idx.remove(i).is_some());
        }
        assert!(idx.remove(0).is_none());
        assert_eq!(idx.stats(), IndexStats::default());
    }
}
