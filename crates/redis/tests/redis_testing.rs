//! The test servers themselves (`vanish_redis::testing`): replies are read whole, a restart
//! that finds its port taken waits for it instead of failing or hanging, servers started at
//! the same time never share a port, and a dropped server is gone.

use std::net::TcpListener;
use std::time::Duration;

use vanish_redis::testing::{raw_command, RedisServer};

#[test]
fn a_reply_longer_than_one_read_is_read_whole() {
    let server = RedisServer::start();
    let r =
        raw_command(server.port, "EVAL \"return string.rep('x', 300000)\" 0").expect("answered");
    assert!(r.starts_with("$300000\r\n"), "{}", &r[..r.len().min(40)]);
    assert_eq!(r.len(), "$300000\r\n".len() + 300_000 + 2);
}

#[test]
fn a_restart_waits_for_its_port() {
    let mut server = RedisServer::start();
    let port = server.port;
    server.kill();
    // Another process takes the port for a while (the point is that time passes).
    let squatter = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(squatter);
    });
    server.restart();
    release.join().unwrap();
    assert_eq!(server.port, port, "the same port");
    assert!(raw_command(port, "PING").is_some_and(|r| r.starts_with("+PONG")));
}

#[test]
fn servers_started_together_never_share_a_port() {
    let servers: Vec<RedisServer> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..6).map(|_| s.spawn(RedisServer::start)).collect();
        starts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), servers.len(), "{ports:?}");
    for s in &servers {
        let r = raw_command(s.port, "SET owner me").expect("answered");
        assert!(r.starts_with("+OK"), "{r}");
    }
}

#[test]
fn a_dropped_server_is_gone() {
    let server = RedisServer::start();
    let port = server.port;
    drop(server);
    assert!(
        raw_command(port, "PING").is_none(),
        "nothing answers on {port}"
    );
}
