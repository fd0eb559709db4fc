//! topos on whole messages (sans-IO): what a received message becomes
//! before the script sees it, and what a message about to be sent becomes,
//! with the records of [`super::record`] read and written on the way.
//! Both work on raw bytes, as Kamailio's `SREV_NET_DATA_IN` /
//! `SREV_NET_DATA_OUT` callbacks do. As checked against Kamailio 5.6.3:
//!
//! ```text
//!  request out ─▶ every Via but this proxy's, every Record-Route and the
//!                 Contact removed; Contact `<sip:btpsh-<uid>@proxy>` towards
//!                 the callee, `<sip:atpsh-<uid>@proxy>` towards the caller
//!                 (none on BYE, CANCEL, PRACK); the host is the one of this
//!                 proxy's Record-Route
//!  request in, in-dialog, R-URI user `atpsh-…`/`btpsh-…`
//!              ─▶ R-URI = the other side's Contact; this proxy's Record-Route
//!                 (and that side's route set) appended as Route, so the
//!                 script's loose_route() runs as without topos;
//!                 `P-SR-XUID: atpsh-<uid>` carries the dialog to the way out
//!  reply in    ─▶ the Vias (and Record-Routes) the request had appended back,
//!                 `P-SR-XBranch: <our branch>` carries the record to the way out
//!  reply out   ─▶ Record-Route: only the receiving side's own entries;
//!                 Contact as for requests (kept on 3xx, and on 1xx/4xx
//!                 without one)
//! ```
//! Call-ID is kept.

use bytes::Bytes;

use super::record::{uid, Branch, Change, Dialog, Tables};
use crate::modules::topoh::msg::Edits;
use crate::sip::headers::CSeq;
use crate::sip::nameaddr::{contacts, name_addrs, Contact, NameAddr};
use crate::sip::uri::Uri;
use crate::sip::via::vias;
use crate::sip::{HeaderName, Message};

pub const XUUID: &[u8] = b"P-SR-XUID";
pub const XBRANCH: &[u8] = b"P-SR-XBranch";
const A_PREFIX: &[u8] = b"atpsh-";
const B_PREFIX: &[u8] = b"btpsh-";
/// Shorter R-URI users are not ours (Kamailio's minimum).
const UUID_MIN_LEN: usize = 10;
const DOWNSTREAM: i64 = 0;
const UPSTREAM: i64 = 1;

/// topos's settings that shape messages.
#[derive(Clone, Debug, Default)]
pub struct Topos {
    /// `contact_host`: the host of the generated Contacts, instead of the
    /// one of this proxy's Record-Route.
    pub contact_host: Option<Vec<u8>>,
    /// `sanity_checks`: a received request failing sanity's default checks
    /// is passed on unchanged.
    pub sanity: Option<crate::modules::sanity::DefaultChecks>,
    /// The middle part of generated uids.
    pub process: u32,
}

/// What one message changes in the records.
pub struct Io<'a> {
    pub tables: &'a mut Tables,
    /// Unix seconds now.
    pub unix: i64,
    /// The last uid counter used.
    pub counter: &'a mut u64,
    pub changes: &'a mut Vec<Change>,
}

/// What both directions read first.
struct View {
    msg: Message,
    method: Vec<u8>,
    /// Each via-parm, trimmed.
    vias: Vec<Vec<u8>>,
    top_branch: Vec<u8>,
    /// The Record-Route URIs, in order.
    rr: Vec<Vec<u8>>,
    from_tag: Vec<u8>,
    to_tag: Vec<u8>,
    /// The first Contact's URI.
    contact: Vec<u8>,
}

fn view(data: &Bytes) -> Option<View> {
    let msg = Message::parse(data.clone()).ok()?;
    let from = NameAddr::parse(msg.header_value(HeaderName::From)?).ok()?;
    let from_tag = from.tag().unwrap_or_default().to_vec();
    let to = NameAddr::parse(msg.header_value(HeaderName::To)?).ok()?;
    let to_tag = to.tag().unwrap_or_default().to_vec();
    msg.call_id()?;
    let method = CSeq::parse(msg.header_value(HeaderName::CSeq)?)
        .ok()?
        .method
        .as_bytes()
        .to_vec();
    let mut list = Vec::new();
    let mut top_branch = Vec::new();
    for h in msg.headers_of(HeaderName::Via) {
        let value = msg.value(h);
        for v in vias(value) {
            let v = v.ok()?;
            if list.is_empty() {
                top_branch = v.branch().unwrap_or_default().to_vec();
            }
            let text = &value[v.span()];
            list.push(trim_end(text).to_vec());
        }
    }
    if list.is_empty() {
        return None;
    }
    let mut rr = Vec::new();
    for h in msg.headers_of(HeaderName::RecordRoute) {
        let value = msg.value(h);
        for na in name_addrs(value) {
            let Ok(na) = na else { break };
            rr.push(value[na.uri_range()].to_vec());
        }
    }
    let contact = msg
        .header_value(HeaderName::Contact)
        .and_then(|v| contacts(v).next())
        .and_then(|c| c.ok())
        .and_then(|c: Contact<'_>| c.name_addr().map(|na| na.uri_raw().to_vec()))
        .unwrap_or_default();
    let (from_tag, to_tag) = (from_tag, to_tag);
    Some(View {
        msg,
        method,
        vias: list,
        top_branch,
        rr,
        from_tag,
        to_tag,
        contact,
    })
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let Some((last, rest)) = s.split_last() {
        if matches!(last, b' ' | b'\t' | b'\r' | b'\n' | b',') {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn is(method: &[u8], name: &[u8]) -> bool {
    method.eq_ignore_ascii_case(name)
}

/// REGISTER and PUBLISH go through untouched.
fn skipped(method: &[u8]) -> bool {
    is(method, b"REGISTER") || is(method, b"PUBLISH")
}

/// Methods whose requests (and replies) carry no Contact from topos.
fn no_contact(method: &[u8]) -> bool {
    is(method, b"CANCEL") || is(method, b"BYE") || is(method, b"PRACK")
}

/// `<uri>,<uri>` of a list of URIs.
fn join_rr(uris: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, u) in uris.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'<');
        out.extend_from_slice(u);
        out.push(b'>');
    }
    out
}

fn header_line(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

fn remove_all(msg: &Message, id: HeaderName, edits: &mut Edits) {
    for h in msg.headers_of(id) {
        edits.replace(h.line.start as usize, h.line.end as usize, Vec::new());
    }
}

fn named_value(msg: &Message, name: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    let h = msg.headers_named(name).next()?;
    Some((
        h.line.start as usize,
        h.line.end as usize,
        msg.value(h).to_vec(),
    ))
}

/// Where a header goes in front of all others.
fn first_header_at(msg: &Message) -> usize {
    msg.headers()
        .first()
        .map_or(msg.headers_end(), |h| h.line.start as usize)
}

/// Route headers for a stored route set: reversed and one entry per header
/// when `reverse` (the set seen from the other end), else as one header.
fn route_headers(set: &[u8], reverse: bool, out: &mut Vec<u8>) {
    let set = trim_end(set);
    if set.is_empty() {
        return;
    }
    if reverse && set.contains(&b',') {
        for entry in set.rsplit(|b| *b == b',') {
            out.extend_from_slice(&header_line(b"Route", entry));
        }
        return;
    }
    out.extend_from_slice(&header_line(b"Route", set));
}

impl Topos {
    /// The Contact this proxy shows for a dialog: `<scheme:<letter><uid>@host[:port][;transport=…]>`
    /// from one of its Record-Route URIs.
    fn contact_for(&self, rr_uri: &[u8], letter: u8, uid: &str) -> Vec<u8> {
        let Ok(u) = Uri::parse(rr_uri) else {
            return Vec::new();
        };
        let scheme_end = rr_uri.iter().position(|b| *b == b':').map_or(0, |i| i + 1);
        let mut out = Vec::with_capacity(64);
        out.push(b'<');
        out.extend_from_slice(&rr_uri[..scheme_end]);
        out.push(letter);
        out.extend_from_slice(uid.as_bytes());
        out.push(b'@');
        match &self.contact_host {
            Some(h) => out.extend_from_slice(h),
            None => out.extend_from_slice(u.host_raw()),
        }
        if let Some(port) = u.port() {
            out.extend_from_slice(format!(":{port}").as_bytes());
        }
        if let Some(t) = u.param(b"transport").and_then(|p| p.value) {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(t);
        }
        out.push(b'>');
        out
    }

    /// A received message; `None`: pass it on as it is.
    pub fn incoming(&self, io: &mut Io<'_>, data: &Bytes) -> Option<Bytes> {
        let v = view(data)?;
        if skipped(&v.method) {
            return None;
        }
        if v.msg.is_request() {
            if self.sanity.as_ref().is_some_and(|s| !s.passes(&v.msg)) {
                return None;
            }
            self.request_in(io, &v)
        } else {
            self.reply_in(io, &v)
        }
    }

    /// A message about to be sent; `None`: send it as it is.
    pub fn outgoing(&self, io: &mut Io<'_>, data: &Bytes) -> Option<Bytes> {
        let v = view(data)?;
        if skipped(&v.method) {
            return None;
        }
        if v.msg.is_request() {
            self.request_out(io, &v)
        } else {
            self.reply_out(io, &v)
        }
    }

    fn request_in(&self, io: &mut Io<'_>, v: &View) -> Option<Bytes> {
        // Initial requests are left alone on the way in.
        if v.to_tag.is_empty() {
            return None;
        }
        let ruri = v.msg.request_uri()?;
        let user = Uri::parse(ruri).ok()?.user()?.to_vec();
        if user.len() < UUID_MIN_LEN || !(user.starts_with(A_PREFIX) || user.starts_with(B_PREFIX))
        {
            return None;
        }
        let uid = String::from_utf8(user[1..].to_vec()).ok()?;
        let dlg = io.tables.dialogs.get(&uid)?;
        let direction = if v.from_tag == dlg.a_tag {
            DOWNSTREAM
        } else {
            UPSTREAM
        };
        let mut edits = Edits::default();
        let target = if direction == UPSTREAM {
            &dlg.a_contact
        } else {
            &dlg.b_contact
        };
        if !target.is_empty() {
            let span = v.msg.uri_span()?;
            edits.replace(span.start as usize, span.end as usize, target.clone());
        }
        let mut added = Vec::new();
        route_headers(&dlg.s_rr, direction == DOWNSTREAM, &mut added);
        if direction == UPSTREAM {
            route_headers(&dlg.a_rr, false, &mut added);
        } else {
            route_headers(&dlg.b_rr, true, &mut added);
        }
        added.extend_from_slice(&header_line(XUUID, dlg.a_uuid().as_bytes()));
        let end = v.msg.headers_end();
        edits.replace(end, end, added);
        Some(edits.apply(v.msg.buf()))
    }

    fn reply_in(&self, io: &mut Io<'_>, v: &View) -> Option<Bytes> {
        let branch = io.tables.branches.get(&v.top_branch)?.clone();
        if let Some(dlg) = io.tables.dialogs.get_mut(&branch.uid) {
            let direction = if v.from_tag == dlg.a_tag {
                DOWNSTREAM
            } else {
                UPSTREAM
            };
            let code = v.msg.status().unwrap_or(0);
            let before = dlg.clone();
            // Only answers to INVITE change the dialog (Kamailio 5.6 keeps no
            // tag or Contact from a 1xx without one, nor from the 200 to a
            // CANCEL or BYE); a 1xx Contact is kept for early in-dialog
            // requests (PRACK, UPDATE).
            if is(&v.method, b"INVITE") && (101..300).contains(&code) {
                if direction == DOWNSTREAM {
                    if !v.contact.is_empty() {
                        dlg.b_contact = v.contact.clone();
                    }
                    if code >= 200 {
                        dlg.b_tag = v.to_tag.clone();
                        // The callee side's route set (never shown to the
                        // caller), from the answer to the request that
                        // carried this proxy's Record-Route.
                        if !branch.s_rr.is_empty() {
                            dlg.b_rr = join_rr(&v.rr);
                            dlg.iflags = 1;
                        }
                    }
                } else if code >= 200 && !v.contact.is_empty() {
                    dlg.a_contact = v.contact.clone();
                }
            }
            if *dlg != before {
                io.changes.push(Change::UpdateDialog(dlg.clone()));
            }
        }
        let mut added = Vec::new();
        if !branch.x_via.is_empty() {
            added.extend_from_slice(&header_line(b"Via", &branch.x_via));
        }
        if !branch.s_rr.is_empty() {
            added.extend_from_slice(&header_line(b"Record-Route", &branch.s_rr));
        }
        if !branch.x_rr.is_empty() {
            added.extend_from_slice(&header_line(b"Record-Route", &branch.x_rr));
        }
        added.extend_from_slice(&header_line(XBRANCH, &v.top_branch));
        let mut edits = Edits::default();
        let end = v.msg.headers_end();
        edits.replace(end, end, added);
        Some(edits.apply(v.msg.buf()))
    }

    fn request_out(&self, io: &mut Io<'_>, v: &View) -> Option<Bytes> {
        let msg = &v.msg;
        let dialog = !v.to_tag.is_empty();
        let mut edits = Edits::default();
        let xuuid = named_value(msg, XUUID);
        if dialog && xuuid.is_none() {
            // Not a request topos saw come in (a local one): ACK and CANCEL
            // still lose what would show the other side.
            if !(is(&v.method, b"ACK") || is(&v.method, b"CANCEL")) {
                return None;
            }
            self.strip_request(msg, &v.vias[0], &mut edits);
            return Some(edits.apply(msg.buf()));
        }
        let mut direction = DOWNSTREAM;
        let mut dlg_uid = None;
        if let Some((start, end, value)) = &xuuid {
            edits.replace(*start, *end, Vec::new());
            let value = trim_end(value);
            if value.len() > 1 {
                let uid = String::from_utf8_lossy(&value[1..]).into_owned();
                let a_tag = io.tables.dialogs.get(&uid).map(|d| d.a_tag.as_slice());
                if a_tag != Some(v.from_tag.as_slice()) {
                    direction = UPSTREAM;
                }
                dlg_uid = Some(uid);
            }
        }
        let x_via = v.vias[1..].join(&b","[..]);
        let branch = match io.tables.branches.get(&v.top_branch) {
            // tm's own ACK (to a non-2xx without To tag) or CANCEL on a
            // branch already recorded: sent as built.
            Some(_) if !dialog && (is(&v.method, b"ACK") || is(&v.method, b"CANCEL")) => {
                return None
            }
            Some(b) => b.clone(),
            None => {
                if !dialog && is(&v.method, b"CANCEL") {
                    // tm's own CANCEL of a branch it lost track of.
                    return None;
                }
                let b = self.record(io, v, dialog, dlg_uid.clone(), direction, x_via);
                io.tables.branches.insert(b.x_vbranch.clone(), b.clone());
                io.changes.push(Change::InsertBranch(b.clone()));
                b
            }
        };
        // The contacts shown: the dialog's for an in-dialog request, the
        // branch's (the new dialog's) for an initial one.
        let (as_contact, bs_contact) = match dlg_uid.as_ref().and_then(|u| io.tables.dialogs.get(u))
        {
            Some(d) => (d.as_contact.clone(), d.bs_contact.clone()),
            None => (branch.as_contact.clone(), branch.bs_contact.clone()),
        };
        self.strip_request(msg, &v.vias[0], &mut edits);
        if !no_contact(&v.method) {
            let shown = if direction == UPSTREAM {
                as_contact
            } else {
                bs_contact
            };
            if !shown.is_empty() {
                let end = msg.headers_end();
                edits.replace(end, end, header_line(b"Contact", &shown));
            }
        }
        if let Some(dlg) = dlg_uid.as_ref().and_then(|u| io.tables.dialogs.get_mut(u)) {
            let before = dlg.clone();
            if is(&v.method, b"BYE") {
                // Ended: it goes after branch_expire.
                dlg.iflags = 0;
                dlg.rectime = io.unix;
            }
            if !v.contact.is_empty() {
                if direction == DOWNSTREAM {
                    dlg.a_contact = v.contact.clone();
                } else {
                    dlg.b_contact = v.contact.clone();
                }
            }
            if *dlg != before {
                io.changes.push(Change::UpdateDialog(dlg.clone()));
            }
        }
        Some(edits.apply(msg.buf()))
    }

    /// Record-Route, Contact and every Via removed; this proxy's Via first.
    fn strip_request(&self, msg: &Message, via1: &[u8], edits: &mut Edits) {
        remove_all(msg, HeaderName::RecordRoute, edits);
        remove_all(msg, HeaderName::Contact, edits);
        remove_all(msg, HeaderName::Via, edits);
        let at = first_header_at(msg);
        edits.replace(at, at, header_line(b"Via", via1));
    }

    /// The records of a request sent for the first time: its branch, and
    /// for an initial request a new dialog.
    fn record(
        &self,
        io: &mut Io<'_>,
        v: &View,
        dialog: bool,
        dlg_uid: Option<String>,
        direction: i64,
        x_via: Vec<u8>,
    ) -> Branch {
        let ruri = v.msg.request_uri().unwrap_or_default().to_vec();
        let cseq = v.msg.cseq_number().unwrap_or_default().to_vec();
        let call_id = v.msg.call_id().unwrap_or_default().to_vec();
        // This proxy's own entries are the first one, or the first two
        // when it record-routed twice (`r2=on`).
        let r2 =
            v.rr.first()
                .is_some_and(|u| u.windows(6).any(|w| w.eq_ignore_ascii_case(b";r2=on")));
        let own = if r2 { 2 } else { 1 }.min(v.rr.len());
        let (s_rr, x_rr) = if dialog {
            (Vec::new(), Vec::new())
        } else {
            (join_rr(&v.rr[..own]), join_rr(&v.rr[own..]))
        };
        let mut b = Branch {
            x_vbranch: v.top_branch.clone(),
            rectime: io.unix,
            a_callid: call_id.clone(),
            direction,
            x_via,
            x_rr: x_rr.clone(),
            s_rr: s_rr.clone(),
            x_uri: ruri.clone(),
            a_contact: v.contact.clone(),
            x_tag: if direction == DOWNSTREAM {
                v.from_tag.clone()
            } else {
                v.to_tag.clone()
            },
            a_tag: v.from_tag.clone(),
            b_tag: v.to_tag.clone(),
            s_method: v.method.clone(),
            s_cseq: cseq.clone(),
            ..Branch::default()
        };
        match dlg_uid {
            Some(uid) if dialog => b.uid = uid,
            _ => {
                *io.counter += 1;
                let uid = uid(io.unix, self.process, *io.counter);
                if let Some(first) = v.rr.first() {
                    b.bs_contact = self.contact_for(first, b'b', &uid);
                    let a_src = if r2 { v.rr.get(1) } else { Some(first) };
                    if let Some(a_src) = a_src {
                        b.as_contact = self.contact_for(a_src, b'a', &uid);
                    }
                }
                let d = Dialog {
                    uid: uid.clone(),
                    rectime: io.unix,
                    a_callid: call_id,
                    a_contact: v.contact.clone(),
                    as_contact: b.as_contact.clone(),
                    bs_contact: b.bs_contact.clone(),
                    a_tag: v.from_tag.clone(),
                    a_rr: x_rr,
                    s_rr,
                    r_uri: ruri,
                    s_method: v.method.clone(),
                    s_cseq: cseq,
                    ..Dialog::default()
                };
                io.tables.dialogs.insert(uid.clone(), d.clone());
                io.changes.push(Change::InsertDialog(d));
                b.uid = uid;
            }
        }
        b
    }

    fn reply_out(&self, io: &mut Io<'_>, v: &View) -> Option<Bytes> {
        let msg = &v.msg;
        let (start, end, xbranch) = named_value(msg, XBRANCH)?;
        let mut edits = Edits::default();
        edits.replace(start, end, Vec::new());
        if is(&v.method, b"MESSAGE") {
            remove_all(msg, HeaderName::RecordRoute, &mut edits);
            remove_all(msg, HeaderName::Contact, &mut edits);
            return Some(edits.apply(msg.buf()));
        }
        let Some(branch) = io.tables.branches.get(trim_end(&xbranch)) else {
            return Some(edits.apply(msg.buf()));
        };
        let dlg = io.tables.dialogs.get(&branch.uid);
        let direction = match dlg {
            Some(d) if d.a_tag == v.from_tag => DOWNSTREAM,
            _ => UPSTREAM,
        };
        remove_all(msg, HeaderName::RecordRoute, &mut edits);
        let code = msg.status().unwrap_or(0);
        let has_contact = msg.header(HeaderName::Contact).is_some();
        let keep = (300..400).contains(&code)
            || ((101..200).contains(&code) && !has_contact)
            || ((400..500).contains(&code) && !has_contact);
        let at = msg.headers_end();
        if !keep {
            remove_all(msg, HeaderName::Contact, &mut edits);
            if !no_contact(&v.method) {
                let shown = match (dlg, direction) {
                    (Some(d), DOWNSTREAM) => d.as_contact.clone(),
                    (Some(d), _) => d.bs_contact.clone(),
                    (None, _) => Vec::new(),
                };
                if !shown.is_empty() {
                    edits.replace(at, at, header_line(b"Contact", &shown));
                }
            }
        }
        if !branch.x_rr.is_empty() {
            edits.replace(at, at, header_line(b"Record-Route", &branch.x_rr));
        }
        Some(edits.apply(msg.buf()))
    }
}
