//! Parse → serialize with an empty edit list → parse again.
//!
//! What must hold for every input (DESIGN.md "Parsing and editing"):
//! 1. The parser never panics, whatever the bytes (a panic is a crash here).
//! 2. A parsed message serialized with no edits is the same message: the
//!    same start line and header lines in the same order, read here from
//!    the bytes without the parser (a test must not check the parser with
//!    itself). Content-Length is the serializer's to fix up (add, rewrite,
//!    drop), CRLFs before the start line may go (RFC 3261 §7.5), line
//!    endings may change (the parser accepts bare LF): those are left out.
//! 3. The output parses, to the same body (bytes past Content-Length may be
//!    cut, §18.3), and serializing it again changes nothing (the
//!    serializer's output is a fixed point).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringsip::sip::edit::{serialize, Edits};
use ringsip::sip::message::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let edits = Edits::new();
    let mut out = Vec::new();
    serialize(&msg, &edits, &mut out);
    let fail = |what: &str| -> ! {
        panic!(
            "{what}\n--- input\n{}\n--- output\n{}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&out)
        )
    };

    if header_lines(data) != header_lines(&out) {
        fail("serialize(parse(x)) with no edits changed the start line or a header line");
    }
    let again = match Message::parse(Bytes::from(out.clone())) {
        Ok(m) => m,
        Err(e) => fail(&format!("the serializer's output does not parse: {e:?}")),
    };
    // How long the body is, is the parser's call (Content-Length, §18.3);
    // the serializer must keep it.
    if again.body() != msg.body() {
        fail("serialize(parse(x)) with no edits changed the body");
    }
    let mut out2 = Vec::new();
    serialize(&again, &edits, &mut out2);
    if out2 != out {
        fail(&format!(
            "serializing the output again changed it (not a fixed point):\n{}",
            String::from_utf8_lossy(&out2)
        ));
    }
});

/// The start line and header lines (each continuation line separate),
/// without line endings and without Content-Length fields, which are the
/// serializer's to fix up. Leading CRLFs are skipped (§7.5).
fn header_lines(msg: &[u8]) -> Vec<&[u8]> {
    let mut pos = msg
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(msg.len());
    let mut lines = Vec::new();
    let mut in_content_length = false;
    while pos < msg.len() {
        let (line, next) = match msg[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => (&msg[pos..pos + i], pos + i + 1),
            None => (&msg[pos..], msg.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = next;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if !in_content_length {
                lines.push(line);
            }
            continue;
        }
        in_content_length = is_content_length(line);
        if !in_content_length {
            lines.push(line);
        }
    }
    lines
}

/// Whether a header line is a `Content-Length:` or compact `l:` field.
fn is_content_length(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = &line[..colon];
    let end = name
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let name = &name[..end];
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")
}
