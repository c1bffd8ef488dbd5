//! Configuration: the optional TOML file, overridden by command-line flags.
//!
//! Owns the file as written ([`FileConfig`], one struct per section) and its resolution into
//! the effective [`Settings`]: each section's `resolve()` returns its typed settings or a
//! [`SettingError`] naming the key (the line too, for key rules). `vanish serve`
//! ([`Settings::load`]) and `vanish check-config` ([`check`]) run the very same resolution, so
//! a file that passes the check is one serve accepts. Sizes and durations are spelled as
//! [`vanish_engine::settings`] says. It starts nothing and binds nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use ipnet::IpNet;
use serde::Deserialize;
use vanish_engine::coding::Coding;
use vanish_engine::compress::{parse_type, Compression};
use vanish_engine::decode::DecodeLimits;
use vanish_engine::forwarding::Forwarding;
use vanish_engine::policy::{PolicyError, PolicySpec, RuleSpec};
use vanish_engine::purge::tags::TagHeader;
use vanish_engine::settings::{get, Setting, SettingError, Size, Span};
use vanish_engine::vary_normalize::ValueForm;
use vanish_engine::RulesPolicy;
use vanish_engine::{CacheConfig, Scheme};
use vanish_redis::config::RedisSection;

use crate::proxy::origin_tls::{self, OriginTls};
use crate::server::tls::{CertFiles, Certificates};

/// A configuration error, printed as one line (the file and line, when known, then the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    Syntax {
        /// The line, when the parser knows it.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A key rule does not compile.
    Rule {
        /// The line of the rule, when the file's text is known.
        line: Option<usize>,
        /// What is wrong.
        error: PolicyError,
    },
    /// A setting's value is refused (the error names its key).
    Setting(SettingError),
    /// One of the errors above, in this file.
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        error: Box<ConfigError>,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |f: &mut std::fmt::Formatter<'_>, line: &Option<usize>| match line {
            Some(l) => write!(f, "line {l}: "),
            None => Ok(()),
        };
        match self {
            ConfigError::Unreadable { path, reason } => {
                write!(f, "cannot read config {}: {reason}", path.display())
            }
            ConfigError::Syntax { line, message } => {
                at(f, line)?;
                f.write_str(message)
            }
            ConfigError::Rule { line, error } => {
                at(f, line)?;
                write!(f, "{error}")
            }
            ConfigError::Setting(e) => write!(f, "{e}"),
            ConfigError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<SettingError> for ConfigError {
    fn from(e: SettingError) -> Self {
        ConfigError::Setting(e)
    }
}

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
    pub redis: RedisSection,
    /// `[disk]`: the disk tier beneath the memory store.
    #[serde(default)]
    pub disk: DiskSection,
}

/// `[disk]`: the disk tier beneath the memory store (design.md section 7). With a path, the
/// memory store is the hot tier in front of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSection {
    /// The folder (`--disk-path`): objects, tags and purges survive restarts there.
    pub path: Option<PathBuf>,
    /// Bytes of disk at most (`--disk-capacity`), e.g. `"10GiB"` (default 1 GiB).
    pub capacity: Option<Setting<Size>>,
    /// `"second"` (the default: write an object on its second request) or `"first"`
    /// (write every stored object).
    pub admit: Option<String>,
}

impl DiskSection {
    /// The disk tier's settings, with `--disk-path` and `--disk-capacity`; `None` without a
    /// path.
    pub fn resolve(
        &self,
        o: &Overrides,
        limits: &Limits,
    ) -> Result<Option<vanish_disk::DiskConfig>, SettingError> {
        let path = match (&o.disk_path, &self.path) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(p)) => p.clone(),
            (None, None) => {
                if o.disk_capacity.is_some() {
                    return Err(SettingError::new(
                        "--disk-capacity",
                        "needs --disk-path (or [disk] path)",
                    ));
                }
                return Ok(None);
            }
        };
        if path.as_os_str().is_empty() {
            return Err(SettingError::new("disk.path", "must not be empty"));
        }
        let bytes = match (&o.disk_capacity, &self.capacity) {
            (Some(flag), _) => Setting::<Size>::from(flag.as_str()).get("--disk-capacity")?,
            (None, Some(written)) => written.get("disk.capacity")?,
            (None, None) => 1 << 30,
        };
        if bytes < 1024 * 1024 {
            let key = if o.disk_capacity.is_some() {
                "--disk-capacity"
            } else {
                "disk.capacity"
            };
            return Err(SettingError::new(key, "must be at least 1MiB"));
        }
        let mut c = vanish_disk::DiskConfig::new(path, bytes);
        c.max_variants = limits.max_variants;
        if let Some(a) = &self.admit {
            c.admit = vanish_disk::Admit::parse(a).ok_or_else(|| {
                SettingError::new(
                    "disk.admit",
                    format!("expected \"second\" or \"first\", got {a:?}"),
                )
            })?;
        }
        Ok(Some(c))
    }
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

impl StoreSection {
    /// `[store]`, with `[redis]` when it is chosen. The store-wide bounds of `[limits]`
    /// (`max_variants`) reach whichever store it is; the memory store takes them from
    /// [`Settings::limits`] when it is built.
    pub fn resolve(
        &self,
        redis: &RedisSection,
        limits: &Limits,
    ) -> Result<StoreChoice, SettingError> {
        match self.kind.as_deref() {
            None | Some("memory") => Ok(StoreChoice::Memory),
            Some("redis") => redis.resolve(limits.max_variants).map(StoreChoice::Redis),
            Some(other) => Err(SettingError::new(
                "store.kind",
                format!("expected \"memory\" or \"redis\", got {other:?}"),
            )),
        }
    }
}

/// `[server]`: where the proxy listens.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Proxy address (default `127.0.0.1:8080`): HTTP/1.1 and h2c.
    pub listen: Option<String>,
    /// The proxy's TLS address (none by default): HTTP/1.1 and HTTP/2 by ALPN.
    pub listen_tls: Option<String>,
    /// The default certificate: a PEM chain, end-entity certificate first.
    pub tls_cert: Option<String>,
    /// The default certificate's PEM private key.
    pub tls_key: Option<String>,
    /// `[[server.certs]]`: more certificates, chosen by SNI from their own DNS names.
    #[serde(default)]
    pub certs: Vec<CertSection>,
    /// A PROXY protocol v1/v2 header first on every connection to `listen` and `listen_tls`
    /// (default false); connections without a valid one are closed.
    pub proxy_protocol: Option<bool>,
    /// How long to wait for requests in flight on shutdown (default `10s`).
    pub shutdown_grace: Option<Setting<Span>>,
    /// Addresses or networks of proxies in front (load balancers) whose forwarding headers
    /// (`X-Forwarded-*`, `Forwarded`, ...) are kept; from anyone else they are dropped.
    pub trusted_proxies: Option<Vec<String>>,
    /// Forwarding headers kept from every client (and then part of the key).
    pub forward_headers: Option<Vec<String>>,
    /// Handle `PURGE` on the proxy listener as the admin listener does (same authentication);
    /// default false: answered 405, never forwarded to the origin.
    pub purge_on_proxy: Option<bool>,
}

/// `[[server.certs]]`: one more certificate for the TLS listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSection {
    /// The PEM chain.
    pub cert: String,
    /// The PEM private key.
    pub key: String,
}

/// The effective TLS listener.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Its address.
    pub listen: SocketAddr,
    /// Its certificates, loaded (and reloaded from the same files on SIGHUP).
    pub certs: Arc<Certificates>,
}

/// The effective `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Proxy address.
    pub listen: SocketAddr,
    /// The TLS listener, when `listen_tls` is set.
    pub tls: Option<TlsSettings>,
    /// PROXY protocol headers expected on the proxy's listeners.
    pub proxy_protocol: bool,
    /// Grace period on shutdown.
    pub shutdown_grace: Duration,
    /// Who may set forwarding headers.
    pub forwarding: Forwarding,
    /// `PURGE` on the proxy listener is handled (true) or refused (false).
    pub purge_on_proxy: bool,
}

impl ServerSection {
    /// `[server]`, with `--listen`, `--listen-tls`, `--tls-cert` and `--tls-key`. Reads the
    /// certificates (a file that cannot be used is an error naming its setting).
    pub fn resolve(&self, o: &Overrides) -> Result<ServerSettings, SettingError> {
        let (listen, key) = flag_or(&o.listen, "--listen", &self.listen, "server.listen");
        let listen = parse_addr(key, listen.unwrap_or("127.0.0.1:8080"))?;
        Ok(ServerSettings {
            listen,
            tls: self.tls(o, listen)?,
            proxy_protocol: self.proxy_protocol.unwrap_or(false),
            shutdown_grace: get(
                &self.shutdown_grace,
                "server.shutdown_grace",
                Duration::from_secs(10),
            )?,
            forwarding: self.forwarding()?,
            purge_on_proxy: self.purge_on_proxy.unwrap_or(false),
        })
    }

    /// `listen_tls` and the certificates: both or neither.
    fn tls(&self, o: &Overrides, listen: SocketAddr) -> Result<Option<TlsSettings>, SettingError> {
        let (addr, addr_key) = flag_or(
            &o.listen_tls,
            "--listen-tls",
            &self.listen_tls,
            "server.listen_tls",
        );
        let (cert, cert_key) =
            flag_or(&o.tls_cert, "--tls-cert", &self.tls_cert, "server.tls_cert");
        let (key, key_key) = flag_or(&o.tls_key, "--tls-key", &self.tls_key, "server.tls_key");
        let mut files = Vec::with_capacity(1 + self.certs.len());
        match (cert, key) {
            (Some(cert), Some(key)) => files.push(CertFiles {
                cert: cert.into(),
                key: key.into(),
                cert_setting: cert_key.into(),
                key_setting: key_key.into(),
            }),
            (Some(_), None) => {
                return Err(SettingError::new(
                    cert_key,
                    "a certificate needs its key: set tls_key (or --tls-key) too",
                ))
            }
            (None, Some(_)) => {
                return Err(SettingError::new(
                    key_key,
                    "a key needs its certificate: set tls_cert (or --tls-cert) too",
                ))
            }
            (None, None) => {}
        }
        for (i, c) in self.certs.iter().enumerate() {
            files.push(CertFiles {
                cert: c.cert.clone().into(),
                key: c.key.clone().into(),
                cert_setting: format!("server.certs[{i}].cert"),
                key_setting: format!("server.certs[{i}].key"),
            });
        }
        let addr = match (addr, files.first()) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(SettingError::new(
                    addr_key,
                    "the TLS listener needs a certificate: set tls_cert and tls_key (or [[server.certs]])",
                ))
            }
            (None, Some(f)) => {
                return Err(SettingError::new(
                    f.cert_setting.clone(),
                    "a certificate without a TLS listener: set listen_tls (or --listen-tls) too",
                ))
            }
            (Some(a), Some(_)) => parse_addr(addr_key, a)?,
        };
        if same_socket(addr, listen) {
            return Err(SettingError::new(
                addr_key,
                format!(
                    "{addr} is the plain listener's address too (server.listen); TLS needs its own"
                ),
            ));
        }
        let certs =
            Certificates::load(files).map_err(|e| SettingError::new(e.setting, e.reason))?;
        Ok(Some(TlsSettings {
            listen: addr,
            certs,
        }))
    }

    /// `trusted_proxies` and `forward_headers`.
    fn forwarding(&self) -> Result<Forwarding, SettingError> {
        let trusted_proxies = nets(
            "server.trusted_proxies",
            self.trusted_proxies.as_deref().unwrap_or(&[]),
        )?;
        let pass = header_names(
            "server.forward_headers",
            self.forward_headers.as_deref().unwrap_or(&[]),
        )?;
        if let Some((i, h)) = pass
            .iter()
            .enumerate()
            .find(|(_, h)| !vanish_engine::forwarding::is_forwarding_header(h.as_str()))
        {
            return Err(SettingError::new(
                format!("server.forward_headers[{i}]"),
                format!("{h:?} is not a forwarding header (X-Forwarded-*, Forwarded, X-Original-*, ...); other headers reach the origin anyway"),
            ));
        }
        Ok(Forwarding {
            trusted_proxies,
            pass,
        })
    }
}

/// `[upstream]`: the origin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// `http://host:port` or `https://host:port` of the origin.
    pub url: Option<String>,
    /// PEM file of the CAs an `https://` origin's certificate must lead to; when set, the
    /// system's roots are not used.
    pub ca_file: Option<PathBuf>,
    /// The name an `https://` origin is asked for (SNI) and its certificate must carry
    /// (default: the URL's host).
    pub tls_server_name: Option<String>,
    /// Connect timeout (default `5s`).
    pub connect_timeout: Option<Setting<Span>>,
    /// Time to the response headers (default `60s`).
    pub response_timeout: Option<Setting<Span>>,
    /// Longest pause inside a response body (default `30s`).
    pub body_timeout: Option<Setting<Span>>,
}

/// The effective `[upstream]`.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The origin, `http://host:port` or `https://host:port`.
    pub url: http::Uri,
    /// How an `https://` origin is verified (`None` for `http://`).
    pub tls: Option<OriginTls>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time to the response headers.
    pub response_timeout: Duration,
    /// Longest pause inside a response body.
    pub body_timeout: Duration,
}

impl UpstreamSection {
    /// `[upstream]`, with `--upstream`.
    pub fn resolve(&self, o: &Overrides) -> Result<UpstreamSettings, SettingError> {
        let (url, key) = flag_or(&o.upstream, "--upstream", &self.url, "upstream.url");
        let url = url.ok_or_else(|| {
            SettingError::new(
                key,
                "no upstream: pass --upstream http://HOST:PORT or set [upstream] url",
            )
        })?;
        let url = parse_upstream(url).map_err(|reason| SettingError::new(key, reason))?;
        Ok(UpstreamSettings {
            tls: self.tls(&url, key)?,
            url,
            connect_timeout: get(
                &self.connect_timeout,
                "upstream.connect_timeout",
                Duration::from_secs(5),
            )?,
            response_timeout: get(
                &self.response_timeout,
                "upstream.response_timeout",
                Duration::from_secs(60),
            )?,
            body_timeout: get(
                &self.body_timeout,
                "upstream.body_timeout",
                CacheConfig::default().origin_body_timeout,
            )?,
        })
    }
}

impl UpstreamSection {
    /// `ca_file` and `tls_server_name`, for an `https://` origin; `url_key` names where the
    /// URL came from. Both are refused with an `http://` origin (they would be ignored).
    fn tls(&self, url: &http::Uri, url_key: &str) -> Result<Option<OriginTls>, SettingError> {
        if url.scheme() != Some(&http::uri::Scheme::HTTPS) {
            let set = [
                ("upstream.ca_file", self.ca_file.is_some()),
                ("upstream.tls_server_name", self.tls_server_name.is_some()),
            ];
            return match set.iter().find(|(_, on)| *on) {
                Some((key, _)) => Err(SettingError::new(
                    *key,
                    format!("applies to https:// origins only, and {url_key} is {url}"),
                )),
                None => Ok(None),
            };
        }
        let roots = match &self.ca_file {
            Some(path) => origin_tls::load_ca_file(path)
                .map_err(|e| SettingError::new("upstream.ca_file", e))?,
            None => origin_tls::system_roots(),
        };
        let name = match &self.tls_server_name {
            Some(n) => origin_tls::server_name(n)
                .map_err(|e| SettingError::new("upstream.tls_server_name", e))?,
            None => origin_tls::server_name(url.host().unwrap_or_default())
                .map_err(|e| SettingError::new(url_key, e))?,
        };
        Ok(Some(OriginTls::new(roots, name)))
    }
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

/// The effective `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Admin API address.
    pub listen: SocketAddr,
    /// Bearer tokens.
    pub tokens: Vec<String>,
    /// Networks allowed without a token.
    pub allow: Vec<IpNet>,
    /// Extra names the tokenless admin listener answers to.
    pub hosts: Vec<String>,
    /// Browser origins allowed to call.
    pub allow_origins: Vec<String>,
    /// Stored header values `explain` hides.
    pub redact: Vec<HeaderName>,
}

impl AdminSection {
    /// `[admin]`, with `--admin-listen` and `--admin-token`. `proxy` is the proxy's address:
    /// both listeners cannot bind the same socket (serve would fail on the second).
    pub fn resolve(&self, o: &Overrides, proxy: SocketAddr) -> Result<AdminSettings, SettingError> {
        let (listen, key) = flag_or(
            &o.admin_listen,
            "--admin-listen",
            &self.listen,
            "admin.listen",
        );
        let listen = parse_addr(key, listen.unwrap_or("127.0.0.1:8081"))?;
        if same_socket(listen, proxy) {
            return Err(SettingError::new(
                key,
                format!("{listen} is the proxy's address too (server.listen); the admin API needs its own"),
            ));
        }
        let mut tokens = self.tokens.clone();
        tokens.extend(o.admin_token.iter().cloned());
        if let Some(i) = tokens.iter().position(|t| t.len() < 8) {
            let key = match i < self.tokens.len() {
                true => format!("admin.tokens[{i}]"),
                false => "--admin-token".to_owned(),
            };
            return Err(SettingError::new(
                key,
                "an admin token must be at least 8 characters",
            ));
        }
        let allow = match &self.allow {
            Some(list) => nets("admin.allow", list)?,
            None if tokens.is_empty() => {
                vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
            }
            None => vec![],
        };
        Ok(AdminSettings {
            listen,
            tokens,
            allow,
            hosts: self.hosts.clone(),
            allow_origins: self.allow_origins.clone(),
            redact: header_names("admin.redact_headers", &self.redact_headers)?,
        })
    }
}

/// `[memory]`: the embedded store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// Capacity in bytes, e.g. `"256MiB"` (default 256 MiB).
    pub capacity: Option<Setting<Size>>,
}

impl MemorySection {
    /// The memory store's capacity in bytes, with `--memory-capacity`.
    pub fn resolve(&self, o: &Overrides) -> Result<u64, SettingError> {
        let (capacity, key) = match &o.memory_capacity {
            Some(flag) => (Setting::<Size>::from(flag.as_str()), "--memory-capacity"),
            None => match &self.capacity {
                Some(written) => (written.clone(), "memory.capacity"),
                None => return Ok(256 * 1024 * 1024),
            },
        };
        let bytes = capacity.get(key)?;
        if bytes < 1024 * 1024 {
            return Err(SettingError::new(key, "must be at least 1MiB"));
        }
        Ok(bytes)
    }
}

/// `[cache]`: caching behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Largest stored body, e.g. `"16MiB"`.
    pub max_object_size: Option<Setting<Size>>,
    /// Store responses that set cookies (the cookie is not stored).
    pub store_set_cookie: Option<bool>,
    /// Default `stale-while-revalidate`, e.g. `"30s"`.
    pub stale_while_revalidate: Option<Setting<Span>>,
    /// Default `stale-if-error`, e.g. `"1h"`.
    pub stale_if_error: Option<Setting<Span>>,
    /// How long stale objects with validators are kept for revalidation.
    pub keep: Option<Setting<Span>>,
    /// Response headers read for tags.
    pub tag_headers: Option<Vec<String>>,
    /// Remove tag headers from client responses (default true).
    pub strip_tag_headers: Option<bool>,
    /// Scheme clients use (`http`, or `https` behind a TLS terminator).
    pub scheme: Option<String>,
    /// Compare requests' `Vary` values in their meaning-preserving normal form (default
    /// true); false compares them byte for byte.
    pub normalize_vary: Option<bool>,
    /// Vanish's own targeted field (RFC 9213), default `Vanish-Cache-Control`.
    pub targeted_field: Option<String>,
    /// Honour clients' `no-cache` / `max-age` / `min-fresh` on fresh objects (default true).
    pub client_revalidation: Option<bool>,
    /// Heuristic freshness as a fraction of the time since `Last-Modified` (default 0: off).
    pub heuristic_fraction: Option<f32>,
    /// The longest heuristic freshness, e.g. `"1d"`.
    pub heuristic_max: Option<Setting<Span>>,
    /// Compress identity responses of `compress_types` once, when stored (default false).
    pub compress: Option<bool>,
    /// The media types compressed (`type/subtype` or `type/*`; default: HTML, CSS,
    /// JavaScript, JSON, XML, SVG, plain text and web manifests).
    pub compress_types: Option<Vec<String>>,
    /// Smaller bodies stay identity (default `1KiB`).
    pub compress_min_size: Option<Setting<Size>>,
    /// The coding stored: `gzip` (the default) or `br`.
    pub compress_encoding: Option<String>,
}

impl CacheSection {
    /// `[cache]`: the engine's settings this section holds; the others keep their defaults
    /// (the rest of the configuration fills them in).
    pub fn resolve(&self) -> Result<CacheConfig, SettingError> {
        let d = CacheConfig::default();
        let scheme = match self.scheme.as_deref() {
            None => d.scheme,
            Some(s) => Scheme::parse(s).ok_or_else(|| {
                SettingError::new("cache.scheme", format!("expected http or https, got {s:?}"))
            })?,
        };
        let tag_headers = match &self.tag_headers {
            None => d.tag_headers.clone(),
            Some(list) => list
                .iter()
                .map(|n| TagHeader::parse(n).map_err(|e| SettingError::new("cache.tag_headers", e)))
                .collect::<Result<_, _>>()?,
        };
        Ok(CacheConfig {
            scheme,
            max_object_size: usize_size(
                &self.max_object_size,
                "cache.max_object_size",
                d.max_object_size,
            )?,
            store_set_cookie: self.store_set_cookie.unwrap_or(d.store_set_cookie),
            default_stale_while_revalidate: get(
                &self.stale_while_revalidate,
                "cache.stale_while_revalidate",
                d.default_stale_while_revalidate,
            )?,
            default_stale_if_error: get(
                &self.stale_if_error,
                "cache.stale_if_error",
                d.default_stale_if_error,
            )?,
            keep: get(&self.keep, "cache.keep", d.keep)?,
            tag_headers,
            strip_tag_headers: self.strip_tag_headers.unwrap_or(d.strip_tag_headers),
            vary_values: match self.normalize_vary {
                Some(false) => ValueForm::AsReceived,
                Some(true) => ValueForm::Normal,
                None => d.vary_values,
            },
            targeted_field: self.targeted_field()?.unwrap_or(d.targeted_field.clone()),
            client_revalidation: self.client_revalidation.unwrap_or(d.client_revalidation),
            heuristic_fraction: self.heuristic_fraction()?.unwrap_or(d.heuristic_fraction),
            heuristic_max: get(&self.heuristic_max, "cache.heuristic_max", d.heuristic_max)?,
            compression: self.compression(&d.compression)?,
            ..d
        })
    }

    /// `compress`, `compress_types`, `compress_min_size`, `compress_encoding`.
    fn compression(&self, d: &Compression) -> Result<Compression, SettingError> {
        let types = match &self.compress_types {
            None => d.types.clone(),
            Some(list) => list
                .iter()
                .map(|t| parse_type(t).map_err(|e| SettingError::new("cache.compress_types", e)))
                .collect::<Result<_, _>>()?,
        };
        let encoding = match self.compress_encoding.as_deref() {
            None => d.encoding,
            Some(e) => match Coding::from_token(e) {
                Some(c @ (Coding::Gzip | Coding::Br)) => c,
                _ => {
                    return Err(SettingError::new(
                        "cache.compress_encoding",
                        format!("expected \"gzip\" or \"br\", got {e:?}"),
                    ))
                }
            },
        };
        let min_size = usize_size(
            &self.compress_min_size,
            "cache.compress_min_size",
            d.min_size,
        )?;
        Ok(Compression {
            enabled: self.compress.unwrap_or(d.enabled),
            types,
            min_size,
            encoding,
        })
    }

    fn targeted_field(&self) -> Result<Option<http::HeaderName>, SettingError> {
        let Some(name) = &self.targeted_field else {
            return Ok(None);
        };
        let key = "cache.targeted_field";
        let parsed = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SettingError::new(key, format!("{name:?} is not a header name")))?;
        if parsed == http::header::CACHE_CONTROL || parsed.as_str() == "cdn-cache-control" {
            return Err(SettingError::new(
                key,
                format!("{name:?} is not cache-specific (Vanish reads it anyway)"),
            ));
        }
        Ok(Some(parsed))
    }

    fn heuristic_fraction(&self) -> Result<Option<f32>, SettingError> {
        match self.heuristic_fraction {
            Some(f) if !(0.0..=1.0).contains(&f) => Err(SettingError::new(
                "cache.heuristic_fraction",
                format!("must be between 0 and 1, got {f}"),
            )),
            other => Ok(other),
        }
    }
}

/// `[limits]`: bounds on what clients, origins and admins may make Vanish do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Request line plus headers (default `64KiB`; answered 431 past it).
    pub max_header_bytes: Option<Setting<Size>>,
    /// Request target (default `8KiB`; answered 414 past it).
    pub max_url_bytes: Option<Setting<Size>>,
    /// Variants kept per resource, in every store (default 200; the oldest goes).
    pub max_variants: Option<usize>,
    /// Tags per object (default 256; a response with more is not stored).
    pub max_tags: Option<usize>,
    /// Bytes per tag (default 512; a response with a longer tag is not stored).
    pub max_tag_bytes: Option<usize>,
    /// Selectors per purge request (default 1000; answered 400 past it).
    pub max_selectors: Option<usize>,
    /// Range-specs in one `Range` header (default 100; a header with more is ignored and the
    /// whole response served).
    pub max_ranges: Option<usize>,
    /// Admin request body (default `1MiB`; answered 413 past it).
    pub max_admin_body: Option<Setting<Size>>,
    /// Concurrent requests to the origin (default 512; others wait up to the response timeout).
    pub max_origin_connections: Option<usize>,
    /// Concurrent client connections (default 10000; further connections wait to be accepted).
    pub max_client_connections: Option<usize>,
    /// Free connection slots kept: when no more are free, the oldest idle connections (no
    /// request in progress) are closed (default a tenth of max_client_connections).
    pub connection_reserve: Option<usize>,
    /// Longest wait for a request head, from accepting a connection and from the end of each
    /// response (so also how long an idle keep-alive connection stays open; default `30s`).
    pub header_read_timeout: Option<Setting<Span>>,
    /// Longest wait for the next piece of a request body (default `30s`; answered 408).
    pub body_read_timeout: Option<Setting<Span>>,
    /// Most bytes a stored `gzip`/`br` body may decode to per encoded byte (default 100;
    /// past it the response is passed, not stored).
    pub max_decoded_ratio: Option<u64>,
    /// Most bytes a stored `gzip`/`br` body may decode to (default four times
    /// `cache.max_object_size`; past it the response is passed, not stored).
    pub max_decoded_size: Option<Setting<Size>>,
    /// Concurrent HTTP/2 streams per client connection (default 100; more are refused
    /// with `REFUSED_STREAM` until one ends).
    pub max_streams_per_connection: Option<usize>,
}

/// The effective limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers.
    pub max_header_bytes: usize,
    /// Request target.
    pub max_url_bytes: usize,
    /// Variants per resource (every store).
    pub max_variants: usize,
    /// Tags per object.
    pub max_tags: usize,
    /// Bytes per tag.
    pub max_tag_bytes: usize,
    /// Selectors per purge request.
    pub max_selectors: usize,
    /// Range-specs per `Range` header.
    pub max_ranges: usize,
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
    /// Decoded bytes per encoded byte a stored `gzip`/`br` body may have.
    pub max_decoded_ratio: u64,
    /// Decoded bytes a stored `gzip`/`br` body may have (`None`: four times the largest
    /// stored object).
    pub max_decoded_size: Option<u64>,
    /// Concurrent HTTP/2 streams per client connection.
    pub max_streams_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let cache = CacheConfig::default();
        Limits {
            max_header_bytes: 64 * 1024,
            max_url_bytes: 8 * 1024,
            max_variants: 200,
            max_tags: cache.max_tags,
            max_tag_bytes: cache.max_tag_bytes,
            max_selectors: 1000,
            max_ranges: cache.max_ranges,
            max_admin_body: 1024 * 1024,
            max_origin_connections: 512,
            max_client_connections: 10_000,
            connection_reserve: 1_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            max_decoded_ratio: DecodeLimits::default().max_ratio,
            max_decoded_size: None,
            max_streams_per_connection: 100,
        }
    }
}

impl LimitsSection {
    /// `[limits]`.
    pub fn resolve(&self) -> Result<Limits, SettingError> {
        let d = Limits::default();
        let timeout = |v: &Option<Setting<Span>>, key: &str, default: Duration| {
            let t = get(v, key, default)?;
            match t.is_zero() {
                true => Err(SettingError::new(key, "must be more than 0")),
                false => Ok(t),
            }
        };
        let max_client_connections = connections(
            self.max_client_connections,
            "limits.max_client_connections",
            d.max_client_connections,
        )?;
        let connection_reserve = match self.connection_reserve {
            Some(r) if r >= max_client_connections => {
                let why = format!(
                    "{r} must be below limits.max_client_connections ({max_client_connections})"
                );
                return Err(SettingError::new("limits.connection_reserve", why));
            }
            Some(r) => r,
            None => max_client_connections / 10,
        };
        let out = Limits {
            max_header_bytes: usize_size(
                &self.max_header_bytes,
                "limits.max_header_bytes",
                d.max_header_bytes,
            )?,
            max_url_bytes: usize_size(
                &self.max_url_bytes,
                "limits.max_url_bytes",
                d.max_url_bytes,
            )?,
            max_variants: positive(self.max_variants, "limits.max_variants", d.max_variants)?,
            max_tags: positive(self.max_tags, "limits.max_tags", d.max_tags)?,
            max_tag_bytes: positive(self.max_tag_bytes, "limits.max_tag_bytes", d.max_tag_bytes)?,
            max_selectors: positive(self.max_selectors, "limits.max_selectors", d.max_selectors)?,
            max_ranges: positive(self.max_ranges, "limits.max_ranges", d.max_ranges)?,
            max_admin_body: usize_size(
                &self.max_admin_body,
                "limits.max_admin_body",
                d.max_admin_body,
            )?,
            max_origin_connections: connections(
                self.max_origin_connections,
                "limits.max_origin_connections",
                d.max_origin_connections,
            )?,
            max_client_connections,
            connection_reserve,
            header_read_timeout: timeout(
                &self.header_read_timeout,
                "limits.header_read_timeout",
                d.header_read_timeout,
            )?,
            body_read_timeout: timeout(
                &self.body_read_timeout,
                "limits.body_read_timeout",
                d.body_read_timeout,
            )?,
            max_decoded_ratio: match self.max_decoded_ratio {
                Some(0) => {
                    return Err(SettingError::new(
                        "limits.max_decoded_ratio",
                        "must be at least 1",
                    ))
                }
                r => r.unwrap_or(d.max_decoded_ratio),
            },
            max_decoded_size: match &self.max_decoded_size {
                None => None,
                Some(_) => match get(&self.max_decoded_size, "limits.max_decoded_size", 0)? {
                    0 => {
                        return Err(SettingError::new(
                            "limits.max_decoded_size",
                            "must be more than 0",
                        ))
                    }
                    n => Some(n),
                },
            },
            max_streams_per_connection: streams(
                self.max_streams_per_connection,
                d.max_streams_per_connection,
            )?,
        };
        // hyper's smallest read buffer; a smaller one would panic when the listener starts.
        if out.max_header_bytes < 8192 {
            return Err(SettingError::new(
                "limits.max_header_bytes",
                "must be at least 8KiB",
            ));
        }
        if out.max_url_bytes < 256 {
            return Err(SettingError::new(
                "limits.max_url_bytes",
                "must be at least 256 bytes",
            ));
        }
        Ok(out)
    }
}

impl Limits {
    /// The engine's decode limits, for a cache whose largest object is `max_object_size`.
    pub fn decode_limits(&self, max_object_size: usize) -> DecodeLimits {
        DecodeLimits {
            max_ratio: self.max_decoded_ratio,
            max_size: self
                .max_decoded_size
                .unwrap_or((max_object_size as u64).saturating_mul(4)),
        }
    }
}

/// HTTP/2 streams per connection: at least 1, and what the protocol can say (`u32`).
fn streams(v: Option<usize>, default: u32) -> Result<u32, SettingError> {
    let key = "limits.max_streams_per_connection";
    let n = positive(v, key, default as usize)?;
    u32::try_from(n).map_err(|_| SettingError::new(key, format!("must be at most {}", u32::MAX)))
}

/// A count that must be at least 1.
fn positive(v: Option<usize>, key: &str, default: usize) -> Result<usize, SettingError> {
    match v {
        Some(0) => Err(SettingError::new(key, "must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// A number of connections: at least 1, and at most what a semaphore can count (a larger
/// one would panic when serve starts).
fn connections(v: Option<usize>, key: &str, default: usize) -> Result<usize, SettingError> {
    let n = positive(v, key, default)?;
    let max = tokio::sync::Semaphore::MAX_PERMITS;
    match n > max {
        true => Err(SettingError::new(key, format!("must be at most {max}"))),
        false => Ok(n),
    }
}

/// A size that must fit in memory (`usize`).
fn usize_size(v: &Option<Setting<Size>>, key: &str, default: usize) -> Result<usize, SettingError> {
    let bytes = get(v, key, default as u64)?;
    usize::try_from(bytes)
        .map_err(|_| SettingError::new(key, format!("{bytes} bytes is too large")))
}

/// Flags of `vanish serve` that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--listen-tls`.
    pub listen_tls: Option<String>,
    /// `--tls-cert`.
    pub tls_cert: Option<String>,
    /// `--tls-key`.
    pub tls_key: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--admin-token`.
    pub admin_token: Option<String>,
    /// `--memory-capacity`.
    pub memory_capacity: Option<String>,
    /// `--disk-path`.
    pub disk_path: Option<String>,
    /// `--disk-capacity`.
    pub disk_capacity: Option<String>,
}

/// The effective settings of a running Vanish.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Proxy address.
    pub listen: SocketAddr,
    /// The proxy's TLS listener, if any.
    pub tls: Option<TlsSettings>,
    /// PROXY protocol headers expected on the proxy's listeners (plain and TLS).
    pub proxy_protocol: bool,
    /// `[admin]`: the admin API's listener and who may call it.
    pub admin: AdminSettings,
    /// The origin, `http://host:port` or `https://host:port`.
    pub upstream: http::Uri,
    /// How an `https://` origin is verified (`None` for `http://`).
    pub upstream_tls: Option<OriginTls>,
    /// Connect timeout to the origin.
    pub connect_timeout: Duration,
    /// Time to the origin's response headers.
    pub response_timeout: Duration,
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
    /// `[disk]`: the disk tier beneath the memory store, when configured.
    pub disk: Option<vanish_disk::DiskConfig>,
    /// `[server] purge_on_proxy`: `PURGE` on the proxy listener handled as on the admin one.
    pub purge_on_proxy: bool,
}

/// The upstream `vanish check-config` assumes when the file names none (serve takes it from
/// `--upstream`); the `https://` one when the file has TLS settings for its origin.
const PLACEHOLDER_UPSTREAM: &str = "http://127.0.0.1:8000";
const PLACEHOLDER_HTTPS_UPSTREAM: &str = "https://127.0.0.1:8000";

/// What `vanish check-config FILE` runs: the file resolved exactly as `vanish serve --config
/// FILE` resolves it, with a placeholder upstream when the file names none. Returns the
/// settings, and whether the upstream is that placeholder.
pub fn check(path: &Path) -> Result<(Settings, bool), ConfigError> {
    let (text, file) = read(path)?;
    let missing_upstream = file.upstream.url.is_none();
    let tls = file.upstream.ca_file.is_some() || file.upstream.tls_server_name.is_some();
    let placeholder = match tls {
        true => PLACEHOLDER_HTTPS_UPSTREAM,
        false => PLACEHOLDER_UPSTREAM,
    };
    let o = Overrides {
        upstream: missing_upstream.then(|| placeholder.to_owned()),
        ..Default::default()
    };
    let s =
        Settings::from_parts_with_source(file, &o, Some(&text)).map_err(|e| in_file(path, e))?;
    Ok((s, missing_upstream))
}

/// Reads and parses the file; errors name it.
fn read(path: &Path) -> Result<(String, FileConfig), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let file = parse_file(&text).map_err(|e| in_file(path, e))?;
    Ok((text, file))
}

fn in_file(path: &Path, e: ConfigError) -> ConfigError {
    ConfigError::InFile {
        path: path.to_owned(),
        error: Box::new(e),
    }
}

impl Settings {
    /// Reads the optional file and applies the flags (`vanish serve`).
    pub fn load(path: Option<&Path>, o: &Overrides) -> Result<Settings, ConfigError> {
        match path {
            Some(p) => {
                let (text, file) = read(p)?;
                Self::from_parts_with_source(file, o, Some(&text)).map_err(|e| in_file(p, e))
            }
            None => Self::from_parts(FileConfig::default(), o),
        }
    }

    /// Combines a parsed file and flags.
    pub fn from_parts(f: FileConfig, o: &Overrides) -> Result<Settings, ConfigError> {
        Self::from_parts_with_source(f, o, None)
    }

    /// Combines a parsed file and flags, resolving every section; `source` (the file's text)
    /// lets key rule errors name lines.
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
        .map_err(|error| ConfigError::Rule {
            line: source.and_then(|t| policy_error_line(t, &error)),
            error,
        })?;
        let upstream = f.upstream.resolve(o)?;
        let server = f.server.resolve(o)?;
        let admin = f.admin.resolve(o, server.listen)?;
        if let Some(tls) = server
            .tls
            .as_ref()
            .filter(|t| same_socket(t.listen, admin.listen))
        {
            let key = match o.listen_tls {
                Some(_) => "--listen-tls",
                None => "server.listen_tls",
            };
            return Err(SettingError::new(
                key,
                format!(
                    "{} is the admin API's address too (admin.listen); TLS needs its own",
                    tls.listen
                ),
            )
            .into());
        }
        let memory_capacity = f.memory.resolve(o)?;
        let limits = f.limits.resolve()?;
        let store = f.store.resolve(&f.redis, &limits)?;
        let disk = f.disk.resolve(o, &limits)?;
        if disk.is_some() && matches!(store, StoreChoice::Redis(_)) {
            return Err(SettingError::new(
                "disk.path",
                "the disk tier sits beneath the memory store; it is not available with [store] kind = \"redis\"",
            )
            .into());
        }
        let cache = f.cache.resolve()?;
        let decode_limits = limits.decode_limits(cache.max_object_size);
        let cache = CacheConfig {
            origin_body_timeout: upstream.body_timeout,
            max_tags: limits.max_tags,
            max_tag_bytes: limits.max_tag_bytes,
            max_ranges: limits.max_ranges,
            forwarding: server.forwarding,
            decode_limits,
            ..cache
        };
        Ok(Settings {
            listen: server.listen,
            tls: server.tls,
            proxy_protocol: server.proxy_protocol,
            upstream: upstream.url,
            upstream_tls: upstream.tls,
            connect_timeout: upstream.connect_timeout,
            response_timeout: upstream.response_timeout,
            admin,
            memory_capacity,
            shutdown_grace: server.shutdown_grace,
            cache,
            policy: Arc::new(policy),
            limits,
            store,
            disk,
            purge_on_proxy: server.purge_on_proxy,
        })
    }
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
        s.listen, s.admin.listen, upstream, s.memory_capacity, s.admin.tokens.len(),
        s.admin.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>()
    ));
    if let Some(t) = &s.tls {
        let names: Vec<String> = t.certs.names().iter().map(|n| n.join(" ")).collect();
        out.push_str(&format!(
            "listen tls    {} (certificates, the first is the default: {})\n",
            t.listen,
            names.join("; ")
        ));
    }
    if s.proxy_protocol {
        out.push_str("proxy proto   PROXY v1/v2 header required on the proxy's listeners\n");
    }
    if let Some(tls) = &s.upstream_tls {
        out.push_str(&format!("origin tls    {}\n", tls.describe()));
    }
    out.push_str(&format!(
        "proxy PURGE   {}\n",
        match s.purge_on_proxy {
            true => "handled (server.purge_on_proxy; admin authentication)",
            false => "refused with 405 (server.purge_on_proxy = false)",
        }
    ));
    let c = &s.cache;
    out.push_str(&format!(
        "cache         max object {} bytes, stale-while-revalidate {:?}, stale-if-error {:?}, keep {:?}, set-cookie stored: {}\n",
        c.max_object_size, c.default_stale_while_revalidate, c.default_stale_if_error, c.keep, c.store_set_cookie
    ));
    if let Some(d) = &s.disk {
        out.push_str(&format!(
            "disk          {} ({} bytes, admit {:?})\n",
            d.path.display(),
            d.capacity,
            d.admit
        ));
    }
    let z = &c.compression;
    let compression = match z.enabled {
        true => format!(
            "{} at store, {} type(s), from {} bytes",
            z.encoding.token(),
            z.types.len(),
            z.min_size
        ),
        false => "off".to_owned(),
    };
    out.push_str(&format!(
        "compression   {compression}; stored gzip/br bodies decode to at most {} bytes, {}x\n",
        c.decode_limits.max_size, c.decode_limits.max_ratio
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
        ConfigError::Syntax {
            line: e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
            message: msg,
        }
    })
}

/// Parses and checks an upstream URL (`http://host[:port]` or `https://host[:port]`, no
/// path); the error is the reason.
pub fn parse_upstream(s: &str) -> Result<http::Uri, String> {
    let bad = |why: &str| format!("invalid upstream URL {s:?}: {why}");
    let uri: http::Uri = s.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(bad("must not have a path"));
    }
    Ok(uri)
}

/// A flag's value (which wins) or the file's, with the key to name in errors.
fn flag_or<'a>(
    flag: &'a Option<String>,
    flag_key: &'static str,
    file: &'a Option<String>,
    file_key: &'static str,
) -> (Option<&'a str>, &'static str) {
    match flag {
        Some(v) => (Some(v), flag_key),
        None => (file.as_deref(), file_key),
    }
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, SettingError> {
    s.parse()
        .map_err(|_| SettingError::new(key, format!("{s:?} is not an IP:PORT address")))
}

/// Whether two listeners would fight over one socket: the same port (not 0, which picks a free
/// one), and the same address or one covering the other (`0.0.0.0` covers IPv4, `[::]` all).
fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |x: SocketAddr, y: SocketAddr| x.ip().is_unspecified() && (x.is_ipv6() || y.is_ipv4());
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

fn header_names(key: &str, names: &[String]) -> Result<Vec<HeaderName>, SettingError> {
    names
        .iter()
        .enumerate()
        .map(|(i, h)| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                SettingError::new(format!("{key}[{i}]"), format!("{h:?} is not a header name"))
            })
        })
        .collect()
}

/// Addresses or networks (`10.0.0.0/8`, `::1`).
fn nets(key: &str, list: &[String]) -> Result<Vec<IpNet>, SettingError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingError::new(
                        format!("{key}[{i}]"),
                        format!("{s:?} is not an IP address or network"),
                    )
                })
        })
        .collect()
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
        assert_eq!(s.admin.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(s.memory_capacity, 256 << 20);
        assert_eq!(s.admin.allow.len(), 2);
    }

    #[test]
    fn bad_upstreams() {
        for u in [
            "localhost:8000",
            "ftp://h",
            "https://h/path",
            "http://h/path",
            "http://",
        ] {
            let e = Settings::from_parts(FileConfig::default(), &o(u)).unwrap_err();
            assert!(e.to_string().contains("upstream"), "{u}: {e}");
        }
    }

    #[test]
    fn https_upstreams_and_their_tls_settings() {
        let s =
            Settings::from_parts(FileConfig::default(), &o("https://app.internal:8443")).unwrap();
        let tls = s.upstream_tls.expect("https has TLS settings");
        assert_eq!(tls.server_name().to_str(), "app.internal");
        let plain = Settings::from_parts(FileConfig::default(), &o("http://h:1")).unwrap();
        assert!(plain.upstream_tls.is_none());
        assert!(!plain.purge_on_proxy, "off by default");
        let f = parse_file("[upstream]\ntls_server_name = \"origin.internal\"\n").unwrap();
        let s = Settings::from_parts(f, &o("https://10.0.0.5:8443")).unwrap();
        assert_eq!(
            s.upstream_tls.unwrap().server_name().to_str(),
            "origin.internal"
        );
        // (TOML, upstream, the error's start)
        let bad = [
            (
                "[upstream]\nca_file = \"/ca.pem\"\n",
                "http://h:1",
                "upstream.ca_file: applies to https:// origins only",
            ),
            (
                "[upstream]\ntls_server_name = \"x\"\n",
                "http://h:1",
                "upstream.tls_server_name: applies to https:// origins only",
            ),
            (
                "[upstream]\ntls_server_name = \"not a name\"\n",
                "https://h:1",
                "upstream.tls_server_name: \"not a name\" is not",
            ),
            (
                "[upstream]\nca_file = \"/nonexistent/ca.pem\"\n",
                "https://h:1",
                "upstream.ca_file: cannot read /nonexistent/ca.pem",
            ),
        ];
        for (toml, url, want) in bad {
            let e = Settings::from_parts(parse_file(toml).unwrap(), &o(url)).unwrap_err();
            assert!(e.to_string().starts_with(want), "{toml}: {e}");
        }
        let f = parse_file("[server]\npurge_on_proxy = true\n").unwrap();
        assert!(
            Settings::from_parts(f, &o("http://h:1"))
                .unwrap()
                .purge_on_proxy
        );
    }

    #[test]
    fn file_errors_name_line_and_key() {
        let e = parse_file("[cache]\nstore_set_cookie = true\nbogus = 1\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 3:") && e.to_string().contains("bogus"),
            "{e}"
        );
        let f = parse_file("[cache]\nstale_if_error = \"soon\"\n").unwrap();
        let e = Settings::from_parts(f, &o("http://h:1")).unwrap_err();
        assert!(e.to_string().contains("cache.stale_if_error"), "{e}");
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
            s.admin.allow.is_empty(),
            "a token disables the loopback default"
        );
    }

    #[test]
    fn policy_errors_name_the_line() {
        let text = "[cache]\nkeep = \"1m\"\n\n[[rules]]\npath = \"/a/*\"\n\n[[rules]]\nname = \"b\"\npath = \"/b/[\"\n";
        let f = parse_file(text).unwrap();
        let e = Settings::from_parts_with_source(f, &o("http://h:1"), Some(text)).unwrap_err();
        assert!(
            e.to_string().starts_with("line 9: rules[1].path: bad glob"),
            "{e}"
        );
        let text = "[default_rule]\nsort_query = true\nttl = \"never\"\n";
        let e = Settings::from_parts_with_source(
            parse_file(text).unwrap(),
            &o("http://h:1"),
            Some(text),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("line 3: ttl:"), "{e}");
        let text = "[[rules]]\npath = \"/x\"\nkeep_query = [\"a\"]\ndrop_query = [\"b\"]\n";
        let e = Settings::from_parts_with_source(
            parse_file(text).unwrap(),
            &o("http://h:1"),
            Some(text),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("line 3: rules[0].keep_query"),
            "{e}"
        );
        let e = parse_file("[[rules]]\npath = \"/x\"\nunknown = 1\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 3:") && e.to_string().contains("unknown"),
            "{e}"
        );
    }

    #[test]
    fn max_ranges_reaches_the_engine_and_must_be_positive() {
        let s = |toml: &str| Settings::from_parts(parse_file(toml).unwrap(), &o("http://h:1"));
        assert_eq!(s("").unwrap().cache.max_ranges, 100);
        assert_eq!(s("[limits]\nmax_ranges = 7\n").unwrap().cache.max_ranges, 7);
        let e = s("[limits]\nmax_ranges = 0\n").unwrap_err();
        assert!(e.to_string().starts_with("limits.max_ranges"), "{e}");
    }

    #[test]
    fn sizes_and_durations_name_their_key() {
        let s = |toml: &str| Settings::from_parts(parse_file(toml).unwrap(), &o("http://h:1"));
        let l = s("[limits]\nmax_header_bytes = 65536\nmax_url_bytes = \"16KiB\"\n")
            .unwrap()
            .limits;
        assert_eq!((l.max_header_bytes, l.max_url_bytes), (65536, 16 << 10));
        let e = s("[limits]\nmax_admin_body = \"12XB\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "limits.max_admin_body: \"12XB\" is not a size such as \"64MiB\" (unknown unit \"XB\")"
        );
        let e = s("[cache]\nmax_object_size = true\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cache.max_object_size: expected a size such as \"64MiB\", found a boolean"
        );
        let e = s("[upstream]\nconnect_timeout = 5\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("upstream.connect_timeout: 5 is not a duration"),
            "{e}"
        );
        let mut flags = o("http://h:1");
        flags.memory_capacity = Some("ten".into());
        let e = Settings::from_parts(FileConfig::default(), &flags).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--memory-capacity: \"ten\" is not a size"),
            "{e}"
        );
    }

    #[test]
    fn the_variant_limit_reaches_the_redis_store() {
        let f = parse_file("[store]\nkind = \"redis\"\n[limits]\nmax_variants = 7\n").unwrap();
        let s = Settings::from_parts(f, &o("http://h:1")).unwrap();
        assert_eq!(
            s.limits.max_variants, 7,
            "the memory store is built from this"
        );
        let StoreChoice::Redis(r) = s.store else {
            panic!("redis chosen")
        };
        assert_eq!(r.max_variants, 7);
    }

    #[test]
    fn listeners_cannot_share_a_socket() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(same_socket(addr("127.0.0.1:80"), addr("127.0.0.1:80")));
        assert!(same_socket(addr("0.0.0.0:80"), addr("127.0.0.1:80")));
        assert!(same_socket(addr("127.0.0.1:80"), addr("[::]:80")));
        assert!(!same_socket(addr("0.0.0.0:80"), addr("[::1]:80")));
        assert!(!same_socket(addr("127.0.0.1:0"), addr("127.0.0.1:0")));
        assert!(!same_socket(addr("127.0.0.1:80"), addr("127.0.0.2:80")));
        let mut flags = o("http://h:1");
        flags.listen = Some("127.0.0.1:9000".into());
        let f = parse_file("[admin]\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let e = Settings::from_parts(f, &flags).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("admin.listen: 0.0.0.0:9000 is the proxy's address"),
            "{e}"
        );
    }

    #[test]
    fn the_tls_listener_needs_its_own_socket_and_a_certificate() {
        let dir = std::env::temp_dir().join(format!("vanish-cfg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()]).unwrap();
        let (cert, key) = (dir.join("a.pem"), dir.join("a.key"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        let server = |listen_tls: &str| {
            format!(
                "[server]\nlisten = \"127.0.0.1:9000\"\nlisten_tls = {listen_tls:?}\ntls_cert = {:?}\ntls_key = {:?}\n[admin]\nlisten = \"127.0.0.1:9001\"\n",
                cert.to_str().unwrap(),
                key.to_str().unwrap()
            )
        };
        let load = |text: &str| Settings::from_parts(parse_file(text).unwrap(), &o("http://h:1"));
        let s = load(&server("127.0.0.1:9443")).unwrap();
        let tls = s.tls.expect("a TLS listener");
        assert_eq!(tls.listen, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(tls.certs.names(), [["a.test"]]);
        assert!(!s.proxy_protocol);
        for (addr, needle) in [
            (
                "0.0.0.0:9000",
                "server.listen_tls: 0.0.0.0:9000 is the plain listener's address",
            ),
            (
                "127.0.0.1:9001",
                "server.listen_tls: 127.0.0.1:9001 is the admin API's address",
            ),
            (
                "nowhere",
                "server.listen_tls: \"nowhere\" is not an IP:PORT address",
            ),
        ] {
            let e = load(&server(addr)).unwrap_err().to_string();
            assert!(e.starts_with(needle), "{e}");
        }
        let e = load("[limits]\nmax_streams_per_connection = 0\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("limits.max_streams_per_connection"),
            "{e}"
        );
        assert_eq!(load("").unwrap().limits.max_streams_per_connection, 100);
    }

    #[test]
    fn connection_limits_fit_a_semaphore() {
        let toml = format!(
            "[limits]\nmax_origin_connections = {}\n",
            tokio::sync::Semaphore::MAX_PERMITS + 1
        );
        let e = Settings::from_parts(parse_file(&toml).unwrap(), &o("http://h:1")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("limits.max_origin_connections: must be at most"),
            "{e}"
        );
    }

    #[test]
    fn freshness_settings() {
        let f = parse_file(
            "[cache]\ntargeted_field = \"Edge-Cache-Control\"\nclient_revalidation = false\n\
             heuristic_fraction = 0.1\nheuristic_max = \"1h\"\n",
        )
        .unwrap();
        let c = f.cache.resolve().unwrap();
        assert_eq!(c.targeted_field.as_str(), "edge-cache-control");
        assert!(!c.client_revalidation);
        assert_eq!(c.heuristic_fraction, 0.1);
        assert_eq!(c.heuristic_max, std::time::Duration::from_secs(3600));
        let d = parse_file("").unwrap().cache.resolve().unwrap();
        assert_eq!(d.targeted_field.as_str(), "vanish-cache-control");
        assert!(d.client_revalidation);
        assert_eq!(d.heuristic_fraction, 0.0);
        // (TOML, the error's start)
        let bad = [
            (
                "targeted_field = \"cache-control\"",
                "cache.targeted_field:",
            ),
            (
                "targeted_field = \"CDN-Cache-Control\"",
                "cache.targeted_field:",
            ),
            ("targeted_field = \"a b\"", "cache.targeted_field:"),
            ("heuristic_fraction = 1.5", "cache.heuristic_fraction:"),
            ("heuristic_fraction = -0.1", "cache.heuristic_fraction:"),
            ("heuristic_max = 5", "cache.heuristic_max:"),
        ];
        for (toml, want) in bad {
            let e = parse_file(&format!("[cache]\n{toml}\n"))
                .unwrap()
                .cache
                .resolve()
                .unwrap_err();
            assert!(e.to_string().starts_with(want), "{toml}: {e}");
        }
    }

    #[test]
    fn compression_settings_and_decode_limits() {
        let s =
            |toml: &str| Settings::from_parts(parse_file(toml).unwrap(), &o("http://127.0.0.1:9"));
        let d = s("").unwrap();
        assert!(!d.cache.compression.enabled);
        assert_eq!(d.cache.decode_limits.max_ratio, 100);
        assert_eq!(
            d.cache.decode_limits.max_size,
            4 * d.cache.max_object_size as u64,
            "tied to the largest stored object"
        );
        let c = s("[cache]\ncompress = true\ncompress_types = [\"Text/HTML\", \"text/*\"]\n\
                   compress_min_size = \"2KiB\"\ncompress_encoding = \"br\"\nmax_object_size = \"1MiB\"\n\
                   [limits]\nmax_decoded_ratio = 20\n")
        .unwrap();
        let z = &c.cache.compression;
        assert!(z.enabled);
        assert_eq!(z.types, ["text/html", "text/*"]);
        assert_eq!(z.min_size, 2048);
        assert_eq!(z.encoding, Coding::Br);
        assert_eq!(c.cache.decode_limits.max_ratio, 20);
        assert_eq!(c.cache.decode_limits.max_size, 4 << 20);
        let l = s("[limits]\nmax_decoded_size = \"8MiB\"\n").unwrap();
        assert_eq!(l.cache.decode_limits.max_size, 8 << 20);
        let bad = [
            (
                "[cache]\ncompress_types = [\"html\"]",
                "cache.compress_types: \"html\" is not a media type",
            ),
            (
                "[cache]\ncompress_encoding = \"zstd\"",
                "cache.compress_encoding:",
            ),
            (
                "[cache]\ncompress_encoding = \"identity\"",
                "cache.compress_encoding:",
            ),
            (
                "[cache]\ncompress_min_size = \"lots\"",
                "cache.compress_min_size:",
            ),
            (
                "[limits]\nmax_decoded_ratio = 0",
                "limits.max_decoded_ratio: must be at least 1",
            ),
            (
                "[limits]\nmax_decoded_size = 0",
                "limits.max_decoded_size: must be more than 0",
            ),
        ];
        for (toml, want) in bad {
            let e = s(toml).unwrap_err().to_string();
            assert!(e.starts_with(want), "{toml}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
