//! Mutual TLS and private CAs for one webhook channel: the PEM texts of `webhook.tls` read and
//! checked (certificates parse, the key is one the TLS stack can sign with and belongs to the
//! client certificate), what the channel's view says about each certificate (subject, expiry,
//! whether it expires within [`EXPIRY_WARNING`]), and the channel's own HTTP client.
//!
//! A channel with a `tls` block gets a client of its own, built like the shared one (the SSRF
//! gate's resolver, no redirects, no proxy, the same timeouts) plus the client certificate and,
//! when a CA bundle is given, that bundle as the only roots the endpoint's certificate may chain
//! to. Nothing of it reaches other channels. Clients are kept by a digest of their TLS material,
//! so a channel's deliveries share one connection pool and a changed certificate gets a new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rustls::pki_types::pem::{PemObject as _, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::config::TlsConfig;

/// A certificate that expires within this time from now is flagged (in the channel's view and
/// in the `business_wallet_channel_certificates_expiring` gauge).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// At most this many per-channel clients are kept; past it the cache starts afresh (each
/// client is rebuilt on its channel's next delivery).
const CLIENT_CACHE_LIMIT: usize = 256;

/// What a `webhook.tls` certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateUse {
    /// The client certificate the channel presents (`webhook.tls.clientCertificate`, its first
    /// certificate).
    Client,
    /// A certificate of the CA bundle the endpoint's certificate is checked against
    /// (`webhook.tls.caCertificates`).
    Ca,
}

impl CertificateUse {
    /// Whether this is the client certificate.
    pub fn is_client(self) -> bool {
        self == CertificateUse::Client
    }
}

/// One certificate of a channel's `webhook.tls` block, as the channel's view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// `CLIENT` or `CA`.
    #[serde(rename = "use")]
    pub usage: CertificateUse,
    /// The certificate's subject, e.g. `CN=wallet-client, O=Acme`.
    pub subject: String,
    /// The subject of its issuer.
    pub issuer: String,
    /// Not valid after (epoch milliseconds).
    #[serde(skip)]
    pub not_after_ms: i64,
    /// Not valid after (RFC 3339 UTC).
    pub not_after: String,
    /// Whether it has expired or expires within 30 days.
    pub expires_soon: bool,
}

/// Reads a PEM text of certificates: at least one `CERTIFICATE` block and nothing else (a
/// private key pasted into a certificate field would be stored unencrypted and shown).
///
/// # Errors
/// What is wrong, for a person: no certificate, a block of another kind, bad base64, or a
/// certificate that is not X.509 DER.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = section.map_err(|e| format!("is not valid PEM ({e})"))?;
        if kind != SectionKind::Certificate {
            return Err(format!(
                "must hold CERTIFICATE blocks only, not a {} block",
                kind_label(kind)
            ));
        }
        if let Err(err) = x509_parser::parse_x509_certificate(&der) {
            return Err(format!(
                "certificate {} is not a valid X.509 certificate ({err})",
                certificates.len() + 1
            ));
        }
        certificates.push(CertificateDer::from(der));
    }
    let blocks = begin_markers(pem);
    if blocks != certificates.len() && blocks > 0 {
        return Err("must hold CERTIFICATE blocks only".into());
    }
    if certificates.is_empty() {
        return Err("holds no PEM CERTIFICATE block (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certificates)
}

/// Reads a PEM private key: exactly one unencrypted PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA
/// PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) block, of a kind the TLS stack can sign with
/// (RSA, ECDSA P-256/P-384, Ed25519).
///
/// # Errors
/// What is wrong, for a person.
pub fn parse_private_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("is an encrypted (password-protected) key; give it unencrypted (it is stored encrypted)".into());
    }
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = section.map_err(|e| format!("is not valid PEM ({e})"))?;
        let key = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            other => {
                return Err(format!(
                    "must hold one private key block only, not a {} block",
                    kind_label(other)
                ))
            }
        };
        keys.push(key);
    }
    if keys.len() != 1 || begin_markers(pem) != 1 {
        return Err(
            "must hold exactly one PEM private key block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)".into(),
        );
    }
    let key = keys.remove(0);
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("is not a usable RSA, ECDSA (P-256, P-384) or Ed25519 key ({e})"))?;
    Ok(key)
}

/// Checks that `key` is the private key of the first certificate of `chain`.
///
/// # Errors
/// The key cannot be loaded, or belongs to another certificate.
pub fn check_key_matches(chain: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>) -> Result<(), String> {
    let signer = rustls::crypto::ring::sign::any_supported_type(key).map_err(|e| e.to_string())?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err("is not the private key of the client certificate (their public keys differ)".into())
        }
        Err(other) => Err(format!("cannot be checked against the client certificate ({other})")),
    }
}

/// The certificates of a stored `tls` block as the channel's view shows them, at `now_ms`:
/// the client certificate (the first of its chain), then every CA certificate. Certificates
/// that do not parse (they were checked on save) are left out.
pub fn describe(tls: &TlsConfig, now_ms: i64) -> Vec<CertificateInfo> {
    let mut described = Vec::new();
    if let Some(pem) = &tls.client_certificate {
        if let Some(first) = parse_certificates(pem).ok().and_then(|chain| chain.into_iter().next()) {
            described.extend(info(CertificateUse::Client, &first, now_ms));
        }
    }
    if let Some(pem) = &tls.ca_certificates {
        for certificate in parse_certificates(pem).unwrap_or_default() {
            described.extend(info(CertificateUse::Ca, &certificate, now_ms));
        }
    }
    described
}

fn info(usage: CertificateUse, der: &CertificateDer<'_>, now_ms: i64) -> Option<CertificateInfo> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after_ms = certificate.validity().not_after.timestamp().saturating_mul(1000);
    let warning_ms = i64::try_from(EXPIRY_WARNING.as_millis()).unwrap_or(i64::MAX);
    Some(CertificateInfo {
        usage,
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        not_after_ms,
        not_after: crate::store::rfc3339_ms(not_after_ms),
        expires_soon: not_after_ms <= now_ms.saturating_add(warning_ms),
    })
}

fn kind_label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        SectionKind::EchConfigList => "ECHCONFIG",
        _ => "non-certificate",
    }
}

/// How many PEM blocks the text opens (recognised kinds or not).
fn begin_markers(pem: &str) -> usize {
    pem.lines()
        .filter(|line| line.trim_start().starts_with("-----BEGIN "))
        .count()
}

/// The TLS material of one channel, ready for its client.
pub struct TlsMaterial {
    /// The client certificate chain, PEM.
    client_certificate: Option<String>,
    /// The client certificate chain and its key, PEM, as `reqwest` reads an identity.
    identity_pem: Option<Vec<u8>>,
    /// The CA bundle, PEM.
    ca_pem: Option<String>,
    /// Digest of all of it: the cache key.
    digest: [u8; 32],
}

impl TlsMaterial {
    /// The material of a stored `tls` block and the channel's stored key (read, not yet
    /// checked: that happens when a client is built from it).
    ///
    /// # Errors
    /// A client certificate without its key.
    pub fn new(tls: &TlsConfig, client_key: Option<&str>) -> Result<TlsMaterial, String> {
        let identity_pem = match (&tls.client_certificate, client_key) {
            (Some(certificate), Some(key)) => {
                let mut pem = certificate.trim_end().as_bytes().to_vec();
                pem.push(b'\n');
                pem.extend_from_slice(key.as_bytes());
                Some(pem)
            }
            (Some(_), None) => return Err("the channel has a client certificate but no client key".into()),
            (None, _) => None,
        };
        let mut hasher = Sha256::new();
        for part in [
            identity_pem.as_deref(),
            tls.ca_certificates.as_deref().map(str::as_bytes),
        ] {
            let part = part.unwrap_or_default();
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Ok(TlsMaterial {
            client_certificate: tls.client_certificate.clone(),
            identity_pem,
            ca_pem: tls.ca_certificates.clone(),
            digest: hasher.finalize().into(),
        })
    }

    /// Adds the material to a client builder: the identity, and the CA bundle as the only
    /// roots (the built-in public roots are off when a bundle is given).
    ///
    /// # Errors
    /// PEM that does not parse (checked on save, so only a channel written around the API gets
    /// here), or `reqwest` refusing the identity or a certificate.
    pub fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        if let (Some(certificate), Some(pem)) = (&self.client_certificate, &self.identity_pem) {
            parse_certificates(certificate).map_err(|e| format!("webhook.tls.clientCertificate {e}"))?;
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| format!("webhook.tls.clientKey: {e}"))?;
            builder = builder.identity(identity);
        }
        if let Some(ca) = &self.ca_pem {
            parse_certificates(ca).map_err(|e| format!("webhook.tls.caCertificates {e}"))?;
            builder = builder.tls_built_in_root_certs(false);
            let certificates = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
                .map_err(|e| format!("webhook.tls.caCertificates: {e}"))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder)
    }
}

/// The per-channel clients, by the digest of their TLS material.
#[derive(Default)]
pub struct TlsClients {
    clients: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

impl TlsClients {
    /// The client for `material`, built with `build` when there is none yet.
    ///
    /// # Errors
    /// The client cannot be built.
    pub fn get_or_build(
        &self,
        material: &TlsMaterial,
        build: impl FnOnce(&TlsMaterial) -> Result<reqwest::Client, String>,
    ) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock().expect("TLS client cache lock is never poisoned");
        if let Some(client) = clients.get(&material.digest) {
            return Ok(client.clone());
        }
        let client = build(material)?;
        if clients.len() >= CLIENT_CACHE_LIMIT {
            clients.clear();
        }
        clients.insert(material.digest, client.clone());
        Ok(client)
    }

    /// How many clients are kept.
    pub fn len(&self) -> usize {
        self.clients
            .lock()
            .expect("TLS client cache lock is never poisoned")
            .len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for TlsClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClients").field("clients", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn certificates_and_keys_are_read_and_matched() {
        let (certificate, key) = issued("a");
        let (_, other_key) = issued("b");
        let chain = parse_certificates(&certificate).unwrap();
        assert_eq!(chain.len(), 1);
        assert!(check_key_matches(&chain, &parse_private_key(&key).unwrap()).is_ok());
        let err = check_key_matches(&chain, &parse_private_key(&other_key).unwrap()).unwrap_err();
        assert!(err.contains("not the private key"), "{err}");
    }

    #[test]
    fn a_wrong_block_is_named() {
        let (certificate, key) = issued("a");
        assert!(parse_certificates("").unwrap_err().contains("no PEM CERTIFICATE"));
        let err = parse_certificates(&format!("{certificate}{key}")).unwrap_err();
        assert!(err.contains("not a PRIVATE KEY block"), "{err}");
        let err = parse_certificates("-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n")
            .unwrap_err();
        assert!(err.contains("CERTIFICATE blocks only"), "{err}");
        let err = parse_private_key(&certificate).unwrap_err();
        assert!(err.contains("not a CERTIFICATE block"), "{err}");
        let err = parse_private_key(&format!("{key}{key}")).unwrap_err();
        assert!(err.contains("exactly one"), "{err}");
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(parse_private_key(encrypted).unwrap_err().contains("encrypted"));
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_private_key(junk).unwrap_err().contains("not a usable"));
    }

    #[test]
    fn expiry_is_flagged_within_thirty_days() {
        let (certificate, _) = issued("a");
        let tls = TlsConfig {
            client_certificate: Some(certificate.clone()),
            ca_certificates: Some(certificate),
        };
        let described = describe(&tls, 0);
        assert_eq!(described.len(), 2);
        assert_eq!(described[0].usage, CertificateUse::Client);
        assert_eq!(described[0].subject, "CN=a");
        assert!(!described[0].expires_soon);
        let not_after = described[0].not_after_ms;
        let warning = EXPIRY_WARNING.as_millis() as i64;
        assert!(!describe(&tls, not_after - warning - 1)[0].expires_soon);
        assert!(describe(&tls, not_after - warning)[0].expires_soon);
        assert!(describe(&tls, not_after + 1)[1].expires_soon);
    }

    #[test]
    fn the_cache_key_follows_the_material() {
        let (certificate, key) = issued("a");
        let tls = TlsConfig {
            client_certificate: Some(certificate),
            ca_certificates: None,
        };
        let a = TlsMaterial::new(&tls, Some(&key)).unwrap();
        let b = TlsMaterial::new(&tls, Some(&key)).unwrap();
        assert_eq!(a.digest, b.digest);
        let (_, other) = issued("b");
        assert_ne!(a.digest, TlsMaterial::new(&tls, Some(&other)).unwrap().digest);
        assert!(TlsMaterial::new(&tls, None).is_err());
        let clients = TlsClients::default();
        let build = |m: &TlsMaterial| m.apply(reqwest::Client::builder())?.build().map_err(|e| e.to_string());
        clients.get_or_build(&a, build).unwrap();
        clients.get_or_build(&b, |_| panic!("the client is kept")).unwrap();
        assert_eq!(clients.len(), 1);
    }
}
