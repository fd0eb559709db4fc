//! DNS answers as the network delivers them (`modules::core::dns_wire`).
//!
//! What must hold for every input:
//! 1. Parsing an answer or a query never panics, whatever the bytes
//!    (compression pointers, lengths and counts are the sender's).
//! 2. What parses as an answer to our question keeps its bounds: at most
//!    `MAX_RECORDS` records per section, names of at most 253 characters
//!    plus dots (255 bytes in wire form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsip::modules::core::dns_wire::{parse_query, parse_response, MAX_RECORDS};

fuzz_target!(|data: &[u8]| {
    let _ = parse_query(data);
    // Answers to the question the input itself names, so the fuzzer can
    // reach the records past the question check.
    let Some((id, name, qtype)) = parse_query_loose(data) else {
        return;
    };
    if let Ok(resp) = parse_response(data, id, &name, qtype) {
        assert!(resp.answers.len() <= MAX_RECORDS);
        assert!(resp.additional.len() <= MAX_RECORDS);
        for r in resp.answers.iter().chain(&resp.additional) {
            assert!(r.name.len() <= 255, "{}", r.name.len());
        }
    }
});

/// The id and question of `data` read as an answer (the QR bit set).
fn parse_query_loose(data: &[u8]) -> Option<(u16, String, u16)> {
    let mut q = data.to_vec();
    *q.get_mut(2)? &= 0x7F;
    parse_query(&q)
}
