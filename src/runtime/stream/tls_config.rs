//! TLS profiles in the layout of Kamailio's `tls.cfg`: sections
//! `[server:SCOPE]` and `[client:SCOPE]`, where SCOPE is `default`, `any`
//! or `IP:PORT` (`[v6]:PORT` for IPv6), each followed by `key = value` lines;
//! `#` starts a comment.
//!
//! - A server profile applies to TLS connections accepted on its address
//!   (the local address of the connection); `default` to every other one.
//!   Profiles with a `server_name` are chosen by the name the client sends
//!   (SNI, RFC 6066 §3): first among the profiles of the same address, then
//!   among the `any` ones.
//! - A client profile applies to outgoing connections to its address (the
//!   destination); `default` to every other one. Its `server_name` is sent
//!   as SNI and is the name the server's certificate must carry when
//!   `verify_certificate` is on (without it, the destination's IP address).
//! - A key a profile does not set is taken from the `default` profile of its
//!   side, then from the `tls` modparams, then from the built-in defaults
//!   (method any of TLS 1.2 and 1.3, no verification).
//!
//! Relative file names are relative to the main configuration's directory
//! (`./x` and `../x`: to the working directory). Every error names the file
//! and line it comes from. This file parses and resolves; it reads no
//! certificate (that is [`super::tls::load`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::modules::tls::TlsParams;

/// Which end of the handshake a profile configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Server,
    Client,
}

/// The connections a profile applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Default,
    /// Only by `server_name` (server: SNI on any socket).
    Any,
    Addr(SocketAddr),
}

/// Protocol versions (`method`, Kamailio's `tls_method`). rustls speaks
/// TLS 1.2 and 1.3 only, so the older methods are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// `SSLv23`, `TLSv1+`, `TLSv1.1+`, `TLSv1.2+`: TLS 1.2 or 1.3.
    #[default]
    Any,
    /// `TLSv1.2`: TLS 1.2 only.
    Tls12,
    /// `TLSv1.3`, `TLSv1.3+`: TLS 1.3 only.
    Tls13,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, String> {
        match s.to_ascii_lowercase().as_str() {
            "sslv23" | "tlsv1+" | "tlsv1.1+" | "tlsv1.2+" => Ok(Method::Any),
            "tlsv1.2" => Ok(Method::Tls12),
            "tlsv1.3" | "tlsv1.3+" => Ok(Method::Tls13),
            "tlsv1" | "tlsv1.1" | "sslv2" | "sslv3" => Err(format!(
                "method {s} is not supported (TLS 1.2 and 1.3 only; use TLSv1.2+)"
            )),
            _ => Err(format!("unknown method {s}")),
        }
    }
}

/// A profile as written: unset keys are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub method: Option<Method>,
    pub certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ca_list: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    pub verify_certificate: Option<bool>,
    pub require_certificate: Option<bool>,
    pub server_name: Option<String>,
    pub server_id: Option<String>,
}

impl Keys {
    /// `self`, with what it leaves unset taken from `base`.
    fn or(&self, base: &Keys) -> Keys {
        Keys {
            method: self.method.or(base.method),
            certificate: self
                .certificate
                .clone()
                .or_else(|| base.certificate.clone()),
            private_key: self
                .private_key
                .clone()
                .or_else(|| base.private_key.clone()),
            ca_list: self.ca_list.clone().or_else(|| base.ca_list.clone()),
            ca_path: self.ca_path.clone().or_else(|| base.ca_path.clone()),
            crl: self.crl.clone().or_else(|| base.crl.clone()),
            verify_certificate: self.verify_certificate.or(base.verify_certificate),
            require_certificate: self.require_certificate.or(base.require_certificate),
            // Names identify a profile; they are not inherited.
            server_name: self.server_name.clone(),
            server_id: self.server_id.clone(),
        }
    }
}

/// One profile, its keys resolved (inheritance applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub side: Side,
    pub scope: Scope,
    pub keys: Keys,
    /// Where it was defined (`file:line`, or `modparam`), for errors.
    pub origin: String,
}

impl Profile {
    pub fn method(&self) -> Method {
        self.keys.method.unwrap_or_default()
    }

    pub fn verify(&self) -> bool {
        self.keys.verify_certificate.unwrap_or(false)
    }

    pub fn require(&self) -> bool {
        self.keys.require_certificate.unwrap_or(false)
    }
}

/// Every profile; each side has a `default` one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsProfiles {
    pub profiles: Vec<Profile>,
}

impl TlsProfiles {
    /// The profiles the `tls` modparams describe, with the `config` file's
    /// sections on top. `base`: the main configuration's directory.
    pub fn from_params(params: &TlsParams, base: &Path) -> Result<TlsProfiles, String> {
        let path = |s: &String| resolve_path(s, base);
        let defaults = Keys {
            method: params.method.as_deref().map(Method::parse).transpose()?,
            certificate: params.certificate.as_ref().map(path),
            private_key: params.private_key.as_ref().map(path),
            ca_list: params.ca_list.as_ref().map(path),
            ca_path: params.ca_path.as_ref().map(path),
            crl: params.crl.as_ref().map(path),
            verify_certificate: params.verify_certificate,
            require_certificate: params.require_certificate,
            server_name: params.server_name.clone(),
            server_id: params.server_id.clone(),
        };
        let sections = match &params.config {
            Some(file) => {
                let file = resolve_path(file, base);
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("tls config {}: {e}", file.display()))?;
                parse(&file.display().to_string(), &text, base)?
            }
            None => Vec::new(),
        };
        Ok(resolve(sections, &defaults))
    }

    /// The profile of `side` whose scope is `scope` and that has no
    /// `server_name`, else the first with that scope.
    pub fn find(&self, side: Side, scope: Scope) -> Option<&Profile> {
        let mut of = self
            .profiles
            .iter()
            .filter(move |p| p.side == side && p.scope == scope);
        let first = of.clone().next();
        of.find(|p| p.keys.server_name.is_none()).or(first)
    }

    /// The `default` profile of `side` (always present).
    pub fn default_of(&self, side: Side) -> &Profile {
        self.find(side, Scope::Default)
            .expect("resolve() adds a default profile per side")
    }
}

/// Applies inheritance and adds the missing `default` profiles.
pub fn resolve(sections: Vec<Profile>, modparams: &Keys) -> TlsProfiles {
    let mut profiles = Vec::with_capacity(sections.len() + 2);
    for side in [Side::Server, Side::Client] {
        let default = sections
            .iter()
            .find(|p| p.side == side && p.scope == Scope::Default)
            .cloned()
            .unwrap_or_else(|| Profile {
                side,
                scope: Scope::Default,
                keys: Keys {
                    server_name: modparams.server_name.clone(),
                    server_id: modparams.server_id.clone(),
                    ..Keys::default()
                },
                origin: "tls modparams".into(),
            });
        let default_keys = default.keys.or(modparams);
        let default_keys = Keys {
            server_name: default
                .keys
                .server_name
                .clone()
                .or_else(|| modparams.server_name.clone()),
            server_id: default
                .keys
                .server_id
                .clone()
                .or_else(|| modparams.server_id.clone()),
            ..default_keys
        };
        profiles.push(Profile {
            keys: default_keys.clone(),
            ..default
        });
        for p in sections
            .iter()
            .filter(|p| p.side == side && p.scope != Scope::Default)
        {
            profiles.push(Profile {
                keys: p.keys.or(&default_keys),
                ..p.clone()
            });
        }
    }
    TlsProfiles { profiles }
}

/// `./x`, `../x` and absolute names as they are; others under `base`.
fn resolve_path(name: &str, base: &Path) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() || name.starts_with("./") || name.starts_with("../") {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" | "enable" => Some(true),
        "no" | "off" | "false" | "0" | "disable" => Some(false),
        _ => None,
    }
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    match s.to_ascii_lowercase().as_str() {
        "default" => return Ok(Scope::Default),
        "any" => return Ok(Scope::Any),
        _ => {}
    }
    s.parse::<SocketAddr>().map(Scope::Addr).map_err(|_| {
        format!("\"{s}\" is not default, any, IP:PORT or [IPv6]:PORT (host names are not resolved)")
    })
}

/// Keys with no effect under rustls (it chooses its own cipher suites and
/// chain depth limit).
const IGNORED_KEYS: &[&str] = &["cipher_list", "verify_depth", "server_name_mode"];

/// Parses the sections of a profile file; `file` names it in errors.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Vec<Profile>, String> {
    let mut out: Vec<Profile> = Vec::new();
    let mut seen: HashMap<(Side, Scope, Option<String>), usize> = HashMap::new();
    let close = |out: &mut Vec<Profile>, seen: &mut HashMap<_, usize>| -> Result<(), String> {
        let Some(p) = out.last() else {
            return Ok(());
        };
        let key = (
            p.side,
            p.scope,
            p.keys.server_name.as_ref().map(|n| n.to_ascii_lowercase()),
        );
        if let Some(line) = seen.insert(key, out.len() - 1) {
            return Err(format!(
                "{}: the same profile is defined at {}",
                p.origin, out[line].origin
            ));
        }
        Ok(())
    };
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(format!("{at}: a section header ends with ]"));
            };
            let (side, scope) = inner
                .split_once(':')
                .ok_or_else(|| format!("{at}: expected [server:…] or [client:…]"))?;
            let side = match side.trim().to_ascii_lowercase().as_str() {
                "server" => Side::Server,
                "client" => Side::Client,
                other => return Err(format!("{at}: \"{other}\" is neither server nor client")),
            };
            let scope = parse_scope(scope.trim()).map_err(|e| format!("{at}: {e}"))?;
            close(&mut out, &mut seen)?;
            out.push(Profile {
                side,
                scope,
                keys: Keys::default(),
                origin: at,
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("{at}: expected key = value"));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let Some(profile) = out.last_mut() else {
            return Err(format!(
                "{at}: \"{key}\" before any [server:…] or [client:…]"
            ));
        };
        let k = &mut profile.keys;
        let path = || resolve_path(value, base);
        let flag =
            || parse_bool(value).ok_or_else(|| format!("{at}: {key}: yes or no, not \"{value}\""));
        match key.as_str() {
            "method" | "tls_method" => {
                k.method = Some(Method::parse(value).map_err(|e| format!("{at}: {e}"))?)
            }
            "certificate" => k.certificate = Some(path()),
            "private_key" => k.private_key = Some(path()),
            "ca_list" => k.ca_list = Some(path()),
            "ca_path" => k.ca_path = Some(path()),
            "crl" => k.crl = Some(path()),
            "verify_certificate" => k.verify_certificate = Some(flag()?),
            "require_certificate" => k.require_certificate = Some(flag()?),
            "server_name" => k.server_name = Some(value.to_string()),
            "server_id" => k.server_id = Some(value.to_string()),
            other if IGNORED_KEYS.contains(&other) => {
                log::info!("{at}: {other} has no effect (rustls chooses)");
            }
            other => return Err(format!("{at}: unknown key \"{other}\"")),
        }
    }
    close(&mut out, &mut seen)?;
    if let Some(p) = out.iter().find(|p| {
        p.scope == Scope::Any && p.keys.server_name.is_none() && p.keys.server_id.is_none()
    }) {
        return Err(format!(
            "{}: an \"any\" profile needs a server_name or server_id",
            p.origin
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# test profiles
[server:default]
method = TLSv1.2+
certificate = default.pem
private_key = /abs/default.key
verify_certificate = no

[server:127.0.0.1:5061]
certificate = lo.pem   # a comment
server_name = lo.test
verify_certificate = yes
require_certificate = yes
ca_list = \"./ca.pem\"

[server:[::1]:5061]
private_key = six.key

[client:default]
verify_certificate = yes
ca_list = ca.pem

[client:127.0.0.1:6061]
server_name = peer.test
method = TLSv1.3
";

    fn addr(s: &str) -> Scope {
        Scope::Addr(s.parse().unwrap())
    }

    #[test]
    fn sections_and_keys() {
        let p = parse("tls.cfg", FILE, Path::new("/etc/k")).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!((p[0].side, p[0].scope), (Side::Server, Scope::Default));
        assert_eq!(p[0].origin, "tls.cfg:2");
        assert_eq!(p[0].keys.method, Some(Method::Any));
        assert_eq!(
            p[0].keys.certificate,
            Some(PathBuf::from("/etc/k/default.pem"))
        );
        assert_eq!(
            p[0].keys.private_key,
            Some(PathBuf::from("/abs/default.key"))
        );
        assert_eq!(p[1].scope, addr("127.0.0.1:5061"));
        assert_eq!(p[1].keys.server_name.as_deref(), Some("lo.test"));
        assert_eq!(p[1].keys.ca_list, Some(PathBuf::from("./ca.pem")));
        assert_eq!(p[1].keys.require_certificate, Some(true));
        assert_eq!(p[2].scope, addr("[::1]:5061"));
        assert_eq!((p[3].side, p[3].scope), (Side::Client, Scope::Default));
        assert_eq!(p[4].keys.method, Some(Method::Tls13));
    }

    #[test]
    fn profiles_inherit_from_their_default_then_the_modparams() {
        let sections = parse("tls.cfg", FILE, Path::new("/etc/k")).unwrap();
        let modparams = Keys {
            crl: Some("/m/crl.pem".into()),
            certificate: Some("/m/cert.pem".into()),
            ..Keys::default()
        };
        let all = resolve(sections, &modparams);
        let lo = all.find(Side::Server, addr("127.0.0.1:5061")).unwrap();
        assert_eq!(lo.keys.private_key, Some(PathBuf::from("/abs/default.key")));
        assert_eq!(lo.keys.certificate, Some(PathBuf::from("/etc/k/lo.pem")));
        assert_eq!(lo.keys.crl, Some(PathBuf::from("/m/crl.pem")));
        assert!(lo.verify() && lo.require());
        let six = all.find(Side::Server, addr("[::1]:5061")).unwrap();
        assert_eq!(
            six.keys.certificate,
            Some(PathBuf::from("/etc/k/default.pem"))
        );
        assert!(!six.verify());
        let peer = all.find(Side::Client, addr("127.0.0.1:6061")).unwrap();
        assert!(peer.verify());
        assert_eq!(peer.keys.ca_list, Some(PathBuf::from("/etc/k/ca.pem")));
        assert_eq!(peer.keys.certificate, Some(PathBuf::from("/m/cert.pem")));
        assert_eq!(all.default_of(Side::Client).keys.server_name, None);
    }

    #[test]
    fn modparams_alone_make_both_defaults() {
        let params = TlsParams {
            certificate: Some("c.pem".into()),
            private_key: Some("k.pem".into()),
            verify_certificate: Some(true),
            server_name: Some("me.test".into()),
            ..TlsParams::default()
        };
        let all = TlsProfiles::from_params(&params, Path::new("/cfg")).unwrap();
        assert_eq!(all.profiles.len(), 2);
        for side in [Side::Server, Side::Client] {
            let d = all.default_of(side);
            assert_eq!(d.keys.certificate, Some(PathBuf::from("/cfg/c.pem")));
            assert!(d.verify() && !d.require());
            assert_eq!(d.keys.server_name.as_deref(), Some("me.test"));
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "[server:default]\nbogus = 1\n",
                "t.cfg:2: unknown key \"bogus\"",
            ),
            ("certificate = x\n", "t.cfg:1: \"certificate\" before any"),
            ("[server:default\n", "t.cfg:1: a section header ends with ]"),
            ("[peer:default]\n", "t.cfg:1: \"peer\" is neither"),
            (
                "[server:example.com:5061]\n",
                "t.cfg:1: \"example.com:5061\" is not",
            ),
            (
                "\n[client:default]\nmethod = TLSv1\n",
                "t.cfg:3: method TLSv1 is not supported",
            ),
            (
                "[client:default]\nverify_certificate = maybe\n",
                "t.cfg:2: verify_certificate: yes or no",
            ),
            (
                "[server:default]\n[server:default]\n",
                "t.cfg:2: the same profile is defined at t.cfg:1",
            ),
            (
                "[server:any]\nmethod = SSLv23\n",
                "t.cfg:1: an \"any\" profile needs",
            ),
            ("[server:default]\njunk\n", "t.cfg:2: expected key = value"),
        ];
        for (text, want) in cases {
            let e = parse("t.cfg", text, Path::new("/")).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn same_address_with_other_server_names_are_distinct() {
        let text = "[server:127.0.0.1:5061]\nserver_name = a.test\n[server:127.0.0.1:5061]\nserver_name = b.test\n";
        let p = parse("t.cfg", text, Path::new("/")).unwrap();
        assert_eq!(p.len(), 2);
    }

    proptest::proptest! {
        /// Any text parses or fails with a line number; nothing panics.
        #[test]
        fn any_text_parses_or_names_a_line(text in "(\\PC|\n|\\[|\\]|:|=|#){0,200}") {
            if let Err(e) = parse("f.cfg", &text, Path::new("/")) {
                proptest::prop_assert!(e.starts_with("f.cfg:"), "{}", e);
            }
        }

        /// Sections and keys built from the grammar's pieces.
        #[test]
        fn assembled_files_parse_or_name_a_line(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("[server:default]".to_string()),
                    proptest::strategy::Just("[client:[::1]:5061]".to_string()),
                    proptest::strategy::Just("[server:any]".to_string()),
                    "[a-z_]{1,20} = [ -~]{0,20}",
                    "\\[[a-z]{0,8}:[0-9a-z.:\\[\\]]{0,20}\\]",
                ],
                0..12,
            )
        ) {
            let text = lines.join("\n");
            if let Err(e) = parse("f.cfg", &text, Path::new("/")) {
                proptest::prop_assert!(e.starts_with("f.cfg:"), "{}", e);
            }
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let params = TlsParams {
            config: Some("/nonexistent/ringsip/tls.cfg".into()),
            ..TlsParams::default()
        };
        let e = TlsProfiles::from_params(&params, Path::new("/")).unwrap_err();
        assert!(
            e.starts_with("tls config /nonexistent/ringsip/tls.cfg:"),
            "{e}"
        );
    }
}
