//! TLS for the listeners (Kafka's `SSL` security protocol, and `https://` for the HTTP
//! listener): one rustls server config made at startup from PEM files, as Kafka reads
//! a PEM key store (`ssl.keystore.location`: the private key and the certificate
//! chain in one file) and trust store (`ssl.truststore.location`: the CA certificates
//! client certificates must chain to). `ssl.client.auth` is Kafka's: `none`,
//! `requested` (a client certificate is checked when one is sent) or `required`.
//!
//! The crypto is rustls' ring provider, named here rather than taken from a process
//! default, so two providers in the build can never make the choice ambiguous.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(raw: &str) -> Result<ClientAuth, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            other => Err(format!("'{other}' is not one of none, requested, required")),
        }
    }
}

/// The `ssl.*` keys, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.keystore.location`: the private key and certificate chain, PEM.
    pub keystore: Option<PathBuf>,
    /// `ssl.truststore.location`: CA certificates for client certificates, PEM.
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("a TLS listener needs ssl.keystore.location (a PEM file with the private key and the certificate chain)")]
    NoKeystore,
    #[error("ssl.client.auth = {0:?} needs ssl.truststore.location (the CA certificates client certificates must chain to)")]
    NoTruststore(ClientAuth),
    #[error("an SSL inter-broker or CONTROLLER listener needs ssl.truststore.location (the CA certificates the other brokers' certificates chain to)")]
    NoPeerTruststore,
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the TLS configuration is refused: {0}")]
    Refused(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file, in order; an error when it has none.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Who this broker is on a TLS listener that asks for client certificates: its key
/// store certificate's subject (`CN=broker-1`), as the other brokers see it.
pub fn keystore_subject(settings: &TlsSettings) -> Result<Option<String>, TlsError> {
    if settings.client_auth == ClientAuth::None {
        return Ok(None);
    }
    let Some(keystore) = settings.keystore.as_deref() else {
        return Ok(None);
    };
    let chain = certificates(keystore)?;
    Ok(chain
        .first()
        .and_then(|leaf| troupe_actors::auth::certificate_subject(leaf)))
}

/// The server config for every TLS listener, offering `alpn` (empty: none).
pub fn server_config(
    settings: &TlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let keystore = settings.keystore.as_deref().ok_or(TlsError::NoKeystore)?;
    let chain = certificates(keystore)?;
    let key = PrivateKeyDer::from_pem_file(keystore)
        .map_err(|e| file_error(keystore, format!("no private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Refused(e.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let truststore = settings
                .truststore
                .as_deref()
                .ok_or(TlsError::NoTruststore(auth))?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(truststore)? {
                roots.add(cert).map_err(|e| file_error(truststore, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Refused(e.to_string()))?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| file_error(keystore, e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The client config a broker reaches the others' TLS listeners with (an SSL
/// inter-broker or CONTROLLER listener): their certificates must chain to the CAs of
/// `ssl.truststore.location`; when listeners ask for client certificates
/// (`ssl.client.auth`), this broker presents its own key store's (whose certificate
/// then needs the clientAuth usage too).
pub fn client_config(settings: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let truststore = settings
        .truststore
        .as_deref()
        .ok_or(TlsError::NoPeerTruststore)?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(truststore)? {
        roots.add(cert).map_err(|e| file_error(truststore, e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Refused(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (settings.client_auth, settings.keystore.as_deref()) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (_, Some(keystore)) => {
            let chain = certificates(keystore)?;
            let key = PrivateKeyDer::from_pem_file(keystore)
                .map_err(|e| file_error(keystore, format!("no private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| file_error(keystore, e))?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_takes_kafkas_values() {
        assert_eq!(ClientAuth::parse("REQUIRED"), Ok(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("requested"), Ok(ClientAuth::Requested));
        assert_eq!(ClientAuth::parse("none"), Ok(ClientAuth::None));
        assert!(ClientAuth::parse("yes").is_err());
    }

    #[test]
    fn missing_and_unreadable_stores_are_named() {
        let none = server_config(&TlsSettings::default(), &[]).unwrap_err();
        assert!(matches!(none, TlsError::NoKeystore), "{none}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let settings = TlsSettings {
            keystore: Some(empty.clone()),
            ..TlsSettings::default()
        };
        let refused = server_config(&settings, &[]).unwrap_err().to_string();
        assert!(refused.contains("empty.pem"), "{refused}");
        let missing = TlsSettings {
            keystore: Some(dir.path().join("missing.pem")),
            ..TlsSettings::default()
        };
        let refused = server_config(&missing, &[]).unwrap_err().to_string();
        assert!(refused.contains("missing.pem"), "{refused}");
    }

    #[test]
    fn a_key_store_made_by_rcgen_gives_a_config_and_client_auth_needs_a_trust_store() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("server.pem");
        std::fs::write(&store, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        let settings = TlsSettings {
            keystore: Some(store.clone()),
            ..TlsSettings::default()
        };
        let config = server_config(&settings, &[b"http/1.1"]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let needs_trust = TlsSettings {
            client_auth: ClientAuth::Required,
            ..settings.clone()
        };
        assert!(matches!(
            server_config(&needs_trust, &[]).unwrap_err(),
            TlsError::NoTruststore(ClientAuth::Required)
        ));
        let trusted = TlsSettings {
            truststore: Some(store),
            ..needs_trust
        };
        assert!(server_config(&trusted, &[]).is_ok());
    }
}
