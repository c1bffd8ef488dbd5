//! Real `redis-server` processes for tests and benchmarks: one standalone server, a
//! three-shard Cluster, or a server watched by a Sentinel, on free loopback ports, killed when
//! dropped.
//!
//! Owns nothing but those child processes and their scratch directories. When `redis-server`
//! (or `redis-cli`, for the Cluster) is missing it panics with the way to install it: these
//! tests never pass silently without a server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

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

/// A free loopback port (and, for Cluster nodes, its bus port `port + 10000` too).
pub fn free_port(with_bus: bool) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("addr").port();
        if port > 55_000 && with_bus {
            continue;
        }
        if with_bus && TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
            continue;
        }
        return port;
    }
    panic!("no free loopback port");
}

/// Sends one inline command and returns the raw reply (tests only).
pub fn raw_command(port: u16, cmd: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn wait_ping(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if raw_command(port, "PING").is_some_and(|r| r.starts_with("+PONG")) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("redis-server on port {port} exited at start ({status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on port {port} did not answer PING within 15 s");
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
        Self::start_on(free_port(false), false)
    }

    fn start_on(port: u16, cluster: bool) -> RedisServer {
        require("redis-server");
        let mut s = RedisServer {
            port,
            child: None,
            dir: scratch(),
            cluster,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
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
        .arg(&self.dir);
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "3000",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server: {e}. {INSTALL}"));
        wait_ping(self.port, &mut child);
        self.child = Some(child);
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
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join("nodes.conf"));
        self.spawn();
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
        let mut nodes: Vec<RedisServer> = Vec::new();
        while nodes.len() < 3 {
            let port = free_port(true);
            if nodes.iter().any(|n| n.port == port) {
                continue;
            }
            nodes.push(RedisServer::start_on(port, true));
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}. {INSTALL}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| {
                raw_command(n.port, "CLUSTER INFO").is_some_and(|r| r.contains("cluster_state:ok"))
            });
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok within 30 s"
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
        let port = free_port(false);
        let dir = scratch();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\nsentinel monitor vanish-primary 127.0.0.1 {} 1\nsentinel down-after-milliseconds vanish-primary 1000\n",
                dir.display(),
                primary.port
            ),
        )
        .expect("sentinel config");
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server --sentinel: {e}. {INSTALL}"));
        wait_ping(port, &mut child);
        RedisSentinel {
            primary,
            port,
            child: Some(child),
            dir,
        }
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
