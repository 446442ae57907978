//! TLS for endpoint probes: a rustls client (the agent's aws-lc-rs provider) whose
//! certificate verifier records the earliest `notAfter` of the presented chain before it
//! decides, so that expiry is reported also for a certificate that fails verification
//! (expired, wrong name) or is not verified at all (`insecureSkipVerify`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use fabricwatch_proto::endpoint::TlsConfig;
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};

/// Most bytes of a CA file read (a bundle of a few hundred certificates).
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// The verifier: records expiry, then defers to `inner` (absent: accept any chain).
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
    not_after: Arc<Mutex<Option<DateTime<Utc>>>>,
}

/// Earliest `notAfter` among `certs` (those that do not parse are skipped).
pub fn earliest_not_after<'a>(
    certs: impl IntoIterator<Item = &'a CertificateDer<'a>>,
) -> Option<DateTime<Utc>> {
    certs
        .into_iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .filter_map(|(_, x)| DateTime::from_timestamp(x.validity().not_after.timestamp(), 0))
        .min()
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let earliest = earliest_not_after(std::iter::once(end_entity).chain(intermediates));
        if let Ok(mut slot) = self.not_after.lock() {
            *slot = earliest;
        }
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Checked also when the chain is not: the server must hold the key it presents.
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client for one endpoint, built once and reused while its settings (and its CA
/// file) stay the same.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    not_after: Arc<Mutex<Option<DateTime<Utc>>>>,
    server_name: Option<String>,
}

/// What a handshake found.
pub struct Handshake {
    /// The TLS stream.
    pub stream: TlsStream<TcpStream>,
    /// Negotiated version, e.g. `TLSv1_3`.
    pub version: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsClient {
    /// A client for `cfg`: the CA file's certificates as the only roots when set, else the
    /// system's (rustls-platform-verifier), none checked with `insecureSkipVerify`.
    ///
    /// # Errors
    /// A message naming the CA file when it cannot be read or holds no certificate, or
    /// when the system roots cannot be loaded.
    pub fn new(cfg: &TlsConfig) -> Result<Self, String> {
        let provider = provider();
        let inner: Option<Arc<dyn ServerCertVerifier>> = if cfg.insecure_skip_verify {
            None
        } else if let Some(path) = &cfg.ca_file {
            let pem = read_bounded(path)?;
            let mut roots = rustls::RootCertStore::empty();
            let mut n = 0;
            for c in rustls_pki_pem(&pem) {
                let c = c.map_err(|e| format!("CA file {path}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("CA file {path}: bad certificate: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!("CA file {path}: no PEM certificate in it"));
            }
            let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("CA file {path}: {e}"))?;
            Some(v)
        } else {
            let v = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("system CA certificates: {e}"))?;
            Some(Arc::new(v))
        };
        let not_after = Arc::new(Mutex::new(None));
        let verifier = Arc::new(Recording {
            inner,
            provider: provider.clone(),
            not_after: not_after.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            not_after,
            server_name: cfg.server_name.clone(),
        })
    }

    /// Handshakes over `tcp` for `host` (or the configured server name). Returns the
    /// stream and writes the chain's earliest expiry into `not_after` whatever the outcome.
    ///
    /// # Errors
    /// The handshake error as rustls words it, e.g. `invalid peer certificate: Expired`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        not_after: &mut Option<DateTime<Utc>>,
    ) -> Result<Handshake, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| format!("server name {name:?}: {e}"))?
            .to_owned();
        if let Ok(mut slot) = self.not_after.lock() {
            *slot = None;
        }
        let r = TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await;
        *not_after = self.not_after.lock().ok().and_then(|s| *s);
        let stream = r.map_err(|e| format!("tls: {e}"))?;
        let version = stream
            .get_ref()
            .1
            .protocol_version()
            .and_then(|v| v.as_str().map(str::to_string));
        Ok(Handshake { stream, version })
    }
}

fn read_bounded(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("CA file {path}: {e}"))?;
    let mut buf = Vec::new();
    f.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("CA file {path}: {e}"))?;
    if buf.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "CA file {path}: larger than {MAX_CA_FILE_BYTES} bytes"
        ));
    }
    Ok(buf)
}

fn rustls_pki_pem(
    pem: &[u8],
) -> impl Iterator<Item = Result<CertificateDer<'static>, rustls::pki_types::pem::Error>> + '_ {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
}
