//! The key material of a new identifier, made for a checked create body: a DID (did:key,
//! did:jwk or did:web), an X.509 certificate, or a bare JWK, each with a fresh key pair.

use serde_json::Value;

use super::{CreateIdentifier, DidType, IdentifierType, KeyAlgorithm};
use crate::domain::error::DomainError;
use crate::domain::keys::{self, KeyError, KeyPair};

/// The material made for a validated create body.
pub(super) struct Material {
    pub(super) identifier: String,
    pub(super) did_type: Option<DidType>,
    pub(super) did_environment: Option<String>,
    pub(super) key_type: Option<KeyAlgorithm>,
    pub(super) public_jwk: Option<Value>,
    pub(super) certificate_pem: Option<String>,
    pub(super) private_key: Option<Vec<u8>>,
}

fn key_error(field: &str, err: KeyError) -> DomainError {
    DomainError::invalid_field(field, err.to_string())
}

/// Fields that make no sense for the chosen type are a 422, missing required ones a 400.
fn refuse_present(present: &[(&str, bool)], why: &str) -> Result<(), DomainError> {
    match present.iter().find(|(_, is_set)| *is_set) {
        Some((field, _)) => Err(DomainError::unprocessable(field, format!("does not apply {why}"))),
        None => Ok(()),
    }
}

fn key_material(key_type: KeyAlgorithm) -> Result<(KeyPair, String), DomainError> {
    let pair = KeyPair::generate(key_type.into());
    let thumbprint = keys::jwk_thumbprint(&pair.public_jwk).map_err(DomainError::internal)?;
    Ok((pair, thumbprint))
}

pub(super) fn make_material(body: &CreateIdentifier) -> Result<Material, DomainError> {
    let has = |o: &Option<String>| o.is_some();
    match body.identifier_type {
        IdentifierType::Did => {
            let did_type = body
                .did_type
                .ok_or_else(|| DomainError::invalid_field("didType", "is required for identifierType DID"))?;
            refuse_present(
                &[
                    ("subject", has(&body.subject)),
                    ("certificatePem", has(&body.certificate_pem)),
                ],
                "to a DID",
            )?;
            match did_type {
                DidType::Web => {
                    refuse_present(
                        &[
                            ("keyType", body.key_type.is_some()),
                            ("didEnvironment", has(&body.did_environment)),
                        ],
                        "to did:web",
                    )?;
                    let domain = body
                        .domain
                        .as_deref()
                        .ok_or_else(|| DomainError::invalid_field("domain", "is required for did:web"))?;
                    Ok(Material {
                        identifier: keys::did_web(domain).map_err(|e| key_error("domain", e))?,
                        did_type: Some(did_type),
                        did_environment: None,
                        key_type: None,
                        public_jwk: None,
                        certificate_pem: None,
                        private_key: None,
                    })
                }
                DidType::Key => {
                    refuse_present(
                        &[
                            ("domain", has(&body.domain)),
                            ("didEnvironment", has(&body.did_environment)),
                        ],
                        "to did:key",
                    )?;
                    let key_type = body.key_type.unwrap_or(KeyAlgorithm::Ed25519);
                    let (pair, _) = key_material(key_type)?;
                    Ok(Material {
                        identifier: keys::did_key_from_jwk(&pair.public_jwk).map_err(DomainError::internal)?,
                        did_type: Some(did_type),
                        did_environment: None,
                        key_type: Some(key_type),
                        public_jwk: Some(pair.public_jwk),
                        certificate_pem: None,
                        private_key: Some(pair.private_pkcs8_der),
                    })
                }
                DidType::Ebsi => {
                    refuse_present(&[("domain", has(&body.domain))], "to did:ebsi")?;
                    let environment = body
                        .did_environment
                        .as_deref()
                        .ok_or_else(|| DomainError::invalid_field("didEnvironment", "is required for did:ebsi"))?;
                    let environment =
                        keys::ebsi_environment(environment).map_err(|e| key_error("didEnvironment", e))?;
                    let key_type = body.key_type.unwrap_or(KeyAlgorithm::P256);
                    let (pair, _) = key_material(key_type)?;
                    Ok(Material {
                        identifier: keys::did_ebsi(),
                        did_type: Some(did_type),
                        did_environment: Some(environment),
                        key_type: Some(key_type),
                        public_jwk: Some(pair.public_jwk),
                        certificate_pem: None,
                        private_key: Some(pair.private_pkcs8_der),
                    })
                }
            }
        }
        IdentifierType::Jwk => {
            refuse_present(
                &[
                    ("didType", body.did_type.is_some()),
                    ("domain", has(&body.domain)),
                    ("didEnvironment", has(&body.did_environment)),
                    ("subject", has(&body.subject)),
                    ("certificatePem", has(&body.certificate_pem)),
                ],
                "to a JWK",
            )?;
            let key_type = body.key_type.unwrap_or(KeyAlgorithm::Ed25519);
            let (pair, thumbprint) = key_material(key_type)?;
            Ok(Material {
                identifier: thumbprint,
                did_type: None,
                did_environment: None,
                key_type: Some(key_type),
                public_jwk: Some(pair.public_jwk),
                certificate_pem: None,
                private_key: Some(pair.private_pkcs8_der),
            })
        }
        IdentifierType::X509 => {
            refuse_present(
                &[
                    ("didType", body.did_type.is_some()),
                    ("domain", has(&body.domain)),
                    ("didEnvironment", has(&body.did_environment)),
                    ("keyType", body.key_type.is_some()),
                ],
                "to an X509 identifier",
            )?;
            let certificate = match (&body.subject, &body.certificate_pem) {
                (Some(_), Some(_)) => {
                    return Err(DomainError::unprocessable(
                        "certificatePem",
                        "give either subject (to generate a certificate) or certificatePem, not both",
                    ))
                }
                (None, None) => {
                    return Err(DomainError::invalid_field(
                        "subject",
                        "subject or certificatePem is required for identifierType X509",
                    ))
                }
                (Some(subject), None) => {
                    if subject.len() > 1024 {
                        return Err(DomainError::invalid_field("subject", "must be at most 1024 characters"));
                    }
                    keys::self_signed_certificate(subject).map_err(|e| key_error("subject", e))?
                }
                (None, Some(pem)) => {
                    if pem.len() > 16 * 1024 {
                        return Err(DomainError::invalid_field(
                            "certificatePem",
                            "must be at most 16384 characters",
                        ));
                    }
                    keys::parse_certificate_pem(pem).map_err(|e| key_error("certificatePem", e))?
                }
            };
            Ok(Material {
                identifier: certificate.subject,
                did_type: None,
                did_environment: None,
                key_type: None,
                public_jwk: None,
                certificate_pem: Some(certificate.pem),
                private_key: certificate.private_pkcs8_der,
            })
        }
    }
}
