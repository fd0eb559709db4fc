//! Choosing a destination in a set (KAMAILIO-REFERENCE §7.9 "Algorithms"):
//! the first pick by the algorithm, then the next one that is not inactive or
//! disabled, and the order of the rest for failover.

use std::sync::atomic::Ordering;

use super::list::{rweight_slots, DestSet};

/// The algorithms ringsip runs (10 call load and 13 latency need the dialog
/// module and latency statistics and are refused at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    CallId,
    FromUri,
    ToUri,
    RUri,
    RoundRobin,
    AuthUser,
    Random,
    Pvar,
    Priority,
    Weight,
    RelativeWeight,
    Parallel,
}

impl Alg {
    pub fn from_number(n: i64) -> Result<Alg, String> {
        Ok(match n {
            0 => Alg::CallId,
            1 => Alg::FromUri,
            2 => Alg::ToUri,
            3 => Alg::RUri,
            4 => Alg::RoundRobin,
            5 => Alg::AuthUser,
            6 => Alg::Random,
            7 => Alg::Pvar,
            8 => Alg::Priority,
            9 => Alg::Weight,
            11 => Alg::RelativeWeight,
            12 => Alg::Parallel,
            10 => {
                return Err(
                    "algorithm 10 (call load) needs the dialog module, which ringsip does not have"
                        .into(),
                )
            }
            13 => return Err("algorithm 13 (latency) is not supported by ringsip".into()),
            // Kamailio takes any other number as "the first destination".
            _ => Alg::Priority,
        })
    }
}

/// Kamailio's string hash for dispatcher keys: 4 bytes at a time (bytes read
/// as signed chars, as C on x86 does), then the tail, then a final mix; never 0.
pub fn ds_hash(x: &[u8], y: Option<&[u8]>) -> u32 {
    fn part(s: &[u8], mut h: u32) -> u32 {
        let b = |i: usize| s[i] as i8 as i32 as u32;
        let mut i = 0;
        while i + 4 <= s.len() {
            let v = (b(i) << 24)
                .wrapping_add(b(i + 1) << 16)
                .wrapping_add(b(i + 2) << 8)
                .wrapping_add(b(i + 3));
            h = h.wrapping_add(v ^ (v >> 3));
            i += 4;
        }
        let mut v: u32 = 0;
        while i < s.len() {
            v = (v << 8).wrapping_add(b(i));
            i += 1;
        }
        h.wrapping_add(v ^ (v >> 3))
    }
    let mut h = part(x, 0);
    if let Some(y) = y {
        h = part(y, h);
    }
    let h = h
        .wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23));
    if h == 0 {
        1
    } else {
        h
    }
}

/// The hash keys of a URI: the user, and (unless only the user counts) host:port.
pub fn uri_hash(uri: &[u8], user_only: bool) -> Option<u32> {
    let parsed = crate::sip::uri::Uri::parse(uri).ok()?;
    let user = parsed.user().unwrap_or(b"");
    if user_only {
        return Some(ds_hash(user, None));
    }
    // host:port exactly as written (Kamailio hashes the text up to the end of the port).
    let raw = parsed.raw();
    let host = parsed.host_raw();
    let start = host.as_ptr() as usize - raw.as_ptr() as usize;
    let mut end = start + host.len();
    if parsed.port().is_some() && raw.get(end) == Some(&b':') {
        end += 1;
        while raw.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    Some(ds_hash(user, Some(&raw[start..end])))
}

/// What the first pick is based on.
pub enum Pick {
    /// A hash: index = hash mod (number of destinations considered).
    Hash(u32),
    /// An index chosen already (round-robin, random, weights, priority).
    Index(usize),
}

/// The chosen destination first, then the others in failover order; every
/// index names a destination that is not skipped. `use_default`: the last
/// destination is kept for when all others are skipped, and put last.
pub fn order(set: &DestSet, pick: Pick, use_default: bool) -> Vec<usize> {
    let n = set.dests.len();
    if n == 0 {
        return Vec::new();
    }
    // With use_default the last destination only serves as the fallback.
    let pool = if use_default && n > 1 { n - 1 } else { n };
    let first = match pick {
        Pick::Hash(h) => h as usize % pool,
        Pick::Index(i) => i % pool,
    };
    let mut out = Vec::with_capacity(n);
    for k in 0..pool {
        let i = (first + k) % pool;
        if !set.dests[i].skipped() {
            out.push(i);
        }
    }
    if pool < n && !set.dests[n - 1].skipped() {
        out.push(n - 1);
    }
    out
}

/// The index for algorithms that take turns, advancing the set's counter.
pub fn next_round_robin(set: &DestSet) -> usize {
    set.rr.fetch_add(1, Ordering::Relaxed) % set.dests.len().max(1)
}

/// The index for algorithm 9: the next of the 100 weighted slots, or round-robin without weights.
pub fn next_weighted(set: &DestSet) -> usize {
    if !set.weighted() {
        return next_round_robin(set);
    }
    let slot = set.wnext.fetch_add(1, Ordering::Relaxed) % set.wlist.len();
    usize::from(set.wlist[slot])
}

/// The index for algorithm 11: relative weights among the live destinations.
pub fn next_relative_weight(set: &DestSet) -> usize {
    let slots = rweight_slots(set);
    if slots.is_empty() {
        return 0;
    }
    let slot = set.rwnext.fetch_add(1, Ordering::Relaxed) % slots.len();
    usize::from(slots[slot])
}

#[cfg(test)]
mod tests {
    use super::super::list::{parse_list_file, DestLists, INACTIVE};
    use super::*;

    fn lists(text: &str) -> DestLists {
        DestLists::from_rows(&parse_list_file(text).unwrap()).unwrap()
    }

    #[test]
    fn hash_is_stable_and_never_zero() {
        assert_eq!(ds_hash(b"", None), 1);
        let a = ds_hash(b"a84b4c76e66710@pc33", None);
        assert_eq!(a, ds_hash(b"a84b4c76e66710@pc33", None));
        assert_ne!(a, ds_hash(b"a84b4c76e66711@pc33", None));
        // A high byte is read as a negative char: not the same as its low 7 bits.
        assert_ne!(ds_hash(&[0xe9], None), ds_hash(&[0x69], None));
        assert_eq!(
            uri_hash(b"sip:alice@example.org:5060;x=y", false),
            Some(ds_hash(b"alice", Some(b"example.org:5060")))
        );
        assert_eq!(
            uri_hash(b"sip:alice@h", true),
            Some(ds_hash(b"alice", None))
        );
    }

    #[test]
    fn order_skips_inactive_and_wraps() {
        let l = lists("1 sip:10.0.0.3\n1 sip:10.0.0.2\n1 sip:10.0.0.1\n");
        let s = l.set(1).unwrap();
        assert_eq!(order(s, Pick::Hash(4), false), [1, 2, 0]);
        s.dests[1].set_state(INACTIVE);
        assert_eq!(order(s, Pick::Hash(4), false), [2, 0]);
        // use_default: the last one only at the end.
        s.dests[1].set_state(0);
        assert_eq!(order(s, Pick::Index(1), true), [1, 0, 2]);
        s.dests[0].set_state(INACTIVE);
        s.dests[1].set_state(INACTIVE);
        assert_eq!(order(s, Pick::Index(0), true), [2]);
        s.dests[2].set_state(INACTIVE);
        assert!(order(s, Pick::Index(0), true).is_empty());
    }

    #[test]
    fn weighted_and_relative_weighted_shares() {
        let l = lists(
            "1 sip:10.0.0.2 0 0 weight=80\n1 sip:10.0.0.1 0 0 weight=20\n\
             2 sip:10.0.0.3 0 0 rweight=100\n2 sip:10.0.0.2 0 0 rweight=50\n2 sip:10.0.0.1 0 0 rweight=50\n",
        );
        let s = l.set(1).unwrap();
        let firsts = (0..100).filter(|_| next_weighted(s) == 0).count();
        assert_eq!(firsts, 20);
        let s = l.set(2).unwrap();
        let mut n = [0; 3];
        for _ in 0..100 {
            n[next_relative_weight(s)] += 1;
        }
        assert_eq!(n, [25, 25, 50]);
        // An inactive destination's share goes to the others.
        s.dests[2].set_state(INACTIVE);
        let mut n = [0; 3];
        for _ in 0..100 {
            n[next_relative_weight(s)] += 1;
        }
        assert_eq!(n, [50, 50, 0]);
    }

    #[test]
    fn algorithms_by_number() {
        assert_eq!(Alg::from_number(4), Ok(Alg::RoundRobin));
        assert!(Alg::from_number(10).unwrap_err().contains("dialog"));
        assert_eq!(Alg::from_number(99), Ok(Alg::Priority));
    }
}

/// The destinations Kamailio 5.6.3 picked from a set of three for these keys
/// (run on this machine: `ds_select_dst("1", alg)` answering `$du`).
#[cfg(test)]
mod kamailio_picks {
    use super::{ds_hash, uri_hash};

    /// The set was `1 sip:10.0.0.1`, `1 sip:10.0.0.2`, `1 sip:10.0.0.3` (equal
    /// priorities: index 0 is the last line); the picks are the last byte.
    #[test]
    fn same_choice_as_kamailio() {
        let pick = |h: u32| 3 - h % 3;
        let callid = |s: &[u8]| pick(ds_hash(s, None));
        assert_eq!(callid(b"a84b4c76e66710@pc33"), 1);
        assert_eq!(callid(b"abc"), 3);
        assert_eq!(callid(b"call-\xe9-1"), 2);
        assert_eq!(callid(b"12345678901234567890"), 2);
        let uri = |s: &[u8]| pick(uri_hash(s, false).unwrap());
        assert_eq!(uri(b"sip:alice@example.org"), 2);
        assert_eq!(uri(b"sip:bob@example.org:5070"), 2);
        assert_eq!(uri(b"sip:bob@example.com"), 1);
        assert_eq!(uri(b"sip:carol@example.net:5080"), 2);
    }
}
