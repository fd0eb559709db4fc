//! `uac_auth([mode])` in failure_route: the winning branch got a 401 or 407
//! from upstream; with credentials for the challenge's realm, the request
//! gets an Authorization (Proxy-Authorization) header and its Request-URI
//! is set back to the branch's, so that `t_relay()` sends it again.
//!
//! As in Kamailio 5.6: MD5 only (an `algorithm` other than MD5 is an
//! error); with a `qop` that starts with `auth` the answer is `qop=auth`,
//! `nc=00000001` and a `cnonce` made from the nonce (Kamailio's core hash
//! of it, in decimal), the response computed with the first `qop` option
//! offered; the CSeq is left as it is (Kamailio changes it only with the
//! dialog module's `track_cseq_updates`, which ringsip does not have).

use bytes::Bytes;

use crate::modules::auth::digest::Algorithm;
use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::{Args, ModParams};
use crate::script::value::Value;
use crate::sip::auth::Challenge;
use crate::sip::{HeaderName, Message};

use super::{config, UacConfig, UAC_AUTH};

/// `mode` bit 1: the password is HA1 (hex), not the plain password.
const MODE_HA1: i64 = 1;

const NC: &[u8] = b"00000001";

pub(super) fn fixup_auth(args: &mut Args, params: &ModParams) -> Result<(), String> {
    if args.get(0).is_some() {
        crate::script::registry::fixup_int(args, 0)?;
    }
    super::fixup_config(args, params)
}

/// What the challenge asks, as `uac_auth` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub realm: Vec<u8>,
    pub nonce: Vec<u8>,
    pub opaque: Option<Vec<u8>>,
    /// The `qop` value as written, when it starts with `auth`.
    pub qop: Option<Vec<u8>>,
}

/// Reads a WWW-Authenticate / Proxy-Authenticate value: a Digest challenge
/// with a realm and a nonce, MD5 or no algorithm.
pub fn read_challenge(value: &[u8]) -> Option<Asked> {
    let c = Challenge::parse(value).ok()?;
    if !c.is_digest() {
        return None;
    }
    if let Some(alg) = c.algorithm() {
        if !alg.eq_ignore_ascii_case(b"MD5") {
            log::error!(
                "uac_auth: unsupported algorithm \"{}\"",
                String::from_utf8_lossy(alg)
            );
            return None;
        }
    }
    Some(Asked {
        realm: c.realm()?.to_vec(),
        nonce: c.nonce()?.to_vec(),
        opaque: c.opaque().filter(|o| !o.is_empty()).map(<[u8]>::to_vec),
        qop: c
            .qop()
            .filter(|q| q.starts_with(b"auth"))
            .map(<[u8]>::to_vec),
    })
}

/// Kamailio's `get_hash1_raw` (core/hashes.h) over `s`, the source of its
/// `cnonce`: bytes taken as C `char` (signed on x86).
pub fn core_hash1(s: &[u8]) -> u32 {
    let c = |b: u8| i32::from(b as i8) as u32;
    let mut h: u32 = 0;
    let mut chunks = s.chunks_exact(4);
    for p in &mut chunks {
        let v = (c(p[0]) << 24)
            .wrapping_add(c(p[1]) << 16)
            .wrapping_add(c(p[2]) << 8)
            .wrapping_add(c(p[3]));
        h = h.wrapping_add(v ^ (v >> 3));
    }
    let v = match *chunks.remainder() {
        [a, b, d] => (c(a) << 16).wrapping_add(c(b) << 8).wrapping_add(c(d)),
        [a, b] => (c(a) << 8).wrapping_add(c(b)),
        [a] => c(a),
        _ => 0,
    };
    h = h.wrapping_add(v ^ (v >> 3));
    h.wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23))
}

/// The credentials to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub user: Vec<u8>,
    pub realm: Vec<u8>,
    pub password: Vec<u8>,
}

/// The header line (with CRLF) answering `asked` for `method` on `uri`;
/// `ha1_given`: the password is HA1 already.
pub fn authorization(
    code: u16,
    method: &[u8],
    uri: &[u8],
    creds: &Creds,
    asked: &Asked,
    ha1_given: bool,
) -> Vec<u8> {
    let md5 = Algorithm::Md5;
    let ha1 = if ha1_given {
        String::from_utf8_lossy(&creds.password[..creds.password.len().min(32)]).into_owned()
    } else {
        md5.hex(&[&creds.user, &creds.realm, &creds.password])
    };
    let ha2 = md5.hex(&[method, uri]);
    let cnonce = asked
        .qop
        .as_ref()
        .map(|_| core_hash1(&asked.nonce).to_string());
    let response = match (&asked.qop, &cnonce) {
        (Some(qop), Some(cnonce)) => {
            let first = qop.split(|&b| b == b',').next().unwrap_or(qop);
            md5.hex(&[
                ha1.as_bytes(),
                &asked.nonce,
                NC,
                cnonce.as_bytes(),
                first,
                ha2.as_bytes(),
            ])
        }
        _ => md5.hex(&[ha1.as_bytes(), &asked.nonce, ha2.as_bytes()]),
    };
    let mut h = Vec::with_capacity(256);
    h.extend_from_slice(if code == 401 {
        b"Authorization: Digest username=\""
    } else {
        &b"Proxy-Authorization: Digest username=\""[..]
    });
    for (sep, v) in [
        (&b""[..], &creds.user[..]),
        (b"\", realm=\"", &creds.realm),
        (b"\", nonce=\"", &asked.nonce),
        (b"\", uri=\"", uri),
    ] {
        h.extend_from_slice(sep);
        h.extend_from_slice(v);
    }
    if let Some(o) = &asked.opaque {
        h.extend_from_slice(b"\", opaque=\"");
        h.extend_from_slice(o);
    }
    if let Some(cnonce) = &cnonce {
        h.extend_from_slice(b"\", qop=auth, nc=");
        h.extend_from_slice(NC);
        h.extend_from_slice(b", cnonce=\"");
        h.extend_from_slice(cnonce.as_bytes());
    }
    h.extend_from_slice(b"\", response=\"");
    h.extend_from_slice(response.as_bytes());
    h.extend_from_slice(b"\", algorithm=MD5\r\n");
    h
}

/// A string from one of the `auth_*_avp` parameters; `None` when unset or null.
fn avp(ctx: &MsgCtx<'_>, param: &str) -> Option<Vec<u8>> {
    let f = ctx.program.param_format("uac", param)?;
    match f.parts.as_slice() {
        [FormatPart::Pv(pv)] => match ctx.read_pv(pv) {
            Value::Null => None,
            v => Some(v.to_bytes().into_owned()),
        },
        _ => Some(ctx.format(f)),
    }
}

/// The credentials for `realm`: from the AVPs (an empty realm AVP matches
/// any realm), else the last `credential` given for it.
fn credentials(ctx: &MsgCtx<'_>, cfg: &UacConfig, realm: &[u8]) -> Option<Creds> {
    if cfg.auth_avps {
        let from_avps = (|| {
            let r = avp(ctx, "auth_realm_avp").filter(|r| !r.is_empty());
            if r.as_deref().is_some_and(|r| r != realm) {
                return None;
            }
            let user = avp(ctx, "auth_username_avp").filter(|u| !u.is_empty())?;
            let password = avp(ctx, "auth_password_avp").filter(|p| !p.is_empty())?;
            Some(Creds {
                user,
                realm: r.unwrap_or_else(|| realm.to_vec()),
                password,
            })
        })();
        if from_avps.is_some() {
            return from_avps;
        }
    }
    cfg.credentials
        .iter()
        .rev()
        .find(|c| c.realm.as_ref() == realm)
        .map(|c| Creds {
            user: c.user.to_vec(),
            realm: c.realm.to_vec(),
            password: c.password.to_vec(),
        })
}

/// `uac_auth([mode])`: 1 when the credentials were added, else -1.
pub(super) fn uac_auth(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let mode = match args.get(0) {
        Some(crate::script::registry::Arg::Custom(_)) | None => 0,
        Some(_) => args.int(ctx, 0).unwrap_or(0),
    };
    match auth(ctx, config(args), mode) {
        Some(()) => 1,
        None => -1,
    }
}

fn auth(ctx: &mut MsgCtx<'_>, cfg: &UacConfig, mode: i64) -> Option<()> {
    let tid = ctx.t.tid?;
    let table = ctx.core.tm.as_ref()?;
    let (branch, code) = table.winning(tid)?;
    let Some(reply) = table.branch_reply(tid, branch) else {
        log::error!("uac_auth: cannot process a reply the proxy made itself");
        return None;
    };
    let reply = Message::parse(reply.clone()).ok()?;
    let name = match code {
        401 => HeaderName::WwwAuthenticate,
        407 => HeaderName::ProxyAuthenticate,
        _ => {
            log::error!("uac_auth: the reply ({code}) is not a challenge");
            return None;
        }
    };
    let Some(asked) = reply.header_value(name).and_then(read_challenge) else {
        log::error!("uac_auth: no usable challenge in the {code}");
        return None;
    };
    let Some(creds) = credentials(ctx, cfg, &asked.realm) else {
        log::debug!(
            "uac_auth: no credential for realm \"{}\"",
            String::from_utf8_lossy(&asked.realm)
        );
        return None;
    };
    let branch_req = table.branch_request(tid, branch)?;
    let uri = Message::parse(branch_req.clone())
        .ok()?
        .request_uri()
        .map(Bytes::copy_from_slice)?;
    let line = authorization(
        code,
        ctx.msg.method_bytes(),
        &uri,
        &creds,
        &asked,
        mode & MODE_HA1 != 0,
    );
    let msg = ctx.msg;
    ctx.edits.append_header(msg, line);
    ctx.new_uri = Some(uri);
    ctx.state.iflags |= UAC_AUTH;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_hash_is_kamailios() {
        assert_eq!(core_hash1(b""), 0);
        assert_eq!(core_hash1(b"a"), 97 + (97 >> 3));
        // The cnonce Kamailio 5.6.3 sent for this nonce (sidebyside uac_auth.cfg).
        assert_eq!(core_hash1(b"n0nce-1"), 1_685_036_042);
    }

    #[test]
    fn answers_as_kamailio_did() {
        // Kamailio 5.6.3's header for this challenge (sidebyside uac_auth.cfg).
        let creds = Creds {
            user: b"other".to_vec(),
            realm: b"pbx.example".to_vec(),
            password: b"older".to_vec(),
        };
        let asked = read_challenge(
            b"Digest realm=\"pbx.example\", nonce=\"n0nce-1\", qop=\"auth\", opaque=\"op1\"",
        )
        .unwrap();
        let line = authorization(
            407,
            b"INVITE",
            b"sip:uas@127.0.0.63:5080",
            &creds,
            &asked,
            false,
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "Proxy-Authorization: Digest username=\"other\", realm=\"pbx.example\", \
             nonce=\"n0nce-1\", uri=\"sip:uas@127.0.0.63:5080\", opaque=\"op1\", qop=auth, \
             nc=00000001, cnonce=\"1685036042\", response=\"409c7ab28aeaa1b68851d7b227acaec1\", \
             algorithm=MD5\r\n"
        );
    }

    #[test]
    fn reads_digest_challenges() {
        let a = read_challenge(
            b"Digest realm=\"carrier.example\", nonce=\"abc\", opaque=\"xyz\", qop=\"auth,auth-int\", algorithm=MD5",
        )
        .unwrap();
        assert_eq!(a.realm, b"carrier.example");
        assert_eq!(a.qop.as_deref(), Some(&b"auth,auth-int"[..]));
        assert_eq!(a.opaque.as_deref(), Some(&b"xyz"[..]));
        assert!(read_challenge(b"Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").is_none());
        assert!(read_challenge(b"Digest realm=\"r\"").is_none());
        assert!(read_challenge(b"Basic realm=\"r\"").is_none());
        let plain = read_challenge(b"Digest realm=\"r\", nonce=\"n\"").unwrap();
        assert_eq!((plain.qop, plain.opaque), (None, None));
    }

    #[test]
    fn answers_as_rfc2617_computes() {
        let creds = Creds {
            user: b"carrier".to_vec(),
            realm: b"pbx".to_vec(),
            password: b"secret".to_vec(),
        };
        let asked = Asked {
            realm: b"pbx".to_vec(),
            nonce: b"n0nce".to_vec(),
            opaque: None,
            qop: None,
        };
        let line = authorization(407, b"INVITE", b"sip:bob@pbx", &creds, &asked, false);
        let md5 = Algorithm::Md5;
        let ha1 = md5.hex(&[b"carrier", b"pbx", b"secret"]);
        let ha2 = md5.hex(&[b"INVITE", b"sip:bob@pbx"]);
        let want = md5.hex(&[ha1.as_bytes(), b"n0nce", ha2.as_bytes()]);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            format!("Proxy-Authorization: Digest username=\"carrier\", realm=\"pbx\", nonce=\"n0nce\", uri=\"sip:bob@pbx\", response=\"{want}\", algorithm=MD5\r\n")
        );
        // The same with the HA1 given instead of the password.
        let by_ha1 = Creds {
            password: ha1.clone().into_bytes(),
            ..creds.clone()
        };
        assert_eq!(
            authorization(407, b"INVITE", b"sip:bob@pbx", &by_ha1, &asked, true),
            authorization(407, b"INVITE", b"sip:bob@pbx", &creds, &asked, false)
        );
        let qop = Asked {
            qop: Some(b"auth".to_vec()),
            opaque: Some(b"op".to_vec()),
            ..asked
        };
        let line = String::from_utf8(authorization(
            401,
            b"INVITE",
            b"sip:bob@pbx",
            &creds,
            &qop,
            false,
        ))
        .unwrap();
        let cnonce = core_hash1(b"n0nce").to_string();
        let want = md5.hex(&[
            ha1.as_bytes(),
            b"n0nce",
            NC,
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]);
        assert_eq!(
            line,
            format!("Authorization: Digest username=\"carrier\", realm=\"pbx\", nonce=\"n0nce\", uri=\"sip:bob@pbx\", opaque=\"op\", qop=auth, nc=00000001, cnonce=\"{cnonce}\", response=\"{want}\", algorithm=MD5\r\n")
        );
    }
}
