//! The configuration file: `vanish::config::parse_file`, then `Settings::from_parts_with_source`
//! (validation, key-policy compilation, errors that name the line), then `describe` (what
//! `vanish check-config` prints).
//!
//! Properties checked on every input:
//! - nothing panics, whatever the text;
//! - an error is one line (docs/configuration.md: errors name the line or key and are printed as
//!   one line), and a `line N` it names exists in the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vanish::config::{describe, parse_file, ConfigError, Overrides, Settings};

fn check_error(text: &str, e: &ConfigError) {
    let message = e.to_string();
    assert!(
        !message.contains('\n'),
        "multi-line config error: {message:?}"
    );
    if let Some(rest) = message.strip_prefix("line ") {
        let n: usize = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|_| panic!("error names no line number: {message:?}"));
        let lines = text.lines().count().max(1);
        assert!(
            n >= 1 && n <= lines + 1,
            "error names line {n} of a {lines}-line file: {message:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = match parse_file(text) {
        Ok(f) => f,
        Err(e) => return check_error(text, &e),
    };
    let overrides = Overrides {
        upstream: Some("http://127.0.0.1:1".into()),
        ..Default::default()
    };
    match Settings::from_parts_with_source(file, &overrides, Some(text)) {
        Ok(settings) => {
            let _ = describe(&settings, false);
        }
        Err(e) => check_error(text, &e),
    }
});
