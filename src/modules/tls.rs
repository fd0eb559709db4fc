//! The `tls` module: no script functions, only the parameters that configure
//! TLS (RFC 3261 §26.3.1). `config` names a `tls.cfg`-style profile file;
//! the other parameters are the defaults of the `[server:default]` and
//! `[client:default]` profiles (the file overrides them). The runtime reads
//! the files (`runtime::tls_profiles`); this module only collects the values.

use crate::script::registry::{ModParams, ModuleDef, ParamDef, ParamKind};

const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

/// Parameters whose value is kept but has no effect: rustls chooses its own
/// safe cipher suites, manages its own session cache and buffers.
pub const IGNORED: &[&str] = &[
    "cipher_list",
    "verify_depth",
    "session_cache",
    "session_id",
    "tls_log",
    "tls_debug",
    "connection_timeout",
    "tls_disable_compression",
    "ssl_release_buffers",
    "ssl_freelist_max_len",
    "ssl_max_send_fragment",
    "ssl_read_ahead",
    "send_close_notify",
    "renegotiation",
    "low_mem_threshold1",
    "low_mem_threshold2",
    "tls_force_run",
    "server_name_mode",
];

pub static MODULE: ModuleDef = ModuleDef {
    name: "tls",
    aliases: &[],
    functions: &[],
    params: &[
        param("config", ParamKind::Str),
        param("tls_method", ParamKind::Str),
        param("certificate", ParamKind::Str),
        param("private_key", ParamKind::Str),
        param("ca_list", ParamKind::Str),
        param("ca_path", ParamKind::Str),
        param("crl", ParamKind::Str),
        param("verify_certificate", ParamKind::Int),
        param("require_certificate", ParamKind::Int),
        param("server_name", ParamKind::Str),
        param("server_id", ParamKind::Str),
        param("cipher_list", ParamKind::Str),
        param("verify_depth", ParamKind::Int),
        param("session_cache", ParamKind::Int),
        param("session_id", ParamKind::Str),
        param("tls_log", ParamKind::Int),
        param("tls_debug", ParamKind::Int),
        param("connection_timeout", ParamKind::Int),
        param("tls_disable_compression", ParamKind::Int),
        param("ssl_release_buffers", ParamKind::Int),
        param("ssl_freelist_max_len", ParamKind::Int),
        param("ssl_max_send_fragment", ParamKind::Int),
        param("ssl_read_ahead", ParamKind::Int),
        param("send_close_notify", ParamKind::Int),
        param("renegotiation", ParamKind::Int),
        param("low_mem_threshold1", ParamKind::Int),
        param("low_mem_threshold2", ParamKind::Int),
        param("tls_force_run", ParamKind::Int),
        param("server_name_mode", ParamKind::Int),
    ],
    always: false,
};

/// The `tls` modparams ringsip acts on, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsParams {
    /// `config`: the profile file.
    pub config: Option<String>,
    pub method: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_list: Option<String>,
    pub ca_path: Option<String>,
    pub crl: Option<String>,
    pub verify_certificate: Option<bool>,
    pub require_certificate: Option<bool>,
    pub server_name: Option<String>,
    pub server_id: Option<String>,
    /// Ignored parameters that were set (for a start-up warning).
    pub ignored: Vec<&'static str>,
}

impl TlsParams {
    pub fn from_modparams(mp: &ModParams) -> TlsParams {
        let s = |p: &str| mp.str("tls", p).map(str::to_string);
        let b = |p: &str| mp.int("tls", p).map(|i| i != 0);
        TlsParams {
            config: s("config"),
            method: s("tls_method"),
            certificate: s("certificate"),
            private_key: s("private_key"),
            ca_list: s("ca_list"),
            ca_path: s("ca_path"),
            crl: s("crl"),
            verify_certificate: b("verify_certificate"),
            require_certificate: b("require_certificate"),
            server_name: s("server_name"),
            server_id: s("server_id"),
            ignored: IGNORED
                .iter()
                .copied()
                .filter(|p| !mp.all("tls", p).is_empty())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::registry::ParamValue;

    #[test]
    fn modparams_are_collected() {
        let mut mp = ModParams::default();
        mp.push("tls", "config", ParamValue::Str("/etc/tls.cfg".into()));
        mp.push("tls", "verify_certificate", ParamValue::Int(1));
        mp.push("tls", "require_certificate", ParamValue::Int(0));
        mp.push("tls", "cipher_list", ParamValue::Str("HIGH".into()));
        let p = TlsParams::from_modparams(&mp);
        assert_eq!(p.config.as_deref(), Some("/etc/tls.cfg"));
        assert_eq!(p.verify_certificate, Some(true));
        assert_eq!(p.require_certificate, Some(false));
        assert_eq!(p.certificate, None);
        assert_eq!(p.ignored, vec!["cipher_list"]);
    }

    #[test]
    fn every_ignored_parameter_is_declared() {
        for name in IGNORED {
            assert!(MODULE.param(name).is_some(), "{name}");
        }
    }
}
