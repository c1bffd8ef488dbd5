//! The command line: `serve`, `demo`, `purge`, `explain`.
//!
//! Owns argument parsing (clap) and the small HTTP client `purge` and `explain` use to talk
//! to a running Vanish's admin API. Errors print one line and exit non-zero.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// Vanish: an HTTP page cache whose first-class feature is invalidation.
#[derive(Debug, Parser)]
#[command(name = "vanish", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the caching reverse proxy (in-memory store).
    Serve(ServeArgs),
    /// Run the proxy in front of a small built-in origin, to try Vanish at once.
    Demo(DemoArgs),
    /// Purge cached pages through a running Vanish's admin API.
    Purge(PurgeArgs),
    /// Show what a running Vanish holds for a URL.
    Explain(ExplainArgs),
    /// Validate a configuration file and print the effective settings and key rules.
    CheckConfig(CheckConfigArgs),
}

/// `vanish check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML file.
    pub file: PathBuf,
}

/// `vanish serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The origin, e.g. http://127.0.0.1:8000 or https://app.internal:8443.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Proxy address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// TLS address of the proxy (HTTP/1.1 and HTTP/2), e.g. 127.0.0.1:8443.
    #[arg(long)]
    pub listen_tls: Option<String>,
    /// PEM certificate chain for the TLS address (the default certificate).
    #[arg(long)]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long)]
    pub tls_key: Option<String>,
    /// Admin API address [default: 127.0.0.1:8081].
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Bearer token for the admin API (or VANISH_ADMIN_TOKEN).
    #[arg(long, env = "VANISH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Memory store capacity, e.g. 256MiB.
    #[arg(long)]
    pub memory_capacity: Option<String>,
    /// Folder of the disk tier beneath the memory store (`[disk] path`).
    #[arg(long)]
    pub disk_path: Option<String>,
    /// Disk tier capacity, e.g. 10GiB (`[disk] capacity`).
    #[arg(long)]
    pub disk_capacity: Option<String>,
    /// TOML configuration file (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `vanish demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Proxy address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: String,
    /// Address of the built-in origin.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub origin_listen: String,
}

/// Where the admin API is, and how to authenticate.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// Admin API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin: String,
    /// Bearer token (or VANISH_ADMIN_TOKEN).
    #[arg(long, env = "VANISH_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `vanish purge`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["url", "path", "prefix", "tag", "host", "all"])))]
pub struct PurgeArgs {
    /// Admin API.
    #[command(flatten)]
    pub target: AdminTarget,
    /// One URL (all its variants).
    #[arg(long)]
    pub url: Option<String>,
    /// A path on any host.
    #[arg(long)]
    pub path: Option<String>,
    /// Every path starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Every object carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Everything of one host (with --prefix: restrict the prefix to this host).
    #[arg(long)]
    pub host: Option<String>,
    /// Everything.
    #[arg(long)]
    pub all: bool,
    /// With --url or --path: any query string.
    #[arg(long)]
    pub any_query: bool,
    /// With --path: exactly this query string.
    #[arg(long)]
    pub query: Option<String>,
    /// Only variants whose request had this header value (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Mark stale instead of removing.
    #[arg(long)]
    pub soft: bool,
    /// Count only.
    #[arg(long)]
    pub dry_run: bool,
}

/// `vanish explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Admin API.
    #[command(flatten)]
    pub target: AdminTarget,
    /// The URL to explain.
    pub url: String,
    /// A request header picking the variant (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
}

/// A CLI failure: one line, and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// The message.
    pub message: String,
    /// Exit code (2: bad usage or input, 1: the operation failed).
    pub code: i32,
}

impl CliError {
    fn usage(m: impl Into<String>) -> Self {
        CliError {
            message: m.into(),
            code: 2,
        }
    }
    fn failed(m: impl Into<String>) -> Self {
        CliError {
            message: m.into(),
            code: 1,
        }
    }
}

fn split_header(s: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .or_else(|| s.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| CliError::usage(format!("--header {s:?}: expected NAME=VALUE")))
}

/// Builds the JSON body of `POST /invalidate` from `vanish purge` flags.
pub fn purge_body(a: &PurgeArgs) -> Result<Value, CliError> {
    let mut sel = if let Some(u) = &a.url {
        json!({"type": "url", "url": u})
    } else if let Some(p) = &a.path {
        json!({"type": "path", "path": p})
    } else if let Some(p) = &a.prefix {
        json!({"type": "prefix", "prefix": p})
    } else if let Some(t) = &a.tag {
        json!({"type": "tag", "tag": t})
    } else if let Some(h) = &a.host {
        json!({"type": "host", "host": h})
    } else {
        json!({"type": "all"})
    };
    if a.prefix.is_some() {
        if let Some(h) = &a.host {
            sel["host"] = json!(h);
        }
    }
    if a.any_query {
        if a.url.is_none() && a.path.is_none() {
            return Err(CliError::usage("--any-query goes with --url or --path"));
        }
        sel["any_query"] = json!(true);
    }
    if let Some(q) = &a.query {
        if a.path.is_none() {
            return Err(CliError::usage("--query goes with --path"));
        }
        sel["query"] = json!(q);
    }
    if !a.headers.is_empty() {
        let mut h = serde_json::Map::new();
        for s in &a.headers {
            let (n, v) = split_header(s)?;
            h.insert(n, json!(v));
        }
        sel["headers"] = Value::Object(h);
    }
    Ok(json!({
        "selectors": [sel],
        "mode": if a.soft { "soft" } else { "hard" },
        "dry_run": a.dry_run,
    }))
}

/// Sends one request to the admin API; returns the JSON answer or a one-line error.
pub async fn admin_call(
    target: &AdminTarget,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<Value, CliError> {
    let base = target.admin.trim_end_matches('/');
    let uri: http::Uri = format!("{base}{path_and_query}")
        .parse()
        .map_err(|e| CliError::usage(format!("--admin {:?}: not a URL ({e})", target.admin)))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(CliError::usage(format!(
            "--admin {:?}: expected http://HOST:PORT",
            target.admin
        )));
    }
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = &target.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| {
            CliError::failed(format!(
                "admin API at {} did not answer in 30s",
                target.admin
            ))
        })?
        .map_err(|e| {
            CliError::failed(format!(
                "cannot reach the admin API at {}: {e}",
                target.admin
            ))
        })?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::failed(format!("reading the admin API's answer: {e}")))?
        .to_bytes();
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&body)}));
    if status != StatusCode::OK {
        let msg = v["error"].as_str().unwrap_or("request failed");
        let field = v["field"]
            .as_str()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        let code = if status.is_client_error() { 2 } else { 1 };
        return Err(CliError {
            message: format!("admin API answered {}: {msg}{field}", status.as_u16()),
            code,
        });
    }
    Ok(v)
}

/// The query string of `GET /explain`.
pub fn explain_query(a: &ExplainArgs) -> Result<String, CliError> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("url", &a.url);
    for h in &a.headers {
        let (n, v) = split_header(h)?;
        q.append_pair("header", &format!("{n}:{v}"));
    }
    Ok(format!("/explain?{}", q.finish()))
}
