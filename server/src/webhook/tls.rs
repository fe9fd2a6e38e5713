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
