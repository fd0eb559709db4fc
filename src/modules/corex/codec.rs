//! `gzip_compress`, `gzip_decompress`, `cipher_encrypt`, `cipher_decrypt`:
//! the intercept codecs ([`crate::intercept::codec`]) offered to the script,
//! meant for `event_route[network:msg]` but usable anywhere. Each reads its
//! input variable and writes the result to its output variable; false
//! (-1) on failure, and a failed decoder marks the message so the intercept
//! stage drops it instead of parsing garbage.

use std::sync::Arc;

use crate::intercept::codec::{Cipher, Codec, Gzip, KEY_LEN};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Arg, Args, ModParams, ParamValue};

use super::args;

/// `gzip_compress(in, out)` / `gzip_decompress(in, out)`: the output must be a variable.
pub fn fixup_gzip(a: &mut Args, _: &ModParams) -> Result<(), String> {
    args::as_pv(a, 0);
    args::out_pv(a, 1)
}

/// `cipher_*(profile, in, out)`: the profile is resolved (and its key read) here, once.
pub fn fixup_cipher(a: &mut Args, mp: &ModParams) -> Result<(), String> {
    let name = match a.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => return Err("the cipher profile must be a constant name".into()),
    };
    let cipher = load_profile(mp, &name)?;
    a.0[0] = Arg::Custom(Box::new(cipher));
    args::as_pv(a, 1);
    args::out_pv(a, 2)
}

/// One `cipher_profile` value: `name=…;alg=…;key_file=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub alg: String,
    pub key_file: String,
}

impl Profile {
    pub fn parse(text: &str) -> Result<Profile, String> {
        let (mut name, mut alg, mut key_file) = (None, None, None);
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("cipher_profile: \"{part}\" is not key=value"))?;
            let slot = match k.trim() {
                "name" => &mut name,
                "alg" => &mut alg,
                "key_file" => &mut key_file,
                other => return Err(format!("cipher_profile: unknown key \"{other}\"")),
            };
            *slot = Some(v.trim().to_string());
        }
        let need = |v: Option<String>, k: &str| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| format!("cipher_profile \"{text}\": {k}= is missing"))
        };
        let profile = Profile {
            name: need(name, "name")?,
            alg: need(alg, "alg")?.to_ascii_lowercase(),
            key_file: need(key_file, "key_file")?,
        };
        if !Cipher::ALGORITHMS.contains(&profile.alg.as_str()) {
            return Err(format!(
                "cipher_profile \"{}\": unknown alg \"{}\" (known: {})",
                profile.name,
                profile.alg,
                Cipher::ALGORITHMS.join(", ")
            ));
        }
        Ok(profile)
    }
}

/// The profiles set by `modparam("corex", "cipher_profile", …)`.
pub fn profiles(mp: &ModParams) -> Result<Vec<Profile>, String> {
    mp.all("corex", "cipher_profile")
        .iter()
        .map(|v| match v {
            ParamValue::Str(s) => Profile::parse(s),
            ParamValue::Int(i) => Err(format!(
                "cipher_profile {i}: expected name=…;alg=…;key_file=…"
            )),
        })
        .collect()
}

/// The cipher of profile `name`, its key read from its key file.
pub fn load_profile(mp: &ModParams, name: &str) -> Result<Arc<Cipher>, String> {
    let profile = profiles(mp)?
        .into_iter()
        .rev()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("no cipher_profile named \"{name}\""))?;
    let content = std::fs::read(&profile.key_file).map_err(|e| {
        format!(
            "cipher_profile \"{name}\": key_file {}: {e}",
            profile.key_file
        )
    })?;
    let key: [u8; KEY_LEN] = Cipher::key_from_file_content(&content).map_err(|e| {
        format!(
            "cipher_profile \"{name}\": key_file {}: {e}",
            profile.key_file
        )
    })?;
    let mut prefix = [0u8; 16];
    getrandom::fill(&mut prefix)
        .map_err(|e| format!("cipher_profile \"{name}\": no random nonce prefix: {e}"))?;
    Ok(Arc::new(Cipher::new(name, &key, prefix)))
}

/// Runs `codec` on input `i`, writes output `o`.
fn apply(
    ctx: &mut MsgCtx<'_>,
    a: &Args,
    codec: &dyn Codec,
    decode: bool,
    i: usize,
    o: usize,
) -> i32 {
    let mut out = Vec::new();
    let result = {
        let input = args::bytes(ctx, a, i);
        if decode {
            codec.decode(&input, &mut out)
        } else {
            codec.encode(&input, &mut out)
        }
    };
    match result {
        Ok(()) => {
            if args::write(ctx, a, o, out, codec.name()) {
                1
            } else {
                -1
            }
        }
        Err(e) => {
            if decode {
                ctx.state.codec_failed = true;
            }
            log::debug!("{}: {e}", codec.name());
            -1
        }
    }
}

pub fn gzip_compress(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    apply(ctx, a, &Gzip, false, 0, 1)
}

pub fn gzip_decompress(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    apply(ctx, a, &Gzip, true, 0, 1)
}

pub fn cipher_encrypt(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    match a.custom::<Arc<Cipher>>(0) {
        Some(c) => apply(ctx, a, c.as_ref(), false, 1, 2),
        None => -1,
    }
}

pub fn cipher_decrypt(ctx: &mut MsgCtx<'_>, a: &Args) -> i32 {
    match a.custom::<Arc<Cipher>>(0) {
        Some(c) => apply(ctx, a, c.as_ref(), true, 1, 2),
        None => -1,
    }
}
