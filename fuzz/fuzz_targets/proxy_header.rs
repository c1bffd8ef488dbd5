//! The PROXY protocol header reader: `vanish::server::proxy_protocol::parse`, which the
//! listener calls on the bytes received so far, again after each read, until it answers.
//!
//! Input: the first bytes of a connection, as is.
//!
//! Properties checked on every input:
//! - nothing panics, whatever the bytes;
//! - a header found is no longer than the input, and the same header is found in exactly its
//!   own bytes (what follows it does not change it);
//! - a header split across reads is never refused: every shorter prefix of a header found is
//!   `Incomplete` (all prefixes for short headers, a spread of cuts for long v2 ones);
//! - "read more" is never the answer once the size bound is reached, and a refusal is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vanish::server::proxy_protocol::{parse, Parsed, MAX_HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parsed::Header { client, len } => {
            assert!(
                len > 0 && len <= data.len(),
                "header of {len} bytes in {}",
                data.len()
            );
            assert_eq!(parse(&data[..len]), Parsed::Header { client, len });
            let cuts: Vec<usize> = match len <= 256 {
                true => (0..len).collect(),
                false => (0..64).map(|i| i * len / 64).chain([len - 1]).collect(),
            };
            for cut in cuts {
                assert_eq!(
                    parse(&data[..cut]),
                    Parsed::Incomplete,
                    "a {len}-byte header cut at {cut} was not left to complete"
                );
            }
        }
        Parsed::Incomplete => assert!(data.len() < MAX_HEADER_BYTES),
        Parsed::Invalid(why) => assert!(!why.contains('\n'), "multi-line reason: {why:?}"),
    }
});
