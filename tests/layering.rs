//! DESIGN.md "Layers and rooms": nothing under the sans-IO folders opens a
//! socket, reads the clock or spawns a thread, and `unsafe` lives only in
//! `src/runtime/`. These checks read the source tree as text.

use std::fs;
use std::path::{Path, PathBuf};

const SANS_IO: &[&str] = &["src/sip", "src/script", "src/tm", "src/modules", "src/intercept"];

/// Text that means IO, the clock or threads.
const FORBIDDEN: &[&str] = &[
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "UnixStream",
    "UnixDatagram",
    "socket2",
    "compio",
    "io_uring",
    "Instant::now",
    "SystemTime::now",
    "thread::spawn",
    "std::thread",
    "libc::",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code, with `//` comments cut off (doc comments may name what they avoid).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| {
        let code = match line.find("//") {
            Some(pos) => &line[..pos],
            None => line,
        };
        (i + 1, code)
    })
}

#[test]
fn sans_io_layers_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for dir in SANS_IO {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        for file in files {
            let text = fs::read_to_string(&file).expect("read source file");
            for (line_no, code) in code_lines(&text) {
                for bad in FORBIDDEN {
                    if code.contains(bad) {
                        violations.push(format!("{}:{}: uses `{}`", file.display(), line_no, bad));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "sans-IO layers touch IO:\n{}", violations.join("\n"));
}

#[test]
fn unsafe_only_in_runtime_with_safety_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let runtime = root.join("src/runtime");
    let mut violations = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("read source file");
        let lines: Vec<&str> = text.lines().collect();
        for (line_no, code) in code_lines(&text) {
            let has_unsafe = code
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "unsafe");
            if !has_unsafe {
                continue;
            }
            if !file.starts_with(&runtime) {
                violations.push(format!("{}:{}: unsafe outside src/runtime", file.display(), line_no));
                continue;
            }
            // A `// SAFETY:` comment within the three lines above (or on the line).
            let from = line_no.saturating_sub(4);
            let commented = lines[from..line_no].iter().any(|l| l.contains("SAFETY:"));
            if !commented {
                violations.push(format!("{}:{}: unsafe without a SAFETY comment", file.display(), line_no));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
