//! The webhook's TLS: a given certificate, or a private CA and server certificate made on first start.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// TLS material failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing PEM files.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// Generating certificates.
    #[error("cannot make the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate, key or client CA cannot be used.
    #[error("webhook TLS: {0}")]
    Config(String),
}

/// PEM certificate chain and key for the webhook, plus the CA bundle to put in the webhook configuration.
pub struct WebhookTls {
    /// Server certificate (PEM).
    pub cert_pem: String,
    /// Server key (PEM).
    pub key_pem: String,
    /// CA certificate (PEM), when self-made.
    pub ca_pem: Option<String>,
}

impl WebhookTls {
    /// The `caBundle` value for a ValidatingWebhookConfiguration (base64 of the CA PEM).
    pub fn ca_bundle(&self) -> Option<String> {
        self.ca_pem.as_ref().map(|pem| STANDARD.encode(pem))
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|source| TlsError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Load the given certificate and key.
pub fn load(cert: &Path, key: &Path) -> Result<WebhookTls, TlsError> {
    Ok(WebhookTls {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
        ca_pem: None,
    })
}

/// Load the self-made CA and certificate from `dir`, making them on first start.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<WebhookTls, TlsError> {
    let (ca_path, cert_path, key_path) =
        (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
    if ca_path.exists() && cert_path.exists() && key_path.exists() {
        return Ok(WebhookTls {
            cert_pem: read(&cert_path)?,
            key_pem: read(&key_path)?,
            ca_pem: Some(read(&ca_path)?),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Countersign webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "countersign-webhook");
    params.subject_alt_names = names
        .iter()
        .filter_map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    let cert = params.signed_by(&key, &ca, &ca_key)?;

    let tls = WebhookTls {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: Some(ca.pem()),
    };
    write(&ca_path, &ca.pem(), false)?;
    write(&cert_path, &tls.cert_pem, false)?;
    write(&key_path, &tls.key_pem, true)?;
    Ok(tls)
}

/// The webhook's rustls configuration: its certificate, and with `client_ca` a requirement that
/// every caller present a certificate issued by that CA (what the API server does when its
/// AdmissionConfiguration gives the webhook a kubeconfig with a client certificate).
pub fn server_config(
    tls: &WebhookTls,
    client_ca: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let config_error =
        |what: &str, e: &dyn std::fmt::Display| TlsError::Config(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| config_error("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
        .map_err(|e| config_error("key", &e))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("protocol versions", &e))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = read(path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| config_error(&path.display().to_string(), &e))?;
                roots
                    .add(cert)
                    .map_err(|e| config_error(&path.display().to_string(), &e))?;
            }
            if roots.is_empty() {
                return Err(TlsError::Config(format!(
                    "{}: no CA certificate in it",
                    path.display()
                )));
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| config_error("client CA", &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| config_error("certificate and key", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
