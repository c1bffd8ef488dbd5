//! Configuration: the optional TOML file, overridden by command-line flags.
//!
//! Owns parsing and validation of every setting, with errors that name the key (and the line,
//! for the file). It starts nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;
use serde::Deserialize;
use vanish_engine::forwarding::Forwarding;
use vanish_engine::policy::{PolicyError, PolicySpec, RuleSpec};
use vanish_engine::tags::TagHeader;
use vanish_engine::RulesPolicy;
use vanish_engine::{CacheConfig, Scheme};

/// A configuration error, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The `vanish.toml` file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[upstream]`.
    #[serde(default)]
    pub upstream: UpstreamSection,
    /// `[admin]`.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[memory]`.
    #[serde(default)]
    pub memory: MemorySection,
    /// `[cache]`.
    #[serde(default)]
    pub cache: CacheSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[[rules]]`: per-route key policy, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// `[default_rule]`: the key policy where no rule matches.
    #[serde(default)]
    pub default_rule: RuleSpec,
    /// `[host_aliases]`: alias host = canonical host.
    #[serde(default)]
    pub host_aliases: BTreeMap<String, String>,
    /// `[store]`: which store holds the cache.
    #[serde(default)]
    pub store: StoreSection,
    /// `[redis]`: the Redis/Valkey store (used when `[store] kind = "redis"`).
    #[serde(default)]
    pub redis: vanish_redis::config::RedisSection,
}

/// `[store]`: which store holds the cache.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `"memory"` (the default: this process only) or `"redis"` (shared by every node).
    pub kind: Option<String>,
}

/// The store a running Vanish uses.
#[derive(Debug, Clone, Default)]
pub enum StoreChoice {
    /// The embedded memory store (`[memory]`).
    #[default]
    Memory,
    /// Redis/Valkey, shared by several nodes (`[redis]`).
    Redis(vanish_redis::RedisConfig),
}

/// `[server]`: where the proxy listens.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Proxy address (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// How long to wait for requests in flight on shutdown (default `10s`).
    pub shutdown_grace: Option<String>,
    /// Addresses or networks of proxies in front (load balancers) whose forwarding headers
    /// (`X-Forwarded-*`, `Forwarded`, ...) are kept; from anyone else they are dropped.
    pub trusted_proxies: Option<Vec<String>>,
    /// Forwarding headers kept from every client (and then part of the key).
    pub forward_headers: Option<Vec<String>>,
}

/// `[upstream]`: the origin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// `http://host:port` of the origin.
    pub url: Option<String>,
    /// Connect timeout (default `5s`).
    pub connect_timeout: Option<String>,
    /// Time to the response headers (default `60s`).
    pub response_timeout: Option<String>,
    /// Longest pause inside a response body (default `30s`).
    pub body_timeout: Option<String>,
}

/// `[admin]`: the admin API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Admin address (default `127.0.0.1:8081`).
    pub listen: Option<String>,
    /// Bearer tokens accepted.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Networks allowed without a token (default: loopback when no token is set, none otherwise).
    pub allow: Option<Vec<String>>,
    /// Host names (besides loopback names and the listener's address) that requests let in
    /// without a token may use in `Host`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Browser origins (`https://ops.example.com`) allowed to call; others are refused.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Request headers (besides Cookie and Authorization) whose values `explain` hides.
    #[serde(default)]
    pub redact_headers: Vec<String>,
}

/// `[memory]`: the embedded store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// Capacity in bytes, e.g. `"256MiB"` (default 256 MiB).
    pub capacity: Option<toml::Value>,
}

/// `[cache]`: caching behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Largest stored body, e.g. `"16MiB"`.
    pub max_object_size: Option<toml::Value>,
    /// Store responses that set cookies (the cookie is not stored).
    pub store_set_cookie: Option<bool>,
    /// Default `stale-while-revalidate`, e.g. `"30s"`.
    pub stale_while_revalidate: Option<String>,
    /// Default `stale-if-error`, e.g. `"1h"`.
    pub stale_if_error: Option<String>,
    /// How long stale objects with validators are kept for revalidation.
    pub keep: Option<String>,
    /// Response headers read for tags.
    pub tag_headers: Option<Vec<String>>,
    /// Remove tag headers from client responses (default true).
    pub strip_tag_headers: Option<bool>,
    /// Scheme clients use (`http`, or `https` behind a TLS terminator).
    pub scheme: Option<String>,
}

/// `[limits]`: bounds on what clients, origins and admins may make Vanish do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Request line plus headers (default `64KiB`; answered 431 past it).
    pub max_header_bytes: Option<toml::Value>,
    /// Request target (default `8KiB`; answered 414 past it).
    pub max_url_bytes: Option<toml::Value>,
    /// Variants kept per resource (default 200; the oldest goes).
    pub max_variants: Option<usize>,
    /// Tags per object (default 256; a response with more is not stored).
    pub max_tags: Option<usize>,
    /// Bytes per tag (default 512; a response with a longer tag is not stored).
    pub max_tag_bytes: Option<usize>,
    /// Selectors per purge request (default 1000; answered 400 past it).
    pub max_selectors: Option<usize>,
    /// Admin request body (default `1MiB`; answered 413 past it).
    pub max_admin_body: Option<toml::Value>,
    /// Concurrent requests to the origin (default 512; others wait up to the response timeout).
    pub max_origin_connections: Option<usize>,
    /// Concurrent client connections (default 10000; further connections wait to be accepted).
    pub max_client_connections: Option<usize>,
    /// Free connection slots kept: when no more are free, the oldest idle connections (no
    /// request in progress) are closed (default a tenth of max_client_connections).
    pub connection_reserve: Option<usize>,
    /// Longest wait for a request head, from accepting a connection and from the end of each
    /// response (so also how long an idle keep-alive connection stays open; default `30s`).
    pub header_read_timeout: Option<String>,
    /// Longest wait for the next piece of a request body (default `30s`; answered 408).
    pub body_read_timeout: Option<String>,
}

/// The effective limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers.
    pub max_header_bytes: usize,
    /// Request target.
    pub max_url_bytes: usize,
    /// Variants per resource.
    pub max_variants: usize,
    /// Selectors per purge request.
    pub max_selectors: usize,
    /// Admin request body.
    pub max_admin_body: usize,
    /// Concurrent origin requests.
    pub max_origin_connections: usize,
    /// Concurrent client connections.
    pub max_client_connections: usize,
    /// Free connection slots below which idle connections are closed.
    pub connection_reserve: usize,
    /// Longest wait for a request head (first byte included) and idle keep-alive time.
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_url_bytes: 8 * 1024,
            max_variants: 200,
            max_selectors: 1000,
            max_admin_body: 1024 * 1024,
            max_origin_connections: 512,
            max_client_connections: 10_000,
            connection_reserve: 1_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Flags of `vanish serve` that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--admin-token`.
    pub admin_token: Option<String>,
    /// `--memory-capacity`.
    pub memory_capacity: Option<String>,
}

/// The effective settings of a running Vanish.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Proxy address.
    pub listen: SocketAddr,
    /// Admin API address.
    pub admin_listen: SocketAddr,
    /// The origin, `http://host:port`.
    pub upstream: http::Uri,
    /// Connect timeout to the origin.
    pub connect_timeout: Duration,
    /// Time to the origin's response headers.
    pub response_timeout: Duration,
    /// Admin bearer tokens.
    pub admin_tokens: Vec<String>,
    /// Networks allowed on the admin API without a token.
    pub admin_allow: Vec<IpNet>,
    /// `[admin] hosts`: extra names the tokenless admin listener answers to.
    pub admin_hosts: Vec<String>,
    /// `[admin] allow_origins`: browser origins allowed to call the admin API.
    pub admin_allow_origins: Vec<String>,
    /// `[admin] redact_headers`: stored header values `explain` hides.
    pub admin_redact: Vec<HeaderName>,
    /// Memory store capacity in bytes.
    pub memory_capacity: u64,
    /// Grace period on shutdown.
    pub shutdown_grace: Duration,
    /// Engine settings.
    pub cache: CacheConfig,
    /// The compiled key policy.
    pub policy: Arc<RulesPolicy>,
    /// Limits.
    pub limits: Limits,
    /// The store.
    pub store: StoreChoice,
}

impl Settings {
    /// Reads the optional file and applies the flags.
    pub fn load(path: Option<&Path>, o: &Overrides) -> Result<Settings, ConfigError> {
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read config {}: {e}", p.display())))?;
                let file = parse_file(&text)
                    .map_err(|e| ConfigError(format!("{}: {}", p.display(), e.0)))?;
                return Self::from_parts_with_source(file, o, Some(&text))
                    .map_err(|e| ConfigError(format!("{}: {}", p.display(), e.0)));
            }
            None => FileConfig::default(),
        };
        Self::from_parts(file, o)
    }

    /// Combines a parsed file and flags.
    pub fn from_parts(f: FileConfig, o: &Overrides) -> Result<Settings, ConfigError> {
        Self::from_parts_with_source(f, o, None)
    }

    /// Combines a parsed file and flags; `source` (the file's text) lets errors name lines.
    pub fn from_parts_with_source(
        f: FileConfig,
        o: &Overrides,
        source: Option<&str>,
    ) -> Result<Settings, ConfigError> {
        let policy = RulesPolicy::compile(PolicySpec {
            rules: f.rules,
            default_rule: f.default_rule,
            host_aliases: f.host_aliases,
        })
        .map_err(|e| match source.and_then(|t| policy_error_line(t, &e)) {
            Some(line) => ConfigError(format!("line {line}: {e}")),
            None => ConfigError(e.to_string()),
        })?;
        let upstream = o.upstream.clone().or(f.upstream.url).ok_or_else(|| {
            ConfigError(
                "no upstream: pass --upstream http://HOST:PORT or set [upstream] url".into(),
            )
        })?;
        let upstream = parse_upstream(&upstream)?;
        let listen = parse_addr(
            "listen",
            o.listen
                .as_deref()
                .or(f.server.listen.as_deref())
                .unwrap_or("127.0.0.1:8080"),
        )?;
        let admin_listen = parse_addr(
            "admin-listen",
            o.admin_listen
                .as_deref()
                .or(f.admin.listen.as_deref())
                .unwrap_or("127.0.0.1:8081"),
        )?;
        let mut admin_tokens = f.admin.tokens;
        if let Some(t) = &o.admin_token {
            admin_tokens.push(t.clone());
        }
        if admin_tokens.iter().any(|t| t.len() < 8) {
            return Err(ConfigError(
                "admin token: must be at least 8 characters".into(),
            ));
        }
        let admin_allow = match f.admin.allow {
            Some(list) => list
                .iter()
                .map(|n| parse_net(n))
                .collect::<Result<Vec<_>, _>>()?,
            None if admin_tokens.is_empty() => {
                vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
            }
            None => vec![],
        };
        let memory_capacity = match (&o.memory_capacity, &f.memory.capacity) {
            (Some(s), _) => parse_size("memory-capacity", s)?,
            (None, Some(v)) => size_value("memory.capacity", v)?,
            (None, None) => 256 * 1024 * 1024,
        };
        if memory_capacity < 1024 * 1024 {
            return Err(ConfigError("memory.capacity: must be at least 1MiB".into()));
        }
        let limits = limits(&f.limits)?;
        let store = match f.store.kind.as_deref() {
            None | Some("memory") => StoreChoice::Memory,
            Some("redis") => StoreChoice::Redis(
                f.redis
                    .resolve(vanish_redis::RedisConfig::default().max_variants)
                    .map_err(|e| ConfigError(e.to_string()))?,
            ),
            Some(other) => {
                return Err(ConfigError(format!(
                    "store.kind: expected \"memory\" or \"redis\", got {other:?}"
                )))
            }
        };
        let c = f.cache;
        let defaults = CacheConfig::default();
        let scheme = match c.scheme.as_deref() {
            None => Scheme::Http,
            Some(s) => Scheme::parse(s).ok_or_else(|| {
                ConfigError(format!("cache.scheme: expected http or https, got {s:?}"))
            })?,
        };
        let tag_headers = match c.tag_headers {
            None => defaults.tag_headers.clone(),
            Some(list) => list
                .iter()
                .map(|n| {
                    TagHeader::parse(n).map_err(|e| ConfigError(format!("cache.tag_headers: {e}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let cache = CacheConfig {
            scheme,
            max_object_size: match &c.max_object_size {
                Some(v) => size_value("cache.max_object_size", v)? as usize,
                None => defaults.max_object_size,
            },
            store_set_cookie: c.store_set_cookie.unwrap_or(false),
            default_stale_while_revalidate: opt_duration(
                "cache.stale_while_revalidate",
                c.stale_while_revalidate.as_deref(),
                defaults.default_stale_while_revalidate,
            )?,
            default_stale_if_error: opt_duration(
                "cache.stale_if_error",
                c.stale_if_error.as_deref(),
                defaults.default_stale_if_error,
            )?,
            keep: opt_duration("cache.keep", c.keep.as_deref(), defaults.keep)?,
            tag_headers,
            strip_tag_headers: c.strip_tag_headers.unwrap_or(true),
            origin_body_timeout: opt_duration(
                "upstream.body_timeout",
                f.upstream.body_timeout.as_deref(),
                defaults.origin_body_timeout,
            )?,
            max_tags: f.limits.max_tags.unwrap_or(defaults.max_tags),
            max_tag_bytes: f.limits.max_tag_bytes.unwrap_or(defaults.max_tag_bytes),
            forwarding: forwarding(&f.server)?,
            ..defaults
        };
        Ok(Settings {
            listen,
            admin_listen,
            upstream,
            connect_timeout: opt_duration(
                "upstream.connect_timeout",
                f.upstream.connect_timeout.as_deref(),
                Duration::from_secs(5),
            )?,
            response_timeout: opt_duration(
                "upstream.response_timeout",
                f.upstream.response_timeout.as_deref(),
                Duration::from_secs(60),
            )?,
            admin_tokens,
            admin_allow,
            admin_hosts: f.admin.hosts.clone(),
            admin_allow_origins: f.admin.allow_origins.clone(),
            admin_redact: header_names("admin.redact_headers", &f.admin.redact_headers)?,
            memory_capacity,
            shutdown_grace: opt_duration(
                "server.shutdown_grace",
                f.server.shutdown_grace.as_deref(),
                Duration::from_secs(10),
            )?,
            cache,
            policy: Arc::new(policy),
            limits,
            store,
        })
    }
}

fn limits(l: &LimitsSection) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let size =
        |name: &str, v: &Option<toml::Value>, default: usize| -> Result<usize, ConfigError> {
            v.as_ref()
                .map(|v| size_value(name, v).map(|n| n as usize))
                .transpose()
                .map(|o| o.unwrap_or(default))
        };
    let positive = |name: &str, v: Option<usize>, default: usize| -> Result<usize, ConfigError> {
        match v {
            Some(0) => Err(ConfigError(format!("{name}: must be at least 1"))),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let out = Limits {
        max_header_bytes: size(
            "limits.max_header_bytes",
            &l.max_header_bytes,
            d.max_header_bytes,
        )?,
        max_url_bytes: size("limits.max_url_bytes", &l.max_url_bytes, d.max_url_bytes)?,
        max_variants: positive("limits.max_variants", l.max_variants, d.max_variants)?,
        max_selectors: positive("limits.max_selectors", l.max_selectors, d.max_selectors)?,
        max_admin_body: size("limits.max_admin_body", &l.max_admin_body, d.max_admin_body)?,
        max_origin_connections: positive(
            "limits.max_origin_connections",
            l.max_origin_connections,
            d.max_origin_connections,
        )?,
        max_client_connections: positive(
            "limits.max_client_connections",
            l.max_client_connections,
            d.max_client_connections,
        )?,
        connection_reserve: 0,
        header_read_timeout: opt_duration(
            "limits.header_read_timeout",
            l.header_read_timeout.as_deref(),
            d.header_read_timeout,
        )?,
        body_read_timeout: opt_duration(
            "limits.body_read_timeout",
            l.body_read_timeout.as_deref(),
            d.body_read_timeout,
        )?,
    };
    let out = Limits {
        connection_reserve: match l.connection_reserve {
            Some(r) if r >= out.max_client_connections => {
                return Err(ConfigError(format!(
                "limits.connection_reserve: {r} must be below limits.max_client_connections ({})",
                out.max_client_connections
            )))
            }
            Some(r) => r,
            None => out.max_client_connections / 10,
        },
        ..out
    };
    for (name, d) in [
        ("limits.header_read_timeout", out.header_read_timeout),
        ("limits.body_read_timeout", out.body_read_timeout),
    ] {
        if d.is_zero() {
            return Err(ConfigError(format!("{name}: must be more than 0")));
        }
    }
    positive("limits.max_tags", l.max_tags, 1)?;
    positive("limits.max_tag_bytes", l.max_tag_bytes, 1)?;
    if out.max_header_bytes < 8192 {
        return Err(ConfigError(
            "limits.max_header_bytes: must be at least 8KiB".into(),
        ));
    }
    if out.max_url_bytes < 256 {
        return Err(ConfigError(
            "limits.max_url_bytes: must be at least 256 bytes".into(),
        ));
    }
    Ok(out)
}

/// A human-readable summary of effective settings and key rules (`vanish check-config`).
pub fn describe(s: &Settings, upstream_from_flags: bool) -> String {
    let mut out = String::from("configuration OK\n\n");
    let upstream = if upstream_from_flags {
        "(not set: pass --upstream)".to_owned()
    } else {
        s.upstream.to_string()
    };
    out.push_str(&format!(
        "listen        {}\nadmin listen  {}\nupstream      {}\nmemory        {} bytes\nadmin auth    {} token(s), allow {:?}\n",
        s.listen, s.admin_listen, upstream, s.memory_capacity, s.admin_tokens.len(),
        s.admin_allow.iter().map(|n| n.to_string()).collect::<Vec<_>>()
    ));
    let c = &s.cache;
    out.push_str(&format!(
        "cache         max object {} bytes, stale-while-revalidate {:?}, stale-if-error {:?}, keep {:?}, set-cookie stored: {}\n",
        c.max_object_size, c.default_stale_while_revalidate, c.default_stale_if_error, c.keep, c.store_set_cookie
    ));
    out.push_str(&format!(
        "tag headers   {}\n\nkey rules (first match wins):\n",
        c.tag_headers
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let spec = s.policy.spec();
    for (i, r) in spec.rules.iter().enumerate() {
        out.push_str(&format!(
            "[[rules]] # {i}\n{}\n",
            toml::to_string(r).unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "[default_rule]\n{}\n",
        toml::to_string(&spec.default_rule).unwrap_or_default()
    ));
    if !spec.host_aliases.is_empty() {
        out.push_str(&format!(
            "[host_aliases]\n{}",
            toml::to_string(&spec.host_aliases).unwrap_or_default()
        ));
    }
    out
}

/// The line of the configuration a policy error points at: the field inside the right
/// `[[rules]]` block (or `[default_rule]`, `[host_aliases]`), else the block's header.
fn policy_error_line(text: &str, e: &PolicyError) -> Option<usize> {
    let header = match e.rule {
        Some(_) => "[[rules]]",
        None if e.field.starts_with("host_aliases") => "[host_aliases]",
        None => "[default_rule]",
    };
    let mut seen = 0usize;
    let mut in_block = false;
    let mut block_line = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_block = false;
            if t == header {
                if e.rule.is_none_or(|r| r == seen) {
                    in_block = true;
                    block_line = Some(i + 1);
                }
                seen += 1;
            }
            continue;
        }
        if in_block {
            let key = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            let field = e.field.split('.').next().unwrap_or("");
            if !key.is_empty()
                && (key == field || (header == "[host_aliases]" && e.field.contains(key)))
            {
                return Some(i + 1);
            }
        }
    }
    block_line
}

/// Parses the TOML text; errors carry the line and column.
pub fn parse_file(text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // One line: the toml crate may add a second ("expected ...").
        let msg = e.message().trim().lines().collect::<Vec<_>>().join("; ");
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                ConfigError(format!("line {line}: {msg}"))
            }
            None => ConfigError(msg),
        }
    })
}

/// Parses and checks an upstream URL (`http://host[:port]`, no path).
pub fn parse_upstream(s: &str) -> Result<http::Uri, ConfigError> {
    let bad = |why: &str| ConfigError(format!("invalid upstream URL {s:?}: {why}"));
    let uri: http::Uri = s.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https upstreams are not supported yet; use http://")),
        _ => return Err(bad("must start with http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(bad("must not have a path"));
    }
    Ok(uri)
}

fn parse_addr(name: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError(format!("{name}: {s:?} is not an IP:PORT address")))
}

fn header_names(field: &str, names: &[String]) -> Result<Vec<HeaderName>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, h)| {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| ConfigError(format!("{field}[{i}]: {h:?} is not a header name")))
        })
        .collect()
}

/// `[server] trusted_proxies` and `forward_headers`.
fn forwarding(s: &ServerSection) -> Result<Forwarding, ConfigError> {
    let mut trusted_proxies = Vec::new();
    for (i, t) in s.trusted_proxies.iter().flatten().enumerate() {
        let net = parse_net(t).map_err(|_| {
            ConfigError(format!(
                "server.trusted_proxies[{i}]: {t:?} is not an IP address or network"
            ))
        })?;
        trusted_proxies.push(net);
    }
    let pass = header_names(
        "server.forward_headers",
        s.forward_headers.as_deref().unwrap_or(&[]),
    )?;
    if let Some((i, h)) = pass
        .iter()
        .enumerate()
        .find(|(_, h)| !vanish_engine::forwarding::is_forwarding_header(h.as_str()))
    {
        return Err(ConfigError(format!(
            "server.forward_headers[{i}]: {h:?} is not a forwarding header (X-Forwarded-*, Forwarded, X-Original-*, ...); other headers reach the origin anyway"
        )));
    }
    Ok(Forwarding {
        trusted_proxies,
        pass,
    })
}

fn parse_net(s: &str) -> Result<IpNet, ConfigError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError(format!(
                "admin.allow: {s:?} is not an IP address or network"
            ))
        })
}

fn opt_duration(name: &str, s: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match s {
        None => Ok(default),
        Some("0") => Ok(Duration::ZERO),
        Some(s) => humantime::parse_duration(s).map_err(|e| {
            ConfigError(format!(
                "{name}: {s:?} is not a duration ({e}); write e.g. \"30s\""
            ))
        }),
    }
}

fn size_value(name: &str, v: &toml::Value) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_size(name, s),
        _ => Err(ConfigError(format!(
            "{name}: expected a size such as \"256MiB\""
        ))),
    }
}

/// Parses `1024`, `64KiB`, `256MiB`, `1GiB`, `10MB`, `2G` ([`vanish_engine::config::parse_size`]).
pub fn parse_size(name: &str, s: &str) -> Result<u64, ConfigError> {
    vanish_engine::config::parse_size(name, s).map_err(ConfigError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(upstream: &str) -> Overrides {
        Overrides {
            upstream: Some(upstream.into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::from_parts(FileConfig::default(), &o("http://127.0.0.1:8000")).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.admin_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(s.memory_capacity, 256 << 20);
        assert_eq!(s.admin_allow.len(), 2);
    }

    #[test]
    fn bad_upstreams() {
        for u in [
            "localhost:8000",
            "ftp://h",
            "https://h",
            "http://h/path",
            "http://",
        ] {
            let e = Settings::from_parts(FileConfig::default(), &o(u)).unwrap_err();
            assert!(e.0.contains("upstream"), "{u}: {e}");
        }
    }

    #[test]
    fn file_errors_name_line_and_key() {
        let e = parse_file("[cache]\nstore_set_cookie = true\nbogus = 1\n").unwrap_err();
        assert!(e.0.starts_with("line 3:") && e.0.contains("bogus"), "{e}");
        let f = parse_file("[cache]\nstale_if_error = \"soon\"\n").unwrap();
        let e = Settings::from_parts(f, &o("http://h:1")).unwrap_err();
        assert!(e.0.contains("cache.stale_if_error"), "{e}");
    }

    #[test]
    fn file_and_flags() {
        let f = parse_file(
            "[memory]\ncapacity = \"64MiB\"\n[cache]\nstale_if_error = \"1h\"\ntag_headers = [\"xkey\"]\n[admin]\ntokens = [\"secret-token\"]\n",
        )
        .unwrap();
        let mut ov = o("http://h:1");
        ov.memory_capacity = Some("2GiB".into());
        let s = Settings::from_parts(f, &ov).unwrap();
        assert_eq!(s.memory_capacity, 2 << 30);
        assert_eq!(s.cache.default_stale_if_error, Duration::from_secs(3600));
        assert_eq!(s.cache.tag_headers.len(), 1);
        assert!(
            s.admin_allow.is_empty(),
            "a token disables the loopback default"
        );
    }

    #[test]
    fn policy_errors_name_the_line() {
        let text = "[cache]\nkeep = \"1m\"\n\n[[rules]]\npath = \"/a/*\"\n\n[[rules]]\nname = \"b\"\npath = \"/b/[\"\n";
        let f = parse_file(text).unwrap();
        let e = Settings::from_parts_with_source(f, &o("http://h:1"), Some(text)).unwrap_err();
        assert!(e.0.starts_with("line 9: rules[1].path: bad glob"), "{e}");
        let text = "[default_rule]\nsort_query = true\nttl = \"never\"\n";
        let e = Settings::from_parts_with_source(
            parse_file(text).unwrap(),
            &o("http://h:1"),
            Some(text),
        )
        .unwrap_err();
        assert!(e.0.starts_with("line 3: ttl:"), "{e}");
        let text = "[[rules]]\npath = \"/x\"\nkeep_query = [\"a\"]\ndrop_query = [\"b\"]\n";
        let e = Settings::from_parts_with_source(
            parse_file(text).unwrap(),
            &o("http://h:1"),
            Some(text),
        )
        .unwrap_err();
        assert!(e.0.starts_with("line 3: rules[0].keep_query"), "{e}");
        let e = parse_file("[[rules]]\npath = \"/x\"\nunknown = 1\n").unwrap_err();
        assert!(e.0.starts_with("line 3:") && e.0.contains("unknown"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("x", "1024").unwrap(), 1024);
        assert_eq!(parse_size("x", "64KiB").unwrap(), 65536);
        assert_eq!(parse_size("x", "10MB").unwrap(), 10_000_000);
        assert!(parse_size("x", "ten").is_err());
        assert!(parse_size("x", "5 parsecs").is_err());
    }
}
