//! The Redis store's node-to-node messages: `vanish_redis::messages::Message::parse` (purges
//! `P|node|seq|sent-µs|request`, variant notices `V|node|request`, heartbeats `H|session|ms`,
//! the requests in the wire form of `vanish_redis::wire`).
//!
//! Input format: the message text as received from Redis (bytes that are not UTF-8 are not a
//! message: the store drops them before parsing).
//!
//! Properties checked on every input:
//! - nothing panics, whatever the text;
//! - a message it accepts, encoded again, parses back to the same message (the parser and
//!   `Message::encode` agree), and its encoded form is stable (encoding that message again
//!   gives the same text);
//! - what it refuses it refuses with a reason that prints on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vanish_redis::messages::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Message::parse(text) {
        Ok(m) => {
            let encoded = m.encode();
            let again = Message::parse(&encoded)
                .unwrap_or_else(|e| panic!("{encoded:?} (from {text:?}) does not parse: {e}"));
            assert_eq!(again, m, "round trip of {text:?} through {encoded:?}");
            assert_eq!(
                again.encode(),
                encoded,
                "encoding of {text:?} is not stable"
            );
        }
        Err(e) => {
            let said = e.to_string();
            assert!(
                !said.contains('\n'),
                "multi-line error for {text:?}: {said:?}"
            );
        }
    }
});
