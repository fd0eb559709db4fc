//! Dialplan rules as loaded from the database, and translation.
//!
//! A rule matches its input with `match_op` 0 (equal to `match_exp`), 1
//! (PCRE search for `match_exp`) or 2 (shell wildcard `match_exp`). Rules
//! of one dialplan id are tried by priority (`pr`, lowest first; equal
//! priorities in the database's order), first those whose `match_len` is
//! the input's length, then those with `match_len` 0. The first rule that
//! matches wins: its `attrs` are the result's attributes, and the output is
//! `repl_exp` with `subst_exp`'s groups put in (see [`Rule::replace`]).
//!
//! With `match_dynamic`, a `match_exp` (of a PCRE rule) or a `subst_exp`
//! that holds pseudo-variables is printed per message, then compiled.

use crate::modules::regex::{Pcre, PcreOptions};
use crate::script::format::{parse_format, Format};
use crate::script::pv::PvName;
use crate::script::pvkind;
use crate::script::value::Value;
use crate::store::DialplanRow;

use super::repl::{Repl, Token, MAX_TOKENS};

/// Kamailio's output buffer: a translation that grows to this many bytes
/// while escapes are put in fails.
const MAX_OUTPUT: usize = 127;

/// How a rule's `match_exp` is compared with the input.
#[derive(Debug)]
enum Matcher {
    Equal,
    Fnmatch,
    Regex(Pcre),
    /// A PCRE with pseudo-variables (match_dynamic).
    Dynamic(Format),
}

/// A rule's `subst_exp`.
#[derive(Debug)]
enum Subst {
    None,
    Static(Pcre),
    Dynamic(Format),
}

/// One row of the dialplan table, compiled.
#[derive(Debug)]
pub struct Rule {
    pub dpid: i64,
    pub pr: i64,
    pub match_op: i64,
    /// As loaded (a dynamic one as Kamailio keeps it: a final lone `$`
    /// doubled, so that it stays a `$` when printed).
    pub match_exp: String,
    pub match_len: i64,
    pub subst_exp: String,
    pub repl_exp: String,
    pub attrs: String,
    matcher: Matcher,
    subst: Subst,
    repl: Option<Repl>,
}

/// The rules of one `match_len` (0: any length), in priority order.
#[derive(Debug)]
pub struct Index {
    pub len: i64,
    pub rules: Vec<Rule>,
}

/// The rules of one dialplan id: indexes of lengths in rising order, 0 last.
#[derive(Debug)]
pub struct DialplanSet {
    pub id: i64,
    pub indexes: Vec<Index>,
}

/// Every dialplan id.
#[derive(Debug, Default)]
pub struct Rules {
    pub sets: Vec<DialplanSet>,
}

/// What a translation needs from the message it runs for: printing a
/// format, and the Request-URI. The control socket has no message.
pub trait Subject {
    /// The format printed for this message; `None` when it cannot be.
    fn print(&self, f: &Format) -> Option<Vec<u8>>;
    /// The Request-URI (as rewritten), when there is a request.
    fn ruri(&self) -> Option<Vec<u8>>;
}

/// No message (`dialplan.translate`): variables and `\u` add nothing, and
/// rules with dynamic expressions do not match.
pub struct NoMessage;

impl Subject for NoMessage {
    fn print(&self, _: &Format) -> Option<Vec<u8>> {
        None
    }
    fn ruri(&self) -> Option<Vec<u8>> {
        None
    }
}

/// A successful translation.
#[derive(Debug, PartialEq, Eq)]
pub struct Translation {
    /// The output, when one was asked for (empty: leave the destination alone).
    pub output: Option<Vec<u8>>,
    pub attrs: String,
}

/// Resolves variable names without a configuration, only to tell a known
/// pseudo-variable from `$` text (as Kamailio's check for variables does).
struct NameCheck;

impl pvkind::Resolver for NameCheck {
    fn var_slot(&mut self, _: &str) -> u32 {
        0
    }
    fn shv_slot(&mut self, _: &str) -> u32 {
        0
    }
    fn htable(&mut self, _: &str) -> Option<u32> {
        Some(0)
    }
    fn cfg(&mut self, _: &str) -> Option<Value<'static>> {
        None
    }
    fn cfg_get(&mut self, _: &str) -> Option<Value<'static>> {
        None
    }
}

/// The format of `text` when it holds at least one known pseudo-variable.
fn dynamic_format(text: &str) -> Option<Format> {
    let f = parse_format(text).ok()?;
    let known = f.pvs().any(|pv| match &pv.inner {
        None => pvkind::resolve(&pv.name, None, &mut NameCheck).is_ok(),
        Some(PvName::Text(t)) => pvkind::resolve(&pv.name, Some(t), &mut NameCheck).is_ok(),
        Some(_) => true,
    });
    known.then_some(f)
}

/// A dynamic expression as Kamailio stores it: a final `$` not preceded by
/// another is doubled (it then prints as one `$`).
fn dynamic_text(text: &str) -> String {
    let b = text.as_bytes();
    if b.len() > 1 && b[b.len() - 1] == b'$' && b[b.len() - 2] != b'$' {
        format!("{text}$")
    } else {
        text.to_string()
    }
}

fn compile(what: &str, text: &str) -> Result<Pcre, String> {
    Pcre::compile(text, PcreOptions::default())
        .map_err(|e| format!("failed to compile {what} {text}: {e}"))
}

impl Rule {
    /// Compiles a row; the error names what is wrong.
    pub fn build(row: &DialplanRow, match_dynamic: bool) -> Result<Rule, String> {
        let text = |v: &Option<String>, col: &str| {
            v.clone()
                .ok_or_else(|| format!("column {col} is NULL - not allowed"))
        };
        if !(0..=2).contains(&row.match_op) {
            return Err(format!(
                "invalid value for match operator: {}",
                row.match_op
            ));
        }
        let mut match_exp = text(&row.match_exp, "match_exp")?;
        let matcher = match row.match_op {
            0 => Matcher::Equal,
            2 => Matcher::Fnmatch,
            _ => match match_dynamic.then(|| dynamic_format(&match_exp)).flatten() {
                Some(_) => {
                    match_exp = dynamic_text(&match_exp);
                    Matcher::Dynamic(parse_format(&match_exp).map_err(|e| e.message)?)
                }
                None => Matcher::Regex(compile("match expression", &match_exp)?),
            },
        };
        let repl_exp = text(&row.repl_exp, "repl_exp")?;
        let repl = if repl_exp.is_empty() {
            None
        } else {
            Some(
                Repl::parse(&repl_exp)
                    .map_err(|e| format!("failed to compile replacing expression: {e}"))?,
            )
        };
        let mut subst_exp = text(&row.subst_exp, "subst_exp")?;
        let subst = if subst_exp.is_empty() {
            Subst::None
        } else {
            match match_dynamic.then(|| dynamic_format(&subst_exp)).flatten() {
                Some(_) => {
                    subst_exp = dynamic_text(&subst_exp);
                    Subst::Dynamic(parse_format(&subst_exp).map_err(|e| e.message)?)
                }
                None => {
                    let re = compile("subst expression", &subst_exp)?;
                    if re.group_count() > MAX_TOKENS {
                        return Err(format!(
                            "subst expression {subst_exp} has too many sub-expressions"
                        ));
                    }
                    Subst::Static(re)
                }
            }
        };
        let groups = match &subst {
            Subst::Static(re) => re.group_count(),
            _ => 0,
        };
        let dynamic = matches!(matcher, Matcher::Dynamic(_)) || matches!(subst, Subst::Dynamic(_));
        if let Some(r) = &repl {
            if !dynamic && r.max_group > groups {
                return Err(format!(
                    "repl_exp {repl_exp} refers to {} sub-expressions, but subst_exp {subst_exp} has only {groups}",
                    r.max_group
                ));
            }
        }
        Ok(Rule {
            dpid: row.dpid,
            pr: row.pr,
            match_op: row.match_op,
            match_exp,
            match_len: row.match_len,
            subst_exp,
            repl_exp,
            attrs: text(&row.attrs, "attrs")?,
            matcher,
            subst,
            repl,
        })
    }

    fn matches(&self, input: &[u8], s: &dyn Subject) -> bool {
        match &self.matcher {
            Matcher::Equal => self.match_exp.as_bytes() == input,
            Matcher::Fnmatch => {
                crate::modules::textops::glob(self.match_exp.as_bytes(), input, false)
            }
            Matcher::Regex(re) => re.is_match(input),
            Matcher::Dynamic(f) => s
                .print(f)
                .and_then(|p| {
                    compile("dynamic match expression", &String::from_utf8_lossy(&p)).ok()
                })
                .is_some_and(|re| re.is_match(input)),
        }
    }

    /// The output for `input`, which matched: `None` when it cannot be built.
    fn translate(&self, input: &[u8], s: &dyn Subject) -> Option<Vec<u8>> {
        match &self.subst {
            Subst::None => self.replace(input, None, s),
            Subst::Static(re) => self.replace(input, Some(re), s),
            Subst::Dynamic(f) => {
                let re = s.print(f).and_then(|p| {
                    compile("dynamic subst expression", &String::from_utf8_lossy(&p)).ok()
                })?;
                // Kamailio logs a dynamic substitution that fails and goes on
                // with an empty output (the destination is left alone).
                Some(self.replace(input, Some(&re), s).unwrap_or_default())
            }
        }
    }

    /// `repl_exp` for `input` matched by `subst`. No replacement: an empty
    /// output. No `subst_exp`, or a replacement without escapes: the
    /// replacement text as written. Otherwise the text with each escape put
    /// in: a group of the match (empty when it took no part), a character,
    /// the Request-URI, a variable; the match failing fails the translation.
    pub fn replace(&self, input: &[u8], subst: Option<&Pcre>, s: &dyn Subject) -> Option<Vec<u8>> {
        let Some(repl) = &self.repl else {
            return Some(Vec::new());
        };
        let groups = match subst {
            Some(re) => {
                if repl.max_group > re.group_count() {
                    log::error!(
                        "dialplan: {} refers to group {} of {}, which has {}",
                        self.repl_exp,
                        repl.max_group,
                        re.pattern(),
                        re.group_count()
                    );
                    return None;
                }
                Some(re.groups(input)?)
            }
            None => None,
        };
        let Some(groups) = groups.filter(|_| !repl.tokens.is_empty()) else {
            return Some(repl.text.clone());
        };
        let mut out: Vec<u8> = Vec::new();
        let put = |out: &mut Vec<u8>, piece: &[u8]| {
            if out.len() + piece.len() >= MAX_OUTPUT {
                return None;
            }
            out.extend_from_slice(piece);
            Some(())
        };
        let mut offset = 0;
        for t in &repl.tokens {
            if offset < t.offset {
                put(&mut out, &repl.text[offset..t.offset])?;
            }
            match &t.token {
                Token::Group(n) => {
                    let m = groups.get(*n).copied().flatten();
                    put(&mut out, m.map_or(&[][..], |(a, b)| &input[a..b]))?;
                }
                Token::Char(c) => put(&mut out, &[*c])?,
                Token::Uri => {
                    if let Some(uri) = s.ruri() {
                        put(&mut out, &uri)?;
                    }
                }
                Token::Pv(f) => {
                    if let Some(v) = s.print(f) {
                        put(&mut out, &v)?;
                    }
                }
            }
            offset = t.offset + t.size;
        }
        if offset < repl.text.len() {
            out.extend_from_slice(&repl.text[offset..]);
        }
        Some(out)
    }
}

impl Rules {
    /// Compiles rows (in priority order); the first bad row fails the whole load.
    pub fn build(rows: &[DialplanRow], match_dynamic: bool) -> Result<Rules, String> {
        let mut rules = Rules::default();
        for row in rows {
            let rule = Rule::build(row, match_dynamic).map_err(|e| {
                format!(
                    "rule dpid {} pr {} match_exp {:?}: {e}",
                    row.dpid,
                    row.pr,
                    row.match_exp.as_deref().unwrap_or("")
                )
            })?;
            rules.add(rule);
        }
        Ok(rules)
    }

    fn add(&mut self, rule: Rule) {
        let set = match self.sets.iter().position(|s| s.id == rule.dpid) {
            Some(i) => &mut self.sets[i],
            None => {
                self.sets.push(DialplanSet {
                    id: rule.dpid,
                    indexes: Vec::new(),
                });
                self.sets.last_mut().expect("just pushed")
            }
        };
        let len = rule.match_len;
        let at = set
            .indexes
            .iter()
            .position(|ix| ix.len == len || (len != 0 && (ix.len == 0 || ix.len > len)));
        match at {
            Some(i) if set.indexes[i].len == len => set.indexes[i].rules.push(rule),
            Some(i) => set.indexes.insert(
                i,
                Index {
                    len,
                    rules: vec![rule],
                },
            ),
            None => set.indexes.push(Index {
                len,
                rules: vec![rule],
            }),
        }
    }

    /// The rules of dialplan `id`.
    pub fn set(&self, id: i64) -> Option<&DialplanSet> {
        self.sets.iter().find(|s| s.id == id)
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.sets
            .iter()
            .flat_map(|s| &s.indexes)
            .map(|ix| ix.rules.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DialplanSet {
    /// Translates `input` (an output only when `want_output`); `None` when
    /// the input is empty, no rule matches or the output cannot be built.
    pub fn translate(
        &self,
        input: &[u8],
        want_output: bool,
        s: &dyn Subject,
    ) -> Option<Translation> {
        if input.is_empty() {
            log::warn!("dialplan: invalid or empty input string to be matched");
            return None;
        }
        let len = input.len() as i64;
        let exact = self.indexes.iter().find(|ix| ix.len == len);
        let any = self.indexes.iter().find(|ix| ix.len == 0);
        let rule = exact
            .into_iter()
            .chain(any)
            .flat_map(|ix| &ix.rules)
            .find(|r| r.matches(input, s))?;
        let output = if want_output {
            Some(rule.translate(input, s)?)
        } else {
            None
        };
        Some(Translation {
            output,
            attrs: rule.attrs.clone(),
        })
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
