//! [`Via`]: one `via-parm` of a Via header (RFC 3261 §20.42, §25.1), with
//! `received`/`rport` (RFC 3581) and `alias` (RFC 5923).
//!
//! Besides the values, a view records where things lie (offsets into the
//! header value) so that an edit can add `;received=` or fill `rport=` without
//! parsing again.

use std::net::IpAddr;
use std::ops::Range;

use super::error::{ErrorKind, ParseError, Result};
use super::host::{Host, HostAt};
use super::packet::Proto;
use super::scan::{self, Param, Params, SplitValues};

/// The `rport` parameter (RFC 3581 §3, §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rport {
    /// No `rport` parameter.
    Absent,
    /// `;rport` with no value: the client asks the server to fill it in.
    Empty,
    /// `;rport=N`.
    Value(u16),
}

/// One Via value: `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    protocol: &'a [u8],
    version: &'a [u8],
    transport: &'a [u8],
    host: Host<'a>,
    host_raw: &'a [u8],
    port: Option<u16>,
    sent_by: (usize, usize),
    params: &'a [u8],
    params_start: usize,
    /// Whether the parameter list is `;name[=value]` items back to back,
    /// with no white space and no quoted value: then [`Via::param`] splits
    /// it on `;` instead of running the general scanner again.
    plain_params: bool,
    span: (usize, usize),
    branch: Option<&'a [u8]>,
    received: Option<&'a [u8]>,
    rport: Rport,
    /// Where the first `rport` parameter lies (see [`Via::rport_range`]).
    rport_range: Option<(usize, usize)>,
    maddr: Option<&'a [u8]>,
    ttl: Option<u8>,
    alias: bool,
}

/// The branch prefix of RFC 3261 transactions (§8.1.1.7).
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

impl<'a> Via<'a> {
    /// Parses one via-parm (surrounding LWS allowed).
    ///
    /// LWS is allowed around `/` and `:` (RFC 3261 §25.1 `SLASH`, `COLON`), and a
    /// trailing `(comment)` (RFC 2543 allowed one) is skipped.
    pub fn parse(v: &'a [u8]) -> Result<Via<'a>> {
        Via::parse_in(v, 0, v.len())
    }

    /// Parses `src[start..end]`, reporting every offset relative to `src`.
    pub fn parse_in(src: &'a [u8], start: usize, end: usize) -> Result<Via<'a>> {
        let v = src.get(..end).unwrap_or_default();
        // The common shape first; it gives what the general parser gives.
        if let Some(via) = Via::parse_plain(v, start) {
            if via.span.1 == v.len() {
                return Ok(via);
            }
        }
        Via::parse_general(v, start)
    }

    /// The first via-parm of a Via header value, as [`vias`]`(value).next()`
    /// gives it, and where the next via-parm starts when that is known
    /// already: `Some(None)` if none follows, `Some(Some(i))` if a comma ends
    /// the first one and the next starts at `value[i]`, `None` when the
    /// general parser read the first one (then it was not looked for).
    #[allow(clippy::type_complexity)]
    pub fn first(value: &'a [u8]) -> Option<(Result<Via<'a>>, Option<Option<usize>>)> {
        if let Some(via) = Via::parse_plain(value, 0) {
            let stop = via.span.1;
            if stop == value.len() {
                return Some((Ok(via), Some(None)));
            }
            // parse_plain stops only at the end or at a comma.
            let next = scan::skip_lws(value, stop + 1);
            if next < value.len() && value.get(next) != Some(&b',') {
                return Some((Ok(via), Some(Some(next))));
            }
        }
        let (off, item) = scan::split_values(value).with_comments().next()?;
        let end = off + item.len();
        Some((Via::parse_general(value.get(..end)?, off), None))
    }

    /// The fast path of [`Via::parse_in`] and [`Via::first`]: a via-parm that
    /// starts at `v[start]` (after SP/HTAB) and is written the common way,
    /// `SIP/2.0/transport SP host[:port]` then `;name[=value]` parameters
    /// back to back (token names, unquoted values), up to the end of `v` or
    /// a comma. Returns what the general parser gives for that via-parm and
    /// where it stopped (`v.len()` or the comma); `None` for anything else,
    /// a bad host, port or known parameter included (the general parser then
    /// reports it). It stops where its span ends.
    fn parse_plain(v: &'a [u8], start: usize) -> Option<Via<'a>> {
        let mut s = start;
        while matches!(v.get(s), Some(b' ' | b'\t')) {
            s += 1;
        }
        let proto: &[u8; 8] = v.get(s..s + 8)?.try_into().ok()?;
        if !is_sip_2_0(proto) {
            return None;
        }
        let t = s + 8;
        let t_end = scan::token_end(v, t);
        let mut host_start = t_end;
        while matches!(v.get(host_start), Some(b' ' | b'\t')) {
            host_start += 1;
        }
        if t_end == t || host_start == t_end {
            return None;
        }
        let host_end = if v.get(host_start) == Some(&b'[') {
            let inner = host_start + 1;
            let close = inner
                + v.get(inner..)?
                    .iter()
                    .position(|&b| !(b.is_ascii_hexdigit() || b == b':' || b == b'.'))?;
            if v.get(close) != Some(&b']') {
                return None;
            }
            close + 1
        } else {
            // Host names and IPv4 addresses are tokens; Host::parse checks them.
            scan::token_end(v, host_start)
        };
        let host_raw = v.get(host_start..host_end)?;
        let host = Host::parse(host_raw).ok()?;
        let mut sent_by_end = host_end;
        let mut port = None;
        if v.get(host_end) == Some(&b':') {
            let (n, value) = scan::leading_port(v.get(host_end + 1..)?);
            port = Some(value?);
            sent_by_end = host_end + 1 + n;
        }
        let mut known = Known {
            next: sent_by_end,
            plain: true,
            ..Known::default()
        };
        let mut i = sent_by_end;
        while v.get(i) == Some(&b';') {
            let name_end = scan::token_end(v, i + 1);
            if name_end == i + 1 {
                return None;
            }
            let (mut end, mut token) = (name_end, false);
            let mut value = None;
            if v.get(name_end) == Some(&b'=') {
                (end, token) = scan::gen_value_run(v, name_end + 1);
                if end == name_end + 1 {
                    return None;
                }
                value = v.get(name_end + 1..end);
            }
            // Plain by construction: `;name[=value]` right after the last one.
            known.read_plain(
                Param {
                    name: v.get(i + 1..name_end)?,
                    value,
                    quoted: false,
                    start: i,
                    end,
                },
                token,
            );
            i = end;
        }
        if known.error.is_some() || !matches!(v.get(i), None | Some(b',')) {
            return None;
        }
        let via = Via {
            protocol: &proto[..3],
            version: &proto[4..7],
            transport: v.get(t..t_end)?,
            host,
            host_raw,
            port,
            sent_by: (host_start, sent_by_end),
            params: v.get(sent_by_end..i)?,
            params_start: sent_by_end,
            plain_params: known.plain,
            span: (s, i),
            branch: known.branch,
            received: known.received,
            rport: known.rport.unwrap_or(Rport::Absent),
            rport_range: known.rport_range,
            maddr: known.maddr,
            ttl: known.ttl,
            alias: known.alias,
        };
        Some(via)
    }

    /// The general parser: any via-parm of RFC 3261 §25.1 in `v[start..]`.
    fn parse_general(v: &'a [u8], start: usize) -> Result<Via<'a>> {
        let bad = |at| ParseError::new(ErrorKind::BadVia, at);
        let (a, b) = scan::trim_lws_range(v.get(start..).unwrap_or_default());
        let (s, e) = (start + a, start + b);
        let v = v.get(..e).unwrap_or_default();

        // sent-protocol = protocol-name SLASH protocol-version SLASH transport
        let mut i = s;
        let mut fields = [&b""[..]; 3];
        for (n, field) in fields.iter_mut().enumerate() {
            if n > 0 {
                i = scan::skip_lws(v, i);
                if v.get(i) != Some(&b'/') {
                    return Err(bad(i));
                }
                i = scan::skip_lws(v, i + 1);
            }
            let end = scan::token_end(v, i);
            if end == i {
                return Err(bad(i));
            }
            *field = v.get(i..end).unwrap_or_default();
            i = end;
        }
        let [protocol, version, transport] = fields;
        // Only SIP/2.0 is spoken (RFC 3261 §7.1; the protocol name is a
        // token compared without case). Kamailio's Via parser refuses any
        // other version too, so a request whose top Via says `SIP/3.0` is
        // dropped there before the script.
        if !protocol.eq_ignore_ascii_case(b"SIP") {
            return Err(bad(s));
        }
        if version != b"2.0" {
            return Err(bad(s + protocol.len()));
        }

        // LWS sent-by
        let host_start = scan::skip_lws(v, i);
        if host_start == i {
            return Err(bad(i));
        }
        let rest = v.get(host_start..).unwrap_or_default();
        let host_len = if rest.first() == Some(&b'[') {
            rest.iter()
                .position(|&b| b == b']')
                .map(|n| n + 1)
                .ok_or(ParseError::new(ErrorKind::BadHost, e))?
        } else {
            rest.iter()
                .position(|&b| {
                    matches!(b, b':' | b';' | b',' | b' ' | b'\t' | b'\r' | b'\n' | b'(')
                })
                .unwrap_or(rest.len())
        };
        let host_raw = rest.get(..host_len).unwrap_or_default();
        if host_raw.is_empty() {
            return Err(ParseError::new(ErrorKind::BadHost, host_start));
        }
        let host = Host::parse(host_raw).map_err(|e| e.shifted(host_start))?;
        let mut sent_by_end = host_start + host_len;
        let mut port = None;
        let colon = scan::skip_lws(v, sent_by_end);
        if v.get(colon) == Some(&b':') {
            let p = scan::skip_lws(v, colon + 1);
            let (n, value) = scan::leading_port(v.get(p..).unwrap_or_default());
            port = Some(value.ok_or(ParseError::new(ErrorKind::BadPort, p))?);
            sent_by_end = p + n;
        }

        // *( SEMI via-params ) [ comment ], read once: the known parameters
        // are picked up while the list is checked. A bad known parameter is
        // reported only once the list and what follows it are known to be
        // well-formed, so the error is the one a check-then-read gives.
        let mut known = Known {
            next: sent_by_end,
            plain: true,
            ..Known::default()
        };
        let params_end = scan::scan_params_each(v, sent_by_end, |p| known.read(p))?;
        let mut tail = scan::skip_lws(v, params_end);
        if v.get(tail) == Some(&b'(') {
            tail = scan::skip_comment(v, tail).ok_or(bad(tail))?;
            tail = scan::skip_lws(v, tail);
        }
        if tail < e {
            return Err(bad(tail));
        }

        if let Some(at) = known.error {
            return Err(ParseError::new(ErrorKind::BadVia, at));
        }
        let params = v.get(sent_by_end..params_end).unwrap_or_default();
        Ok(Via {
            protocol,
            version,
            transport,
            host,
            host_raw,
            port,
            sent_by: (host_start, sent_by_end),
            params,
            params_start: sent_by_end,
            plain_params: known.plain,
            span: (s, e),
            branch: known.branch,
            received: known.received,
            rport: known.rport.unwrap_or(Rport::Absent),
            rport_range: known.rport_range,
            maddr: known.maddr,
            ttl: known.ttl,
            alias: known.alias,
        })
    }

    /// The protocol name (`SIP`).
    pub fn protocol(&self) -> &'a [u8] {
        self.protocol
    }

    /// The protocol version (`2.0`).
    pub fn version(&self) -> &'a [u8] {
        self.version
    }

    /// The transport as written (`UDP`, or an unknown one such as `UNKNOWN`).
    pub fn transport(&self) -> &'a [u8] {
        self.transport
    }

    /// The transport, if it is one ringsip knows (case-insensitive).
    pub fn proto(&self) -> Option<Proto> {
        Proto::from_name(self.transport)
    }

    /// The sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// The sent-by host as written (brackets included for IPv6).
    pub fn host_raw(&self) -> &'a [u8] {
        self.host_raw
    }

    /// The sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }

    /// Whether the branch starts with the RFC 3261 magic cookie `z9hG4bK`
    /// (§8.1.1.7; compared case-sensitively, as written in the RFC).
    pub fn has_magic_cookie(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter as written.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.received
    }

    /// The `received` address, bare or in brackets (RFC 4475 §4.12/4.13 show both).
    pub fn received_ip(&self) -> Option<IpAddr> {
        let raw = self.received?;
        let raw = raw
            .strip_prefix(b"[")
            .and_then(|r| r.strip_suffix(b"]"))
            .unwrap_or(raw);
        super::host::parse_ip_bytes(raw)
    }

    /// The `rport` parameter (RFC 3581).
    pub fn rport(&self) -> Rport {
        self.rport
    }

    /// The `maddr` parameter as written.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.maddr
    }

    /// The `ttl` parameter (checked to be 0..=255).
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// Whether the `alias` parameter is present (RFC 5923 connection reuse).
    pub fn alias(&self) -> bool {
        self.alias
    }

    /// The parameters as written, from the first `;` (empty if none).
    pub fn params_raw(&self) -> &'a [u8] {
        self.params
    }

    /// The parameters; their `start`/`end` are relative to [`Via::params_range`]`.start`.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        if !self.plain_params {
            return self.params().get(name);
        }
        // Checked when parsed and plain: each item is `;name[=value]`.
        scan::plain_param(self.params, |n| n.eq_ignore_ascii_case(name))
    }

    /// Where the whole via-parm lies (LWS-trimmed, comment included).
    pub fn span(&self) -> Range<usize> {
        self.span.0..self.span.1
    }

    /// Where `host[:port]` lies.
    pub fn sent_by_range(&self) -> Range<usize> {
        self.sent_by.0..self.sent_by.1
    }

    /// Where the parameters lie; the end is where a new `;received=…` goes.
    pub fn params_range(&self) -> Range<usize> {
        self.params_start..self.params_start + self.params.len()
    }

    /// Where the first parameter called `name` lies, from its `;` to the end of
    /// its value: an empty `;rport` is filled by inserting `=N` at the end.
    pub fn param_range(&self, name: &[u8]) -> Option<Range<usize>> {
        let p = self.param(name)?;
        Some(self.params_start + p.start..self.params_start + p.end)
    }

    /// `param_range(b"rport")`, recorded when parsed (no scan of the list).
    pub fn rport_range(&self) -> Option<Range<usize>> {
        self.rport_range.map(|(a, b)| a..b)
    }
}

/// `N` (at most 8) bytes as one little-endian word, zero-padded.
#[inline]
fn word<const N: usize>(b: [u8; N]) -> u64 {
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&b);
    u64::from_le_bytes(w)
}

/// Whether `name` is `lower` (lower-case ASCII letters, at most 8) without
/// regard to case: setting bit 5 of a byte gives a given lower-case letter
/// only from that letter or its upper case.
#[inline]
pub(crate) fn letters_eq<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    debug_assert!(N <= 8 && lower.iter().all(u8::is_ascii_lowercase));
    <[u8; N]>::try_from(name).is_ok_and(|n| word(n) | word([0x20; N]) == word(*lower))
}

/// Whether `proto` is `SIP/2.0/` without regard to case: setting bit 5 of
/// `S`, `I` and `P` gives `s`, `i` and `p` only from either case of those
/// letters; the rest is compared exactly.
#[inline]
pub(crate) fn is_sip_2_0(proto: &[u8; 8]) -> bool {
    u64::from_le_bytes(*proto) | u64::from_le_bytes([0x20, 0x20, 0x20, 0, 0, 0, 0, 0])
        == u64::from_le_bytes(*b"sip/2.0/")
}

/// The parameters RFC 3261, 3581 and 5923 define, as the list is scanned
/// (first occurrence wins; reading stops at the first bad one).
#[derive(Default)]
struct Known<'a> {
    branch: Option<&'a [u8]>,
    received: Option<&'a [u8]>,
    maddr: Option<&'a [u8]>,
    rport: Option<Rport>,
    rport_range: Option<(usize, usize)>,
    ttl: Option<u8>,
    alias: bool,
    /// Where the first bad known parameter starts (its `;`).
    error: Option<usize>,
    /// Where the next parameter starts if the list is plain (see [`Via::param`]).
    next: usize,
    /// Whether every parameter so far was `;name[=value]` right after the previous one.
    plain: bool,
}

impl<'a> Known<'a> {
    fn read(&mut self, p: Param<'a>) {
        let tight = 1 + p.name.len() + p.value.map_or(0, |v| 1 + v.len());
        self.plain &= !p.quoted && p.start == self.next && p.end - p.start == tight;
        self.next = p.end;
        if self.error.is_some() {
            return;
        }
        if let Err(()) = self.take(&p, None) {
            self.error = Some(p.start);
        }
    }

    /// [`Known::read`] for the fast path of [`Via::parse_plain`]: `p` is an
    /// unquoted `;name[=value]` right after the previous parameter (so the
    /// list stays plain), and `token` tells whether its value is a token.
    #[inline]
    fn read_plain(&mut self, p: Param<'a>, token: bool) {
        self.next = p.end;
        if self.error.is_some() {
            return;
        }
        if let Err(()) = self.take(&p, Some(token)) {
            self.error = Some(p.start);
        }
    }

    /// `value_is_token`: whether the value is a token, when the caller knows.
    #[inline]
    fn take(&mut self, p: &Param<'a>, value_is_token: Option<bool>) -> std::result::Result<(), ()> {
        // None of these takes a quoted value.
        let token = || p.value.filter(|v| !p.quoted && !v.is_empty()).ok_or(());
        // Names differ in length or first letter: check those before comparing.
        match p.name.len() {
            6 if letters_eq(p.name, b"branch") && self.branch.is_none() => {
                let v = token()?;
                if !value_is_token.unwrap_or_else(|| scan::is_token(v)) {
                    return Err(());
                }
                self.branch = Some(v);
            }
            8 if letters_eq(p.name, b"received") && self.received.is_none() => {
                self.received = Some(token()?);
            }
            5 if letters_eq(p.name, b"maddr") && self.maddr.is_none() => {
                self.maddr = Some(token()?)
            }
            5 if letters_eq(p.name, b"rport") && self.rport.is_none() => {
                self.rport_range = Some((p.start, p.end));
                self.rport = Some(match p.value {
                    None => Rport::Empty,
                    Some(v) => {
                        let port = scan::parse_u32(v).ok().and_then(|n| u16::try_from(n).ok());
                        Rport::Value(port.filter(|_| !p.quoted).ok_or(())?)
                    }
                });
            }
            3 if letters_eq(p.name, b"ttl") && self.ttl.is_none() => {
                // ttl = 1*3DIGIT ; 0 to 255
                let v = token()?;
                let n = scan::parse_u32(v)
                    .ok()
                    .filter(|_| v.len() <= 3)
                    .and_then(|n| u8::try_from(n).ok());
                self.ttl = Some(n.ok_or(())?);
            }
            5 if letters_eq(p.name, b"alias") => self.alias = true,
            _ => {}
        }
        Ok(())
    }
}

/// A parsed [`Via`] kept without a borrow: its slices as ranges of the text
/// it was parsed from, so a [`super::Message`] can keep its top Via parsed
/// and hand it out again ([`ViaAt::view`]) without parsing twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViaAt {
    protocol: (u32, u32),
    version: (u32, u32),
    transport: (u32, u32),
    host: HostAt,
    host_raw: (u32, u32),
    port: Option<u16>,
    sent_by: (usize, usize),
    params: (u32, u32),
    params_start: usize,
    plain_params: bool,
    span: (usize, usize),
    branch: Option<(u32, u32)>,
    received: Option<(u32, u32)>,
    rport: Rport,
    rport_range: Option<(usize, usize)>,
    maddr: Option<(u32, u32)>,
    ttl: Option<u8>,
    alias: bool,
}

impl ViaAt {
    /// Records `via`, parsed from `src` (every slice of `via` lies in `src`).
    pub fn new(src: &[u8], via: &Via<'_>) -> ViaAt {
        let at = |s: &[u8]| scan::span_in(src, s);
        ViaAt {
            protocol: at(via.protocol),
            version: at(via.version),
            transport: at(via.transport),
            host: HostAt::of(&via.host),
            host_raw: at(via.host_raw),
            port: via.port,
            sent_by: via.sent_by,
            params: at(via.params),
            params_start: via.params_start,
            plain_params: via.plain_params,
            span: via.span,
            branch: via.branch.map(at),
            received: via.received.map(at),
            rport: via.rport,
            rport_range: via.rport_range,
            maddr: via.maddr.map(at),
            ttl: via.ttl,
            alias: via.alias,
        }
    }

    /// [`Via::branch`], as a range of the text it was parsed from.
    pub(crate) fn branch_range(&self) -> Option<Range<usize>> {
        self.branch.map(|(a, b)| a as usize..b as usize)
    }

    /// [`Via::sent_by_range`].
    pub(crate) fn sent_by_range(&self) -> Range<usize> {
        self.sent_by.0..self.sent_by.1
    }

    /// [`Via::transport`], as a range of the text it was parsed from.
    pub(crate) fn transport_range(&self) -> Range<usize> {
        self.transport.0 as usize..self.transport.1 as usize
    }

    /// [`Via::host`]'s address, if it is one.
    pub(crate) fn host_ip(&self) -> Option<IpAddr> {
        match self.host {
            HostAt::Name => None,
            HostAt::V4(a) => Some(IpAddr::V4(a)),
            HostAt::V6(a) => Some(IpAddr::V6(a)),
        }
    }

    /// [`Via::port`].
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }

    /// [`Via::rport`].
    pub(crate) fn rport(&self) -> Rport {
        self.rport
    }

    /// [`Via::rport_range`].
    pub(crate) fn rport_range(&self) -> Option<Range<usize>> {
        self.rport_range.map(|(a, b)| a..b)
    }

    /// Whether [`Via::received`] is there.
    pub(crate) fn has_received(&self) -> bool {
        self.received.is_some()
    }

    /// [`Via::params_range`]`.end`.
    pub(crate) fn params_end(&self) -> usize {
        self.params_start + (self.params.1 - self.params.0) as usize
    }

    /// The view again, over the same `src` it was recorded from.
    pub fn view<'a>(&self, src: &'a [u8]) -> Via<'a> {
        let get = |(a, b): (u32, u32)| src.get(a as usize..b as usize).unwrap_or_default();
        let host_raw = get(self.host_raw);
        Via {
            protocol: get(self.protocol),
            version: get(self.version),
            transport: get(self.transport),
            host: self.host.with_name(host_raw),
            host_raw,
            port: self.port,
            sent_by: self.sent_by,
            params: get(self.params),
            params_start: self.params_start,
            plain_params: self.plain_params,
            span: self.span,
            branch: self.branch.map(get),
            received: self.received.map(get),
            rport: self.rport,
            rport_range: self.rport_range,
            maddr: self.maddr.map(get),
            ttl: self.ttl,
            alias: self.alias,
        }
    }
}

/// Iterates the comma-separated via-parms of a Via header value (commas inside
/// comments do not split); offsets are relative to `value`.
pub fn vias(value: &[u8]) -> Vias<'_> {
    Vias {
        value,
        items: scan::split_values(value).with_comments(),
    }
}

/// Iterator returned by [`vias`].
#[derive(Clone, Debug)]
pub struct Vias<'a> {
    value: &'a [u8],
    items: SplitValues<'a>,
}

impl<'a> Iterator for Vias<'a> {
    type Item = Result<Via<'a>>;

    fn next(&mut self) -> Option<Result<Via<'a>>> {
        let (off, item) = self.items.next()?;
        Some(Via::parse_in(self.value, off, off + item.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn via(s: &str) -> Via<'_> {
        Via::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (ErrorKind, usize) {
        match Via::parse(s.as_bytes()) {
            Ok(v) => panic!("{s} parsed: {v:?}"),
            Err(e) => (e.kind, e.offset),
        }
    }

    #[test]
    fn only_sip_2_0_is_a_via_version() {
        // Kamailio 5.6 drops a request whose top Via says another version
        // (checked live: SIP/3.0 and SIP/2.1 dropped, sip/2.0/udp and an
        // unknown transport accepted).
        for text in [
            "SIP/3.0/UDP h;branch=z9hG4bK1",
            "SIP/2.1/UDP h",
            "SIP/2.00/UDP h",
            "HTTP/2.0/UDP h",
            "SIP / 3.0 / UDP h",
        ] {
            assert_eq!(err(text).0, ErrorKind::BadVia, "{text}");
        }
        for text in ["sip/2.0/udp h", "SIP/2.0/XYZ h", "SIP / 2.0 / UDP h"] {
            assert_eq!(via(text).version(), b"2.0", "{text}");
        }
    }

    proptest! {
        /// A recorded Via gives back the very view it recorded.
        #[test]
        fn via_at_gives_the_view_back(
            host in prop_oneof!["[a-z]{1,6}\\.com", "10\\.0\\.[0-9]{1,2}\\.1", "\\[2001:db8::[0-9]{1,2}\\]"],
            params in "(;branch=z9hG4bK[a-z0-9]{1,6}|;rport|;rport=5|;received=10.0.0.2|;maddr=h|;ttl=9|;alias|;x=\\\"y\\\"| ;lr){0,5}",
            lead in "( |\r\n )?",
        ) {
            let text = format!("{lead}SIP/2.0/UDP {host}:5060{params}");
            let src = text.as_bytes();
            if let Ok(v) = Via::parse(src) {
                let at = ViaAt::new(src, &v);
                prop_assert_eq!(at.view(src), v);
                // What is read without a view is what the view gives.
                prop_assert_eq!(at.branch_range().map(|r| &src[r]), v.branch());
                prop_assert_eq!(at.sent_by_range(), v.sent_by_range());
                prop_assert_eq!(&src[at.transport_range()], v.transport());
                prop_assert_eq!(at.host_ip(), v.host().ip());
                prop_assert_eq!((at.port(), at.rport(), at.rport_range()), (v.port(), v.rport(), v.rport_range()));
                prop_assert_eq!((at.has_received(), at.params_end()), (v.received().is_some(), v.params_range().end));
            }
        }

        /// The split-on-`;` lookup of a plain list finds what the general
        /// parameter scanner finds, on plain lists and on any other.
        #[test]
        fn param_lookup_matches_the_params_scanner(
            params in "(;branch=z9hG4bK[a-z0-9]{1,6}|;rport|;RPORT=5|;received=10.0.0.2|;x=\\\"y;z\\\"|;r|; rport|;rport =1|;a= b| ;lr|;=|;rport=)*",
            name in "(branch|rport|received|x|lr|r|z|a)",
        ) {
            let text = format!("SIP/2.0/UDP h:5060{params}");
            if let Ok(v) = Via::parse(text.as_bytes()) {
                prop_assert_eq!(v.param(name.as_bytes()), v.params().get(name.as_bytes()));
            }
        }
    }

    #[test]
    fn plain_via() {
        let s = "SIP/2.0/UDP erlang.bell-telephone.com:5060;branch=z9hG4bK87asdks7";
        let v = via(s);
        assert_eq!(
            (v.protocol(), v.version(), v.transport()),
            (&b"SIP"[..], &b"2.0"[..], &b"UDP"[..])
        );
        assert_eq!(v.proto(), Some(Proto::Udp));
        assert_eq!(v.host(), Host::Name(b"erlang.bell-telephone.com"));
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.branch(), Some(&b"z9hG4bK87asdks7"[..]));
        assert!(v.has_magic_cookie());
        assert_eq!(
            (v.received(), v.rport(), v.maddr(), v.ttl(), v.alias()),
            (None, Rport::Absent, None, None, false)
        );
        assert_eq!(&s[v.sent_by_range()], "erlang.bell-telephone.com:5060");
        assert_eq!(&s[v.params_range()], ";branch=z9hG4bK87asdks7");
        assert_eq!(v.span(), 0..s.len());
    }

    #[test]
    fn rfc3261_spacing_example() {
        // §20.42: LWS around `/` and `:`, and before `;`.
        let s = "SIP / 2.0 / UDP first.example.com: 4000;ttl=16\r\n ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1";
        let v = via(s);
        assert_eq!(v.transport(), b"UDP");
        assert_eq!(v.host_raw(), b"first.example.com");
        assert_eq!(v.port(), Some(4000));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.maddr(), Some(&b"224.2.0.1"[..]));
        assert_eq!(v.branch(), Some(&b"z9hG4bKa7c6a8dlze.1"[..]));
        assert_eq!(&s[v.sent_by_range()], "first.example.com: 4000");
        // RFC 4475 §3.1.1.1 wsinv: folded lines inside the sent-protocol.
        let v = via("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw");
        assert_eq!(v.host(), Host::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert!(!v.has_magic_cookie());
    }

    #[test]
    fn received_and_rport_rfc3581() {
        let s = "SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff";
        let v = via(s);
        assert_eq!(v.received(), Some(&b"192.0.2.1"[..]));
        assert_eq!(
            v.received_ip(),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(v.rport(), Rport::Value(9988));
        assert_eq!(&s[v.param_range(b"rport").unwrap()], ";rport=9988");

        let s = "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff";
        let v = via(s);
        assert_eq!(v.rport(), Rport::Empty);
        let r = v.param_range(b"RPORT").unwrap();
        assert_eq!(&s[r.clone()], ";rport");
        // Filling it in is an insertion at the end of that range.
        let filled = format!("{}=5060{}", &s[..r.end], &s[r.end..]);
        assert_eq!(via(&filled).rport(), Rport::Value(5060));
        // Adding received is an insertion at the end of the parameters.
        let end = v.params_range().end;
        let added = format!("{};received=192.0.2.1{}", &s[..end], &s[end..]);
        assert_eq!(via(&added).received(), Some(&b"192.0.2.1"[..]));

        assert_eq!(err("SIP/2.0/UDP h;rport=x"), (ErrorKind::BadVia, 13));
        assert_eq!(err("SIP/2.0/UDP h;rport=65536"), (ErrorKind::BadVia, 13));
        assert_eq!(err("SIP/2.0/UDP h;rport=\"1\""), (ErrorKind::BadVia, 13));
    }

    #[test]
    fn ipv6_sent_by_and_received_rfc5118() {
        let v = via(
            "SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;received=[2001:db8::9:255]",
        );
        assert_eq!(
            v.host(),
            Host::V6("2001:db8::9:1".parse::<Ipv6Addr>().unwrap())
        );
        assert_eq!(v.host_raw(), b"[2001:db8::9:1]");
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.received_ip(), Some("2001:db8::9:255".parse().unwrap()));
        let v = via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3");
        assert_eq!(v.received(), Some(&b"2001:db8::9:255"[..]));
        assert_eq!(v.received_ip(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.port(), None);
        assert_eq!(
            err("SIP/2.0/UDP [2001:db8::9:1;branch=x"),
            (ErrorKind::BadHost, 35)
        );
        assert_eq!(err("SIP/2.0/UDP 2001:db8::1"), (ErrorKind::BadHost, 12));
    }

    #[test]
    fn transports_rfc4475() {
        // §3.1.1.9 transports: an unknown transport is still a valid Via.
        let vs: Vec<_> = vias(b"SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw, SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf, SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj, SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en, SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee")
            .collect::<Result<_>>()
            .unwrap();
        let protos: Vec<_> = vs.iter().map(|v| v.proto()).collect();
        assert_eq!(
            protos,
            vec![
                Some(Proto::Udp),
                Some(Proto::Sctp),
                Some(Proto::Tls),
                None,
                Some(Proto::Tcp)
            ]
        );
        assert_eq!(vs[3].transport(), b"UNKNOWN");
        assert_eq!(via("SIP/2.0/wss h").proto(), Some(Proto::Wss));
    }

    #[test]
    fn comments_and_lists() {
        let value = b"SIP/2.0/UDP a.com;branch=z9hG4bK1 (comment, with comma (nested)) , SIP/2.0/TCP b.com:5061;alias";
        let vs: Vec<_> = vias(value).collect::<Result<_>>().unwrap();
        assert_eq!(vs.len(), 2);
        assert_eq!(vs[0].branch(), Some(&b"z9hG4bK1"[..]));
        assert_eq!(&value[vs[0].params_range()], b";branch=z9hG4bK1");
        assert_eq!(&value[vs[1].span()], b"SIP/2.0/TCP b.com:5061;alias");
        assert_eq!(&value[vs[1].sent_by_range()], b"b.com:5061");
        assert!(vs[1].alias());
        assert_eq!(vs[1].branch(), None);
        assert!(!vs[1].has_magic_cookie());
        assert!(via("SIP/2.0/UDP a.com (just a comment)")
            .params_raw()
            .is_empty());
        assert_eq!(
            err("SIP/2.0/UDP a.com;branch=x (unclosed"),
            (ErrorKind::BadVia, 27)
        );
        assert_eq!(
            err("SIP/2.0/UDP a.com (c) ;branch=x"),
            (ErrorKind::BadVia, 22)
        );
        let items: Vec<_> = vias(b"SIP/2.0/UDP a.com,,SIP/2.0/UDP b.com")
            .map(|r| r.map(|_| ()))
            .collect();
        assert_eq!(
            items,
            vec![Ok(()), Err(ParseError::new(ErrorKind::BadVia, 18)), Ok(())]
        );
    }

    #[test]
    fn malformed_vias() {
        assert_eq!(err(""), (ErrorKind::BadVia, 0));
        assert_eq!(err("SIP"), (ErrorKind::BadVia, 3));
        assert_eq!(err("SIP/2.0"), (ErrorKind::BadVia, 7));
        assert_eq!(err("SIP/2.0/"), (ErrorKind::BadVia, 8));
        assert_eq!(err("SIP/2.0/UDP"), (ErrorKind::BadVia, 11));
        assert_eq!(err("SIP/2.0/UDPhost.com"), (ErrorKind::BadVia, 19));
        assert_eq!(err("SIP//UDP h"), (ErrorKind::BadVia, 4));
        assert_eq!(err("SIP/2.0/UDP ;branch=x"), (ErrorKind::BadHost, 12));
        assert_eq!(err("SIP/2.0/UDP h:"), (ErrorKind::BadPort, 14));
        assert_eq!(err("SIP/2.0/UDP h:70000"), (ErrorKind::BadPort, 14));
        assert_eq!(err("SIP/2.0/UDP h:5060:5060"), (ErrorKind::BadVia, 18));
        assert_eq!(err("SIP/2.0/UDP h_1.com"), (ErrorKind::BadHost, 12));
        assert_eq!(err("SIP/2.0/UDP h x"), (ErrorKind::BadVia, 14));
        assert_eq!(err("SIP/2.0/UDP h;"), (ErrorKind::BadParam, 14));
        assert_eq!(err("SIP/2.0/UDP h;branch"), (ErrorKind::BadVia, 13));
        assert_eq!(
            err("SIP/2.0/UDP h;branch=\"z9hG4bK\""),
            (ErrorKind::BadVia, 13)
        );
        assert_eq!(err("SIP/2.0/UDP h;branch=a:b"), (ErrorKind::BadVia, 13));
        assert_eq!(err("SIP/2.0/UDP h;ttl=300"), (ErrorKind::BadVia, 13));
        assert_eq!(err("SIP/2.0/UDP h;received"), (ErrorKind::BadVia, 13));
        assert_eq!(err("SIP/2.0/UDP h, SIP/2.0/UDP i"), (ErrorKind::BadVia, 13));
    }

    #[test]
    fn first_occurrence_wins_and_case_is_ignored() {
        let v =
            via("SIP/2.0/UDP h;BRANCH=z9hG4bKa;branch=z9hG4bKb;Received=1.2.3.4;RPort=1;rport=2");
        assert_eq!(v.branch(), Some(&b"z9hG4bKa"[..]));
        assert_eq!(v.received(), Some(&b"1.2.3.4"[..]));
        assert_eq!(v.rport(), Rport::Value(1));
        // The cookie itself is case-sensitive.
        assert!(!via("SIP/2.0/UDP h;branch=Z9HG4BKa").has_magic_cookie());
        assert_eq!(
            via("SIP/2.0/UDP h;x=\"q;,\";branch=z9hG4bKz").branch(),
            Some(&b"z9hG4bKz"[..])
        );
    }

    /// Via header values of every shape: the common one and each way off it
    /// (case, white space, IPv6, ports, parameters with and without values,
    /// quoted and bad values, comments, several via-parms).
    fn via_values() -> impl Strategy<Value = String> {
        let pick = |v: &[&'static str]| prop::sample::select(v.to_vec());
        let host = prop_oneof![
            3 => "[a-zA-Z][a-zA-Z0-9-]{0,6}(\\.[a-zA-Z0-9]{1,5}){0,2}",
            3 => any::<Ipv4Addr>().prop_map(|a| a.to_string()),
            2 => any::<Ipv6Addr>().prop_map(|a| format!("[{a}]")),
            1 => pick(&["10.0.0.256", "h_1", "2001:db8::1", "[::1", "[::g]", "1.2.3", "[::1]x", "a..b", "-a", "a.-b", "[]"]).prop_map(str::to_owned),
        ];
        let port = prop_oneof![
            3 => Just(String::new()),
            3 => any::<u16>().prop_map(|p| format!(":{p}")),
            1 => pick(&[":", ":99999", ":0", ":05060", " :5060", ": 5060", ":5060x", ":65536", ":000000000065535"]).prop_map(str::to_owned),
        ];
        let param = prop_oneof![
            4 => "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{0,12}".prop_map(|b| format!(";branch={b}")),
            1 => "[a-z0-9]{1,6}".prop_map(|b| format!(";BRANCH={b}")),
            2 => any::<u16>().prop_map(|p| format!(";rport={p}")),
            2 => any::<Ipv4Addr>().prop_map(|a| format!(";received={a}")),
            1 => any::<Ipv6Addr>().prop_map(|a| format!(";received=[{a}]")),
            1 => any::<Ipv6Addr>().prop_map(|a| format!(";Received={a}")),
            1 => (0u16..400).prop_map(|t| format!(";ttl={t}")),
            4 => pick(&[
                ";rport", ";RPort", ";alias", ";lr", ";x", ";x=y", ";maddr=224.2.0.1", ";maddr=[::1]",
                ";i=0123456789abcdef", ";x=\"q;,\"", ";branch=\"z9hG4bK\"", "; lr", ";a =b", ";a= b",
                " ;lr", ";=", ";", ";branch=", ";branch=a:b", ";rport=x", ";rport=", ";rport=65536",
                ";ttl=0016", ";received", ";received=", ";tag=[x]", ";x=a:b]", "\r\n ;lr", ";br\u{e9}=1",
            ]).prop_map(str::to_owned),
        ];
        // Mostly the common shape, each part sometimes off it.
        let part = |common: &'static str, odd: &[&'static str]| prop_oneof![6 => Just(common), 1 => prop::sample::select(odd.to_vec())];
        let tail = prop_oneof![
            3 => Just(""),
            2 => Just(", SIP/2.0/UDP b;branch=z9hG4bKb"),
            1 => pick(&[
                " ", " (comment)", "(c, d)", ",", ", ", ",,", ",SIP/2.0/TCP [::1]:5;branch=z9hG4bKc",
                " , SIP/2.0/UDP c", ",\r\n SIP/2.0/UDP d", ",\"x\"", ", (c) SIP/2.0/UDP e", ",bad", "x",
            ]),
        ];
        (
            part("", &[" ", "\t", "\r\n ", "  "]),
            part(
                "SIP/2.0/",
                &[
                    "sip/2.0/",
                    "SiP/2.0/",
                    "SIP / 2.0 /",
                    "SIP/2.0 /",
                    "SIPX/2.0/",
                    "S1P/2.0/",
                    "SIP/20/",
                    "SIP/2.0/\r\n ",
                ],
            ),
            part(
                "UDP",
                &["udp", "Tcp", "TLS", "SCTP", "WS", "X-NEW", "", "U\"D"],
            ),
            part(" ", &["\t", "  ", "", "\r\n ", " \t"]),
            host,
            port,
            proptest::collection::vec(param, 0..5),
            tail,
        )
            .prop_map(|(lead, proto, transport, sp, host, port, params, tail)| {
                format!(
                    "{lead}{proto}{transport}{sp}{host}{port}{}{tail}",
                    params.concat()
                )
            })
    }

    proptest! {
        #![proptest_config(crate::proptest_config(2048))]

        /// The fast path reads what the general parser reads, field by field
        /// and offset by offset, wherever it answers; `parse_in` (fast path
        /// first) and the general parser agree on everything, errors included.
        #[test]
        fn fast_path_gives_the_general_parse(text in via_values()) {
            let v = text.as_bytes();
            if let Some(via) = Via::parse_plain(v, 0) {
                let stop = via.span().end;
                prop_assert!(stop == v.len() || v[stop] == b',', "{text:?}");
                prop_assert_eq!(Ok(via), Via::parse_general(&v[..stop], 0), "{:?}", text);
            }
            prop_assert_eq!(Via::parse_in(v, 0, v.len()), Via::parse_general(v, 0), "{:?}", text);
            for (off, item) in scan::split_values(v).with_comments() {
                let end = off + item.len();
                prop_assert_eq!(Via::parse_in(v, off, end), Via::parse_general(&v[..end], off));
            }
        }

        /// `Via::first` gives the first item of `vias`, and where it says the
        /// second via-parm starts, that is where `vias` finds it.
        #[test]
        fn first_is_the_first_of_vias(text in via_values()) {
            let v = text.as_bytes();
            let first = Via::first(v);
            prop_assert_eq!(first.map(|(via, _)| via), vias(v).next(), "{:?}", text);
            if let Some((via, Some(next))) = first {
                prop_assert!(via.is_ok());
                let second = scan::split_values(v).with_comments().nth(1).map(|(off, _)| off);
                prop_assert_eq!(next, second, "{:?}", text);
                if let Some(Ok(s)) = vias(v).nth(1) {
                    prop_assert_eq!(next, Some(s.span().start));
                }
            }
        }

        /// The recorded `rport` range is the one the parameter scan finds.
        #[test]
        fn rport_range_is_the_param_range(text in via_values()) {
            for via in vias(text.as_bytes()).flatten() {
                prop_assert_eq!(via.rport_range(), via.param_range(b"rport"));
                prop_assert_eq!(via.rport_range(), via.params().get(b"rport").map(|p| via.params_range().start + p.start..via.params_range().start + p.end));
            }
        }
    }

    /// Every prefix of some common Vias, and every one-byte substitution by a
    /// byte that matters to either parser: `parse_in` (fast path first) and
    /// the general parser agree.
    #[test]
    fn fast_path_agrees_on_every_edit_of_common_vias() {
        let seeds: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
            b" sip/2.0/tcp [2001:db8::1]:5061;RPORT=5;Received=::1;branch=z9hG4bKa",
            b"SIP/2.0/UDP h.example.com;branch=z9hG4bK1;ttl=16;maddr=[::1];alias;received=1.2.3.4",
            b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2861-1-0",
        ];
        let bytes = b" \t\r\n;,=:\"()[]<>a0-~\xff/SIPsip.%_9";
        let check = |v: &[u8]| {
            assert_eq!(
                Via::parse_in(v, 0, v.len()),
                Via::parse_general(v, 0),
                "{}",
                String::from_utf8_lossy(v)
            );
            assert_eq!(
                Via::first(v).map(|(via, _)| via),
                vias(v).next(),
                "{}",
                String::from_utf8_lossy(v)
            );
        };
        let n = crate::sip::each_edit(seeds, bytes, true, check);
        assert!(n > 5000);
    }

    #[test]
    fn letters_compare_without_regard_to_case_only() {
        fn check<const N: usize>(name: &[u8; N]) {
            assert!(letters_eq(name, name));
            assert!(letters_eq(&name.to_ascii_uppercase(), name));
            for at in 0..N {
                for b in 0..=255u8 {
                    let mut v = name.to_vec();
                    v[at] = b;
                    assert_eq!(letters_eq(&v, name), v.eq_ignore_ascii_case(name), "{v:?}");
                }
            }
            assert!(!letters_eq(&name[1..], name));
        }
        check(b"branch");
        check(b"received");
        check(b"maddr");
        check(b"rport");
        check(b"ttl");
        check(b"alias");
    }

    #[test]
    fn sip_2_0_compares_letters_without_regard_to_case_only() {
        let sip = b"SIP/2.0/";
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut v = *sip;
                v[at] = b;
                assert_eq!(is_sip_2_0(&v), v.eq_ignore_ascii_case(sip), "{v:?}");
            }
        }
        assert!(is_sip_2_0(b"sIp/2.0/"));
    }

    #[test]
    fn first_tells_where_the_next_via_parm_starts() {
        let first =
            |s: &'static str| Via::first(s.as_bytes()).map(|(v, next)| (v.map(|v| v.span()), next));
        let plain = "SIP/2.0/UDP a:5060;branch=z9hG4bKa";
        assert_eq!(first(plain), Some((Ok(0..plain.len()), Some(None))));
        assert_eq!(
            first("SIP/2.0/UDP a;branch=z9hG4bKa,\r\n SIP/2.0/UDP b"),
            Some((Ok(0..29), Some(Some(33))))
        );
        assert_eq!(
            first("SIP/2.0/UDP a,SIP/2.0/UDP b"),
            Some((Ok(0..13), Some(Some(14))))
        );
        // Not the common shape, or nothing after the comma: not looked for.
        assert_eq!(
            first("SIP/2.0/UDP a ;lr, SIP/2.0/UDP b"),
            Some((Ok(0..17), None))
        );
        assert_eq!(first("SIP/2.0/UDP a, "), Some((Ok(0..13), None)));
        assert_eq!(
            first("SIP/2.0/UDP a,,SIP/2.0/UDP b"),
            Some((Ok(0..13), None))
        );
        assert_eq!(first("SIP/2.0/UDP a;x=\"1\""), Some((Ok(0..19), None)));
        assert_eq!(
            first("SIP/2.0/UDP h_1"),
            Some((Err(ParseError::new(ErrorKind::BadHost, 12)), None))
        );
        assert_eq!(first(" "), None);
    }

    fn lws() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", " ", "\t", "\r\n ", "  \r\n\t"])
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn never_panics(v in proptest::collection::vec(any::<u8>(), 0..64), prefix in prop::sample::select(vec!["", "SIP/2.0/UDP ", "SIP/2.0/TCP [", "SIP/2.0/UDP h;"])) {
            let mut s = prefix.as_bytes().to_vec();
            s.extend_from_slice(&v);
            for via in vias(&s).flatten() {
                prop_assert!(via.span().end <= s.len() && via.params_range().end <= s.len());
                let _ = (via.received_ip(), via.param_range(b"rport"), via.has_magic_cookie(), via.proto());
            }
        }

        #[test]
        fn parse_in_any_range_never_panics(v in proptest::collection::vec(any::<u8>(), 0..32), a in 0usize..40, b in 0usize..40) {
            if let Ok(via) = Via::parse_in(&v, a, b) {
                prop_assert!(via.span().start >= a && via.span().end <= b.min(v.len()));
            }
        }

        #[test]
        fn generated_vias_read_back(
            transport in prop::sample::select(vec!["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "X-NEW"]),
            (s1, s2, s3, s4) in (lws(), lws(), lws(), lws()),
            host in prop_oneof![
                "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
                any::<Ipv4Addr>().prop_map(|a| a.to_string()),
                any::<Ipv6Addr>().prop_map(|a| format!("[{a}]")),
            ],
            port in proptest::option::of(any::<u16>()),
            branch in "[a-zA-Z0-9.!%*_+`'~-]{1,16}",
            received in proptest::option::of(any::<Ipv4Addr>()),
            rport in prop_oneof![Just(Rport::Absent), Just(Rport::Empty), any::<u16>().prop_map(Rport::Value)],
        ) {
            let mut s = format!("SIP{s1}/{s2}2.0{s3}/{s4}{transport} {host}");
            if let Some(p) = port {
                s += &format!("{s1}:{s2}{p}");
            }
            s += &format!("{s3};{s4}branch{s1}={s2}z9hG4bK{branch}");
            match rport {
                Rport::Absent => {}
                Rport::Empty => s += ";rport",
                Rport::Value(p) => s += &format!(";rport={p}"),
            }
            if let Some(r) = received {
                s += &format!(";received={r}");
            }
            let v = Via::parse(s.as_bytes()).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(v.transport(), transport.as_bytes());
            prop_assert_eq!(v.host_raw(), host.as_bytes());
            prop_assert_eq!(v.port(), port);
            let want = format!("z9hG4bK{branch}");
            prop_assert_eq!(v.branch(), Some(want.as_bytes()));
            prop_assert!(v.has_magic_cookie());
            prop_assert_eq!(v.rport(), rport);
            prop_assert_eq!(v.received_ip(), received.map(IpAddr::V4));
            let end = v.params_range().end;
            prop_assert_eq!(end, s.len());
        }
    }
}
