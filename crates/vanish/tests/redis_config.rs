//! `[store]` and `[redis]` in vanish.toml: the memory store stays the default, the Redis
//! section resolves with its defaults, and mistakes are errors naming the key.

use std::time::Duration;

use vanish::config::{parse_file, Overrides, Settings, StoreChoice};

fn settings(toml: &str) -> Result<Settings, String> {
    let file = parse_file(toml).map_err(|e| e.to_string())?;
    let o = Overrides {
        upstream: Some("http://127.0.0.1:9".into()),
        ..Default::default()
    };
    Settings::from_parts(file, &o).map_err(|e| e.to_string())
}

#[test]
fn memory_is_the_default_and_redis_is_chosen_by_kind() {
    assert!(matches!(settings("").unwrap().store, StoreChoice::Memory));
    let s = settings(
        r#"
[store]
kind = "redis"

[redis]
cluster_nodes = ["127.0.0.1:7000", "127.0.0.1:7001"]
prefix = "shop"
l1_capacity = "8MiB"
l1_lease = "1s"
"#,
    )
    .unwrap();
    let StoreChoice::Redis(r) = s.store else {
        panic!("redis chosen")
    };
    assert_eq!(r.cluster_nodes.len(), 2);
    assert_eq!(r.prefix, "shop");
    assert_eq!(r.l1_capacity, 8 << 20);
    assert_eq!(r.l1_lease, Duration::from_secs(1));
    assert_eq!(r.buckets, 16, "default");
}

#[test]
fn mistakes_name_the_key() {
    let e = settings("[store]\nkind = \"memcached\"\n").unwrap_err();
    assert!(e.contains("store.kind"), "{e}");
    let e = settings("[store]\nkind = \"redis\"\n[redis]\ntimeout = \"soon\"\n").unwrap_err();
    assert!(e.contains("redis.timeout"), "{e}");
    let e = settings("[store]\nkind = \"redis\"\n[redis]\nprefix = \"a{b}\"\n").unwrap_err();
    assert!(e.contains("redis.prefix"), "{e}");
    let e = settings("[redis]\nurll = \"x\"\n").unwrap_err();
    assert!(e.contains("urll"), "{e}");
}
