//! Start-up checks of corex's string parameters, so that a bad value is
//! reported at its `modparam` line (the compiler calls [`check`]).

use crate::intercept::stage::{parse_avp_name, PARAM_MSG_AVP};
use crate::script::registry::ParamValue;

use super::alias::SubdomainAlias;
use super::codec::Profile;

/// Whether `value` is acceptable for corex parameter `param`; the error says why.
pub fn check(param: &str, value: &ParamValue) -> Result<(), String> {
    let ParamValue::Str(text) = value else {
        return Ok(());
    };
    match param {
        "alias_subdomains" => SubdomainAlias::parse(text).map(|_| ()),
        "cipher_profile" => Profile::parse(text).map(|_| ()),
        p if PARAM_MSG_AVP.contains(&p) => match text.as_str() {
            "" => Ok(()),
            t => parse_avp_name(t)
                .map(|_| ())
                .ok_or_else(|| format!("{p} \"{t}\" is not $avp(name)")),
        },
        _ => Ok(()),
    }
}
