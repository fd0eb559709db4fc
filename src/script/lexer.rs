//! Tokens of the configuration language.
//!
//! The lexer is pulled one token at a time by the preprocessor, because what
//! it must recognise depends on preprocessor state: inside a false `#!ifdef`
//! branch it looks only for the next `#!ifdef`/`#!ifndef`/`#!else`/`#!endif`
//! (Kamailio does the same, so text that would not lex, such as SQL in the
//! stock config's `ACCDB_COMMENT` block, is skipped untouched).
//!
//! Facts matched here (Kamailio 5.6):
//! * comments: `#` and `//` to end of line, `/* */` blocks which nest;
//!   `#!name` / `!!name` starts a preprocessor directive when `name` is a
//!   known directive, otherwise `#!...` is an ordinary comment;
//! * `"strings"` decode `\n \r \a \t \" \\ \xHH \ooo` and drop an escaped
//!   newline; any other backslash pair is kept as written (regexes such as
//!   `"^\+"` rely on it). `'strings'` are taken verbatim;
//! * numbers: decimal, `0x` hex, `0` octal, `…b` binary; an alphanumeric run
//!   that starts with a digit and is no number is a separate kind (`NumId`);
//! * pseudo-variables: `$name`, `$name(...)`, `$(...)` with parentheses
//!   counted (and nothing else, as in Kamailio), and `$?`;
//! * IPv4 and IPv6 addresses are single tokens.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::diag::{Diagnostic, FileId, Span};

/// Punctuation and operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punct {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBrack,
    /// `]`
    RBrack,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `:`
    Colon,
    /// `.`
    Dot,
    /// `=`
    Assign,
    /// `:=`
    ColonAssign,
    /// `+=`
    PlusAssign,
    /// `==`
    EqEq,
    /// `!=`
    NotEq,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `&`
    Amp,
    /// `|`
    Pipe,
    /// `^`
    Caret,
    /// `~`
    Tilde,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
}

impl Punct {
    /// Longest operators first, so `==` wins over `=`.
    const TABLE: &'static [(&'static str, Punct)] = &[
        (":=", Punct::ColonAssign),
        ("+=", Punct::PlusAssign),
        ("==", Punct::EqEq),
        ("!=", Punct::NotEq),
        ("=~", Punct::Match),
        ("!~", Punct::NotMatch),
        ("<=", Punct::Le),
        (">=", Punct::Ge),
        ("<<", Punct::Shl),
        (">>", Punct::Shr),
        ("&&", Punct::AndAnd),
        ("||", Punct::OrOr),
        ("(", Punct::LParen),
        (")", Punct::RParen),
        ("{", Punct::LBrace),
        ("}", Punct::RBrace),
        ("[", Punct::LBrack),
        ("]", Punct::RBrack),
        (",", Punct::Comma),
        (";", Punct::Semi),
        (":", Punct::Colon),
        (".", Punct::Dot),
        ("=", Punct::Assign),
        ("<", Punct::Lt),
        (">", Punct::Gt),
        ("!", Punct::Bang),
        ("&", Punct::Amp),
        ("|", Punct::Pipe),
        ("^", Punct::Caret),
        ("~", Punct::Tilde),
        ("+", Punct::Plus),
        ("-", Punct::Minus),
        ("*", Punct::Star),
        ("/", Punct::Slash),
        ("%", Punct::Percent),
    ];

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(s, _)| s)
    }
}

/// The preprocessor directives (`#!name` or `!!name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectiveKind {
    /// `#!define` / `#!def`
    Define,
    /// `#!trydef` / `#!trydefine`
    TryDef,
    /// `#!redefine` / `#!redef`
    ReDef,
    /// `#!ifdef`
    IfDef,
    /// `#!ifndef`
    IfNDef,
    /// `#!else`
    Else,
    /// `#!endif`
    EndIf,
    /// `#!subst`
    Subst,
    /// `#!substdef`
    SubstDef,
    /// `#!substdefs`
    SubstDefs,
    /// `#!defenv`
    DefEnv,
    /// `#!defenvs`
    DefEnvS,
    /// `#!trydefenv`
    TryDefEnv,
    /// `#!trydefenvs`
    TryDefEnvS,
    /// `#!include_file`
    IncludeFile,
    /// `#!import_file`
    ImportFile,
    /// `#!ifexp`, `#!defexp`, `#!defexps`: expression directives, not supported.
    Unsupported,
    /// `#!KAMAILIO` / `#!OPENSER`
    CompatKamailio,
    /// `#!SER`
    CompatSer,
    /// `#!MAXCOMPAT` / `#!ALL`
    CompatMax,
}

impl DirectiveKind {
    fn from_name(name: &str) -> Option<Self> {
        use DirectiveKind::*;
        Some(match name {
            "define" | "def" => Define,
            "trydef" | "trydefine" => TryDef,
            "redefine" | "redef" => ReDef,
            "ifdef" => IfDef,
            "ifndef" => IfNDef,
            "else" => Else,
            "endif" => EndIf,
            "subst" => Subst,
            "substdef" => SubstDef,
            "substdefs" => SubstDefs,
            "defenv" => DefEnv,
            "defenvs" => DefEnvS,
            "trydefenv" => TryDefEnv,
            "trydefenvs" => TryDefEnvS,
            "include_file" => IncludeFile,
            "import_file" => ImportFile,
            "ifexp" | "defexp" | "defexps" => Unsupported,
            "KAMAILIO" | "OPENSER" => CompatKamailio,
            "SER" => CompatSer,
            "MAXCOMPAT" | "ALL" => CompatMax,
            _ => return None,
        })
    }

    /// Directives whose argument may continue on the next line after a `\`.
    fn continues_lines(self) -> bool {
        use DirectiveKind::*;
        matches!(self, Define | TryDef | ReDef)
    }

    fn is_conditional(self) -> bool {
        use DirectiveKind::*;
        matches!(self, IfDef | IfNDef | Else | EndIf)
    }

    fn is_compat(self) -> bool {
        use DirectiveKind::*;
        matches!(self, CompatKamailio | CompatSer | CompatMax)
    }
}

/// A directive line: its kind, name as written and the text after the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// Which directive.
    pub kind: DirectiveKind,
    /// The name as written (`define`, `def`, …).
    pub name: String,
    /// The rest of the logical line, with escaped newlines still in it.
    pub args: String,
    /// Where `args` starts.
    pub args_span: Span,
}

/// Token kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_]*`
    Ident(String),
    /// A number.
    Int(i64),
    /// An alphanumeric run starting with a digit that is not a number (`0db8`).
    NumId(String),
    /// A quoted string, escapes decoded; `single` for `'…'` strings.
    Str {
        /// The decoded text.
        value: String,
        /// Written with single quotes.
        single: bool,
    },
    /// A pseudo-variable, raw text including the `$`.
    Pv(String),
    /// A select (`@via[1].host`), raw text after the `@`.
    Select(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (without brackets).
    Ipv6(Ipv6Addr),
    /// Punctuation or an operator.
    Punct(Punct),
    /// A preprocessor directive line.
    Directive(Directive),
    /// End of input.
    Eof,
}

/// A token with its position and the source text it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub tok: Tok,
    /// Where it was written; for a token produced by a `#!define` expansion,
    /// where the defined name was used.
    pub span: Span,
    /// The source text of the token.
    pub text: String,
    /// Whitespace or a comment separates it from the previous token.
    pub space_before: bool,
    /// A comment, a directive or the start of a `#!define` expansion comes
    /// before it: adjacent double-quoted strings are joined only without one
    /// (Kamailio joins strings that follow each other in its input stream).
    pub string_break: bool,
    /// For a token from a `#!define` body: its position in that body.
    pub origin: Option<Span>,
}

impl Token {
    /// The identifier, if this is one.
    pub fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    /// Is this the punctuation `p`?
    pub fn is(&self, p: Punct) -> bool {
        self.tok == Tok::Punct(p)
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Eof => "end of file".to_string(),
            Tok::Str { .. } => format!("string {}", short(&self.text)),
            Tok::Directive(d) => format!("directive '#!{}'", d.name),
            _ => format!("'{}'", short(&self.text)),
        }
    }
}

fn short(s: &str) -> String {
    let one_line = s.lines().next().unwrap_or("");
    let mut out: String = one_line.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Pull lexer over one source text.
pub struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    file: FileId,
    /// Recognise `#!` directives (false for `#!define` bodies).
    directives: bool,
    /// Lexing errors found so far.
    pub diags: Vec<Diagnostic>,
    done: bool,
}

/// Largest input the lexer accepts, so positions fit in `u32`.
const MAX_INPUT: usize = 64 * 1024 * 1024;

impl Lexer {
    /// A lexer over a whole file.
    pub fn new(file: FileId, text: &str) -> Self {
        Self::at(file, text, 1, 1, true)
    }

    /// A lexer over a fragment (a `#!define` body) that starts at `line:col`;
    /// directives are not recognised inside it.
    pub fn fragment(file: FileId, text: &str, line: u32, col: u32) -> Self {
        Self::at(file, text, line, col, false)
    }

    fn at(file: FileId, text: &str, line: u32, col: u32, directives: bool) -> Self {
        let mut lexer = Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line,
            col,
            file,
            directives,
            diags: Vec::new(),
            done: false,
        };
        if text.len() > MAX_INPUT {
            lexer.error(lexer.here(), "file too large");
            lexer.done = true;
        }
        lexer
    }

    fn here(&self) -> Span {
        Span::new(self.file, self.line, self.col)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    fn text_from(&self, start: usize) -> String {
        self.chars[start..self.pos].iter().collect()
    }

    fn eof_token(&self, space_before: bool, string_break: bool) -> Token {
        Token {
            tok: Tok::Eof,
            span: self.here(),
            text: String::new(),
            space_before,
            string_break,
            origin: None,
        }
    }

    /// The next token. With `skipping`, only the conditional directives
    /// (`#!ifdef`, `#!ifndef`, `#!else`, `#!endif`) are looked for and all
    /// other text is passed over.
    pub fn next_token(&mut self, skipping: bool) -> Token {
        if self.done {
            return self.eof_token(true, false);
        }
        if skipping {
            return self.skip_to_conditional();
        }
        let mut space_before = false;
        let mut string_break = false;
        loop {
            let Some(c) = self.peek() else {
                self.done = true;
                return self.eof_token(space_before, string_break);
            };
            match c {
                ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c' | '\u{feff}' => {
                    self.bump();
                    space_before = true;
                }
                // An escaped newline is whitespace.
                '\\' if self.peek_at(1) == Some('\n')
                    || (self.peek_at(1) == Some('\r') && self.peek_at(2) == Some('\n')) =>
                {
                    while self.peek() != Some('\n') {
                        self.bump();
                    }
                    self.bump();
                    space_before = true;
                }
                '/' if self.peek_at(1) == Some('*') => {
                    if !self.block_comment() {
                        self.done = true;
                        return self.eof_token(true, true);
                    }
                    space_before = true;
                    string_break = true;
                }
                '/' if self.peek_at(1) == Some('/') => {
                    self.line_comment();
                    space_before = true;
                    string_break = true;
                }
                '#' | '!'
                    if self.directives
                        && self.peek_at(1) == Some('!')
                        && self.directive_ahead() =>
                {
                    if let Some(tok) = self.directive(false) {
                        return tok;
                    }
                    if c == '#' {
                        self.line_comment();
                        space_before = true;
                        string_break = true;
                    } else if let Some(mut tok) = self.token() {
                        tok.space_before = space_before;
                        tok.string_break = string_break;
                        return tok;
                    }
                }
                '#' => {
                    self.line_comment();
                    space_before = true;
                    string_break = true;
                }
                _ => match self.token() {
                    Some(mut tok) => {
                        tok.space_before = space_before;
                        tok.string_break = string_break;
                        return tok;
                    }
                    // A bad character was reported; go on after it.
                    None => space_before = true,
                },
            }
        }
    }

    fn directive_ahead(&self) -> bool {
        let mut name = String::new();
        let mut n = 2;
        while let Some(c) = self
            .peek_at(n)
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            n += 1;
        }
        DirectiveKind::from_name(&name).is_some()
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Skips a (nested) block comment; false if it is not closed.
    fn block_comment(&mut self) -> bool {
        let start = self.here();
        let mut depth = 0usize;
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.bump();
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => {
                    self.error(
                        start,
                        "unterminated comment: '/*' is never closed with '*/'",
                    );
                    return false;
                }
            }
        }
    }

    /// At `#!` or `!!`: a directive token if a directive name follows,
    /// otherwise `None` with nothing consumed. With `conditional_only`, only
    /// the conditional directives count.
    fn directive(&mut self, conditional_only: bool) -> Option<Token> {
        let mut n = 2;
        let mut name = String::new();
        while let Some(c) = self.peek_at(n) {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                n += 1;
            } else {
                break;
            }
        }
        let kind = DirectiveKind::from_name(&name)?;
        if conditional_only && !kind.is_conditional() {
            return None;
        }
        let after = self.peek_at(n);
        let ends_line = matches!(after, None | Some('\n') | Some('\r'));
        if !ends_line && !matches!(after, Some(' ' | '\t')) {
            return None;
        }
        if kind.is_compat() {
            // Headers stand alone on their line.
            let mut m = n;
            while matches!(self.peek_at(m), Some(' ' | '\t' | '\r')) {
                m += 1;
            }
            if !matches!(self.peek_at(m), None | Some('\n')) {
                return None;
            }
        }
        let span = self.here();
        let start = self.pos;
        for _ in 0..n {
            self.bump();
        }
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
        let args_span = self.here();
        let args_start = self.pos;
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some('\\')
                    if kind.continues_lines()
                        && (self.peek_at(1) == Some('\n')
                            || (self.peek_at(1) == Some('\r')
                                && self.peek_at(2) == Some('\n'))) =>
                {
                    while self.peek() != Some('\n') {
                        self.bump();
                    }
                    self.bump();
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        let args = self
            .text_from(args_start)
            .trim_end_matches(['\r', ' ', '\t'])
            .to_string();
        let text = self.text_from(start);
        Some(Token {
            tok: Tok::Directive(Directive {
                kind,
                name,
                args,
                args_span,
            }),
            span,
            text,
            space_before: true,
            string_break: true,
            origin: None,
        })
    }

    fn skip_to_conditional(&mut self) -> Token {
        loop {
            match self.peek() {
                None => {
                    self.done = true;
                    return self.eof_token(true, true);
                }
                Some('#' | '!') if self.peek_at(1) == Some('!') => {
                    if let Some(tok) = self.directive(true) {
                        return tok;
                    }
                    self.bump();
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    fn token(&mut self) -> Option<Token> {
        let span = self.here();
        let start = self.pos;
        let tok = match self.peek() {
            None => Tok::Eof,
            Some('"') => self.string(span),
            Some('\'') => self.raw_string(span),
            Some('$') => self.pv(span),
            Some('@') => self.select(span),
            Some(c) if c.is_ascii_hexdigit() || c == ':' => match self.ipv6() {
                Some(tok) => tok,
                None if c.is_ascii_digit() => self.ipv4().unwrap_or_else(|| self.number(span)),
                None if c == ':' => self.punct(span)?,
                None => self.ident(),
            },
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.ident(),
            Some(_) => self.punct(span)?,
        };
        Some(Token {
            tok,
            span,
            text: self.text_from(start),
            space_before: false,
            string_break: false,
            origin: None,
        })
    }

    fn ident(&mut self) -> Tok {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        Tok::Ident(s)
    }

    fn number(&mut self, span: Span) -> Tok {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        match parse_number(&s) {
            Some(Ok(n)) => Tok::Int(n),
            Some(Err(())) => {
                self.error(span, format!("number '{s}' is too large"));
                Tok::Int(0)
            }
            None => Tok::NumId(s),
        }
    }

    /// An IPv6 address: a run of hex digits and colons with at least two
    /// colons that parses as one.
    fn ipv6(&mut self) -> Option<Tok> {
        let mut n = 0;
        let mut colons = 0;
        while let Some(c) = self.peek_at(n) {
            if c.is_ascii_hexdigit() || c == ':' || c == '.' {
                colons += usize::from(c == ':');
                n += 1;
            } else {
                break;
            }
        }
        if colons < 2 {
            return None;
        }
        if matches!(self.peek_at(n), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        // Trailing dots and colons belong to what follows (`fe80::1:` in `[…]:`).
        let text: String = self.chars[self.pos..self.pos + n].iter().collect();
        let mut candidate = text.as_str();
        while !candidate.is_empty() {
            if let Ok(addr) = candidate.parse::<Ipv6Addr>() {
                for _ in 0..candidate.chars().count() {
                    self.bump();
                }
                return Some(Tok::Ipv6(addr));
            }
            if candidate.ends_with(['.', ':']) {
                candidate = &candidate[..candidate.len() - 1];
            } else {
                break;
            }
        }
        None
    }

    /// An IPv4 address `d.d.d.d`.
    fn ipv4(&mut self) -> Option<Tok> {
        let mut n = 0;
        let mut octets = Vec::with_capacity(4);
        for i in 0..4 {
            if i > 0 {
                if self.peek_at(n) != Some('.') {
                    return None;
                }
                n += 1;
            }
            let begin = n;
            while matches!(self.peek_at(n), Some(c) if c.is_ascii_digit()) {
                n += 1;
            }
            if n == begin || n - begin > 3 {
                return None;
            }
            let digits: String = self.chars[self.pos + begin..self.pos + n].iter().collect();
            octets.push(digits.parse::<u32>().ok()?);
        }
        if matches!(self.peek_at(n), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let span = self.here();
        for _ in 0..n {
            self.bump();
        }
        let mut bytes = [0u8; 4];
        for (b, o) in bytes.iter_mut().zip(&octets) {
            match u8::try_from(*o) {
                Ok(v) => *b = v,
                Err(_) => {
                    self.error(span, "invalid IPv4 address: each part must be 0-255");
                }
            }
        }
        Some(Tok::Ipv4(Ipv4Addr::from(bytes)))
    }

    /// An operator, or `None` after reporting a character that is none.
    fn punct(&mut self, span: Span) -> Option<Tok> {
        for (text, p) in Punct::TABLE {
            if text
                .chars()
                .enumerate()
                .all(|(i, c)| self.peek_at(i) == Some(c))
            {
                for _ in 0..text.len() {
                    self.bump();
                }
                return Some(Tok::Punct(*p));
            }
        }
        let c = self.bump().unwrap_or('?');
        self.error(
            span,
            format!("unexpected character '{}'", c.escape_default()),
        );
        None
    }

    fn string(&mut self, start: Span) -> Tok {
        self.bump();
        let mut value = String::new();
        loop {
            let Some(c) = self.bump() else {
                self.error(start, "unterminated string: missing closing '\"'");
                self.done = true;
                return Tok::Str {
                    value,
                    single: false,
                };
            };
            match c {
                '"' => {
                    return Tok::Str {
                        value,
                        single: false,
                    }
                }
                '\\' => self.escape(&mut value),
                _ => value.push(c),
            }
        }
    }

    fn escape(&mut self, value: &mut String) {
        let Some(c) = self.peek() else {
            value.push('\\');
            return;
        };
        match c {
            'n' | 'r' | 'a' | 't' | '"' | '\\' => {
                self.bump();
                value.push(match c {
                    'n' => '\n',
                    'r' => '\r',
                    'a' => '\x07',
                    't' => '\t',
                    other => other,
                });
            }
            '\n' => {
                self.bump();
            }
            '\r' if self.peek_at(1) == Some('\n') => {
                self.bump();
                self.bump();
            }
            'x' if self.peek_at(1).is_some_and(|h| h.is_ascii_hexdigit()) => {
                self.bump();
                let mut code = 0u32;
                for _ in 0..2 {
                    match self.peek().and_then(|h| h.to_digit(16)) {
                        Some(d) => {
                            code = code * 16 + d;
                            self.bump();
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code).unwrap_or('?'));
            }
            // Two or three octal digits; a single digit is a regex back-reference.
            '0'..='7' if self.peek_at(1).is_some_and(|d| ('0'..='7').contains(&d)) => {
                let mut code = 0u32;
                for _ in 0..3 {
                    match self.peek().filter(|d| ('0'..='7').contains(d)) {
                        Some(d) => {
                            code = code * 8 + (d as u32 - '0' as u32);
                            self.bump();
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code & 0xff).unwrap_or('?'));
            }
            _ => value.push('\\'),
        }
    }

    fn raw_string(&mut self, start: Span) -> Tok {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('\'') => {
                    return Tok::Str {
                        value,
                        single: true,
                    }
                }
                Some(c) => value.push(c),
                None => {
                    self.error(start, "unterminated string: missing closing \"'\"");
                    self.done = true;
                    return Tok::Str {
                        value,
                        single: true,
                    };
                }
            }
        }
    }

    fn pv(&mut self, start: Span) -> Tok {
        let begin = self.pos;
        self.bump();
        match self.peek() {
            Some('(') => {
                if !self.balanced_parens(start) {
                    return Tok::Pv(self.text_from(begin));
                }
            }
            Some('?') => {
                self.bump();
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.bump();
                }
                if self.peek() == Some('(') && !self.balanced_parens(start) {
                    return Tok::Pv(self.text_from(begin));
                }
            }
            _ => {
                self.error(
                    start,
                    "bad pseudo-variable: expected a name or '(' after '$'",
                );
            }
        }
        Tok::Pv(self.text_from(begin))
    }

    /// At `(`: consumes up to the matching `)`, counting only parentheses.
    fn balanced_parens(&mut self, start: Span) -> bool {
        let mut depth = 0usize;
        while let Some(c) = self.bump() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        self.error(start, "unterminated pseudo-variable: missing ')'");
        self.done = true;
        false
    }

    fn select(&mut self, start: Span) -> Tok {
        self.bump();
        let begin = self.pos;
        if !matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == '_') {
            self.error(start, "bad select: expected a name after '@'");
            return Tok::Select(String::new());
        }
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                    self.bump();
                }
                Some('.') if matches!(self.peek_at(1), Some(c) if c.is_ascii_alphabetic() || c == '_') =>
                {
                    self.bump();
                }
                Some('[') => {
                    while let Some(c) = self.bump() {
                        if c == ']' || c == '\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        Tok::Select(self.text_from(begin))
    }
}

/// Parses a Kamailio number: `Some(Ok)` for a number, `Some(Err)` for one
/// that does not fit, `None` if the text is not a number at all.
fn parse_number(s: &str) -> Option<Result<i64, ()>> {
    let parsed = if let Some(hex) = s.strip_prefix("0x").filter(|h| !h.is_empty()) {
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(hex, 16)
    } else if let Some(bin) = s.strip_suffix('b').filter(|b| !b.is_empty()) {
        if !bin.chars().all(|c| c == '0' || c == '1') {
            return None;
        }
        i64::from_str_radix(bin, 2)
    } else if s.len() > 1 && s.starts_with('0') {
        if !s.chars().all(|c| ('0'..='7').contains(&c)) {
            return None;
        }
        i64::from_str_radix(&s[1..], 8)
    } else {
        if !s.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse::<i64>()
    };
    Some(parsed.map_err(|_| ()))
}

/// Lexes a whole text with directives recognised and nothing skipped (for
/// tests and tools).
pub fn lex_all(file: FileId, text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lexer = Lexer::new(file, text);
    let mut out = Vec::new();
    loop {
        let tok = lexer.next_token(false);
        let end = tok.tok == Tok::Eof;
        out.push(tok);
        if end {
            break;
        }
    }
    (out, lexer.diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let (t, d) = lex_all(FileId(0), text);
        assert!(d.is_empty(), "unexpected diagnostics for {text:?}: {d:?}");
        t.into_iter()
            .map(|t| t.tok)
            .filter(|t| *t != Tok::Eof)
            .collect()
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.to_string())
    }

    fn string(s: &str) -> Tok {
        Tok::Str {
            value: s.to_string(),
            single: false,
        }
    }

    fn pv(s: &str) -> Tok {
        Tok::Pv(s.to_string())
    }

    #[test]
    fn token_table() {
        let cases: Vec<(&str, Vec<Tok>)> = vec![
            (
                "debug=2",
                vec![ident("debug"), Tok::Punct(Punct::Assign), Tok::Int(2)],
            ),
            (
                "0x1F 017 101b 0",
                vec![Tok::Int(31), Tok::Int(15), Tok::Int(5), Tok::Int(0)],
            ),
            (
                "5060abc 0db8",
                vec![Tok::NumId("5060abc".into()), Tok::NumId("0db8".into())],
            ),
            ("127.0.0.1", vec![Tok::Ipv4(Ipv4Addr::new(127, 0, 0, 1))]),
            ("::1", vec![Tok::Ipv6("::1".parse().unwrap())]),
            (
                "fe80::1/64",
                vec![
                    Tok::Ipv6("fe80::1".parse().unwrap()),
                    Tok::Punct(Punct::Slash),
                    Tok::Int(64),
                ],
            ),
            (
                "udp:[2001:db8::1]:5060",
                vec![
                    ident("udp"),
                    Tok::Punct(Punct::Colon),
                    Tok::Punct(Punct::LBrack),
                    Tok::Ipv6("2001:db8::1".parse().unwrap()),
                    Tok::Punct(Punct::RBrack),
                    Tok::Punct(Punct::Colon),
                    Tok::Int(5060),
                ],
            ),
            (
                "case 5:",
                vec![ident("case"), Tok::Int(5), Tok::Punct(Punct::Colon)],
            ),
            (
                "dispatcher:dst-down",
                vec![
                    ident("dispatcher"),
                    Tok::Punct(Punct::Colon),
                    ident("dst"),
                    Tok::Punct(Punct::Minus),
                    ident("down"),
                ],
            ),
            (
                "a==b != c =~ d !~ e",
                vec![
                    ident("a"),
                    Tok::Punct(Punct::EqEq),
                    ident("b"),
                    Tok::Punct(Punct::NotEq),
                    ident("c"),
                    Tok::Punct(Punct::Match),
                    ident("d"),
                    Tok::Punct(Punct::NotMatch),
                    ident("e"),
                ],
            ),
            (
                "<< >> <= >= && || := +=",
                vec![
                    Tok::Punct(Punct::Shl),
                    Tok::Punct(Punct::Shr),
                    Tok::Punct(Punct::Le),
                    Tok::Punct(Punct::Ge),
                    Tok::Punct(Punct::AndAnd),
                    Tok::Punct(Punct::OrOr),
                    Tok::Punct(Punct::ColonAssign),
                    Tok::Punct(Punct::PlusAssign),
                ],
            ),
            (
                r#""a\tb\n\"q\" \\ \+ \x41\101""#,
                vec![string("a\tb\n\"q\" \\ \\+ AA")],
            ),
            (
                "'raw \\n'",
                vec![Tok::Str {
                    value: "raw \\n".into(),
                    single: true,
                }],
            ),
            ("\"line\\\ncont\"", vec![string("linecont")]),
            (
                "$ru $rU==$null",
                vec![pv("$ru"), pv("$rU"), Tok::Punct(Punct::EqEq), pv("$null")],
            ),
            (
                "$var(x) $(hdr(Via)[-1]{s.len}) $?",
                vec![pv("$var(x)"), pv("$(hdr(Via)[-1]{s.len})"), pv("$?")],
            ),
            (
                "$sht(t=>$var(k)) $T_reply_code",
                vec![pv("$sht(t=>$var(k))"), pv("$T_reply_code")],
            ),
            ("@via[1].host", vec![Tok::Select("via[1].host".into())]),
            (
                "a # comment\nb // c\n/* d /* nested */ e */ f",
                vec![ident("a"), ident("b"), ident("f")],
            ),
            ("a \\\n b", vec![ident("a"), ident("b")]),
            ("#!foo is a comment\nx", vec![ident("x")]),
        ];
        for (text, want) in cases {
            assert_eq!(toks(text), want, "lexing {text:?}");
        }
    }

    #[test]
    fn directives_are_single_tokens() {
        let (t, d) = lex_all(
            FileId(0),
            "#!KAMAILIO\n#!define X 1 \\\n  + 2\n!!ifdef Y\n#!define\tZ\n",
        );
        assert!(d.is_empty());
        let dirs: Vec<(DirectiveKind, String, u32)> = t
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Directive(d) => Some((d.kind, d.args.clone(), t.span.line)),
                _ => None,
            })
            .collect();
        assert_eq!(
            dirs,
            vec![
                (DirectiveKind::CompatKamailio, String::new(), 1),
                (DirectiveKind::Define, "X 1 \\\n  + 2".to_string(), 2),
                (DirectiveKind::IfDef, "Y".to_string(), 4),
                (DirectiveKind::Define, "Z".to_string(), 5),
            ]
        );
    }

    #[test]
    fn positions_are_line_and_column() {
        let (t, _) = lex_all(FileId(3), "a\n\tbb  $x\n");
        let spans: Vec<(u32, u32)> = t.iter().map(|t| (t.span.line, t.span.col)).collect();
        assert_eq!(spans[..3], [(1, 1), (2, 2), (2, 6)]);
        assert_eq!(t[1].span.file, FileId(3));
        assert!(t[1].space_before);
    }

    #[test]
    fn skipping_finds_only_conditionals() {
        let mut lx = Lexer::new(FileId(0), "'unclosed \"x #!define A\n#!endif\ny");
        let t = lx.next_token(true);
        assert!(matches!(
            t.tok,
            Tok::Directive(Directive {
                kind: DirectiveKind::EndIf,
                ..
            })
        ));
        assert_eq!(lx.next_token(false).tok, ident("y"));
        assert!(lx.diags.is_empty());
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("x = \"abc", (1, 5), "unterminated string"),
            ("a /* b", (1, 3), "unterminated comment"),
            ("$var(x", (1, 1), "unterminated pseudo-variable"),
            ("  $ x", (1, 3), "bad pseudo-variable"),
            ("a ` b", (1, 3), "unexpected character"),
            ("x=300.1.1.1", (1, 3), "invalid IPv4"),
            ("99999999999999999999", (1, 1), "too large"),
        ];
        for (text, (line, col), msg) in cases {
            let (_, d) = lex_all(FileId(0), text);
            assert_eq!(d.len(), 1, "{text:?}: {d:?}");
            assert_eq!((d[0].span.line, d[0].span.col), (line, col), "{text:?}");
            assert!(d[0].message.contains(msg), "{text:?}: {}", d[0].message);
        }
    }
}
