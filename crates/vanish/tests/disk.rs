//! The disk tier end to end: the real `vanish` binary over a real folder, a real origin,
//! stopped with SIGTERM or killed with SIGKILL, restarted with the origin gone.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, get_with, send, Reply, Seen, TestOrigin};

const LIMIT: Duration = Duration::from_secs(60);

/// FNV-1a: the origin's own checksum of each body, sent in `x-body-sum`.
fn sum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// A page whose body names its host, URL and language, `size` bytes long, with its checksum;
/// varies on `Accept-Language`, tagged `path:<path>` (and `blog` under `/blog/`).
fn page(s: &Seen, size: usize) -> Reply {
    let h = |n: &str| {
        s.headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let path = s.path_and_query.split('?').next().unwrap().to_owned();
    let mut body = format!(
        "{}{} {} |",
        h("host"),
        s.path_and_query,
        h("accept-language")
    )
    .into_bytes();
    let mut i = 0u8;
    while body.len() < size {
        body.push(b'a' + i % 26);
        i = i.wrapping_add(7);
    }
    let mut tags = vec![format!("path:{path}")];
    if path.starts_with("/blog/") {
        tags.push("blog".into());
    }
    Reply::ok(body.clone())
        .header("cache-control", "public, max-age=600")
        .header("vary", "Accept-Language")
        .header("surrogate-key", &tags.join(" "))
        .header("x-body-sum", &sum(&body))
}

/// A `vanish serve` process.
struct Node {
    child: Child,
    proxy: String,
    admin: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(dir: &Path, origin: &str, capacity: &str, admit: &str) -> Node {
        let config = dir.join("vanish.toml");
        std::fs::write(&config, format!("[disk]\nadmit = \"{admit}\"\n")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
            .args(["serve", "--upstream", origin, "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0", "--disk-capacity", capacity])
            .arg("--disk-path")
            .arg(dir.join("cache"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let field = |name: &str| {
                    line.split(name)
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .map(str::to_owned)
                };
                if let (Some(p), Some(a)) = (field("proxy_addr="), field("admin_addr=")) {
                    let _ = tx.send((p, a));
                }
                lines.lock().unwrap().push(line);
            }
        });
        let (proxy, admin) = rx
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("vanish did not start: {:?}", log.lock().unwrap()));
        Node {
            child,
            proxy: format!("http://{proxy}"),
            admin: format!("http://{admin}"),
            log,
        }
    }

    fn logged(&self, what: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(what))
    }

    async fn rebuilt(&self) {
        eventually("the disk index is rebuilt", LIMIT, || async {
            self.logged("index rebuilt")
        })
        .await;
    }

    async fn get(&self, host: &str, path: &str, lang: &str) -> common::Got {
        get_with(
            &format!("{}{path}", self.proxy),
            &[("host", host), ("accept-language", lang)],
        )
        .await
    }

    async fn metric(&self, name: &str) -> f64 {
        let m = send("GET", &format!("{}/metrics", self.admin), &[], "").await;
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    async fn purge(&self, json: &str) -> u64 {
        let r = send(
            "POST",
            &format!("{}/invalidate", self.admin),
            &[("content-type", "application/json")],
            json,
        )
        .await;
        assert_eq!(r.status, 200, "{json}: {}", r.body);
        r.json()["matched"].as_u64().unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean exit: {status:?}");
        assert!(!self.logged("panicked"));
    }

    /// SIGKILL at once.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        assert!(!self.logged("panicked"));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Obj = (&'static str, String, &'static str);

/// A purge's JSON, and which objects it must match.
type Step = (&'static str, Box<dyn Fn(&Obj) -> bool>);

fn objects() -> Vec<Obj> {
    let mut out = Vec::new();
    for host in ["a.example", "b.example"] {
        for p in [
            "/blog/1", "/blog/2", "/blog/3", "/p/1", "/p/2?x=1", "/p/2", "/p/3",
        ] {
            for lang in ["en", "fr"] {
                out.push((host, p.to_owned(), lang));
            }
        }
    }
    out
}

/// Checks a response is the origin's page for that object, whole.
fn sound(g: &common::Got, o: &Obj) {
    assert_eq!(g.status, 200, "{o:?}");
    let prefix = format!("{}{} {} |", o.0, o.1, o.2);
    assert!(
        g.body.starts_with(&prefix),
        "{o:?}: another object's bytes: {:.60}",
        g.body
    );
    assert_eq!(
        g.header("x-body-sum").unwrap(),
        sum(g.body.as_bytes()),
        "{o:?}: body intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_sigterm_restart_every_object_a_hit_then_each_selector_purges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let origin = TestOrigin::start(|s, _| page(s, 3000)).await;
    let all = objects();
    let node = Node::start(dir.path(), &origin.url(), "64MiB", "second");
    let mut first = Vec::new();
    for o in &all {
        let g = node.get(o.0, &o.1, o.2).await;
        sound(&g, o);
        // The second request admits it to disk.
        let again = node.get(o.0, &o.1, o.2).await;
        assert!(again.is_hit(), "{o:?}: {}", again.cache_status());
        first.push(g);
    }
    eventually("every object on disk", LIMIT, || async {
        node.metric("vanish_disk_objects").await == all.len() as f64
    })
    .await;
    node.terminate();
    let _hold = origin.stop_and_hold().await;

    let node = Node::start(dir.path(), &origin.url(), "64MiB", "second");
    node.rebuilt().await;
    for (o, before) in all.iter().zip(&first) {
        let g = node.get(o.0, &o.1, o.2).await;
        assert!(g.is_hit(), "{o:?} after restart: {}", g.cache_status());
        assert_eq!(g.body, before.body, "{o:?}: identical bytes");
        for h in [
            "content-type",
            "x-body-sum",
            "vary",
            "cache-control",
            "content-length",
        ] {
            assert_eq!(g.header(h), before.header(h), "{o:?}: header {h}");
        }
    }
    // Tags came back with the objects: a dry run by tag counts them.
    let blog = all.iter().filter(|o| o.1.starts_with("/blog/")).count() as u64;
    assert_eq!(
        node.purge(r#"{"type":"tag","tag":"blog","dry_run":true}"#)
            .await,
        blog
    );

    let mut live: BTreeSet<usize> = (0..all.len()).collect();
    let steps: Vec<Step> = vec![
        (
            r#"{"type":"url","url":"http://a.example/p/1","headers":{"accept-language":"fr"}}"#,
            Box::new(|o: &Obj| o.0 == "a.example" && o.1 == "/p/1" && o.2 == "fr"),
        ),
        (
            r#"{"type":"url","url":"http://b.example/p/1"}"#,
            Box::new(|o: &Obj| o.0 == "b.example" && o.1 == "/p/1"),
        ),
        (
            r#"{"type":"path","path":"/p/2","any_query":true}"#,
            Box::new(|o: &Obj| o.1.starts_with("/p/2")),
        ),
        (
            r#"{"type":"prefix","prefix":"/blog/","host":"a.example"}"#,
            Box::new(|o: &Obj| o.0 == "a.example" && o.1.starts_with("/blog/")),
        ),
        (
            r#"{"type":"tag","tag":"path:/p/3"}"#,
            Box::new(|o: &Obj| o.1 == "/p/3"),
        ),
        (
            r#"{"type":"host","host":"b.example"}"#,
            Box::new(|o: &Obj| o.0 == "b.example"),
        ),
        (r#"{"type":"all"}"#, Box::new(|_: &Obj| true)),
    ];
    for (json, matches) in steps {
        let expect: Vec<usize> = live.iter().copied().filter(|&i| matches(&all[i])).collect();
        assert!(!expect.is_empty(), "{json} names something still stored");
        assert_eq!(node.purge(json).await, expect.len() as u64, "{json}");
        for i in &expect {
            live.remove(i);
        }
        for (i, o) in all.iter().enumerate() {
            let g = node.get(o.0, &o.1, o.2).await;
            assert_eq!(
                g.is_hit(),
                live.contains(&i),
                "after {json}: {o:?} {}",
                g.cache_status()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_nothing_torn_or_mixed_and_the_index_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let origin = TestOrigin::start(|s, _| {
        let n: usize = s
            .path_and_query
            .trim_start_matches("/o/")
            .parse()
            .unwrap_or(1);
        page(s, 500 + (n * 7919) % 60_000)
    })
    .await;
    let node = Node::start(dir.path(), &origin.url(), "256MiB", "first");
    let urls: Vec<Obj> = (0..300)
        .map(|i| {
            (
                if i % 2 == 0 { "a.example" } else { "b.example" },
                format!("/o/{i}"),
                "en",
            )
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4 {
        let (urls, stop, proxy) = (urls.clone(), stop.clone(), node.proxy.clone());
        load.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let o = &urls[(i * 37) % urls.len()];
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    get_with(
                        &format!("{proxy}{}", o.1),
                        &[("host", o.0), ("accept-language", o.2)],
                    ),
                )
                .await;
                i += 1;
            }
        }));
    }
    eventually("a part of the objects on disk", LIMIT, || async {
        node.metric("vanish_disk_objects").await >= 100.0
    })
    .await;
    node.kill9(); // mid-load, writes in flight
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    let _hold = origin.stop_and_hold().await;

    let node = Node::start(dir.path(), &origin.url(), "256MiB", "first");
    node.rebuilt().await;
    let count = |node: &Node| {
        let admin = node.admin.clone();
        async move {
            let mut n = 0;
            for h in ["a.example", "b.example"] {
                let r = send(
                    "POST",
                    &format!("{admin}/invalidate"),
                    &[("content-type", "application/json")],
                    &format!(r#"{{"type":"host","host":"{h}","dry_run":true}}"#),
                )
                .await;
                n += r.json()["matched"].as_u64().unwrap();
            }
            n
        }
    };
    let indexed = count(&node).await;
    assert!(
        indexed >= 100,
        "what was on disk before the kill is back: {indexed}"
    );
    let mut served = 0;
    for o in &urls {
        let g = node.get(o.0, &o.1, o.2).await;
        if g.status == 200 {
            assert!(g.is_hit(), "{o:?}: the origin is down, so a hit");
            sound(&g, o);
            served += 1;
        }
    }
    assert_eq!(served, indexed, "the index holds exactly what is served");
    assert_eq!(
        count(&node).await,
        indexed,
        "objects in both tiers count once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_acknowledged_then_kill9_at_once_stays_purged() {
    let dir = tempfile::tempdir().unwrap();
    let origin = TestOrigin::start(|s, _| page(s, 2000)).await;
    let all = objects();
    let node = Node::start(dir.path(), &origin.url(), "64MiB", "first");
    for o in &all {
        sound(&node.get(o.0, &o.1, o.2).await, o);
    }
    eventually("every object on disk", LIMIT, || async {
        node.metric("vanish_disk_objects").await == all.len() as f64
    })
    .await;
    let tagged = all.iter().filter(|o| o.1.starts_with("/blog/")).count() as u64;
    assert_eq!(node.purge(r#"{"type":"tag","tag":"blog"}"#).await, tagged);
    node.kill9();
    let _hold = origin.stop_and_hold().await;
    let node = Node::start(dir.path(), &origin.url(), "64MiB", "first");
    node.rebuilt().await;
    for o in &all {
        let g = node.get(o.0, &o.1, o.2).await;
        if o.1.starts_with("/blog/") {
            assert!(
                !g.is_hit() && g.status != 200,
                "{o:?} was purged: {}",
                g.cache_status()
            );
        } else {
            assert!(g.is_hit(), "{o:?}: {}", g.cache_status());
            sound(&g, o);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_smaller_than_the_data_keeps_serving_and_purges_hold() {
    let dir = tempfile::tempdir().unwrap();
    let origin = TestOrigin::start(|s, _| page(s, 40_000)).await;
    let node = Node::start(dir.path(), &origin.url(), "1MiB", "first");
    let urls: Vec<Obj> = (0..120)
        .map(|i| ("a.example", format!("/blog/{i}"), "en"))
        .collect();
    for (i, o) in urls.iter().enumerate() {
        sound(&node.get(o.0, &o.1, o.2).await, o);
        if i == 60 {
            // Everything so far under /blog/ carries the tag.
            assert!(node.purge(r#"{"type":"tag","tag":"blog"}"#).await > 0);
        }
    }
    eventually("the disk evicted its oldest segments", LIMIT, || async {
        node.metric("vanish_disk_evicted_segments_total").await > 0.0
    })
    .await;
    assert!(node.metric("vanish_disk_bytes").await <= (1 << 20) as f64);
    node.terminate();
    let _hold = origin.stop_and_hold().await;
    let node = Node::start(dir.path(), &origin.url(), "1MiB", "first");
    node.rebuilt().await;
    let mut served = 0;
    for (i, o) in urls.iter().enumerate() {
        let g = node.get(o.0, &o.1, o.2).await;
        if g.is_hit() {
            assert!(i > 60, "{o:?} was purged before it could be evicted");
            sound(&g, o);
            served += 1;
        }
    }
    assert!(served > 0, "the newest objects survive on the small disk");
}

#[test]
fn bad_disk_settings_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--disk-capacity".into(), "1GiB".into()],
            "needs --disk-path",
        ),
        (
            vec![
                "--disk-path".into(),
                dir.path().display().to_string(),
                "--disk-capacity".into(),
                "10".into(),
            ],
            "at least 1MiB",
        ),
        (
            vec![
                "--disk-path".into(),
                dir.path().display().to_string(),
                "--disk-capacity".into(),
                "lots".into(),
            ],
            "--disk-capacity",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_vanish"))
            .args(["serve", "--upstream", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
}
