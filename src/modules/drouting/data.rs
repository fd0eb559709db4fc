//! The routing data of drouting, built from the rows of its tables as
//! Kamailio 5.6 builds them:
//! - gateways (`dr_gateways`): a gateway whose address is not a SIP URI (or,
//!   with `force_dns` 1, whose host does not resolve) is skipped with an
//!   error; with `force_dns` 0 an unresolved one is kept for routing but is
//!   not known to `is_from_gw`/`goes_to_gw`;
//! - rules (`dr_rules`): `groupid` is a list of numbers (`,`, `|` or blanks
//!   between), `gwlist` a list of gateway ids (`,`, `|` or blanks between,
//!   `;` closing a group of gateways that `sort_order` shuffles) or `#ID` of
//!   a `dr_gw_lists` row; a rule with a bad time, an unknown gateway or list,
//!   or a prefix with other characters than `0-9*#+` is skipped with an
//!   error. No gateway: no rules; no rule: no gateways either.
//! - per prefix and group, rules are kept by priority, highest first (equal
//!   priorities in table order).

use std::net::IpAddr;

use crate::modules::timerec::TimeRec;

/// One `dr_gateways` row.
#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    pub id: i64,
    pub gw_type: i64,
    /// As written in the table (with or without `sip:`); it becomes the
    /// host part of the new R-URI as it is.
    pub address: Vec<u8>,
    pub strip: i64,
    pub pri_prefix: Vec<u8>,
    pub attrs: Vec<u8>,
}

/// A gateway's address as `is_from_gw` and `goes_to_gw` compare it.
#[derive(Clone, Debug, PartialEq)]
pub struct GwAddr {
    pub ip: IpAddr,
    /// 0: any source port.
    pub port: u16,
    pub gw_type: i64,
    pub strip: i64,
}

/// One rule: its gateways as (index in [`RoutingData::gateways`], group).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub priority: i64,
    pub time: TimeRec,
    /// `routeid`: the `route[NAME]` run before the rule is used.
    pub route: Option<Vec<u8>>,
    pub gws: Vec<(usize, u32)>,
}

/// Rules per routing group at one prefix, best first.
type Groups = Vec<(u32, Vec<usize>)>;

#[derive(Clone, Debug, Default, PartialEq)]
struct Node {
    /// Child per symbol (`0`-`9`, `*`, `#`, `+`); 0 is none (the root is
    /// nobody's child).
    children: [u32; 13],
    groups: Groups,
}

/// Everything loaded from the tables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutingData {
    pub gateways: Vec<Gateway>,
    /// Newest first, as Kamailio searches them.
    pub addrs: Vec<GwAddr>,
    pub rules: Vec<Rule>,
    nodes: Vec<Node>,
    noprefix: Groups,
}

/// The symbols a prefix may hold.
fn symbol(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some(usize::from(c - b'0')),
        b'*' => Some(10),
        b'#' => Some(11),
        b'+' => Some(12),
        _ => None,
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// C `strtol` in base 10 at the start of `s`: the value and how many bytes
/// it took (0 when there is no number).
fn strtol(s: &[u8]) -> (i64, usize) {
    let mut i = 0;
    while i < s.len() && (is_space(s[i]) || s[i] == 0x0b || s[i] == 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: i64 = 0;
    while let Some(c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    (if neg { -v } else { v }, i)
}

/// A list of numbers as drouting reads `groupid` (`groups` false) and
/// `gwlist` (`groups` true, `;` ends a group): (number, group index).
pub fn parse_id_list(s: &[u8], groups: bool) -> Result<Vec<(i64, u32)>, String> {
    let shown = || String::from_utf8_lossy(s).into_owned();
    let (mut out, mut grp, mut at) = (Vec::new(), 0u32, 0usize);
    while at < s.len() {
        let (v, used) = strtol(&s[at..]);
        if used == 0 {
            return Err(format!("bad id at {at} in [{}]", shown()));
        }
        at += used;
        let next = s.get(at).copied();
        match next {
            None | Some(b',' | b'|') => {}
            Some(b';') if groups => {}
            Some(c) if is_space(c) => {}
            Some(c) => return Err(format!("bad char {:?} at {at} in [{}]", c as char, shown())),
        }
        out.push((v, grp));
        if groups && next == Some(b';') {
            grp += 1;
        }
        while s.get(at).is_some_and(|&c| is_space(c)) {
            at += 1;
        }
        if matches!(s.get(at), Some(b',' | b'|')) || (groups && s.get(at) == Some(&b';')) {
            at += 1;
        }
    }
    if out.is_empty() {
        return Err(format!("empty list [{}]", shown()));
    }
    Ok(out)
}

/// One `dr_rules` row as read.
#[derive(Clone, Debug, Default)]
pub struct RuleRow {
    pub id: i64,
    pub groups: Vec<u8>,
    pub prefix: Vec<u8>,
    pub timerec: Vec<u8>,
    pub priority: i64,
    pub routeid: Vec<u8>,
    pub gwlist: Vec<u8>,
}

impl RoutingData {
    fn new() -> RoutingData {
        RoutingData {
            nodes: vec![Node::default()],
            ..RoutingData::default()
        }
    }

    /// Builds the data. `addr` gives a gateway's address for the source
    /// checks (`Ok(None)`: kept, but unknown to them; `Err`: skipped).
    pub fn build(
        gateways: Vec<Gateway>,
        lists: &[(i64, Vec<u8>)],
        rules: &[RuleRow],
        addr: impl Fn(&Gateway) -> Result<Option<(IpAddr, u16)>, String>,
    ) -> RoutingData {
        let mut d = RoutingData::new();
        for gw in gateways {
            match addr(&gw) {
                Err(e) => {
                    log::error!(
                        "drouting: failed to add destination id {} -> skipping: {e}",
                        gw.id
                    );
                    continue;
                }
                Ok(Some((ip, port))) => {
                    let known = d
                        .addrs
                        .iter()
                        .any(|a| a.gw_type == gw.gw_type && a.port == port && a.ip == ip);
                    if !known {
                        d.addrs.insert(
                            0,
                            GwAddr {
                                ip,
                                port,
                                gw_type: gw.gw_type,
                                strip: gw.strip,
                            },
                        );
                    }
                }
                Ok(None) => {}
            }
            d.gateways.push(gw);
        }
        if d.gateways.is_empty() {
            log::warn!("drouting: no valid destinations set -> ignoring the routing rules");
            return d;
        }
        for row in rules {
            if let Err(e) = d.add_rule(row, lists) {
                log::error!("drouting: rule id {} -> skipping: {e}", row.id);
            }
        }
        if d.rules.is_empty() {
            log::warn!("drouting: no valid routing rules -> discarding all destinations");
            return RoutingData::new();
        }
        d
    }

    fn add_rule(&mut self, row: &RuleRow, lists: &[(i64, Vec<u8>)]) -> Result<(), String> {
        let time = TimeRec::parse(&row.timerec).map_err(|e| format!("bad time definition: {e}"))?;
        let route = match row.routeid.first() {
            None | Some(b'0') => None,
            Some(_) => Some(row.routeid.clone()),
        };
        let mut gwlist = row.gwlist.as_slice();
        if let Some(id) = gwlist.strip_prefix(b"#") {
            let found = std::str::from_utf8(id)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|n| lists.iter().rev().find(|(i, _)| *i == n));
            match found {
                Some((_, l)) => gwlist = l,
                None => {
                    return Err(format!(
                        "invalid reference to a GW list <{}>",
                        String::from_utf8_lossy(&row.gwlist)
                    ))
                }
            }
        }
        let mut gws = Vec::new();
        for (id, grp) in parse_id_list(gwlist, true)? {
            let id = i64::from(id as i32);
            let at = self
                .gateways
                .iter()
                .position(|g| g.id == id)
                .ok_or_else(|| format!("invalid GW id {id}"))?;
            gws.push((at, grp));
        }
        let groups = parse_id_list(&row.groups, false)?;
        if row.prefix.iter().any(|&c| symbol(c).is_none()) {
            return Err(format!(
                "failed to add prefix route: bad prefix {:?}",
                String::from_utf8_lossy(&row.prefix)
            ));
        }
        let idx = self.rules.len();
        self.rules.push(Rule {
            id: row.id,
            priority: row.priority,
            time,
            route,
            gws,
        });
        for (g, _) in groups {
            let node = if row.prefix.is_empty() {
                None
            } else {
                Some(self.node_for(&row.prefix))
            };
            let priority = row.priority;
            let rules = &self.rules;
            let list = match node {
                Some(n) => &mut self.nodes[n].groups,
                None => &mut self.noprefix,
            };
            let g = g as u32;
            let entry = match list.iter().position(|(id, _)| *id == g) {
                Some(p) => &mut list[p].1,
                None => {
                    list.push((g, Vec::new()));
                    &mut list.last_mut().expect("just pushed").1
                }
            };
            // After every rule of the same or a higher priority.
            let at = entry
                .iter()
                .position(|&r| priority > rules[r].priority)
                .unwrap_or(entry.len());
            entry.insert(at, idx);
        }
        Ok(())
    }

    /// The node of `prefix` (all symbols), made when missing.
    fn node_for(&mut self, prefix: &[u8]) -> usize {
        let mut n = 0usize;
        for &c in prefix {
            let s = symbol(c).unwrap_or(0);
            let child = self.nodes[n].children[s];
            n = if child == 0 {
                self.nodes.push(Node::default());
                let new = self.nodes.len() - 1;
                self.nodes[n].children[s] = new as u32;
                new
            } else {
                child as usize
            };
        }
        n
    }

    fn check(&self, groups: &Groups, group: u32, now: i64) -> Option<usize> {
        let (_, rules) = groups.iter().find(|(g, _)| *g == group)?;
        rules
            .iter()
            .copied()
            .find(|&r| self.rules[r].time.matches(now))
    }

    /// The rule for `user` in `group` at unix time `now`: the longest prefix
    /// with a rule of the group valid now, else a rule without prefix.
    pub fn lookup(&self, user: &[u8], group: u32, now: i64) -> Option<&Rule> {
        self.lookup_prefix(user, group, now)
            .or_else(|| self.check(&self.noprefix, group, now))
            .map(|r| &self.rules[r])
    }

    fn lookup_prefix(&self, user: &[u8], group: u32, now: i64) -> Option<usize> {
        if user.is_empty() {
            return None;
        }
        // Down the tree while there are longer prefixes; a symbol outside
        // the alphabet on the way makes the whole prefix search fail.
        let mut path = vec![0usize];
        let mut syms = Vec::with_capacity(user.len());
        for (i, &c) in user.iter().enumerate() {
            let s = symbol(c)?;
            syms.push(s);
            if i == user.len() - 1 {
                break;
            }
            let child = self.nodes[*path.last().unwrap_or(&0)].children[s] as usize;
            if child == 0 || self.nodes[child].children.iter().all(|&c| c == 0) {
                break;
            }
            path.push(child);
        }
        // Back up, longest prefix first.
        for k in (0..syms.len()).rev() {
            let node = self.nodes[path[k]].children[syms[k]] as usize;
            if node != 0 {
                if let Some(r) = self.check(&self.nodes[node].groups, group, now) {
                    return Some(r);
                }
            }
        }
        None
    }
}
