//! sdpops: tests on and edits of the SDP body (RFC 4566), Kamailio 5.6
//! semantics. Every function works in every route.
//!
//! The body is split into lines and media sections ([`Body`]): a section
//! runs from its `m=` line to the next `m=` line or the end. An edit writes
//! the whole new body through the edit list (Content-Length follows), and a
//! later function starts from the body an earlier one left (Kamailio works
//! on the received body each time, so its edits of one line by two
//! functions can clash; ours compose).
//!
//! The body counts as SDP when Content-Type is `application/sdp` (or absent)
//! and the body is not empty; `multipart` bodies are not searched (only
//! `sdp_content("sloppy")` looks into them).
//!
//! Codecs are payload type numbers of an `m=` line; by name they are found
//! through `a=rtpmap` (any case) and RFC 3551's static numbers. Removing a
//! codec takes it off the `m=` line and removes its `a=rtpmap` and `a=fmtp`
//! lines in that section.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::truth;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};
use crate::script::value::Value;
use crate::sip::HeaderName;

#[cfg(test)]
mod tests;

/// One media section: line indexes `start..end` (the `m=` line first).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    start: usize,
    end: usize,
}

/// An SDP body as lines (each with its line end), with its media sections.
#[derive(Debug, Clone)]
pub struct Body {
    lines: Vec<Vec<u8>>,
    sections: Vec<Section>,
}

fn bare(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

impl Body {
    pub fn parse(text: &[u8]) -> Body {
        let lines: Vec<Vec<u8>> = text
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        let mut body = Body {
            lines,
            sections: Vec::new(),
        };
        body.index();
        body
    }

    fn index(&mut self) {
        self.sections.clear();
        for (i, l) in self.lines.iter().enumerate() {
            if l.starts_with(b"m=") {
                if let Some(s) = self.sections.last_mut() {
                    s.end = i;
                }
                self.sections.push(Section {
                    start: i,
                    end: self.lines.len(),
                });
            }
        }
    }

    pub fn text(&self) -> Vec<u8> {
        self.lines.concat()
    }

    /// Field `n` of the `m=` line of section `s` (0 media, 1 port, 2 transport).
    fn m_field(&self, s: &Section, n: usize) -> &[u8] {
        bare(&self.lines[s.start][2..])
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .nth(n)
            .unwrap_or(b"")
    }

    fn media(&self, s: &Section) -> &[u8] {
        self.m_field(s, 0)
    }

    fn transport(&self, s: &Section) -> &[u8] {
        self.m_field(s, 2)
    }

    /// The payload types of section `s`'s `m=` line.
    fn payloads(&self, s: &Section) -> Vec<Vec<u8>> {
        bare(&self.lines[s.start][2..])
            .split(|&b| b == b' ')
            .filter(|f| !f.is_empty())
            .skip(3)
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Line index of the first `a=NAME:PT …` line of section `s`.
    fn attr_line(&self, s: &Section, name: &[u8], pt: &[u8]) -> Option<usize> {
        (s.start + 1..s.end).find(|&i| {
            let l = bare(&self.lines[i]);
            l.strip_prefix(b"a=")
                .and_then(|a| a.strip_prefix(name))
                .and_then(|a| a.strip_prefix(b":"))
                .and_then(|a| a.strip_prefix(pt))
                .is_some_and(|rest| rest.is_empty() || rest[0] == b' ')
        })
    }

    /// The encoding name of payload `pt` in section `s` (`a=rtpmap:PT NAME/…`).
    fn encoding(&self, s: &Section, pt: &[u8]) -> Option<Vec<u8>> {
        let i = self.attr_line(s, b"rtpmap", pt)?;
        let l = bare(&self.lines[i]);
        let value = &l[l.iter().position(|&b| b == b' ')? + 1..];
        Some(value.split(|&b| b == b'/').next()?.trim_ascii().to_vec())
    }

    fn matches_media(&self, s: &Section, media: Option<&[u8]>) -> bool {
        media.is_none_or(|m| m.is_empty() || self.media(s).eq_ignore_ascii_case(m))
    }

    /// Takes payload `pt` off section `i`'s `m=` line (its first occurrence)
    /// and removes its `a=rtpmap` and `a=fmtp` lines.
    fn remove_payload(&mut self, i: usize, pt: &[u8]) {
        let s = self.sections[i].clone();
        let line = &self.lines[s.start];
        let text = bare(line);
        let eol = line[text.len()..].to_vec();
        let mut fields: Vec<&[u8]> = text.split(|&b| b == b' ').collect();
        if let Some(pos) = fields.iter().skip(3).position(|f| *f == pt) {
            fields.remove(pos + 3);
            let mut new = fields.join(&b' ');
            new.extend_from_slice(&eol);
            self.lines[s.start] = new;
        }
        let gone: Vec<usize> = [&b"rtpmap"[..], b"fmtp"]
            .iter()
            .filter_map(|name| self.attr_line(&s, name, pt))
            .collect();
        self.remove_lines(&gone);
    }

    /// Removes lines by index, then finds the sections again.
    fn remove_lines(&mut self, gone: &[usize]) {
        if gone.is_empty() {
            return;
        }
        let mut i = 0;
        self.lines.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        self.index();
    }

    /// Payload numbers named `names` (comma-separated) in any section, and
    /// RFC 3551's static numbers of those names.
    fn ids_of_names(&self, names: &[u8]) -> Vec<Vec<u8>> {
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for name in tokens(names) {
            for s in &self.sections {
                for pt in self.payloads(s) {
                    if self
                        .encoding(s, &pt)
                        .is_some_and(|e| e.eq_ignore_ascii_case(name))
                        && !ids.contains(&pt)
                    {
                        ids.push(pt);
                    }
                }
            }
            for (n, pt) in STATIC_PAYLOADS {
                let pt = pt.as_bytes().to_vec();
                if n.as_bytes().eq_ignore_ascii_case(name) && !ids.contains(&pt) {
                    ids.push(pt);
                }
            }
        }
        ids
    }

    fn remove_codecs(&mut self, ids: &[Vec<u8>], media: Option<&[u8]>) {
        for i in 0..self.sections.len() {
            if !self.matches_media(&self.sections[i].clone(), media) {
                continue;
            }
            for pt in ids {
                self.remove_payload(i, pt);
            }
        }
    }

    fn keep_codecs(&mut self, ids: &[Vec<u8>], media: Option<&[u8]>) {
        for i in 0..self.sections.len() {
            let s = self.sections[i].clone();
            if !self.matches_media(&s, media) {
                continue;
            }
            for pt in self.payloads(&s) {
                if !ids.contains(&pt) {
                    self.remove_payload(i, &pt);
                }
            }
        }
    }

    /// Kamailio's `sdp_with_codecs_by_id` count: 0 none found, 1 every one
    /// found in every section, 2 some found.
    fn with_codecs(&self, ids: &[Vec<u8>]) -> i32 {
        let (mut found, mut missing) = (false, false);
        for s in &self.sections {
            let payloads = self.payloads(s);
            for id in ids {
                if payloads.contains(id) {
                    found = true;
                } else {
                    missing = true;
                }
            }
        }
        match (found, missing) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        }
    }

    /// Removes the sections `which` picks; how many.
    fn remove_sections(&mut self, which: impl Fn(&Body, &Section) -> bool) -> usize {
        let gone: Vec<usize> = self
            .sections
            .iter()
            .filter(|s| which(self, s))
            .flat_map(|s| s.start..s.end)
            .collect();
        let n = self.sections.iter().filter(|s| which(self, s)).count();
        self.remove_lines(&gone);
        n
    }

    /// Removes the lines starting with `prefix` (in the sections of `media`,
    /// or anywhere); how many.
    fn remove_prefix(&mut self, prefix: &[u8], media: Option<&[u8]>) -> usize {
        let ranges: Vec<(usize, usize)> = match media.filter(|m| !m.is_empty()) {
            None => vec![(0, self.lines.len())],
            Some(m) => self
                .sections
                .iter()
                .filter(|s| self.media(s).eq_ignore_ascii_case(m))
                .map(|s| (s.start, s.end))
                .collect(),
        };
        let gone: Vec<usize> = ranges
            .into_iter()
            .flat_map(|(a, b)| a..b)
            .filter(|&i| self.lines[i].starts_with(prefix))
            .collect();
        let n = gone.len();
        self.remove_lines(&gone);
        n
    }

    /// Whether a section of `media` is active: port not 0 and not `a=inactive`.
    fn active(&self, media: &[u8]) -> bool {
        let session_mode = self.mode(
            0,
            self.sections.first().map_or(self.lines.len(), |s| s.start),
        );
        self.sections.iter().any(|s| {
            self.media(s).eq_ignore_ascii_case(media)
                && atoi(self.m_field(s, 1)) != 0
                && !self
                    .mode(s.start + 1, s.end)
                    .or(session_mode)
                    .is_some_and(|m| m.eq_ignore_ascii_case(b"inactive"))
        })
    }

    /// The direction attribute among lines `a..b`.
    fn mode(&self, a: usize, b: usize) -> Option<&[u8]> {
        self.lines[a..b].iter().rev().find_map(|l| {
            let l = bare(l).strip_prefix(b"a=")?;
            [&b"sendrecv"[..], b"sendonly", b"recvonly", b"inactive"]
                .into_iter()
                .find(|m| l.eq_ignore_ascii_case(m))
        })
    }
}

/// C `atoi` of a port field (`5004/2` is 5004).
fn atoi(s: &[u8]) -> u64 {
    s.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// Comma-separated items, spaces around each dropped, empty ones skipped.
fn tokens(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// RFC 3551 §6 static payload types by encoding name.
const STATIC_PAYLOADS: &[(&str, &str)] = &[
    ("PCMU", "0"),
    ("GSM", "3"),
    ("G723", "4"),
    ("DVI4", "5"),
    ("DVI4", "6"),
    ("LPC", "7"),
    ("PCMA", "8"),
    ("G722", "9"),
    ("L16", "10"),
    ("L16", "11"),
    ("QCELP", "12"),
    ("CN", "13"),
    ("MPA", "14"),
    ("G728", "15"),
    ("DVI4", "16"),
    ("DVI4", "17"),
    ("G729", "18"),
    ("CelB", "25"),
    ("JPEG", "26"),
    ("nv", "28"),
    ("H261", "31"),
    ("MPV", "32"),
    ("MP2T", "33"),
    ("H263", "34"),
];

/// The message's SDP body as it stands (after earlier body edits), or
/// `None` when it has none.
fn sdp_text(ctx: &MsgCtx<'_>) -> Option<Bytes> {
    let msg = ctx.msg;
    let ctype = msg.header_value(HeaderName::ContentType);
    if let Some(ct) = ctype {
        let mime = ct.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
        if !mime.eq_ignore_ascii_case(b"application/sdp") {
            return None;
        }
    }
    let body = match ctx.edits.new_body() {
        Some(b) => b.clone(),
        None => msg.buf().slice_ref(msg.body()),
    };
    (!body.is_empty()).then_some(body)
}

/// `$sdp(body)`: the SDP body as it stands, `$null` without one.
pub fn body_value(ctx: &MsgCtx<'_>) -> Value<'static> {
    sdp_text(ctx).map_or(Value::Null, |b| Value::owned(b.to_vec()))
}

/// Runs `f` on the parsed body; writes the body back when `f` says it changed.
fn edit(ctx: &mut MsgCtx<'_>, f: impl FnOnce(&mut Body) -> i32) -> i32 {
    let Some(text) = sdp_text(ctx) else {
        return -1;
    };
    let mut body = Body::parse(&text);
    let code = f(&mut body);
    let new = body.text();
    if new != text.as_ref() {
        let msg = ctx.msg;
        ctx.edits.set_body(msg, Bytes::from(new));
    }
    code
}

fn read(ctx: &MsgCtx<'_>, f: impl FnOnce(&Body) -> i32) -> i32 {
    match sdp_text(ctx) {
        Some(text) => f(&Body::parse(&text)),
        None => -1,
    }
}

/// The optional media argument (argument 1).
fn media_arg(ctx: &MsgCtx<'_>, args: &Args) -> Option<Vec<u8>> {
    (args.len() > 1).then(|| args.str(ctx, 1).into_owned())
}

fn ids_arg(ctx: &MsgCtx<'_>, args: &Args) -> Vec<Vec<u8>> {
    tokens(&args.str(ctx, 0)).map(<[u8]>::to_vec).collect()
}

/// `sdp_remove_codecs_by_id(list[, media])`: 1, -1 without SDP.
fn remove_codecs_by_id(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (ids, media) = (ids_arg(ctx, args), media_arg(ctx, args));
    edit(ctx, |b| {
        b.remove_codecs(&ids, media.as_deref());
        1
    })
}

fn remove_codecs_by_name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (names, media) = (args.str(ctx, 0).into_owned(), media_arg(ctx, args));
    edit(ctx, |b| {
        let ids = b.ids_of_names(&names);
        b.remove_codecs(&ids, media.as_deref());
        1
    })
}

fn keep_codecs_by_id(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (ids, media) = (ids_arg(ctx, args), media_arg(ctx, args));
    edit(ctx, |b| {
        b.keep_codecs(&ids, media.as_deref());
        1
    })
}

fn keep_codecs_by_name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (names, media) = (args.str(ctx, 0).into_owned(), media_arg(ctx, args));
    edit(ctx, |b| {
        let ids = b.ids_of_names(&names);
        b.keep_codecs(&ids, media.as_deref());
        1
    })
}

/// 1 every codec found, 2 some, -1 none, -2 no SDP.
fn with_codecs_code(ctx: &MsgCtx<'_>, by_name: bool, list: &[u8]) -> i32 {
    let Some(text) = sdp_text(ctx) else {
        return -2;
    };
    let b = Body::parse(&text);
    let ids = if by_name {
        b.ids_of_names(list)
    } else {
        tokens(list).map(<[u8]>::to_vec).collect()
    };
    match b.with_codecs(&ids) {
        0 => -1,
        n => n,
    }
}

fn with_codecs_by_id(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let list = args.str(ctx, 0).into_owned();
    with_codecs_code(ctx, false, &list)
}

fn with_codecs_by_name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let list = args.str(ctx, 0).into_owned();
    with_codecs_code(ctx, true, &list)
}

fn with_media(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let m = args.str(ctx, 0).into_owned();
    read(ctx, |b| {
        truth(
            b.sections
                .iter()
                .any(|s| b.media(s).eq_ignore_ascii_case(&m)),
        )
    })
}

fn with_active_media(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let m = args.str(ctx, 0).into_owned();
    read(ctx, |b| truth(b.active(&m)))
}

/// `sdp_remove_media(type)`: 1 when a section went, else -1.
fn remove_media(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let m = args.str(ctx, 0).into_owned();
    edit(ctx, |b| {
        truth(b.remove_sections(|b, s| b.media(s).eq_ignore_ascii_case(&m)) > 0)
    })
}

fn with_transport(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let t = args.str(ctx, 0).into_owned();
    read(ctx, |b| {
        truth(
            b.sections
                .iter()
                .any(|s| b.transport(s).eq_ignore_ascii_case(&t)),
        )
    })
}

fn with_transport_like(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let t = args.str(ctx, 0).into_owned();
    read(ctx, |b| {
        truth(
            !t.is_empty()
                && b.sections
                    .iter()
                    .any(|s| b.transport(s).windows(t.len()).any(|w| w == t.as_slice())),
        )
    })
}

fn remove_transport(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let t = args.str(ctx, 0).into_owned();
    edit(ctx, |b| {
        truth(b.remove_sections(|b, s| b.transport(s).eq_ignore_ascii_case(&t)) > 0)
    })
}

/// `sdp_remove_line_by_prefix(prefix[, media])`: 1 (lines found or not), -1 without SDP.
fn remove_line_by_prefix(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (prefix, media) = (args.str(ctx, 0).into_owned(), media_arg(ctx, args));
    if prefix.is_empty() {
        return -1;
    }
    edit(ctx, |b| {
        b.remove_prefix(&prefix, media.as_deref());
        1
    })
}

/// `sdp_print(level)`: the body in the log; 1, -1 without SDP.
fn print(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let level = args.int(ctx, 0).unwrap_or(3);
    let Some(text) = sdp_text(ctx) else {
        return -1;
    };
    let lvl = match level {
        l if l <= -1 => log::Level::Error,
        0 => log::Level::Warn,
        1 | 2 => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(lvl, "sdp: {}", String::from_utf8_lossy(&text));
    1
}

fn write(ctx: &mut MsgCtx<'_>, args: &Args, value: Vec<u8>) -> i32 {
    let Some(Arg::Pv(pv)) = args.get(0) else {
        return -1;
    };
    truth(ctx.write_pv(pv, Value::owned(value)).is_ok())
}

/// `sdp_get(avp)`: the body into the variable; 1, -2 without SDP.
fn get(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(text) = sdp_text(ctx) else {
        return -2;
    };
    write(ctx, args, text.to_vec())
}

/// `sdp_get_line_startswith(avp, prefix)`: the first line starting with
/// `prefix`, without its line end; -1 none, -2 without SDP.
fn get_line_startswith(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let prefix = args.str(ctx, 1).into_owned();
    if prefix.is_empty() {
        return -1;
    }
    let Some(text) = sdp_text(ctx) else {
        return -2;
    };
    let line = text
        .split_inclusive(|&b| b == b'\n')
        .find(|l| l.starts_with(&prefix))
        .map(|l| l.strip_suffix(b"\r\n").unwrap_or(l).to_vec());
    match line {
        Some(l) => write(ctx, args, l),
        None => -1,
    }
}

/// `sdp_transport(avp)`: the transport every `m=` line shares; 1, -2 when
/// they differ, -1 without SDP.
fn transport(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(text) = sdp_text(ctx) else {
        return -1;
    };
    let b = Body::parse(&text);
    let mut common: Option<Vec<u8>> = None;
    for s in &b.sections {
        let t = b.transport(s);
        match &common {
            Some(c) if !c.eq_ignore_ascii_case(t) => return -2,
            Some(_) => {}
            None => common = Some(t.to_vec()),
        }
    }
    match common {
        Some(t) => write(ctx, args, t),
        None => 1,
    }
}

/// `sdp_content([sloppy])`: the message has an SDP body. Sloppy: a body,
/// and Content-Type absent, `application/sdp`, or `multipart/mixed` with an
/// `application/sdp` part.
fn content(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if args.is_empty() {
        return truth(sdp_text(ctx).is_some());
    }
    let msg = ctx.msg;
    let body = msg.body();
    if body.is_empty() {
        return -1;
    }
    let Some(ct) = msg.header_value(HeaderName::ContentType) else {
        return 1;
    };
    let mime = ct.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
    if mime.eq_ignore_ascii_case(b"application/sdp") {
        return 1;
    }
    if mime.eq_ignore_ascii_case(b"multipart/mixed") {
        let needle = b"application/sdp";
        return truth(
            body.windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle)),
        );
    }
    -1
}

/// `sdp_with_ice()`: the body has an `a=candidate` attribute.
fn with_ice(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let body = match ctx.edits.new_body() {
        Some(b) => b.clone(),
        None => ctx.msg.buf().slice_ref(ctx.msg.body()),
    };
    let needle = b"a=candidate";
    truth(body.windows(needle.len()).any(|w| w == needle))
}

/// The variable argument must be writable, bare or quoted (`"$avp(x)"`).
fn fixup_out(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Fmt(f)) = args.get(0) {
        if let [FormatPart::Pv(pv)] = f.parts.as_slice() {
            args.0[0] = Arg::Pv(pv.clone());
        }
    }
    match args.get(0) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err("argument 1 must be a writable variable".into()),
    }
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: RouteMask::ANY,
            fixup: $fixup,
            call: $call,
        }
    };
}

/// The sdpops module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "sdpops",
    aliases: &[],
    functions: &[
        f!("sdp_remove_codecs_by_id", 1, 2, None, remove_codecs_by_id),
        f!(
            "sdp_remove_codecs_by_name",
            1,
            2,
            None,
            remove_codecs_by_name
        ),
        f!("sdp_keep_codecs_by_id", 1, 2, None, keep_codecs_by_id),
        f!("sdp_keep_codecs_by_name", 1, 2, None, keep_codecs_by_name),
        f!("sdp_with_codecs_by_id", 1, 1, None, with_codecs_by_id),
        f!("sdp_with_codecs_by_name", 1, 1, None, with_codecs_by_name),
        f!("sdp_with_media", 1, 1, None, with_media),
        f!("sdp_with_active_media", 1, 1, None, with_active_media),
        f!("sdp_remove_media", 1, 1, None, remove_media),
        f!("sdp_with_transport", 1, 1, None, with_transport),
        f!("sdp_with_transport_like", 1, 1, None, with_transport_like),
        f!("sdp_remove_transport", 1, 1, None, remove_transport),
        f!("sdp_transport", 1, 1, Some(fixup_out), transport),
        f!(
            "sdp_remove_line_by_prefix",
            1,
            2,
            None,
            remove_line_by_prefix
        ),
        f!("sdp_print", 1, 1, None, print),
        f!("sdp_get", 1, 1, Some(fixup_out), get),
        f!(
            "sdp_get_line_startswith",
            2,
            2,
            Some(fixup_out),
            get_line_startswith
        ),
        f!("sdp_content", 0, 1, None, content),
        f!("sdp_with_ice", 0, 0, None, with_ice),
    ],
    params: &[],
    always: false,
};
