//! Writing pseudo-variables (`$x = v`, `$x := v`). Only the writable ones
//! get here (the compiler rejects the others with their position).
//!
//! - `$ru`, `$rU`, `$rd`, `$rp` rewrite the Request-URI (`$rU = $null`
//!   removes the user, `$rp = $null` the port);
//! - `$fu` `$fU` `$fd` `$fn` and the To ones edit the header through the edit
//!   list; as in Kamailio, reading them afterwards still gives the received value;
//! - `$avp(x) = v` adds a value on top, `:=` and `$(avp(x)[*]) = v` replace
//!   all, `= $null` removes the newest (`[*]`: all); `$(avp(x)[i]) = v`
//!   adds on top like `$avp(x) = v` (as Kamailio 5.6.3 does);
//! - `$xavp(r=>f) = v` makes a new root `r` holding `f`; `$xavp(r[i]=>f) = v`
//!   adds `f` to an existing root; `$null` removes;
//! - `$var`, `$shv` = `$null` store 0; `$sht(t=>k) = $null` deletes the item.

use bytes::Bytes;

use super::attrs::{Xavp, XavpValue};
use super::ctx::MsgCtx;
use super::ir::AssignOp;
use super::pvkind::{AvpKey, NamePart, PvKind, PvRef, ShtOp, XavpClass, XavpPath};
use super::pvread::Idx;
use super::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;

/// Which part of a URI to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriPart {
    User,
    Host,
    Port,
}

impl MsgCtx<'_> {
    /// Writes a pseudo-variable (`$x = value`); `Err` names why it cannot be written.
    pub fn write_pv(&mut self, pv: &PvRef, value: Value<'_>) -> Result<(), &'static str> {
        self.assign_pv(pv, AssignOp::Set, value)
    }

    /// Assigns with `=` or `:=` (`+=` is computed by the caller and comes as `=`).
    pub fn assign_pv(
        &mut self,
        pv: &PvRef,
        op: AssignOp,
        value: Value<'_>,
    ) -> Result<(), &'static str> {
        let replace_all = op == AssignOp::SetAll;
        match &pv.kind {
            PvKind::Ru => match value {
                Value::Null => Err("$ru cannot be $null"),
                Value::Str(std::borrow::Cow::Owned(s)) if !s.is_empty() => {
                    self.new_uri = Some(Bytes::from(s));
                    Ok(())
                }
                v => {
                    let s = v.to_bytes();
                    if s.is_empty() {
                        return Err("$ru needs a non-empty string");
                    }
                    self.new_uri = Some(Bytes::copy_from_slice(&s));
                    Ok(())
                }
            },
            PvKind::RUser | PvKind::RHost | PvKind::RPort => {
                if !self.msg.is_request() {
                    return Err("a reply has no Request-URI");
                }
                let part = match pv.kind {
                    PvKind::RUser => UriPart::User,
                    PvKind::RHost => UriPart::Host,
                    _ => UriPart::Port,
                };
                let text = (!value.is_null()).then(|| value.to_bytes());
                let uri = rewrite_uri(self.ruri(), part, text.as_deref())?;
                self.new_uri = Some(Bytes::from(uri));
                Ok(())
            }
            PvKind::SBranch(attr) => {
                let b = self.core.sbranch.get_or_insert_with(|| super::ctx::Branch {
                    q: -1,
                    ..Default::default()
                });
                let text = || (!value.is_null()).then(|| Bytes::copy_from_slice(&value.to_bytes()));
                match attr {
                    super::pvkind::BranchAttr::Uri => b.uri = text().unwrap_or_default(),
                    super::pvkind::BranchAttr::DstUri => b.dst_uri = text(),
                    super::pvkind::BranchAttr::Path => b.path = text(),
                    super::pvkind::BranchAttr::Socket => b.socket = text(),
                    // As Kamailio: q and flags take integers only.
                    super::pvkind::BranchAttr::Q | super::pvkind::BranchAttr::Flags => {
                        let Value::Int(i) = value else {
                            return Err("$sbranch(q) and $sbranch(flags) need an integer");
                        };
                        if *attr == super::pvkind::BranchAttr::Q {
                            b.q = i32::try_from(i).map_err(|_| "q out of range")?;
                        } else {
                            b.flags = u32::try_from(i).map_err(|_| "flags out of range")?;
                        }
                    }
                    super::pvkind::BranchAttr::Count => return Err("$sbranch(count) is read-only"),
                }
                Ok(())
            }
            PvKind::Br => {
                // Kamailio: assigning to $br adds a branch; $null clears the set.
                if value.is_null() {
                    self.branches.clear();
                    return Ok(());
                }
                let uri = value.to_bytes();
                if uri.is_empty() {
                    return Err("$br needs a non-empty URI");
                }
                self.branches.push(super::ctx::Branch {
                    uri: Bytes::copy_from_slice(&uri),
                    q: -1,
                    ..Default::default()
                });
                Ok(())
            }
            PvKind::Du => {
                self.dst_uri = match value {
                    Value::Null => None,
                    Value::Str(s) if s.is_empty() => None,
                    v => Some(Bytes::copy_from_slice(&v.to_bytes())),
                };
                Ok(())
            }
            PvKind::From(part) => self.edit_name_header(HeaderName::From, *part, &value),
            PvKind::To(part) => self.edit_name_header(HeaderName::To, *part, &value),
            PvKind::Mf => {
                self.flags = value.to_int() as u64 & 0xffff_ffff;
                Ok(())
            }
            PvKind::Bf => {
                self.state.bflags = (value.to_int() as u64 & 0xffff_ffff) as u32;
                Ok(())
            }
            PvKind::Sf => {
                self.state.sflags = (value.to_int() as u64 & 0xffff_ffff) as u32;
                Ok(())
            }
            PvKind::Var(slot) => {
                let Some(cell) = self.core.vars.get_mut(*slot as usize) else {
                    return Err("no such $var slot");
                };
                store(cell, value);
                Ok(())
            }
            PvKind::VarNull(slot) => {
                let Some(cell) = self.core.vars.get_mut(*slot as usize) else {
                    return Err("no such $vn slot");
                };
                match value {
                    Value::Null => *cell = Value::Null,
                    v => store(cell, v),
                }
                Ok(())
            }
            PvKind::Avp(key) => {
                let idx = self.index_of(&pv.index);
                self.write_avp(key.clone(), idx, replace_all, value)
            }
            PvKind::AvpDyn(name) => {
                let idx = self.index_of(&pv.index);
                let key = AvpKey::Str(self.format(name).into());
                self.write_avp(key, idx, replace_all, value)
            }
            PvKind::Xavp(path) => self.write_xavp(path, replace_all, value),
            PvKind::Shv(slot) => {
                let v = if value.is_null() {
                    Value::Int(0)
                } else {
                    value.into_owned()
                };
                if self.env.shared.set_shv(*slot, v) {
                    Ok(())
                } else {
                    Err("$shv is not shared with this core (Env made without the program)")
                }
            }
            PvKind::Dlg(d) => crate::modules::dialog::pv::write(self, d, value),
            PvKind::UacReq(f) => crate::modules::uac::send::write(self, *f, value),
            PvKind::Sht(sht) => {
                let Some(table) = self.env.shared.htable(sht.table) else {
                    return Err(
                        "hash table is not shared with this core (Env made without the program)",
                    );
                };
                let key = self.format_cow(&sht.key);
                match (sht.op, value) {
                    (ShtOp::Expire, v) => {
                        let secs = v.to_int().max(0) as u64;
                        table.set_expire(&key, secs, self.now);
                    }
                    (_, Value::Null) => {
                        table.remove(&key);
                    }
                    (_, v) => table.set(&key, v.into_owned(), self.now),
                }
                Ok(())
            }
            // Kamailio keeps the socket forced before when no socket has the
            // name (it logs a warning).
            PvKind::Fsn => {
                let wanted = value.to_bytes();
                let found = self
                    .env
                    .socket_names
                    .iter()
                    .position(|n| n.as_deref().is_some_and(|n| n.as_bytes() == &*wanted));
                match found {
                    Some(i) => self.force_socket = Some(i as u16),
                    None => log::warn!(
                        "$fsn: no socket named \"{}\"",
                        String::from_utf8_lossy(&wanted)
                    ),
                }
                Ok(())
            }
            PvKind::Fs => {
                if value.is_null() || value.to_bytes().is_empty() {
                    self.force_socket = None;
                    return Ok(());
                }
                let wanted = value.to_bytes();
                let found = self.env.sockets.iter().position(|s| {
                    let text = format!(
                        "{}:{}",
                        s.proto.lower_name(),
                        super::ctx::fmt_hostport(s.addr)
                    );
                    text.as_bytes().eq_ignore_ascii_case(&wanted)
                });
                match found {
                    Some(i) => {
                        self.force_socket = Some(i as u16);
                        Ok(())
                    }
                    None => Err("$fs: no such listening socket (proto:ip:port)"),
                }
            }
            _ => Err("read-only pseudo-variable"),
        }
    }

    fn write_avp(
        &mut self,
        key: AvpKey,
        idx: Idx,
        replace_all: bool,
        value: Value<'_>,
    ) -> Result<(), &'static str> {
        let attrs = &mut self.attrs;
        if value.is_null() {
            match idx {
                Idx::All => attrs.avp_remove_all(&key),
                _ if replace_all => attrs.avp_remove_all(&key),
                _ => {
                    attrs.avp_remove_newest(&key);
                }
            }
            return Ok(());
        }
        let v = value.into_owned();
        // An index other than `[*]` does not matter when adding: Kamailio
        // 5.6.3 adds the value on top for `$(avp(x)[1]) = v` too.
        match idx {
            Idx::All => {
                attrs.avp_remove_all(&key);
                attrs.avp_push(key, v);
                Ok(())
            }
            _ => {
                if replace_all {
                    attrs.avp_remove_all(&key);
                }
                attrs.avp_push(key, v);
                Ok(())
            }
        }
    }

    fn write_xavp(
        &mut self,
        path: &XavpPath,
        replace_all: bool,
        value: Value<'_>,
    ) -> Result<(), &'static str> {
        if path.class == XavpClass::Xavu {
            self.write_xavu(path, value);
            return Ok(());
        }
        let class = path.class;
        let root_idx = self.index_of(&path.root_index);
        let field_idx = path
            .field
            .as_ref()
            .map(|(_, i)| self.index_of(i))
            .unwrap_or(Idx::First);
        let attrs = &mut self.attrs;
        let null = value.is_null();
        let v = value.into_owned();
        let Some((field, _)) = &path.field else {
            // `$xavp(r) = v`: a new root value; `$null` removes.
            match (null, root_idx) {
                (true, Idx::All) => attrs.xavp_remove_in(class, &path.root, None),
                (true, Idx::At(i)) => attrs.xavp_remove_in(class, &path.root, Some(i)),
                (true, Idx::First) => attrs.xavp_remove_in(class, &path.root, Some(0)),
                (false, Idx::At(i)) => match attrs.xavp_mut_in(class, &path.root, i) {
                    Some(x) => x.value = XavpValue::Value(v),
                    None => return Err("no XAVP at that index"),
                },
                (false, _) => {
                    if replace_all {
                        attrs.xavp_remove_in(class, &path.root, None);
                    }
                    attrs.xavp_push_in(class, Xavp::value(path.root.clone(), v));
                }
            }
            return Ok(());
        };
        let root_i = match root_idx {
            Idx::At(i) => Some(i),
            Idx::All | Idx::First => None,
        };
        if null {
            if let Some(root) = attrs.xavp_mut_in(class, &path.root, root_i.unwrap_or(0)) {
                match field_idx {
                    Idx::All => root.remove_field(field, None),
                    Idx::At(i) => root.remove_field(field, Some(i)),
                    Idx::First => root.remove_field(field, Some(0)),
                }
            }
            return Ok(());
        }
        match root_i {
            // No root index: a new root holding the field.
            None => {
                let mut root = Xavp {
                    name: path.root.clone(),
                    value: XavpValue::List(Vec::new()),
                };
                root.push_field(Xavp::value(field.clone(), v));
                attrs.xavp_push_in(class, root);
            }
            Some(i) => {
                let Some(root) = attrs.xavp_mut_in(class, &path.root, i) else {
                    return Err("no XAVP at that index");
                };
                match field_idx {
                    Idx::At(j) => match root.field_mut(field, j) {
                        Some(f) => f.value = XavpValue::Value(v),
                        None => return Err("no XAVP field at that index"),
                    },
                    Idx::All | Idx::First => {
                        if replace_all || field_idx == Idx::All {
                            root.remove_field(field, None);
                        }
                        root.push_field(Xavp::value(field.clone(), v));
                    }
                }
            }
        }
        Ok(())
    }

    /// `$xavu(r) = v` replaces the root's value; `$xavu(r=>f) = v` the
    /// field's, making the root when there is none; `$null` removes.
    fn write_xavu(&mut self, path: &XavpPath, value: Value<'_>) {
        let attrs = &mut self.attrs;
        let class = XavpClass::Xavu;
        let null = value.is_null();
        let v = value.into_owned();
        match &path.field {
            None => {
                attrs.xavp_remove_in(class, &path.root, None);
                if !null {
                    attrs.xavp_push_in(class, Xavp::value(path.root.clone(), v));
                }
            }
            Some((field, _)) => {
                if attrs.xavp_in(class, &path.root, 0).is_none() {
                    if null {
                        return;
                    }
                    attrs.xavp_push_in(
                        class,
                        Xavp {
                            name: path.root.clone(),
                            value: XavpValue::List(Vec::new()),
                        },
                    );
                }
                if let Some(root) = attrs.xavp_mut_in(class, &path.root, 0) {
                    root.remove_field(field, None);
                    if !null {
                        root.push_field(Xavp::value(field.clone(), v));
                    }
                }
            }
        }
    }

    /// Changes a part of From or To through the edit list.
    fn edit_name_header(
        &mut self,
        id: HeaderName,
        part: NamePart,
        value: &Value<'_>,
    ) -> Result<(), &'static str> {
        let msg = self.msg;
        let Some(h) = msg.header(id) else {
            return Err("the message has no such header");
        };
        let buf: &[u8] = msg.buf();
        let vr = h.value.range();
        let na =
            NameAddr::parse_in(buf, vr.start, vr.end).map_err(|_| "the header cannot be parsed")?;
        let text = (!value.is_null()).then(|| value.to_bytes());
        let text = text.as_deref().filter(|t| !t.is_empty());
        let uri_range = na.uri_range();
        match part {
            NamePart::Uri => {
                let t = text.ok_or("a URI cannot be empty")?;
                self.edits.replace(uri_range, Bytes::copy_from_slice(t));
            }
            NamePart::User | NamePart::Host => {
                let p = if part == NamePart::User {
                    UriPart::User
                } else {
                    UriPart::Host
                };
                let uri = rewrite_uri(na.uri_raw(), p, text)?;
                self.edits.replace(uri_range, Bytes::from(uri));
            }
            NamePart::Display => {
                let existing = super::transform::display_raw(buf, &na)
                    .map(|d| super::transform::range_in(buf, d));
                match (existing, text) {
                    (Some(r), Some(t)) => self.edits.replace(r, Bytes::copy_from_slice(t)),
                    (Some(r), None) => {
                        // Drop the name and the white space before `<`.
                        let lt = uri_range.start.saturating_sub(1);
                        self.edits.delete(r.start..lt.max(r.end));
                    }
                    (None, None) => {}
                    (None, Some(t)) if na.has_brackets() => {
                        let mut ins = t.to_vec();
                        ins.push(b' ');
                        self.edits.insert(uri_range.start - 1, ins);
                    }
                    (None, Some(t)) => {
                        let mut ins = t.to_vec();
                        ins.extend_from_slice(b" <");
                        self.edits.insert(uri_range.start, ins);
                        self.edits.insert(uri_range.end, Bytes::from_static(b">"));
                    }
                }
            }
            NamePart::Tag => return Err("the tag is read-only"),
        }
        Ok(())
    }
}

/// Stores `value` in a `$var` cell, reusing its buffer for strings;
/// `$null` stores 0, as Kamailio does.
fn store(cell: &mut Value<'static>, value: Value<'_>) {
    match value {
        Value::Null => *cell = Value::Int(0),
        Value::Int(i) => *cell = Value::Int(i),
        Value::Str(s) => match cell {
            Value::Str(std::borrow::Cow::Owned(buf)) => {
                buf.clear();
                buf.extend_from_slice(&s);
            }
            _ => *cell = Value::owned(s.into_owned()),
        },
    }
}

/// `uri` with its user, host or port replaced (`None` removes user or port).
pub(crate) fn rewrite_uri(
    uri: &[u8],
    part: UriPart,
    value: Option<&[u8]>,
) -> Result<Vec<u8>, &'static str> {
    let parsed = Uri::parse(uri).map_err(|_| "the URI cannot be parsed")?;
    if !parsed.scheme().is_sip() {
        return Err("only sip: and sips: URIs have user, host and port");
    }
    let host = super::transform::range_in(uri, parsed.host_raw());
    let mut out = Vec::with_capacity(uri.len() + 16);
    match part {
        UriPart::User => {
            // The user (password kept) is replaced; without one, `user@` goes before the host.
            let (start, end) = match parsed.user() {
                Some(u) => {
                    let r = super::transform::range_in(uri, u);
                    if value.is_none() {
                        // Remove `user[:password]@`.
                        (r.start, host.start)
                    } else {
                        (r.start, r.end)
                    }
                }
                None => (host.start, host.start),
            };
            out.extend_from_slice(&uri[..start]);
            if let Some(v) = value {
                out.extend_from_slice(v);
                if parsed.user().is_none() {
                    out.push(b'@');
                }
            }
            out.extend_from_slice(&uri[end..]);
        }
        UriPart::Host => {
            let v = value.ok_or("a host cannot be empty")?;
            out.extend_from_slice(&uri[..host.start]);
            out.extend_from_slice(v);
            out.extend_from_slice(&uri[host.end..]);
        }
        UriPart::Port => {
            let port_end = if uri.get(host.end) == Some(&b':') {
                let digits = uri[host.end + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(uri.len() - host.end - 1);
                host.end + 1 + digits
            } else {
                host.end
            };
            let value = value.filter(|v| !v.is_empty() && *v != b"0");
            if let Some(v) = value {
                let ok = v.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(v)
                        .ok()
                        .and_then(|t| t.parse::<u16>().ok())
                        .is_some();
                if !ok {
                    return Err("a port must be a number in 1..65535");
                }
            }
            out.extend_from_slice(&uri[..host.end]);
            if let Some(v) = value {
                out.push(b':');
                out.extend_from_slice(v);
            }
            out.extend_from_slice(&uri[port_end..]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(uri: &str, part: UriPart, v: Option<&str>) -> String {
        String::from_utf8(rewrite_uri(uri.as_bytes(), part, v.map(str::as_bytes)).unwrap()).unwrap()
    }

    #[test]
    fn uri_rewrites() {
        use UriPart::*;
        assert_eq!(rw("sip:a@h;x=1", User, Some("b")), "sip:b@h;x=1");
        assert_eq!(rw("sip:h:5070", User, Some("b")), "sip:b@h:5070");
        assert_eq!(rw("sip:a:pw@h", User, Some("b")), "sip:b:pw@h");
        assert_eq!(rw("sip:a:pw@h", User, None), "sip:h");
        assert_eq!(rw("sip:a@h:1;x", Host, Some("n.org")), "sip:a@n.org:1;x");
        assert_eq!(rw("sip:a@[::1]:1", Host, Some("h")), "sip:a@h:1");
        assert_eq!(rw("sip:a@h", Port, Some("5070")), "sip:a@h:5070");
        assert_eq!(rw("sip:a@h:5060;t", Port, Some("5")), "sip:a@h:5;t");
        assert_eq!(rw("sip:a@h:5060?x=y", Port, None), "sip:a@h?x=y");
        assert!(rewrite_uri(b"tel:+123", User, Some(b"1")).is_err());
        assert!(rewrite_uri(b"sip:a@h", Port, Some(b"x")).is_err());
        assert!(rewrite_uri(b"sip:a@h", Port, Some(b"70000")).is_err());
        assert!(rewrite_uri(b"sip:a@h", Host, None).is_err());
    }

    #[test]
    fn var_store_reuses_its_buffer() {
        let mut cell = Value::owned(Vec::with_capacity(32));
        store(&mut cell, Value::str(b"abc"));
        assert_eq!(cell, Value::str(b"abc"));
        store(&mut cell, Value::Null);
        assert_eq!(cell, Value::Int(0));
    }
}
