//! topoh on whole messages: what a received message looks like once its
//! masked parts are decoded (before it is parsed for the script), and what a
//! message about to be sent looks like once the other side's addresses are
//! masked (after it is serialized). Both work on raw bytes, as Kamailio's
//! `SREV_NET_DATA_IN` / `SREV_NET_DATA_OUT` callbacks do.
//!
//! The two directions talk through a cookie the received message carries
//! through the script: a `TH: xyh` header at the end of the header section
//! and a `;TH=xyv` parameter on the top Via (x: `d` downstream, `u`
//! upstream; y: `i` initial, `c` in-dialog). The outgoing side reads the
//! header (forwarded requests and replies keep it) or the Via parameter
//! (replies built here copy the request's Vias), removes it, and masks:
//!
//! ```text
//!  request out, not local ─▶ Via 2.. ─▶ `SIP/2.0/UDP <mask_ip>;branch=z9hG4bKsr-<enc>`
//!                          ─▶ Contact ─▶ `<sip:<mask_ip>;line=sr-<enc>>`
//!                          ─▶ Record-Route 2.. ─▶ same URI form
//!                          ─▶ Call-ID `!!:<enc>` (initial, or in-dialog downstream)
//!  reply out (forwarded)   ─▶ Record-Route entries before ours, Contact, Call-ID (downstream)
//!  request in, in-dialog   ─▶ R-URI, Route 2.., Refer-To decoded; Call-ID (upstream)
//!  reply in                ─▶ Via 2.., Record-Route decoded; Call-ID (from downstream)
//! ```

use bytes::Bytes;

use super::mask::Mask;
use crate::script::ctx::Env;
use crate::sip::headers::CSeq;
use crate::sip::nameaddr::{contacts, Contact, NameAddr};
use crate::sip::uri::Uri;
use crate::sip::via::{vias, Via};
use crate::sip::{HeaderName, Message};

/// The cookie's name, as a header and as a Via parameter.
const COOKIE: &[u8] = b"TH";

/// topoh's settings, and what start-up derives from them.
#[derive(Clone, Debug)]
pub struct Topoh {
    pub mask: Mask,
    pub ip: Vec<u8>,
    pub uparam_name: Vec<u8>,
    pub uparam_prefix: Vec<u8>,
    pub vparam_name: Vec<u8>,
    pub vparam_prefix: Vec<u8>,
    pub callid_prefix: Vec<u8>,
    pub mask_callid: bool,
    pub uri_prefix_checks: bool,
    /// `sanity_checks`: a received request that fails sanity's default
    /// checks is passed on undecoded.
    pub sanity: Option<crate::modules::sanity::DefaultChecks>,
    /// `SIP/2.0/UDP <ip>;<vparam_name>=<vparam_prefix>`
    pub via_prefix: Vec<u8>,
    /// `sip:<ip>;<uparam_name>=<uparam_prefix>`
    pub uri_prefix: Vec<u8>,
}

/// Replacements of byte ranges of one buffer, applied in one pass.
#[derive(Default)]
pub(crate) struct Edits(Vec<(usize, usize, Vec<u8>)>);

impl Edits {
    pub(crate) fn replace(&mut self, start: usize, end: usize, with: Vec<u8>) {
        self.0.push((start, end, with));
    }

    pub(crate) fn apply(mut self, buf: &[u8]) -> Bytes {
        self.0.sort_by_key(|e| (e.0, e.1));
        let grow: usize = self.0.iter().map(|e| e.2.len()).sum();
        let mut out = Vec::with_capacity(buf.len() + grow);
        let mut at = 0;
        for (start, end, with) in self.0 {
            // Overlaps are not made by this module; skip one rather than panic.
            if start < at || start > end || end > buf.len() {
                continue;
            }
            out.extend_from_slice(&buf[at..start]);
            out.extend_from_slice(&with);
            at = end;
        }
        out.extend_from_slice(&buf[at..]);
        Bytes::from(out)
    }
}

/// One via-parm: where it lies (trimmed) in the buffer, and its text.
struct ViaItem {
    start: usize,
    end: usize,
}

/// One Route / Record-Route entry's URI: where it lies.
struct UriItem {
    start: usize,
    end: usize,
}

/// What both directions read of a message first (Kamailio's `th_prepare_msg`
/// and `th_skip_msg`); `None`: leave the message alone.
struct View {
    msg: Message,
    vias: Vec<ViaItem>,
    method: Vec<u8>,
}

fn view(data: &Bytes) -> Option<View> {
    let msg = Message::parse(data.clone()).ok()?;
    // Mandatory: From and To that parse, a Via, a Call-ID, a CSeq.
    NameAddr::parse(msg.header_value(HeaderName::From)?).ok()?;
    NameAddr::parse(msg.header_value(HeaderName::To)?).ok()?;
    msg.call_id()?;
    let method = CSeq::parse(msg.header_value(HeaderName::CSeq)?)
        .ok()?
        .method
        .as_bytes()
        .to_vec();
    if method.eq_ignore_ascii_case(b"REGISTER") || method.eq_ignore_ascii_case(b"PUBLISH") {
        return None;
    }
    let mut list = Vec::new();
    for h in msg.headers_of(HeaderName::Via) {
        let base = h.value.start as usize;
        for v in vias(msg.value(h)) {
            let v = v.ok()?;
            let r = v.span();
            list.push(ViaItem {
                start: base + r.start,
                end: base + r.end,
            });
        }
    }
    if list.is_empty() {
        return None;
    }
    Some(View {
        msg,
        vias: list,
        method,
    })
}

/// The entries of every header `id` (Route or Record-Route), in order, until
/// one does not parse.
fn route_uris(msg: &Message, id: HeaderName) -> Vec<UriItem> {
    let mut out = Vec::new();
    for h in msg.headers_of(id) {
        let base = h.value.start as usize;
        for na in crate::sip::nameaddr::name_addrs(msg.value(h)) {
            let Ok(na) = na else { return out };
            let r = na.uri_range();
            out.push(UriItem {
                start: base + r.start,
                end: base + r.end,
            });
        }
    }
    out
}

fn from_tag(msg: &Message) -> Option<Vec<u8>> {
    let na = NameAddr::parse(msg.header_value(HeaderName::From)?).ok()?;
    na.tag().map(<[u8]>::to_vec)
}

/// The value of URI parameter `name` of `uri`, when it parses.
fn uri_param(uri: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let u = Uri::parse(uri).ok()?;
    u.param(name).and_then(|p| p.value).map(<[u8]>::to_vec)
}

/// What a Record-Route URI is to topoh (Kamailio's `th_get_uri_type`).
enum UriType {
    /// One we masked: the encoded value of the parameter.
    Masked(Vec<u8>),
    /// Ours (or the mask address without the parameter): `r2` tells a
    /// double Record-Route entry.
    Skip { r2: bool },
    /// Somebody else's: masked going out.
    Other,
}

impl Topoh {
    fn uri_type(&self, env: &Env, uri: &[u8], mask_addr_myself: bool) -> Option<UriType> {
        let u = Uri::parse(uri).ok()?;
        let host = u.host_raw();
        if host.eq_ignore_ascii_case(&self.ip) {
            if let Some(v) = u.param(&self.uparam_name).and_then(|p| p.value) {
                return Some(UriType::Masked(v.to_vec()));
            }
            if !mask_addr_myself {
                return Some(UriType::Skip { r2: false });
            }
        }
        if env.is_myself(host, u.port(), None) {
            let r2 = u
                .param(b"r2")
                .and_then(|p| p.value)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"on"));
            return Some(UriType::Skip { r2 });
        }
        Some(UriType::Other)
    }

    /// Whether `mask_ip` is one of our own addresses.
    fn mask_addr_myself(&self, env: &Env) -> bool {
        let (host, port) = match Uri::parse(&[b"sip:".as_slice(), &self.ip].concat()) {
            Ok(u) => (u.host_raw().to_vec(), u.port()),
            Err(_) => return false,
        };
        env.is_myself(&host, port, None)
    }

    fn decode_uri_param(&self, uri: &[u8]) -> Option<Vec<u8>> {
        let v = uri_param(uri, &self.uparam_name)?;
        if v.is_empty() {
            return None;
        }
        self.mask.decode(&v, self.uparam_prefix.len())
    }

    fn has_uri_prefix(&self, uri: &[u8]) -> bool {
        uri.len() >= self.uri_prefix.len()
            && uri[..self.uri_prefix.len()].eq_ignore_ascii_case(&self.uri_prefix)
    }

    fn unmask_callid(&self, msg: &Message, edits: &mut Edits) {
        if !self.mask_callid {
            return;
        }
        let Some(h) = msg.header(HeaderName::CallId) else {
            return;
        };
        let v = msg.value(h);
        let p = &self.callid_prefix;
        if v.len() < p.len() || !v[..p.len()].eq_ignore_ascii_case(p) {
            return;
        }
        if let Some(out) = self.mask.decode(v, p.len()) {
            edits.replace(h.value.start as usize, h.value.end as usize, out);
        }
    }

    fn mask_callid(&self, msg: &Message, edits: &mut Edits) {
        if !self.mask_callid {
            return;
        }
        if let Some(h) = msg.header(HeaderName::CallId) {
            let out = self.mask.encode(msg.value(h), &self.callid_prefix);
            edits.replace(h.value.start as usize, h.value.end as usize, out);
        }
    }

    /// A received message, decoded; `None`: pass it on as it is.
    pub fn incoming(&self, env: &Env, data: &Bytes) -> Option<Bytes> {
        let View { msg, vias, method } = view(data)?;
        let buf = msg.buf().clone();
        let mut edits = Edits::default();
        let mut cookie: Vec<u8>;
        if msg.is_request() {
            if self.sanity.as_ref().is_some_and(|s| !s.passes(&msg)) {
                return None;
            }
            let dialog = msg.to_tag().flatten().is_some_and(|t| !t.is_empty());
            let mut direction = 0;
            if dialog {
                direction = route_direction(&msg)?;
                cookie = if direction == 0 {
                    b"dc".to_vec()
                } else {
                    b"uc".to_vec()
                };
            } else {
                cookie = b"di".to_vec();
            }
            if dialog {
                self.unmask_ruri(&msg, &mut edits);
                self.unmask_route(&msg, &mut edits);
                if method.eq_ignore_ascii_case(b"REFER") {
                    self.unmask_refer_to(&msg, &mut edits);
                }
                if direction == 1 {
                    self.unmask_callid(&msg, &mut edits);
                }
            }
        } else {
            // One Via: a reply to a request of ours; only CANCEL's is handled.
            if vias.len() < 2 && !method.eq_ignore_ascii_case(b"CANCEL") {
                return None;
            }
            cookie = b"xx".to_vec();
            self.unmask_via(&vias, &buf, &mut cookie, &mut edits);
            self.flip_record_route(env, &msg, false, &mut edits);
            if cookie.first() == Some(&b'u') {
                cookie = b"dc".to_vec();
            } else {
                cookie = b"uc".to_vec();
                self.unmask_callid(&msg, &mut edits);
            }
        }
        // The cookie: a header at the end of the header section, and a
        // parameter first on the top Via.
        let mut header = Vec::with_capacity(COOKIE.len() + cookie.len() + 5);
        header.extend_from_slice(COOKIE);
        header.extend_from_slice(b": ");
        header.extend_from_slice(&cookie);
        header.extend_from_slice(b"h\r\n");
        let end = msg.headers_end();
        edits.replace(end, end, header);
        if let Some((base, Ok(top))) = msg.top_via() {
            let at = base + top.sent_by_range().end;
            let mut param = Vec::with_capacity(COOKIE.len() + cookie.len() + 3);
            param.push(b';');
            param.extend_from_slice(COOKIE);
            param.push(b'=');
            param.extend_from_slice(&cookie);
            param.push(b'v');
            edits.replace(at, at, param);
        }
        Some(edits.apply(&buf))
    }

    fn unmask_ruri(&self, msg: &Message, edits: &mut Edits) {
        let (Some(span), Some(uri)) = (msg.uri_span(), msg.request_uri()) else {
            return;
        };
        if self.uri_prefix_checks && !self.has_uri_prefix(uri) {
            return;
        }
        if let Some(out) = self.decode_uri_param(uri) {
            edits.replace(span.start as usize, span.end as usize, out);
        }
    }

    fn unmask_route(&self, msg: &Message, edits: &mut Edits) {
        let buf = msg.buf();
        for item in route_uris(msg, HeaderName::Route).iter().skip(1) {
            let uri = &buf[item.start..item.end];
            if self.uri_prefix_checks && !self.has_uri_prefix(uri) {
                continue;
            }
            let Some(v) = uri_param(uri, &self.uparam_name).filter(|v| !v.is_empty()) else {
                continue;
            };
            // A value that does not decode ends the work on Route.
            let Some(out) = self.mask.decode(&v, self.uparam_prefix.len()) else {
                return;
            };
            edits.replace(item.start, item.end, out);
        }
    }

    fn unmask_refer_to(&self, msg: &Message, edits: &mut Edits) {
        let Some(h) = msg.header(HeaderName::ReferTo) else {
            return;
        };
        let Ok(na) = NameAddr::parse(msg.value(h)) else {
            return;
        };
        let r = na.uri_range();
        let uri = na.uri_raw();
        if self.uri_prefix_checks && !self.has_uri_prefix(uri) {
            return;
        }
        let Some(out) = self.decode_uri_param(uri) else {
            return;
        };
        // The URI's headers part (`?Replaces=…`) stays.
        let len = uri.iter().position(|&b| b == b'?').unwrap_or(uri.len());
        let start = h.value.start as usize + r.start;
        edits.replace(start, start + len, out);
    }

    fn unmask_via(&self, vias: &[ViaItem], buf: &[u8], cookie: &mut Vec<u8>, edits: &mut Edits) {
        for (i, item) in vias.iter().enumerate().skip(1) {
            let text = &buf[item.start..item.end];
            let Ok(via) = Via::parse(text) else { return };
            if self.uri_prefix_checks && !via.host_raw().eq_ignore_ascii_case(&self.ip) {
                continue;
            }
            let Some(value) = via.param(&self.vparam_name).and_then(|p| p.value) else {
                return;
            };
            let p = &self.vparam_prefix;
            if !p.is_empty() && (value.len() <= p.len() || !value.starts_with(p)) {
                continue;
            }
            let Some(out) = self.mask.decode(value, p.len()) else {
                return;
            };
            if i == 1 {
                let Ok(decoded) = Via::parse(&out) else {
                    return;
                };
                let Some(c) = decoded.param(COOKIE).and_then(|p| p.value) else {
                    return;
                };
                *cookie = c.to_vec();
            }
            edits.replace(item.start, item.end, out);
        }
    }

    /// Record-Route of a reply: decoded coming in (`outgoing` false), the
    /// entries before ours masked going out.
    fn flip_record_route(&self, env: &Env, msg: &Message, outgoing: bool, edits: &mut Edits) {
        let buf = msg.buf();
        let myself = self.mask_addr_myself(env);
        let mut act = if outgoing { 2 } else { 0 };
        for item in route_uris(msg, HeaderName::RecordRoute) {
            let uri = &buf[item.start..item.end];
            let Some(mut kind) = self.uri_type(env, uri, myself) else {
                continue;
            };
            if outgoing {
                if let UriType::Skip { r2 } = kind {
                    if !r2 {
                        return;
                    }
                    act -= 1;
                    if act == 0 {
                        return;
                    }
                    kind = UriType::Other;
                }
            }
            match kind {
                UriType::Other if outgoing && act != 0 => {
                    edits.replace(
                        item.start,
                        item.end,
                        self.mask.encode(uri, &self.uri_prefix),
                    );
                }
                UriType::Masked(v) if !outgoing => {
                    let Some(out) = self.mask.decode(&v, self.uparam_prefix.len()) else {
                        return;
                    };
                    edits.replace(item.start, item.end, out);
                }
                _ => {}
            }
        }
    }

    /// A message about to be sent, masked; `None`: send it as it is.
    pub fn outgoing(&self, env: &Env, data: &Bytes) -> Option<Bytes> {
        let View { msg, vias, method } = view(data)?;
        let buf = msg.buf().clone();
        let mut edits = Edits::default();
        // The cookie: the header, else the top Via's parameter.
        let header = msg.headers_named(COOKIE).next().copied();
        let top = msg.top_via().and_then(|(base, v)| {
            let v = v.ok()?;
            let r = v.param_range(COOKIE)?;
            Some((
                base + r.start,
                base + r.end,
                v.param(COOKIE)?.value?.to_vec(),
            ))
        });
        let cookie: Vec<u8> = match (&header, &top) {
            (Some(h), _) => msg.value(h).to_vec(),
            (None, Some((_, _, v))) => v.clone(),
            _ => b"xxx".to_vec(),
        };
        let first = cookie.first().copied().unwrap_or(b'x');
        if first != b'x' {
            if let Some(h) = &header {
                edits.replace(h.line.start as usize, h.line.end as usize, Vec::new());
            }
            if !msg.is_request() {
                if let Some((s, e, _)) = &top {
                    edits.replace(*s, *e, Vec::new());
                }
            }
        }
        if msg.is_request() {
            let upstream = first == b'u';
            let dialog = msg.to_tag().flatten().is_some_and(|t| !t.is_empty());
            let local = if vias.len() < 2 {
                if !upstream && cookie.get(1) == Some(&b'l') {
                    2
                } else {
                    1
                }
            } else if first != b'd' && first != b'u' {
                1
            } else {
                0
            };
            if local != 0 {
                // ACK and CANCEL go downstream.
                if method.eq_ignore_ascii_case(b"ACK")
                    || method.eq_ignore_ascii_case(b"CANCEL")
                    || local == 2
                {
                    self.mask_callid(&msg, &mut edits);
                    return Some(edits.apply(&buf));
                }
                return None;
            }
            self.mask_vias(&vias, &buf, &mut edits);
            self.mask_contact(&msg, &mut edits);
            self.mask_record_route(&msg, &mut edits);
            if dialog {
                if !upstream {
                    self.mask_callid(&msg, &mut edits);
                }
            } else {
                if method.eq_ignore_ascii_case(b"INVITE") {
                    self.update_replaces(&msg, &mut edits);
                }
                self.mask_callid(&msg, &mut edits);
            }
        } else {
            match cookie.last() {
                Some(b'x') | None => return None,
                Some(b'v') => {
                    // A reply made here: the request told the direction.
                    if first == b'u' {
                        self.mask_callid(&msg, &mut edits);
                    }
                }
                Some(_) => {
                    self.flip_record_route(env, &msg, true, &mut edits);
                    // A redirect's Contact too: Kamailio 5.6 has no
                    // `mask_mode` to keep it.
                    self.mask_contact(&msg, &mut edits);
                    if first == b'd' {
                        self.mask_callid(&msg, &mut edits);
                    }
                }
            }
        }
        Some(edits.apply(&buf))
    }

    fn mask_vias(&self, vias: &[ViaItem], buf: &[u8], edits: &mut Edits) {
        for item in vias.iter().skip(1) {
            let out = self
                .mask
                .encode(&buf[item.start..item.end], &self.via_prefix);
            edits.replace(item.start, item.end, out);
        }
    }

    fn mask_contact(&self, msg: &Message, edits: &mut Edits) {
        let Some(h) = msg.header(HeaderName::Contact) else {
            return;
        };
        let Some(Ok(Contact::Addr(na))) = contacts(msg.value(h)).next() else {
            return;
        };
        let r = na.uri_range();
        let start = h.value.start as usize + r.start;
        let uri = na.uri_raw();
        let out = if na.has_brackets() {
            self.mask.encode(uri, &self.uri_prefix)
        } else {
            let mut o = vec![b'<'];
            self.mask.encode_into(uri, &self.uri_prefix, &mut o);
            o.push(b'>');
            o
        };
        edits.replace(start, start + uri.len(), out);
    }

    fn mask_record_route(&self, msg: &Message, edits: &mut Edits) {
        let buf = msg.buf();
        for item in route_uris(msg, HeaderName::RecordRoute).iter().skip(1) {
            let out = self
                .mask
                .encode(&buf[item.start..item.end], &self.uri_prefix);
            edits.replace(item.start, item.end, out);
        }
    }

    /// The Call-ID in `Replaces` of an initial INVITE: decoded when masked,
    /// masked when not.
    fn update_replaces(&self, msg: &Message, edits: &mut Edits) {
        if !self.mask_callid {
            return;
        }
        let Some(h) = msg.headers_named(b"Replaces").next() else {
            return;
        };
        let v = msg.value(h);
        let len = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        let callid = &v[..len];
        let p = &self.callid_prefix;
        let out = if callid.len() > p.len() && callid.starts_with(p) {
            self.mask.decode(callid, p.len())
        } else {
            Some(self.mask.encode(callid, p))
        };
        if let Some(out) = out {
            let start = h.value.start as usize;
            edits.replace(start, start + len, out);
        }
    }
}

/// Which way an in-dialog request goes (Kamailio's `th_route_direction`):
/// 0 downstream (no Route, no `ftag`, or `ftag` is the From tag), 1
/// upstream; `None` without a From tag or with an unreadable first Route.
fn route_direction(msg: &Message) -> Option<u8> {
    let tag = from_tag(msg).filter(|t| !t.is_empty())?;
    let Some(first) = route_uris_first(msg)? else {
        return Some(0);
    };
    match uri_param(&first, b"ftag") {
        Some(ftag) if ftag != tag => Some(1),
        _ => Some(0),
    }
}

/// The first Route URI: `Some(None)` without Route, `None` when unreadable.
fn route_uris_first(msg: &Message) -> Option<Option<Vec<u8>>> {
    let Some(h) = msg.header(HeaderName::Route) else {
        return Some(None);
    };
    let na = crate::sip::nameaddr::name_addrs(msg.value(h))
        .next()?
        .ok()?;
    Uri::parse(na.uri_raw()).ok()?;
    Some(Some(na.uri_raw().to_vec()))
}
