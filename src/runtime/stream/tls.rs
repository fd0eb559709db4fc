//! TLS configuration (RFC 3261 §26.3.1: SIP over TLS, `sips:`), loaded once
//! at start-up so a bad file is a start-up error, never a failure on the
//! first connection. rustls with the `ring` provider; the records themselves
//! are driven by `Conn` over the same TCP machinery (rustls is sans-IO, so
//! no adapter task is needed).
//!
//! The settings are [`TlsProfiles`] (`tls.cfg` sections and `tls`
//! modparams, see `tls_config.rs`). Without them, the `tls_*` fields of
//! [`RuntimeConfig`] make one server and one client profile.
//!
//! - Server side (accepted on a `tls:` listen): the profile of the
//!   connection's local address, else `[server:default]`, gives the
//!   protocol versions and the client verification: none, optional
//!   (`verify_certificate`: a certificate the client offers must chain to
//!   `ca_list`) or required (and `require_certificate`). The certificate is
//!   chosen per handshake by the name the client sends (SNI): a profile of
//!   the same address with that `server_name`, else an `any` one with it,
//!   else the address's own. Only the certificate follows SNI: the versions
//!   and the client verification are the address's profile's (rustls
//!   fixes them before the name is known; choosing the whole profile by
//!   name would need `rustls::server::Acceptor`).
//! - Client profiles with scope `any` are chosen by `server_id` in
//!   Kamailio (from an xavp set by the route); no route sets it here yet,
//!   so they are parsed and not used.
//! - Client side (a `Transmit` with `proto: Tls`): the profile of the
//!   destination, else `[client:default]`. Its `server_name` is sent as SNI;
//!   with `verify_certificate` the server's certificate must chain to
//!   `ca_list` and carry that name (without one: the destination's IP
//!   address). Without `verify_certificate` any certificate is accepted (its
//!   signatures over the handshake are still checked), as Kamailio does. A
//!   profile's own certificate is offered as a client certificate.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use super::tls_config::{Keys, Method, Profile, Scope, Side, TlsProfiles};
use crate::runtime::config::RuntimeConfig;

/// One client profile, ready to connect with.
struct ClientProfile {
    config: Arc<ClientConfig>,
    /// `server_name`: sent as SNI and verified.
    name: Option<ServerName<'static>>,
}

/// The configurations every worker shares.
pub(crate) struct TlsConfigs {
    /// Server configurations by the address of their profile.
    servers: HashMap<SocketAddr, Arc<ServerConfig>>,
    /// `[server:default]`; `None` when there is no TLS listen.
    server_default: Option<Arc<ServerConfig>>,
    clients: HashMap<SocketAddr, ClientProfile>,
    client_default: ClientProfile,
}

impl fmt::Debug for TlsConfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigs")
            .field("servers", &self.servers.len())
            .field("server_default", &self.server_default.is_some())
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl TlsConfigs {
    /// The server configuration for a connection that reached `local` on a
    /// listen bound to `listen` (they differ for a wildcard listen).
    pub fn server_for(&self, local: SocketAddr, listen: SocketAddr) -> Option<Arc<ServerConfig>> {
        self.servers
            .get(&canonical(local))
            .or_else(|| self.servers.get(&canonical(listen)))
            .or(self.server_default.as_ref())
            .cloned()
    }

    /// The client configuration and the server name for a connection to `dst`.
    pub fn client_for(&self, dst: SocketAddr) -> (Arc<ClientConfig>, ServerName<'static>) {
        let p = self
            .clients
            .get(&canonical(dst))
            .unwrap_or(&self.client_default);
        let name = p.name.clone().unwrap_or_else(|| server_name(dst.ip()));
        (p.config.clone(), name)
    }
}

/// `::ffff:a.b.c.d` (an IPv4 peer on a dual-stack socket) as `a.b.c.d`, so
/// it finds the profile written with the IPv4 address.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn versions(m: Method) -> &'static [&'static SupportedProtocolVersion] {
    static ANY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static V12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    static V13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match m {
        Method::Any => ANY,
        Method::Tls12 => V12,
        Method::Tls13 => V13,
    }
}

/// The profiles the legacy `tls_*` fields of `cfg` describe.
fn legacy_profiles(cfg: &RuntimeConfig) -> TlsProfiles {
    let keys = |verify: bool| Keys {
        certificate: cfg.tls_certificate.clone(),
        private_key: cfg.tls_private_key.clone(),
        ca_list: cfg.tls_ca_list.clone(),
        verify_certificate: Some(verify),
        require_certificate: Some(verify),
        ..Keys::default()
    };
    let profile = |side, keys| Profile {
        side,
        scope: Scope::Default,
        keys,
        origin: "tls settings".into(),
    };
    TlsProfiles {
        profiles: vec![
            profile(Side::Server, keys(cfg.tls_verify_client)),
            profile(
                Side::Client,
                keys(!cfg.tls_dangerous_skip_server_verification),
            ),
        ],
    }
}

/// Reads what the profiles name. `listens`: the TLS listen addresses; when
/// there are none, only the client side is built, else each listen must
/// find a server profile with a certificate.
pub(crate) fn load(cfg: &RuntimeConfig, listens: &[SocketAddr]) -> io::Result<TlsConfigs> {
    let legacy = cfg.tls_profiles.is_none();
    let owned;
    let profiles = match &cfg.tls_profiles {
        Some(p) => p,
        None => {
            owned = legacy_profiles(cfg);
            &owned
        }
    };
    let mut files = Files::default();
    let (mut servers, mut server_default) = (HashMap::new(), None);
    if !listens.is_empty() {
        let server_profiles = profiles.profiles.iter().filter(|p| p.side == Side::Server);
        for base in server_profiles {
            let Scope::Addr(addr) = base.scope else {
                continue;
            };
            if profiles.find(Side::Server, base.scope) != Some(base) {
                continue; // another profile of the same address is its base
            }
            let config = server_config(profiles, base, &mut files, legacy)?;
            servers.insert(addr, Arc::new(config));
        }
        // The default serves the listens without a profile of their own; it
        // is built (and its files checked) whenever it names a certificate.
        let default = profiles.default_of(Side::Server);
        let needed = listens.iter().any(|l| !servers.contains_key(l));
        if needed || default.keys.certificate.is_some() {
            server_default = Some(Arc::new(server_config(
                profiles, default, &mut files, legacy,
            )?));
        }
    }
    let mut clients = HashMap::new();
    let mut client_default = None;
    for p in profiles.profiles.iter().filter(|p| p.side == Side::Client) {
        let built = match p.scope {
            Scope::Any => continue, // chosen by server_id, which no route sets yet
            _ => client_profile(p, &mut files, legacy)?,
        };
        match p.scope {
            Scope::Addr(a) => {
                if clients.insert(a, built).is_some() {
                    log::warn!(
                        "{}: a second client profile for {a}; the last one is used",
                        p.origin
                    );
                }
            }
            _ => client_default = Some(built),
        }
    }
    let client_default = match client_default {
        Some(c) => c,
        None => client_profile(profiles.default_of(Side::Client), &mut files, legacy)?,
    };
    Ok(TlsConfigs {
        servers,
        server_default,
        clients,
        client_default,
    })
}

/// The files read so far: one profile's key serves others without reading it again.
#[derive(Default)]
struct Files {
    keys: HashMap<(PathBuf, PathBuf), Arc<CertifiedKey>>,
}

impl Files {
    /// The certificate and key of `p`; `None` when it names neither.
    fn identity(&mut self, p: &Profile, legacy: bool) -> io::Result<Option<Arc<CertifiedKey>>> {
        let (cert, key) = match (&p.keys.certificate, &p.keys.private_key) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => return Ok(None),
            _ if legacy => {
                return Err(invalid(
                    "a tls listen needs tls_certificate and tls_private_key".into(),
                ))
            }
            _ => {
                return Err(invalid(format!(
                    "{}: certificate and private_key go together",
                    p.origin
                )))
            }
        };
        if let Some(k) = self.keys.get(&(cert.clone(), key.clone())) {
            return Ok(Some(k.clone()));
        }
        let chain = certificates(cert)?;
        let der = private_key(key)?;
        let certified = CertifiedKey::from_der(chain, der, &provider()).map_err(|e| {
            invalid(format!(
                "{}: {} and {}: {e}",
                p.origin,
                cert.display(),
                key.display()
            ))
        })?;
        let certified = Arc::new(certified);
        self.keys
            .insert((cert.clone(), key.clone()), certified.clone());
        Ok(Some(certified))
    }
}

/// The trust anchors of `p` (`ca_list`, the PEM files in `ca_path`).
fn roots(p: &Profile) -> io::Result<Option<Arc<RootCertStore>>> {
    let mut found = Vec::new();
    if let Some(path) = &p.keys.ca_list {
        found.extend(certificates(path)?);
    }
    if let Some(dir) = &p.keys.ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| invalid(format!("{}: ca_path {}: {e}", p.origin, dir.display())))?;
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                // Files that hold no certificate are skipped, as OpenSSL does.
                if let Ok(certs) = certificates(&path) {
                    found.extend(certs);
                }
            }
        }
    }
    if p.keys.ca_list.is_none() && p.keys.ca_path.is_none() {
        return Ok(None);
    }
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(found);
    if added == 0 {
        return Err(invalid(format!(
            "{}: ca_list/ca_path: no usable certificate",
            p.origin
        )));
    }
    Ok(Some(Arc::new(store)))
}

fn crls(p: &Profile) -> io::Result<Vec<CertificateRevocationListDer<'static>>> {
    let Some(path) = &p.keys.crl else {
        return Ok(Vec::new());
    };
    let read = |e: rustls::pki_types::pem::Error| {
        invalid(format!("{}: crl {}: {e}", p.origin, path.display()))
    };
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)
}

fn server_config(
    all: &TlsProfiles,
    base: &Profile,
    files: &mut Files,
    legacy: bool,
) -> io::Result<ServerConfig> {
    let origin = &base.origin;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(base.method()))
        .map_err(|e| invalid(format!("{origin}: {e}")))?;
    let builder = match (base.verify(), roots(base)?) {
        (false, _) => {
            if base.require() {
                log::warn!(
                    "{origin}: require_certificate has no effect without verify_certificate"
                );
            }
            builder.with_no_client_auth()
        }
        (true, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .with_crls(crls(base)?);
            let verifier = match base.require() {
                true => verifier,
                false => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid(format!("{origin}: verify_certificate: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        (true, None) if legacy => {
            return Err(invalid("tls_verify_client needs tls_ca_list".into()))
        }
        (true, None) => {
            return Err(invalid(format!(
                "{origin}: verify_certificate needs ca_list"
            )))
        }
    };
    let fallback = files.identity(base, legacy)?;
    // SNI candidates: the profiles of the same address with a name, then the `any` ones.
    let mut by_name: Vec<(String, Arc<CertifiedKey>)> = Vec::new();
    let same = all
        .profiles
        .iter()
        .filter(|p| p.side == Side::Server && p.scope == base.scope);
    let any = all
        .profiles
        .iter()
        .filter(|p| p.side == Side::Server && p.scope == Scope::Any);
    for p in same.chain(any) {
        let Some(name) = &p.keys.server_name else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if by_name.iter().any(|(n, _)| *n == name) {
            continue;
        }
        match files.identity(p, legacy)? {
            Some(key) => by_name.push((name, key)),
            None => {
                return Err(invalid(format!(
                    "{}: server_name {name} needs a certificate and private_key",
                    p.origin
                )))
            }
        }
    }
    if fallback.is_none() && by_name.is_empty() {
        return Err(invalid(match legacy {
            true => "a tls listen needs tls_certificate and tls_private_key".into(),
            false => format!("{origin}: a server profile needs certificate and private_key"),
        }));
    }
    Ok(builder.with_cert_resolver(Arc::new(SniResolver { by_name, fallback })))
}

/// Chooses the certificate by the name the client asked for (RFC 6066 §3).
#[derive(Debug)]
struct SniResolver {
    by_name: Vec<(String, Arc<CertifiedKey>)>,
    /// For a client that sends no name, or one no profile has.
    fallback: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|sni| {
                self.by_name
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(sni))
                    .map(|(_, k)| k.clone())
            })
            .or_else(|| self.fallback.clone())
    }
}

fn client_profile(p: &Profile, files: &mut Files, legacy: bool) -> io::Result<ClientProfile> {
    let origin = &p.origin;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(p.method()))
        .map_err(|e| invalid(format!("{origin}: {e}")))?;
    let builder = match (p.verify(), roots(p)?) {
        (false, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider()))),
        (true, Some(roots)) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .with_crls(crls(p)?)
                .build()
                .map_err(|e| invalid(format!("{origin}: verify_certificate: {e}")))?;
            builder.with_webpki_verifier(verifier)
        }
        // Legacy: every outgoing handshake fails (logged) until a CA list is given.
        (true, None) if legacy => builder.with_root_certificates(RootCertStore::empty()),
        (true, None) => {
            return Err(invalid(format!(
                "{origin}: verify_certificate needs ca_list"
            )))
        }
    };
    let config = match files.identity(p, legacy)? {
        Some(key) => builder.with_client_cert_resolver(Arc::new(OwnCertificate(key))),
        None => builder.with_no_client_auth(),
    };
    let name = match &p.keys.server_name {
        Some(n) => Some(
            ServerName::try_from(n.clone())
                .map_err(|e| invalid(format!("{origin}: server_name {n}: {e}")))?,
        ),
        None => None,
    };
    Ok(ClientProfile {
        config: Arc::new(config),
        name,
    })
}

/// Offers the profile's certificate whenever a server asks for one.
#[derive(Debug)]
struct OwnCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for OwnCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let read = |e: rustls::pki_types::pem::Error| invalid(format!("{}: {e}", path.display()));
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if chain.is_empty() {
        return Err(invalid(format!("{}: no certificate", path.display())));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| invalid(format!("{}: no private key: {e}", path.display())))
}

/// The server name an outgoing handshake verifies when the profile has no
/// `server_name`: the address connected to.
pub(crate) fn server_name(ip: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

/// TLS client settings for the `http_client` module: the trust anchors in
/// `ca_file` (a PEM bundle), or with `verify` false any certificate.
pub(crate) fn http_client_config(ca_file: &Path, verify: bool) -> io::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let config = if verify {
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(certificates(ca_file)?);
        if added == 0 {
            return Err(invalid(format!(
                "{}: no usable certificate",
                ca_file.display()
            )));
        }
        builder.with_root_certificates(store).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `tls_dangerous_skip_server_verification`: any certificate is accepted
/// (its signatures over the handshake are still checked).
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_finds_the_ipv4_profile() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5061".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:5061".parse().unwrap());
        let six: SocketAddr = "[::1]:5061".parse().unwrap();
        assert_eq!(canonical(six), six);
    }
}
