//! `reg_fetch_contacts(table, uri, profile)`, `reg_free_contacts(profile)`
//! and `$ulc(profile=>attr)[index]`: a copy of an AoR's contacts kept under
//! a name, per core, across messages (Kamailio keeps it per process until it
//! is fetched again or freed).
//!
//! As Kamailio 5.6 (checked live): every attribute reads `$null` unless the
//! last fetch found contacts (a missing AoR leaves `count` `$null` too);
//! `aorhash` reads 0 (5.6 never fills it in on a fetch); the copy holds every
//! contact of the record, expired ones the timer has not removed yet
//! included; a missing index, or a negative one, is 0.

use bytes::Bytes;

use super::{aor_of, setup};
use crate::modules::usrloc::Ucontact;
use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::script::value::Value;

/// The profiles of one core.
#[derive(Debug, Default)]
pub struct Profiles(Vec<(Box<[u8]>, Fetched)>);

/// What one fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub aor: Box<str>,
    /// The usrloc table it was read from.
    pub domain: Box<str>,
    pub contacts: Vec<Ucontact>,
}

impl Profiles {
    pub fn get(&self, name: &[u8]) -> Option<&Fetched> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, f)| f)
    }

    /// Forgets what `name` held.
    pub fn free(&mut self, name: &[u8]) {
        self.0.retain(|(n, _)| &**n != name);
    }

    pub fn set(&mut self, name: &[u8], fetched: Fetched) {
        self.free(name);
        self.0.push((name.into(), fetched));
    }
}

/// A contact attribute `$ulc(p=>attr)` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UlcAttr {
    Aor,
    Domain,
    AorHash,
    Addr,
    Path,
    Received,
    Expires,
    CallId,
    Q,
    Cseq,
    Flags,
    Cflags,
    UserAgent,
    Socket,
    Modified,
    Methods,
    Count,
    Ruid,
    RegId,
    Instance,
    ConId,
    ServerId,
}

/// `$ulc(profile=>attr)` as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UlcPv {
    pub profile: Bytes,
    pub attr: UlcAttr,
}

/// Reads the name of `$ulc(profile=>attr)`.
pub fn parse(inner: &str) -> Result<UlcPv, String> {
    let (profile, attr) = inner
        .split_once("=>")
        .ok_or_else(|| format!("$ulc({inner}): expected profile=>attribute"))?;
    if profile.is_empty() {
        return Err(format!("$ulc({inner}): no profile name"));
    }
    let attr = match attr {
        "aor" => UlcAttr::Aor,
        "domain" => UlcAttr::Domain,
        "aorhash" => UlcAttr::AorHash,
        "addr" => UlcAttr::Addr,
        "path" => UlcAttr::Path,
        "received" => UlcAttr::Received,
        "expires" => UlcAttr::Expires,
        "callid" => UlcAttr::CallId,
        "q" => UlcAttr::Q,
        "cseq" => UlcAttr::Cseq,
        "flags" => UlcAttr::Flags,
        "cflags" => UlcAttr::Cflags,
        "user_agent" => UlcAttr::UserAgent,
        "socket" => UlcAttr::Socket,
        "modified" => UlcAttr::Modified,
        "methods" => UlcAttr::Methods,
        "count" => UlcAttr::Count,
        "ruid" => UlcAttr::Ruid,
        "regid" => UlcAttr::RegId,
        "instance" => UlcAttr::Instance,
        "conid" => UlcAttr::ConId,
        "server_id" => UlcAttr::ServerId,
        other => {
            return Err(format!(
                "$ulc({inner}): unknown contact attribute {other:?} (aor, domain, aorhash, addr, path, received, expires, callid, q, cseq, flags, cflags, user_agent, socket, modified, methods, count, ruid, regid, instance, conid, server_id)"
            ))
        }
    };
    Ok(UlcPv {
        profile: Bytes::copy_from_slice(profile.as_bytes()),
        attr,
    })
}

/// The value of `$ulc` at contact `index` (`None`: the first).
pub fn read<'s>(ctx: &'s MsgCtx<'_>, pv: &UlcPv, index: Option<i32>) -> Value<'s> {
    let Some(f) = ctx.core.ulc.get(&pv.profile) else {
        return Value::Null;
    };
    value(f, pv.attr, index)
}

fn value(f: &Fetched, attr: UlcAttr, index: Option<i32>) -> Value<'_> {
    let i = usize::try_from(index.unwrap_or(0).max(0)).unwrap_or(0);
    let Some(c) = f.contacts.get(i) else {
        return Value::Null;
    };
    fn text(s: &Option<Box<str>>) -> Value<'_> {
        Value::str(s.as_deref().unwrap_or("").as_bytes())
    }
    let uint = |n: u32| Value::Int(i64::from(n));
    match attr {
        UlcAttr::Aor => Value::str(f.aor.as_bytes()),
        UlcAttr::Domain => Value::str(f.domain.as_bytes()),
        UlcAttr::AorHash | UlcAttr::ServerId => Value::Int(0),
        UlcAttr::Addr => Value::str(c.contact.as_bytes()),
        UlcAttr::Path => text(&c.path),
        UlcAttr::Received => text(&c.received),
        UlcAttr::Expires => Value::Int(c.expires & 0xffff_ffff),
        UlcAttr::CallId => Value::str(c.callid.as_bytes()),
        UlcAttr::Q => Value::Int(i64::from(c.q)),
        UlcAttr::Cseq => Value::Int(i64::from(c.cseq as i32)),
        UlcAttr::Flags => uint(c.flags),
        UlcAttr::Cflags => uint(c.cflags),
        UlcAttr::UserAgent => text(&c.user_agent),
        UlcAttr::Socket => c
            .socket
            .as_deref()
            .map_or(Value::Null, |s| Value::str(s.as_bytes())),
        UlcAttr::Modified => Value::Int(c.last_modified & 0xffff_ffff),
        UlcAttr::Methods => uint(c.methods),
        UlcAttr::Count => Value::Int(f.contacts.len() as i64),
        UlcAttr::Ruid => Value::str(c.ruid.as_bytes()),
        UlcAttr::RegId => uint(c.reg_id),
        UlcAttr::Instance => c
            .instance
            .as_deref()
            .filter(|s| !s.is_empty())
            .map_or(Value::Null, |s| Value::str(s.as_bytes())),
        // ringsip keeps no connection id with a binding: `$null`, as
        // Kamailio reads it for a contact bound over UDP.
        UlcAttr::ConId => Value::Null,
    }
}

/// `reg_fetch_contacts(table, uri, profile)`: 1 when the AoR of `uri` has
/// contacts (now readable through `$ulc(profile=>…)`), else -1 (and the
/// profile reads `$null`).
pub fn reg_fetch_contacts(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let profile = args.str(ctx, 2).into_owned();
    // The profile's last result goes first, whatever this fetch finds.
    ctx.core.ulc.free(&profile);
    let Some(s) = setup(ctx, args, "reg_fetch_contacts") else {
        return -1;
    };
    let uri = args.str(ctx, 1).into_owned();
    if uri.is_empty() {
        log::error!("reg_fetch_contacts: empty uri");
        return -1;
    }
    let Some(aor) = aor_of(&uri, s.ul.params.use_domain, s.reg) else {
        log::error!(
            "reg_fetch_contacts: no address of record in {:?}",
            String::from_utf8_lossy(&uri)
        );
        return -1;
    };
    let contacts = match s
        .ul
        .read(&s.dom, &aor, |rec| rec.map(|r| r.contacts.clone()))
    {
        Ok(Some(c)) if !c.is_empty() => c,
        Ok(_) => return -1,
        Err(e) => {
            log::error!("reg_fetch_contacts: {e}");
            return -1;
        }
    };
    let fetched = Fetched {
        aor: aor.into(),
        domain: s.dom.name().into(),
        contacts,
    };
    ctx.core.ulc.set(&profile, fetched);
    1
}

/// `reg_free_contacts(profile)`: forgets the profile's contacts; always 1.
pub fn reg_free_contacts(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let profile = args.str(ctx, 0).into_owned();
    ctx.core.ulc.free(&profile);
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(uri: &str, q: i16) -> Ucontact {
        Ucontact {
            contact: uri.into(),
            ruid: "uloc-1".into(),
            callid: "cid".into(),
            received: None,
            path: None,
            user_agent: Some("n/a".into()),
            socket: Some("udp:127.0.0.1:5060".into()),
            instance: None,
            expires: 1_700_000_600,
            last_modified: 1_700_000_000,
            cseq: 3,
            q,
            flags: 0,
            cflags: 64,
            methods: u32::MAX,
            reg_id: 0,
            dirty: false,
        }
    }

    #[test]
    fn names_as_kamailio_5_6_takes_them() {
        let p = parse("caller=>addr").unwrap();
        assert_eq!((&p.profile[..], p.attr), (&b"caller"[..], UlcAttr::Addr));
        assert_eq!(parse("x=>regid").unwrap().attr, UlcAttr::RegId);
        assert_eq!(parse("x=>server_id").unwrap().attr, UlcAttr::ServerId);
        // 5.6 spells it regid: reg_id is refused, as is an unknown one.
        for bad in ["x=>reg_id", "x=>foo", "x", "=>addr", "x=>"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_read_as_kamailio_prints_them() {
        let f = Fetched {
            aor: "alice".into(),
            domain: "location".into(),
            contacts: vec![contact("sip:a@h", 900), contact("sip:b@h", -1)],
        };
        let s = |v: Value<'_>| String::from_utf8_lossy(&v.to_bytes()).into_owned();
        assert_eq!(s(value(&f, UlcAttr::Count, None)), "2");
        assert_eq!(s(value(&f, UlcAttr::Aor, Some(1))), "alice");
        assert_eq!(s(value(&f, UlcAttr::Domain, None)), "location");
        assert_eq!(s(value(&f, UlcAttr::AorHash, None)), "0");
        assert_eq!(s(value(&f, UlcAttr::Addr, None)), "sip:a@h");
        assert_eq!(s(value(&f, UlcAttr::Addr, Some(-3))), "sip:a@h");
        assert_eq!(s(value(&f, UlcAttr::Addr, Some(1))), "sip:b@h");
        assert_eq!(value(&f, UlcAttr::Addr, Some(2)), Value::Null);
        assert_eq!(value(&f, UlcAttr::Count, Some(2)), Value::Null);
        assert_eq!(s(value(&f, UlcAttr::Q, None)), "900");
        assert_eq!(s(value(&f, UlcAttr::Q, Some(1))), "-1");
        // No path, no received: empty text, not $null.
        assert_eq!(s(value(&f, UlcAttr::Path, None)), "");
        assert_eq!(s(value(&f, UlcAttr::Received, None)), "");
        assert_eq!(value(&f, UlcAttr::Instance, None), Value::Null);
        assert_eq!(value(&f, UlcAttr::ConId, None), Value::Null);
        assert_eq!(s(value(&f, UlcAttr::Methods, None)), "4294967295");
        assert_eq!(s(value(&f, UlcAttr::Socket, None)), "udp:127.0.0.1:5060");
        assert_eq!(s(value(&f, UlcAttr::Expires, None)), "1700000600");
        assert_eq!(s(value(&f, UlcAttr::Modified, None)), "1700000000");
        assert_eq!(s(value(&f, UlcAttr::UserAgent, None)), "n/a");
        assert_eq!(s(value(&f, UlcAttr::Cflags, None)), "64");
    }

    #[test]
    fn a_profile_is_replaced_and_freed() {
        let mut p = Profiles::default();
        let f = |aor: &str| Fetched {
            aor: aor.into(),
            domain: "location".into(),
            contacts: vec![contact("sip:a@h", -1)],
        };
        p.set(b"a", f("one"));
        p.set(b"b", f("two"));
        p.set(b"a", f("three"));
        assert_eq!(&*p.get(b"a").unwrap().aor, "three");
        assert_eq!(&*p.get(b"b").unwrap().aor, "two");
        p.free(b"a");
        assert!(p.get(b"a").is_none());
        assert!(p.get(b"b").is_some());
    }

    /// The functions and `$ulc` as a configuration uses them, run by the engine.
    mod script {
        use std::sync::Arc;

        use crate::modules::core::Engine;
        use crate::modules::registrar::{RegParams, Registrar};
        use crate::modules::testutil::env;
        use crate::modules::usrloc::{UlParams, Usrloc};
        use crate::script::compile::compile;
        use crate::script::{parse_str, MemoryFiles, Options};

        const ROUTES: &str = r#"
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    if ($rU == "free") { reg_free_contacts("p"); }
    if ($rU == "alice" || $rU == "nobody") { reg_fetch_contacts("location", "$ru", "p"); }
    $var(rc) = $rc;
    if ($rU == "isreg") {
        $xavp(reg=>match_callid) = "reg-1";
        registered("location", "sip:alice@example.com", 1);
        $var(a) = $rc;
        $xavp(reg[0]=>match_callid) = "other";
        registered("location", "sip:alice@example.com", 1);
        $var(b) = $rc;
        registered("location", "sip:alice@example.com", 4);
        $var(c) = $rc;
        sl_send_reply("200", "$var(a) $var(b) $var(c)");
        exit;
    }
    sl_send_reply("200", "rc=$var(rc) n=$ulc(p=>count) a0=$(ulc(p=>addr)[0]) a1=$(ulc(p=>addr)[1]) a2=$(ulc(p=>addr)[2]) q=$(ulc(p=>q)[1]) ua=$ulc(p=>user_agent) aor=$ulc(p=>aor)");
}
"#;

        fn request(method: &str, user: &str, extra: &str) -> String {
            format!(
                "{method} sip:{user}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK{method}{user}\r\n\
                 From: <sip:{user}@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: reg-1\r\n\
                 CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
            )
        }

        fn reason(e: &mut Engine, text: String) -> String {
            let out = crate::modules::testutil::receive(e, text);
            let first = String::from_utf8_lossy(&out[0].data).into_owned();
            first.lines().next().unwrap_or("").to_string()
        }

        #[test]
        fn fetched_contacts_read_until_fetched_again_or_freed() {
            let text = format!(
                "loadmodule \"sl.so\"\nloadmodule \"usrloc.so\"\nloadmodule \"registrar.so\"\n\
                 loadmodule \"pv.so\"\nloadmodule \"textops.so\"\n{ROUTES}"
            );
            let files = MemoryFiles::new();
            let cfg = parse_str("t.cfg", &text, &Options::with_files(&files)).expect("parses");
            let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
            let mut env = env();
            env.services
                .insert(Arc::new(Usrloc::in_memory(UlParams::default())));
            env.services.insert(Arc::new(Registrar {
                params: RegParams {
                    xavp_cfg: Some("reg".into()),
                    ..RegParams::default()
                },
            }));
            let mut e = Engine::new(Arc::new(env), Arc::new(compiled.program));
            let contacts =
                "Contact: <sip:a@10.0.0.1>;q=0.5, <sip:b@10.0.0.2>;q=0.9\r\nExpires: 600\r\n";
            assert!(
                reason(&mut e, request("REGISTER", "alice", contacts)).starts_with("SIP/2.0 200")
            );
            assert_eq!(
                reason(&mut e, request("MESSAGE", "alice", "")),
                "SIP/2.0 200 rc=1 n=2 a0=sip:b@10.0.0.2 a1=sip:a@10.0.0.1 a2=<null> q=500 ua=n/a aor=alice"
            );
            // Kept for the next message of the core (`$rc`: is_method's).
            assert_eq!(
                reason(&mut e, request("MESSAGE", "other", "")),
                "SIP/2.0 200 rc=-1 n=2 a0=sip:b@10.0.0.2 a1=sip:a@10.0.0.1 a2=<null> q=500 ua=n/a aor=alice"
            );
            // An AoR without contacts: -1, and the profile reads $null.
            assert_eq!(
                reason(&mut e, request("MESSAGE", "nobody", "")),
                "SIP/2.0 200 rc=-1 n=<null> a0=<null> a1=<null> a2=<null> q=<null> ua=<null> aor=<null>"
            );
            reason(&mut e, request("MESSAGE", "alice", ""));
            assert_eq!(
                reason(&mut e, request("MESSAGE", "free", "")),
                "SIP/2.0 200 rc=1 n=<null> a0=<null> a1=<null> a2=<null> q=<null> ua=<null> aor=<null>"
            );
            // registered() narrowed by the xavp_cfg fields.
            assert_eq!(
                reason(&mut e, request("MESSAGE", "isreg", "")),
                "SIP/2.0 200 1 -1 1"
            );
        }
    }
}
