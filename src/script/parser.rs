//! The parser: token access, errors, top-level items (route blocks and
//! statements are in `stmt.rs`, expressions in `expr.rs`).
//!
//! Grammar facts matched (Kamailio 5.6 `cfg.y`):
//! * top level: `name = value [desc "text"]` (custom `group.name` too),
//!   `flags NAME[:bit], …`, `avpflags`, `loadmodule "m"`, `loadpath "d"`,
//!   `modparam("m", "p", value)`, route blocks; stray `;` are allowed;
//! * `listen=`/`alias=` take a space-separated list of
//!   `[proto:]host[:port]`, a host may be `(a, b)` (multihomed) and each
//!   socket may have `advertise host[:port]`, `name "id"` and `virtual`;

use super::ast::*;
use super::diag::{Diagnostic, Span};
use super::lexer::{Punct, Tok, Token};
use super::pv::{parse_pv, Pv};

/// Stop after this many errors: later ones are mostly echoes.
pub(crate) const MAX_DIAGS: usize = 25;

/// Core commands that may be written without parentheses.
pub(crate) const BARE_COMMANDS: &[&str] = &[
    "revert_uri",
    "force_rport",
    "add_rport",
    "add_local_rport",
    "force_tcp_alias",
    "add_tcp_alias",
    "set_forward_no_connect",
    "set_reply_no_connect",
    "set_forward_close",
    "set_reply_close",
];

/// Keywords that start a route block.
const ROUTE_KEYWORDS: &[&str] = &[
    "route",
    "request_route",
    "failure_route",
    "branch_route",
    "onreply_route",
    "reply_route",
    "onsend_route",
    "event_route",
];

/// A failed rule; its diagnostic has already been recorded.
#[derive(Debug)]
pub(crate) struct Fail;

pub(crate) type PResult<T> = Result<T, Fail>;

/// Parser state over the preprocessed tokens (the last one is `Eof`).
pub(crate) struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    pub(crate) diags: Vec<Diagnostic>,
    /// Parsing a `case` label: `:` ends it and is never part of a word.
    pub(crate) in_case_label: bool,
    /// A bare word (host name, flag name, socket) is acceptable here.
    pub(crate) words_ok: bool,
    /// Current nesting of blocks and expressions (bounded, so that hostile
    /// input cannot exhaust the stack).
    depth: usize,
}

/// Deepest nesting of blocks, statements and sub-expressions accepted.
const MAX_DEPTH: usize = 150;

/// Parses a whole configuration into `cfg`; returns the errors found.
pub(crate) fn parse(tokens: &[Token], cfg: &mut Config) -> Vec<Diagnostic> {
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        diags: Vec::new(),
        in_case_label: false,
        words_ok: false,
        depth: 0,
    };
    if tokens.last().is_some_and(|t| t.tok == Tok::Eof) {
        p.config(cfg);
    }
    p.diags
}

impl<'t> Parser<'t> {
    // ---- token access -------------------------------------------------

    pub(crate) fn peek(&self) -> &'t Token {
        self.peek_n(0)
    }

    pub(crate) fn peek_n(&self, n: usize) -> &'t Token {
        let last = self.toks.len() - 1;
        &self.toks[(self.pos + n).min(last)]
    }

    pub(crate) fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    pub(crate) fn prev(&self) -> Option<&'t Token> {
        self.pos.checked_sub(1).map(|i| &self.toks[i])
    }

    pub(crate) fn at(&self, p: Punct) -> bool {
        self.peek().is(p)
    }

    pub(crate) fn eat(&mut self, p: Punct) -> bool {
        if self.at(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub(crate) fn at_ident(&self, name: &str) -> bool {
        self.peek().ident() == Some(name)
    }

    /// The next token follows the current one with no space between.
    pub(crate) fn glued(&self, n: usize) -> bool {
        !self.peek_n(n).space_before && self.peek_n(n).tok != Tok::Eof
    }

    /// Runs `f` one nesting level deeper, failing past [`MAX_DEPTH`].
    pub(crate) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_DEPTH {
            let tok = self.peek();
            return self.fail_at(
                tok,
                format!("nesting too deep (more than {MAX_DEPTH} levels)"),
            );
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ---- errors --------------------------------------------------------

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    /// Records an error at `tok` (noting the define body it came from).
    pub(crate) fn fail_at<T>(&mut self, tok: &Token, message: impl Into<String>) -> PResult<T> {
        let mut d = Diagnostic::new(tok.span, message);
        if let Some(origin) = tok.origin {
            d = d.with_note(origin, "the token comes from this #!define value");
        }
        self.diags.push(d);
        Err(Fail)
    }

    pub(crate) fn fail<T>(&mut self, span: Span, message: impl Into<String>) -> PResult<T> {
        self.error(span, message);
        Err(Fail)
    }

    /// "expected X, found Y" at the next token.
    pub(crate) fn expected<T>(&mut self, what: &str) -> PResult<T> {
        let tok = self.peek();
        self.fail_at(tok, format!("expected {what}, found {}", tok.describe()))
    }

    pub(crate) fn expect(&mut self, p: Punct, context: &str) -> PResult<Span> {
        if self.at(p) {
            return Ok(self.bump().span);
        }
        self.expected(&format!("'{}' {context}", p.as_str()))
    }

    /// Where a missing token should have been: right after the previous
    /// token when the next one is on a later line, else at the next token.
    pub(crate) fn missing_span(&self) -> Span {
        let next = self.peek();
        match self.prev() {
            Some(prev)
                if prev.span.line < next.span.line
                    && prev.origin.is_none()
                    && !prev.text.contains('\n') =>
            {
                prev.span.shifted(prev.text.chars().count())
            }
            _ => next.span,
        }
    }

    pub(crate) fn expect_semi(&mut self, after: &str) -> PResult<()> {
        if self.eat(Punct::Semi) {
            return Ok(());
        }
        let span = self.missing_span();
        let found = self.peek().describe();
        self.fail(span, format!("expected ';' after {after}, found {found}"))
    }

    /// Parses a pseudo-variable token.
    pub(crate) fn pv(&mut self, tok: &Token) -> PResult<Pv> {
        let Tok::Pv(raw) = &tok.tok else {
            return self.fail_at(tok, "expected a pseudo-variable");
        };
        match parse_pv(raw, tok.span) {
            Ok(pv) => Ok(pv),
            Err(e) => {
                let span = if raw.contains('\n') || tok.origin.is_some() {
                    tok.span
                } else {
                    tok.span.shifted(e.offset)
                };
                self.fail(span, format!("bad pseudo-variable '{raw}': {}", e.message))
            }
        }
    }

    // ---- top level -----------------------------------------------------

    fn config(&mut self, cfg: &mut Config) {
        loop {
            if self.diags.len() >= MAX_DIAGS {
                return;
            }
            let start = self.pos;
            let tok = self.peek();
            let result = match &tok.tok {
                Tok::Eof => return,
                Tok::Punct(Punct::Semi) => {
                    self.bump();
                    Ok(())
                }
                Tok::Ident(name) => match name.as_str() {
                    "loadmodule" | "loadmodulex" => self.loadmodule(cfg),
                    "loadpath" | "mpath" => self.loadpath(cfg),
                    "modparam" | "modparamx" => self.modparam(cfg),
                    "flags" | "bool" => self.flags(cfg, false),
                    "avpflags" => self.flags(cfg, true),
                    "cfgengine" => self.cfgengine(cfg),
                    n if ROUTE_KEYWORDS.contains(&n) => self.route_block(cfg),
                    _ => self.global(cfg),
                },
                _ => self.fail_at(
                    tok,
                    format!(
                        "unexpected {} at top level: expected a parameter, loadmodule, modparam or a route block",
                        tok.describe()
                    ),
                ),
            };
            if result.is_err() {
                if self.pos == start {
                    self.bump();
                }
                self.recover_top();
            }
        }
    }

    /// Whether the next token starts a top-level item (used to recover and
    /// to notice a block that was never closed).
    pub(crate) fn at_top_level_start(&self) -> bool {
        match self.peek().ident() {
            Some("route") => self.peek_n(1).is(Punct::LBrack) || self.peek_n(1).is(Punct::LBrace),
            Some(n) if ROUTE_KEYWORDS.contains(&n) => true,
            Some("loadmodule" | "modparam" | "loadpath" | "modparamx" | "loadmodulex") => true,
            _ => false,
        }
    }

    fn recover_top(&mut self) {
        let mut depth = 0usize;
        loop {
            let tok = self.peek();
            match &tok.tok {
                Tok::Eof => return,
                Tok::Punct(Punct::LBrace) => depth += 1,
                Tok::Punct(Punct::RBrace) => depth = depth.saturating_sub(1),
                Tok::Ident(_) if depth == 0 => {
                    let line_start = self.prev().is_none_or(|p| p.span.line < tok.span.line);
                    let assigns = self.peek_n(1).is(Punct::Assign) || self.peek_n(1).is(Punct::Dot);
                    if self.at_top_level_start() || (line_start && assigns) {
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// A quoted string (adjacent ones are already joined).
    pub(crate) fn string(&mut self, what: &str) -> PResult<(String, Span)> {
        let tok = self.peek();
        match &tok.tok {
            Tok::Str { value, .. } => {
                self.bump();
                Ok((value.clone(), tok.span))
            }
            _ => self.expected(&format!("a quoted string ({what})")),
        }
    }

    fn loadmodule(&mut self, cfg: &mut Config) -> PResult<()> {
        let kw = self.bump();
        let path = match &self.peek().tok {
            Tok::Str { value, .. } => {
                self.bump();
                value.clone()
            }
            Tok::Ident(_) => self.glue_word(false).0,
            _ => return self.expected("a module name after loadmodule"),
        };
        if path.is_empty() {
            return self.fail(kw.span, "empty module name in loadmodule");
        }
        cfg.modules.push(LoadModule {
            path,
            span: kw.span,
        });
        Ok(())
    }

    fn loadpath(&mut self, cfg: &mut Config) -> PResult<()> {
        let kw = self.bump();
        self.eat(Punct::Assign);
        let (path, _) = self.string("the module directory")?;
        cfg.load_paths.push(LoadPath {
            path,
            span: kw.span,
        });
        Ok(())
    }

    fn cfgengine(&mut self, cfg: &mut Config) -> PResult<()> {
        let kw = self.bump();
        self.eat(Punct::Assign);
        let (name, _) = self.string("the routing engine")?;
        cfg.globals.push(GlobalParam {
            name: "cfgengine".into(),
            value: Value::Str(name),
            description: None,
            span: kw.span,
        });
        Ok(())
    }

    fn modparam(&mut self, cfg: &mut Config) -> PResult<()> {
        let kw = self.bump();
        self.expect(Punct::LParen, "after modparam")?;
        let (module, _) = self.string("the module name")?;
        self.expect(Punct::Comma, "after the module name")?;
        let (param, _) = self.string("the parameter name")?;
        self.expect(Punct::Comma, "after the parameter name")?;
        let tok = self.peek();
        let value = match &tok.tok {
            Tok::Str { value, .. } => {
                self.bump();
                Value::Str(value.clone())
            }
            Tok::Int(n) => {
                self.bump();
                Value::Int(*n)
            }
            Tok::Punct(Punct::Minus) if matches!(self.peek_n(1).tok, Tok::Int(_)) => {
                self.bump();
                let Tok::Int(n) = self.bump().tok else {
                    return Err(Fail);
                };
                Value::Int(-n)
            }
            Tok::Ident(w) if bool_word(w).is_some() => {
                self.bump();
                Value::Bool(bool_word(w).unwrap_or(false))
            }
            Tok::Ident(w) => {
                return self.fail_at(
                    tok,
                    format!(
                        "modparam(\"{module}\", \"{param}\", …) needs a string or a number, \
                         found '{w}' (an undefined #!define?)"
                    ),
                )
            }
            _ => {
                return self.expected(&format!(
                    "a string or number for modparam(\"{module}\", \"{param}\", …)"
                ))
            }
        };
        self.expect(Punct::RParen, "to close modparam(…)")?;
        cfg.modparams.push(ModParam {
            module,
            param,
            value,
            span: kw.span,
        });
        Ok(())
    }

    fn flags(&mut self, cfg: &mut Config, avp: bool) -> PResult<()> {
        let kw = self.bump();
        loop {
            let tok = self.peek();
            let name = match &tok.tok {
                Tok::Ident(n) => n.clone(),
                Tok::Str { value, .. } => value.clone(),
                _ => return self.expected(&format!("a flag name after '{}'", kw.text)),
            };
            self.bump();
            let mut bit = None;
            if !avp && self.eat(Punct::Colon) {
                let t = self.peek();
                match t.tok {
                    Tok::Int(n) if (0..64).contains(&n) => {
                        self.bump();
                        bit = u32::try_from(n).ok();
                    }
                    _ => return self.expected("a flag number (0-63) after ':'"),
                }
            }
            let decl = FlagDecl {
                name,
                bit,
                span: tok.span,
            };
            if avp {
                cfg.avpflags.push(decl);
            } else {
                cfg.flags.push(decl);
            }
            if !self.eat(Punct::Comma) {
                return Ok(());
            }
        }
    }

    fn global(&mut self, cfg: &mut Config) -> PResult<()> {
        let first = self.bump();
        let mut name = first.ident().unwrap_or_default().to_string();
        if self.at(Punct::LBrack)
            && matches!(self.peek_n(1).tok, Tok::Int(_))
            && self.peek_n(2).is(Punct::RBrack)
        {
            // group[instance].var
            let Tok::Int(n) = self.peek_n(1).tok else {
                return Err(Fail);
            };
            name.push_str(&format!("[{n}]"));
            self.pos += 3;
            if !self.at(Punct::Dot) {
                return self.expected(&format!("'.' after '{name}'"));
            }
        }
        if self.eat(Punct::Dot) {
            match self.peek().ident() {
                Some(var) => {
                    name.push('.');
                    name.push_str(var);
                    self.bump();
                }
                None => return self.expected(&format!("a parameter name after '{name}.'")),
            }
        }
        if self.at(Punct::LParen) {
            return self.fail_at(
                first,
                format!("'{name}(…)' at top level: function calls belong inside route blocks"),
            );
        }
        if !self.eat(Punct::Assign) {
            return self.expected(&format!("'=' after the parameter name '{name}'"));
        }
        let value = if name == "listen" || name == "alias" {
            Value::Sockets(self.socket_list()?)
        } else {
            self.global_value(&name)?
        };
        let mut description = None;
        if matches!(self.peek().ident(), Some("desc" | "descr" | "description")) {
            self.bump();
            description = Some(self.string("the description")?.0);
        }
        cfg.globals.push(GlobalParam {
            name,
            value,
            description,
            span: first.span,
        });
        Ok(())
    }

    fn global_value(&mut self, name: &str) -> PResult<Value> {
        let tok = self.peek();
        Ok(match &tok.tok {
            Tok::Int(n) => {
                self.bump();
                Value::Int(*n)
            }
            Tok::Punct(Punct::Minus) if matches!(self.peek_n(1).tok, Tok::Int(_)) => {
                self.bump();
                let Tok::Int(n) = self.bump().tok else {
                    return Err(Fail);
                };
                Value::Int(-n)
            }
            Tok::Str { value, .. } => {
                self.bump();
                Value::Str(value.clone())
            }
            Tok::Ident(w) if bool_word(w).is_some() => {
                self.bump();
                Value::Bool(bool_word(w).unwrap_or(false))
            }
            Tok::Ident(_) | Tok::NumId(_) | Tok::Ipv4(_) | Tok::Ipv6(_) => {
                Value::Word(self.glue_word(true).0)
            }
            Tok::Punct(Punct::LBrack) if matches!(self.peek_n(1).tok, Tok::Ipv6(_)) => {
                Value::Word(self.glue_word(true).0)
            }
            _ => return self.expected(&format!("a value for '{name}'")),
        })
    }

    // ---- listen / alias -------------------------------------------------

    fn socket_list(&mut self) -> PResult<Vec<Socket>> {
        let mut list = vec![self.socket()?];
        loop {
            let line = self.prev().map_or(0, |t| t.span.line);
            let tok = self.peek();
            if tok.span.line != line || tok.tok == Tok::Eof {
                return Ok(list);
            }
            match tok.ident() {
                Some("advertise" | "ADVERTISE") => {
                    self.bump();
                    let (host, _) = self.host()?;
                    let port = if self.eat(Punct::Colon) {
                        Some(self.port()?)
                    } else {
                        None
                    };
                    if let Some(last) = list.last_mut() {
                        last.advertise = Some(Advertise { host, port });
                    }
                }
                Some("name") if matches!(self.peek_n(1).tok, Tok::Str { .. }) => {
                    self.bump();
                    let (name, _) = self.string("the socket name")?;
                    if let Some(last) = list.last_mut() {
                        last.name = Some(name);
                    }
                }
                Some("virtual") if !self.peek_n(1).is(Punct::Colon) => {
                    self.bump();
                    if let Some(last) = list.last_mut() {
                        last.virtual_ip = true;
                    }
                }
                Some(_)
                    if self.peek_n(1).is(Punct::Assign)
                        || self.peek_n(1).is(Punct::Dot) && !self.glued(1) =>
                {
                    return Ok(list);
                }
                _ if self.socket_start() => list.push(self.socket()?),
                _ => return Ok(list),
            }
        }
    }

    fn socket_start(&self) -> bool {
        matches!(
            self.peek().tok,
            Tok::Ident(_)
                | Tok::NumId(_)
                | Tok::Ipv4(_)
                | Tok::Ipv6(_)
                | Tok::Str { .. }
                | Tok::Punct(Punct::LBrack | Punct::LParen | Punct::Star)
        )
    }

    fn socket(&mut self) -> PResult<Socket> {
        let span = self.peek().span;
        let mut proto = None;
        let is_proto = match &self.peek().tok {
            Tok::Ident(p) => matches!(
                p.to_ascii_lowercase().as_str(),
                "udp" | "tcp" | "tls" | "sctp" | "ws" | "wss"
            ),
            Tok::Punct(Punct::Star) => true,
            _ => false,
        };
        if is_proto && self.peek_n(1).is(Punct::Colon) {
            let p = self.bump();
            self.bump();
            if let Some(name) = p.ident() {
                proto = Some(name.to_ascii_lowercase());
            }
        }
        let mut hosts = Vec::new();
        if self.eat(Punct::LParen) {
            loop {
                hosts.push(self.host()?.0);
                if !self.eat(Punct::Comma) {
                    break;
                }
            }
            self.expect(Punct::RParen, "to close the address list")?;
        } else {
            hosts.push(self.host()?.0);
        }
        let port = if self.at(Punct::Colon) && self.glued(0) {
            self.bump();
            Some(self.port()?)
        } else {
            None
        };
        Ok(Socket {
            proto,
            hosts,
            port,
            advertise: None,
            name: None,
            virtual_ip: false,
            span,
        })
    }

    fn host(&mut self) -> PResult<(String, Span)> {
        let tok = self.peek();
        match &tok.tok {
            Tok::Str { value, .. } => {
                self.bump();
                Ok((value.clone(), tok.span))
            }
            Tok::Punct(Punct::LBrack) => {
                self.bump();
                let inner = self.peek();
                let Tok::Ipv6(addr) = inner.tok else {
                    return self.expected("an IPv6 address after '['");
                };
                self.bump();
                self.expect(Punct::RBrack, "after the IPv6 address")?;
                Ok((addr.to_string(), tok.span))
            }
            Tok::Ipv6(addr) => {
                self.bump();
                Ok((addr.to_string(), tok.span))
            }
            Tok::Ident(_) | Tok::NumId(_) | Tok::Ipv4(_) | Tok::Int(_) => {
                let (word, span) = self.glue_word(false);
                Ok((word, span))
            }
            _ => self.expected("an address, host or interface name"),
        }
    }

    fn port(&mut self) -> PResult<u16> {
        let tok = self.peek();
        match tok.tok {
            Tok::Int(n) => match u16::try_from(n) {
                Ok(p) => {
                    self.bump();
                    Ok(p)
                }
                Err(_) => self.fail_at(tok, format!("port {n} is out of range (0-65535)")),
            },
            Tok::Punct(Punct::Star) => {
                self.bump();
                Ok(0)
            }
            _ => self.expected("a port number"),
        }
    }
}

/// `yes|true|on|enable` and `no|false|off|disable`.
pub(crate) fn bool_word(w: &str) -> Option<bool> {
    match w {
        "yes" | "true" | "on" | "enable" => Some(true),
        "no" | "false" | "off" | "disable" => Some(false),
        _ => None,
    }
}
