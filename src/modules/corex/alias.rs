//! `modparam("corex", "alias_subdomains", "[proto:]domain[:port]")`
//! (repeatable): the domain and every subdomain of it are "myself"; a
//! transport or port given restricts the match (KAMAILIO-REFERENCE §8).
//! Start-up puts the list in `Env::services`; `Env::is_myself` asks it.

use crate::script::registry::{ModParams, ParamValue};
use crate::sip::Proto;

/// One `alias_subdomains` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubdomainAlias {
    pub proto: Option<Proto>,
    /// Lower-case, without a leading dot.
    pub domain: String,
    pub port: Option<u16>,
}

impl SubdomainAlias {
    pub fn parse(text: &str) -> Result<SubdomainAlias, String> {
        let bad = || format!("alias_subdomains \"{text}\": expected [proto:]domain[:port]");
        let t = text.trim();
        let (proto, rest) = match t.split_once(':') {
            Some((p, rest)) => match Proto::from_name(p.as_bytes()) {
                Some(proto) => (Some(proto), rest),
                None => (None, t),
            },
            None => (None, t),
        };
        let (domain, port) = match rest.rsplit_once(':') {
            Some((d, p)) => (d, Some(p.trim().parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        let ok = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(bad());
        }
        Ok(SubdomainAlias {
            proto,
            domain,
            port,
        })
    }

    /// Whether `host` (port and transport as the URI or Via gives them) is
    /// this domain or under it.
    pub fn matches(&self, host: &[u8], port: Option<u16>, proto: Option<Proto>) -> bool {
        let d = self.domain.as_bytes();
        let name_ok = host.len() >= d.len()
            && host[host.len() - d.len()..].eq_ignore_ascii_case(d)
            && (host.len() == d.len() || host[host.len() - d.len() - 1] == b'.');
        if !name_ok {
            return false;
        }
        let proto = proto.unwrap_or(Proto::Udp);
        if self.proto.is_some_and(|p| p != proto) {
            return false;
        }
        self.port
            .is_none_or(|p| p == port.unwrap_or(proto.default_port()))
    }
}

/// Every `alias_subdomains` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasSubdomains(pub Vec<SubdomainAlias>);

impl AliasSubdomains {
    pub fn from_modparams(mp: &ModParams) -> Result<AliasSubdomains, String> {
        mp.all("corex", "alias_subdomains")
            .iter()
            .map(|v| match v {
                ParamValue::Str(s) => SubdomainAlias::parse(s),
                ParamValue::Int(i) => SubdomainAlias::parse(&i.to_string()),
            })
            .collect::<Result<_, _>>()
            .map(AliasSubdomains)
    }

    pub fn matches(&self, host: &[u8], port: Option<u16>, proto: Option<Proto>) -> bool {
        self.0.iter().any(|a| a.matches(host, port, proto))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse() {
        let a = SubdomainAlias::parse("tls:Example.COM:5061").unwrap();
        assert_eq!(
            a,
            SubdomainAlias {
                proto: Some(Proto::Tls),
                domain: "example.com".into(),
                port: Some(5061)
            }
        );
        let a = SubdomainAlias::parse("example.org").unwrap();
        assert_eq!((a.proto, a.port), (None, None));
        assert!(SubdomainAlias::parse("udp:").is_err());
        assert!(SubdomainAlias::parse("a b").is_err());
        assert!(SubdomainAlias::parse("x.org:port").is_err());
    }

    #[test]
    fn domain_and_subdomains_match_with_restrictions() {
        let any = SubdomainAlias::parse("example.com").unwrap();
        assert!(any.matches(b"example.com", None, None));
        assert!(any.matches(b"a.b.EXAMPLE.com", Some(5080), Some(Proto::Tcp)));
        assert!(!any.matches(b"badexample.com", None, None));
        assert!(!any.matches(b"example.com.evil", None, None));
        let tcp = SubdomainAlias::parse("tcp:example.com:5070").unwrap();
        assert!(tcp.matches(b"x.example.com", Some(5070), Some(Proto::Tcp)));
        assert!(!tcp.matches(b"x.example.com", Some(5070), Some(Proto::Udp)));
        assert!(!tcp.matches(b"x.example.com", None, Some(Proto::Tcp)));
        let port = SubdomainAlias::parse("example.com:5060").unwrap();
        assert!(port.matches(b"example.com", None, None));
        assert!(!port.matches(b"example.com", Some(5061), None));
    }
}
