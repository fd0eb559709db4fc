//! permissions: address groups (KAMAILIO-REFERENCE §7.1). The `address` table
//! (`grp, ip_addr, mask, port, tag`) is held as a snapshot shared by every
//! core, loaded at start-up and swapped whole by [`Permissions::reload`] (the
//! `permissions.addressReload` RPC). An entry matches an address when the IP is
//! in its subnet (or, for a DNS-name entry, the text is equal) and its port is
//! the same or 0.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{
    Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;
use crate::store::{AddressRow, StoreHandle};

pub mod trusted;

/// An address entry's host: a subnet, or a DNS name matched as text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Net(IpAddr, u8),
    Name(Box<str>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    grp: i64,
    host: Host,
    /// 0: any port.
    port: u16,
    tag: Option<Box<str>>,
}

impl Entry {
    fn from_row(r: &AddressRow) -> Option<Entry> {
        let host = match r.ip_addr.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                Host::Net(ip, r.mask.clamp(0, max) as u8)
            }
            Err(_) if !r.ip_addr.trim().is_empty() => {
                Host::Name(r.ip_addr.trim().to_ascii_lowercase().into())
            }
            Err(_) => return None,
        };
        Some(Entry {
            grp: r.grp,
            host,
            port: u16::try_from(r.port).unwrap_or(0),
            tag: r.tag.as_deref().map(Into::into),
        })
    }

    fn matches(&self, addr: &str, ip: Option<IpAddr>, port: u16) -> bool {
        if self.port != 0 && self.port != port {
            return false;
        }
        match (&self.host, ip) {
            (Host::Net(net, bits), Some(ip)) => in_subnet(ip, *net, *bits),
            (Host::Name(name), None) => name.eq_ignore_ascii_case(addr),
            _ => false,
        }
    }
}

fn in_subnet(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Reads an `address_file`: lines `grp addr [mask] [port] [tag]`, `#` comments.
pub fn parse_address_file(text: &str) -> Result<Vec<AddressRow>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |k: usize, d: i64| -> Result<i64, String> {
            f.get(k).map_or(Ok(d), |v| {
                v.parse()
                    .map_err(|_| format!("line {}: {v:?} is not a number", i + 1))
            })
        };
        let (addr, mask) = match f.get(1).map(|a| a.split_once('/')) {
            Some(Some((a, m))) => (
                a,
                m.parse().map_err(|_| format!("line {}: bad mask", i + 1))?,
            ),
            Some(None) => (f[1], num(2, 32)?),
            None => return Err(format!("line {}: no address", i + 1)),
        };
        let shift = usize::from(f.get(1).is_some_and(|a| a.contains('/')));
        rows.push(AddressRow {
            grp: num(0, 1)?,
            ip_addr: addr.to_string(),
            mask,
            port: num(3 - shift, 0)?,
            tag: f.get(4 - shift).map(|t| t.to_string()),
        });
    }
    Ok(rows)
}

/// The address groups, shared by every core.
#[derive(Debug)]
pub struct Permissions {
    store: Option<StoreHandle>,
    table: String,
    entries: RwLock<Arc<Vec<Entry>>>,
    /// `peer_tag_avp`: set to the tag of the entry `allow_address` /
    /// `allow_source_address` matched (when it has one).
    pub peer_tag_avp: Option<AvpKey>,
}

/// `peer_tag_avp` from the module parameters.
pub fn peer_tag_avp(mp: &ModParams) -> Result<Option<AvpKey>, String> {
    match mp.str("permissions", "peer_tag_avp") {
        None | Some("") => Ok(None),
        Some(t) => crate::modules::registrar::avp_param(t)
            .map(Some)
            .ok_or_else(|| format!("permissions: peer_tag_avp {t:?} is not an AVP ($avp(name))")),
    }
}

impl Permissions {
    /// From rows already read (an `address_file`, or tests).
    pub fn from_rows(rows: &[AddressRow]) -> Permissions {
        Permissions {
            store: None,
            table: "address".into(),
            entries: RwLock::new(Arc::new(rows.iter().filter_map(Entry::from_row).collect())),
            peer_tag_avp: None,
        }
    }

    /// Loads `address_table` from the database behind `store`.
    pub fn from_store(mp: &ModParams, store: StoreHandle) -> Result<Permissions, String> {
        let p = Permissions {
            store: Some(store),
            table: mp
                .str("permissions", "address_table")
                .unwrap_or("address")
                .to_string(),
            entries: RwLock::new(Arc::new(Vec::new())),
            peer_tag_avp: peer_tag_avp(mp)?,
        };
        p.reload()?;
        Ok(p)
    }

    /// Reads the table again and swaps it in; the number of entries.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(store) = &self.store else {
            return Ok(self.snapshot().len());
        };
        let table = self.table.clone();
        let rows = store
            .call(move |s| s.addresses(&table), Duration::from_secs(10))
            .ok_or("permissions: the store thread did not answer")?
            .map_err(|e| format!("permissions: loading {}: {e}", self.table))?;
        let entries: Vec<Entry> = rows.iter().filter_map(Entry::from_row).collect();
        let n = entries.len();
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        log::info!("permissions: {n} address entries loaded");
        Ok(n)
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The group of the first entry (in `grp`, or any group) matching `addr:port`.
    pub fn group_of(&self, grp: Option<i64>, addr: &str, port: u16) -> Option<i64> {
        self.find(grp, addr, port).map(|(g, _)| g)
    }

    /// The tag of the first entry matching, for `peer_tag_avp`.
    pub fn tag_of(&self, grp: Option<i64>, addr: &str, port: u16) -> Option<Box<str>> {
        self.find(grp, addr, port).and_then(|(_, tag)| tag)
    }

    /// Group and tag of the first entry (in `grp`, or any group) matching `addr:port`.
    fn find(&self, grp: Option<i64>, addr: &str, port: u16) -> Option<(i64, Option<Box<str>>)> {
        let addr = addr.trim().trim_start_matches('[').trim_end_matches(']');
        let ip = addr.parse::<IpAddr>().ok();
        self.snapshot()
            .iter()
            .filter(|e| grp.is_none_or(|g| e.grp == g))
            .find(|e| e.matches(addr, ip, port))
            .map(|e| (e.grp, e.tag.clone()))
    }

    /// Whether `addr:port` is in group `grp`; sets `peer_tag_avp` to the entry's tag.
    fn allow(&self, ctx: &mut MsgCtx<'_>, grp: i64, addr: &str, port: u16) -> i32 {
        let Some((_, tag)) = self.find(Some(grp), addr, port) else {
            return -1;
        };
        if let (Some(key), Some(tag)) = (&self.peer_tag_avp, tag) {
            ctx.attrs
                .avp_push(key.clone(), Value::owned(tag.as_bytes().to_vec()));
        }
        1
    }
}

fn perms<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Permissions> {
    let p = ctx.env.services.get::<Permissions>();
    if p.is_none() {
        log::error!("permissions: no address table (db_url or address_file)");
    }
    p
}

fn group_code(g: Option<i64>) -> i32 {
    match g {
        Some(g) => i32::try_from(g).ok().filter(|g| *g > 0).unwrap_or(1),
        None => -1,
    }
}

/// `allow_source_address([grp])`: 1 if the source IP and port are in group `grp` (default 1).
fn allow_source_address(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let grp = if args.is_empty() {
        Some(1)
    } else {
        args.int(ctx, 0)
    };
    let Some(p) = perms(ctx) else { return -1 };
    let (ip, port) = (ctx.src.ip().to_string(), ctx.src.port());
    p.allow(ctx, grp.unwrap_or(1), &ip, port)
}

/// `allow_source_address_group()`: the group of the source address, or -1.
fn allow_source_address_group(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(p) = perms(ctx) else { return -1 };
    group_code(p.group_of(None, &ctx.src.ip().to_string(), ctx.src.port()))
}

fn port_arg(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> u16 {
    args.int(ctx, i)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

/// `allow_address(grp, addr, port)`: 1 if `addr:port` is in group `grp`.
fn allow_address(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = perms(ctx) else { return -1 };
    let Some(grp) = args.int(ctx, 0) else {
        return -1;
    };
    let addr = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    let port = port_arg(ctx, args, 2);
    p.allow(ctx, grp, &addr, port)
}

/// `allow_address_group(addr, port)`: the group of `addr:port`, or -1.
fn allow_address_group(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = perms(ctx) else { return -1 };
    let addr = String::from_utf8_lossy(&args.str(ctx, 0)).into_owned();
    group_code(p.group_of(None, &addr, port_arg(ctx, args, 1)))
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);

const fn func(
    name: &'static str,
    min_args: u8,
    max_args: u8,
    routes: RouteMask,
    call: crate::script::registry::Handler,
) -> FunctionDef {
    FunctionDef {
        name,
        min_args,
        max_args,
        routes,
        fixup: None,
        call,
    }
}

const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "permissions",
    aliases: &[],
    functions: &[
        func("allow_source_address", 0, 1, REQ_FAIL, allow_source_address),
        func(
            "allow_source_address_group",
            0,
            0,
            REQ_FAIL,
            allow_source_address_group,
        ),
        func("allow_address", 3, 3, RouteMask::ANY, allow_address),
        func(
            "allow_address_group",
            2,
            2,
            RouteMask::ANY,
            allow_address_group,
        ),
        FunctionDef {
            name: "allow_trusted",
            min_args: 0,
            max_args: 3,
            routes: RouteMask::ANY,
            fixup: Some(trusted::fixup_allow_trusted),
            call: trusted::allow_trusted,
        },
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("address_table", ParamKind::Str),
        param("grp_col", ParamKind::Str),
        param("ip_addr_col", ParamKind::Str),
        param("mask_col", ParamKind::Str),
        param("port_col", ParamKind::Str),
        param("tag_col", ParamKind::Str),
        param("address_file", ParamKind::Str),
        param("peer_tag_avp", ParamKind::Str),
        param("load_backends", ParamKind::Int),
        param("reload_delta", ParamKind::Int),
        param("db_mode", ParamKind::Int),
        param("trusted_table", ParamKind::Str),
        param("default_allow_file", ParamKind::Str),
        param("default_deny_file", ParamKind::Str),
        param("check_all_branches", ParamKind::Int),
        param("max_subnets", ParamKind::Int),
        param("source_col", ParamKind::Str),
        param("proto_col", ParamKind::Str),
        param("from_col", ParamKind::Str),
        param("ruri_col", ParamKind::Str),
        param("priority_col", ParamKind::Str),
        param("peer_tag_mode", ParamKind::Int),
        param("trusted_cleanup_interval", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn row(grp: i64, ip: &str, mask: i64, port: i64) -> AddressRow {
        AddressRow {
            grp,
            ip_addr: ip.into(),
            mask,
            port,
            tag: Some(format!("t{grp}")),
        }
    }

    #[test]
    fn subnets_ports_and_names() {
        let p = Permissions::from_rows(&[
            row(1, "10.0.0.0", 8, 0),
            row(2, "192.168.1.10", 32, 5060),
            row(3, "gw.example.com", 32, 0),
            row(4, "2001:db8::", 32, 0),
            row(5, "0.0.0.0", 0, 5080),
        ]);
        assert_eq!(p.group_of(Some(1), "10.200.3.4", 9999), Some(1));
        assert_eq!(p.group_of(Some(1), "11.0.0.1", 5060), None);
        assert_eq!(p.group_of(None, "192.168.1.10", 5060), Some(2));
        assert_eq!(p.group_of(None, "192.168.1.10", 5061), None);
        assert_eq!(p.group_of(None, "GW.example.com", 1), Some(3));
        assert_eq!(p.group_of(None, "[2001:db8:1::5]", 1), Some(4));
        assert_eq!(p.group_of(None, "8.8.8.8", 5080), Some(5));
        assert_eq!(p.tag_of(None, "10.1.1.1", 1).as_deref(), Some("t1"));
        assert_eq!(group_code(Some(7)), 7);
        assert_eq!(group_code(None), -1);
    }

    #[test]
    fn address_file() {
        let rows =
            parse_address_file("# comment\n1 10.0.0.0/8\n2 1.2.3.4 32 5060 gw\n\n3 5.6.7.8\n")
                .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].mask, rows[0].port), (8, 0));
        assert_eq!((rows[1].port, rows[1].tag.as_deref()), (5060, Some("gw")));
        assert_eq!(rows[2].mask, 32);
        assert!(parse_address_file("x 1.2.3.4").is_err());
    }
}
