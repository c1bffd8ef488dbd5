//! The key policy both the `key_policy` and `purge_json` targets run against: host-restricted
//! and global rules, query dropping, keeping and sorting, key headers and cookies, language
//! negotiation and a host alias. Included by each target with `#[path]`.

use std::sync::OnceLock;

use vanish_engine::policy::{PolicySpec, RuleSpec};
use vanish_engine::RulesPolicy;

/// The policy, compiled once.
pub fn policy() -> &'static RulesPolicy {
    static P: OnceLock<RulesPolicy> = OnceLock::new();
    P.get_or_init(|| {
        RulesPolicy::compile(PolicySpec {
            rules: vec![
                RuleSpec {
                    name: Some("blog".into()),
                    host: Some("*.example.com".into()),
                    path: Some("/blog/*".into()),
                    drop_query: vec!["utm_*".into(), "gclid".into(), "fbclid".into()],
                    sort_query: true,
                    accept_language: Some(vec!["en".into(), "fr".into(), "de-CH".into()]),
                    normalize_accept_encoding: true,
                    ..Default::default()
                },
                RuleSpec {
                    name: Some("shop".into()),
                    path: Some("/shop/*".into()),
                    key_headers: vec!["x-device".into()],
                    key_cookies: vec!["currency".into()],
                    strip_cookies: true,
                    bypass_cookies: vec!["sessionid".into()],
                    ..Default::default()
                },
                RuleSpec {
                    name: Some("search".into()),
                    path: Some("/search*".into()),
                    keep_query: Some(vec!["q".into(), "page".into()]),
                    sort_query: true,
                    ..Default::default()
                },
            ],
            default_rule: RuleSpec {
                drop_query: vec!["utm_*".into()],
                ..Default::default()
            },
            host_aliases: [("www.example.com".to_owned(), "example.com".to_owned())].into(),
        })
        .expect("fixed policy compiles")
    })
}
