//! Real `redis-server` processes for tests and benchmarks: one standalone server, a
//! three-shard Cluster, or a server watched by a Sentinel, on free loopback ports, killed when
//! dropped.
//!
//! Built only with the `testing` feature (this crate's tests and benches, and the proxy's
//! Redis tests, turn it on through their dev-dependencies): it does not ship in the library.
//!
//! Owns nothing but those child processes and their scratch directories. When `redis-server`
//! (or `redis-cli`, for the Cluster) is missing it panics with the way to install it: these
//! tests never pass silently without a server.
//!
//! Ports are chosen at run time, and never one this process handed out before. Another process
//! can still take a port between the choice and the server's bind: a server that exits at start
//! is started again on another free port (a restart, which must keep its port, retries that
//! port for a while), and a server counts as started only once the process answering on its
//! port is the one spawned for it (its `INFO server` names the child's pid), so no test ever
//! talks to another test's server. Every wait has a deadline and fails saying what it waited
//! for, with the end of the server's log; a process is killed on every failure path too.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Every port [`free_port`] returned in this process (and the Cluster bus ports beside them).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How long a server may take to answer after it was spawned (the machine may be busy).
const START_LIMIT: Duration = Duration::from_secs(30);

/// Servers that exit at start (their port was taken meanwhile) are tried this many times, each
/// on another free port.
const START_ATTEMPTS: usize = 10;

const INSTALL: &str = "redis-server is not installed. Run scripts/test.sh (it installs redis-server and redis-tools with apt-get), or `apt-get install -y redis-server redis-tools`, then run the tests again";

fn require(bin: &str) {
    let found = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{bin} not found: {INSTALL}");
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "vanish-redis-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// A free loopback port (and, for Cluster nodes, its bus port `port + 10000` too), never one
/// returned before in this process.
///
/// Free when chosen only: another process may bind it before the server does, which is why
/// servers that exit at start are started again on another port.
pub fn free_port(with_bus: bool) -> u16 {
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("addr").port();
        if port > 55_000 && with_bus {
            continue;
        }
        let bus = with_bus.then(|| port + 10_000);
        // Held (like `l`) until the choice is recorded.
        let _bus = match bus.map(|b| TcpListener::bind(("127.0.0.1", b))) {
            Some(Err(_)) => continue,
            other => other,
        };
        let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if taken.contains(&port) || bus.is_some_and(|b| taken.contains(&b)) {
            continue;
        }
        taken.insert(port);
        taken.extend(bus);
        return port;
    }
    panic!("no free loopback port in 1000 tries");
}

/// Sends one inline command and returns the raw reply, read to its end (tests only). `None`
/// when nothing answers, or the connection ends or stalls (10 s) before a whole reply.
pub fn raw_command(port: u16, cmd: &str) -> Option<String> {
    command(port, cmd, Duration::from_secs(10))
}

/// [`raw_command`], giving up when the reply stalls for `stall`.
fn command(port: u16, cmd: &str, stall: Duration) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(stall)).ok()?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while resp_end(&reply, 0).is_none() {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

/// Where the RESP value starting at `at` ends, if `buf` holds all of it.
fn resp_end(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let line = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
    let after = line + 2;
    let count = || -> Option<i64> { std::str::from_utf8(&buf[at + 1..line]).ok()?.parse().ok() };
    match kind {
        b'$' => match count()? {
            n if n < 0 => Some(after),
            n => {
                let end = after + n as usize + 2;
                (buf.len() >= end).then_some(end)
            }
        },
        b'*' => {
            let mut pos = after;
            for _ in 0..count()?.max(0) {
                pos = resp_end(buf, pos)?;
            }
            Some(pos)
        }
        // Simple strings, errors, integers: one line.
        _ => Some(after),
    }
}

/// The last lines of a server's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!("last lines of {}:\n{tail}", log.display())
}

/// Waits until the process spawned as `child` answers on `port`.
///
/// `Err` when it exited first (most often because its port was taken meanwhile: the caller
/// starts it again); panics, killing it, when it neither answers nor exits within
/// [`START_LIMIT`].
fn wait_started(port: u16, child: &mut Child, log: &Path, what: &str) -> Result<(), String> {
    let ours = format!("process_id:{}", child.id());
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} on port {port} exited at start ({status}); {}",
                log_tail(log)
            ));
        }
        // Not just any PONG: another process's server may hold the port (and a process that
        // accepts but never answers must not stall this loop for long).
        let info = command(port, "INFO server", Duration::from_secs(1));
        if info.is_some_and(|r| r.lines().any(|l| l.trim() == ours)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} on port {port} did not answer within {START_LIMIT:?} (killed); {}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end, its output in `out`; kills it and panics after `limit`.
fn run_bounded(mut cmd: Command, out: &Path, limit: Duration, what: &str) -> (ExitStatus, String) {
    let file = std::fs::File::create(out).expect("output file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("output file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}. {INSTALL}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?} (killed); it printed:\n{}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(out).unwrap_or_default())
}

/// One `redis-server` process.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    cluster: bool,
}

impl RedisServer {
    /// Starts a standalone server on a free port (no persistence).
    pub fn start() -> RedisServer {
        Self::start_fresh(false)
    }

    /// Starts a server on a free port, on another one each time it exits at start.
    fn start_fresh(cluster: bool) -> RedisServer {
        require("redis-server");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut s = RedisServer {
                port: free_port(cluster),
                child: None,
                dir: scratch(),
                cluster,
            };
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => failures.push(e), // `s` goes, and its directory with it
            }
        }
        panic!(
            "redis-server did not start in {START_ATTEMPTS} attempts, each on another free port:\n{}",
            failures.join("\n")
        );
    }

    fn log(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// Spawns the process and waits until it answers; `Err` when it exited at start.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
        ])
        .arg(&self.dir)
        .arg("--logfile")
        .arg(self.log());
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                // Generous: a node stalled on a busy machine must not be declared failed (no
                // test fails a Cluster node over).
                "--cluster-node-timeout",
                "15000",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server: {e}. {INSTALL}"));
        wait_started(self.port, &mut child, &self.log(), "redis-server")?;
        self.child = Some(child);
        Ok(())
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty (a restart without persistence).
    ///
    /// Clients reconnect to that port, so it cannot move: if another process took it
    /// meanwhile, the start is retried for 20 s, then this panics saying so.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join("nodes.conf"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("redis-server restart on port {} failed; retrying: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!(
                    "redis-server could not start again on port {} for 20 s (another process holds the port?): {e}",
                    self.port
                ),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A three-shard Redis Cluster (three primaries, no replicas).
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them with `redis-cli --cluster create`.
    pub fn start() -> RedisCluster {
        require("redis-server");
        require("redis-cli");
        // A panic on the way kills the nodes already started (they are dropped).
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_fresh(true)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]).args(&addrs).args([
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]);
        let out = nodes[0].dir.join("cluster-create.log");
        let limit = Duration::from_secs(60);
        let (status, printed) = run_bounded(create, &out, limit, "redis-cli --cluster create");
        assert!(
            status.success(),
            "redis-cli --cluster create failed ({status}): {printed}"
        );
        let deadline = Instant::now() + limit;
        loop {
            let ok = nodes.iter().all(|n| {
                raw_command(n.port, "CLUSTER INFO").is_some_and(|r| r.contains("cluster_state:ok"))
            });
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok within {limit:?}; {}",
                log_tail(&nodes[0].log())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    /// `127.0.0.1:PORT` of every node.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }
}

/// A standalone server watched by one Sentinel (`redis-server --sentinel`).
pub struct RedisSentinel {
    /// The watched primary.
    pub primary: RedisServer,
    /// The Sentinel's port.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts a primary and a Sentinel monitoring it as `vanish-primary`.
    pub fn start() -> RedisSentinel {
        let primary = RedisServer::start();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port(false);
            let dir = scratch();
            let conf = dir.join("sentinel.conf");
            let log = dir.join("sentinel.log");
            // A long down-after: a primary slow to answer on a busy machine is not "down".
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\nlogfile {}\nsentinel monitor vanish-primary 127.0.0.1 {} 1\nsentinel down-after-milliseconds vanish-primary 30000\n",
                    dir.display(),
                    log.display(),
                    primary.port
                ),
            )
            .expect("sentinel config");
            let mut child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run redis-server --sentinel: {e}. {INSTALL}"));
            match wait_started(port, &mut child, &log, "redis-server --sentinel") {
                Ok(()) => {
                    return RedisSentinel {
                        primary,
                        port,
                        child: Some(child),
                        dir,
                    }
                }
                Err(e) => {
                    failures.push(e);
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        panic!(
            "the Sentinel did not start in {START_ATTEMPTS} attempts, each on another free port:\n{}",
            failures.join("\n")
        );
    }

    /// `redis-sentinel://127.0.0.1:PORT?sentinelServiceName=vanish-primary`.
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName=vanish-primary",
            self.port
        )
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
