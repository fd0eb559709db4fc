//! The preprocessor: directives, `#!define` expansion, `#!subst`, includes.
//!
//! It pulls tokens from a stack of file lexers (one per `include_file`) and
//! a stack of pending `#!define` expansions, and hands the parser a flat
//! token list. Kamailio 5.6 facts matched:
//! * a defined name is replaced where it appears as a bare identifier (never
//!   inside strings or pseudo-variables); the value is any token sequence,
//!   re-read at each use, so it may hold other defined names;
//! * `#!define` of a name already defined is an error; `#!trydef` keeps the
//!   old value; `#!redefine` replaces it; `-A NAME[=VAL]` defines come first,
//!   then the version names `KAMAILIO_5`, `KAMAILIO_5_6`, `KAMAILIO_5_6_3`,
//!   and each `loadmodule "x"` defines `MOD_x`;
//! * `#!subst "/re/repl/flags"` rewrites double- and single-quoted string
//!   tokens, pseudo-variable tokens and include file names that come after
//!   it; `#!substdef` also defines the matched text as a name whose value is
//!   the replacement, `#!substdefs` the same with a quoted-string value;
//! * adjacent double-quoted strings with only whitespace between them are
//!   one string (a subst rule sees the joined text);
//! * `include_file "f"` fails when `f` cannot be read, `import_file "f"` is
//!   silently skipped; a relative name is looked up next to the including
//!   file first, then as given; includes nest at most 10 deep;
//! * `#!defenv ID=VAR` / `#!defenv VAR` define from the environment (an
//!   error when `VAR` is unset); `#!trydefenv` skips unset variables and
//!   names already defined; the `…s` forms make the value a string.
//!
//! Each token keeps the position where it was written; a token produced by
//! a define expansion takes the position of the name it replaced and keeps
//! its place in the define body as `origin`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::ast::{module_stem, Compat, DefineInfo};
use super::diag::{Diagnostic, FileId, SourceMap, Span};
use super::lexer::{Directive, DirectiveKind, Lexer, Tok, Token};

/// Reads configuration files. Injected so tests run on in-memory files.
pub trait SourceReader {
    /// The whole text of `path`.
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// Reads from the file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsReader;

impl SourceReader for FsReader {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Files held in memory, by path.
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles {
    files: HashMap<PathBuf, String>,
}

impl MemoryFiles {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> &mut Self {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl SourceReader for MemoryFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

/// Looks up environment variables for `#!defenv`.
pub trait Environment {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Includes nest at most this deep (Kamailio's limit).
const MAX_INCLUDE_DEPTH: usize = 10;
/// At most this many files are included in all (a file that includes itself
/// twice would otherwise open 2^10 files).
const MAX_INCLUDES: usize = 256;
/// Defines expand inside each other at most this deep.
const MAX_EXPANSION_DEPTH: usize = 64;
/// Upper bound on tokens after expansion, against exponential defines.
const MAX_TOKENS: usize = 1_000_000;
/// The Kamailio version whose `KAMAILIO_X_Y_Z` names are predefined.
const VERSION: [&str; 3] = ["5", "6", "3"];

/// What the preprocessor hands the parser.
pub(crate) struct Preprocessed {
    pub tokens: Vec<Token>,
    pub sources: SourceMap,
    pub compat: Compat,
    pub defines: Vec<DefineInfo>,
    pub diags: Vec<Diagnostic>,
}

struct Frame {
    lexer: Lexer,
    dir: PathBuf,
    conds: Vec<Cond>,
}

struct Cond {
    span: Span,
    parent_live: bool,
    value: bool,
    in_else: bool,
}

impl Cond {
    fn live(&self) -> bool {
        self.parent_live && (self.value != self.in_else)
    }
}

struct Define {
    tokens: Vec<Token>,
    text: Option<String>,
    span: Span,
}

struct Expansion {
    name: String,
    tokens: VecDeque<Token>,
}

struct SubstRule {
    re: Regex,
    repl: String,
    global: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DefMode {
    Define,
    Try,
    Redefine,
}

struct Pre<'a> {
    reader: &'a dyn SourceReader,
    env: &'a dyn Environment,
    sources: SourceMap,
    frames: Vec<Frame>,
    defines: HashMap<String, Define>,
    define_order: Vec<String>,
    substs: Vec<SubstRule>,
    expansions: Vec<Expansion>,
    diags: Vec<Diagnostic>,
    compat: Compat,
    out: Vec<Token>,
    pending_str: Option<Token>,
    builtin: Option<FileId>,
}

/// Preprocesses the root text `text` named `name` (its directory is where
/// relative includes are looked up first).
pub(crate) fn preprocess(
    name: &str,
    text: &str,
    external_defines: &[String],
    reader: &dyn SourceReader,
    env: &dyn Environment,
) -> Preprocessed {
    let mut pre = Pre {
        reader,
        env,
        sources: SourceMap::default(),
        frames: Vec::new(),
        defines: HashMap::new(),
        define_order: Vec::new(),
        substs: Vec::new(),
        expansions: Vec::new(),
        diags: Vec::new(),
        compat: Compat::default(),
        out: Vec::new(),
        pending_str: None,
        builtin: None,
    };
    pre.predefine(external_defines);
    let file = pre.sources.add(name);
    pre.frames.push(Frame {
        lexer: Lexer::new(file, text),
        dir: parent_dir(Path::new(name)),
        conds: Vec::new(),
    });
    pre.run();
    let defines = pre
        .define_order
        .iter()
        .filter_map(|n| {
            pre.defines.get(n).map(|d| DefineInfo {
                name: n.clone(),
                value: d.text.clone(),
                span: d.span,
            })
        })
        .collect();
    Preprocessed {
        tokens: pre.out,
        sources: pre.sources,
        compat: pre.compat,
        defines,
        diags: pre.diags,
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Line and column reached after `prefix`, starting at `span`.
fn advance(span: Span, prefix: &str) -> Span {
    let mut s = span;
    for c in prefix.chars() {
        if c == '\n' {
            s.line = s.line.saturating_add(1);
            s.col = 1;
        } else {
            s.col = s.col.saturating_add(1);
        }
    }
    s
}

/// Text after a directive argument that may only be a comment.
fn is_comment_or_empty(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#') || rest.starts_with("//")
}

impl<'a> Pre<'a> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    fn builtin_file(&mut self) -> FileId {
        match self.builtin {
            Some(f) => f,
            None => {
                let f = self.sources.add("<command line>");
                self.builtin = Some(f);
                f
            }
        }
    }

    fn predefine(&mut self, external: &[String]) {
        let file = self.builtin_file();
        for (i, def) in external.iter().enumerate() {
            let span = Span::new(file, u32::try_from(i + 1).unwrap_or(u32::MAX), 1);
            let (name, value) = match def.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v)),
                None => (def.trim(), None),
            };
            if !is_ident(name) {
                self.error(
                    span,
                    format!("bad define '-A {def}': '{name}' is not a valid name"),
                );
                continue;
            }
            let value_span = Span::new(file, span.line, u32::try_from(name.len() + 2).unwrap_or(1));
            self.set_define(name, value, value_span, span, DefMode::Redefine);
        }
        let mut name = "KAMAILIO".to_string();
        for part in VERSION {
            name.push('_');
            name.push_str(part);
            let span = Span::new(file, 0, 0);
            self.set_define(&name.clone(), None, span, span, DefMode::Try);
        }
    }

    /// Lexes `value` (written at `value_span`) and records the define.
    fn set_define(
        &mut self,
        name: &str,
        value: Option<&str>,
        value_span: Span,
        span: Span,
        mode: DefMode,
    ) {
        let tokens = match value {
            Some(v) => {
                let mut lexer =
                    Lexer::fragment(value_span.file, v, value_span.line, value_span.col);
                let mut tokens = Vec::new();
                loop {
                    let t = lexer.next_token(false);
                    if t.tok == Tok::Eof {
                        break;
                    }
                    tokens.push(t);
                }
                self.diags.append(&mut lexer.diags);
                tokens
            }
            None => Vec::new(),
        };
        let text = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        self.insert_define(name, Define { tokens, text, span }, mode);
    }

    fn insert_define(&mut self, name: &str, define: Define, mode: DefMode) {
        if let Some(old) = self.defines.get(name) {
            match mode {
                DefMode::Try => return,
                DefMode::Define => {
                    let first = old.span;
                    let d = Diagnostic::new(define.span, format!("'{name}' is already defined"))
                        .with_note(first, "first defined here");
                    self.diags.push(d);
                    return;
                }
                DefMode::Redefine => {}
            }
        } else {
            self.define_order.push(name.to_string());
        }
        self.defines.insert(name.to_string(), define);
    }

    fn skipping(&self) -> bool {
        self.frames
            .last()
            .and_then(|f| f.conds.last())
            .is_some_and(|c| !c.live())
    }

    fn run(&mut self) {
        loop {
            if self.out.len() > MAX_TOKENS {
                let span = self.out.last().map(|t| t.span).unwrap_or_default();
                self.error(span, "configuration too large after #!define expansion");
                self.finish(span);
                return;
            }
            // An expansion stays on the stack while its last token is handled,
            // so a name that expands to itself is not expanded again.
            while self.expansions.last().is_some_and(|e| e.tokens.is_empty()) {
                self.expansions.pop();
            }
            let from_expansion = !self.expansions.is_empty();
            let tok = if let Some(e) = self.expansions.last_mut() {
                match e.tokens.pop_front() {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                let skipping = self.skipping();
                let Some(frame) = self.frames.last_mut() else {
                    return;
                };
                frame.lexer.next_token(skipping)
            };
            match &tok.tok {
                Tok::Eof => {
                    if self.end_of_file(tok.span) {
                        return;
                    }
                }
                Tok::Directive(d) => {
                    let d = d.clone();
                    self.flush_str();
                    self.directive(&d, tok.span);
                }
                Tok::Ident(name) if !from_expansion || !self.expanding(name) => {
                    if name == "include_file" || name == "import_file" {
                        let import = name == "import_file";
                        let next = self.next_plain_token();
                        match next.tok {
                            Tok::Str { value, .. } => self.include(&value, next.span, import),
                            _ => self.error(
                                next.span,
                                format!(
                                    "expected a quoted file name after '{}', found {}",
                                    tok.text,
                                    next.describe()
                                ),
                            ),
                        }
                    } else if self.defines.contains_key(name.as_str()) && !self.expanding(name) {
                        self.expand(name.clone(), &tok);
                    } else {
                        self.emit(tok);
                    }
                }
                _ => self.emit(tok),
            }
        }
    }

    /// The next token of the current file, not expanded (an include name).
    fn next_plain_token(&mut self) -> Token {
        if let Some(t) = self
            .expansions
            .last_mut()
            .and_then(|e| e.tokens.pop_front())
        {
            return t;
        }
        match self.frames.last_mut() {
            Some(frame) => frame.lexer.next_token(false),
            None => Token {
                tok: Tok::Eof,
                span: Span::default(),
                text: String::new(),
                space_before: true,
                string_break: false,
                origin: None,
            },
        }
    }

    fn expanding(&self, name: &str) -> bool {
        self.expansions.iter().any(|e| e.name == name)
    }

    fn expand(&mut self, name: String, at: &Token) {
        if self.expansions.len() >= MAX_EXPANSION_DEPTH {
            self.error(
                at.span,
                format!("#!define expansion of '{name}' nests too deep"),
            );
            return;
        }
        let Some(define) = self.defines.get(&name) else {
            return;
        };
        let mut tokens: VecDeque<Token> = define
            .tokens
            .iter()
            .map(|t| Token {
                span: at.span,
                origin: Some(t.origin.unwrap_or(t.span)),
                ..t.clone()
            })
            .collect();
        if let Some(first) = tokens.front_mut() {
            first.space_before = at.space_before;
            first.string_break = true;
        }
        self.expansions.push(Expansion { name, tokens });
    }

    /// Handles the end of the current file; true when the root ended.
    fn end_of_file(&mut self, span: Span) -> bool {
        let Some(mut frame) = self.frames.pop() else {
            return true;
        };
        self.diags.append(&mut frame.lexer.diags);
        for cond in frame.conds.iter().rev() {
            self.error(cond.span, "missing #!endif for this #!ifdef/#!ifndef");
        }
        if self.frames.is_empty() {
            self.finish(span);
            return true;
        }
        false
    }

    fn finish(&mut self, span: Span) {
        self.flush_str();
        self.out.push(Token {
            tok: Tok::Eof,
            span,
            text: String::new(),
            space_before: true,
            string_break: false,
            origin: None,
        });
    }

    fn emit(&mut self, mut tok: Token) {
        match &mut tok.tok {
            Tok::Str {
                value,
                single: false,
            } => {
                if let Some(pending) = &mut self.pending_str {
                    if !tok.string_break {
                        if let Tok::Str { value: joined, .. } = &mut pending.tok {
                            joined.push_str(value);
                            pending.text.push(' ');
                            pending.text.push_str(&tok.text);
                            return;
                        }
                    }
                }
                self.flush_str();
                self.pending_str = Some(tok);
                return;
            }
            Tok::Str {
                value,
                single: true,
            } => {
                let v = self.subst(value);
                *value = v;
            }
            Tok::Pv(raw) => {
                let v = self.subst(raw);
                *raw = v;
            }
            _ => {}
        }
        self.flush_str();
        self.push_out(tok);
    }

    fn flush_str(&mut self) {
        if let Some(mut tok) = self.pending_str.take() {
            if let Tok::Str { value, .. } = &mut tok.tok {
                let v = self.subst(value);
                *value = v;
            }
            self.push_out(tok);
        }
    }

    fn push_out(&mut self, tok: Token) {
        if let (Tok::Str { value, .. }, Some(prev)) = (&tok.tok, self.out.last()) {
            if prev.ident() == Some("loadmodule") {
                let name = format!("MOD_{}", module_stem(value));
                if is_ident(&name) {
                    let define = Define {
                        tokens: Vec::new(),
                        text: None,
                        span: tok.span,
                    };
                    self.insert_define(&name, define, DefMode::Try);
                }
            }
        }
        self.out.push(tok);
    }

    fn subst(&self, text: &str) -> String {
        let mut s = text.to_string();
        for rule in &self.substs {
            s = if rule.global {
                rule.re.replace_all(&s, rule.repl.as_str()).into_owned()
            } else {
                rule.re.replace(&s, rule.repl.as_str()).into_owned()
            };
        }
        s
    }

    fn directive(&mut self, d: &Directive, span: Span) {
        use DirectiveKind::*;
        match d.kind {
            IfDef | IfNDef => self.ifdef(d, span),
            Else | EndIf => {
                if !is_comment_or_empty(&d.args) {
                    self.error(d.args_span, format!("unexpected text after #!{}", d.name));
                }
                let Some(frame) = self.frames.last_mut() else {
                    return;
                };
                if d.kind == EndIf {
                    if frame.conds.pop().is_none() {
                        self.error(span, "#!endif without #!ifdef/#!ifndef");
                    }
                } else {
                    match frame.conds.last_mut() {
                        None => self.error(span, "#!else without #!ifdef/#!ifndef"),
                        Some(c) if c.in_else => {
                            let first = c.span;
                            let diag = Diagnostic::new(span, "second #!else for the same #!ifdef")
                                .with_note(first, "the #!ifdef");
                            self.diags.push(diag);
                        }
                        Some(c) => c.in_else = true,
                    }
                }
            }
            Define => self.define(d, DefMode::Define),
            TryDef => self.define(d, DefMode::Try),
            ReDef => self.define(d, DefMode::Redefine),
            Subst | SubstDef | SubstDefs => self.subst_directive(d),
            DefEnv | DefEnvS | TryDefEnv | TryDefEnvS => self.defenv(d),
            IncludeFile | ImportFile => match self.directive_string(d) {
                Some((value, at)) => self.include(&value, at, d.kind == ImportFile),
                None => self.error(
                    d.args_span,
                    format!("#!{} needs a quoted file name", d.name),
                ),
            },
            Unsupported => self.error(span, format!("#!{} is not supported", d.name)),
            CompatKamailio => self.compat = Compat::Kamailio,
            CompatSer => self.compat = Compat::Ser,
            CompatMax => self.compat = Compat::Max,
        }
    }

    fn ifdef(&mut self, d: &Directive, span: Span) {
        let args = d.args.trim_start();
        let name_len = args
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(args.len());
        let name = &args[..name_len];
        let value = if name.is_empty() || !is_ident(name) {
            self.error(d.args_span, format!("expected a name after #!{}", d.name));
            false
        } else {
            let rest = &args[name_len..];
            if rest.starts_with('-') {
                self.error(
                    advance(d.args_span, &args[..name_len]),
                    "'-' is not allowed in a define name",
                );
            } else if !is_comment_or_empty(rest) {
                self.error(
                    advance(d.args_span, &args[..name_len]),
                    format!("unexpected text after #!{} {name}", d.name),
                );
            }
            self.defines.contains_key(name) == (d.kind == DirectiveKind::IfDef)
        };
        let parent_live = !self.skipping();
        if let Some(frame) = self.frames.last_mut() {
            frame.conds.push(Cond {
                span,
                parent_live,
                value,
                in_else: false,
            });
        }
    }

    fn define(&mut self, d: &Directive, mode: DefMode) {
        let args = d.args.as_str();
        let name_len = args
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(args.len());
        let name = &args[..name_len];
        if !is_ident(name) {
            self.error(d.args_span, format!("expected a name after #!{}", d.name));
            return;
        }
        let rest = &args[name_len..];
        if rest.starts_with('-') {
            self.error(
                advance(d.args_span, name),
                "'-' is not allowed in a define name",
            );
            return;
        }
        if !rest.is_empty() && !rest.starts_with([' ', '\t', '\\']) {
            self.error(
                advance(d.args_span, name),
                format!("unexpected character after the name in #!{}", d.name),
            );
            return;
        }
        let value = rest.trim_start_matches([' ', '\t']);
        let value_span = advance(d.args_span, &args[..args.len() - value.len()]);
        let value = (!value.trim().is_empty()).then_some(value);
        self.set_define(name, value, value_span, d.args_span, mode);
    }

    /// The single quoted string a directive takes.
    fn directive_string(&mut self, d: &Directive) -> Option<(String, Span)> {
        let mut lexer =
            Lexer::fragment(d.args_span.file, &d.args, d.args_span.line, d.args_span.col);
        let first = lexer.next_token(false);
        let rest = lexer.next_token(false);
        self.diags.append(&mut lexer.diags);
        match (first.tok, rest.tok) {
            (Tok::Str { value, .. }, Tok::Eof) => Some((value, first.span)),
            _ => None,
        }
    }

    fn subst_directive(&mut self, d: &Directive) {
        let Some((text, at)) = self.directive_string(d) else {
            self.error(
                d.args_span,
                format!("#!{} needs one quoted \"/regex/replacement/flags\"", d.name),
            );
            return;
        };
        let (re_src, repl, flags) = match split_subst(&text) {
            Ok(parts) => parts,
            Err(e) => {
                self.error(at, format!("bad #!{} expression: {e}", d.name));
                return;
            }
        };
        let mut global = false;
        let mut icase = false;
        for f in flags.chars() {
            match f {
                'g' => global = true,
                'i' => icase = true,
                's' | ' ' => {}
                other => {
                    self.error(
                        at,
                        format!("bad #!{} flag '{other}' (allowed: g, i)", d.name),
                    );
                    return;
                }
            }
        }
        let pattern = if icase {
            format!("(?i){re_src}")
        } else {
            re_src.clone()
        };
        let re = match Regex::new(&pattern) {
            Ok(re) => re,
            Err(e) => {
                self.error(at, format!("bad regular expression in #!{}: {e}", d.name));
                return;
            }
        };
        if d.kind != DirectiveKind::Subst {
            if !is_ident(&re_src) {
                self.error(
                    at,
                    format!("#!{} needs a plain name to define, not '{re_src}'", d.name),
                );
                return;
            }
            let literal = literal_replacement(&repl);
            let define = if d.kind == DirectiveKind::SubstDefs {
                let tok = Token {
                    tok: Tok::Str {
                        value: literal.clone(),
                        single: false,
                    },
                    span: at,
                    text: format!("\"{literal}\""),
                    space_before: true,
                    string_break: false,
                    origin: None,
                };
                Define {
                    tokens: vec![tok],
                    text: Some(format!("\"{literal}\"")),
                    span: at,
                }
            } else {
                let mut lexer = Lexer::fragment(at.file, &literal, at.line, at.col);
                let mut tokens = Vec::new();
                loop {
                    let t = lexer.next_token(false);
                    if t.tok == Tok::Eof {
                        break;
                    }
                    tokens.push(t);
                }
                self.diags.append(&mut lexer.diags);
                Define {
                    tokens,
                    text: (!literal.is_empty()).then_some(literal),
                    span: at,
                }
            };
            self.insert_define(&re_src, define, DefMode::Define);
        }
        self.substs.push(SubstRule {
            re,
            repl: regex_replacement(&repl),
            global,
        });
    }

    fn defenv(&mut self, d: &Directive) {
        use DirectiveKind::{DefEnvS, TryDefEnv, TryDefEnvS};
        let args = d.args.trim();
        let (name, var) = match args.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (args, args),
        };
        if !is_ident(name) || var.is_empty() {
            self.error(
                d.args_span,
                format!("#!{} needs NAME or NAME=VARIABLE", d.name),
            );
            return;
        }
        let tolerant = matches!(d.kind, TryDefEnv | TryDefEnvS);
        if tolerant && self.defines.contains_key(name) {
            return;
        }
        let Some(value) = self.env.var(var) else {
            if !tolerant {
                self.error(
                    d.args_span,
                    format!("environment variable '{var}' is not set"),
                );
            }
            return;
        };
        let mode = if tolerant {
            DefMode::Try
        } else {
            DefMode::Define
        };
        if matches!(d.kind, DefEnvS | TryDefEnvS) {
            let tok = Token {
                tok: Tok::Str {
                    value: value.clone(),
                    single: false,
                },
                span: d.args_span,
                text: format!("\"{value}\""),
                space_before: true,
                string_break: false,
                origin: None,
            };
            let define = Define {
                tokens: vec![tok],
                text: Some(format!("\"{value}\"")),
                span: d.args_span,
            };
            self.insert_define(name, define, mode);
        } else {
            let file = self.sources.add(format!("<environment {var}>"));
            self.set_define(name, Some(&value), Span::new(file, 1, 1), d.args_span, mode);
        }
    }

    fn include(&mut self, name: &str, at: Span, import: bool) {
        let name = self.subst(name);
        if name.is_empty() {
            self.error(at, "empty include file name");
            return;
        }
        if self.sources.files().len() > MAX_INCLUDES {
            self.error(
                at,
                format!("too many included files (more than {MAX_INCLUDES})"),
            );
            return;
        }
        if self.frames.len() > MAX_INCLUDE_DEPTH {
            self.error(
                at,
                format!("too many nested includes (more than {MAX_INCLUDE_DEPTH}) at '{name}'"),
            );
            return;
        }
        let path = Path::new(&name);
        let mut candidates = Vec::new();
        if path.is_relative() {
            if let Some(frame) = self.frames.last() {
                if !frame.dir.as_os_str().is_empty() {
                    candidates.push(frame.dir.join(path));
                }
            }
        }
        candidates.push(path.to_path_buf());
        let mut last_err = None;
        for candidate in candidates {
            match self.reader.read(&candidate) {
                Ok(text) => {
                    let file = self.sources.add(candidate.to_string_lossy().into_owned());
                    self.frames.push(Frame {
                        lexer: Lexer::new(file, &text),
                        dir: parent_dir(&candidate),
                        conds: Vec::new(),
                    });
                    return;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if !import {
            let why = last_err.map(|e| e.to_string()).unwrap_or_default();
            self.error(at, format!("cannot read included file '{name}': {why}"));
        }
    }
}

/// Splits `/re/repl/flags` on its separator (the first character); a
/// backslash before the separator makes it literal.
fn split_subst(text: &str) -> Result<(String, String, String), String> {
    let mut chars = text.chars();
    let sep = chars.next().ok_or("empty expression")?;
    if sep.is_alphanumeric() || sep == '\\' {
        return Err(format!("'{sep}' cannot be the separator"));
    }
    let mut parts = vec![String::new()];
    let mut rest = chars.peekable();
    while let Some(c) = rest.next() {
        if c == '\\' {
            match rest.next() {
                Some(n) if n == sep => parts.last_mut().map(|p| p.push(n)).unwrap_or(()),
                Some(n) => {
                    if let Some(p) = parts.last_mut() {
                        p.push('\\');
                        p.push(n);
                    }
                }
                None => return Err("ends with a lone backslash".into()),
            }
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    if parts.len() != 3 {
        return Err(format!("expected {sep}regex{sep}replacement{sep}flags"));
    }
    let flags = parts.pop().unwrap_or_default();
    let repl = parts.pop().unwrap_or_default();
    let re = parts.pop().unwrap_or_default();
    if re.is_empty() {
        return Err("empty regular expression".into());
    }
    Ok((re, repl, flags))
}

/// A subst replacement (`\1` back-references, `\\`) in the regex crate's
/// syntax (`${1}`, `$` doubled).
fn regex_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => out.push_str(&format!("${{{d}}}")),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

/// The replacement text as a define value (no back-references possible).
fn literal_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(
        files: &MemoryFiles,
        env: &HashMap<String, String>,
        defines: &[&str],
    ) -> Preprocessed {
        let root = files.read(Path::new("/etc/k/main.cfg")).expect("root file");
        let defines: Vec<String> = defines.iter().map(|s| s.to_string()).collect();
        preprocess("/etc/k/main.cfg", &root, &defines, files, env)
    }

    fn run(text: &str) -> Preprocessed {
        let mut files = MemoryFiles::new();
        files.insert("/etc/k/main.cfg", text);
        run_with(&files, &HashMap::new(), &[])
    }

    /// Tokens as text, strings shown quoted with their decoded value.
    fn shown(p: &Preprocessed) -> String {
        assert!(p.diags.is_empty(), "diagnostics: {:?}", p.diags);
        p.tokens
            .iter()
            .filter(|t| t.tok != Tok::Eof)
            .map(|t| match &t.tok {
                Tok::Str { value, .. } => format!("{value:?}"),
                Tok::Pv(raw) => raw.clone(),
                _ => t.text.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn first_error(p: &Preprocessed) -> (u32, u32, String) {
        let d = p.diags.first().expect("an error");
        (d.span.line, d.span.col, d.message.clone())
    }

    #[test]
    fn expansion_table() {
        let cases = [
            ("#!define A 1\nx=A", "x = 1"),
            ("#!define A\n#!ifdef A\nyes\n#!else\nno\n#!endif", "yes"),
            ("#!ifndef A\nyes\n#!else\nno\n#!endif", "yes"),
            (
                "#!ifdef A\n#!ifdef B\nx\n#!else\ny\n#!endif\n#!else\nz\n#!endif",
                "z",
            ),
            (
                "#!define A 1\n#!ifdef A\n#!ifndef B\nin\n#!endif\n#!endif",
                "in",
            ),
            ("#!define A 1\n#!trydef A 2\nA", "1"),
            ("#!define A 1\n#!redefine A 2\nA", "2"),
            ("#!define S \"q\"\n\"S\" S", "\"S\" \"q\""),
            ("#!define S \"q\"\nS \"r\"", "\"qr\""),
            ("#!define V a + \\\n  b\nV", "a + b"),
            ("#!define X Y Z\n#!define Y 1\nX", "1 Z"),
            ("#!define X X\nX", "X"),
            ("#!define A B\n#!define B A\nA", "A"),
            ("\"a\" \"b\"\n  \"c\"", "\"abc\""),
            ("\"a\" # c\n\"b\"", "\"a\" \"b\""),
            ("'a' 'b'", "\"a\" \"b\""),
            (
                "#!subst \"/HOST/example.com/g\"\n\"sip:HOST\" HOST $var(HOST)",
                "\"sip:example.com\" HOST $var(example.com)",
            ),
            ("#!subst \"/a(b)c/<\\1>/\"\n\"abcabc\"", "\"<b>abc\""),
            ("#!subst \"/x/y/gi\"\n\"xX\"", "\"yy\""),
            (
                "#!substdef \"!PORT!5060!g\"\nport=PORT \"PORT\"",
                "port = 5060 \"5060\"",
            ),
            ("#!substdefs \"/NAME/proxy/\"\nx=NAME", "x = \"proxy\""),
            ("#!subst \"/a/b/\"\n\"a\"\n\"a\"", "\"ba\""),
            (
                "KAMAILIO_5_6 MOD_tm\nloadmodule \"tm.so\"\n#!ifdef MOD_tm\nok\n#!endif",
                "5 MOD_tm loadmodule \"tm.so\" ok",
            ),
        ];
        for (text, want) in cases {
            let p = run(text);
            // KAMAILIO_5_6 has no value: it expands to nothing.
            let got = shown(&p);
            let want = want.replacen("5 MOD_tm", "MOD_tm", 1);
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn external_and_env_defines() {
        let mut files = MemoryFiles::new();
        files.insert(
            "/etc/k/main.cfg",
            "#!defenv HOME\n#!defenv P=PORT\n#!defenvs S=HOME\n#!trydefenv NOPE\n#!trydefenvs Q=NOPE\nA B HOME P S NOPE Q",
        );
        let env: HashMap<String, String> = [
            ("HOME".to_string(), "/root".to_string()),
            ("PORT".to_string(), "5080".to_string()),
        ]
        .into();
        let p = run_with(&files, &env, &["A", "B=2"]);
        assert_eq!(shown(&p), "2 / root 5080 \"/root\" NOPE Q");
        assert!(p.defines.iter().any(|d| d.name == "A" && d.value.is_none()));
    }

    #[test]
    fn includes_resolve_next_to_including_file() {
        let mut files = MemoryFiles::new();
        files
            .insert("/etc/k/main.cfg", "a\ninclude_file \"sub/one.cfg\"\nimport_file \"missing.cfg\"\n#!include_file \"/abs.cfg\"\nd")
            .insert("/etc/k/sub/one.cfg", "b\ninclude_file \"two.cfg\"")
            .insert("/etc/k/sub/two.cfg", "  c")
            .insert("/abs.cfg", "z");
        let p = run_with(&files, &HashMap::new(), &[]);
        assert_eq!(shown(&p), "a b c z d");
        let c = &p.tokens[2];
        assert_eq!(p.sources.name(c.span.file), "/etc/k/sub/two.cfg");
        assert_eq!((c.span.line, c.span.col), (1, 3));
    }

    #[test]
    fn define_tokens_keep_use_site_and_origin() {
        let p = run("#!define V 1 + 2\n\n   x = V;");
        let one = p.tokens.iter().find(|t| t.tok == Tok::Int(1)).unwrap();
        assert_eq!((one.span.line, one.span.col), (3, 8));
        let origin = one.origin.unwrap();
        assert_eq!((origin.line, origin.col), (1, 12));
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "#!define A 1\n#!define A 2",
                (2, 10),
                "'A' is already defined",
            ),
            ("x\n#!endif", (2, 1), "#!endif without"),
            ("#!else", (1, 1), "#!else without"),
            ("a\n#!ifdef X\nb", (2, 1), "missing #!endif"),
            (
                "#!ifdef X\n#!else\n#!else\n#!endif",
                (3, 1),
                "second #!else",
            ),
            ("#!ifdef\n#!endif", (1, 8), "expected a name"),
            ("#!define A-B 1", (1, 11), "'-' is not allowed"),
            (
                "include_file \"nope.cfg\"",
                (1, 14),
                "cannot read included file 'nope.cfg'",
            ),
            ("include_file nope", (1, 14), "expected a quoted file name"),
            ("#!subst \"/(/x/\"", (1, 9), "bad regular expression"),
            ("#!subst \"/a/b\"", (1, 9), "bad #!subst expression"),
            ("#!subst \"/a/b/q\"", (1, 9), "bad #!subst flag"),
            ("#!substdef \"/a.b/x/\"", (1, 12), "needs a plain name"),
            (
                "#!defenv NOT_SET_ANYWHERE",
                (1, 10),
                "environment variable 'NOT_SET_ANYWHERE' is not set",
            ),
            ("#!ifexp 1\n", (1, 1), "#!ifexp is not supported"),
            ("#!endif junk", (1, 9), "unexpected text after #!endif"),
        ];
        for (text, (line, col), msg) in cases {
            let p = run(text);
            let (l, c, m) = first_error(&p);
            assert_eq!((l, c), (line, col), "{text:?}: {m}");
            assert!(m.contains(msg), "{text:?}: {m}");
        }
    }

    #[test]
    fn duplicate_define_has_note() {
        let p = run("#!define A 1\n#!define A 2");
        assert_eq!(p.diags[0].notes.len(), 1);
        assert_eq!(p.diags[0].notes[0].0.line, 1);
    }

    #[test]
    fn recursive_include_stops() {
        let mut files = MemoryFiles::new();
        files.insert("/etc/k/main.cfg", "include_file \"main.cfg\"");
        let p = run_with(&files, &HashMap::new(), &[]);
        assert!(p
            .diags
            .iter()
            .any(|d| d.message.contains("too many nested includes")));
    }

    #[test]
    fn exponential_defines_are_bounded() {
        let mut text = String::from("#!define D0 x x x x x x x x\n");
        for i in 1..8 {
            text.push_str(&format!(
                "#!define D{i} D{p} D{p} D{p} D{p} D{p} D{p} D{p} D{p}\n",
                p = i - 1
            ));
        }
        text.push_str("D7");
        let p = run(&text);
        assert!(p.diags.iter().any(|d| d.message.contains("too large")));
    }

    #[test]
    fn subst_helpers() {
        assert_eq!(
            split_subst("/a\\/b/c/g").unwrap(),
            ("a/b".into(), "c".into(), "g".into())
        );
        assert_eq!(regex_replacement("x\\1$y"), "x${1}$$y");
        assert_eq!(literal_replacement("a\\.b"), "a.b");
    }
}
