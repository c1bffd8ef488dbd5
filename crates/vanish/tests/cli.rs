//! The `vanish` binary: one-line errors with exit code 2 on bad input, graceful shutdown,
//! and `purge` / `explain` against a running instance.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn vanish(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(args)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_upstream_and_config_give_one_line_and_exit_2() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["serve", "--upstream", "localhost:8000"],
            "invalid upstream URL",
        ),
        (
            vec!["serve", "--upstream", "ftp://h"],
            "must start with http://",
        ),
        (vec!["serve"], "no upstream"),
        (
            vec![
                "serve",
                "--upstream",
                "http://127.0.0.1:1",
                "--listen",
                "nowhere",
            ],
            "listen",
        ),
        (
            vec![
                "serve",
                "--upstream",
                "http://127.0.0.1:1",
                "--config",
                "/nonexistent.toml",
            ],
            "cannot read config",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = vanish(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let dir = std::env::temp_dir().join(format!("vanish-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[upstream]\nurl = \"http://127.0.0.1:9\"\n[cache]\nbogus_key = 1\n",
    )
    .unwrap();
    let (code, _, err) = vanish(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 4") && err.contains("bogus_key"), "{err}");
    let bad2 = dir.join("bad2.toml");
    std::fs::write(&bad2, "[memory]\ncapacity = \"lots\"\n").unwrap();
    let (code, _, err) = vanish(&[
        "serve",
        "--upstream",
        "http://127.0.0.1:9",
        "--config",
        bad2.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("memory.capacity"), "{err}");
}

#[test]
fn purge_cli_rejects_bad_input_with_exit_2() {
    let (code, _, err) = vanish(&["purge"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = vanish(&["purge", "--tag", "t", "--header", "novalue"]);
    assert_eq!(code, 2);
    assert!(err.contains("NAME=VALUE"), "{err}");
    let (code, _, err) = vanish(&["purge", "--tag", "t", "--any-query"]);
    assert_eq!(code, 2);
    assert!(err.contains("--any-query"), "{err}");
    // Nothing listening: a clear failure, exit 1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let (code, _, err) = vanish(&["purge", "--admin", &dead, "--all"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the admin API"), "{err}");
}

/// Starts `vanish serve` on free ports (`:0`) and returns the child with the proxy's address,
/// read from its "vanish started" log line (stderr keeps being drained in the background).
fn spawn_serve() -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args([
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.split("proxy_addr=").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("vanish printed no 'vanish started ... proxy_addr=' line within 30 s");
    (child, addr.parse().expect("proxy_addr is IP:PORT"))
}

/// Waits (bounded) for the child to exit.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("no exit within {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The signal handlers are installed before the listeners are bound, so a SIGTERM sent the
/// moment the proxy accepts connections is always a graceful shutdown (exit 0), never death by
/// the signal. Several starts, since the old order lost this race only sometimes.
#[test]
fn sigterm_shuts_down_gracefully() {
    for round in 0..5 {
        let (mut child, addr) = spawn_serve();
        // The log line comes after both listeners are bound: the proxy accepts now.
        std::net::TcpStream::connect(addr).expect("the proxy accepts once it says it started");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(30));
        assert!(status.success(), "round {round}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_explain_commands_talk_to_the_admin_api() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("v{n}"))
            .header("cache-control", "max-age=60")
            .header("surrogate-key", "post-7 posts")
    })
    .await;
    let v = TestVanish::start(&origin.url()).await;
    get(&v.url("/posts/7")).await;
    let admin = format!("http://{}", v.running.admin_addr);
    let url = v.url("/posts/7");
    let (code, out, err) = tokio::task::spawn_blocking({
        let (admin, url) = (admin.clone(), url.clone());
        move || vanish(&["explain", "--admin", &admin, &url])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["cached"], true);
    assert_eq!(j["variants"][0]["tags"][0], "post-7");
    let (code, out, err) = tokio::task::spawn_blocking({
        let admin = admin.clone();
        move || vanish(&["purge", "--admin", &admin, "--tag", "post-7", "--dry-run"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["matched"],
        1
    );
    assert!(
        get(&v.url("/posts/7")).await.is_hit(),
        "dry run purged nothing"
    );
    let (code, out, _) = tokio::task::spawn_blocking({
        let admin = admin.clone();
        move || vanish(&["purge", "--admin", &admin, "--path", "/posts/7"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["matched"],
        1
    );
    assert!(!get(&v.url("/posts/7")).await.is_hit());
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        vanish(&["purge", "--admin", &admin, "--path", "no-slash"])
    })
    .await
    .unwrap();
    assert_eq!(code, 2);
    assert!(
        err.contains("400") && err.contains("selectors[0].path"),
        "{err}"
    );
}

#[test]
fn check_config_validates_and_prints_effective_rules() {
    let dir = std::env::temp_dir().join(format!("vanish-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[[rules]]\nname = \"blog\"\npath = \"/blog/*\"\ndrop_query = [\"utm_*\"]\n\n[default_rule]\nbypass_cookies = [\"sessionid\"]\n",
    )
    .unwrap();
    let (code, out, err) = vanish(&["check-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(
        out.contains("name = \"blog\"") && out.contains("drop_query = [\"utm_*\"]"),
        "{out}"
    );
    assert!(out.contains("bypass_cookies = [\"sessionid\"]"), "{out}");
    let cases = [
        (
            "[[rules]]\npath = \"/a/[\"\n",
            "line 2: rules[0].path: bad glob",
        ),
        ("[[rules]]\npath = \"/a\"\nbogus = true\n", "line 3:"),
        (
            "[[rules]]\npath = \"/a\"\ndrop_query = [\"a\"]\nkeep_query = [\"b\"]\n",
            "rules[0].keep_query",
        ),
        (
            "[default_rule]\ncacheable_status = [206]\n",
            "line 2: cacheable_status: status 206",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = dir.join(format!("bad{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let (code, _, err) = vanish(&["check-config", f.to_str().unwrap()]);
        assert_eq!(code, 2, "{text}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{text}: {err}");
    }
}

/// Runs the binary with a deadline: a `serve` that accepted its configuration would not end.
fn vanish_bounded(args: &[&str], limit: Duration) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vanish"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: still running after {limit:?} (the configuration was accepted)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), err)
}

/// `check-config` runs the resolution `serve` runs: a file serve refuses, the check refuses,
/// with the same one line naming the key (and exit code 2, a configuration error).
#[test]
fn check_config_refuses_what_serve_refuses_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("vanish-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A free port, for the addresses written below; nothing binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            "[limits]\nmax_header_bytes = \"12XB\"\n".to_owned(),
            "limits.max_header_bytes: \"12XB\" is not a size such as \"64MiB\" (unknown unit \"XB\")".to_owned(),
        ),
        (
            "[memory]\ncapacity = true\n".to_owned(),
            "memory.capacity: expected a size such as \"64MiB\", found a boolean".to_owned(),
        ),
        (
            "[upstream]\nconnect_timeout = \"soon\"\n".to_owned(),
            "upstream.connect_timeout: \"soon\" is not a duration such as \"30s\" (".to_owned(),
        ),
        (
            "[cache]\nkeep = 30\n".to_owned(),
            "cache.keep: 30 is not a duration such as \"30s\" (write the unit)".to_owned(),
        ),
        // Until now, serve refused these only once it was starting (connecting to Redis,
        // binding the admin listener, exit 1) and check-config accepted them.
        (
            "[store]\nkind = \"redis\"\n[redis]\ncluster_nodes = [\"127.0.0.1:7000\", \"nohost\"]\n"
                .to_owned(),
            "redis.cluster_nodes[1]: \"nohost\" is not HOST:PORT".to_owned(),
        ),
        (
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"0.0.0.0:{port}\"\n"),
            format!("admin.listen: 0.0.0.0:{port} is the proxy's address too (server.listen)"),
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = dir.join(format!("case{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let path = f.to_str().unwrap();
        let (code, _, checked) = vanish(&["check-config", path]);
        assert_eq!(code, 2, "{text}: {checked}");
        assert_eq!(checked.trim().lines().count(), 1, "{checked}");
        assert!(
            checked.contains(&format!("{path}: {needle}")),
            "{text}: {checked}"
        );
        let serve = [
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--config",
            path,
        ];
        let (code, served) = vanish_bounded(&serve, Duration::from_secs(30));
        assert_eq!(code, 2, "{text}: {served}");
        assert_eq!(served, checked, "serve and check-config say the same");
    }
}
