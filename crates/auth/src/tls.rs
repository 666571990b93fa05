//! The server certificate and rustls configuration.
//!
//! With `[tls] cert` and `key` configured, those PEM files are served; without, a
//! self-signed certificate for `hostname` is generated on first start and kept in
//! `data_dir/tls/` so clients can pin it across restarts. [`TlsManager::reload`] reads
//! the files again (on SIGHUP): new handshakes get the new certificate, established
//! connections keep theirs. Only TLS 1.2 and 1.3 are offered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use mailroom_config::Config;
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Serves whatever certificate was loaded last.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The server's TLS identity and configuration; cheap to clone.
#[derive(Clone)]
pub struct TlsManager {
    resolver: Arc<Resolver>,
    server_config: Arc<rustls::ServerConfig>,
    cert_path: PathBuf,
    key_path: PathBuf,
    generated: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadKey {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: format!("no private key: {e}"),
    })?;
    let signing = aws_lc_rs::sign::any_supported_type(&key).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: format!("does not match the certificate: {e}"),
    })?;
    Ok(certified)
}

/// Writes a self-signed certificate for `hostname` (and localhost) to the paths.
fn generate(hostname: &str, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(bytes).map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl TlsManager {
    /// Loads the configured certificate, or the generated one (creating it on first
    /// start).
    pub fn from_config(config: &Config) -> Result<TlsManager, TlsError> {
        crate::install_crypto_provider();
        let (cert_path, key_path, generated) = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
            _ => {
                let dir = config.data_dir.join("tls");
                let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
                if !cert.is_file() || !key.is_file() {
                    generate(&config.hostname, &cert, &key)?;
                    tracing::info!(path = %cert.display(), hostname = %config.hostname, "generated a self-signed TLS certificate");
                }
                (cert, key, true)
            }
        };
        let certified = Arc::new(load_key(&cert_path, &key_path)?);
        let resolver = Arc::new(Resolver {
            current: RwLock::new(certified),
        });
        let mut server_config =
            rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
        // Mail protocols have no ALPN to negotiate; sessions may resume.
        server_config.ignore_client_order = false;
        let manager = TlsManager {
            resolver,
            server_config: Arc::new(server_config),
            cert_path,
            key_path,
            generated,
        };
        tracing::info!(
            cert = %manager.cert_path.display(),
            self_signed = manager.generated,
            sha256 = %manager.fingerprint(),
            "TLS certificate loaded"
        );
        Ok(manager)
    }

    /// A tokio-rustls acceptor using the current certificate at each handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config.clone())
    }

    /// The rustls server configuration.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }

    /// Reads the certificate and key files again; on error the old ones stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = Arc::new(load_key(&self.cert_path, &self.key_path)?);
        if let Ok(mut current) = self.resolver.current.write() {
            *current = certified;
        }
        tracing::info!(cert = %self.cert_path.display(), sha256 = %self.fingerprint(), "TLS certificate reloaded");
        Ok(())
    }

    /// SHA-256 fingerprint of the leaf certificate, `AB:CD:...`.
    pub fn fingerprint(&self) -> String {
        let leaf = self
            .resolver
            .current
            .read()
            .ok()
            .and_then(|c| c.cert.first().map(|c| Sha256::digest(c.as_ref())));
        leaf.map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
    }

    /// The PEM file of the certificate being served (for tests and clients to pin).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            hostname: "mail.example.test".into(),
            ..Config::default()
        }
    }

    #[test]
    fn self_signed_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = TlsManager::from_config(&config(dir.path())).unwrap();
        let fp = first.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        let again = TlsManager::from_config(&config(dir.path())).unwrap();
        assert_eq!(
            again.fingerprint(),
            fp,
            "the generated certificate is reused on restart"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }

    #[test]
    fn configured_files_load_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        generate("one.example", &cert, &key).unwrap();
        let mut c = config(dir.path());
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
        let manager = TlsManager::from_config(&c).unwrap();
        let before = manager.fingerprint();
        generate("two.example", &cert, &key).unwrap();
        manager.reload().unwrap();
        assert_ne!(manager.fingerprint(), before);
        // A broken file leaves the old certificate in place.
        std::fs::write(&key, "garbage").unwrap();
        assert!(manager.reload().is_err());
        assert_ne!(manager.fingerprint(), "");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = (dir.path().join("c1.pem"), dir.path().join("k1.pem"));
        let (c2, k2) = (dir.path().join("c2.pem"), dir.path().join("k2.pem"));
        generate("a.example", &c1, &k1).unwrap();
        generate("b.example", &c2, &k2).unwrap();
        let mut c = config(dir.path());
        c.tls.cert = Some(c1);
        c.tls.key = Some(k2);
        let err = TlsManager::from_config(&c)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
