//! Expressions, with Kamailio's operator precedence.
//!
//! From loosest to tightest (all binary operators associate left; `cfg.y`
//! puts the bitwise operators *below* the comparisons, unlike C):
//!
//! | level | operators |
//! |---|---|
//! | 0 | `\|\|` `or` |
//! | 1 | `&&` `and` |
//! | 2 | `\|` |
//! | 3 | `&` |
//! | 4 | `^` |
//! | 5 | `<<` |
//! | 6 | `>>` |
//! | 7 | `==` `!=` `=~` `!~` `eq` `ne` `ieq` `ine` |
//! | 8 | `<` `<=` `>` `>=` |
//! | 9 | `+` `-` |
//! | 10 | `*` `/` `%` `mod` |
//! | prefix | `!` `not` `-` `~` `defined` `(int)` `(str)` |
//!
//! Operands: numbers, strings, pseudo-variables, `$null`, selects, message
//! keywords (`method`, `uri`, `src_ip`, `msg:len` …), `myself`, IP addresses
//! and networks (`10.0.0.0/8`, `fe80::/10`), `strlen(…)`, `strempty(…)`,
//! function calls and `route(…)`.
//!
//! A message keyword and the comparison after it form one operand (Kamailio
//! has no keyword operand on its own), so `!uri == myself` is
//! `!(uri == myself)` and `src_ip == 10.0.0.0/8 && …` groups as expected.
//!
//! Bare words are accepted where Kamailio's grammar has them: `INET`,
//! `INET6` and protocol names anywhere; a name after `method ==` or a host
//! name after an address keyword (`src_ip == gw.example.com`); hosts, sockets and flag names as arguments of the
//! core commands that take them (`forward(host, 5060)`,
//! `force_send_socket(udp:1.2.3.4:5060)`, `setflag(MYFLAG)`). Anywhere else
//! an unknown identifier is an error, which catches misspelt `#!define`s.

use std::net::IpAddr;

use super::ast::*;
use super::lexer::{Punct, Tok};
use super::parser::{bool_word, PResult, Parser};

/// Core commands whose arguments may be bare host, socket or flag names.
const WORD_ARG_COMMANDS: &[&str] = &[
    "forward",
    "forward_udp",
    "forward_tcp",
    "forward_tls",
    "forward_sctp",
    "send",
    "send_tcp",
    "setflag",
    "resetflag",
    "isflagset",
    "setavpflag",
    "resetavpflag",
    "isavpflagset",
    "force_send_socket",
    "set_advertised_address",
    "set_advertised_port",
    "udp_mtu_try_proto",
];

/// Level of `==` and the other equality operators.
const COMPARISON_LEVEL: u8 = 7;

/// Words that are always values.
fn constant_word(w: &str) -> bool {
    matches!(
        w,
        "INET"
            | "inet"
            | "INET6"
            | "inet6"
            | "udp"
            | "UDP"
            | "tcp"
            | "TCP"
            | "tls"
            | "TLS"
            | "sctp"
            | "SCTP"
            | "ws"
            | "WS"
            | "wss"
            | "WSS"
    )
}

impl<'t> Parser<'t> {
    /// A full expression.
    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.nested(|p| p.binary(0))
    }

    fn binop(&self) -> Option<(BinaryOp, u8)> {
        use BinaryOp::*;
        let tok = self.peek();
        Some(match &tok.tok {
            Tok::Punct(p) => match p {
                Punct::OrOr => (Or, 0),
                Punct::AndAnd => (And, 1),
                Punct::Pipe => (BitOr, 2),
                Punct::Amp => (BitAnd, 3),
                Punct::Caret => (BitXor, 4),
                Punct::Shl => (Shl, 5),
                Punct::Shr => (Shr, 6),
                Punct::EqEq => (Eq, COMPARISON_LEVEL),
                Punct::NotEq => (Ne, COMPARISON_LEVEL),
                Punct::Match => (Match, COMPARISON_LEVEL),
                Punct::NotMatch => (NotMatch, COMPARISON_LEVEL),
                Punct::Lt => (Lt, 8),
                Punct::Le => (Le, 8),
                Punct::Gt => (Gt, 8),
                Punct::Ge => (Ge, 8),
                Punct::Plus => (Add, 9),
                Punct::Minus => (Sub, 9),
                Punct::Star => (Mul, 10),
                Punct::Slash => (Div, 10),
                Punct::Percent => (Mod, 10),
                _ => return None,
            },
            Tok::Ident(w) => match w.as_str() {
                "or" => (Or, 0),
                "and" => (And, 1),
                "eq" => (StrEq, COMPARISON_LEVEL),
                "ne" => (StrNe, COMPARISON_LEVEL),
                "ieq" => (IntEq, COMPARISON_LEVEL),
                "ine" => (IntNe, COMPARISON_LEVEL),
                "mod" => (Mod, 10),
                _ => return None,
            },
            _ => return None,
        })
    }

    fn binary(&mut self, min_level: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        while let Some((op, level)) = self.binop() {
            if level < min_level {
                break;
            }
            let op_tok = self.bump();
            if self.peek().tok == Tok::Eof || self.at(Punct::RParen) || self.at(Punct::Semi) {
                return self.expected(&format!("an operand after '{}'", op_tok.text));
            }
            let rhs = self.binary(level + 1)?;
            let span = lhs.span;
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let tok = self.peek();
        let span = tok.span;
        let op = match &tok.tok {
            Tok::Punct(Punct::Bang) => Some(UnaryOp::Not),
            Tok::Ident(w) if w == "not" => Some(UnaryOp::Not),
            Tok::Punct(Punct::Minus) => Some(UnaryOp::Neg),
            Tok::Punct(Punct::Tilde) => Some(UnaryOp::BitNot),
            Tok::Ident(w) if w == "defined" => Some(UnaryOp::Defined),
            Tok::Punct(Punct::LParen) if self.peek_n(2).is(Punct::RParen) => {
                match self.peek_n(1).ident() {
                    Some("int") => Some(UnaryOp::IntCast),
                    Some("str") => Some(UnaryOp::StrCast),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(op) = op else { return self.primary() };
        self.bump();
        if matches!(op, UnaryOp::IntCast | UnaryOp::StrCast) {
            self.bump();
            self.bump();
        }
        let operand = self.nested(Self::unary)?;
        if op == UnaryOp::Neg {
            if let ExprKind::Int(n) = operand.kind {
                return Ok(Expr {
                    kind: ExprKind::Int(n.wrapping_neg()),
                    span,
                });
            }
        }
        Ok(Expr {
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
        })
    }

    fn primary(&mut self) -> PResult<Expr> {
        let tok = self.peek();
        let span = tok.span;
        let kind = match &tok.tok {
            Tok::Int(n) => {
                self.bump();
                ExprKind::Int(*n)
            }
            Tok::Str { value, .. } => {
                self.bump();
                ExprKind::Str(value.clone())
            }
            Tok::Pv(_) => {
                self.bump();
                let pv = self.pv(tok)?;
                if pv.name == "null" && pv.inner.is_none() && pv.transforms.is_empty() {
                    ExprKind::Null
                } else {
                    ExprKind::Pv(pv)
                }
            }
            Tok::Select(s) => {
                self.bump();
                ExprKind::Select(s.clone())
            }
            Tok::Ipv4(_) | Tok::Ipv6(_) => self.address()?,
            Tok::Punct(Punct::LParen) => {
                self.bump();
                let saved = (self.in_case_label, self.words_ok);
                self.in_case_label = false;
                let inner = self.expr();
                (self.in_case_label, self.words_ok) = saved;
                let inner = inner?;
                self.expect(Punct::RParen, "to close '('")?;
                return Ok(Expr { span, ..inner });
            }
            Tok::Ident(w) => return self.ident_operand(w),
            Tok::NumId(w) if self.words_ok => ExprKind::Word(self.glue_word(!self.in_case_label).0),
            Tok::NumId(w) => {
                return self.fail_at(
                    tok,
                    format!("unexpected word '{w}' (quote it to use it as a string)"),
                )
            }
            Tok::Punct(Punct::LBrack)
                if self.words_ok && matches!(self.peek_n(1).tok, Tok::Ipv6(_)) =>
            {
                ExprKind::Word(self.glue_word(true).0)
            }
            _ => return self.expected("an expression"),
        };
        Ok(Expr { kind, span })
    }

    /// After a message keyword: `keyword op value` is one operand, as in
    /// Kamailio's grammar, so `!uri == myself` negates the comparison.
    fn keyword_element(&mut self, lhs: Expr) -> PResult<Expr> {
        let Some((op, _)) = self.binop().filter(|(op, _)| op.is_comparison()) else {
            return Ok(lhs);
        };
        let op_tok = self.bump();
        if self.peek().tok == Tok::Eof || self.at(Punct::RParen) || self.at(Punct::Semi) {
            return self.expected(&format!("an operand after '{}'", op_tok.text));
        }
        let saved = self.words_ok;
        self.words_ok = match lhs.kind {
            ExprKind::Keyword(k) => k.takes_word_operand(),
            _ => saved,
        };
        // The right side binds like the right operand of `==`.
        let rhs = self.nested(|p| p.binary(COMPARISON_LEVEL + 1));
        self.words_ok = saved;
        let rhs = rhs?;
        let span = lhs.span;
        Ok(Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        })
    }

    /// An operand that starts with an identifier.
    fn ident_operand(&mut self, w: &str) -> PResult<Expr> {
        let tok = self.peek();
        let span = tok.span;
        let call_follows = self.peek_n(1).is(Punct::LParen);
        let colon_glued = self.peek_n(1).is(Punct::Colon) && self.glued(1) && self.glued(2);
        let kind = match w {
            _ if bool_word(w).is_some() && !call_follows => {
                self.bump();
                ExprKind::Int(i64::from(bool_word(w).unwrap_or(false)))
            }
            "myself" => {
                self.bump();
                ExprKind::Myself
            }
            "msg" if colon_glued && self.peek_n(2).ident() == Some("len") => {
                self.pos_advance(3);
                ExprKind::Keyword(CondKeyword::MsgLen)
            }
            "uri" if colon_glued && matches!(self.peek_n(2).ident(), Some("host" | "port")) => {
                let field = self.peek_n(2).ident().unwrap_or_default();
                let word = format!("uri:{field}");
                self.pos_advance(3);
                ExprKind::Word(word)
            }
            "strlen" | "strempty" if call_follows => {
                self.bump();
                self.bump();
                let operand = self.expr()?;
                self.expect(Punct::RParen, &format!("to close {w}("))?;
                let op = if w == "strlen" { UnaryOp::StrLen } else { UnaryOp::StrEmpty };
                ExprKind::Unary { op, operand: Box::new(operand) }
            }
            "route" if call_follows => ExprKind::Route(self.route_call()?),
            _ if call_follows => ExprKind::Call(self.call()?),
            _ if CondKeyword::from_ident(w).is_some() => {
                self.bump();
                ExprKind::Keyword(CondKeyword::from_ident(w).unwrap_or(CondKeyword::Method))
            }
            _ if constant_word(w) && !(colon_glued && self.words_ok) => {
                self.bump();
                ExprKind::Word(w.to_string())
            }
            _ if self.words_ok => ExprKind::Word(self.glue_word(!self.in_case_label).0),
            _ => {
                return self.fail_at(
                    tok,
                    format!(
                        "unknown identifier '{w}' (an undefined #!define? quote it to use it as a string)"
                    ),
                )
            }
        };
        let expr = Expr { kind, span };
        if matches!(expr.kind, ExprKind::Keyword(_) | ExprKind::Myself) {
            return self.keyword_element(expr);
        }
        Ok(expr)
    }

    fn pos_advance(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    /// An IP address, a network `addr/bits` or `addr/mask`, or (where words
    /// are allowed) `addr:port`.
    fn address(&mut self) -> PResult<ExprKind> {
        let tok = self.peek();
        let addr = match tok.tok {
            Tok::Ipv4(a) => IpAddr::V4(a),
            Tok::Ipv6(a) => IpAddr::V6(a),
            _ => return self.expected("an IP address"),
        };
        if self.peek_n(1).is(Punct::Colon) && self.glued(1) && self.glued(2) && !self.in_case_label
        {
            return Ok(ExprKind::Word(self.glue_word(true).0));
        }
        self.bump();
        if !(self.at(Punct::Slash) && self.glued(0) && self.glued(1)) {
            return Ok(ExprKind::Ip(addr));
        }
        self.bump();
        let mask_tok = self.bump();
        let max_bits = if addr.is_ipv4() { 32 } else { 128 };
        let mask = match mask_tok.tok {
            Tok::Int(n) if (0..=max_bits).contains(&n) => {
                NetMask::Bits(u8::try_from(n).unwrap_or(0))
            }
            Tok::Int(n) => {
                return self.fail_at(
                    mask_tok,
                    format!("bad network mask /{n}: at most {max_bits} bits"),
                )
            }
            Tok::Ipv4(m) if addr.is_ipv4() => NetMask::Addr(IpAddr::V4(m)),
            Tok::Ipv6(m) if addr.is_ipv6() => NetMask::Addr(IpAddr::V6(m)),
            _ => {
                return self.fail_at(
                    mask_tok,
                    "expected a network mask (bits or address) after '/'",
                )
            }
        };
        Ok(ExprKind::Net { addr, mask })
    }

    /// Joins tokens written with no space between them into one word: host
    /// names (`gw-1.example.com`), interface names, and with `colons`,
    /// sockets (`udp:10.0.0.1:5060`, `tcp:[::1]:5061`) and `uri:host`.
    pub(crate) fn glue_word(&mut self, colons: bool) -> (String, crate::script::diag::Span) {
        let first = self.bump();
        let mut word = first.text.clone();
        if first.is(Punct::LBrack) {
            // `[v6]`
            let v6 = self.bump();
            word.push_str(&v6.text);
            if self.at(Punct::RBrack) {
                word.push_str(&self.bump().text);
            }
        }
        loop {
            let joiner = self.peek();
            let is_joiner = joiner.is(Punct::Dot)
                || joiner.is(Punct::Minus)
                || (colons && joiner.is(Punct::Colon));
            if !is_joiner || !self.glued(0) || !self.glued(1) {
                break;
            }
            let next = self.peek_n(1);
            match &next.tok {
                Tok::Ident(_) | Tok::NumId(_) | Tok::Int(_) | Tok::Ipv4(_) | Tok::Ipv6(_) => {
                    word.push_str(&joiner.text);
                    word.push_str(&next.text);
                    self.pos_advance(2);
                }
                Tok::Punct(Punct::LBrack)
                    if joiner.is(Punct::Colon)
                        && matches!(self.peek_n(2).tok, Tok::Ipv6(_))
                        && self.peek_n(3).is(Punct::RBrack) =>
                {
                    word.push_str(&joiner.text);
                    word.push('[');
                    word.push_str(&self.peek_n(2).text);
                    word.push(']');
                    self.pos_advance(4);
                }
                _ => break,
            }
        }
        (word, first.span)
    }

    /// `name(args)`; the name is the next token and `(` follows it.
    pub(crate) fn call(&mut self) -> PResult<Call> {
        let name_tok = self.bump();
        let name = name_tok.ident().unwrap_or_default().to_string();
        let open = self.bump();
        let saved = (self.words_ok, self.in_case_label);
        self.words_ok = WORD_ARG_COMMANDS.contains(&name.as_str());
        self.in_case_label = false;
        let args = self.call_args(&name, open.span);
        (self.words_ok, self.in_case_label) = saved;
        Ok(Call {
            name,
            args: args?,
            parens: true,
            span: name_tok.span,
        })
    }

    fn call_args(&mut self, name: &str, _open: crate::script::diag::Span) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(Punct::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(Punct::RParen) {
                return Ok(args);
            }
            if !self.eat(Punct::Comma) {
                return self.expected(&format!("',' or ')' in the arguments of '{name}'"));
            }
        }
    }

    /// `route(NAME)` / `route($var(r))`; at `route`.
    pub(crate) fn route_call(&mut self) -> PResult<RouteTarget> {
        self.bump();
        self.bump();
        let tok = self.peek();
        if self.peek_n(1).is(Punct::RParen) {
            let name = match &tok.tok {
                Tok::Ident(s) | Tok::NumId(s) => Some(s.clone()),
                Tok::Int(n) => Some(n.to_string()),
                Tok::Str { value, .. } => Some(value.clone()),
                _ => None,
            };
            if let Some(name) = name {
                self.pos_advance(2);
                return Ok(RouteTarget::Name(name));
            }
        }
        if self.at(Punct::RParen) {
            return self.expected("a route name in route(…)");
        }
        let saved = self.in_case_label;
        self.in_case_label = false;
        let target = self.expr();
        self.in_case_label = saved;
        let target = target?;
        self.expect(Punct::RParen, "to close route(…)")?;
        Ok(RouteTarget::Dynamic(Box::new(target)))
    }
}
