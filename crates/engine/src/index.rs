//! The invalidation index: from a selector to the objects it matches, without a scan.
//!
//! Owns the in-memory secondary indexes (by host and ordered path, by path across hosts, by
//! tag) over [`ObjectMeta`]. It holds metadata only, never bodies; keeping it in step with the
//! store (insert on fill, remove on purge, eviction and expiry) is the store's job.
//!
//! Costs: `url` is two hash lookups; `path` one lookup in an ordered map; `prefix` a range
//! scan over the matching paths only (O(log n + matched)); `tag` one hash lookup; `host` one
//! lookup then its paths. `all` is handled by the store (it swaps the index out in O(1)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use crate::key::hostname;
use crate::object::{ObjectId, ObjectMeta};
use crate::selector::{PurgeRequest, QueryMatch, Selector, Target};

/// Ids of the objects (variants) of one path, by query string.
type QueryMap = HashMap<Box<str>, Vec<ObjectId>>;

/// The index. Not thread-safe by itself: stores wrap it in a lock.
#[derive(Default, Debug)]
pub struct Index {
    metas: HashMap<ObjectId, Arc<ObjectMeta>>,
    /// host name (without port) -> ordered path -> query -> ids.
    hosts: HashMap<Box<str>, BTreeMap<Box<str>, QueryMap>>,
    /// ordered path (all hosts) -> query -> ids.
    paths: BTreeMap<Box<str>, QueryMap>,
    /// tag -> ids.
    tags: HashMap<Box<str>, HashSet<ObjectId>>,
}

/// Counts of index entries, to prove nothing leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Objects indexed.
    pub objects: usize,
    /// Hosts with at least one object.
    pub hosts: usize,
    /// Distinct paths (all hosts).
    pub paths: usize,
    /// Distinct tags.
    pub tags: usize,
}

fn query_key(q: Option<&str>) -> Box<str> {
    match q {
        None => "".into(),
        Some(q) => format!("?{q}").into_boxed_str(),
    }
}

fn add(map: &mut QueryMap, q: &str, id: ObjectId) {
    map.entry(q.into()).or_default().push(id);
}

/// Removes `id` from `map[q]`; true when the map became empty.
fn del(map: &mut QueryMap, q: &str, id: ObjectId) -> bool {
    if let Some(ids) = map.get_mut(q) {
        ids.retain(|x| *x != id);
        if ids.is_empty() {
            map.remove(q);
        }
    }
    map.is_empty()
}

fn all_ids(map: &QueryMap, out: &mut Vec<ObjectId>) {
    for ids in map.values() {
        out.extend_from_slice(ids);
    }
}

/// The ids of one path's objects that a query rule selects.
fn query_ids(map: &QueryMap, query: &QueryMatch, out: &mut Vec<ObjectId>) {
    match query {
        QueryMatch::Any => all_ids(map, out),
        QueryMatch::Exact(q) => {
            if let Some(ids) = map.get(&*query_key(q.as_deref())) {
                out.extend_from_slice(ids);
            }
        }
    }
}

fn prefix_range<'a, V>(
    map: &'a BTreeMap<Box<str>, V>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a Box<str>, &'a V)> + 'a {
    map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .take_while(move |(p, _)| p.starts_with(prefix))
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes an object. Re-inserting an id replaces its previous entry.
    pub fn insert(&mut self, meta: Arc<ObjectMeta>) {
        if self.metas.contains_key(&meta.id) {
            self.remove(meta.id);
        }
        let id = meta.id;
        let key = &meta.key;
        let q = query_key(key.query());
        let host_paths = self.hosts.entry(hostname(key.host()).into()).or_default();
        add(host_paths.entry(key.path().into()).or_default(), &q, id);
        add(self.paths.entry(key.path().into()).or_default(), &q, id);
        for t in &meta.tags {
            self.tags.entry((**t).into()).or_default().insert(id);
        }
        self.metas.insert(id, meta);
    }

    /// Forgets an object; unknown ids are ignored. Returns its metadata.
    pub fn remove(&mut self, id: ObjectId) -> Option<Arc<ObjectMeta>> {
        let meta = self.metas.remove(&id)?;
        let key = &meta.key;
        let q = query_key(key.query());
        let name = hostname(key.host());
        if let Some(host_paths) = self.hosts.get_mut(name) {
            if let Some(qm) = host_paths.get_mut(key.path()) {
                if del(qm, &q, id) {
                    host_paths.remove(key.path());
                }
            }
            if host_paths.is_empty() {
                self.hosts.remove(name);
            }
        }
        if let Some(qm) = self.paths.get_mut(key.path()) {
            if del(qm, &q, id) {
                self.paths.remove(key.path());
            }
        }
        for t in &meta.tags {
            if let Some(ids) = self.tags.get_mut(&**t) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.tags.remove(&**t);
                }
            }
        }
        Some(meta)
    }

    /// The metadata of an indexed object.
    pub fn get(&self, id: ObjectId) -> Option<&Arc<ObjectMeta>> {
        self.metas.get(&id)
    }

    /// Number of indexed objects.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Entry counts of every structure.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            objects: self.metas.len(),
            hosts: self.hosts.len(),
            paths: self.paths.len(),
            tags: self.tags.len(),
        }
    }

    /// Every indexed object's metadata (for `all`, tests and reclamation).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ObjectMeta>> {
        self.metas.values()
    }

    /// Ids that may match `sel` (a superset only where the header filter or a query rule
    /// must still be checked against the metadata).
    fn candidates(&self, sel: &Selector, out: &mut Vec<ObjectId>) {
        match &sel.target {
            Target::Url { host, path, query } => {
                let paths = self.hosts.get(hostname(host));
                if let Some(qm) = paths.and_then(|p| p.get(path.as_str())) {
                    query_ids(qm, query, out);
                }
            }
            Target::Path { path, query } => {
                if let Some(qm) = self.paths.get(path.as_str()) {
                    query_ids(qm, query, out);
                }
            }
            Target::Prefix { prefix, host } => match host {
                Some(h) => {
                    if let Some(paths) = self.hosts.get(hostname(h)) {
                        for (_, qm) in prefix_range(paths, prefix) {
                            all_ids(qm, out);
                        }
                    }
                }
                None => {
                    for (_, qm) in prefix_range(&self.paths, prefix) {
                        all_ids(qm, out);
                    }
                }
            },
            Target::Tag(t) => {
                if let Some(ids) = self.tags.get(t.as_str()) {
                    out.extend(ids.iter().copied());
                }
            }
            Target::Host(h) => {
                if let Some(paths) = self.hosts.get(hostname(h)) {
                    for qm in paths.values() {
                        all_ids(qm, out);
                    }
                }
            }
            Target::All => out.extend(self.metas.keys().copied()),
        }
    }

    /// The objects a purge request matches (exactly: each candidate is checked with
    /// [`Selector::matches`]), without duplicates.
    pub fn select(&self, req: &PurgeRequest) -> Vec<Arc<ObjectMeta>> {
        let mut ids = Vec::new();
        let mut out: Vec<Arc<ObjectMeta>> = Vec::new();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        for sel in &req.selectors {
            ids.clear();
            self.candidates(sel, &mut ids);
            for id in &ids {
                if let Some(meta) = self.metas.get(id) {
                    if sel.matches(meta) && (req.selectors.len() == 1 || seen.insert(*id)) {
                        out.push(meta.clone());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ResourceKey;

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
