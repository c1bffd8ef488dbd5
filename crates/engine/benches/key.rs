//! Key computation on the hit path (issue 4 target: the default policy adds at most 1 us at
//! the median). Run: `cargo bench -p vanish-engine --bench key`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::request::Parts;
use vanish_engine::policy::{DefaultPolicy, KeyPolicy, PolicySpec, RuleSpec};
use vanish_engine::variant::VaryNames;
use vanish_engine::{RulesPolicy, Scheme};

fn request() -> Parts {
    http::Request::get(
        "/blog/2024/11/a-post-about-caching?page=2&utm_source=newsletter&utm_medium=email",
    )
    .header("host", "www.example.com")
    .header("accept-language", "fr-CA,fr;q=0.9,en;q=0.8")
    .header("accept-encoding", "gzip, deflate, br")
    .header(
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    )
    .header("cookie", "_ga=GA1.2.3; currency=EUR")
    .body(())
    .unwrap()
    .into_parts()
    .0
}

fn policies(c: &mut Criterion) {
    let parts = request();
    c.bench_function("key/default_policy", |b| {
        let mut p = parts.clone();
        b.iter(|| {
            black_box(
                DefaultPolicy
                    .prepare(black_box(&mut p), Scheme::Https)
                    .unwrap(),
            )
        })
    });
    let rules = Arc::new(
        RulesPolicy::compile(PolicySpec {
            rules: vec![RuleSpec {
                path: Some("/blog/*".into()),
                drop_query: vec!["utm_*".into(), "gclid".into(), "fbclid".into()],
                sort_query: true,
                normalize_accept_encoding: true,
                accept_language: Some(vec!["en".into(), "fr".into(), "de".into()]),
                key_cookies: vec!["currency".into()],
                ..Default::default()
            }],
            host_aliases: [("www.example.com".to_owned(), "example.com".to_owned())].into(),
            ..Default::default()
        })
        .unwrap(),
    );
    c.bench_function("key/rules_policy_typical", |b| {
        b.iter_batched(
            || parts.clone(),
            |mut p| black_box(rules.prepare(&mut p, Scheme::Https).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    let vary = VaryNames::from_names(["accept-language", "accept-encoding"]);
    c.bench_function("key/variant_key_two_headers", |b| {
        b.iter(|| black_box(vary.variant_key(black_box(&parts.headers))))
    });
}

criterion_group!(benches, policies);
criterion_main!(benches);
