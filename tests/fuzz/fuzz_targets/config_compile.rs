//! Arbitrary text → preprocessor, parser, compiler.
//!
//! What must hold for every input: nothing panics (a panic is a crash here),
//! whatever the text; a config either compiles or gives diagnostics, and every
//! diagnostic renders as `file:line:col: message` naming the file it was
//! read from. Includes resolve against an in-memory file set, so the target
//! reads no disk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsip::script::compile::compile;
use ringsip::script::{parse_str, MemoryFiles, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = MemoryFiles::default();
    let opts = Options::with_files(&files);
    let cfg = match parse_str("fuzz.cfg", text, &opts) {
        Ok(cfg) => cfg,
        Err(diags) => {
            check_rendered(&diags.rendered());
            return;
        }
    };
    if let Err(diags) = compile(&cfg) {
        check_rendered(&diags.rendered());
    }
});

fn check_rendered(lines: &[String]) {
    assert!(!lines.is_empty(), "errors without a diagnostic");
    for line in lines {
        let mut parts = line.splitn(4, ':');
        let (file, l, c) = (parts.next(), parts.next(), parts.next());
        assert!(
            file.is_some_and(|f| !f.is_empty())
                && l.is_some_and(|l| l.parse::<u32>().is_ok())
                && c.is_some_and(|c| c.parse::<u32>().is_ok()),
            "diagnostic not in file:line:col form: {line}"
        );
    }
}
