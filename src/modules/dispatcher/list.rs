//! Destination sets: read from a `dispatcher.list` file or the `dispatcher`
//! table, ordered, and held as one snapshot shared by every core. A
//! destination's state (active, inactive, trying, disabled, probing) is an
//! atomic inside the snapshot, so marking one never takes a lock; a reload
//! builds a new snapshot and swaps it whole.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::sip::host::Host;
use crate::sip::uri::Uri;
use crate::sip::Proto;
use crate::store::DispatcherRow;

/// State bits, as Kamailio numbers them in the list file's flags column.
pub const INACTIVE: u32 = 1;
pub const TRYING: u32 = 2;
pub const DISABLED: u32 = 4;
pub const PROBING: u32 = 8;
/// `16`: do not resolve the host name (kept, nothing to do: hosts are not resolved).
pub const NODNS: u32 = 16;
/// The bits a state change replaces.
pub const STATES: u32 = INACTIVE | TRYING | DISABLED | PROBING;

/// The attributes of a destination (`k=v;...`, with a few names that mean something).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestAttrs {
    /// The whole text as written.
    pub body: String,
    pub duid: Option<String>,
    pub maxload: u32,
    pub weight: u32,
    pub rweight: u32,
    pub socket: Option<String>,
    pub sockname: Option<String>,
    pub ping_from: Option<String>,
    pub obproxy: Option<String>,
}

impl DestAttrs {
    pub fn parse(text: &str) -> DestAttrs {
        let mut a = DestAttrs {
            body: text.to_string(),
            ..DestAttrs::default()
        };
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let v = v.trim().trim_matches('"');
            let num = || v.parse::<u32>().unwrap_or(0);
            match k.trim().to_ascii_lowercase().as_str() {
                "duid" => a.duid = Some(v.to_string()),
                "maxload" => a.maxload = num(),
                // Kamailio takes weights 1..100 (more is capped).
                "weight" => a.weight = num().min(100),
                "rweight" => a.rweight = num().min(100),
                "socket" => a.socket = Some(v.to_string()),
                "sockname" => a.sockname = Some(v.to_string()),
                "ping_from" => a.ping_from = Some(v.to_string()),
                "obproxy" => a.obproxy = Some(v.to_string()),
                _ => {}
            }
        }
        a
    }
}

/// One destination of a set.
#[derive(Debug)]
pub struct Dest {
    pub uri: Bytes,
    /// The host as written (lower case), and the port (0 when the URI has none).
    pub host: String,
    pub port: u16,
    /// The transport the URI asks for (`transport=`, `sips:` → TLS); `None`: any.
    pub proto: Option<Proto>,
    /// Only the `transport=` parameter of the URI (what `ds_is_from_list` compares).
    pub uri_transport: Option<Proto>,
    /// The address: the host when it is an IP address, else what the name
    /// resolved to when the list was loaded (unless the `NODNS` flag is set).
    pub ip: Option<IpAddr>,
    pub priority: i32,
    pub attrs: DestAttrs,
    /// State bits ([`INACTIVE`], [`TRYING`], [`DISABLED`], [`PROBING`]).
    pub flags: AtomicU32,
}

impl Dest {
    pub fn new(uri: &str, flags: u32, priority: i32, attrs: &str) -> Result<Dest, String> {
        let parsed =
            Uri::parse(uri.as_bytes()).map_err(|_| format!("bad destination URI \"{uri}\""))?;
        if !parsed.scheme().is_sip() {
            return Err(format!("destination \"{uri}\" is not a sip: or sips: URI"));
        }
        let (host, ip) = match parsed.host() {
            Some(Host::V4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
            Some(Host::V6(a)) => (a.to_string(), Some(IpAddr::V6(a))),
            Some(Host::Name(n)) => (String::from_utf8_lossy(n).to_ascii_lowercase(), None),
            None => return Err(format!("destination \"{uri}\" has no host")),
        };
        let proto = parsed
            .transport()
            .or_else(|| parsed.is_secure().then_some(Proto::Tls));
        Ok(Dest {
            uri: Bytes::copy_from_slice(uri.as_bytes()),
            host,
            port: parsed.port().unwrap_or(0),
            proto,
            uri_transport: parsed.transport(),
            ip,
            priority,
            attrs: DestAttrs::parse(attrs),
            flags: AtomicU32::new(flags & (STATES | NODNS)),
        })
    }

    pub fn state(&self) -> u32 {
        self.flags.load(Ordering::Relaxed) & STATES
    }

    /// Whether selection passes over it (inactive or disabled; trying is still used).
    pub fn skipped(&self) -> bool {
        self.state() & (INACTIVE | DISABLED) != 0
    }

    /// Replaces the state bits; the previous ones.
    pub fn set_state(&self, state: u32) -> u32 {
        let mut old = self.flags.load(Ordering::Relaxed);
        loop {
            let new = (old & !STATES) | (state & STATES);
            match self
                .flags
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return old & STATES,
                Err(now) => old = now,
            }
        }
    }

    /// Where to send to (only for a host that is an IP address): the port, or the transport's default.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let proto = self.proto.unwrap_or(Proto::Udp);
        let port = if self.port == 0 {
            proto.default_port()
        } else {
            self.port
        };
        self.ip.map(|ip| SocketAddr::new(ip, port))
    }

    /// Kamailio's `FLAGS` text: A/I/T/D, then P when probing, else X.
    pub fn state_text(&self) -> String {
        let s = self.state();
        let first = if s & DISABLED != 0 {
            'D'
        } else if s & INACTIVE != 0 {
            'I'
        } else if s & TRYING != 0 {
            'T'
        } else {
            'A'
        };
        let second = if s & PROBING != 0 { 'P' } else { 'X' };
        format!("{first}{second}")
    }
}

/// One destination set.
#[derive(Debug)]
pub struct DestSet {
    pub id: i32,
    /// Ordered by priority, highest first (stable for equal priorities).
    pub dests: Vec<Dest>,
    /// Next index for round-robin (algorithm 4, and 5 without credentials).
    pub rr: AtomicUsize,
    /// Weighted order (algorithm 9): 100 slots of destination indexes.
    pub wlist: Vec<u16>,
    pub wnext: AtomicUsize,
    /// Next slot for relative weight (algorithm 11).
    pub rwnext: AtomicUsize,
}

impl DestSet {
    /// Whether any destination has a weight (algorithm 9 uses the list only then).
    pub fn weighted(&self) -> bool {
        !self.wlist.is_empty()
    }
}

/// Every set, in the order Kamailio lists them (the last one read first).
#[derive(Debug, Default)]
pub struct DestLists {
    pub sets: Vec<DestSet>,
}

impl DestLists {
    /// Fills in the address of each destination named by a host name, as
    /// `lookup` resolves it (Kamailio resolves them when it loads the list;
    /// flag 16, `NODNS`, skips that). A name that does not resolve stays
    /// without an address: routing to it resolves again, keep-alives skip it.
    pub fn resolve_names(&mut self, lookup: impl Fn(&str) -> Option<IpAddr>) {
        for d in self.sets.iter_mut().flat_map(|s| s.dests.iter_mut()) {
            if d.ip.is_none() && d.flags.load(Ordering::Relaxed) & NODNS == 0 {
                d.ip = lookup(&d.host);
            }
        }
    }

    /// Builds the sets from rows (file lines or table rows), in their order.
    pub fn from_rows(rows: &[DispatcherRow]) -> Result<DestLists, String> {
        let mut sets: Vec<(i32, Vec<Dest>)> = Vec::new();
        for r in rows {
            let id = i32::try_from(r.setid).map_err(|_| format!("bad set id {}", r.setid))?;
            let flags = u32::try_from(r.flags).unwrap_or(0);
            let priority = i32::try_from(r.priority).unwrap_or(0);
            let dest = Dest::new(r.destination.trim(), flags, priority, &r.attrs)?;
            match sets.iter_mut().find(|(s, _)| *s == id) {
                Some((_, d)) => d.push(dest),
                None => sets.push((id, vec![dest])),
            }
        }
        // Kamailio 5.6 keeps the sets in an AVL tree and walks it left,
        // right, node (is_from_list with any group, the RPC list, probing).
        let order = tree_order(&sets.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        sets.sort_by_key(|(id, _)| order.iter().position(|o| o == id));
        let sets = sets
            .into_iter()
            .map(|(id, mut dests)| {
                // Kamailio's order (observed with 5.6.3): priority high first,
                // and among equal priorities the line read last first.
                dests.reverse();
                dests.sort_by_key(|d| std::cmp::Reverse(d.priority));
                let wlist = weight_slots(&dests);
                DestSet {
                    id,
                    dests,
                    rr: AtomicUsize::new(0),
                    wlist,
                    wnext: AtomicUsize::new(0),
                    rwnext: AtomicUsize::new(0),
                }
            })
            .collect();
        Ok(DestLists { sets })
    }

    pub fn set(&self, id: i32) -> Option<&DestSet> {
        self.sets.iter().find(|s| s.id == id)
    }
}

/// The set ids, first seen in `ids` order, as Kamailio walks its AVL tree
/// of sets: the smaller side, the larger side, then the node.
fn tree_order(ids: &[i32]) -> Vec<i32> {
    struct Node {
        id: i32,
        height: i32,
        kids: [Option<usize>; 2],
    }
    fn height(n: &[Node], i: Option<usize>) -> i32 {
        i.map_or(0, |i| n[i].height)
    }
    fn fix(n: &mut [Node], i: usize) {
        n[i].height = 1 + height(n, n[i].kids[0]).max(height(n, n[i].kids[1]));
    }
    /// Turns the subtree at `i` towards side `1 - dir` (its `dir` child rises).
    fn rotate(n: &mut [Node], i: usize, dir: usize) -> usize {
        let Some(up) = n[i].kids[dir] else { return i };
        n[i].kids[dir] = n[up].kids[1 - dir];
        n[up].kids[1 - dir] = Some(i);
        fix(n, i);
        fix(n, up);
        up
    }
    fn insert(n: &mut Vec<Node>, at: Option<usize>, id: i32) -> usize {
        let Some(i) = at else {
            n.push(Node {
                id,
                height: 1,
                kids: [None, None],
            });
            return n.len() - 1;
        };
        if id == n[i].id {
            return i;
        }
        let dir = usize::from(id > n[i].id);
        let kid = insert(n, n[i].kids[dir], id);
        n[i].kids[dir] = Some(kid);
        fix(n, i);
        let other = 1 - dir;
        if height(n, n[i].kids[dir]) - height(n, n[i].kids[other]) < 2 {
            return i;
        }
        // The inserted id went to the inner grandchild: a double rotation.
        if height(n, n[kid].kids[other]) > height(n, n[kid].kids[dir]) {
            n[i].kids[dir] = Some(rotate(n, kid, other));
        }
        rotate(n, i, dir)
    }
    fn walk(n: &[Node], at: Option<usize>, out: &mut Vec<i32>) {
        if let Some(i) = at {
            walk(n, n[i].kids[0], out);
            walk(n, n[i].kids[1], out);
            out.push(n[i].id);
        }
    }
    let mut nodes = Vec::with_capacity(ids.len());
    let mut root = None;
    for &id in ids {
        root = Some(insert(&mut nodes, root, id));
    }
    let mut out = Vec::with_capacity(nodes.len());
    walk(&nodes, root, &mut out);
    out
}

/// 100 slots shared out by weight (a destination with weight w gets w of
/// them, the rest go to the last one), mixed by a fixed shuffle so equal
/// weights interleave. Empty when no destination has a weight.
fn weight_slots(dests: &[Dest]) -> Vec<u16> {
    if dests.iter().all(|d| d.attrs.weight == 0) {
        return Vec::new();
    }
    let mut slots = Vec::with_capacity(100);
    for (i, d) in dests.iter().enumerate() {
        for _ in 0..d.attrs.weight {
            if slots.len() < 100 {
                slots.push(i as u16);
            }
        }
    }
    let last = (dests.len() - 1) as u16;
    slots.resize(100, last);
    // A fixed permutation (multiplying by a unit mod 100) spreads each
    // destination's slots over the cycle, so that the order is the same on
    // every core and after every restart.
    let mut mixed = vec![0u16; 100];
    for (i, s) in slots.iter().enumerate() {
        mixed[(i * 37) % 100] = *s;
    }
    mixed
}

/// Slots for relative weight (algorithm 11): 100 slots shared among the
/// destinations that are not skipped, in proportion to `rweight`; empty when
/// none of them has one.
pub fn rweight_slots(set: &DestSet) -> Vec<u16> {
    let live: Vec<(usize, u32)> = set
        .dests
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.skipped() && d.attrs.rweight > 0)
        .map(|(i, d)| (i, d.attrs.rweight))
        .collect();
    let total: u32 = live.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut slots = Vec::with_capacity(100);
    for (i, w) in &live {
        let n = (w * 100 / total) as usize;
        slots.extend(std::iter::repeat_n(*i as u16, n));
    }
    if let Some((last, _)) = live.last() {
        slots.resize(100, *last as u16);
    }
    let mut mixed = vec![0u16; 100];
    for (i, s) in slots.iter().enumerate() {
        mixed[(i * 37) % 100] = *s;
    }
    mixed
}

/// Reads a `dispatcher.list`: `setid destination [flags [priority [attrs]]]`
/// per line, `#` comments.
pub fn parse_list_file(text: &str) -> Result<Vec<DispatcherRow>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let at = |what: &str| format!("line {}: {what}", i + 1);
        let setid = f
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| at("the set id is not a number"))?;
        let destination = f.next().ok_or_else(|| at("no destination"))?.to_string();
        let num = |v: Option<&str>, what: &str| -> Result<i64, String> {
            v.map_or(Ok(0), |v| {
                v.parse::<i64>()
                    .map_err(|_| at(&format!("{what} \"{v}\" is not a number")))
            })
        };
        let flags = num(f.next(), "flags")?;
        let priority = num(f.next(), "priority")?;
        let attrs = f.collect::<Vec<_>>().join(" ");
        if let Err(e) = Dest::new(&destination, 0, 0, "") {
            return Err(at(&e));
        }
        rows.push(DispatcherRow {
            setid,
            destination,
            flags,
            priority,
            attrs,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_file_lines_and_errors() {
        let rows = parse_list_file(
            "# comment\n1 sip:10.0.0.1:5060\n\n1 sip:10.0.0.2 8 5 weight=50;duid=b\n2 sip:gw.example.com;transport=tcp 0 0\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].flags, 8);
        assert_eq!(rows[1].priority, 5);
        assert_eq!(rows[1].attrs, "weight=50;duid=b");
        assert!(parse_list_file("x sip:a").unwrap_err().contains("line 1"));
        assert!(parse_list_file("1 sip:a x").unwrap_err().contains("flags"));
        assert!(parse_list_file("1\n")
            .unwrap_err()
            .contains("no destination"));
        assert!(parse_list_file("1 http://a\n").is_err());
    }

    #[test]
    fn sets_ordered_by_priority_newest_set_first() {
        let rows =
            parse_list_file("1 sip:10.0.0.1 0 1\n1 sip:10.0.0.2 0 9\n2 sip:10.0.0.3\n").unwrap();
        let l = DestLists::from_rows(&rows).unwrap();
        assert_eq!(l.sets.iter().map(|s| s.id).collect::<Vec<_>>(), [2, 1]);
        let s1 = l.set(1).unwrap();
        assert_eq!(&s1.dests[0].uri[..], b"sip:10.0.0.2");
        assert_eq!(
            s1.dests[0].socket_addr(),
            Some("10.0.0.2:5060".parse().unwrap())
        );
    }

    #[test]
    fn equal_priorities_last_line_first_as_kamailio() {
        let rows = parse_list_file(
            "1 sip:10.0.0.1 0 1\n1 sip:10.0.0.2 0 9\n1 sip:10.0.0.3 0 5\n1 sip:10.0.0.4 0 9\n",
        )
        .unwrap();
        let l = DestLists::from_rows(&rows).unwrap();
        let order: Vec<_> = l
            .set(1)
            .unwrap()
            .dests
            .iter()
            .map(|d| d.uri.clone())
            .collect();
        // Observed with Kamailio 5.6.3 (round-robin from the start of a fresh set).
        assert_eq!(
            order,
            [
                "sip:10.0.0.4",
                "sip:10.0.0.2",
                "sip:10.0.0.3",
                "sip:10.0.0.1"
            ]
        );
    }

    #[test]
    fn states_and_their_text() {
        let d = Dest::new("sip:10.0.0.1;transport=tcp", 8, 0, "").unwrap();
        assert_eq!(d.proto, Some(Proto::Tcp));
        assert_eq!(d.state_text(), "AP");
        assert_eq!(d.set_state(INACTIVE | PROBING), PROBING);
        assert_eq!(d.state_text(), "IP");
        assert!(d.skipped());
        d.set_state(TRYING);
        assert_eq!(d.state_text(), "TX");
        assert!(!d.skipped());
        d.set_state(DISABLED);
        assert_eq!(d.state_text(), "DX");
    }

    #[test]
    fn weights_fill_100_slots() {
        let rows = parse_list_file("1 sip:10.0.0.2 0 0 weight=75\n1 sip:10.0.0.1 0 0 weight=25\n")
            .unwrap();
        let l = DestLists::from_rows(&rows).unwrap();
        let s = l.set(1).unwrap();
        assert_eq!(s.wlist.len(), 100);
        assert_eq!(s.wlist.iter().filter(|&&i| i == 0).count(), 25);
        let a = DestAttrs::parse("weight=500;socket=udp:1.2.3.4:5060;x=y");
        assert_eq!(a.weight, 100);
        assert_eq!(a.socket.as_deref(), Some("udp:1.2.3.4:5060"));
    }
}
