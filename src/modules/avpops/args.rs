//! The `/`-separated argument grammar of avpops (`"$avp(x)/g"`,
//! `"$ru/username"`, `"eq/$avp(y)/i"`), read from arguments the compiler
//! already split into text and pseudo-variables.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::ir::{Format, FormatPart};
use crate::script::pvkind::{AvpKey, PvKind, PvRef};
use crate::script::registry::Arg;

/// One piece of a segment: text, or a pseudo-variable.
#[derive(Clone, Debug)]
pub enum Piece {
    Text(Vec<u8>),
    Pv(PvRef),
}

/// The segments of an argument between `/` (a `/` inside a pseudo-variable
/// does not split).
pub fn segments(arg: Option<&Arg>) -> Result<Vec<Vec<Piece>>, String> {
    let mut segs: Vec<Vec<Piece>> = vec![Vec::new()];
    let text = |segs: &mut Vec<Vec<Piece>>, t: &[u8]| {
        for (i, part) in t.split(|b| *b == b'/').enumerate() {
            if i > 0 {
                segs.push(Vec::new());
            }
            if !part.is_empty() {
                if let Some(last) = segs.last_mut() {
                    last.push(Piece::Text(part.to_vec()));
                }
            }
        }
    };
    match arg {
        Some(Arg::Str(s)) => text(&mut segs, s),
        Some(Arg::Fmt(Format { parts })) => {
            for p in parts {
                match p {
                    FormatPart::Lit(l) => text(&mut segs, l),
                    FormatPart::Pv(pv) => {
                        if let Some(last) = segs.last_mut() {
                            last.push(Piece::Pv(pv.clone()));
                        }
                    }
                }
            }
        }
        Some(Arg::Pv(pv)) => segs[0].push(Piece::Pv(pv.clone())),
        Some(Arg::Int(i)) => text(&mut segs, i.to_string().as_bytes()),
        _ => return Err("missing argument".into()),
    }
    Ok(segs)
}

/// The text of a segment made of text only.
pub fn seg_text(seg: &[Piece]) -> Option<String> {
    match seg {
        [] => Some(String::new()),
        [Piece::Text(t)] => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

/// The pseudo-variable a segment is made of.
pub fn seg_pv(seg: &[Piece]) -> Option<&PvRef> {
    match seg {
        [Piece::Pv(p)] => Some(p),
        _ => None,
    }
}

/// An AVP named by the script: fixed, or computed per message.
#[derive(Clone, Debug)]
pub enum AvpName {
    Key(AvpKey),
    Dyn(Format),
}

impl AvpName {
    /// From `$avp(...)`; `None` for any other variable.
    pub fn of(pv: &PvRef) -> Option<AvpName> {
        match &pv.kind {
            PvKind::Avp(k) => Some(AvpName::Key(k.clone())),
            PvKind::AvpDyn(f) => Some(AvpName::Dyn((**f).clone())),
            _ => None,
        }
    }

    pub fn key(&self, ctx: &MsgCtx<'_>) -> AvpKey {
        match self {
            AvpName::Key(k) => k.clone(),
            AvpName::Dyn(f) => AvpKey::Str(Bytes::from(ctx.format(f))),
        }
    }

    /// The AVP of segment `seg`, or an error naming `what`.
    pub fn from_seg(seg: &[Piece], what: &str) -> Result<AvpName, String> {
        seg_pv(seg)
            .and_then(AvpName::of)
            .ok_or_else(|| format!("{what} must be an AVP ($avp(name))"))
    }
}

/// The flag letters of a segment, each checked against `allowed` (case ignored).
pub fn flags(seg: Option<&Vec<Piece>>, allowed: &str) -> Result<String, String> {
    let Some(seg) = seg else {
        return Ok(String::new());
    };
    let text = seg_text(seg).ok_or("flags must be letters")?;
    let lower = text.to_ascii_lowercase();
    match lower.chars().find(|c| !allowed.contains(*c)) {
        Some(c) => Err(format!("bad flag <{c}>")),
        None => Ok(lower),
    }
}
