//! Pseudo-variables: names resolved at compile time to a [`PvKind`], read and
//! written through the message context (`MsgCtx::read_pv`, `MsgCtx::assign_pv`).

use bytes::Bytes;

use super::ir::Format;
use super::transform::TrOp;
use super::value::Value;
use crate::sip::HeaderName;

/// Which pseudo-variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvKind {
    /// `$vn(name)`: a `$var` that starts `$null` and keeps `$null` assigned.
    VarNull(u32),
    /// `$ru`: the request URI (rewritten, or as received).
    Ru,
    /// `$ou`: the request URI as received.
    Ou,
    /// `$oU`: the user of the request URI as received.
    OUser,
    /// `$rU` / `$rd` / `$rp`: user / host / port of the request URI.
    RUser,
    RHost,
    RPort,
    /// `$rz`: the scheme of the request URI.
    RScheme,
    /// `$fu` `$fU` `$fd` `$fn` `$ft`: From URI / user / host / display name / tag.
    From(NamePart),
    /// `$tu` `$tU` `$td` `$tn` `$tt`: the same for To.
    To(NamePart),
    /// `$du`: destination URI (next hop), `$null` when unset.
    Du,
    /// `$rm`: method (for replies the CSeq method).
    Rm,
    /// `$rs` / `$rr`: reply status / reason.
    Rs,
    Rr,
    /// `$ci`: Call-ID. `$cs`: CSeq number.
    Ci,
    Cs,
    /// `$si` / `$sp` / `$su`: source IP / port / `sip:ip:port`.
    Si,
    Sp,
    Su,
    /// `$Ri` / `$Rp`: local address the message arrived on.
    Ri,
    Rp,
    /// `$pr` / `$proto`: receiving transport, lower case.
    Proto,
    /// Address family of the receiving socket: `INET` or `INET6` (the `af` keyword).
    Af,
    /// `$ua`: User-Agent.
    Ua,
    /// `$mb` / `$ml` / `$mt`: message buffer / length / type (1 request, 2 reply).
    Mb,
    Ml,
    Mt,
    /// `$rb`: body. `$cl`: Content-Length value. `$bs`: body size. `$ct`: Contact.
    Rb,
    Cl,
    Bs,
    Ct,
    /// `$retcode` / `$rc` / `$?`
    Retcode,
    /// `$mf`: message flags. `$bf`: flags of branch 0.
    Mf,
    Bf,
    /// `$null`
    Null,
    /// A value fixed when the script is compiled (`$cfg(line)`, `$cfg(name)`,
    /// `$sel(cfg_get.group.name)`).
    Const(Value<'static>),
    /// `$var(x)`: per-core script variable, by slot.
    Var(u32),
    /// `$hdr(Name)` (first, or `index`), `$hdrc(Name)` (count).
    Hdr(HeaderKey),
    Hdrc(HeaderKey),
    /// `$hdr($var(n))`: a header whose name is computed per message.
    HdrDyn(Box<Format>),
    /// `$Rn`: the name of the socket the message came in on.
    Rn,
    /// `$fsn`: the name of the socket forced for sending (writable: forces it).
    Fsn,
    /// `$shtrecord(key)` (false) or `(value)` (true): the item being expired.
    ShtRecord(bool),
    /// websocket's `$ws_conid`: the id of the message's connection.
    WsConid,
    /// `$_s(format)`: a format string printed per message (pv module).
    Fmt(Box<Format>),
    /// `$avp(name)`: the newest value (or `index`).
    Avp(AvpKey),
    /// `$avp($var(n))`: an AVP whose name is computed per message.
    AvpDyn(Box<Format>),
    /// `$xavp(root[i]=>field[j])`.
    Xavp(Box<XavpPath>),
    /// `$shv(x)`: shared variable, by slot.
    Shv(u32),
    /// `$sht(table=>key)`: hash table item.
    Sht(Box<ShtRef>),
    /// tm's `$T_reply_code`, `$T_branch_idx`, `$T_reply_reason`.
    Tm(TmField),
    /// `$Ts`: unix time in seconds.
    Ts,
    /// `$TV(s|u|sn|un|Sn)`.
    Tv(TvPart),
    /// `$pp`: process id. `$mi`: message id (per core).
    Pp,
    /// `$RANDOM` (cfgutils): a random number in 0..2^31.
    Random,
    /// `$stat(name)`: a statistic of the statistics module.
    Stat(Bytes),
    /// `$sdp(body)` (sdpops): the SDP body as it stands.
    SdpBody,
    Mi,
    /// `$rmid`: Kamailio's id of the method (of the CSeq for a reply).
    Rmid,
    /// `$mts`: `rq` for a request, `rp` for a reply.
    Mts,
    /// `$prid`: Kamailio's id of the transport (udp 1 … wss 6).
    Prid,
    /// `$rt`: the URI of the Refer-To header.
    ReferTo,
    /// `$sruid`: a new unique id at each read (`srid-…`).
    Sruid,
    /// `$ruid`: the location record id of the branch (set by registrar's lookup).
    Ruid,
    /// `$br`: the URI of the first branch of the destination set (writable:
    /// assigning appends a branch, `$null` empties the set). `$bR`: every
    /// branch URI, comma separated.
    Br,
    BrAll,
    /// `$branch(uri|dst_uri|path|q|flags|socket|count)`: an attribute of the
    /// destination-set branch given by the index (`$(branch(uri)[1])`; none: the first).
    Branch(BranchAttr),
    /// `$sbranch(uri|dst_uri|path|q|flags|send_socket)`: the static branch
    /// (writable; see `sbranch_set_ruri`, `sbranch_append`, `sbranch_reset`).
    SBranch(BranchAttr),
    /// `$ai`: P-Asserted-Identity URI. `$di`: Diversion URI.
    Ai,
    Di,
    /// `$au` `$ad` `$aU` `$ar`: user, domain, whole user name and realm of the credentials.
    Auth(AuthPart),
    /// `$fs`: the socket forced for sending (`proto:ip:port`).
    Fs,
    /// `$sel(...)` / `@...`: a select.
    Sel(Select),
    /// `snd_ip`, `snd_port`, `snd_proto`, `snd_af` (`to_*`): where the message is
    /// being sent (onsend_route).
    Snd(SndPart),
    /// `$shtitkey(name)` (true) / `$shtitval(name)` (false): the item an
    /// `sht_iterator_*` iterator stands on.
    ShtIter(Bytes, bool),
    /// dialog's `$dlg(attr)`, `$dlg_var(name)`, `$dlg_ctx(attr)`.
    Dlg(Box<crate::modules::dialog::pv::DlgPv>),
    /// sqlops' `$dbr(res=>…)` (read-only).
    Dbr(Box<crate::modules::sqlops::pv::DbrPv>),
    /// `$ulc(profile=>attr)` (registrar's `reg_fetch_contacts`).
    Ulc(Box<crate::modules::registrar::fetch::UlcPv>),
    /// `$uac_req(name)` (uac).
    UacReq(crate::modules::uac::send::Field),
    /// `$jsonrpl(code|text|body)` (jsonrpcs).
    JsonRpl(crate::modules::jsonrpcs::Field),
    /// `$dd` `$dp` `$dP`, `$od` `$op` `$oP`, `$rP`, `$nh(u|U|d|p|P)`: a part
    /// of a URI (see [`UriSrc`], [`UriField`]).
    UriAttr(UriSrc, UriField),
    /// `$cT`: the Content-Type value.
    ContentType,
    /// `$re`: the URI of the Remote-Party-ID header.
    Re,
    /// `$pu` `$pU` `$pd` `$pn`: URI, user, host and display name of P-Preferred-Identity.
    Ppi(NamePart),
    /// `$rv`: the SIP version of the first line (`SIP/2.0`).
    Rv,
    /// `$sut`: `sip:ip:port;transport=proto` of the source.
    SrcUriTransport,
    /// `$sas`: `proto:ip:port` of the source.
    SrcSocket,
    /// `$siz`: the source IP, an IPv6 address in brackets.
    SrcIpBracketed,
    /// `$time(field)` / `$utime(field)` (`utc`): a part of the current time.
    Time(TimeField),
    /// `$timef(format)` / `$utimef(format)`: the current time through
    /// `strftime`; the bool is true for UTC (`%Z` reads `GMT`, else `UTC`).
    TimeFmt(Bytes, bool),
    /// `$Tf` / `$TF`: the current time as C `ctime` prints it.
    TimeText,
    /// `$hflc(Name)`: the number of bodies of a header: each comma-separated
    /// Via, Route, Record-Route or Contact counts, other headers count per line.
    Hflc(HeaderKey),
    /// `$sf`: the script flags (writable).
    Sf,
    /// `$mF` `$bF` `$sF`: message, branch-0 or script flags as 8 upper-case
    /// hexadecimal digits.
    FlagsHex(FlagSet),
    /// `$via0(attr)`, `$via1(attr)`, `$viaZ(attr)`: a part of the first,
    /// second or last Via body.
    ViaPv(ViaPos, ViaAttr),
    /// `$hfl(Name)`: a header body by index; Via, Route, Record-Route and
    /// Contact count each comma-separated body, other headers each line.
    Hfl(HeaderKey),
    /// `$T_req(pv)` / `$T_rpl(pv)` / `$T_inv(pv)`: a pseudo-variable read
    /// on the transaction's request, its winning reply, or the INVITE a
    /// CANCEL cancels.
    TmOther(TmOther, Box<PvRef>),
    /// `$cnt(pv)`: how many values an `$avp`/`$xavp` holds.
    Cnt(Box<PvRef>),
    /// `$Ru` `$Rut` `$RAi` `$RAp` `$RAu` `$RAut`: the receiving socket as a
    /// URI, or its advertised address.
    LocalSock(LocalSockForm),
    /// `$fUl` `$tUl` `$rUl` `$oUl`: the length of a URI's user part.
    UserLen(UserOf),
    /// `$Au` (`user@realm` of the credentials, else From's `user@host`) and
    /// `$AU` (the user alone): the user acc records.
    AccUser(bool),
    /// `$Tb`: unix time when ringsip started.
    BootTime,
    /// `$conid`: the stream connection's id, `$null` for UDP.
    ConnId,
    /// `$mbu`: the message with the changes made so far applied.
    Mbu,
    /// mqueue's `$mqk(q)`, `$mqv(q)`, `$mq_size(q)`.
    Mq(Box<crate::modules::mqueue::MqPv>),
}

/// Which message `$T_req`, `$T_rpl` and `$T_inv` read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmOther {
    Request,
    Reply,
    Invite,
}

/// Which Via body a [`PvKind::ViaPv`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaPos {
    First,
    Second,
    Last,
}

/// The parts of a Via body `$via0(...)` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaAttr {
    Host,
    /// The port, 5060 when not written.
    Port,
    /// The transport as written (`UDP`).
    Proto,
    /// The transport as a number (`$K(UDP)` … `$K(WSS)`).
    ProtoId,
    Branch,
    Received,
    /// The `rport` value, `$null` when it has none.
    Rport,
    /// The `i` parameter.
    I,
}

/// Which form `$Ru`, `$RAi`… print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalSockForm {
    /// `$Ru`: `sip:ip:port`.
    Uri,
    /// `$Rut`: `sip:ip:port;transport=proto`.
    UriTransport,
    /// `$RAi`: the advertised address, else the bound one.
    AdvIp,
    /// `$RAp`: the advertised port, else the bound one.
    AdvPort,
    /// `$RAu` / `$RAut`: as `$Ru` / `$Rut` with the advertised address.
    AdvUri,
    AdvUriTransport,
}

/// Whose user part `$fUl` and its relatives measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOf {
    From,
    To,
    Ruri,
    OrigRuri,
}

/// Which flags `$mF`, `$bF` or `$sF` print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagSet {
    Msg,
    Branch,
    Script,
}

/// `$time(...)` fields, as Kamailio numbers them (month, weekday and day of
/// the year count from 1, Sunday is weekday 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeField {
    Sec,
    Min,
    Hour,
    Mday,
    Mon,
    Year,
    Wday,
    Yday,
    Isdst,
}

/// Which URI a [`PvKind::UriAttr`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriSrc {
    /// `$du` (`$null` when unset).
    Dst,
    /// The Request-URI as received (`$ou`).
    Orig,
    /// The Request-URI as it is now (`$ru`).
    Cur,
    /// Where the request goes next: `$du` if set, else `$ru`.
    NextHop,
}

/// Which part of a URI a [`PvKind::UriAttr`] reads. As in Kamailio 5.6, a
/// port not written reads 5060 and a missing `transport` parameter `UDP`;
/// a written one reads as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriField {
    Uri,
    User,
    Host,
    Port,
    Proto,
}

/// What `$branch(...)` reads of a destination-set branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchAttr {
    Uri,
    DstUri,
    Path,
    Q,
    Flags,
    Socket,
    /// The number of branches.
    Count,
}

/// Which part of a From or To header a pseudo-variable reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePart {
    Uri,
    User,
    Host,
    Display,
    Tag,
}

/// A header named in a pseudo-variable, resolved once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderKey {
    pub id: HeaderName,
    pub name: Bytes,
}

impl HeaderKey {
    pub fn new(name: &str) -> HeaderKey {
        HeaderKey {
            id: HeaderName::from_bytes(name.as_bytes()),
            name: Bytes::copy_from_slice(name.as_bytes()),
        }
    }
}

/// An AVP name: `i:1` or `s:name` / `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AvpKey {
    Int(i64),
    Str(Bytes),
}

impl AvpKey {
    /// Whether this key names the AVP `other` (string names ignore case, as Kamailio's do).
    pub fn matches(&self, other: &AvpKey) -> bool {
        match (self, other) {
            (AvpKey::Int(a), AvpKey::Int(b)) => a == b,
            (AvpKey::Str(a), AvpKey::Str(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// `$xavp(root[i]=>field[j])`: a root name with its index, and an optional field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XavpPath {
    /// `$xavp`, `$xavu` or `$xavi` (three separate sets of roots).
    pub class: XavpClass,
    pub root: Bytes,
    pub root_index: Option<PvIndex>,
    pub field: Option<(Bytes, Option<PvIndex>)>,
}

/// Which family of extended AVPs a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XavpClass {
    /// `$xavp`: stacks of values, index 0 the newest.
    #[default]
    Xavp,
    /// `$xavu`: one value per name; an assignment replaces it.
    Xavu,
    /// `$xavi`: like `$xavp`, names compared without case.
    Xavi,
}

/// `$sht(table=>key)` and its relatives: the table by index, the key
/// printed per message, and what is done with the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShtRef {
    pub table: u32,
    pub key: Format,
    pub op: ShtOp,
}

/// Which hash-table pseudo-variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShtOp {
    /// `$sht`: the value (writable; `$null` deletes).
    Value,
    /// `$shtinc`: adds 1 atomically and reads the new value (read-only).
    Inc,
    /// `$shtdec`: subtracts 1 atomically and reads the new value (read-only).
    Dec,
    /// `$shtex`: seconds until the item expires, 0 for never (writable: sets them).
    Expire,
    /// `$shtcn`: how many item names the key expression matches (read-only).
    CountNames,
    /// `$shtcv`: how many item values the key expression matches (read-only).
    CountValues,
}

/// tm's per-transaction pseudo-variables (read from the context's `t`, [`crate::modules::tm::TmMsg`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmField {
    ReplyCode,
    ReplyReason,
    BranchIndex,
    /// `$T(reply_type)`: 1 when the reply was made locally, else 0.
    ReplyType,
    /// `$T(id_index)` / `$T(id_label)`: the transaction's slot and
    /// generation (`$null` without a transaction).
    IdIndex,
    IdLabel,
    /// `$T(ruid)`: the location record id of the branch (`$null`).
    Ruid,
    /// tmx's `$T_branch(uri)`: in onreply_route, the Request-URI the
    /// reply's branch was sent to.
    BranchUri,
    /// `$T_branch(flags)`: the branch flags of the reply's branch
    /// (onreply_route) or of the winning branch (failure_route).
    BranchFlags,
    /// `$T_branch(ruid)`: the branch's location record id.
    BranchRuid,
}

/// `$TV(...)` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TvPart {
    /// `s` / `sn`: seconds.
    Sec,
    /// `u` / `un`: microseconds within the second.
    Usec,
    /// `Sn`: `sec.usec`.
    SecUsec,
}

/// Parts of the Authorization / Proxy-Authorization credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthPart {
    /// `$au`: the user part of the user name.
    User,
    /// `$ad`: the domain part of the user name, else the realm.
    Domain,
    /// `$aU`: the whole user name.
    Username,
    /// `$ar`: the realm.
    Realm,
    /// `$adu`: the digest `uri` parameter.
    DigestUri,
    /// `$aa`: the digest `algorithm` parameter.
    Algorithm,
}

/// `snd_*` keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SndPart {
    Ip,
    Port,
    Proto,
    Af,
    /// `$snd(buf)`: the outgoing message.
    Buf,
    /// `$snd(len)`: its length.
    Len,
    /// `$sndfrom(ip)` / `$sndfrom(port)`: the local address it leaves from.
    LocalIp,
    LocalPort,
}

/// The selects ringsip knows (`$sel(via[1].host)`, `@from.tag`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// `via[n]` (1-based; `via` alone is the first), with a field.
    Via(u32, ViaField),
    /// `from.*` / `to.*`.
    From(NamePart),
    To(NamePart),
    /// `ruri`, `ruri.user`, `ruri.host`, `ruri.port`.
    Ruri(RuriPart),
    /// `call_id`
    CallId,
    /// `cseq`, `cseq.num`, `cseq.method`.
    Cseq(CseqPart),
    /// `via[n].params["name"]`: a Via parameter's value (`""` when it has none).
    ViaParam(u32, Bytes),
    /// `from`, `to`, `contact`: the first header's whole value.
    Whole(HeaderName),
    /// `from.params["name"]`, `to.params["name"]`, `contact.params["name"]`.
    NameParam(HeaderName, Bytes),
    /// `contact.*`: of the Contact Kamailio parses first (the last body of
    /// the first Contact line).
    Contact(ContactPart),
    /// `msg.body`, `msg.first_line`, `msg.len`, `msg.type`.
    Msg(MsgPart),
    /// `msg.header["Name"]`: the first header of that name.
    MsgHeader(HeaderKey),
}

/// Parts of a Contact a select reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactPart {
    Uri,
    User,
    Host,
    Name,
    Expires,
    Q,
}

/// Parts of the message a select reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgPart {
    Body,
    FirstLine,
    Len,
    Type,
}

/// Parts of the request URI a select reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuriPart {
    Whole,
    User,
    Host,
    Port,
}

/// Parts of CSeq a select reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CseqPart {
    Whole,
    Number,
    Method,
}

/// Fields of a Via select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaField {
    Whole,
    Host,
    Port,
    Branch,
    Transport,
    Received,
    Rport,
}

/// An index: `[2]`, `[-1]`, `[*]`, `[$var(i)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvIndex {
    At(i32),
    All,
    Pv(Box<PvRef>),
}

/// A pseudo-variable reference as compiled: which one, an optional index
/// (`$(hdr(Via)[1])`) and transformations (`$(ru{uri.user})`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvRef {
    pub kind: PvKind,
    pub index: Option<PvIndex>,
    /// Applied left to right when read; never on a written variable.
    pub transforms: Option<Box<[TrOp]>>,
}

impl PvRef {
    pub fn new(kind: PvKind) -> PvRef {
        PvRef {
            kind,
            index: None,
            transforms: None,
        }
    }

    /// Whether the script may assign to it.
    pub fn is_writable(&self) -> bool {
        if let PvKind::Dlg(d) = &self.kind {
            return self.transforms.is_none() && d.is_writable();
        }
        if let PvKind::Sht(s) = &self.kind {
            return self.transforms.is_none() && matches!(s.op, ShtOp::Value | ShtOp::Expire);
        }
        self.transforms.is_none()
            && matches!(
                self.kind,
                PvKind::Ru
                    | PvKind::RUser
                    | PvKind::RHost
                    | PvKind::RPort
                    | PvKind::Du
                    | PvKind::From(
                        NamePart::Uri | NamePart::User | NamePart::Host | NamePart::Display
                    )
                    | PvKind::To(
                        NamePart::Uri | NamePart::User | NamePart::Host | NamePart::Display
                    )
                    | PvKind::Var(_)
                    | PvKind::VarNull(_)
                    | PvKind::UacReq(_)
                    | PvKind::Avp(_)
                    | PvKind::AvpDyn(_)
                    | PvKind::Xavp(_)
                    | PvKind::Shv(_)
                    | PvKind::Sht(_)
                    | PvKind::Mf
                    | PvKind::Sf
                    | PvKind::Bf
                    | PvKind::Fs
                    | PvKind::Fsn
                    | PvKind::Br
                    | PvKind::SBranch(_)
            )
    }
}

/// What [`resolve`] needs from the compiler: slots, tables and constants.
pub trait Resolver {
    /// The `$var` slot of `name` (made on first use).
    fn var_slot(&mut self, name: &str) -> u32;
    /// The slot of `$vn(name)`, a `$var` that starts `$null` and can hold
    /// it; by default a slot of its own name space without that start value.
    fn null_var_slot(&mut self, name: &str) -> u32 {
        self.var_slot(&format!("$vn({name})"))
    }
    /// The `$shv` slot of `name` (made on first use).
    fn shv_slot(&mut self, name: &str) -> u32;
    /// The index of hash table `name`, if declared.
    fn htable(&mut self, name: &str) -> Option<u32>;
    /// `$cfg(line|name|file|route)` at the place being compiled.
    fn cfg(&mut self, what: &str) -> Option<Value<'static>>;
    /// The value of a `group.name = value` custom parameter.
    fn cfg_get(&mut self, name: &str) -> Option<Value<'static>>;
    /// A `#!define`d name at the end of preprocessing: `Some(None)` when it
    /// has no value, `None` when it is not defined.
    fn define(&mut self, _name: &str) -> Option<Option<String>> {
        None
    }
}

/// Resolves a pseudo-variable with a fixed inner name by class name
/// (`var`, `x` for `$var(x)`; `ru`, `None` for `$ru`).
pub fn resolve(class: &str, inner: Option<&str>, r: &mut dyn Resolver) -> Result<PvKind, String> {
    let need_inner = |what: &str| -> Result<&str, String> {
        inner
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("${what} needs a name in parentheses"))
    };
    let kind = match class {
        "ru" | "ruri" => PvKind::Ru,
        "ou" => PvKind::Ou,
        "oU" => PvKind::OUser,
        "du" | "duri" => PvKind::Du,
        "rU" => PvKind::RUser,
        "rd" => PvKind::RHost,
        "rp" => PvKind::RPort,
        "rz" => PvKind::RScheme,
        "fu" | "from" => PvKind::From(NamePart::Uri),
        "fU" => PvKind::From(NamePart::User),
        "fd" => PvKind::From(NamePart::Host),
        "fn" => PvKind::From(NamePart::Display),
        "ft" => PvKind::From(NamePart::Tag),
        "tu" | "to" => PvKind::To(NamePart::Uri),
        "tU" => PvKind::To(NamePart::User),
        "td" => PvKind::To(NamePart::Host),
        "tn" => PvKind::To(NamePart::Display),
        "tt" => PvKind::To(NamePart::Tag),
        "rm" => PvKind::Rm,
        "rs" => PvKind::Rs,
        "rr" => PvKind::Rr,
        "ci" => PvKind::Ci,
        "cs" => PvKind::Cs,
        "si" => PvKind::Si,
        "sp" => PvKind::Sp,
        "su" => PvKind::Su,
        "Ri" => PvKind::Ri,
        "Rp" => PvKind::Rp,
        "pr" | "proto" => PvKind::Proto,
        "ua" => PvKind::Ua,
        "mb" => PvKind::Mb,
        "ml" => PvKind::Ml,
        "mt" => PvKind::Mt,
        "rb" => PvKind::Rb,
        "cl" => PvKind::Cl,
        "bs" => PvKind::Bs,
        "ct" => PvKind::Ct,
        "rc" | "retcode" | "?" => PvKind::Retcode,
        "mf" => PvKind::Mf,
        "sf" => PvKind::Sf,
        "mF" => PvKind::FlagsHex(FlagSet::Msg),
        "bF" => PvKind::FlagsHex(FlagSet::Branch),
        "sF" => PvKind::FlagsHex(FlagSet::Script),
        "bf" => PvKind::Bf,
        "null" => PvKind::Null,
        // `$TS` is the same time not cached per message: ringsip reads the
        // clock once per message anyway.
        "Ts" | "TS" => PvKind::Ts,
        "dd" => PvKind::UriAttr(UriSrc::Dst, UriField::Host),
        "dp" => PvKind::UriAttr(UriSrc::Dst, UriField::Port),
        "dP" => PvKind::UriAttr(UriSrc::Dst, UriField::Proto),
        "od" => PvKind::UriAttr(UriSrc::Orig, UriField::Host),
        "op" => PvKind::UriAttr(UriSrc::Orig, UriField::Port),
        "oP" => PvKind::UriAttr(UriSrc::Orig, UriField::Proto),
        "rP" => PvKind::UriAttr(UriSrc::Cur, UriField::Proto),
        "nh" => PvKind::UriAttr(
            UriSrc::NextHop,
            match need_inner("nh")? {
                "u" => UriField::Uri,
                "U" => UriField::User,
                "d" => UriField::Host,
                "p" => UriField::Port,
                "P" => UriField::Proto,
                other => return Err(format!("unknown $nh({other}): use u, U, d, p or P")),
            },
        ),
        "cT" => PvKind::ContentType,
        "re" => PvKind::Re,
        "pu" => PvKind::Ppi(NamePart::Uri),
        "pU" => PvKind::Ppi(NamePart::User),
        "pd" => PvKind::Ppi(NamePart::Host),
        "pn" => PvKind::Ppi(NamePart::Display),
        "rv" => PvKind::Rv,
        "sut" => PvKind::SrcUriTransport,
        "sas" => PvKind::SrcSocket,
        "siz" => PvKind::SrcIpBracketed,
        "adu" => PvKind::Auth(AuthPart::DigestUri),
        "aa" => PvKind::Auth(AuthPart::Algorithm),
        "vz" => PvKind::Var(r.var_slot(need_inner("vz")?)),
        "vn" => PvKind::VarNull(r.null_var_slot(need_inner("vn")?)),
        "msg" => {
            return Ok(match need_inner("msg")? {
                "len" => PvKind::Ml,
                "buf" => PvKind::Mb,
                "body" => PvKind::Rb,
                "body_len" => PvKind::Bs,
                other => {
                    return Err(format!(
                        "$msg({other}) is not supported: use len, buf, body or body_len"
                    ))
                }
            })
        }
        "env" => PvKind::Const(
            std::env::var_os(need_inner("env")?)
                .map_or(Value::Null, |v| Value::owned(v.into_encoded_bytes())),
        ),
        "K" => PvKind::Const(Value::Int(match need_inner("K")? {
            "UDP" => 1,
            "TCP" => 2,
            "TLS" => 3,
            "SCTP" => 4,
            "WS" => 5,
            "WSS" => 6,
            "IPv4" | "INET" => 2,
            "IPv6" | "INET6" => 10,
            other => {
                return Err(format!(
                "unknown $K({other}): use UDP, TCP, TLS, SCTP, WS, WSS, IPv4, IPv6, INET or INET6"
            ))
            }
        })),
        "C" => PvKind::Const(Value::owned(color(need_inner("C")?)?)),
        // `$def(NAME)`: the define's text as written (quotes kept), `$null`
        // when not defined; `$defn(NAME)`: its value as a number, else `$null`.
        "def" => PvKind::Const(match r.define(need_inner("def")?.trim()) {
            Some(v) => Value::owned(v.unwrap_or_default().into_bytes()),
            None => Value::Null,
        }),
        "defn" => PvKind::Const(
            r.define(need_inner("defn")?.trim())
                .flatten()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map_or(Value::Null, Value::Int),
        ),
        // ringsip computes UTC only: the local forms need a UTC machine.
        "time" | "utime" => {
            if class == "time" {
                super::timefmt::local_zone_is_utc().map_err(|z| local_time_error(class, &z))?;
            }
            PvKind::Time(match need_inner(class)? {
                "sec" => TimeField::Sec,
                "min" => TimeField::Min,
                "hour" => TimeField::Hour,
                "mday" => TimeField::Mday,
                "mon" => TimeField::Mon,
                "year" => TimeField::Year,
                "wday" => TimeField::Wday,
                "yday" => TimeField::Yday,
                "isdst" => TimeField::Isdst,
                other => {
                    return Err(format!(
                        "unknown ${class}({other}): use sec, min, hour, mday, mon, year, wday, yday or isdst"
                    ))
                }
            })
        }
        "timef" | "utimef" => {
            if class == "timef" {
                super::timefmt::local_zone_is_utc().map_err(|z| local_time_error(class, &z))?;
            }
            PvKind::TimeFmt(
                Bytes::copy_from_slice(need_inner(class)?.as_bytes()),
                class == "utimef",
            )
        }
        "Tf" | "TF" => {
            super::timefmt::local_zone_is_utc().map_err(|z| local_time_error(class, &z))?;
            PvKind::TimeText
        }
        "pp" => PvKind::Pp,
        "RANDOM" => PvKind::Random,
        "stat" => PvKind::Stat(Bytes::copy_from_slice(need_inner("stat")?.as_bytes())),
        "sdp" => match need_inner("sdp")? {
            "body" => PvKind::SdpBody,
            other => return Err(format!("unknown $sdp({other}): only $sdp(body)")),
        },
        "mi" => PvKind::Mi,
        "rmid" => PvKind::Rmid,
        "mts" => PvKind::Mts,
        "prid" => PvKind::Prid,
        "rt" => PvKind::ReferTo,
        "sruid" => PvKind::Sruid,
        // The socket names of `listen=… name "x"`: `$null` for an unnamed one.
        "Rn" => PvKind::Rn,
        "fsn" => PvKind::Fsn,
        "ruid" => PvKind::Ruid,
        "br" => PvKind::Br,
        "bR" => PvKind::BrAll,
        "branch" => PvKind::Branch(match need_inner("branch")? {
            "uri" => BranchAttr::Uri,
            "dst_uri" => BranchAttr::DstUri,
            "path" => BranchAttr::Path,
            "q" => BranchAttr::Q,
            "flags" => BranchAttr::Flags,
            "socket" | "send_socket" => BranchAttr::Socket,
            "count" => BranchAttr::Count,
            other => {
                return Err(format!(
                    "unknown $branch({other}): use uri, dst_uri, path, q, flags, socket or count"
                ))
            }
        }),
        // ringsip keeps no record id with a branch: `$sbranch(ruid)` reads `$null`.
        "sbranch" if need_inner("sbranch")? == "ruid" => PvKind::Const(Value::Null),
        "sbranch" => PvKind::SBranch(match need_inner("sbranch")? {
            "uri" => BranchAttr::Uri,
            "dst_uri" => BranchAttr::DstUri,
            "path" => BranchAttr::Path,
            "q" => BranchAttr::Q,
            "flags" => BranchAttr::Flags,
            "send_socket" => BranchAttr::Socket,
            other => {
                return Err(format!(
                    "unknown $sbranch({other}): use uri, dst_uri, path, q, flags or send_socket"
                ))
            }
        }),
        "ai" => PvKind::Ai,
        "di" => PvKind::Di,
        "au" => PvKind::Auth(AuthPart::User),
        "ad" => PvKind::Auth(AuthPart::Domain),
        "aU" => PvKind::Auth(AuthPart::Username),
        "ar" => PvKind::Auth(AuthPart::Realm),
        "fs" => PvKind::Fs,
        "T" => PvKind::Tm(match need_inner("T")? {
            "reply_code" => TmField::ReplyCode,
            "reply_reason" => TmField::ReplyReason,
            "branch_index" => TmField::BranchIndex,
            "reply_type" => TmField::ReplyType,
            "id_index" => TmField::IdIndex,
            "id_label" => TmField::IdLabel,
            "ruid" => TmField::Ruid,
            other => return Err(format!(
                "unknown $T({other}): use reply_code, reply_reason, branch_index, reply_type, id_index, id_label or ruid"
            )),
        }),
        "via0" | "via1" | "viaZ" => PvKind::ViaPv(
            match class {
                "via0" => ViaPos::First,
                "via1" => ViaPos::Second,
                _ => ViaPos::Last,
            },
            match need_inner(class)? {
                "host" => ViaAttr::Host,
                "port" => ViaAttr::Port,
                "proto" => ViaAttr::Proto,
                "protoid" => ViaAttr::ProtoId,
                "branch" => ViaAttr::Branch,
                "received" => ViaAttr::Received,
                "rport" => ViaAttr::Rport,
                "i" => ViaAttr::I,
                other => return Err(format!(
                    "unknown ${class}({other}): use host, port, proto, protoid, branch, received, rport or i"
                )),
            },
        ),
        "hfl" => PvKind::Hfl(HeaderKey::new(need_inner("hfl")?.trim())),
        "Ru" => PvKind::LocalSock(LocalSockForm::Uri),
        "Rut" => PvKind::LocalSock(LocalSockForm::UriTransport),
        "RAi" => PvKind::LocalSock(LocalSockForm::AdvIp),
        "RAp" => PvKind::LocalSock(LocalSockForm::AdvPort),
        "RAu" => PvKind::LocalSock(LocalSockForm::AdvUri),
        "RAut" => PvKind::LocalSock(LocalSockForm::AdvUriTransport),
        "fUl" => PvKind::UserLen(UserOf::From),
        "tUl" => PvKind::UserLen(UserOf::To),
        "rUl" => PvKind::UserLen(UserOf::Ruri),
        "oUl" => PvKind::UserLen(UserOf::OrigRuri),
        "Au" => PvKind::AccUser(true),
        "AU" => PvKind::AccUser(false),
        "src_ip" => PvKind::Si,
        "Tb" => PvKind::BootTime,
        "conid" => PvKind::ConnId,
        "mbu" => PvKind::Mbu,
        "version" => PvKind::Const(Value::owned(
            match need_inner("version")? {
                "num" => env!("CARGO_PKG_VERSION").to_string(),
                "full" => format!(
                    "ringsip {} ({}/{})",
                    env!("CARGO_PKG_VERSION"),
                    std::env::consts::ARCH,
                    std::env::consts::OS
                ),
                "hash" => String::new(),
                other => {
                    return Err(format!(
                        "unknown $version({other}): use num, full or hash"
                    ))
                }
            }
            .into_bytes(),
        )),
        "T_branch" => PvKind::Tm(match need_inner(class)? {
            "uri" => TmField::BranchUri,
            "flags" => TmField::BranchFlags,
            "ruid" => TmField::BranchRuid,
            other => {
                return Err(format!(
                    "unknown $T_branch({other}): use uri, flags or ruid"
                ))
            }
        }),
        "T_reply_code" => PvKind::Tm(TmField::ReplyCode),
        "T_reply_reason" => PvKind::Tm(TmField::ReplyReason),
        "T_branch_idx" => PvKind::Tm(TmField::BranchIndex),
        "var" => PvKind::Var(r.var_slot(need_inner("var")?)),
        "shv" => PvKind::Shv(r.shv_slot(need_inner("shv")?)),
        "hdr" => PvKind::Hdr(HeaderKey::new(need_inner("hdr")?.trim())),
        "hdrc" => PvKind::Hdrc(HeaderKey::new(need_inner("hdrc")?.trim())),
        "hflc" => PvKind::Hflc(HeaderKey::new(need_inner("hflc")?.trim())),
        "TV" => PvKind::Tv(match need_inner("TV")? {
            "s" | "sn" => TvPart::Sec,
            "u" | "un" => TvPart::Usec,
            "Sn" => TvPart::SecUsec,
            other => return Err(format!("unknown $TV({other}): use s, u, sn, un or Sn")),
        }),
        "cfg" => {
            let what = need_inner("cfg")?;
            match r.cfg(what) {
                Some(v) => PvKind::Const(v),
                None => {
                    return Err(format!(
                        "unknown $cfg({what}): use line, name, file or route"
                    ))
                }
            }
        }
        "snd" | "sndto" => PvKind::Snd(match need_inner(class)? {
            "ip" => SndPart::Ip,
            "port" => SndPart::Port,
            "proto" | "sproto" => SndPart::Proto,
            "af" => SndPart::Af,
            "buf" if class == "snd" => SndPart::Buf,
            "len" if class == "snd" => SndPart::Len,
            other => {
                return Err(format!(
                    "unknown ${class}({other}): use ip, port, proto, af{}",
                    if class == "snd" { ", buf or len" } else { "" }
                ))
            }
        }),
        "sndfrom" => PvKind::Snd(match need_inner(class)? {
            "ip" => SndPart::LocalIp,
            "port" => SndPart::LocalPort,
            "proto" | "sproto" => SndPart::Proto,
            "af" => SndPart::Af,
            other => {
                return Err(format!(
                    "unknown $sndfrom({other}): use ip, port, proto or af"
                ))
            }
        }),
        "shtrecord" => match need_inner(class)?.trim() {
            "key" => PvKind::ShtRecord(false),
            "value" => PvKind::ShtRecord(true),
            other => return Err(format!("unknown $shtrecord({other}): use key or value")),
        },
        "shtitkey" | "shtitval" => PvKind::ShtIter(
            Bytes::copy_from_slice(need_inner(class)?.trim().as_bytes()),
            class == "shtitkey",
        ),
        "sel" => select(need_inner("sel")?, r)?,
        "dlg" | "dlg_var" | "dlg_ctx" => PvKind::Dlg(Box::new(
            crate::modules::dialog::pv::resolve(class, need_inner(class)?)?,
        )),
        "DLG_count" | "DLG_lifetime" | "DLG_status" => PvKind::Dlg(Box::new(
            crate::modules::dialog::pv::resolve(class, inner.unwrap_or(""))?,
        )),
        "dbr" => PvKind::Dbr(Box::new(crate::modules::sqlops::pv::DbrPv::Fixed(
            crate::modules::sqlops::pv::parse(need_inner("dbr")?)?,
        ))),
        "ulc" => PvKind::Ulc(Box::new(crate::modules::registrar::fetch::parse(
            need_inner("ulc")?.trim(),
        )?)),
        "uac_req" => PvKind::UacReq(crate::modules::uac::send::resolve(need_inner(class)?)?),
        "jsonrpl" => PvKind::JsonRpl(crate::modules::jsonrpcs::resolve(need_inner(class)?)?),
        // xhttp's `$hu`: the URL of an HTTP request, the Request-URI as received.
        "hu" => PvKind::Ou,
        "mqk" | "mqv" | "mq_size" => PvKind::Mq(Box::new(crate::modules::mqueue::MqPv {
            field: crate::modules::mqueue::MqPv::field(class).unwrap_or(crate::modules::mqueue::MqField::Size),
            name: crate::modules::mqueue::MqName::Fixed(need_inner(class)?.trim().into()),
        })),
        "ws_conid" => PvKind::WsConid,
        other => return Err(format!("unknown pseudo-variable ${other}")),
    };
    let takes_inner = matches!(
        kind,
        PvKind::Var(_)
            | PvKind::VarNull(_)
            | PvKind::Shv(_)
            | PvKind::Hdr(_)
            | PvKind::Hdrc(_)
            | PvKind::Hflc(_)
            | PvKind::Hfl(_)
            | PvKind::ViaPv(..)
            | PvKind::Tv(_)
            | PvKind::Const(_)
            | PvKind::Sel(_)
            | PvKind::Snd(_)
            | PvKind::ShtIter(..)
            | PvKind::ShtRecord(_)
            | PvKind::Branch(_)
            | PvKind::SBranch(_)
            | PvKind::Stat(_)
            | PvKind::SdpBody
            | PvKind::Dlg(_)
            | PvKind::Dbr(_)
            | PvKind::Ulc(_)
            | PvKind::UacReq(_)
            | PvKind::JsonRpl(_)
            | PvKind::Mq(_)
            | PvKind::UriAttr(UriSrc::NextHop, _)
            | PvKind::Time(_)
            | PvKind::TimeFmt(..)
    );
    if inner.is_some() && !takes_inner && class != "T" && class != "T_branch" {
        return Err(format!("${class} takes no name in parentheses"));
    }
    Ok(kind)
}

fn local_time_error(class: &str, zone: &str) -> String {
    let instead = match class {
        "time" => "$utime(...)",
        "timef" => "$utimef(...)",
        _ => "$utimef(%c)",
    };
    format!(
        "${class} reads the local time, and ringsip computes UTC only: this machine's time zone is not UTC ({zone}); use {instead} or run with TZ=UTC"
    )
}

/// The terminal escape sequence `$C(fb)` prints: foreground `f` (`x` the
/// default; `s r g y b p c w` black … white, upper case for bold) and
/// background `b` (`x` or a lower-case color), as Kamailio 5.6 prints them.
fn color(name: &str) -> Result<Vec<u8>, String> {
    const COLORS: &[u8] = b"srgybpcw";
    let err = || {
        format!("$C({name}): two letters: foreground x, s, r, g, y, b, p, c, w (upper case: bold), background x or a lower-case color")
    };
    let &[fg, bg] = name.as_bytes() else {
        return Err(err());
    };
    let mut out = b"\x1b[".to_vec();
    match fg {
        b'x' => out.extend_from_slice(b"0;39"),
        c => {
            let i = COLORS
                .iter()
                .position(|&k| k == c.to_ascii_lowercase())
                .ok_or_else(err)?;
            out.extend_from_slice(if c.is_ascii_uppercase() {
                b"1;3"
            } else {
                b"0;3"
            });
            out.push(b'0' + i as u8);
        }
    }
    match bg {
        b'x' => out.extend_from_slice(b";49"),
        c => {
            let i = COLORS.iter().position(|&k| k == c).ok_or_else(err)?;
            out.extend_from_slice(b";4");
            out.push(b'0' + i as u8);
        }
    }
    out.push(b'm');
    Ok(out)
}

/// Resolves a select (`via[1].host`, `from.tag`, `cfg_get.group.name`).
pub fn select(text: &str, r: &mut dyn Resolver) -> Result<PvKind, String> {
    let text = text.trim();
    if let Some(name) = text.strip_prefix("cfg_get.") {
        return r
            .cfg_get(name)
            .map(PvKind::Const)
            .ok_or_else(|| format!("select @{text}: no configuration parameter \"{name}\""));
    }
    let unsupported = || format!("select @{text} is not supported");
    let parts = select_parts(text);
    let head = parts.first().copied().unwrap_or("");
    let mut rest: Vec<&str> = parts.get(1..).unwrap_or_default().to_vec();
    // `…params["name"]` (the name quoted or not) as a last part.
    let param = match rest.last().and_then(|p| p.strip_prefix("params[")) {
        Some(q) => {
            let name = q
                .strip_suffix(']')
                .map(|n| n.trim().trim_matches('"'))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("select @{text}: bad params[\"name\"]"))?;
            rest.pop();
            Some(Bytes::copy_from_slice(name.as_bytes()))
        }
        None => None,
    };
    let (name, index) = match head.split_once('[') {
        Some((n, i)) => {
            let i = i
                .strip_suffix(']')
                .and_then(|i| i.trim().parse::<u32>().ok())
                .filter(|i| *i >= 1)
                .ok_or_else(|| format!("select @{text}: bad index (1, 2, …)"))?;
            (n, Some(i))
        }
        None => (head, None),
    };
    let name_part = |rest: &[&str]| -> Result<NamePart, String> {
        Ok(match rest {
            ["uri"] => NamePart::Uri,
            ["uri", "user"] | ["user"] => NamePart::User,
            ["uri", "host"] | ["host"] => NamePart::Host,
            ["name"] => NamePart::Display,
            ["tag"] => NamePart::Tag,
            _ => return Err(unsupported()),
        })
    };
    let sel = match (name, param) {
        ("via" | "v", Some(p)) if rest.is_empty() => Select::ViaParam(index.unwrap_or(1), p),
        ("from" | "f", Some(p)) if rest.is_empty() => Select::NameParam(HeaderName::From, p),
        ("to" | "t", Some(p)) if rest.is_empty() => Select::NameParam(HeaderName::To, p),
        ("contact" | "m", Some(p)) if rest.is_empty() => Select::NameParam(HeaderName::Contact, p),
        (_, Some(_)) => return Err(unsupported()),
        (name, None) => match name {
            "from" | "f" if rest.is_empty() => Select::Whole(HeaderName::From),
            "to" | "t" if rest.is_empty() => Select::Whole(HeaderName::To),
            "contact" | "m" => match rest.as_slice() {
                [] => Select::Whole(HeaderName::Contact),
                ["uri"] => Select::Contact(ContactPart::Uri),
                ["uri", "user"] => Select::Contact(ContactPart::User),
                ["uri", "host"] => Select::Contact(ContactPart::Host),
                ["name"] => Select::Contact(ContactPart::Name),
                ["expires"] => Select::Contact(ContactPart::Expires),
                ["q"] => Select::Contact(ContactPart::Q),
                _ => return Err(unsupported()),
            },
            "msg" | "message" => match rest.as_slice() {
                ["body"] => Select::Msg(MsgPart::Body),
                ["first_line"] => Select::Msg(MsgPart::FirstLine),
                ["len"] => Select::Msg(MsgPart::Len),
                ["type"] => Select::Msg(MsgPart::Type),
                [h] if h.starts_with("header[") => {
                    let name = h["header[".len()..]
                        .strip_suffix(']')
                        .map(|n| n.trim().trim_matches('"'))
                        .filter(|n| !n.is_empty())
                        .ok_or_else(unsupported)?;
                    Select::MsgHeader(HeaderKey::new(name))
                }
                _ => return Err(unsupported()),
            },
            "via" | "v" => {
                let field = match rest.as_slice() {
                    [] => ViaField::Whole,
                    ["host"] => ViaField::Host,
                    ["port"] => ViaField::Port,
                    ["branch"] | ["params", "branch"] => ViaField::Branch,
                    ["transport"] | ["proto"] => ViaField::Transport,
                    ["received"] | ["params", "received"] => ViaField::Received,
                    ["rport"] | ["params", "rport"] => ViaField::Rport,
                    _ => return Err(unsupported()),
                };
                Select::Via(index.unwrap_or(1), field)
            }
            "from" | "f" => Select::From(name_part(&rest)?),
            "to" | "t" => Select::To(name_part(&rest)?),
            "ruri" | "request_uri" => Select::Ruri(match rest.as_slice() {
                [] => RuriPart::Whole,
                ["user"] => RuriPart::User,
                ["host"] => RuriPart::Host,
                ["port"] => RuriPart::Port,
                _ => return Err(unsupported()),
            }),
            "call_id" | "callid" | "i" if rest.is_empty() => Select::CallId,
            "cseq" => Select::Cseq(match rest.as_slice() {
                [] => CseqPart::Whole,
                ["num"] => CseqPart::Number,
                ["method"] => CseqPart::Method,
                _ => return Err(unsupported()),
            }),
            _ => return Err(unsupported()),
        },
    };
    if index.is_some() && !matches!(sel, Select::Via(..) | Select::ViaParam(..)) {
        return Err(unsupported());
    }
    Ok(PvKind::Sel(sel))
}

/// The dot-separated parts of a select, a dot inside `[...]` or quotes kept.
fn select_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            '.' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}
