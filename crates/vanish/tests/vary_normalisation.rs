//! Vary normalisation through the real proxy (RFC 9111 section 4.1): request values that
//! differ only in ways their field's syntax says mean nothing select the same stored variant,
//! and a purge's header filter finds a variant however its value is spelled.

mod common;

use common::*;

/// An origin that varies on `header` and names each render in its body.
async fn varying_on(header: &'static str) -> (TestOrigin, TestVanish) {
    let origin = TestOrigin::start(move |s, n| {
        let seen = s
            .headers
            .get(header)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Reply::ok(format!("render #{n} for {seen:?}"))
            .header("cache-control", "public, max-age=60")
            .header("vary", header)
    })
    .await;
    let vanish = TestVanish::start(&origin.url()).await;
    (origin, vanish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spellings_that_mean_the_same_share_a_variant_and_others_do_not() {
    // Table: header, the value stored first, and spellings with whether they are the same
    // preference (a hit on that variant) or not (a fill of their own).
    type Case = (&'static str, &'static str, &'static [(&'static str, bool)]);
    let cases: &[Case] = &[
        (
            "accept-language",
            "en, fr",
            &[
                ("en,fr", true),
                ("en ,\tfr", true),
                ("EN, FR", true),
                ("en, fr,", true),
                ("en;q=1, fr", true),
                ("fr, en", false),
                ("en", false),
            ],
        ),
        (
            "accept-language",
            "en;q=0.9, fr;q=0.5",
            &[
                ("fr;q=0.5, en;q=0.9", true),
                ("FR; q=0.50,EN;q=0.9", true),
                ("fr;q=0.9, en;q=0.5", false),
            ],
        ),
        (
            "accept-language",
            "en-GB, de;q=0.4",
            &[("de;q=0.4,en-gb", true), ("en-GB, de;q=0.3", false)],
        ),
        // `Accept-Encoding` is not compared at all: the cache negotiates the coding, and a
        // variant's value is its body's coding (tests/compression.rs).
        (
            "accept",
            "text/html, application/json;q=0.5",
            &[
                ("Text/HTML,application/json; q=0.5", true),
                ("text/html, application/json", false),
            ],
        ),
        // A field whose syntax the cache does not know: only exact values share.
        (
            "x-device",
            "mobile, a",
            &[("mobile, a", true), ("mobile,a", false)],
        ),
    ];
    for (header, stored, spellings) in cases {
        let (origin, v) = varying_on(header).await;
        let first = get_with(&v.url("/p"), &[(header, stored)]).await;
        assert!(!first.is_hit());
        for (spelling, same) in spellings.iter() {
            let before = origin.count("/p");
            let got = get_with(&v.url("/p"), &[(header, spelling)]).await;
            if *same {
                assert!(got.is_hit(), "{header}: {spelling:?} is {stored:?}");
                assert_eq!(got.body, first.body, "{header}: {spelling:?}");
            } else {
                assert!(!got.is_hit(), "{header}: {spelling:?} is not {stored:?}");
                assert_eq!(origin.count("/p"), before + 1, "{header}: {spelling:?}");
            }
        }
        // The origin received each value as the client sent it.
        assert_eq!(
            origin.last().headers.get(*header).unwrap(),
            spellings.iter().rev().find(|(_, same)| !same).unwrap().0,
            "{header}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_field_lines_are_one_list() {
    let (origin, v) = varying_on("accept-language").await;
    get_with(&v.url("/p"), &[("accept-language", "en, fr")]).await;
    let split = get_with(
        &v.url("/p"),
        &[("accept-language", "en"), ("accept-language", "FR")],
    )
    .await;
    assert!(split.is_hit(), "{}", split.cache_status());
    assert_eq!(origin.count("/p"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_by_header_matches_however_the_value_is_spelled() {
    let (origin, v) = varying_on("accept-language").await;
    for lang in ["en, fr", "de", "fr;q=0.5, en;q=0.9"] {
        get_with(&v.url("/p"), &[("accept-language", lang)]).await;
    }
    assert_eq!(origin.count("/p"), 3);
    // Table: a filter spelled differently from the request that stored the variant.
    let filters = [
        ("EN ,fr", "en,fr"),
        ("en;q=0.9,fr;q=0.50", "fr;q=0.5,en;q=0.9"),
    ];
    for (filter, request) in filters {
        let json =
            format!(r#"{{"type":"path","path":"/p","headers":{{"Accept-Language":"{filter}"}}}}"#);
        let r = purge(&v, &json).await;
        assert_eq!(r.status, 200, "{json}: {}", r.body);
        assert_eq!(r.json()["matched"], 1, "{json}");
        let again = get_with(&v.url("/p"), &[("accept-language", request)]).await;
        assert!(!again.is_hit(), "{filter}: purged");
    }
    let de = get_with(&v.url("/p"), &[("accept-language", "DE")]).await;
    assert!(
        de.is_hit(),
        "the other variant stays: {}",
        de.cache_status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_vary_false_compares_values_byte_for_byte() {
    let origin = TestOrigin::start(|_, n| {
        Reply::ok(format!("render #{n}"))
            .header("cache-control", "public, max-age=60")
            .header("vary", "Accept-Language")
    })
    .await;
    let v = TestVanish::start_with(&origin.url(), "[cache]\nnormalize_vary = false\n").await;
    get_with(&v.url("/p"), &[("accept-language", "en, fr")]).await;
    let same = get_with(&v.url("/p"), &[("accept-language", "en, fr")]).await;
    assert!(same.is_hit(), "{}", same.cache_status());
    let spaced = get_with(&v.url("/p"), &[("accept-language", "en,fr")]).await;
    assert!(!spaced.is_hit(), "byte for byte: another variant");
    assert_eq!(origin.count("/p"), 2);
    // Header filters compare byte for byte too.
    let filter = |value: &str| {
        format!(r#"{{"type":"path","path":"/p","headers":{{"Accept-Language":"{value}"}}}}"#)
    };
    let r = purge(&v, &filter("EN ,fr")).await;
    assert_eq!(r.json()["matched"], 0, "{}", r.body);
    let r = purge(&v, &filter("en,fr")).await;
    assert_eq!(r.json()["matched"], 1, "{}", r.body);
}
