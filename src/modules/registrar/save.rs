//! `save()` (RFC 3261 §10.3) and `unregister()`.

use super::{aor_of, flags_arg, setup, RegParams};
use crate::modules::sl;
use crate::modules::usrloc::{method_bit, Record, Ucontact, Usrloc, ALL_METHODS};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Args, RouteType};
use crate::script::value::Value;
use crate::sip::nameaddr::{contacts, name_addrs, Contact};
use crate::sip::{headers, HeaderName, Message};

/// save() flags (KAMAILIO-REFERENCE §5.2).
const MEMORY_ONLY: u32 = 0x01;
const NO_REPLY: u32 = 0x02;
const SINGLE_CONTACT: u32 = 0x04;

/// A registrar error: the reply it gets and the script code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SaveError {
    pub code: u16,
    pub reason: &'static str,
    /// `P-Registrar-Error` text.
    pub detail: &'static str,
    /// Extra header lines before `P-Registrar-Error` (Min-Expires, Unsupported).
    pub extra: String,
    pub rc: i32,
}

fn bad(detail: &'static str) -> SaveError {
    SaveError {
        code: 400,
        reason: "Bad Request",
        detail,
        extra: String::new(),
        rc: -1,
    }
}

fn internal(detail: &'static str) -> SaveError {
    SaveError {
        code: 500,
        reason: "Server Internal Error",
        detail,
        extra: String::new(),
        rc: -1,
    }
}

/// One Contact of the request, read and checked.
struct NewContact {
    uri: String,
    /// Seconds, after clamping; 0 removes.
    expires: u32,
    q: i16,
    instance: Option<Box<str>>,
    reg_id: u32,
}

/// What the request asks for.
enum Request {
    /// No Contact: list the bindings.
    Query,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    Bind(Vec<NewContact>),
}

/// `save(table[, flags[, uri]])`: 1 bound or updated, 3 removed, 4 query,
/// -1 error, -2 too many contacts. Replies itself unless flag 0x02.
pub fn save(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let flags = if args.len() > 1 {
        flags_arg(ctx, args, 1)
    } else {
        0
    };
    let reply =
        flags & NO_REPLY == 0 && matches!(ctx.route_type, RouteType::Request | RouteType::Failure);
    let Some(s) = setup(ctx, args, "save") else {
        if reply {
            reply_error(ctx, &internal("Usrloc not available"), 0);
        }
        return -1;
    };
    let uri = if args.len() > 2 {
        Some(args.str(ctx, 2).into_owned())
    } else {
        None
    };
    let now = (ctx.unix_ms() / 1000) as i64;
    let outcome = process(ctx, s.reg, s.ul, &s.dom, uri.as_deref(), flags, now);
    match outcome {
        Ok((rc, contact_list)) => {
            if reply {
                // Like Kamailio's reply lumps, the headers stay queued for any
                // later local reply to this request.
                let queued = &mut ctx.state.reply_headers;
                if !contact_list.is_empty() {
                    queued.extend_from_slice(b"Contact: ");
                    queued.extend_from_slice(contact_list.as_bytes());
                    queued.extend_from_slice(b"\r\n");
                }
                if let Some(path) = echo_path(ctx.msg, s.reg) {
                    queued.extend_from_slice(b"Path: ");
                    queued.extend_from_slice(&path);
                    queued.extend_from_slice(b"\r\n");
                }
                sl::freply(ctx, 200, b"OK", b"");
            }
            rc
        }
        Err(e) => {
            if reply {
                let retry_after = s.reg.retry_after;
                reply_error(ctx, &e, retry_after);
            }
            e.rc
        }
    }
}

/// Answers `e`. Its header lines, `P-Registrar-Error` and, on a 5xx with
/// `retry_after` set, `Retry-After` stay queued for any later local reply to
/// the request (Kamailio's stock config sends `sl_reply_error()` next).
fn reply_error(ctx: &mut MsgCtx<'_>, e: &SaveError, retry_after: u32) {
    let queued = &mut ctx.state.reply_headers;
    queued.extend_from_slice(e.extra.as_bytes());
    queued.extend_from_slice(format!("P-Registrar-Error: {}\r\n", e.detail).as_bytes());
    if (500..600).contains(&e.code) && retry_after > 0 {
        queued.extend_from_slice(format!("Retry-After: {retry_after}\r\n").as_bytes());
    }
    sl::freply(ctx, e.code, e.reason.as_bytes(), b"");
}

/// Binds, removes or lists; `Ok((code, Contact header value of the 200))`.
fn process(
    ctx: &MsgCtx<'_>,
    reg: &RegParams,
    ul: &Usrloc,
    dom: &crate::modules::usrloc::Domain,
    uri: Option<&[u8]>,
    flags: u32,
    now: i64,
) -> Result<(i32, String), SaveError> {
    let msg = ctx.msg;
    let aor_uri = match uri {
        Some(u) => u.to_vec(),
        None => to_uri(msg).ok_or_else(|| bad("Error while parsing AOR"))?,
    };
    let aor = aor_of(&aor_uri, ul.params.use_domain, reg)
        .ok_or_else(|| bad("Error while parsing AOR"))?;
    let request = match read_contacts(msg, reg, flags) {
        Ok(r) => r,
        Err(mut e) => {
            // Kamailio 5.6 reads q values with the record at hand and lists
            // its bindings in the error reply.
            if e.detail == BAD_Q {
                let list = ul.read(dom, &aor, |rec| rec.map(|r| listing(r, now, reg)));
                if let Ok(Some(list)) = list {
                    with_listing(&mut e, &list);
                }
            }
            return Err(e);
        }
    };
    let path = if reg.use_path {
        path_value(msg, reg)?
    } else {
        None
    };
    let callid = String::from_utf8_lossy(msg.call_id().unwrap_or(b"")).into_owned();
    let cseq = msg
        .header_value(HeaderName::CSeq)
        .and_then(|v| headers::CSeq::parse(v).ok())
        .map(|c| c.seq)
        .ok_or_else(|| bad("Invalid CSeq number"))?;
    // Kamailio keeps "n/a" for a REGISTER without User-Agent (ul.dump, the
    // location table).
    let ua = Some(
        msg.header_value(HeaderName::UserAgent)
            .filter(|v| !v.is_empty())
            .map_or_else(
                || "n/a".to_string(),
                |v| String::from_utf8_lossy(&v[..v.len().min(255)]).into_owned(),
            ),
    );
    let socket = format!(
        "{}:{}",
        ctx.proto.lower_name(),
        crate::script::ctx::fmt_hostport(ctx.local)
    );
    let methods = allowed_methods(msg);
    let received = reg
        .received_avp
        .as_ref()
        .and_then(|key| match ctx.attrs.avp(key, 0)? {
            Value::Str(s) if !s.is_empty() => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        });
    let fields = Fields {
        callid,
        cseq,
        path,
        ua,
        socket,
        methods,
        now,
        received,
        cflags: ctx.state.bflags,
    };
    let apply = |rec: &mut Record| -> Result<i32, SaveError> {
        let rc = match &request {
            Request::Query => 4,
            Request::RemoveAll => {
                while !rec.contacts.is_empty() {
                    rec.remove(0);
                }
                3
            }
            Request::Bind(list) => bind(rec, list, &fields, reg, ul, flags).map_err(|mut e| {
                if e.rc == -2 {
                    // Too many: the reply lists the bindings kept (Kamailio 5.6).
                    with_listing(&mut e, &listing(rec, now, reg));
                }
                e
            })?,
        };
        Ok(rc)
    };
    let memory_only = flags & MEMORY_ONLY != 0 && ul.params.db_mode != 3;
    let (rc, listing) = if memory_only {
        dom.update(&aor, |rec| {
            let r = apply(rec);
            rec.removed.clear();
            rec.contacts.iter_mut().for_each(|c| c.dirty = false);
            r.map(|rc| (rc, listing(rec, now, reg)))
        })?
    } else {
        ul.update(dom, &aor, |rec| {
            let r = apply(rec);
            r.map(|rc| (rc, listing(rec, now, reg)))
        })
        .map_err(|e| {
            log::error!("save: {e}");
            internal("Usrloc record update failed")
        })??
    };
    Ok((rc, listing))
}

const BAD_Q: &str = "Invalid q param in contact";

/// Puts a Contact header with `list` (if any) before the error's own headers.
fn with_listing(e: &mut SaveError, list: &str) {
    if !list.is_empty() {
        e.extra = format!("Contact: {list}\r\n{}", e.extra);
    }
}

/// Per-request values every new or refreshed binding gets.
struct Fields {
    callid: String,
    cseq: u32,
    path: Option<String>,
    ua: Option<String>,
    socket: String,
    methods: u32,
    now: i64,
    /// `received_avp`'s value, if set.
    received: Option<String>,
    /// The request's branch flags (branch 0), kept as the contact's flags and
    /// restored by `lookup` (e.g. the NAT flag of `nat_bflag`).
    cflags: u32,
}

/// Applies the request's contacts to the record (RFC 3261 §10.3 steps 7–8).
fn bind(
    rec: &mut Record,
    list: &[NewContact],
    f: &Fields,
    reg: &RegParams,
    ul: &Usrloc,
    flags: u32,
) -> Result<i32, SaveError> {
    let before = (reg.max_contacts > 0).then(|| rec.clone());
    let (mut bound, mut removed) = (0, 0);
    for c in list {
        let existing = rec
            .contacts
            .iter()
            .position(|old| matches(old, c, f, ul.params.matching_mode));
        match existing {
            Some(i) => {
                let old = &rec.contacts[i];
                // Same Call-ID and no newer CSeq: a retransmission or out of order; no change.
                if *old.callid == *f.callid && f.cseq <= old.cseq {
                    bound += 1;
                    continue;
                }
                if c.expires == 0 {
                    rec.remove(i);
                    removed += 1;
                    continue;
                }
                let old_q = rec.contacts[i].q;
                refresh(&mut rec.contacts[i], c, f);
                if rec.contacts[i].q != old_q {
                    rec.reposition(i);
                }
                bound += 1;
            }
            None if c.expires == 0 => removed += 1,
            None => {
                let mut new = Ucontact {
                    contact: c.uri.as_str().into(),
                    ruid: ul.new_ruid(),
                    callid: "".into(),
                    received: None,
                    path: None,
                    user_agent: None,
                    socket: None,
                    instance: None,
                    expires: 0,
                    last_modified: 0,
                    cseq: 0,
                    q: -1,
                    flags: 0,
                    cflags: 0,
                    methods: ALL_METHODS,
                    reg_id: 0,
                    dirty: true,
                };
                refresh(&mut new, c, f);
                rec.insert(new);
                bound += 1;
            }
        }
    }
    if flags & SINGLE_CONTACT != 0 {
        // Only the contacts of this request stay bound.
        let mut i = 0;
        while i < rec.contacts.len() {
            if list.iter().any(|c| *rec.contacts[i].contact == *c.uri) {
                i += 1;
            } else {
                rec.remove(i);
            }
        }
    }
    if let Some(before) = before {
        let valid = rec.valid(f.now).count();
        if valid > reg.max_contacts as usize && bound > 0 {
            *rec = before;
            return Err(SaveError {
                code: 503,
                reason: "Service Unavailable",
                detail: "Too many registered contacts",
                extra: String::new(),
                rc: -2,
            });
        }
    }
    // 3: the request removed bindings and none is left.
    Ok(if removed > 0 && rec.valid(f.now).next().is_none() {
        3
    } else {
        1
    })
}

fn matches(old: &Ucontact, new: &NewContact, f: &Fields, mode: u8) -> bool {
    match mode {
        1 => *old.contact == *new.uri && *old.callid == *f.callid,
        2 => *old.contact == *new.uri && old.path.as_deref() == f.path.as_deref(),
        3 => *old.callid == *f.callid,
        _ => *old.contact == *new.uri,
    }
}

fn refresh(c: &mut Ucontact, new: &NewContact, f: &Fields) {
    let boxed = |s: &Option<String>| s.as_deref().map(Box::<str>::from);
    c.contact = new.uri.as_str().into();
    c.callid = f.callid.as_str().into();
    c.cseq = f.cseq;
    c.expires = f.now + i64::from(new.expires);
    c.last_modified = f.now;
    c.q = new.q;
    c.path = boxed(&f.path);
    c.user_agent = boxed(&f.ua);
    c.socket = Some(f.socket.as_str().into());
    c.methods = f.methods;
    c.instance = new.instance.clone();
    c.reg_id = new.reg_id;
    c.received = boxed(&f.received);
    c.cflags = f.cflags;
    c.dirty = true;
}

/// The Contact value of the 200 OK: every valid binding with what is left of its time.
fn listing(rec: &Record, now: i64, reg: &RegParams) -> String {
    let mut out = String::new();
    for c in rec.valid(now) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push('<');
        out.push_str(&c.contact);
        out.push('>');
        if c.q >= 0 {
            out.push_str(&format!(";q={}", q_text(c.q)));
        }
        let left = if c.expires == 0 {
            i64::from(reg.default_expires)
        } else {
            c.expires - now
        };
        out.push_str(&format!(";expires={left}"));
        if let Some(r) = &c.received {
            out.push_str(&format!(";received=\"{r}\""));
        }
    }
    out
}

/// `0.5`, `1`, `0.125`: q in thousandths as written in a Contact.
pub(crate) fn q_text(q: i16) -> String {
    if q >= 1000 {
        return "1".into();
    }
    let s = format!("0.{:03}", q);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn to_uri(msg: &Message) -> Option<Vec<u8>> {
    let to = msg.header_value(HeaderName::To)?;
    let na = crate::sip::nameaddr::NameAddr::parse(to).ok()?;
    Some(na.uri_raw().to_vec())
}

/// Reads the Contact headers with their expiry (contact param > Expires > default, then clamped).
fn read_contacts(msg: &Message, reg: &RegParams, flags: u32) -> Result<Request, SaveError> {
    let header_expires = msg
        .header_value(HeaderName::Expires)
        .map(|v| headers::expires(v).unwrap_or(reg.default_expires));
    // Kamailio 5.6: a Contact value starting with `*` is the star (the rest
    // of it is not read); a star is only allowed in the first Contact header,
    // with Expires: 0 and no other Contact header.
    let values: Vec<&[u8]> = msg
        .headers_of(HeaderName::Contact)
        .map(|h| msg.value(h))
        .collect();
    let is_star = |v: &[u8]| v.trim_ascii_start().starts_with(b"*");
    if let Some(first) = values.first() {
        if is_star(first) {
            if header_expires != Some(0) {
                return Err(bad("* used in contact and expires is not zero"));
            }
            if values.len() > 1 {
                return Err(bad("* used in contact and more than 1 contact"));
            }
            return Ok(Request::RemoveAll);
        }
        if values[1..].iter().any(|v| is_star(v)) {
            return Err(bad("* used in contact and more than 1 contact"));
        }
    }
    let mut list = Vec::new();
    for value in values {
        // The contacts of one header are taken last first, as Kamailio's
        // parser links them.
        let start = list.len();
        for c in contacts(value) {
            let c = c.map_err(|_| bad("Contact parse error"))?;
            let na = match c {
                Contact::Star => return Err(bad("* used in contact and more than 1 contact")),
                Contact::Addr(na) => na,
            };
            let uri = na.uri_raw();
            if uri.len() > reg.contact_max_size {
                return Err(bad("Contact/received too long"));
            }
            let expires = match c.expires() {
                Ok(Some(e)) => e,
                Ok(None) => header_expires.unwrap_or(reg.default_expires),
                // Not a number: the default (Kamailio 5.6), not the header.
                Err(_) => reg.default_expires,
            };
            let expires = clamp_expires(expires, reg)?;
            let q = match c.q() {
                Ok(Some(q)) => q as i16,
                Ok(None) => reg.default_q,
                Err(_) => return Err(bad(BAD_Q)),
            };
            let param_text = |name: &[u8]| {
                na.param(name)
                    .and_then(|p| p.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            list.push(NewContact {
                uri: String::from_utf8_lossy(uri).into_owned(),
                expires,
                q,
                instance: param_text(b"+sip.instance").map(|s| format!("\"{s}\"").into()),
                reg_id: param_text(b"reg-id")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            });
        }
        list[start..].reverse();
    }
    if flags & SINGLE_CONTACT != 0 {
        // Kamailio 5.6 saves only the first contact (in its order).
        list.truncate(1);
    }
    Ok(if list.is_empty() {
        Request::Query
    } else {
        Request::Bind(list)
    })
}

fn clamp_expires(e: u32, reg: &RegParams) -> Result<u32, SaveError> {
    if e == 0 {
        return Ok(0);
    }
    let e = if reg.max_expires > 0 {
        e.min(reg.max_expires)
    } else {
        e
    };
    if e < reg.min_expires {
        if reg.min_expires_mode == 1 {
            return Err(SaveError {
                code: 423,
                reason: "Interval Too Brief",
                detail: "Expiration too low",
                extra: format!("Min-Expires: {}\r\n", reg.min_expires),
                rc: -1,
            });
        }
        return Ok(reg.min_expires);
    }
    Ok(e)
}

/// The Path headers joined (RFC 3327), or a 420 when `path_mode` 2 needs `Supported: path`.
fn path_value(msg: &Message, reg: &RegParams) -> Result<Option<String>, SaveError> {
    let values: Vec<&[u8]> = msg
        .headers_of(HeaderName::Path)
        .map(|h| msg.value(h))
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    for v in &values {
        if name_addrs(v).any(|na| na.is_err()) {
            return Err(bad("Path parse error"));
        }
    }
    if reg.path_mode == 2 && !supports_path(msg) {
        return Err(SaveError {
            code: 420,
            reason: "Bad Extension",
            detail: "No support for found Path indicated",
            extra: "Unsupported: path\r\n".into(),
            rc: -1,
        });
    }
    let joined: Vec<String> = values
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    Ok(Some(joined.join(",")))
}

fn supports_path(msg: &Message) -> bool {
    msg.headers_of(HeaderName::Supported)
        .flat_map(|h| msg.value(h).split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"path"))
}

/// The Path to copy into the 200 OK (`path_mode` 1 and 2, when the UA supports it).
fn echo_path(msg: &Message, reg: &RegParams) -> Option<Vec<u8>> {
    if !reg.use_path || reg.path_mode == 0 || !supports_path(msg) {
        return None;
    }
    let values: Vec<&[u8]> = msg
        .headers_of(HeaderName::Path)
        .map(|h| msg.value(h))
        .collect();
    (!values.is_empty()).then(|| values.join(&b","[..]))
}

/// The methods the UA accepts (`Allow`), as Kamailio's bitmask; all without an Allow header.
fn allowed_methods(msg: &Message) -> u32 {
    let mut any = false;
    let mut mask = 0;
    for h in msg.headers_of(HeaderName::Allow) {
        any = true;
        for m in msg.value(h).split(|&b| b == b',') {
            mask |= method_bit(m.trim_ascii()).unwrap_or(0);
        }
    }
    if any {
        mask
    } else {
        ALL_METHODS
    }
}

/// `unregister(table, uri[, ruid])`: 1 removed, -1 bad AoR, -2 error, -3 AoR (or ruid) not found.
pub fn unregister(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = setup(ctx, args, "unregister") else {
        return -2;
    };
    let uri = args.str(ctx, 1).into_owned();
    let Some(aor) = aor_of(&uri, s.ul.params.use_domain, s.reg) else {
        return -1;
    };
    let ruid = (args.len() > 2).then(|| args.str(ctx, 2).into_owned());
    let result = s.ul.update(&s.dom, &aor, |rec| {
        let before = rec.contacts.len();
        let mut i = 0;
        while i < rec.contacts.len() {
            let hit = ruid
                .as_deref()
                .is_none_or(|r| rec.contacts[i].ruid.as_bytes() == r);
            if hit {
                rec.remove(i);
            } else {
                i += 1;
            }
        }
        before - rec.contacts.len()
    });
    match result {
        // A contact id that names nothing; an AoR with no bindings is no
        // error (Kamailio 5.6 answers 1).
        Ok(0) if ruid.is_some() => -3,
        Ok(_) => 1,
        Err(e) => {
            log::error!("unregister: {e}");
            -2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_print_as_written() {
        assert_eq!(q_text(500), "0.5");
        assert_eq!(q_text(125), "0.125");
        assert_eq!(q_text(1000), "1");
        assert_eq!(q_text(0), "0");
    }

    #[test]
    fn expires_clamp() {
        let mut reg = RegParams {
            max_expires: 3600,
            ..RegParams::default()
        };
        assert_eq!(clamp_expires(7200, &reg), Ok(3600));
        assert_eq!(clamp_expires(10, &reg), Ok(60));
        assert_eq!(clamp_expires(0, &reg), Ok(0));
        reg.min_expires_mode = 1;
        assert_eq!(clamp_expires(10, &reg).unwrap_err().code, 423);
    }
}
