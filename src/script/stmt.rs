//! Route blocks and statements (the rest of the parser is in `parser.rs`).
//!
//! * route names are an identifier, a number or a string; `event_route`
//!   names are `module:event[-name…]`; a name may be defined only once per
//!   kind, while a second unnamed block of a kind (`request_route`,
//!   `reply_route`…) is appended to the first, as Kamailio does;
//!   `route[0]` is the request route and `onreply_route[0]` the core reply
//!   route;
//! * statements: `if`/`else`, `switch` with `case`/`case /re`/`default`,
//!   `while`, `break`, `return`/`exit`/`drop` with an optional value,
//!   `route(NAME)`, `$pv = value`, function calls ending with `;`; blocks,
//!   `if`, `switch` and `while` need no `;`; the condition of `if`, `while`
//!   and `switch` is any expression (parentheses are the usual first token);
//! * a function needs parentheses except for the core commands that Kamailio
//!   accepts bare (`force_rport;`, `set_reply_no_connect;` …);
//! * a block still open when a top-level item starts (`route[…]`,
//!   `modparam`…) is reported there, with a note at its `{`.

use super::ast::*;
use super::diag::{Diagnostic, Span};
use super::lexer::{Punct, Tok};
use super::parser::{Fail, PResult, Parser, BARE_COMMANDS, MAX_DIAGS};

impl<'t> Parser<'t> {
    // ---- route blocks ----------------------------------------------------

    pub(crate) fn route_block(&mut self, cfg: &mut Config) -> PResult<()> {
        let kw = self.bump();
        let keyword = kw.ident().unwrap_or_default();
        let mut name = None;
        if self.at(Punct::LBrack) {
            let open = self.bump();
            name = Some(if keyword == "event_route" {
                self.event_name()?
            } else {
                self.route_name()?
            });
            if !self.at(Punct::RBrack) {
                let _ = open;
                return self.expected(&format!("']' after the {keyword} name"));
            }
            self.bump();
        }
        let kind = match (keyword, name.as_deref()) {
            ("route", None | Some("0")) | ("request_route", None) => RouteKind::Request,
            ("route", Some(_)) => RouteKind::Named,
            ("failure_route", _) => RouteKind::Failure,
            ("branch_route", _) => RouteKind::Branch,
            ("onreply_route", None | Some("0")) | ("reply_route", None) => RouteKind::Reply,
            ("onreply_route", Some(_)) => RouteKind::TmReply,
            ("onsend_route", _) => RouteKind::OnSend,
            ("event_route", Some(_)) => RouteKind::Event,
            ("event_route", None) => return self.expected("'[module:event]' after event_route"),
            (k, Some(_)) => return self.fail_at(kw, format!("{k} takes no name")),
            _ => return self.fail_at(kw, format!("unknown route block '{keyword}'")),
        };
        if matches!(kind, RouteKind::Reply | RouteKind::Request) {
            name = None;
        }
        if !self.at(Punct::LBrace) {
            return self.expected(&format!("'{{' to start the {keyword} block"));
        }
        let body = self.block()?;
        // Kamailio appends a second unnamed block of a kind to the first one;
        // only a named block may not be defined twice.
        if name.is_none() {
            if let Some(first) = cfg
                .routes
                .iter_mut()
                .find(|r| r.kind == kind && r.name.is_none())
            {
                first.body.stmts.extend(body.stmts);
                return Ok(());
            }
        }
        if let Some(first) = cfg.route(kind, name.as_deref()) {
            let shown = match &name {
                Some(n) => format!("{keyword}[{n}]"),
                None => keyword.to_string(),
            };
            let first = first.span;
            self.diags.push(
                Diagnostic::new(kw.span, format!("duplicate route block {shown}"))
                    .with_note(first, "first defined here"),
            );
            return Ok(());
        }
        cfg.routes.push(RouteBlock {
            kind,
            name,
            body,
            span: kw.span,
        });
        Ok(())
    }

    /// `route[NAME]`: an identifier, number or string.
    fn route_name(&mut self) -> PResult<String> {
        let tok = self.peek();
        let name = match &tok.tok {
            Tok::Ident(s) | Tok::NumId(s) => s.clone(),
            Tok::Int(n) => n.to_string(),
            Tok::Str { value, .. } => value.clone(),
            _ => return self.expected("a route name (identifier, number or quoted string)"),
        };
        self.bump();
        if !self.at(Punct::RBrack) {
            return self
                .expected("']' after the route name (names are one identifier, number or string)");
        }
        Ok(name)
    }

    /// `event_route[module:event-name]`.
    fn event_name(&mut self) -> PResult<String> {
        let start = self.peek();
        let mut name = String::new();
        let mut i = 0;
        while !self.at(Punct::RBrack) {
            let tok = self.peek();
            let ok = matches!(
                tok.tok,
                Tok::Ident(_)
                    | Tok::Int(_)
                    | Tok::NumId(_)
                    | Tok::Punct(Punct::Colon | Punct::Minus | Punct::Dot)
            );
            if !ok || (i > 0 && tok.space_before) {
                return self.fail_at(
                    tok,
                    format!("bad event_route name: unexpected {}", tok.describe()),
                );
            }
            if let Tok::Str { value, .. } = &tok.tok {
                name.push_str(value);
            } else {
                name.push_str(&tok.text);
            }
            self.bump();
            i += 1;
        }
        if !valid_event_name(&name) {
            return self.fail_at(
                start,
                format!("bad event_route name '{name}': expected 'module:event'"),
            );
        }
        Ok(name)
    }

    /// `{ statements }`; an unclosed block is reported at its `{`.
    fn block(&mut self) -> PResult<Block> {
        let open = self.bump();
        let mut stmts = Vec::new();
        loop {
            if self.diags.len() >= MAX_DIAGS {
                return Err(Fail);
            }
            if self.at(Punct::RBrace) {
                self.bump();
                return Ok(Block {
                    stmts,
                    span: open.span,
                });
            }
            if self.peek().tok == Tok::Eof {
                return self.fail(open.span, "missing '}': this block is not closed");
            }
            if self.at_top_level_start() {
                let tok = self.peek();
                let d = Diagnostic::new(
                    tok.span,
                    format!(
                        "missing '}}' before {}: the block opened earlier is not closed",
                        tok.describe()
                    ),
                )
                .with_note(open.span, "block opened here");
                self.diags.push(d);
                return Err(Fail);
            }
            match self.stmt() {
                Ok(s) => stmts.push(s),
                Err(Fail) => self.recover_stmt(),
            }
        }
    }

    /// Skips to the end of the broken statement: past a `;`, or up to a
    /// `}` or top-level keyword that closes the enclosing block.
    fn recover_stmt(&mut self) {
        let mut depth = 0usize;
        loop {
            let tok = self.peek();
            match tok.tok {
                Tok::Eof => return,
                Tok::Punct(Punct::Semi) if depth == 0 => {
                    self.bump();
                    return;
                }
                Tok::Punct(Punct::LBrace) => depth += 1,
                Tok::Punct(Punct::RBrace) => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ if depth == 0 && self.at_top_level_start() => return,
                _ => {}
            }
            self.bump();
        }
    }

    // ---- statements -------------------------------------------------------

    fn stmt(&mut self) -> PResult<Stmt> {
        self.nested(Self::stmt_inner)
    }

    fn stmt_inner(&mut self) -> PResult<Stmt> {
        let tok = self.peek();
        let span = tok.span;
        let kind = match &tok.tok {
            Tok::Punct(Punct::Semi) => {
                self.bump();
                StmtKind::Empty
            }
            Tok::Punct(Punct::LBrace) => StmtKind::Block(self.block()?),
            Tok::Pv(_) => self.assignment()?,
            Tok::Ident(word) => match word.as_str() {
                "if" => self.if_stmt()?,
                "while" => {
                    self.bump();
                    let cond = self.expr()?;
                    let body = Box::new(self.body_stmt("while")?);
                    StmtKind::While { cond, body }
                }
                "switch" => self.switch_stmt()?,
                "break" => {
                    self.bump();
                    self.expect_semi("'break'")?;
                    StmtKind::Break
                }
                "return" | "exit" | "drop" => {
                    self.bump();
                    let value = self.optional_value()?;
                    self.expect_semi(&format!("'{word}'"))?;
                    match word.as_str() {
                        "return" => StmtKind::Return(value),
                        "exit" => StmtKind::Exit(value),
                        _ => StmtKind::Drop(value),
                    }
                }
                "route" if self.peek_n(1).is(Punct::LParen) => {
                    let target = self.route_call()?;
                    self.expect_semi("'route(…)'")?;
                    StmtKind::Route(target)
                }
                "else" => return self.fail_at(tok, "'else' without a matching 'if'"),
                "case" | "default" => {
                    return self.fail_at(tok, format!("'{word}' outside of a switch"))
                }
                _ if self.peek_n(1).is(Punct::LParen) => {
                    let call = self.call()?;
                    self.expect_semi(&format!("the call to '{}'", call.name))?;
                    StmtKind::Call(call)
                }
                w if BARE_COMMANDS.contains(&w) => {
                    self.bump();
                    self.expect_semi(&format!("'{w}'"))?;
                    StmtKind::Call(Call {
                        name: w.to_string(),
                        args: Vec::new(),
                        parens: false,
                        span,
                    })
                }
                w if self.peek_n(1).is(Punct::Assign) => {
                    return self.fail_at(
                        tok,
                        format!(
                            "cannot assign to '{w}': only pseudo-variables ($…) can be assigned"
                        ),
                    )
                }
                w => {
                    self.bump();
                    return self.expected(&format!("'(' after the function name '{w}'"));
                }
            },
            _ => return self.expected("a statement"),
        };
        Ok(Stmt { kind, span })
    }

    /// The statement after `if (…)`, `else` or `while (…)`.
    fn body_stmt(&mut self, after: &str) -> PResult<Stmt> {
        if self.peek().tok == Tok::Eof || self.at(Punct::RBrace) {
            return self.expected(&format!("a statement after {after}"));
        }
        self.stmt()
    }

    /// `if … [else if …]* [else …]`; an `else if` chain is read in a loop so
    /// that long chains do not count as nesting.
    fn if_stmt(&mut self) -> PResult<StmtKind> {
        let mut arms: Vec<(Span, Expr, Stmt)> = Vec::new();
        let mut otherwise = None;
        loop {
            let span = self.bump().span;
            if self.at(Punct::LBrace) {
                return self.expected("a condition after 'if'");
            }
            let cond = self.expr()?;
            let then = self.body_stmt("the 'if' condition")?;
            arms.push((span, cond, then));
            if !self.at_ident("else") {
                break;
            }
            self.bump();
            if !self.at_ident("if") {
                otherwise = Some(Box::new(self.body_stmt("'else'")?));
                break;
            }
        }
        // Fold from the last arm: each `else if` is the `otherwise` of the one before.
        let mut folded: Option<(Span, StmtKind)> = None;
        while let Some((span, cond, then)) = arms.pop() {
            let otherwise = match folded.take() {
                None => otherwise.take(),
                Some((inner_span, inner)) => Some(Box::new(Stmt {
                    kind: inner,
                    span: inner_span,
                })),
            };
            folded = Some((
                span,
                StmtKind::If {
                    cond,
                    then: Box::new(then),
                    otherwise,
                },
            ));
        }
        folded.map(|(_, kind)| kind).ok_or(Fail)
    }

    fn switch_stmt(&mut self) -> PResult<StmtKind> {
        self.bump();
        let subject = self.expr()?;
        self.expect(Punct::LBrace, "to open the switch body")?;
        let mut cases: Vec<Case> = Vec::new();
        let mut default_at: Option<Span> = None;
        loop {
            let tok = self.peek();
            match tok.ident() {
                _ if tok.is(Punct::RBrace) => {
                    self.bump();
                    return Ok(StmtKind::Switch { subject, cases });
                }
                Some("case") => {
                    self.bump();
                    let regex = self.eat(Punct::Slash);
                    self.in_case_label = true;
                    let value = self.expr();
                    self.in_case_label = false;
                    let value = value?;
                    self.expect(Punct::Colon, "after the case value")?;
                    let body = self.case_body()?;
                    cases.push(Case {
                        label: Some(CaseLabel { value, regex }),
                        body,
                        span: tok.span,
                    });
                }
                Some("default") => {
                    self.bump();
                    self.expect(Punct::Colon, "after 'default'")?;
                    if let Some(first) = default_at {
                        self.diags.push(
                            Diagnostic::new(tok.span, "second 'default' in the same switch")
                                .with_note(first, "first 'default' here"),
                        );
                    }
                    default_at = Some(tok.span);
                    let body = self.case_body()?;
                    cases.push(Case {
                        label: None,
                        body,
                        span: tok.span,
                    });
                }
                _ => return self.expected("'case', 'default' or '}' in the switch body"),
            }
        }
    }

    fn case_body(&mut self) -> PResult<Vec<Stmt>> {
        let mut body = Vec::new();
        loop {
            let tok = self.peek();
            if tok.is(Punct::RBrace) || matches!(tok.ident(), Some("case" | "default")) {
                return Ok(body);
            }
            if tok.tok == Tok::Eof || self.at_top_level_start() {
                return self.expected("'}' to close the switch");
            }
            match self.stmt() {
                Ok(s) => body.push(s),
                Err(Fail) => {
                    self.recover_stmt();
                    if self.diags.len() >= MAX_DIAGS {
                        return Err(Fail);
                    }
                }
            }
        }
    }

    /// The optional value of `return`, `exit`, `drop`.
    fn optional_value(&mut self) -> PResult<Option<Expr>> {
        if self.at(Punct::Semi) || self.at(Punct::RBrace) || self.peek().tok == Tok::Eof {
            return Ok(None);
        }
        if self.at(Punct::LParen) && self.peek_n(1).is(Punct::RParen) {
            self.bump();
            self.bump();
            return Ok(None);
        }
        Ok(Some(self.expr()?))
    }

    fn assignment(&mut self) -> PResult<StmtKind> {
        let tok = self.bump();
        let target = self.pv(tok)?;
        let op = match self.peek().tok {
            Tok::Punct(Punct::Assign) => AssignOp::Assign,
            Tok::Punct(Punct::ColonAssign) => AssignOp::ColonAssign,
            Tok::Punct(Punct::PlusAssign) => AssignOp::AddAssign,
            Tok::Punct(Punct::EqEq) => {
                let t = self.peek();
                return self.fail_at(t, "'==' compares; use '=' to assign");
            }
            _ => return self.expected(&format!("'=' after {}", target.raw)),
        };
        if !target.transforms.is_empty() {
            return self.fail_at(
                tok,
                format!("cannot assign to '{}': it has transformations", target.raw),
            );
        }
        self.bump();
        let value = self.expr()?;
        self.expect_semi("the assignment")?;
        Ok(StmtKind::Assign { target, op, value })
    }
}

/// `[a-zA-Z][0-9a-zA-Z-]*(:[a-zA-Z][0-9a-zA-Z_-]*)+` (Kamailio's rule),
/// with `.` also allowed after the first part.
fn valid_event_name(name: &str) -> bool {
    let mut parts = name.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    let part_ok = |p: &str, extra: &[char]| {
        let mut chars = p.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
    };
    let mut rest = 0;
    for p in parts {
        if !part_ok(p, &['_', '.']) {
            return false;
        }
        rest += 1;
    }
    rest > 0 && part_ok(first, &[])
}
