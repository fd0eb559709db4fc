//! Kamailio's configuration language: preprocessor, lexer, parser, compiler to
//! an IR with every name resolved, and the VM that runs it.
//!
//! The front end: [`load`] and [`parse_str`] turn a
//! `kamailio.cfg` (with its includes) into a [`Config`] syntax tree, or into
//! [`Diagnostics`] that each read `file:line:col: message`.
//!
//! ```text
//!  text ─▶ lexer ─▶ preprocessor ─▶ parser ─▶ Config (ast)
//!           ▲          │  #!define / #!ifdef / #!subst / include_file
//!           └──────────┘  (pulls tokens, tells the lexer when to skip)
//! ```
//!
//! Reading files and the environment goes through [`SourceReader`] and
//! [`Environment`], so tests run on in-memory files.
//!
//! The back end: [`compile::compile`] checks the tree against the module
//! table and makes an [`ir::Program`] (routes, functions, `$var`/`$shv`
//! slots, hash tables, transformation chains all resolved); [`vm`] runs it
//! on a [`ctx::MsgCtx`]. Pseudo-variables are read in `pvread`, written in
//! `pvwrite`; [`transform`] applies `{s.len}`-style chains; [`attrs`] holds
//! a message's `$avp`/`$xavp`; [`shared`] the `$shv` and hash tables every
//! core sees.
//!
//! ```text
//!  Config ─▶ compile ─▶ Program (Arc, all cores) ─▶ vm::run_route(MsgCtx)
//!                          │                            │ read_pv / assign_pv
//!                          └─ SharedState (Arc, in Env) ◀┘ $shv, $sht
//! ```
//!
//! Not supported (each is a clear error or documented difference):
//! * `#!ifexp`, `#!defexp`, `#!defexps` (expression directives): an error;
//! * the `#!SER` compatibility mode's `$name`/`%attr` AVP syntax: the mode
//!   is recorded in [`ast::Config::compat`], pseudo-variables are read as in
//!   Kamailio mode;
//! * `{ actions }` and `(assignment)` used as expression operands;
//! * an `#!ifdef` opened in one file and closed in another (each file must
//!   balance its own);
//! * `"\xHH"` escapes above `7f` become the character U+00HH, not one byte;
//! * pseudo-variables not provided (a clear "unknown pseudo-variable"
//!   error): `$lsock`, `$hu`, `$dip`, `$ltt`, `$dir`/`$dic`, `$ds`,
//!   `$expires`, `$msgbuf`,
//!   `$T(id_label_n|id_index_n)`, `$shtcn`/`$shtcv`/`$shtrecord`; selects
//!   other than `via[n]` (with `.params["x"]`), `from`/`to`/`contact` (with
//!   `.params["x"]`), `ruri`, `call_id`, `cseq`, `msg.body|first_line|len|type|header["X"]`,
//!   `cfg_get` (`@hf_value.*` reads "" in Kamailio 5.6 and is refused here);
//! * `$T_req(pv)`, `$T_rpl(pv)`, `$T_inv(pv)` read the other message in a
//!   fresh context: what the message holds, and `$var` (not `$avp`, `$du`…);
//! * `$xavu`/`$xavi`/`$xavp` go two levels deep (`root=>field`); `$xavu`
//!   takes no index;
//! * transformations other than those [`transform`] compiles are an
//!   "unknown transformation" error (e.g. the json, msrp
//!   and dialog modules' classes); `s.ftime` formats in
//!   UTC (ringsip reads no time zone); `re.subst` is available without
//!   loading textops and takes a constant expression (no variables in it);
//! * `sht_lock` locks the key's slot against other `sht_lock` callers only
//!   (plain `$sht` reads and writes from other cores do not wait), fails
//!   instead of waiting while the message holds another lock, and every lock
//!   is let go when the message is done (see [`shared::HeldLocks`]);
//!   `sht_iterator_*` walk a copy of the table taken at start
//!   ([`shared::Iterators`]);
//! * `onsend_route` runs for requests (stateless `forward()` and each tm
//!   branch), not for replies (`onsend_route_reply`) nor for tm's
//!   retransmissions; changes it makes to the message do not reach the
//!   buffer being sent;
//! * `$ruid` reads `$null` (registrar does not set it yet); `$Rn` and
//!   `$fsn` read `$null` (ringsip's sockets have no names);
//! * `:=` (replace every value of an AVP) is accepted although Kamailio 5.6
//!   refuses it;
//! * `snd_*` / `to_*` and `$snd(…)`/`$sndto(…)`/`$sndfrom(…)` read what
//!   [`ctx::MsgCtx::send_dst`] and `send_buf` hold (set while onsend_route
//!   runs); the keywords are refused outside it, the PVs read `$null`.

pub mod ast;
pub mod attrs;
pub mod compile;
pub mod ctx;
pub mod diag;
mod expr;
pub mod format;
pub mod ir;
pub mod lexer;
mod parser;
pub mod preproc;
pub mod pv;
pub mod pvkind;
mod pvread;
mod pvwrite;
pub mod registry;
pub mod settings;
pub mod shared;
mod stmt;
pub(crate) mod timefmt;
pub mod transform;
pub mod value;
pub mod vm;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use ast::Config;
pub use diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
pub use format::{parse_format, parse_format_at, Format, FormatPart};
pub use preproc::{Environment, FsReader, MemoryFiles, ProcessEnv, SourceReader};
pub use pv::{parse_pv, Pv};

/// How to read a configuration.
pub struct Options<'a> {
    /// External defines, as given to `-A`: `NAME` or `NAME=value`.
    pub defines: Vec<String>,
    /// Where files are read from.
    pub files: &'a dyn SourceReader,
    /// Where `#!defenv` looks variables up.
    pub env: &'a dyn Environment,
}

impl Default for Options<'static> {
    /// The file system, the process environment, no defines.
    fn default() -> Self {
        Options {
            defines: Vec::new(),
            files: &FsReader,
            env: &ProcessEnv,
        }
    }
}

impl<'a> Options<'a> {
    /// Options reading from `files`, with no environment variables set.
    pub fn with_files(files: &'a dyn SourceReader) -> Self {
        Options {
            defines: Vec::new(),
            files,
            env: &NO_ENV,
        }
    }

    /// Adds an external define (`NAME` or `NAME=value`).
    pub fn define(mut self, define: impl Into<String>) -> Self {
        self.defines.push(define.into());
        self
    }

    /// Uses `env` for `#!defenv`.
    pub fn env(mut self, env: &'a dyn Environment) -> Self {
        self.env = env;
        self
    }
}

/// An environment with nothing set.
struct NoEnv;

impl Environment for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

static NO_ENV: NoEnv = NoEnv;

/// Reads and parses the configuration at `path` (and what it includes).
pub fn load(path: impl AsRef<Path>, options: &Options<'_>) -> Result<Config, Diagnostics> {
    let path = path.as_ref();
    let name = path.to_string_lossy().into_owned();
    match options.files.read(path) {
        Ok(text) => parse_str(&name, &text, options),
        Err(e) => {
            let mut sources = SourceMap::default();
            let file = sources.add(name.clone());
            let diag = Diagnostic::new(
                Span::new(file, 1, 1),
                format!("cannot read config file '{name}': {e}"),
            );
            Err(Diagnostics {
                sources,
                list: vec![diag],
            })
        }
    }
}

/// Parses configuration text; `name` is shown in diagnostics and relative
/// includes are looked up next to it.
pub fn parse_str(name: &str, text: &str, options: &Options<'_>) -> Result<Config, Diagnostics> {
    let mut pre = preproc::preprocess(name, text, &options.defines, options.files, options.env);
    if !pre.diags.is_empty() {
        pre.diags.sort_by_key(|d| d.span);
        return Err(Diagnostics {
            sources: pre.sources,
            list: pre.diags,
        });
    }
    let mut cfg = Config {
        compat: pre.compat,
        defines: pre.defines,
        ..Config::default()
    };
    let diags = parser::parse(&pre.tokens, &mut cfg);
    if !diags.is_empty() {
        return Err(Diagnostics {
            sources: pre.sources,
            list: diags,
        });
    }
    cfg.sources = pre.sources;
    Ok(cfg)
}
