//! `file_read(path, var)` and `file_write(path, text)`: a whole file into a
//! variable, a string into a file (created or truncated). Binary-safe; -1
//! when the file cannot be read or written.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{Args, ModParams};

use super::args;

pub fn fixup_file_read(a: &mut Args, _: &ModParams) -> Result<(), String> {
    args::out_pv(a, 1)
}

pub fn file_read(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    let path = String::from_utf8_lossy(&a.str(ctx, 0)).into_owned();
    match std::fs::read(&path) {
        Ok(content) => {
            if args::write(ctx, a, 1, content, "file_read") {
                1
            } else {
                -1
            }
        }
        Err(e) => {
            log::warn!("file_read: {path}: {e}");
            -1
        }
    }
}

pub fn fixup_file_write(a: &mut Args, _: &ModParams) -> Result<(), String> {
    args::as_pv(a, 1);
    Ok(())
}

pub fn file_write(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    let path = String::from_utf8_lossy(&a.str(ctx, 0)).into_owned();
    let content = a.str(ctx, 1);
    match std::fs::write(&path, &content) {
        Ok(()) => 1,
        Err(e) => {
            log::warn!("file_write: {path}: {e}");
            -1
        }
    }
}
