//! One binding (a contact of an address-of-record) and the record holding an
//! AoR's bindings, with their conversion to and from `location` table rows.

use crate::store::LocationRow;

/// Methods a contact accepts (`Allow` of its REGISTER), as Kamailio's bitmask.
pub const ALL_METHODS: u32 = u32::MAX;

/// One contact bound to an AoR. Times are seconds since 1970; `expires` 0 is permanent.
/// Kept small: the strings are boxed slices, the numbers as narrow as their range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ucontact {
    pub contact: Box<str>,
    pub ruid: Box<str>,
    pub callid: Box<str>,
    pub received: Option<Box<str>>,
    pub path: Option<Box<str>>,
    pub user_agent: Option<Box<str>>,
    /// The socket it registered through, `proto:ip:port`.
    pub socket: Option<Box<str>>,
    /// `+sip.instance` (RFC 5626).
    pub instance: Option<Box<str>>,
    pub expires: i64,
    pub last_modified: i64,
    pub cseq: u32,
    /// q in thousandths; -1 unspecified.
    pub q: i16,
    pub flags: u32,
    pub cflags: u32,
    pub methods: u32,
    pub reg_id: u32,
    /// Changed in memory since last written (usrloc `db_mode` 2).
    pub dirty: bool,
}

impl Ucontact {
    /// Valid at `now`: permanent, or expiring after `now`.
    pub fn is_valid(&self, now: i64) -> bool {
        self.expires == 0 || self.expires > now
    }

    /// Whether it accepts `method` (method filtering; unknown methods always pass).
    pub fn allows(&self, method: &[u8]) -> bool {
        method_bit(method).is_none_or(|bit| self.methods & bit != 0)
    }

    /// The row for the `location` table; `aor` is split at `@` into username and domain
    /// when `use_domain` made it carry one.
    pub fn to_row(&self, aor: &str, use_domain: bool) -> LocationRow {
        let (username, domain) = match aor.split_once('@') {
            Some((u, d)) if use_domain => (u.to_string(), Some(d.to_string())),
            _ => (aor.to_string(), None),
        };
        let text = |s: &Option<Box<str>>| s.as_deref().map(str::to_string);
        LocationRow {
            ruid: self.ruid.to_string(),
            username,
            domain,
            contact: self.contact.to_string(),
            received: text(&self.received),
            path: text(&self.path),
            expires: self.expires,
            q: if self.q < 0 {
                -1.0
            } else {
                f64::from(self.q) / 1000.0
            },
            callid: self.callid.to_string(),
            cseq: i64::from(self.cseq),
            last_modified: self.last_modified,
            flags: i64::from(self.flags),
            cflags: i64::from(self.cflags),
            user_agent: self.user_agent.as_deref().unwrap_or("").to_string(),
            socket: text(&self.socket),
            // Kamailio stores the mask as a signed int, and all methods (no
            // Allow header) as NULL (as Kamailio 5.6 writes its location table).
            methods: (self.methods != ALL_METHODS).then(|| i64::from(self.methods as i32)),
            instance: text(&self.instance),
            reg_id: i64::from(self.reg_id),
            ..LocationRow::default()
        }
    }

    /// A contact from a stored row; its AoR is [`row_aor`].
    pub fn from_row(r: &LocationRow) -> Ucontact {
        let opt = |s: &Option<String>| s.as_deref().filter(|v| !v.is_empty()).map(Box::<str>::from);
        Ucontact {
            contact: r.contact.as_str().into(),
            ruid: r.ruid.as_str().into(),
            callid: r.callid.as_str().into(),
            received: opt(&r.received),
            path: opt(&r.path),
            user_agent: (!r.user_agent.is_empty()).then(|| r.user_agent.as_str().into()),
            socket: opt(&r.socket),
            instance: opt(&r.instance),
            expires: r.expires,
            last_modified: r.last_modified,
            cseq: u32::try_from(r.cseq).unwrap_or(0),
            q: if r.q < 0.0 {
                -1
            } else {
                (r.q.min(1.0) * 1000.0).round() as i16
            },
            flags: r.flags as u32,
            cflags: r.cflags as u32,
            methods: r.methods.map_or(ALL_METHODS, |m| m as u32),
            reg_id: u32::try_from(r.reg_id).unwrap_or(0),
            dirty: false,
        }
    }
}

/// The AoR a stored row belongs to (`username`, or `username@domain` with a domain).
pub fn row_aor(r: &LocationRow, use_domain: bool) -> String {
    match &r.domain {
        Some(d) if use_domain && !d.is_empty() => format!("{}@{d}", r.username),
        _ => r.username.clone(),
    }
}

/// Kamailio's method bits (KAMAILIO-REFERENCE §5.2).
pub fn method_bit(method: &[u8]) -> Option<u32> {
    const METHODS: [&[u8]; 14] = [
        b"INVITE",
        b"CANCEL",
        b"ACK",
        b"BYE",
        b"INFO",
        b"REGISTER",
        b"SUBSCRIBE",
        b"NOTIFY",
        b"MESSAGE",
        b"OPTIONS",
        b"PRACK",
        b"UPDATE",
        b"REFER",
        b"PUBLISH",
    ];
    METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .map(|i| 1 << i)
}

/// The bindings of one AoR, most preferred first after [`Record::sort`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub contacts: Vec<Ucontact>,
    /// ruids removed since the record was read (written to the database by the caller).
    pub removed: Vec<Box<str>>,
}

impl Record {
    /// Removes contact `i`, remembering its ruid for the database.
    pub fn remove(&mut self, i: usize) -> Ucontact {
        let c = self.contacts.remove(i);
        self.removed.push(c.ruid.clone());
        c
    }

    /// Drops contacts that expired at `now`; returns how many.
    pub fn expire(&mut self, now: i64) -> usize {
        let before = self.contacts.len();
        self.contacts.retain(|c| c.is_valid(now));
        before - self.contacts.len()
    }

    /// Lookup order (KAMAILIO-REFERENCE §5.2): q descending (unspecified lowest),
    /// then most recently modified first.
    pub fn sort(&mut self) {
        self.contacts
            .sort_by(|a, b| b.q.cmp(&a.q).then(b.last_modified.cmp(&a.last_modified)));
    }

    /// Adds `c` where Kamailio 5.6's usrloc links a new contact: after every
    /// contact whose q is not below its own.
    pub fn insert(&mut self, c: Ucontact) {
        let at = self
            .contacts
            .iter()
            .position(|x| x.q < c.q)
            .unwrap_or(self.contacts.len());
        self.contacts.insert(at, c);
    }

    /// Moves contact `i` after its q changed, as Kamailio 5.6's usrloc does:
    /// it stays when its neighbours still frame its q, else it goes in front
    /// of the first contact whose q is not below its own (or last).
    pub fn reposition(&mut self, i: usize) {
        let q = self.contacts[i].q;
        let prev_ok = i == 0 || q <= self.contacts[i - 1].q;
        let next_ok = self.contacts.get(i + 1).is_none_or(|n| q >= n.q);
        if prev_ok && next_ok {
            return;
        }
        let c = self.contacts.remove(i);
        let at = self
            .contacts
            .iter()
            .position(|x| x.q >= q)
            .unwrap_or(self.contacts.len());
        self.contacts.insert(at, c);
    }

    /// Valid contacts at `now`.
    pub fn valid(&self, now: i64) -> impl Iterator<Item = &Ucontact> {
        self.contacts.iter().filter(move |c| c.is_valid(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn contact(uri: &str, q: i16, modified: i64) -> Ucontact {
        Ucontact {
            contact: uri.into(),
            ruid: format!("r-{uri}").into(),
            callid: "c".into(),
            received: None,
            path: Some("<sip:p1;lr>".into()),
            user_agent: None,
            socket: Some("udp:127.0.0.1:5060".into()),
            instance: None,
            expires: 100,
            last_modified: modified,
            cseq: 7,
            q,
            flags: 0,
            cflags: 64,
            methods: 1 | 4,
            reg_id: 0,
            dirty: false,
        }
    }

    #[test]
    fn row_round_trip() {
        let c = contact("sip:a@h", 500, 3);
        let row = c.to_row("alice@example.com", true);
        assert_eq!(row.username, "alice");
        assert_eq!(row.domain.as_deref(), Some("example.com"));
        assert_eq!(row_aor(&row, true), "alice@example.com");
        assert_eq!(Ucontact::from_row(&row), c);
        let all = Ucontact {
            methods: ALL_METHODS,
            q: -1,
            ..c
        };
        let row = all.to_row("alice@example.com", false);
        assert_eq!(
            (row.username.as_str(), row.methods, row.q),
            ("alice@example.com", None, -1.0)
        );
        assert_eq!(Ucontact::from_row(&row), all);
    }

    #[test]
    fn order_and_methods() {
        let mut r = Record {
            removed: Vec::new(),
            contacts: vec![
                contact("sip:unset@h", -1, 9),
                contact("sip:old@h", 500, 1),
                contact("sip:new@h", 500, 2),
                contact("sip:top@h", 1000, 0),
            ],
        };
        r.sort();
        let order: Vec<&str> = r.contacts.iter().map(|c| &*c.contact).collect();
        assert_eq!(
            order,
            ["sip:top@h", "sip:new@h", "sip:old@h", "sip:unset@h"]
        );
        assert!(r.contacts[0].allows(b"INVITE"));
        assert!(!r.contacts[0].allows(b"BYE"));
        assert!(r.contacts[0].allows(b"FOO"));
        assert_eq!(method_bit(b"PUBLISH"), Some(8192));
        r.contacts[1].expires = 0;
        assert_eq!(r.expire(100), 3);
        assert_eq!(r.contacts.len(), 1);
    }
}
