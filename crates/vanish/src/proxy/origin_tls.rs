//! TLS to the origin: whom an `https://` upstream must prove to be, and what a failed
//! handshake is called.
//!
//! Owns the trust for the origin's certificate (`[upstream] ca_file`, else the system's roots,
//! else Mozilla's bundled roots), the name sent as SNI and verified (`[upstream]
//! tls_server_name`, else the URL's host), the rustls client configuration (TLS 1.2 and 1.3,
//! no ALPN: HTTP/1.1), and the naming of TLS failures for the `502`, the log and
//! `vanish_origin_tls_errors_total`. It opens no connection (the upstream does) and reads no
//! configuration file (the `[upstream]` section hands it the paths and names).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// Where the roots an origin's certificate must lead to came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootsSource {
    /// `[upstream] ca_file`: only these roots (the system's are not used).
    CaFile {
        /// The file.
        path: String,
        /// Certificates it holds.
        certs: usize,
    },
    /// The system's store (`rustls-native-certs`: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the
    /// platform's usual place).
    System {
        /// Certificates loaded.
        certs: usize,
    },
    /// Mozilla's roots compiled into Vanish (`webpki-roots`), because the system's store
    /// had none.
    Bundled {
        /// Why the system's store was not used.
        why: String,
    },
}

impl std::fmt::Display for RootsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootsSource::CaFile { path, certs } => {
                write!(
                    f,
                    "ca_file {path} ({certs} certificate(s), system roots not used)"
                )
            }
            RootsSource::System { certs } => write!(f, "system roots ({certs} certificates)"),
            RootsSource::Bundled { why } => write!(
                f,
                "Mozilla's roots bundled with Vanish (webpki-roots): the system's store {why}"
            ),
        }
    }
}

/// The trust settings of an `https://` upstream, resolved once (by `[upstream]`).
#[derive(Clone)]
pub struct OriginTls {
    roots: Arc<RootCertStore>,
    source: RootsSource,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for OriginTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginTls")
            .field("roots", &self.source)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl OriginTls {
    /// Trust for an origin: `roots` (from [`load_ca_file`] or [`system_roots`]) and the name
    /// to send and verify.
    pub fn new(roots: (RootCertStore, RootsSource), server_name: ServerName<'static>) -> Self {
        OriginTls {
            roots: Arc::new(roots.0),
            source: roots.1,
            server_name,
        }
    }

    /// Where the roots came from.
    pub fn source(&self) -> &RootsSource {
        &self.source
    }

    /// The name sent as SNI (for a DNS name) and verified against the certificate.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// The rustls client configuration: these roots, TLS 1.2 and 1.3 (rustls's defaults, with
    /// the `ring` provider), no client certificate, and no ALPN offer: the upstream speaks
    /// HTTP/1.1 to origins, which is what a TLS server speaks to a client that offers no
    /// protocol (HTTP/2 over TLS needs ALPN). `hyper-rustls` sets ALPN itself and refuses a
    /// configuration that has it; for HTTP/1.1 only, it offers none.
    pub fn client_config(&self) -> ClientConfig {
        client_config(self.roots.clone())
    }

    /// A one-line summary (`vanish check-config`, the start-up log).
    pub fn describe(&self) -> String {
        format!(
            "verified as {:?} against {}",
            self.server_name.to_str(),
            self.source
        )
    }
}

/// A rustls client configuration over `roots` (see [`OriginTls::client_config`]).
pub(crate) fn client_config(roots: Arc<RootCertStore>) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The certificates of a PEM file, as the only roots; the error (one line) says what is wrong
/// with the file.
pub fn load_ca_file(path: &Path) -> Result<(RootCertStore, RootsSource), String> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| format!("{shown} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{shown}: certificate {} is not usable: {e}", i + 1))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"
        ));
    }
    let certs = roots.len();
    Ok((roots, RootsSource::CaFile { path: shown, certs }))
}

/// The system's roots; Mozilla's bundled ones when the system has none (a container without
/// a CA bundle, say): never an empty store, which would refuse every origin.
pub fn system_roots() -> (RootCertStore, RootsSource) {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added > 0 {
        return (roots, RootsSource::System { certs: added });
    }
    let why = match found.errors.first() {
        Some(e) => format!("could not be read ({e})"),
        None => "has no certificates".to_owned(),
    };
    let mut bundled = RootCertStore::empty();
    bundled.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    (bundled, RootsSource::Bundled { why })
}

/// A server name as configured or taken from the URL (brackets of an IPv6 literal removed).
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned())
        .map_err(|_| format!("{name:?} is not a DNS name or an IP address"))
}

/// A failed TLS handshake with the origin, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    /// The metric's `reason` label: `unknown_issuer`, `name_mismatch`, `expired`,
    /// `not_yet_valid`, `bad_certificate`, `alert` or `protocol`.
    pub reason: &'static str,
    /// What rustls said, with what to check.
    pub message: String,
}

/// The TLS failure somewhere in an error's chain of sources, if there is one (the legacy
/// client wraps rustls's error in `io::Error`s, whose payload is reached by `get_ref`).
pub fn find_failure(e: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(name_failure(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(found) = find_failure(inner) {
                    return Some(found);
                }
            }
        }
        next = e.source();
    }
    None
}

fn name_failure(e: &rustls::Error) -> TlsFailure {
    use rustls::Error as E;
    let (reason, hint) = match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => (
                "unknown_issuer",
                "its certificate does not lead to a trusted root (a private CA goes in [upstream] ca_file)",
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
                "name_mismatch",
                "its certificate does not name the server name (see [upstream] tls_server_name)",
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("expired", "its certificate has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ("not_yet_valid", "its certificate is not valid yet")
            }
            CertificateError::Other(other)
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                (
                    "bad_certificate",
                    "its certificate is a CA's (CA:TRUE, as `openssl req -x509` makes by default), which is refused as a server's own, even in ca_file: give the origin a certificate with CA:FALSE",
                )
            }
            _ => ("bad_certificate", "its certificate was refused"),
        },
        E::AlertReceived(_) => ("alert", "the origin refused the handshake"),
        _ => (
            "protocol",
            "the handshake failed (does the origin speak TLS on that port?)",
        ),
    };
    TlsFailure {
        reason,
        message: format!("TLS handshake with the origin failed: {e}: {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_failures_through_io_errors() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let wrapped =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        let f = find_failure(&wrapped).expect("found");
        assert_eq!(f.reason, "unknown_issuer");
        assert!(f.message.contains("ca_file"), "{}", f.message);
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(find_failure(&plain), None);
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(find_failure(&name).unwrap().reason, "name_mismatch");
    }

    #[test]
    fn server_names() {
        assert!(server_name("app.internal").is_ok());
        assert!(server_name("10.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("not a name").is_err());
    }

    #[test]
    fn ca_file_errors_are_one_line() {
        let dir = std::env::temp_dir().join(format!("vanish-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = load_ca_file(&dir.join("missing.pem")).unwrap_err();
        assert!(missing.starts_with("cannot read"), "{missing}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_ca_file(&empty).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_ca_file(&junk).unwrap_err();
        assert!(e.contains("not usable"), "{e}");
        for e in [missing, e] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
