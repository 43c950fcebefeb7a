//! Key material and identifiers of the wallet's own legal entity.
//!
//! This module owns everything the wallet needs to mint and describe the
//! keys it signs with, without touching storage or HTTP. It is split along
//! its six concerns, each in its own file:
//!
//! * `pair`: generating Ed25519 and P-256 key pairs ([`KeyPair::generate`]),
//!   with the public half as a JWK and the private half as PKCS#8 DER;
//! * `jwk`: JWK thumbprints per RFC 7638 ([`jwk_thumbprint`]), and the
//!   readers of JWK members the identifier parts share;
//! * `did_key`: `did:key` in both directions ([`did_key_from_jwk`],
//!   [`jwk_from_did_key`]);
//! * `did_web`: `did:web` for a host name ([`did_web`]);
//! * `did_ebsi`: the legal-entity form of `did:ebsi` ([`did_ebsi`], with
//!   [`ebsi_environment`] validating the target environment);
//! * `certificate`: X.509 certificates, a self-signed P-256 certificate for a
//!   validated distinguished name ([`self_signed_certificate`]; the name's
//!   parser lives in `distinguished_name`) and the parsing of a certificate
//!   supplied as PEM ([`parse_certificate_pem`]).
//!
//! Every failure is a [`KeyError`] whose message is written for the API
//! caller who sent the offending input; apart from
//! [`KeyError::CertificateGeneration`] they all describe bad input.

mod certificate;
mod did_ebsi;
mod did_key;
mod did_web;
mod distinguished_name;
mod jwk;
mod pair;

pub use certificate::{parse_certificate_pem, self_signed_certificate, Certificate};
pub use did_ebsi::{did_ebsi, ebsi_environment};
pub use did_key::{did_key_from_jwk, jwk_from_did_key};
pub use did_web::did_web;
pub use jwk::jwk_thumbprint;
pub use pair::{KeyPair, KeyType};

/// Why a key, identifier or certificate operation was refused.
///
/// The messages are meant to be shown to the API caller as they are (a 400 or
/// 422 response); they never contain key material and quote the caller's
/// input only in short, truncated snippets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The subject distinguished name could not be used for a certificate.
    #[error("invalid distinguished name: {0}")]
    InvalidDistinguishedName(String),
    /// The supplied certificate could not be read.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The domain given for a did:web identifier is not a usable host name.
    #[error("invalid domain for did:web: {0}")]
    InvalidDomain(String),
    /// The JSON Web Key is malformed or of an unsupported kind.
    #[error("invalid JWK: {0}")]
    InvalidJwk(String),
    /// The did:key identifier is malformed or of an unsupported key type.
    #[error("invalid did:key: {0}")]
    InvalidDidKey(String),
    /// The EBSI environment name is not acceptable.
    #[error("invalid EBSI environment: {0}")]
    InvalidEnvironment(String),
    /// Building the certificate failed although the input was valid; this is
    /// a server-side fault, not the caller's.
    #[error("certificate generation failed: {0}")]
    CertificateGeneration(String),
}

/// A short, single-line excerpt of caller input for an error message.
fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_CHARS)
        .collect();
    if text.chars().count() > MAX_CHARS {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}
