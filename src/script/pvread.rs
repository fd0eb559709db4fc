//! Reading pseudo-variables (KAMAILIO-REFERENCE §1.7). Values borrow the
//! message or the context whenever they can, so a route that only compares
//! allocates nothing; the addresses `$si`, `$Ri` and `$su` are formatted once
//! per message into the context.
//!
//! Null semantics: a missing header, AVP, XAVP, hash-table item or message
//! part is `$null`; an unset `$var` is the integer 0.

use super::attrs::Xavp;
use super::ctx::{AddrText, MsgCtx, UriParts};
use super::pvkind::BranchAttr;
use super::pvkind::{
    AuthPart, AvpKey, ContactPart, CseqPart, FlagSet, LocalSockForm, MsgPart, NamePart, PvIndex,
    PvKind, PvRef, RuriPart, Select, ShtOp, SndPart, TimeField, TmField, TmOther, TvPart, UriField,
    UriSrc, UserOf, ViaAttr, ViaField, ViaPos, XavpPath,
};
use super::registry::RouteType;
use super::timefmt;
use super::transform;
use super::value::Value;
use crate::sip::auth::Credentials;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::via::vias;
use crate::sip::{HeaderName, Message};

/// How a pseudo-variable's index reads, after evaluating `[$var(i)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idx {
    /// No index: the first (newest) value.
    First,
    At(i32),
    All,
}

impl<'a> MsgCtx<'a> {
    /// Reads a pseudo-variable, with its index and transformations.
    pub fn read_pv<'s>(&'s self, pv: &'s PvRef) -> Value<'s> {
        let v = self.read_base(pv);
        match &pv.transforms {
            None => v,
            Some(ops) => transform::apply(self, ops, v).unwrap_or(Value::Null),
        }
    }

    /// `$branch(attr)` of the branch that `index` names (none: the first;
    /// negative: from the end).
    fn branch_attr<'s>(&'s self, attr: BranchAttr, index: &Option<PvIndex>) -> Value<'s> {
        if attr == BranchAttr::Count {
            return Value::Int(self.branches.len() as i64);
        }
        let n = self.branches.len() as i64;
        let i = match self.index_of(index) {
            Idx::First => 0,
            Idx::At(i) if i < 0 => n + i64::from(i),
            Idx::At(i) => i64::from(i),
            Idx::All => return Value::Null,
        };
        let Some(b) = usize::try_from(i).ok().and_then(|i| self.branches.get(i)) else {
            return Value::Null;
        };
        let opt = |v: &'s Option<bytes::Bytes>| v.as_deref().map_or(Value::Null, Value::str);
        match attr {
            BranchAttr::Uri => Value::str(&b.uri),
            BranchAttr::DstUri => opt(&b.dst_uri),
            BranchAttr::Path => opt(&b.path),
            BranchAttr::Socket => opt(&b.socket),
            BranchAttr::Flags => Value::Int(i64::from(b.flags)),
            BranchAttr::Q => Value::Int(i64::from(b.q)),
            BranchAttr::Count => Value::Int(self.branches.len() as i64),
        }
    }

    /// The index of `pv` for this message.
    pub(crate) fn index_of(&self, index: &Option<PvIndex>) -> Idx {
        match index {
            None => Idx::First,
            Some(PvIndex::At(i)) => Idx::At(*i),
            Some(PvIndex::All) => Idx::All,
            Some(PvIndex::Pv(p)) => {
                let i = self.read_pv(p).to_int();
                Idx::At(i32::try_from(i).unwrap_or(i32::MAX))
            }
        }
    }

    fn read_base<'s>(&'s self, pv: &'s PvRef) -> Value<'s> {
        let msg: &'a Message = self.msg;
        let opt = |v: Option<&'a [u8]>| v.map_or(Value::Null, Value::str);
        let int = |i: i64| Value::Int(i);
        match &pv.kind {
            PvKind::Ru => {
                if msg.is_request() {
                    Value::str(self.ruri())
                } else {
                    Value::Null
                }
            }
            PvKind::Ou => opt(msg.request_uri()),
            PvKind::OUser => msg
                .request_uri()
                .and_then(|u| Uri::parse(u).ok())
                .and_then(|u| u.user())
                .map_or(Value::Null, Value::str),
            PvKind::RUser | PvKind::RHost | PvKind::RPort | PvKind::RScheme => {
                if !msg.is_request() {
                    return Value::Null;
                }
                let part = match pv.kind {
                    PvKind::RUser => RuriPart::User,
                    PvKind::RHost => RuriPart::Host,
                    PvKind::RPort => RuriPart::Port,
                    _ => {
                        let ru = self.ruri();
                        return match ru.iter().position(|&b| b == b':') {
                            Some(i) => Value::str(&ru[..i]),
                            None => Value::Null,
                        };
                    }
                };
                match &self.new_uri {
                    Some(u) => ruri_part(u, part),
                    None => self.received_ruri_part(part),
                }
            }
            PvKind::From(part) => name_part(msg, HeaderName::From, *part),
            PvKind::To(part) => name_part(msg, HeaderName::To, *part),
            PvKind::Du => self.dst_uri.as_deref().map_or(Value::Null, Value::str),
            PvKind::Rm => Value::str(msg.method_bytes()),
            PvKind::Rs => self
                .state
                .reply_status
                .or(msg.status())
                .map_or(Value::Null, |c| int(i64::from(c))),
            PvKind::Rr => opt(msg.reason()),
            PvKind::Ci => opt(msg.call_id()),
            // A string in Kamailio (`$cs + 1` is "51" for CSeq 5), and
            // whatever the number token is (`CSeq: x INVITE` gives "x").
            PvKind::Cs => opt(msg.cseq_number()),
            PvKind::Si => {
                let t = self
                    .cache
                    .src_ip
                    .get_or_init(|| AddrText::new(format_args!("{}", self.src.ip())));
                Value::str(t.as_bytes())
            }
            PvKind::Sp => int(i64::from(self.src.port())),
            PvKind::Su => {
                let t = self.cache.src_uri.get_or_init(|| match self.src {
                    std::net::SocketAddr::V4(a) => {
                        AddrText::new(format_args!("sip:{}:{}", a.ip(), a.port()))
                    }
                    std::net::SocketAddr::V6(a) => {
                        AddrText::new(format_args!("sip:[{}]:{}", a.ip(), a.port()))
                    }
                });
                Value::str(t.as_bytes())
            }
            PvKind::Ri => {
                let t = self
                    .cache
                    .local_ip
                    .get_or_init(|| AddrText::new(format_args!("{}", self.local.ip())));
                Value::str(t.as_bytes())
            }
            PvKind::Rp => int(i64::from(self.local.port())),
            PvKind::Rn => self.socket_name(Some(self.socket)),
            PvKind::Fsn => self.socket_name(self.force_socket),
            PvKind::Proto => Value::str(self.proto.lower_name().as_bytes()),
            PvKind::Af => Value::str(if self.local.is_ipv4() {
                b"INET"
            } else {
                b"INET6"
            }),
            PvKind::Ua => opt(msg.header_value(HeaderName::UserAgent)),
            // The datagram as received, bytes past Content-Length included
            // (Kamailio's msg->buf and msg->len; parity.cfg shows it).
            PvKind::Mb => Value::str(msg.buf()),
            PvKind::Ml => int(msg.buf().len() as i64),
            PvKind::Mt => int(if msg.is_request() { 1 } else { 2 }),
            PvKind::Rb => Value::str(msg.body()),
            PvKind::Bs => int(msg.body().len() as i64),
            PvKind::Ct => opt(msg.header_value(HeaderName::Contact)),
            PvKind::Cl if msg.broken_header().is_some() => Value::Null,
            PvKind::Cl => msg
                .header_value(HeaderName::ContentLength)
                .map_or(Value::Null, |v| {
                    Value::str(v).as_exact_int().map_or(Value::Null, Value::Int)
                }),
            PvKind::Retcode => int(i64::from(self.retcode)),
            PvKind::Mf => int((self.flags & 0xffff_ffff) as i64),
            PvKind::Bf => int(i64::from(self.state.bflags)),
            PvKind::Null => Value::Null,
            PvKind::Const(v) => v.as_ref(),
            PvKind::VarNull(slot) => self
                .core
                .vars
                .get(*slot as usize)
                .map_or(Value::Null, Value::as_ref),
            PvKind::Var(slot) => self
                .core
                .vars
                .get(*slot as usize)
                .map_or(Value::Int(0), Value::as_ref),
            PvKind::Hdr(key) => self.header(&key.name, self.index_of(&pv.index)),
            PvKind::Fmt(f) => Value::owned(self.format(f)),
            PvKind::WsConid => Value::Int(crate::modules::websocket::conid(self)),
            // Outside the expired event Kamailio reads "" (5.6, live).
            PvKind::ShtRecord(value) => match &self.core.sht_record {
                Some((k, v)) => {
                    if *value {
                        v.clone()
                    } else {
                        Value::owned(k.clone())
                    }
                }
                None => Value::str(b""),
            },
            PvKind::HdrDyn(name) => {
                let name = self.format(name);
                self.header(&name, self.index_of(&pv.index))
            }
            PvKind::Hdrc(key) => int(msg.headers_named(&key.name).count() as i64),
            PvKind::Avp(key) => self.avp(key, self.index_of(&pv.index)),
            PvKind::AvpDyn(name) => {
                let key = AvpKey::Str(self.format(name).into());
                self.avp(&key, self.index_of(&pv.index)).into_owned()
            }
            PvKind::Xavp(path) => self.xavp(path),
            PvKind::Shv(slot) => self.env.shared.shv(*slot).unwrap_or(Value::Int(0)),
            PvKind::Sht(sht) => {
                let Some(table) = self.env.shared.htable(sht.table) else {
                    return Value::Null;
                };
                let key = self.format_cow(&sht.key);
                match sht.op {
                    ShtOp::Value => table.get(&key, self.now).unwrap_or(Value::Null),
                    ShtOp::Inc => table.add(&key, 1, self.now).map_or(Value::Null, Value::Int),
                    ShtOp::Dec => table
                        .add(&key, -1, self.now)
                        .map_or(Value::Null, Value::Int),
                    ShtOp::Expire => Value::Int(table.expires_in(&key, self.now) as i64),
                    ShtOp::CountNames => Value::Int(table.count_matching(&key, false, self.now)),
                    ShtOp::CountValues => Value::Int(table.count_matching(&key, true, self.now)),
                }
            }
            PvKind::Dlg(d) => crate::modules::dialog::pv::read(self, d),
            PvKind::Mq(m) => crate::modules::mqueue::read(self, m),
            PvKind::Dbr(d) => crate::modules::sqlops::pv::read(self, d),
            PvKind::Ulc(u) => {
                let index = match self.index_of(&pv.index) {
                    Idx::At(i) => Some(i),
                    Idx::First | Idx::All => None,
                };
                crate::modules::registrar::fetch::read(self, u, index)
            }
            PvKind::UacReq(f) => crate::modules::uac::send::read(self, *f),
            PvKind::JsonRpl(f) => crate::modules::jsonrpcs::read_jsonrpl(self, *f),
            PvKind::Tm(field) => self.tm_field(*field),
            PvKind::TmOther(which, inner) => self.read_tm_other(*which, inner),
            PvKind::Cnt(inner) => int(self.count_values(inner)),
            PvKind::ViaPv(pos, attr) => via_pv(msg, *pos, *attr),
            PvKind::Hfl(key) => hfl(msg, key, self.index_of(&pv.index)),
            PvKind::LocalSock(form) => self.local_sock(*form),
            PvKind::UserLen(of) => {
                let user = match of {
                    UserOf::From => name_part(msg, HeaderName::From, NamePart::User),
                    UserOf::To => name_part(msg, HeaderName::To, NamePart::User),
                    UserOf::Ruri if msg.is_request() => match &self.new_uri {
                        Some(u) => ruri_part(u, RuriPart::User),
                        None => self.received_ruri_part(RuriPart::User),
                    },
                    UserOf::OrigRuri => msg
                        .request_uri()
                        .map_or(Value::Null, |u| ruri_part(u, RuriPart::User)),
                    UserOf::Ruri => Value::Null,
                };
                match user {
                    Value::Null => int(0),
                    v => int(v.to_bytes().len() as i64),
                }
            }
            PvKind::AccUser(with_domain) => acc_user(msg, *with_domain),
            PvKind::Mbu => {
                let mut out = Vec::with_capacity(msg.len() + 256);
                crate::sip::edit::serialize(msg, &self.edits, &mut out);
                Value::owned(out)
            }
            PvKind::BootTime => int(self.env.clock.unix_at_base.as_secs() as i64),
            PvKind::ConnId => self.conn.map_or(Value::Null, |c| int(c.raw() as i64)),
            PvKind::Ts => int(self.unix_now.as_secs() as i64),
            PvKind::Tv(part) => {
                let (s, us) = (self.unix_now.as_secs(), self.unix_now.subsec_micros());
                match part {
                    TvPart::Sec => int(s as i64),
                    TvPart::Usec => int(i64::from(us)),
                    TvPart::SecUsec => Value::owned(format!("{s}.{us:06}").into_bytes()),
                }
            }
            PvKind::Pp => int(i64::from(self.env.pid)),
            PvKind::Random => self
                .env
                .services
                .get::<crate::modules::cfgutils::Cfgutils>()
                .map_or(Value::Null, |c| int(i64::from(c.random()))),
            PvKind::Stat(name) => self
                .env
                .services
                .get::<crate::modules::statistics::Statistics>()
                .and_then(|s| s.value(name))
                .map_or(Value::Null, int),
            PvKind::SdpBody => crate::modules::sdpops::body_value(self),
            PvKind::Mi => int(self.core.msg_id as i64),
            PvKind::Rmid => {
                let method = if msg.is_request() {
                    msg.method_bytes()
                } else {
                    msg.header_value(HeaderName::CSeq)
                        .and_then(|v| crate::sip::headers::CSeq::parse(v).ok())
                        .map_or(&b""[..], |c| c.method.as_bytes())
                };
                int(i64::from(method_id(method)))
            }
            PvKind::Mts => Value::str(if msg.is_request() { b"rq" } else { b"rp" }),
            PvKind::Prid => int(match self.proto {
                crate::sip::Proto::Udp => 1,
                crate::sip::Proto::Tcp => 2,
                crate::sip::Proto::Tls => 3,
                crate::sip::Proto::Sctp => 4,
                crate::sip::Proto::Ws => 5,
                crate::sip::Proto::Wss => 6,
            }),
            PvKind::ReferTo => header_uri(
                msg,
                msg.headers_named(b"Refer-To").next().map(|h| msg.value(h)),
            ),
            PvKind::Sruid => Value::owned(sruid(self)),
            // Set by registrar's lookup() once it exists.
            PvKind::Ruid => Value::Null,
            PvKind::Br => self
                .branches
                .first()
                .map_or(Value::Null, |b| Value::str(&b.uri)),
            PvKind::BrAll => {
                if self.branches.is_empty() {
                    return Value::Null;
                }
                // Kamailio 5.6 (sidebyside parity_script.cfg): ", " between
                // branches, `<uri>;q=0.5` for a branch with a q, the bare
                // URI otherwise; `$du` and the path are not shown.
                let mut all = Vec::new();
                for (i, b) in self.branches.iter().enumerate() {
                    if i > 0 {
                        all.extend_from_slice(b", ");
                    }
                    if b.q < 0 {
                        all.extend_from_slice(&b.uri);
                    } else {
                        all.push(b'<');
                        all.extend_from_slice(&b.uri);
                        all.extend_from_slice(b">;q=");
                        let q = i16::try_from(b.q).unwrap_or(i16::MAX);
                        all.extend_from_slice(crate::modules::registrar::q_text(q).as_bytes());
                    }
                }
                Value::owned(all)
            }
            PvKind::Branch(attr) => self.branch_attr(*attr, &pv.index),
            PvKind::SBranch(attr) => {
                let Some(b) = self.core.sbranch.as_ref() else {
                    return Value::Null;
                };
                let opt =
                    |v: &'s Option<bytes::Bytes>| v.as_deref().map_or(Value::Null, Value::str);
                match attr {
                    BranchAttr::Uri if b.uri.is_empty() => Value::Null,
                    BranchAttr::Uri => Value::str(&b.uri),
                    BranchAttr::DstUri => opt(&b.dst_uri),
                    BranchAttr::Path => opt(&b.path),
                    BranchAttr::Socket => opt(&b.socket),
                    BranchAttr::Flags => Value::Int(i64::from(b.flags)),
                    BranchAttr::Q if b.q < 0 => Value::Null,
                    BranchAttr::Q => Value::Int(i64::from(b.q)),
                    BranchAttr::Count => Value::Int(1),
                }
            }
            PvKind::Ai => header_uri(msg, msg.header_value(HeaderName::PAssertedIdentity)),
            PvKind::Di => header_uri(
                msg,
                msg.headers_named(b"Diversion").next().map(|h| msg.value(h)),
            ),
            PvKind::Auth(part) => auth_part(msg, *part),
            PvKind::Fs => match self
                .force_socket
                .and_then(|s| self.env.sockets.get(usize::from(s)))
            {
                Some(s) => Value::owned(
                    format!(
                        "{}:{}",
                        s.proto.lower_name(),
                        super::ctx::fmt_hostport(s.addr)
                    )
                    .into_bytes(),
                ),
                None => Value::Null,
            },
            // A select that finds nothing reads "" in Kamailio 5.6.
            PvKind::Sel(sel) => match self.select(sel) {
                Value::Null => Value::str(b""),
                v => v,
            },
            PvKind::ShtIter(name, key) => match self.sht_iters.current(name) {
                Some((k, _)) if *key => Value::str(k),
                Some((_, v)) => v.as_ref(),
                None => Value::Null,
            },
            PvKind::UriAttr(src, field) => {
                if !msg.is_request() {
                    return Value::Null;
                }
                let uri = match src {
                    UriSrc::Dst => self.dst_uri.as_deref(),
                    UriSrc::Orig => msg.request_uri(),
                    UriSrc::Cur => Some(self.ruri()),
                    UriSrc::NextHop => self.dst_uri.as_deref().or_else(|| Some(self.ruri())),
                };
                uri_attr(uri, *field)
            }
            PvKind::ContentType => opt(msg.header_value(HeaderName::ContentType)),
            PvKind::Re => header_uri(
                msg,
                msg.headers_named(b"Remote-Party-ID")
                    .next()
                    .map(|h| msg.value(h)),
            ),
            PvKind::Ppi(part) => {
                let Some(value) = msg
                    .headers_named(b"P-Preferred-Identity")
                    .next()
                    .map(|h| msg.value(h))
                else {
                    return Value::Null;
                };
                let Some(Ok(na)) = crate::sip::nameaddr::name_addrs(value).next() else {
                    return Value::Null;
                };
                match part {
                    NamePart::Display => {
                        transform::display_raw(value, &na).map_or(Value::Null, Value::str)
                    }
                    NamePart::Tag => Value::Null,
                    NamePart::Uri => Value::str(na.uri_raw()),
                    NamePart::User | NamePart::Host => uri_attr(
                        Some(na.uri_raw()),
                        match part {
                            NamePart::User => UriField::User,
                            _ => UriField::Host,
                        },
                    ),
                }
            }
            PvKind::Rv => {
                let line = msg.slice(msg.start_line());
                let version = if msg.is_request() {
                    line.rsplit(|&b| b == b' ').next()
                } else {
                    line.split(|&b| b == b' ').next()
                };
                version.map_or(Value::Null, Value::str)
            }
            PvKind::SrcUriTransport => Value::owned(
                format!(
                    "sip:{};transport={}",
                    super::ctx::fmt_hostport(self.src),
                    self.proto.lower_name()
                )
                .into_bytes(),
            ),
            PvKind::SrcSocket => Value::owned(
                format!(
                    "{}:{}",
                    self.proto.lower_name(),
                    super::ctx::fmt_hostport(self.src)
                )
                .into_bytes(),
            ),
            PvKind::SrcIpBracketed => Value::owned(
                match self.src.ip() {
                    std::net::IpAddr::V4(ip) => ip.to_string(),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                }
                .into_bytes(),
            ),
            PvKind::Hflc(key) => {
                let split = matches!(
                    key.id,
                    HeaderName::Via
                        | HeaderName::Route
                        | HeaderName::RecordRoute
                        | HeaderName::Contact
                );
                let n: usize = msg
                    .headers_named(&key.name)
                    .map(|h| {
                        let values = crate::sip::scan::split_values(msg.value(h));
                        match key.id {
                            HeaderName::Via => values.with_comments().count(),
                            _ if split => values.count(),
                            _ => 1,
                        }
                    })
                    .sum();
                int(n as i64)
            }
            PvKind::Sf => int(i64::from(self.state.sflags)),
            PvKind::FlagsHex(set) => {
                let v = match set {
                    FlagSet::Msg => (self.flags & 0xffff_ffff) as u32,
                    FlagSet::Branch => self.state.bflags,
                    FlagSet::Script => self.state.sflags,
                };
                Value::owned(format!("{v:08X}").into_bytes())
            }
            PvKind::Time(field) => {
                let t = timefmt::utc(self.unix_now.as_secs() as i64);
                int(i64::from(match field {
                    TimeField::Sec => t.sec,
                    TimeField::Min => t.min,
                    TimeField::Hour => t.hour,
                    TimeField::Mday => t.mday,
                    TimeField::Mon => t.mon,
                    TimeField::Year => return int(t.year),
                    TimeField::Wday => t.wday + 1,
                    TimeField::Yday => t.yday + 1,
                    TimeField::Isdst => 0,
                }))
            }
            PvKind::TimeFmt(fmt, utc) => {
                let t = timefmt::utc(self.unix_now.as_secs() as i64);
                timefmt::strftime(fmt, &t, if *utc { "GMT" } else { "UTC" })
                    .map_or(Value::Null, Value::owned)
            }
            PvKind::TimeText => Value::owned(timefmt::ctime(&timefmt::utc(
                self.unix_now.as_secs() as i64,
            ))),
            PvKind::Snd(part) => match self.send_dst {
                None => Value::Null,
                Some((addr, proto)) => match part {
                    SndPart::Ip => Value::owned(addr.ip().to_string().into_bytes()),
                    SndPart::Port => int(i64::from(addr.port())),
                    SndPart::Proto => Value::str(proto.lower_name().as_bytes()),
                    SndPart::Af => Value::str(if addr.is_ipv4() { b"INET" } else { b"INET6" }),
                    SndPart::Buf => self
                        .send_buf
                        .as_ref()
                        .map_or(Value::Null, |b| Value::str(b)),
                    SndPart::Len => self
                        .send_buf
                        .as_ref()
                        .map_or(Value::Null, |b| int(b.len() as i64)),
                    SndPart::LocalIp => self.send_local.map_or(Value::Null, |a| {
                        Value::owned(a.ip().to_string().into_bytes())
                    }),
                    SndPart::LocalPort => self
                        .send_local
                        .map_or(Value::Null, |a| int(i64::from(a.port()))),
                },
            },
        }
    }

    /// `$T(name)` and the older `$T_reply_code`, `$T_reply_reason`,
    /// `$T_branch_idx`, per route type as tmx reads them.
    fn tm_field(&self, field: TmField) -> Value<'_> {
        let int = |i: i64| Value::Int(i);
        let in_reply = matches!(self.route_type, RouteType::OnReply | RouteType::Reply);
        let table = self.core.tm.as_ref();
        let tid = self.t.tid;
        match field {
            TmField::ReplyCode if in_reply => {
                self.msg.status().map_or(int(0), |c| int(i64::from(c)))
            }
            // Request and branch routes: the last status sent upstream.
            TmField::ReplyCode
                if matches!(self.route_type, RouteType::Request | RouteType::Branch) =>
            {
                int(i64::from(
                    tid.and_then(|t| table?.status(t))
                        .unwrap_or(self.t.reply_code),
                ))
            }
            TmField::ReplyCode => int(i64::from(self.t.reply_code)),
            // Request route: the branches added so far; failure route: the
            // transaction's branches and those added since.
            TmField::BranchIndex => match self.route_type {
                RouteType::Request => int(self.branches.len() as i64),
                RouteType::Failure => int((tid
                    .and_then(|t| table.map(|tb| tb.branch_count(t)))
                    .unwrap_or(0)
                    + self.branches.len()) as i64),
                _ => int(i64::from(self.t.branch_idx)),
            },
            TmField::ReplyReason if in_reply => self.msg.reason().map_or(Value::Null, Value::str),
            // Failure route: the winning reply's reason (a local one's text).
            TmField::ReplyReason if self.route_type == RouteType::Failure => {
                let (Some(tid), Some(table)) = (tid, table) else {
                    return Value::str(b"");
                };
                let Some((branch, code)) = table.winning(tid) else {
                    return Value::str(b"");
                };
                match table
                    .branch_reply(tid, branch)
                    .and_then(|b| Message::parse(b.clone()).ok())
                {
                    Some(reply) => reply
                        .reason()
                        .map_or(Value::str(b""), |r| Value::owned(r.to_vec())),
                    None => Value::str(crate::tm::cell::reason_of(code)),
                }
            }
            // Kamailio reads an empty reason elsewhere.
            TmField::ReplyReason => Value::str(b""),
            TmField::ReplyType => tid.map_or(Value::Null, |_| int(0)),
            TmField::IdIndex => tid.map_or(Value::Null, |t| int(i64::from(t.slot))),
            // Kamailio 5.6's tmx reads the label for `ruid` too.
            TmField::IdLabel | TmField::Ruid => tid.map_or(Value::Null, |t| int(i64::from(t.gen))),
            TmField::BranchUri | TmField::BranchFlags | TmField::BranchRuid => {
                self.tm_branch(field)
            }
        }
    }

    /// `$T_branch(uri|flags|ruid)`, as tmx 5.6 reads them (checked live):
    /// `$null` without a transaction; `uri` in onreply_route only, `flags`
    /// in onreply_route (the reply's branch) and failure_route (the winning
    /// branch), `$null` elsewhere; `ruid` reads "" wherever there is a
    /// transaction (ringsip keeps no location record id with a branch, as
    /// Kamailio's branches without one).
    fn tm_branch(&self, field: TmField) -> Value<'static> {
        let (Some(tid), Some(table)) = (self.t.tid, self.core.tm.as_ref()) else {
            return Value::Null;
        };
        let branch = match self.route_type {
            RouteType::OnReply => u8::try_from(self.t.branch_idx).ok(),
            RouteType::Failure if field == TmField::BranchFlags => {
                table.winning(tid).map(|(b, _)| b)
            }
            _ if field == TmField::BranchRuid => return Value::str(b""),
            _ => None,
        };
        let Some(branch) = branch else {
            return Value::Null;
        };
        match field {
            TmField::BranchFlags => Value::Int(i64::from(
                table.user(tid).map_or(0, |u| u.bflags(usize::from(branch))),
            )),
            TmField::BranchUri => table
                .branch_request(tid, branch)
                .and_then(|b| Message::parse(b.clone()).ok())
                .and_then(|m| m.request_uri().map(|u| Value::owned(u.to_vec())))
                .unwrap_or(Value::Null),
            _ => Value::str(b""),
        }
    }

    /// `$T_req(pv)`, `$T_rpl(pv)`, `$T_inv(pv)`: `inner` read on another
    /// message of the transaction, as if that message were being routed
    /// (a fresh context: only what the message itself holds, and `$var`).
    /// As in Kamailio, `$T_req` reads in reply routes,
    /// `$T_rpl` in failure routes, `$T_inv` for a CANCEL that matched.
    fn read_tm_other(&self, which: TmOther, inner: &PvRef) -> Value<'static> {
        let Some(table) = self.core.tm.as_ref() else {
            return Value::Null;
        };
        let (bytes, source) = match which {
            TmOther::Request => {
                if !matches!(self.route_type, RouteType::OnReply | RouteType::Reply) {
                    return Value::Null;
                }
                let Some(tid) = self.t.tid else {
                    return Value::Null;
                };
                let source = table.user(tid).and_then(|d| d.source);
                (table.request(tid), source)
            }
            TmOther::Reply => {
                let Some(tid) = self.t.tid.filter(|_| self.route_type == RouteType::Failure) else {
                    return Value::Null;
                };
                let reply = table
                    .winning(tid)
                    .and_then(|(branch, _)| table.branch_reply(tid, branch));
                (reply, None)
            }
            TmOther::Invite => {
                let Some(crate::tm::RequestMatch::Cancel { invite }) = self.t.matched else {
                    return Value::Null;
                };
                let source = table.user(invite).and_then(|d| d.source);
                (table.request(invite), source)
            }
        };
        let Some(other) = bytes.and_then(|b| Message::parse(b.clone()).ok()) else {
            return Value::Null;
        };
        let source = source.unwrap_or(crate::tm::Source {
            src: self.src,
            local: self.local,
            proto: self.proto,
            socket: self.socket,
            conn: self.conn,
        });
        let mut core = super::ctx::CoreState {
            vars: self.core.vars.clone(),
            scratch: Vec::new(),
            tm: None,
            counters: Default::default(),
            msg_id: self.core.msg_id,
            sbranch: None,
            sqlops: Default::default(),
            uac_req: Default::default(),
            jsonrpl: None,
            ulc: Default::default(),
            parked: Default::default(),
            sht_record: None,
            siptrace: Default::default(),
            mqueue: Default::default(),
        };
        let mut out = Vec::new();
        let ctx = MsgCtx::new(
            self.env,
            self.program,
            &mut core,
            &other,
            source,
            self.now,
            self.route_type,
            &mut out,
        );
        ctx.read_pv(inner).into_owned()
    }

    /// `$cnt(pv)`: the number of values of an `$avp` or `$xavp` (for any
    /// other variable: 1 when it is set, else 0).
    fn count_values(&self, inner: &PvRef) -> i64 {
        match &inner.kind {
            PvKind::Avp(key) => self.attrs.avp_values(key).count() as i64,
            PvKind::AvpDyn(name) => {
                let key = AvpKey::Str(self.format(name).into());
                self.attrs.avp_values(&key).count() as i64
            }
            PvKind::Xavp(path) => {
                let mut n = 0;
                match &path.field {
                    None => {
                        while self.attrs.xavp_in(path.class, &path.root, n).is_some() {
                            n += 1;
                        }
                    }
                    // Kamailio 5.6 counts the field in every root of the name.
                    Some((field, _)) => {
                        let mut i = 0;
                        while let Some(root) = self.attrs.xavp_in(path.class, &path.root, i) {
                            n += root.fields_named(field).count() as i32;
                            i += 1;
                        }
                    }
                }
                i64::from(n)
            }
            _ => i64::from(!self.read_pv(inner).is_null()),
        }
    }

    /// The `listen` name of socket `i`, `$null` for none.
    fn socket_name(&self, i: Option<crate::sip::SocketId>) -> Value<'static> {
        i.and_then(|i| self.env.socket_names.get(usize::from(i)))
            .and_then(|n| n.as_deref())
            .map_or(Value::Null, |n| Value::owned(n.as_bytes().to_vec()))
    }

    /// `$Ru`, `$Rut`, `$RAi`, `$RAp`, `$RAu`, `$RAut`.
    fn local_sock(&self, form: LocalSockForm) -> Value<'static> {
        let advertise = self
            .env
            .sockets
            .get(usize::from(self.socket))
            .and_then(|s| s.advertise.as_ref());
        let bound = super::ctx::fmt_hostport(self.local);
        let adv = match advertise {
            Some((host, port)) => format!("{host}:{port}"),
            None => bound.to_string(),
        };
        let proto = self.proto.lower_name();
        Value::owned(
            match form {
                LocalSockForm::Uri => format!("sip:{bound}"),
                LocalSockForm::UriTransport => format!("sip:{bound};transport={proto}"),
                LocalSockForm::AdvUri => format!("sip:{adv}"),
                LocalSockForm::AdvUriTransport => format!("sip:{adv};transport={proto}"),
                LocalSockForm::AdvIp => match advertise {
                    Some((host, _)) => host.clone(),
                    None => self.local.ip().to_string(),
                },
                LocalSockForm::AdvPort => {
                    return Value::Int(i64::from(advertise.map_or(self.local.port(), |a| a.1)))
                }
            }
            .into_bytes(),
        )
    }

    /// A part of the Request-URI as received, parsed once per message.
    fn received_ruri_part(&self, part: RuriPart) -> Value<'a> {
        let msg: &'a Message = self.msg;
        let Some(ru) = msg.request_uri() else {
            return Value::Null;
        };
        let parts = self.cache.received_ruri.get_or_init(|| {
            let uri = Uri::parse(ru).ok()?;
            Some(UriParts {
                user: uri.user().map(|u| transform::range_in(ru, u)),
                host: transform::range_in(ru, uri.host_raw()),
                port: uri.effective_port(),
            })
        });
        let Some(parts) = parts else {
            return Value::Null;
        };
        match part {
            RuriPart::Whole => Value::str(ru),
            RuriPart::User => parts
                .user
                .clone()
                .and_then(|r| ru.get(r))
                .map_or(Value::Null, Value::str),
            RuriPart::Host => ru.get(parts.host.clone()).map_or(Value::Null, Value::str),
            RuriPart::Port => parts.port.map_or(Value::Null, |p| Value::Int(i64::from(p))),
        }
    }

    /// `$hdr(name)` with an index; `[*]` joins the values with `,` (as Kamailio does).
    fn header(&self, name: &[u8], idx: Idx) -> Value<'a> {
        let msg: &'a Message = self.msg;
        // Kamailio parses the whole header section for `$hdr`: a field its
        // parser refuses makes every lookup `$null`.
        if msg.broken_header().is_some() {
            return Value::Null;
        }
        let mut it = msg.headers_named(name);
        let found = match idx {
            Idx::First | Idx::At(0) => it.next(),
            Idx::At(i) if i > 0 => it.nth(i as usize),
            Idx::At(i) => {
                let n = msg.headers_named(name).count();
                n.checked_sub(i.unsigned_abs() as usize)
                    .and_then(|j| msg.headers_named(name).nth(j))
            }
            Idx::All => {
                let mut out = Vec::new();
                for (i, h) in it.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(hdr_body(msg, h));
                }
                return if out.is_empty() && msg.headers_named(name).next().is_none() {
                    Value::Null
                } else {
                    Value::owned(out)
                };
            }
        };
        found.map_or(Value::Null, |h| Value::str(hdr_body(msg, h)))
    }

    /// `$avp(name)`: newest first; a negative index reads `$null` (as in
    /// Kamailio 5.6); `[*]` joins the values with `", "`.
    fn avp(&self, key: &AvpKey, idx: Idx) -> Value<'_> {
        match idx {
            Idx::First => self.attrs.avp(key, 0).map_or(Value::Null, Value::as_ref),
            Idx::At(i) if i >= 0 => self.attrs.avp(key, i).map_or(Value::Null, Value::as_ref),
            Idx::At(_) => Value::Null,
            Idx::All => {
                let mut out = Vec::new();
                for (i, v) in self.attrs.avp_values(key).enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    v.write_to(&mut out);
                }
                if out.is_empty() && self.attrs.avp_values(key).next().is_none() {
                    Value::Null
                } else {
                    Value::owned(out)
                }
            }
        }
    }

    fn xavp(&self, path: &XavpPath) -> Value<'_> {
        let root_idx = match self.index_of(&path.root_index) {
            Idx::First | Idx::All => 0,
            Idx::At(i) => i,
        };
        let Some(root) = self.attrs.xavp_in(path.class, &path.root, root_idx) else {
            return Value::Null;
        };
        let Some((field, field_index)) = &path.field else {
            return root.script_value();
        };
        match self.index_of(field_index) {
            Idx::All => {
                let mut out = Vec::new();
                for (i, x) in root.fields_named(field).enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    x.script_value().write_to(&mut out);
                }
                Value::owned(out)
            }
            Idx::First => root.field(field, 0).map_or(Value::Null, Xavp::script_value),
            Idx::At(i) => root.field(field, i).map_or(Value::Null, Xavp::script_value),
        }
    }

    fn select(&self, sel: &Select) -> Value<'a> {
        let msg: &'a Message = self.msg;
        match sel {
            Select::Via(n, field) => via_field(msg, *n, *field),
            Select::From(part) => name_part(msg, HeaderName::From, *part),
            Select::To(part) => name_part(msg, HeaderName::To, *part),
            Select::Ruri(part) => match (part, msg.request_uri()) {
                (_, None) => Value::Null,
                (RuriPart::Whole, Some(u)) => Value::str(u),
                (part, Some(u)) => ruri_part(u, *part),
            },
            Select::CallId => msg.call_id().map_or(Value::Null, Value::str),
            Select::ViaParam(n, name) => via_param(msg, *n, name),
            Select::Whole(id) => msg.header_value(*id).map_or(Value::Null, Value::str),
            Select::NameParam(id, name) => {
                let Some(value) = msg.header_value(*id) else {
                    return Value::Null;
                };
                let na = if *id == HeaderName::Contact {
                    kamailio_first_contact(value)
                } else {
                    NameAddr::parse(value).ok()
                };
                na.and_then(|na| na.param(name))
                    .map_or(Value::Null, |p| Value::str(p.value.unwrap_or(b"")))
            }
            Select::Contact(part) => {
                let Some(value) = msg.header_value(HeaderName::Contact) else {
                    return Value::Null;
                };
                let Some(na) = kamailio_first_contact(value) else {
                    return Value::Null;
                };
                let param = |n: &[u8]| {
                    na.param(n)
                        .and_then(|p| p.value)
                        .map_or(Value::Null, Value::str)
                };
                match part {
                    ContactPart::Uri => Value::str(na.uri_raw()),
                    ContactPart::User => uri_attr(Some(na.uri_raw()), UriField::User),
                    ContactPart::Host => uri_attr(Some(na.uri_raw()), UriField::Host),
                    ContactPart::Name => {
                        transform::display_raw(value, &na).map_or(Value::Null, Value::str)
                    }
                    ContactPart::Expires => param(b"expires"),
                    ContactPart::Q => param(b"q"),
                }
            }
            Select::Msg(part) => match part {
                MsgPart::Body => Value::str(msg.body()),
                MsgPart::FirstLine => Value::str(msg.slice(msg.start_line())),
                MsgPart::Len => Value::Int(msg.len() as i64),
                MsgPart::Type => Value::Int(if msg.is_request() { 1 } else { 2 }),
            },
            Select::MsgHeader(key) => msg
                .headers_named(&key.name)
                .next()
                .map_or(Value::Null, |h| Value::str(msg.value(h))),
            Select::Cseq(part) => {
                let Some(v) = msg.header_value(HeaderName::CSeq) else {
                    return Value::Null;
                };
                match part {
                    CseqPart::Whole => Value::str(v),
                    CseqPart::Number => {
                        let end = v
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(v.len());
                        Value::str(&v[..end])
                    }
                    CseqPart::Method => {
                        let start = v
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(v.len());
                        Value::str(v[start..].trim_ascii())
                    }
                }
            }
        }
    }
}

/// User, host or port of a request URI; `$null` when absent or unreadable.
fn ruri_part(ru: &[u8], part: RuriPart) -> Value<'_> {
    let Ok(uri) = Uri::parse(ru) else {
        return Value::Null;
    };
    match part {
        RuriPart::Whole => Value::str(ru),
        RuriPart::User => uri.user().map_or(Value::Null, Value::str),
        RuriPart::Host => Value::str(uri.host_raw()),
        RuriPart::Port => uri
            .effective_port()
            .map_or(Value::Null, |p| Value::Int(i64::from(p))),
    }
}

/// A part of a URI for `$dd`, `$op`, `$nh(P)`…: a port not written reads
/// 5060 and a missing `transport` parameter `UDP`, as in Kamailio 5.6.
fn uri_attr(uri: Option<&[u8]>, field: UriField) -> Value<'_> {
    let Some(text) = uri else {
        return Value::Null;
    };
    if field == UriField::Uri {
        return Value::str(text);
    }
    let Ok(u) = Uri::parse(text) else {
        return Value::Null;
    };
    match field {
        UriField::Uri => Value::str(text),
        UriField::User => u.user().map_or(Value::Null, Value::str),
        UriField::Host if u.host_raw().is_empty() => Value::Null,
        UriField::Host => Value::str(u.host_raw()),
        UriField::Port => Value::Int(i64::from(u.port().unwrap_or(5060))),
        UriField::Proto => u
            .param(b"transport")
            .and_then(|p| p.value)
            .map_or(Value::str(b"UDP"), Value::str),
    }
}

/// A part of the From or To header (`$fu`, `$tU`, `$ft`…); `$null` when absent or unreadable.
pub(crate) fn name_part(msg: &Message, id: HeaderName, part: NamePart) -> Value<'_> {
    let Some(value) = msg.header_value(id) else {
        return Value::Null;
    };
    let Ok(na) = NameAddr::parse(value) else {
        return Value::Null;
    };
    match part {
        NamePart::Uri => Value::str(na.uri_raw()),
        NamePart::Tag => na.tag().map_or(Value::Null, Value::str),
        NamePart::Display => transform::display_raw(value, &na).map_or(Value::Null, Value::str),
        NamePart::User | NamePart::Host => {
            let Ok(uri) = na.uri() else {
                return Value::Null;
            };
            match part {
                NamePart::User => uri.user().map_or(Value::Null, Value::str),
                _ => Value::str(uri.host_raw()),
            }
        }
    }
}

/// The URI of a name-addr header value.
/// Kamailio's method ids (parser/msg_parser.h): the RFC 3261 and extension
/// methods by bit, then KDMQ, the HTTP ones, and 2^19 for any other.
fn method_id(method: &[u8]) -> u32 {
    if let Some(bit) = crate::modules::usrloc::method_bit(method) {
        return bit;
    }
    const MORE: [&[u8]; 5] = [b"KDMQ", b"GET", b"POST", b"PUT", b"DELETE"];
    MORE.iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .map_or(1 << 19, |i| 1 << (14 + i))
}

/// `$sruid`: `srid-<start time>-<pid>-<n>` (hex, hex, decimal), unique in the
/// process as Kamailio's per process.
fn sruid(ctx: &MsgCtx<'_>) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let start = ctx.env.clock.unix_at_base.as_secs();
    format!("srid-{start:x}-{:x}-{n}", ctx.env.pid).into_bytes()
}

fn header_uri<'m>(_msg: &'m Message, value: Option<&'m [u8]>) -> Value<'m> {
    value
        .and_then(|v| crate::sip::nameaddr::name_addrs(v).next())
        .and_then(Result::ok)
        .map_or(Value::Null, |na| Value::str(na.uri_raw()))
}

/// `$au`, `$ad`, `$aU`, `$ar` from the credentials: Authorization for
/// REGISTER and PUBLISH, Proxy-Authorization otherwise (each falling back to the other).
fn auth_part(msg: &Message, part: AuthPart) -> Value<'_> {
    let registrar = matches!(msg.method_bytes(), b"REGISTER" | b"PUBLISH");
    let (first, second) = if registrar {
        (HeaderName::Authorization, HeaderName::ProxyAuthorization)
    } else {
        (HeaderName::ProxyAuthorization, HeaderName::Authorization)
    };
    let Some(v) = msg.header_value(first).or_else(|| msg.header_value(second)) else {
        return Value::Null;
    };
    let Ok(cred) = Credentials::parse(v) else {
        return Value::Null;
    };
    let username = cred.username();
    let split = username.map(|u| match u.iter().position(|&b| b == b'@') {
        Some(i) => (&u[..i], Some(&u[i + 1..])),
        None => (u, None),
    });
    let got = match part {
        AuthPart::Username => username,
        AuthPart::User => split.map(|(u, _)| u),
        AuthPart::Domain => split.and_then(|(_, d)| d).or(cred.realm()),
        AuthPart::Realm => cred.realm(),
        AuthPart::DigestUri => cred.uri(),
        AuthPart::Algorithm => cred.algorithm(),
    };
    got.map_or(Value::Null, Value::str)
}

/// `via[n].field` (1-based over every Via value in order).
fn via_field(msg: &Message, n: u32, field: ViaField) -> Value<'_> {
    let mut seen = 0;
    for h in msg.headers_of(HeaderName::Via) {
        let value = msg.value(h);
        let texts_before = seen;
        for via in vias(value) {
            seen += 1;
            if seen < n {
                continue;
            }
            let Ok(via) = via else {
                return Value::Null;
            };
            return match field {
                ViaField::Whole => {
                    // As `$hfl(Via)`: Kamailio keeps the comma of a body that
                    // is not the last of its line.
                    let texts = via_texts(value);
                    let nth = n.saturating_sub(texts_before) as usize;
                    texts
                        .get(nth.saturating_sub(1))
                        .map_or(Value::Null, |t| Value::str(t))
                }
                ViaField::Host => Value::str(via.host_raw()),
                ViaField::Port => via.port().map_or(Value::Null, |p| Value::Int(i64::from(p))),
                ViaField::Branch => via.branch().map_or(Value::Null, Value::str),
                ViaField::Transport => Value::str(via.transport()),
                ViaField::Received => via.received().map_or(Value::Null, Value::str),
                ViaField::Rport => via
                    .param(b"rport")
                    .map_or(Value::Null, |p| Value::str(p.value.unwrap_or(b""))),
            };
        }
    }
    Value::Null
}

/// A header's body as Kamailio's `$hdr` gives it: from the first non-blank
/// byte after the colon to the line end, trailing blanks kept (Kamailio
/// strips only the CR/LF).
fn hdr_body<'m>(msg: &'m Message, h: &crate::sip::Header) -> &'m [u8] {
    let line = msg.slice(h.line);
    let from = (h.value.start - h.line.start) as usize;
    let mut end = line.len();
    while end > from && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    line.get(from..end).unwrap_or(b"")
}

/// `$via0(attr)` / `$via1(attr)` / `$viaZ(attr)`.
fn via_pv(msg: &Message, pos: ViaPos, attr: ViaAttr) -> Value<'_> {
    let mut all = msg
        .headers_of(HeaderName::Via)
        .flat_map(|h| vias(msg.value(h)));
    let via = match pos {
        ViaPos::First => all.next(),
        ViaPos::Second => all.nth(1),
        ViaPos::Last => all.last(),
    };
    let Some(Ok(via)) = via else {
        return Value::Null;
    };
    match attr {
        ViaAttr::Host => Value::str(via.host_raw()),
        ViaAttr::Port => Value::Int(i64::from(via.port().unwrap_or(5060))),
        ViaAttr::Proto => Value::str(via.transport()),
        ViaAttr::ProtoId => Value::Int(proto_id(via.transport())),
        ViaAttr::Branch => via.branch().map_or(Value::Null, Value::str),
        ViaAttr::Received => via.received().map_or(Value::Null, Value::str),
        ViaAttr::Rport => via
            .param(b"rport")
            .and_then(|p| p.value)
            .map_or(Value::Null, Value::str),
        ViaAttr::I => via
            .param(b"i")
            .and_then(|p| p.value)
            .map_or(Value::Null, Value::str),
    }
}

/// Kamailio's number for a transport name (`$K(UDP)`…), 0 when unknown.
fn proto_id(name: &[u8]) -> i64 {
    const NAMES: [&[u8]; 6] = [b"UDP", b"TCP", b"TLS", b"SCTP", b"WS", b"WSS"];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map_or(0, |i| i as i64 + 1)
}

/// `$hfl(name)`: the bodies of a header by index (`[*]`: every line
/// joined as `$hdr(name)[*]` does). As Kamailio 5.6 reads them, a Via that
/// is not the last of its line keeps the text up to its comma, the Contact
/// bodies of one line come last first, and a negative index reads `$null`.
fn hfl<'m>(msg: &'m Message, key: &super::pvkind::HeaderKey, idx: Idx) -> Value<'m> {
    let n = match idx {
        Idx::First => 0,
        Idx::At(i) if i >= 0 => i as usize,
        Idx::At(_) => return Value::Null,
        Idx::All => {
            let mut out = Vec::new();
            for (i, h) in msg.headers_named(&key.name).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(msg.value(h));
            }
            return if out.is_empty() {
                Value::Null
            } else {
                Value::owned(out)
            };
        }
    };
    let mut seen = 0usize;
    for h in msg.headers_named(&key.name) {
        let value = msg.value(h);
        let bodies: Vec<&'m [u8]> = match key.id {
            HeaderName::Via => via_texts(value),
            HeaderName::Route | HeaderName::RecordRoute => crate::sip::scan::split_values(value)
                .map(|(_, b)| b)
                .collect(),
            HeaderName::Contact => {
                let mut v: Vec<&[u8]> = crate::sip::scan::split_values(value)
                    .map(|(_, b)| b)
                    .collect();
                v.reverse();
                v
            }
            _ => vec![value],
        };
        if let Some(b) = bodies.get(n - seen) {
            return Value::str(b);
        }
        seen += bodies.len();
    }
    Value::Null
}

/// `$Au` / `$AU`: the credentials' user (and realm), else From's user (and host).
fn acc_user(msg: &Message, with_domain: bool) -> Value<'static> {
    let user = auth_part(msg, AuthPart::User);
    let (user, domain) = if user.is_null() {
        (
            name_part(msg, HeaderName::From, NamePart::User),
            name_part(msg, HeaderName::From, NamePart::Host),
        )
    } else {
        (user, auth_part(msg, AuthPart::Realm))
    };
    if user.is_null() {
        return Value::Null;
    }
    let mut out = user.to_bytes().into_owned();
    if with_domain {
        out.push(b'@');
        out.extend_from_slice(&domain.to_bytes());
    }
    Value::owned(out)
}

/// `via[n].params["name"]`: the value of a parameter of the n-th Via body
/// (`""` for one without a value).
fn via_param<'m>(msg: &'m Message, n: u32, name: &[u8]) -> Value<'m> {
    let via = msg
        .headers_of(HeaderName::Via)
        .flat_map(|h| vias(msg.value(h)))
        .nth(n.saturating_sub(1) as usize);
    match via {
        Some(Ok(via)) => via
            .param(name)
            .map_or(Value::Null, |p| Value::str(p.value.unwrap_or(b""))),
        _ => Value::Null,
    }
}

/// The Contact Kamailio 5.6 parses first: the last body of the first Contact line.
fn kamailio_first_contact(value: &[u8]) -> Option<NameAddr<'_>> {
    crate::sip::nameaddr::name_addrs(value).last()?.ok()
}

/// The Via bodies of one header line as Kamailio 5.6 delimits them: a body
/// that is not the last of its line runs up to and including its comma.
fn via_texts(value: &[u8]) -> Vec<&[u8]> {
    let items: Vec<(usize, &[u8])> = crate::sip::scan::split_values(value)
        .with_comments()
        .collect();
    let last = items.len().saturating_sub(1);
    items
        .iter()
        .enumerate()
        .map(|(i, &(at, body))| {
            let end = at + body.len();
            let upto = if i < last {
                value
                    .get(end..)
                    .and_then(|rest| rest.iter().position(|&b| b == b','))
                    .map_or(end, |c| end + c + 1)
            } else {
                end
            };
            value.get(at..upto).unwrap_or(body)
        })
        .collect()
}
