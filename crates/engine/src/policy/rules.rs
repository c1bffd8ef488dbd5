//! Declarative key rules, as the TOML configuration states them.
//!
//! Owns [`RuleSpec`] / [`PolicySpec`] (what users write), their validation with errors naming
//! the rule and field, and [`RulesPolicy`], the compiled [`KeyPolicy`]. First matching rule
//! wins (by host and path glob); the default rule applies otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use http::request::Parts;
use http::{header, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::key_policy::{KeyPolicy, Prepared, RuleInfo};
use super::negotiation::{normalize_accept_encoding, normalize_accept_language};
use super::query::QueryRule;
use crate::freshness::Overrides;
use crate::key::{KeyError, ResourceKey};
use crate::purge::selector::{QueryMatch, Selector, Target};
use crate::settings::{Span, Spelling};
use crate::url::{hostname, normalize_authority, normalize_host, Scheme};

/// Statuses `http-cache-semantics` can store (it does not understand partial content).
pub const STORABLE_STATUSES: [u16; 14] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// One rule as written in the configuration (`[[rules]]` or `[default_rule]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Name shown by `explain` and `check-config`.
    pub name: Option<String>,
    /// Host glob (`*.example.com`), case-insensitive, matched without the port.
    pub host: Option<String>,
    /// Path glob (`/blog/*`; `*` crosses `/`).
    pub path: Option<String>,
    /// Query parameters to drop, by name or glob (`utm_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_query: Vec<String>,
    /// Keep only these query parameters (names or globs).
    pub keep_query: Option<Vec<String>>,
    /// Sort query parameters by name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sort_query: bool,
    /// Request headers added to the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_headers: Vec<String>,
    /// Cookies added to the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_cookies: Vec<String>,
    /// Reduce `Accept-Encoding` to `br`, `gzip` or identity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub normalize_accept_encoding: bool,
    /// Reduce `Accept-Language` to one of these (the first is the default).
    pub accept_language: Option<Vec<String>>,
    /// Pass requests carrying any of these cookies to the origin, uncached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass_cookies: Vec<String>,
    /// Remove cookies (except `key_cookies`) from requests that are not bypassed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_cookies: bool,
    /// Freshness lifetime overriding the response's, e.g. `"5m"`.
    pub ttl: Option<String>,
    /// Statuses that may be stored, e.g. `[200, 301, 404]`.
    pub cacheable_status: Option<Vec<u16>>,
    /// `stale-while-revalidate` for responses that give none, e.g. `"30s"`.
    pub grace: Option<String>,
}

/// The whole key policy as configured.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// The rule for requests no rule matches.
    #[serde(default)]
    pub default_rule: RuleSpec,
    /// Alias host -> canonical host (`"www.example.com" = "example.com"`).
    #[serde(default)]
    pub host_aliases: BTreeMap<String, String>,
}

/// A policy that cannot be compiled: which rule, which field, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Index in `rules`, or `None` for `default_rule` / `host_aliases`.
    pub rule: Option<usize>,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Some(i) => write!(f, "rules[{i}].{}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A compiled rule.
#[derive(Debug)]
struct Rule {
    info: Arc<RuleInfo>,
    host: Option<GlobMatcher>,
    path: Option<GlobMatcher>,
    query: QueryRule,
    key_headers: Vec<HeaderName>,
    key_cookies: Vec<String>,
    accept_encoding: bool,
    languages: Option<Vec<String>>,
    bypass_cookies: Vec<String>,
    strip_cookies: bool,
}

/// The compiled configuration policy.
#[derive(Debug)]
pub struct RulesPolicy {
    rules: Vec<Rule>,
    default: Rule,
    aliases: BTreeMap<String, String>,
    spec: PolicySpec,
}

fn glob(pattern: &str, case_insensitive: bool) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|e| format!("bad glob {pattern:?}: {}", e.kind()))
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if p.is_empty() {
            return Err("empty parameter name".into());
        }
        b.add(glob(p, false)?);
    }
    b.build().map_err(|e| e.to_string())
}

/// A rule's `ttl` or `grace`, written as every other duration ([`crate::settings::Span`]).
fn duration(s: &str) -> Result<Duration, String> {
    Span::from_text(s).map(Span::duration)
}

fn compile_rule(spec: &RuleSpec, index: Option<usize>) -> Result<Rule, PolicyError> {
    let err = |field: &str, message: String| PolicyError {
        rule: index,
        field: field.to_owned(),
        message,
    };
    if index.is_none() && (spec.host.is_some() || spec.path.is_some()) {
        return Err(err(
            "host",
            "the default rule matches every request; it takes no host or path".into(),
        ));
    }
    let host = spec
        .host
        .as_deref()
        .map(|h| glob(&h.to_ascii_lowercase(), true).map(|g| g.compile_matcher()))
        .transpose()
        .map_err(|m| err("host", m))?;
    let path = match spec.path.as_deref() {
        Some(p) if !p.starts_with('/') && !p.starts_with('*') => {
            return Err(err("path", format!("{p:?} must start with '/' (or '*')")))
        }
        Some(p) => Some(
            glob(p, false)
                .map_err(|m| err("path", m))?
                .compile_matcher(),
        ),
        None => None,
    };
    if !spec.drop_query.is_empty() && spec.keep_query.is_some() {
        return Err(err(
            "keep_query",
            "cannot be combined with drop_query (keep_query already drops every other parameter)"
                .into(),
        ));
    }
    let query = QueryRule {
        drop: (!spec.drop_query.is_empty())
            .then(|| glob_set(&spec.drop_query))
            .transpose()
            .map_err(|m| err("drop_query", m))?,
        keep: spec
            .keep_query
            .as_deref()
            .map(glob_set)
            .transpose()
            .map_err(|m| err("keep_query", m))?,
        sort: spec.sort_query,
    };
    let mut key_headers = Vec::new();
    for h in &spec.key_headers {
        let name = HeaderName::from_bytes(h.trim().as_bytes())
            .map_err(|_| err("key_headers", format!("{h:?} is not a header name")))?;
        if name == header::HOST || name == header::COOKIE {
            return Err(err(
                "key_headers",
                format!("{name} cannot be a key header (use host_aliases or key_cookies)"),
            ));
        }
        key_headers.push(name);
    }
    for c in spec.key_cookies.iter().chain(&spec.bypass_cookies) {
        if c.is_empty() || c.contains([';', '=', ' ', ',']) {
            return Err(err("key_cookies", format!("{c:?} is not a cookie name")));
        }
    }
    if let Some(c) = spec
        .key_cookies
        .iter()
        .find(|c| spec.bypass_cookies.contains(c))
    {
        return Err(err(
            "bypass_cookies",
            format!("cookie {c:?} cannot both bypass the cache and be part of its key"),
        ));
    }
    let languages = match &spec.accept_language {
        Some(l) if l.is_empty() => {
            return Err(err("accept_language", "needs at least one language".into()))
        }
        Some(l) => {
            for tag in l {
                if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(err(
                        "accept_language",
                        format!("{tag:?} is not a language tag"),
                    ));
                }
            }
            Some(l.iter().map(|t| t.to_ascii_lowercase()).collect())
        }
        None => None,
    };
    if let Some(statuses) = &spec.cacheable_status {
        if statuses.is_empty() {
            return Err(err("cacheable_status", "needs at least one status".into()));
        }
        for s in statuses {
            if !STORABLE_STATUSES.contains(s) {
                return Err(err(
                    "cacheable_status",
                    format!("status {s} cannot be stored (storable: {STORABLE_STATUSES:?})"),
                ));
            }
        }
    }
    let ttl = spec
        .ttl
        .as_deref()
        .map(duration)
        .transpose()
        .map_err(|m| err("ttl", m))?;
    if ttl.is_some_and(|t| t.is_zero()) {
        return Err(err(
            "ttl",
            "must be positive (to not store, set cacheable_status or let the origin say no-store)"
                .into(),
        ));
    }
    let grace = spec
        .grace
        .as_deref()
        .map(duration)
        .transpose()
        .map_err(|m| err("grace", m))?;
    let name = spec.name.clone().unwrap_or_else(|| match index {
        Some(i) => format!("rules[{i}]"),
        None => "default".to_owned(),
    });
    Ok(Rule {
        info: Arc::new(RuleInfo {
            name,
            overrides: Overrides {
                ttl,
                cacheable_status: spec.cacheable_status.clone(),
                grace,
            },
        }),
        host,
        path,
        query,
        key_headers,
        key_cookies: spec.key_cookies.clone(),
        accept_encoding: spec.normalize_accept_encoding,
        languages,
        bypass_cookies: spec.bypass_cookies.clone(),
        strip_cookies: spec.strip_cookies,
    })
}

/// Iterates `name=value` pairs of every `Cookie` header.
fn cookies(headers: &http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|c| {
            let (n, v) = c.split_once('=')?;
            Some((n.trim(), v.trim()))
        })
}

impl RulesPolicy {
    /// Compiles and validates a policy.
    pub fn compile(spec: PolicySpec) -> Result<RulesPolicy, PolicyError> {
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(r, Some(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let default = compile_rule(&spec.default_rule, None)?;
        let mut aliases = BTreeMap::new();
        for (alias, canonical) in &spec.host_aliases {
            let (a, c) = (normalize_host(alias), normalize_host(canonical));
            let err = |m: String| PolicyError {
                rule: None,
                field: format!("host_aliases.{alias:?}"),
                message: m,
            };
            if a.is_empty() || c.is_empty() {
                return Err(err("hosts must not be empty".into()));
            }
            if a == c {
                return Err(err("a host cannot be an alias of itself".into()));
            }
            if spec.host_aliases.keys().any(|k| normalize_host(k) == c) {
                return Err(err(format!(
                    "{c:?} is itself an alias; point aliases at the canonical host"
                )));
            }
            aliases.insert(a, c);
        }
        Ok(RulesPolicy {
            rules,
            default,
            aliases,
            spec,
        })
    }

    /// The specification it was compiled from (for `check-config`).
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    fn canonical_host(&self, host: &str) -> String {
        if let Some(c) = self.aliases.get(host) {
            return c.clone();
        }
        // An alias without a port also covers the host on any port.
        let name = hostname(host);
        if name != host {
            if let Some(c) = self.aliases.get(name) {
                return format!("{c}{}", &host[name.len()..]);
            }
        }
        host.to_owned()
    }

    /// The rule for a host and path; with no host (a `path` selector names every host), the
    /// first rule whose path matches, whatever its host.
    fn rule_for(&self, host: Option<&str>, path: &str) -> &Rule {
        self.rules
            .iter()
            .find(|r| {
                let host_ok = match (&r.host, host) {
                    (None, _) | (Some(_), None) => true,
                    (Some(g), Some(h)) => g.is_match(hostname(h)),
                };
                host_ok && r.path.as_ref().is_none_or(|g| g.is_match(path))
            })
            .unwrap_or(&self.default)
    }

    /// The rules that can key an object at `path` on some host: each rule whose path matches,
    /// in order, up to the first that names no host (every host reaching it stops there), or
    /// else the default too.
    fn rules_for_any_host(&self, path: &str) -> Vec<&Rule> {
        let mut out = Vec::new();
        for r in &self.rules {
            if r.path.as_ref().is_none_or(|g| g.is_match(path)) {
                out.push(r);
                if r.host.is_none() {
                    return out;
                }
            }
        }
        out.push(&self.default);
        out
    }

    /// The name of the rule a URL's key falls under.
    pub fn rule_name(&self, host: &str, path: &str) -> &str {
        &self
            .rule_for(Some(&self.canonical_host(host)), path)
            .info
            .name
    }
}

impl KeyPolicy for RulesPolicy {
    fn prepare(&self, req: &mut Parts, scheme: Scheme) -> Result<Prepared, KeyError> {
        crate::url::normalize_target(req);
        let raw = ResourceKey::from_request(req, scheme)?;
        let host = self.canonical_host(raw.host());
        let rule = self.rule_for(Some(&host), raw.path());
        if !rule.bypass_cookies.is_empty()
            && cookies(&req.headers).any(|(n, _)| rule.bypass_cookies.iter().any(|b| b == n))
        {
            return Ok(Prepared {
                key: raw,
                bypass: true,
                rule: rule.info.clone(),
            });
        }
        let mut extra = String::new();
        for h in &rule.key_headers {
            let v = req
                .headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            extra.push_str(&format!(
                "h:{h}={};",
                v.as_deref()
                    .map_or("<absent>".to_owned(), |v| format!("{v:?}"))
            ));
        }
        for c in &rule.key_cookies {
            let v = cookies(&req.headers)
                .find(|(n, _)| n == c)
                .map(|(_, v)| v.to_owned());
            extra.push_str(&format!(
                "c:{c}={};",
                v.as_deref()
                    .map_or("<absent>".to_owned(), |v| format!("{v:?}"))
            ));
        }
        if rule.strip_cookies {
            let kept: Vec<String> = cookies(&req.headers)
                .filter(|(n, _)| rule.key_cookies.iter().any(|k| k == n))
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            req.headers.remove(header::COOKIE);
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                if !kept.is_empty() {
                    req.headers.insert(header::COOKIE, v);
                }
            }
        }
        if rule.accept_encoding {
            let normalized = req
                .headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .and_then(normalize_accept_encoding);
            match normalized {
                Some(n) => {
                    req.headers
                        .insert(header::ACCEPT_ENCODING, HeaderValue::from_static(n));
                }
                None => {
                    req.headers.remove(header::ACCEPT_ENCODING);
                }
            }
        }
        if let Some(langs) = &rule.languages {
            let value = req
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let chosen = normalize_accept_language(value, langs);
            if let Ok(v) = HeaderValue::from_str(chosen) {
                req.headers.insert(header::ACCEPT_LANGUAGE, v);
            }
        }
        let mut query = raw.query().map(str::to_owned);
        if rule.query.is_active() {
            query = query.and_then(|q| rule.query.apply(&q));
            let pq = match &query {
                Some(q) => format!("{}?{q}", raw.path()),
                None => raw.path().to_owned(),
            };
            let mut parts = req.uri.clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = http::Uri::from_parts(parts) {
                req.uri = uri;
            }
        }
        let key = ResourceKey::new(
            scheme,
            &normalize_authority(scheme, &host),
            raw.path(),
            query.as_deref(),
        )
        .with_extra((!extra.is_empty()).then_some(extra));
        Ok(Prepared {
            key,
            bypass: false,
            rule: rule.info.clone(),
        })
    }

    fn normalize_selector(&self, sel: &mut Selector) {
        self.normalize_under(sel, None);
    }

    fn normalize_selector_forms(&self, sel: Selector) -> Vec<Selector> {
        let Target::Path { path, .. } = &sel.target else {
            let mut sel = sel;
            self.normalize_under(&mut sel, None);
            return vec![sel];
        };
        // A path selector names every host, and each host's objects were keyed by the first
        // rule matching that host: one form per rule that can, so none of them is missed.
        let mut forms: Vec<Selector> = Vec::new();
        for rule in self.rules_for_any_host(path) {
            let mut form = sel.clone();
            self.normalize_under(&mut form, Some(rule));
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        forms
    }
}

impl RulesPolicy {
    /// Normalises a selector; `path_rule` is the rule a `path` selector's query and header
    /// filters follow (by default the first rule whose path matches).
    fn normalize_under(&self, sel: &mut Selector, path_rule: Option<&Rule>) {
        let mut url_host: Option<String> = None;
        match &mut sel.target {
            Target::Url { host, path, query } => {
                *host = self.canonical_host(host);
                url_host = Some(host.clone());
                let rule = self.rule_for(Some(host), path);
                if let QueryMatch::Exact(Some(q)) = query {
                    if rule.query.is_active() {
                        *query = QueryMatch::Exact(rule.query.apply(q));
                    }
                }
            }
            Target::Path { path, query } => {
                let rule = path_rule.unwrap_or_else(|| self.rule_for(None, path));
                if let QueryMatch::Exact(Some(q)) = query {
                    if rule.query.is_active() {
                        *query = QueryMatch::Exact(rule.query.apply(q));
                    }
                }
            }
            Target::Prefix { host: Some(h), .. } | Target::Host(h) => *h = self.canonical_host(h),
            _ => {}
        }
        // Header filters go through the same negotiation as requests.
        let path = match &sel.target {
            Target::Url { path, .. } | Target::Path { path, .. } => Some(path.clone()),
            _ => None,
        };
        for (name, value) in &mut sel.headers {
            let rule = match (&path, path_rule) {
                (Some(_), Some(r)) if url_host.is_none() => r,
                (Some(p), _) => self.rule_for(url_host.as_deref(), p),
                (None, _) => self
                    .rules
                    .iter()
                    .find(|r| r.host.is_none() && (r.languages.is_some() || r.accept_encoding))
                    .unwrap_or(&self.default),
            };
            if *name == header::ACCEPT_LANGUAGE {
                if let Some(langs) = &rule.languages {
                    *value = normalize_accept_language(value, langs).to_owned();
                }
            } else if *name == header::ACCEPT_ENCODING && rule.accept_encoding {
                *value = normalize_accept_encoding(value).unwrap_or("").to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml_rules: Vec<RuleSpec>, default: RuleSpec) -> RulesPolicy {
        RulesPolicy::compile(PolicySpec {
            rules: toml_rules,
            default_rule: default,
            host_aliases: [("www.example.com".to_owned(), "example.com".to_owned())].into(),
        })
        .unwrap()
    }

    fn prep(p: &RulesPolicy, url: &str, headers: &[(&str, &str)]) -> (Prepared, Parts) {
        let mut b = http::Request::get(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        let prepared = p.prepare(&mut parts, Scheme::Http).unwrap();
        (prepared, parts)
    }

    fn utm() -> RuleSpec {
        RuleSpec {
            drop_query: vec!["utm_*".into(), "gclid".into()],
            sort_query: true,
            ..Default::default()
        }
    }

    #[test]
    fn query_rules_rewrite_key_and_forwarded_uri() {
        let p = policy(vec![], utm());
        let (pr, parts) = prep(&p, "http://www.example.com/p?utm_source=x&b=2&a=1", &[]);
        assert_eq!(pr.key.to_string(), "http://example.com/p?a=1&b=2");
        assert_eq!(
            parts.uri.to_string(),
            "http://www.example.com/p?a=1&b=2",
            "the origin sees the cleaned URL"
        );
        let (pr, _) = prep(&p, "http://example.com/p?utm_source=x", &[]);
        assert_eq!(pr.key.query(), None);
    }

    #[test]
    fn first_matching_rule_wins() {
        let blog = RuleSpec {
            name: Some("blog".into()),
            host: Some("*.example.com".into()),
            path: Some("/blog/*".into()),
            ttl: Some("5m".into()),
            ..Default::default()
        };
        let api = RuleSpec {
            name: Some("api".into()),
            path: Some("/api/*".into()),
            bypass_cookies: vec!["sessionid".into()],
            ..Default::default()
        };
        let p = policy(vec![blog, api], RuleSpec::default());
        assert_eq!(
            prep(&p, "http://a.example.com/blog/1", &[]).0.rule.name,
            "blog"
        );
        assert_eq!(
            prep(&p, "http://A.EXAMPLE.COM:8080/blog/1", &[])
                .0
                .rule
                .name,
            "blog"
        );
        assert_eq!(
            prep(&p, "http://other.org/blog/1", &[]).0.rule.name,
            "default"
        );
        let (api_pr, _) = prep(
            &p,
            "http://other.org/api/x",
            &[("cookie", "a=1; sessionid=abc")],
        );
        assert_eq!(api_pr.rule.name, "api");
        assert!(api_pr.bypass);
        assert!(
            !prep(&p, "http://other.org/api/x", &[("cookie", "a=1")])
                .0
                .bypass
        );
        assert_eq!(
            prep(&p, "http://a.example.com/blog/1", &[])
                .0
                .rule
                .overrides
                .ttl,
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn headers_cookies_and_negotiation() {
        let spec = RuleSpec {
            key_headers: vec!["X-Device".into()],
            key_cookies: vec!["currency".into()],
            strip_cookies: true,
            normalize_accept_encoding: true,
            accept_language: Some(vec!["en".into(), "fr".into()]),
            ..Default::default()
        };
        let p = policy(vec![], spec);
        let (a, parts) = prep(
            &p,
            "http://h/",
            &[
                ("x-device", "mobile"),
                ("cookie", "_ga=1; currency=EUR"),
                ("accept-encoding", "gzip, deflate, br"),
                ("accept-language", "fr-CA,fr;q=0.9"),
            ],
        );
        assert_eq!(
            a.key.extra(),
            Some("h:x-device=\"mobile\";c:currency=\"EUR\";")
        );
        assert_eq!(
            parts.headers.get("cookie").unwrap(),
            "currency=EUR",
            "other cookies stripped"
        );
        assert_eq!(parts.headers.get("accept-encoding").unwrap(), "br, gzip");
        assert_eq!(parts.headers.get("accept-language").unwrap(), "fr");
        let (b, parts) = prep(
            &p,
            "http://h/",
            &[("cookie", "_ga=1"), ("accept-encoding", "identity")],
        );
        assert_eq!(
            b.key.extra(),
            Some("h:x-device=<absent>;c:currency=<absent>;")
        );
        assert!(parts.headers.get("cookie").is_none());
        assert!(parts.headers.get("accept-encoding").is_none());
        assert_eq!(parts.headers.get("accept-language").unwrap(), "en");
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn path_selectors_cover_every_hosts_rule() {
        // `/blog/*` on example.com drops tracking parameters; other hosts keep the query.
        let blog = RuleSpec {
            name: Some("blog".into()),
            host: Some("*.example.com".into()),
            path: Some("/blog/*".into()),
            ..utm()
        };
        let p = policy(vec![blog], RuleSpec::default());
        let (on_blog, _) = prep(
            &p,
            "http://news.example.com/blog/a?utm_source=x&b=2&a=1",
            &[],
        );
        let (elsewhere, _) = prep(&p, "http://other.org/blog/a?utm_source=x&b=2&a=1", &[]);
        assert_ne!(on_blog.key.query(), elsewhere.key.query());
        let sel = Selector::path("/blog/a").query("utm_source=x&b=2&a=1");
        let forms = p.normalize_selector_forms(sel);
        assert_eq!(forms.len(), 2, "{forms:?}");
        for key in [&on_blog.key, &elsewhere.key] {
            let stored = crate::object::ObjectMeta {
                id: 1,
                key: key.clone(),
                vary_values: Vec::new(),
                tags: Vec::new(),
            };
            assert!(
                forms.iter().any(|f| f.matches(&stored)),
                "{key} missed by {forms:?}"
            );
        }
        // A rule for every host ends the list: one form.
        let p = policy(vec![], utm());
        assert_eq!(
            p.normalize_selector_forms(Selector::path("/x").query("b=1&a=2"))
                .len(),
            1
        );
    }

    #[test]
    fn selectors_are_normalised_like_keys() {
        let spec = RuleSpec {
            accept_language: Some(vec!["en".into(), "fr".into()]),
            ..utm()
        };
        let p = policy(vec![], spec);
        let mut s = Selector::url("https://WWW.example.com/p?utm_source=x&b=2&a=1").unwrap();
        p.normalize_selector(&mut s);
        assert_eq!(
            s.target,
            Target::Url {
                host: "example.com".into(),
                path: "/p".into(),
                query: QueryMatch::Exact(Some("a=1&b=2".into()))
            }
        );
        let mut s = Selector::path("/p")
            .query("utm_x=1")
            .header("accept-language", "fr-CA,fr;q=0.9");
        p.normalize_selector(&mut s);
        assert_eq!(
            s.target,
            Target::Path {
                path: "/p".into(),
                query: QueryMatch::Exact(None)
            }
        );
        assert_eq!(s.headers[0].1, "fr");
        let mut s = Selector::host("www.example.com");
        p.normalize_selector(&mut s);
        assert_eq!(s.target, Target::Host("example.com".into()));
    }

    #[test]
    fn invalid_specs_name_rule_and_field() {
        let bad = |r: RuleSpec| {
            RulesPolicy::compile(PolicySpec {
                rules: vec![RuleSpec::default(), r],
                ..Default::default()
            })
            .unwrap_err()
        };
        let e = bad(RuleSpec {
            path: Some("/a/[".into()),
            ..Default::default()
        });
        assert_eq!((e.rule, e.field.as_str()), (Some(1), "path"));
        assert!(e.message.contains("bad glob"), "{e}");
        let e = bad(RuleSpec {
            path: Some("blog".into()),
            ..Default::default()
        });
        assert_eq!(e.field, "path");
        let e = bad(RuleSpec {
            drop_query: vec!["a".into()],
            keep_query: Some(vec!["b".into()]),
            ..Default::default()
        });
        assert_eq!(e.field, "keep_query");
        let e = bad(RuleSpec {
            drop_query: vec!["[x".into()],
            ..Default::default()
        });
        assert_eq!(e.field, "drop_query");
        let e = bad(RuleSpec {
            cacheable_status: Some(vec![206]),
            ..Default::default()
        });
        assert_eq!(e.field, "cacheable_status");
        let e = bad(RuleSpec {
            ttl: Some("soon".into()),
            ..Default::default()
        });
        assert_eq!(e.field, "ttl");
        let e = bad(RuleSpec {
            key_cookies: vec!["s".into()],
            bypass_cookies: vec!["s".into()],
            ..Default::default()
        });
        assert_eq!(e.field, "bypass_cookies");
        let e = bad(RuleSpec {
            accept_language: Some(vec![]),
            ..Default::default()
        });
        assert_eq!(e.field, "accept_language");
        let e = bad(RuleSpec {
            key_headers: vec!["Host".into()],
            ..Default::default()
        });
        assert_eq!(e.field, "key_headers");
        let e = RulesPolicy::compile(PolicySpec {
            default_rule: RuleSpec {
                path: Some("/x".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.rule, None);
        let e = RulesPolicy::compile(PolicySpec {
            host_aliases: [
                ("a".to_owned(), "b".to_owned()),
                ("b".to_owned(), "c".to_owned()),
            ]
            .into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.field.starts_with("host_aliases"), "{e}");
    }
}
