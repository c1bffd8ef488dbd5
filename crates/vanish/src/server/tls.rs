//! TLS on the client-facing listener: the certificates and the rustls server configuration.
//!
//! Owns loading PEM chains and keys from disk (every failure one line naming the setting and
//! the file), checking that each key belongs to its certificate, choosing a certificate by
//! SNI (the names are the certificate's own DNS subject alternative names, wildcards
//! included; no match or no SNI gets the first, default certificate), and swapping the whole
//! set on reload while handshakes keep running. TLS 1.2 and 1.3 only, ALPN `h2` and
//! `http/1.1`, rustls with the ring provider. It does not touch sockets: `accept.rs` runs the
//! handshakes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// One configured certificate: the PEM chain, its key, and the settings that named them
/// (`server.tls_cert`, `server.certs[1].key`, `--tls-key`...), for errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The PEM chain, end-entity certificate first.
    pub cert: PathBuf,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The setting that named `cert`.
    pub cert_setting: String,
    /// The setting that named `key`.
    pub key_setting: String,
}

/// A certificate or key that cannot be used: the setting, then the file and why, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The setting that named the file.
    pub setting: String,
    /// The file and what is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for LoadError {}

/// The loaded set: what the resolver answers from.
struct Table {
    /// The first certificate: for clients without SNI or with a name no certificate has.
    default: Arc<CertifiedKey>,
    /// Exact names (lowercase, no trailing dot).
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` certificates, by `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Each certificate's names, in configuration order.
    names: Vec<Vec<String>>,
}

/// The certificates of the TLS listener, chosen by SNI, reloadable from their files.
///
/// A handshake takes the set in force when it starts; a reload replaces the set for later
/// handshakes only, so connections in flight keep their session.
pub struct Certificates {
    files: Vec<CertFiles>,
    table: RwLock<Arc<Table>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .field("names", &self.names())
            .finish()
    }
}

impl Certificates {
    /// Loads every certificate (the first is the default); the first failure is the error.
    pub fn load(files: Vec<CertFiles>) -> Result<Arc<Self>, LoadError> {
        let table = build(&files)?;
        Ok(Arc::new(Certificates {
            files,
            table: RwLock::new(Arc::new(table)),
        }))
    }

    /// Reads every file again and swaps the set in. On any failure the old set stays in force
    /// and the error says which file.
    pub fn reload(&self) -> Result<(), LoadError> {
        let table = build(&self.files)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(())
    }

    /// Each certificate's DNS names, in configuration order (the first is the default).
    pub fn names(&self) -> Vec<Vec<String>> {
        self.current().names.clone()
    }

    /// The configured files.
    pub fn files(&self) -> &[CertFiles] {
        &self.files
    }

    fn current(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The certificate for a server name (SNI); `None` gets the default.
    fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let table = self.current();
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(k) = table.exact.get(&name) {
                return k.clone();
            }
            if let Some(k) = name
                .split_once('.')
                .and_then(|(_, parent)| table.wildcard.get(parent))
            {
                return k.clone();
            }
        }
        table.default.clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(hello.server_name()))
    }
}

/// The crypto provider every TLS object of Vanish's listeners uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's rustls configuration: TLS 1.3 and 1.2, no client certificates, ALPN `h2`
/// then `http/1.1`, certificates from `certs`.
pub fn server_config(certs: Arc<Certificates>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn build(files: &[CertFiles]) -> Result<Table, LoadError> {
    let provider = provider();
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    let mut names = Vec::with_capacity(files.len());
    let mut default = None;
    for f in files {
        let (key, dns) = load_pair(f, &provider)?;
        let key = Arc::new(key);
        for n in &dns {
            // The first certificate naming a host wins, as the configuration orders them.
            match n.strip_prefix("*.") {
                Some(parent) => wildcard.entry(parent.to_owned()),
                None => exact.entry(n.clone()),
            }
            .or_insert_with(|| key.clone());
        }
        names.push(dns);
        default.get_or_insert(key);
    }
    let default = default.ok_or_else(|| LoadError {
        setting: "server.tls_cert".into(),
        reason: "no certificate configured".into(),
    })?;
    Ok(Table {
        default,
        exact,
        wildcard,
        names,
    })
}

/// One chain and key: parsed, matched, and the certificate's DNS names.
fn load_pair(
    f: &CertFiles,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Vec<String>), LoadError> {
    let cert_err = |reason: String| LoadError {
        setting: f.cert_setting.clone(),
        reason,
    };
    let key_err = |reason: String| LoadError {
        setting: f.key_setting.clone(),
        reason,
    };
    let (cp, kp) = (f.cert.display(), f.key.display());
    let chain = read(&f.cert).map_err(cert_err)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            cert_err(format!(
                "{cp}: not a PEM certificate chain ({})",
                pem_why(&e)
            ))
        })?;
    if chain.is_empty() {
        return Err(cert_err(format!(
            "{cp}: no certificate in it (expected \"-----BEGIN CERTIFICATE-----\")"
        )));
    }
    let end_entity = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
        cert_err(format!(
            "{cp}: the first certificate cannot be parsed ({e})"
        ))
    })?;
    let dns: Vec<String> = end_entity
        .valid_dns_names()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let key = read(&f.key).map_err(key_err)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| match e {
        pem::Error::NoItemsFound => key_err(format!(
            "{kp}: no private key in it (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")"
        )),
        e => key_err(format!("{kp}: not a PEM private key ({})", pem_why(&e))),
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(format!("{kp}: unusable private key ({e})")))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_err(format!("{kp} is not the private key of {cp}")));
        }
        Err(e) => return Err(cert_err(format!("{cp}: {e}"))),
    }
    Ok((certified, dns))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A PEM error on one line.
fn pem_why(e: &pem::Error) -> String {
    e.to_string().replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str, hosts: &[&str]) -> CertFiles {
        let c = rcgen::generate_simple_self_signed(
            hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        CertFiles {
            cert,
            key,
            cert_setting: format!("{name}.cert"),
            key_setting: format!("{name}.key"),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vanish-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sni_picks_by_exact_name_then_wildcard_then_the_default() {
        let d = dir("sni");
        let a = write_pair(&d, "a", &["a.example", "www.a.example"]);
        let b = write_pair(&d, "b", &["*.b.example"]);
        let certs = Certificates::load(vec![a, b]).unwrap();
        let names = certs.names();
        assert_eq!(names[0], ["a.example", "www.a.example"]);
        assert_eq!(names[1], ["*.b.example"]);
        let first = certs.choose(None);
        let second = certs.choose(Some("X.B.example."));
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&certs.choose(Some("www.a.example")), &first));
        assert!(Arc::ptr_eq(&certs.choose(Some("unknown.test")), &first));
        // A wildcard covers one label only.
        assert!(Arc::ptr_eq(&certs.choose(Some("b.example")), &first));
        assert!(Arc::ptr_eq(&certs.choose(Some("y.x.b.example")), &first));
    }

    #[test]
    fn bad_files_are_one_line_naming_the_setting_and_the_file() {
        let d = dir("bad");
        let a = write_pair(&d, "a", &["a.example"]);
        let b = write_pair(&d, "b", &["b.example"]);
        let missing = CertFiles {
            cert: d.join("nope.pem"),
            ..a.clone()
        };
        let mismatched = CertFiles {
            key: b.key.clone(),
            ..a.clone()
        };
        let not_pem = d.join("junk.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let junk_cert = CertFiles {
            cert: not_pem.clone(),
            ..a.clone()
        };
        let junk_key = CertFiles {
            key: not_pem.clone(),
            ..a.clone()
        };
        let key_as_cert = CertFiles {
            cert: a.key.clone(),
            ..a.clone()
        };
        let cases = [
            (missing, "a.cert: cannot read"),
            (mismatched, "is not the private key of"),
            (junk_cert, "a.cert: "),
            (junk_key, "a.key: "),
            (key_as_cert, "no certificate in it"),
        ];
        for (files, needle) in cases {
            let e = Certificates::load(vec![files]).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_failed_reload_keeps_the_old_certificates() {
        let d = dir("reload");
        let a = write_pair(&d, "a", &["a.example"]);
        let certs = Certificates::load(vec![a.clone()]).unwrap();
        let before = certs.choose(None);
        std::fs::write(&a.key, "garbage").unwrap();
        assert!(certs.reload().is_err());
        assert!(Arc::ptr_eq(&certs.choose(None), &before));
        write_pair(&d, "a", &["new.example"]);
        certs.reload().unwrap();
        assert!(!Arc::ptr_eq(&certs.choose(None), &before));
        assert_eq!(certs.names(), [["new.example"]]);
    }
}
