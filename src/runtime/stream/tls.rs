//! TLS configuration from files (RFC 3261 §26.3.1: SIP over TLS, `sips:`),
//! loaded once at start-up so a bad file is a start-up error, never a
//! failure on the first connection. rustls with the `ring` provider; the
//! records themselves are driven by `Conn` over the same TCP machinery
//! (rustls is sans-IO, so no adapter task is needed).
//!
//! - Server side (a `tls:` listen): `tls_certificate` (PEM chain) and
//!   `tls_private_key` (PEM) are required; with `tls_verify_client`, a client
//!   must present a certificate that chains to `tls_ca_list`.
//! - Client side (a `Transmit` with `proto: Tls`): the server's certificate
//!   must chain to `tls_ca_list` and name the IP address connected to
//!   (destinations are addresses until DNS arrives, so the URI host is that
//!   address). Without a CA list every outgoing handshake fails (logged),
//!   unless `tls_dangerous_skip_server_verification`. Our own certificate is
//!   offered as a client certificate when one is configured.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::runtime::config::RuntimeConfig;

/// The configurations every worker shares.
pub(crate) struct TlsConfigs {
    /// `None` when no certificate is configured (then there is no TLS listen).
    pub server: Option<Arc<ServerConfig>>,
    pub client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigs")
            .field("server", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn tls_error(what: &str, e: rustls::Error) -> io::Error {
    invalid(format!("{what}: {e}"))
}

/// Loads the files `cfg` names. `need_server`: a `tls:` listen exists, so
/// the certificate and key are required.
pub(crate) fn load(cfg: &RuntimeConfig, need_server: bool) -> io::Result<TlsConfigs> {
    let identity = match (&cfg.tls_certificate, &cfg.tls_private_key) {
        (Some(cert), Some(key)) => Some((certificates(cert)?, private_key(key)?)),
        (None, None) if !need_server => None,
        _ => {
            return Err(invalid(
                "a tls listen needs tls_certificate and tls_private_key".into(),
            ))
        }
    };
    let roots = match &cfg.tls_ca_list {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(certificates(path)?);
            if added == 0 {
                return Err(invalid(format!(
                    "tls_ca_list {}: no usable certificate",
                    path.display()
                )));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let server = match &identity {
        Some((chain, key)) => Some(Arc::new(server_config(
            cfg,
            chain.clone(),
            key.clone_key(),
            roots.clone(),
        )?)),
        None => None,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls client", e))?;
    let builder = if cfg.tls_dangerous_skip_server_verification {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider())))
    } else {
        builder.with_root_certificates(roots.unwrap_or_else(|| Arc::new(RootCertStore::empty())))
    };
    let client = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_error("tls client certificate", e))?,
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConfigs {
        server,
        client: Arc::new(client),
    })
}

fn server_config(
    cfg: &RuntimeConfig,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Option<Arc<RootCertStore>>,
) -> io::Result<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls server", e))?;
    let builder = match (cfg.tls_verify_client, roots) {
        (false, _) => builder.with_no_client_auth(),
        (true, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| invalid(format!("tls_verify_client: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        (true, None) => return Err(invalid("tls_verify_client needs tls_ca_list".into())),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("tls_certificate/tls_private_key", e))
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

/// The server name an outgoing handshake verifies: the address connected to.
pub(crate) fn server_name(ip: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
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
