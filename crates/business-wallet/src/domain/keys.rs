//! Key material and identifiers of the wallet's own legal entity.
//!
//! This module owns everything the wallet needs to mint and describe the
//! keys it signs with, without touching storage or HTTP:
//!
//! * generating Ed25519 and P-256 key pairs ([`KeyPair::generate`]), with the
//!   public half as a JWK and the private half as PKCS#8 DER;
//! * JWK thumbprints per RFC 7638 ([`jwk_thumbprint`]);
//! * decentralised identifiers: `did:key` in both directions
//!   ([`did_key_from_jwk`], [`jwk_from_did_key`]), `did:web`
//!   ([`did_web`]) and the legal-entity form of `did:ebsi` ([`did_ebsi`],
//!   with [`ebsi_environment`] validating the target environment);
//! * X.509 certificates: a self-signed P-256 certificate for a validated
//!   distinguished name ([`self_signed_certificate`]) and the parsing of a
//!   certificate supplied as PEM ([`parse_certificate_pem`]).
//!
//! Every failure is a [`KeyError`] whose message is written for the API
//! caller who sent the offending input; apart from
//! [`KeyError::CertificateGeneration`] they all describe bad input.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// Multicodec code of an Ed25519 public key (`ed25519-pub`).
const MULTICODEC_ED25519_PUB: u64 = 0xed;
/// Multicodec code of a compressed P-256 public key (`p256-pub`).
const MULTICODEC_P256_PUB: u64 = 0x1200;
/// Length of an Ed25519 public key.
const ED25519_KEY_LEN: usize = 32;
/// Length of one P-256 coordinate.
const P256_COORDINATE_LEN: usize = 32;
/// Length of a SEC1-compressed P-256 point.
const P256_COMPRESSED_LEN: usize = 33;
/// Longest did:key accepted for decoding; real P-256 and Ed25519 keys need
/// about 60 characters, so this only keeps absurd input away from base58.
const MAX_DID_KEY_LEN: usize = 256;

/// Longest host name allowed by DNS.
const MAX_HOST_LEN: usize = 253;
/// Longest single DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Longest input accepted by [`did_web`], host plus path.
const MAX_DID_WEB_INPUT_LEN: usize = 1024;

/// Longest EBSI environment name.
const MAX_ENVIRONMENT_LEN: usize = 32;
/// Leading byte of a legal-entity did:ebsi subject identifier.
const EBSI_LEGAL_ENTITY_VERSION: u8 = 0x01;
/// Number of random bytes in a legal-entity did:ebsi subject identifier.
const EBSI_RANDOM_LEN: usize = 16;

/// Longest distinguished name accepted by [`self_signed_certificate`].
const MAX_DN_LEN: usize = 1024;
/// Longest PEM text accepted by [`parse_certificate_pem`].
const MAX_PEM_LEN: usize = 64 * 1024;
/// Validity of a generated certificate.
const CERTIFICATE_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

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

// ---------------------------------------------------------------------------
// Key pairs
// ---------------------------------------------------------------------------

/// Algorithm of a generated key pair.
///
/// Serialised as `"Ed25519"` or `"P-256"`, the names JOSE uses for the curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    /// EdDSA over Curve25519 (JWK `kty` `OKP`, JWS `alg` `EdDSA`).
    #[serde(rename = "Ed25519")]
    Ed25519,
    /// ECDSA over NIST P-256 (JWK `kty` `EC`, JWS `alg` `ES256`).
    #[serde(rename = "P-256")]
    P256,
}

impl KeyType {
    /// The curve name as it appears in a JWK `crv` member and in serde.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "Ed25519",
            KeyType::P256 => "P-256",
        }
    }

    /// The JWS `alg` value for signatures made with this key type.
    pub fn jws_algorithm(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "EdDSA",
            KeyType::P256 => "ES256",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly generated key pair.
///
/// `Debug` leaves the private key out, so a key pair can be logged safely.
#[derive(Clone)]
pub struct KeyPair {
    /// Algorithm of the key pair.
    pub key_type: KeyType,
    /// Public key as a JWK holding public members only: `{kty:"OKP",
    /// crv:"Ed25519", x}` or `{kty:"EC", crv:"P-256", x, y}`, the coordinates
    /// in unpadded base64url.
    pub public_jwk: Value,
    /// Private key as PKCS#8 DER (for Ed25519 the v2 form, which also
    /// carries the public key).
    pub private_pkcs8_der: Vec<u8>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("key_type", &self.key_type)
            .field("public_jwk", &self.public_jwk)
            .field("private_pkcs8_der", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    /// Generates a new key pair of the given type from the operating
    /// system's random number generator.
    pub fn generate(key_type: KeyType) -> KeyPair {
        match key_type {
            KeyType::Ed25519 => {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;

                let signing_key = ed25519_dalek::SigningKey::generate(&mut OsRng);
                let public_jwk = ed25519_jwk(signing_key.verifying_key().as_bytes());
                let private_pkcs8_der = signing_key
                    .to_pkcs8_der()
                    .expect("encoding an Ed25519 key as PKCS#8 cannot fail")
                    .as_bytes()
                    .to_vec();
                KeyPair {
                    key_type,
                    public_jwk,
                    private_pkcs8_der,
                }
            }
            KeyType::P256 => {
                use p256::pkcs8::EncodePrivateKey as _;

                let secret_key = p256::SecretKey::random(&mut OsRng);
                let public_jwk = p256_jwk(&secret_key.public_key());
                let private_pkcs8_der = secret_key
                    .to_pkcs8_der()
                    .expect("encoding a P-256 key as PKCS#8 cannot fail")
                    .as_bytes()
                    .to_vec();
                KeyPair {
                    key_type,
                    public_jwk,
                    private_pkcs8_der,
                }
            }
        }
    }
}

/// Public JWK of an Ed25519 key given as its 32 raw bytes.
fn ed25519_jwk(public_key: &[u8]) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public_key),
    })
}

/// Public JWK of a P-256 key.
fn p256_jwk(public_key: &p256::PublicKey) -> Value {
    let point = public_key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        unreachable!("an uncompressed point of a valid public key has both coordinates")
    };
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    })
}

// ---------------------------------------------------------------------------
// JWK thumbprint
// ---------------------------------------------------------------------------

/// Computes the RFC 7638 thumbprint of a JWK.
///
/// The required members of the key type (`EC`: `crv`, `kty`, `x`, `y`;
/// `OKP`: `crv`, `kty`, `x`; `RSA`: `e`, `kty`, `n`) are written as JSON in
/// that lexicographic order without whitespace, hashed with SHA-256, and the
/// digest is returned as unpadded base64url. Other members, private ones
/// included, do not influence the result.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, KeyError> {
    let object = jwk_object(jwk)?;
    let kty = jwk_str(object, "kty")?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        other => {
            return Err(KeyError::InvalidJwk(format!(
                "unsupported key type \"{}\" (expected EC, OKP or RSA)",
                snippet(other)
            )))
        }
    };

    let mut canonical = String::from("{");
    for (index, name) in members.iter().enumerate() {
        if index > 0 {
            canonical.push(',');
        }
        let value = jwk_str(object, name)?;
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&serde_json::to_string(value).expect("serialising a string to JSON cannot fail"));
    }
    canonical.push('}');

    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The JWK as a JSON object.
fn jwk_object(jwk: &Value) -> Result<&Map<String, Value>, KeyError> {
    jwk.as_object()
        .ok_or_else(|| KeyError::InvalidJwk("a JWK must be a JSON object".to_owned()))
}

/// A required, non-empty string member of a JWK.
fn jwk_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, KeyError> {
    match object.get(name) {
        None => Err(KeyError::InvalidJwk(format!("the \"{name}\" member is missing"))),
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        Some(Value::String(_)) => Err(KeyError::InvalidJwk(format!("the \"{name}\" member must not be empty"))),
        Some(_) => Err(KeyError::InvalidJwk(format!("the \"{name}\" member must be a string"))),
    }
}

/// A required base64url (unpadded) member of a JWK, decoded, of exactly
/// `expected_len` bytes.
fn jwk_bytes(object: &Map<String, Value>, name: &str, expected_len: usize) -> Result<Vec<u8>, KeyError> {
    let encoded = jwk_str(object, name)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| KeyError::InvalidJwk(format!("the \"{name}\" member is not unpadded base64url")))?;
    if bytes.len() != expected_len {
        return Err(KeyError::InvalidJwk(format!(
            "the \"{name}\" member must encode {expected_len} bytes, not {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// did:key
// ---------------------------------------------------------------------------

/// Derives the `did:key` identifier of a public JWK.
///
/// The identifier is `did:key:` followed by the multibase base58btc encoding
/// (`z` prefix) of the multicodec prefix and the raw public key: `0xed 0x01`
/// and the 32 key bytes for Ed25519, `0x80 0x24` and the 33-byte compressed
/// SEC1 point for P-256. The key must be a valid point on its curve. Only
/// the public members are read; a private `d` member is ignored.
pub fn did_key_from_jwk(jwk: &Value) -> Result<String, KeyError> {
    let object = jwk_object(jwk)?;
    let kty = jwk_str(object, "kty")?;
    let crv = jwk_str(object, "crv")?;
    let mut bytes = Vec::with_capacity(2 + P256_COMPRESSED_LEN);
    match (kty, crv) {
        ("OKP", "Ed25519") => {
            let x = jwk_bytes(object, "x", ED25519_KEY_LEN)?;
            let raw: [u8; ED25519_KEY_LEN] = x.as_slice().try_into().expect("length checked");
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map_err(|_| KeyError::InvalidJwk("\"x\" is not a valid Ed25519 public key".to_owned()))?;
            write_varint(&mut bytes, MULTICODEC_ED25519_PUB);
            bytes.extend_from_slice(&raw);
        }
        ("EC", "P-256") => {
            let x = jwk_bytes(object, "x", P256_COORDINATE_LEN)?;
            let y = jwk_bytes(object, "y", P256_COORDINATE_LEN)?;
            let mut sec1 = Vec::with_capacity(1 + 2 * P256_COORDINATE_LEN);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let public_key = p256::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| KeyError::InvalidJwk("\"x\" and \"y\" are not a point on P-256".to_owned()))?;
            write_varint(&mut bytes, MULTICODEC_P256_PUB);
            bytes.extend_from_slice(public_key.to_encoded_point(true).as_bytes());
        }
        ("OKP", _) | ("EC", _) => {
            return Err(KeyError::InvalidJwk(format!(
                "unsupported curve \"{}\" for key type {kty} (expected Ed25519 or P-256)",
                snippet(crv)
            )))
        }
        _ => {
            return Err(KeyError::InvalidJwk(format!(
                "unsupported key type \"{}\" (expected OKP or EC)",
                snippet(kty)
            )))
        }
    }
    Ok(format!("did:key:z{}", bs58::encode(bytes).into_string()))
}

/// Decodes a `did:key` identifier back to the public JWK it stands for.
///
/// This is the inverse of [`did_key_from_jwk`]: Ed25519 and P-256 keys are
/// supported, and the key must be a valid point on its curve. The argument
/// must be the bare DID, without a `#fragment` or other DID URL parts.
pub fn jwk_from_did_key(did: &str) -> Result<Value, KeyError> {
    if did.len() > MAX_DID_KEY_LEN {
        return Err(KeyError::InvalidDidKey(format!(
            "longer than {MAX_DID_KEY_LEN} characters"
        )));
    }
    let identifier = did
        .strip_prefix("did:key:")
        .ok_or_else(|| KeyError::InvalidDidKey("must start with \"did:key:\"".to_owned()))?;
    let encoded = identifier.strip_prefix('z').ok_or_else(|| {
        KeyError::InvalidDidKey("the key must be multibase base58btc, starting with \"z\"".to_owned())
    })?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| KeyError::InvalidDidKey("the key is not valid base58btc".to_owned()))?;
    let (codec, key) = read_varint(&bytes)
        .ok_or_else(|| KeyError::InvalidDidKey("the key does not start with a multicodec prefix".to_owned()))?;

    match codec {
        MULTICODEC_ED25519_PUB => {
            let raw: [u8; ED25519_KEY_LEN] = key.try_into().map_err(|_| {
                KeyError::InvalidDidKey(format!(
                    "an Ed25519 key must be {ED25519_KEY_LEN} bytes, not {}",
                    key.len()
                ))
            })?;
            ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map_err(|_| KeyError::InvalidDidKey("not a valid Ed25519 public key".to_owned()))?;
            Ok(ed25519_jwk(&raw))
        }
        MULTICODEC_P256_PUB => {
            if key.len() != P256_COMPRESSED_LEN {
                return Err(KeyError::InvalidDidKey(format!(
                    "a P-256 key must be a {P256_COMPRESSED_LEN}-byte compressed point, not {} bytes",
                    key.len()
                )));
            }
            let public_key = p256::PublicKey::from_sec1_bytes(key)
                .map_err(|_| KeyError::InvalidDidKey("not a valid P-256 public key".to_owned()))?;
            Ok(p256_jwk(&public_key))
        }
        other => Err(KeyError::InvalidDidKey(format!(
            "unsupported multicodec key type 0x{other:x} (expected Ed25519 or P-256)"
        ))),
    }
}

/// Appends `value` as an unsigned LEB128 varint, as multicodec prefixes are
/// written.
fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a minimally encoded unsigned varint of at most 9 bytes from the
/// start of `bytes`, returning the value and the remaining bytes.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            // A trailing zero byte would make a second spelling of the value.
            if byte == 0 && index > 0 {
                return None;
            }
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// did:web
// ---------------------------------------------------------------------------

/// Builds the `did:web` identifier of a domain.
///
/// The input is a host name, optionally followed by `:port` and by `/`
/// separated path segments, for example `acme.example`, `localhost:8443` or
/// `acme.example/users/alice`. The host is lowercased and must be a DNS
/// name (at most 253 characters, labels of 1 to 63 letters, digits or
/// hyphens, no hyphen at either end; internationalised names in their
/// `xn--` form). The port is written as `%3A` and the path segments, each
/// made of letters, digits, `.`, `-` and `_`, are joined with `:`. A single
/// trailing `/` is ignored. Scheme prefixes such as `https://`, whitespace
/// and empty input are refused.
pub fn did_web(domain: &str) -> Result<String, KeyError> {
    let invalid = |message: &str| KeyError::InvalidDomain(message.to_owned());

    if domain.is_empty() {
        return Err(invalid("the domain must not be empty"));
    }
    if domain.len() > MAX_DID_WEB_INPUT_LEN {
        return Err(KeyError::InvalidDomain(format!(
            "longer than {MAX_DID_WEB_INPUT_LEN} characters"
        )));
    }
    if domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the domain must not contain spaces or control characters"));
    }
    if domain.contains("://") {
        return Err(invalid("give the host name only, without a scheme such as https://"));
    }
    if domain.starts_with("did:") {
        return Err(invalid("give a host name, not a DID"));
    }

    let (authority, path) = match domain.split_once('/') {
        Some((authority, path)) => (authority, path.strip_suffix('/').unwrap_or(path)),
        None => (domain, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };

    let host = host.to_ascii_lowercase();
    validate_host(&host)?;

    let mut did = format!("did:web:{host}");
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(invalid("the port must be a number from 1 to 65535"));
        }
        did.push_str("%3A");
        did.push_str(port);
    }
    if !path.is_empty() {
        for segment in path.split('/') {
            validate_path_segment(segment)?;
            did.push(':');
            did.push_str(segment);
        }
    }
    Ok(did)
}

/// Checks a lowercased host name against the DNS syntax rules.
fn validate_host(host: &str) -> Result<(), KeyError> {
    if host.is_empty() {
        return Err(KeyError::InvalidDomain("the host name must not be empty".to_owned()));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(KeyError::InvalidDomain(format!(
            "the host name is longer than {MAX_HOST_LEN} characters"
        )));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(KeyError::InvalidDomain(
                "the host name has an empty label (leading, trailing or double dot)".to_owned(),
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" is longer than {MAX_LABEL_LEN} characters",
                snippet(label)
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" may only contain letters, digits and hyphens \
                 (use the xn-- form for internationalised names)",
                snippet(label)
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(KeyError::InvalidDomain(format!(
                "the label \"{}\" must not start or end with a hyphen",
                snippet(label)
            )));
        }
    }
    Ok(())
}

/// Checks one path segment of a did:web domain.
fn validate_path_segment(segment: &str) -> Result<(), KeyError> {
    if segment.is_empty() {
        return Err(KeyError::InvalidDomain("the path has an empty segment".to_owned()));
    }
    if segment == "." || segment == ".." {
        return Err(KeyError::InvalidDomain(
            "the path must not contain \".\" or \"..\" segments".to_owned(),
        ));
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(KeyError::InvalidDomain(format!(
            "the path segment \"{}\" may only contain letters, digits, '.', '-' and '_'",
            snippet(segment)
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// did:ebsi
// ---------------------------------------------------------------------------

/// Generates a new legal-entity `did:ebsi` identifier.
///
/// The identifier is `did:ebsi:` followed by the multibase base58btc encoding
/// (`z` prefix) of the version byte `0x01` and 16 random bytes. Which EBSI
/// environment it is registered in is kept apart; see [`ebsi_environment`].
pub fn did_ebsi() -> String {
    let mut bytes = [0u8; 1 + EBSI_RANDOM_LEN];
    bytes[0] = EBSI_LEGAL_ENTITY_VERSION;
    OsRng.fill_bytes(&mut bytes[1..]);
    format!("did:ebsi:z{}", bs58::encode(bytes).into_string())
}

/// Validates the name of an EBSI environment such as `pilot`,
/// `conformance` or `production`, returning it unchanged.
///
/// Names of 1 to 32 lowercase ASCII letters, digits and hyphens are accepted.
pub fn ebsi_environment(env: &str) -> Result<String, KeyError> {
    if env.is_empty() {
        return Err(KeyError::InvalidEnvironment(
            "the environment name must not be empty".to_owned(),
        ));
    }
    if env.len() > MAX_ENVIRONMENT_LEN {
        return Err(KeyError::InvalidEnvironment(format!(
            "the environment name is longer than {MAX_ENVIRONMENT_LEN} characters"
        )));
    }
    if !env
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(KeyError::InvalidEnvironment(format!(
            "\"{}\" may only contain lowercase letters, digits and hyphens",
            snippet(env)
        )));
    }
    Ok(env.to_owned())
}

// ---------------------------------------------------------------------------
// X.509
// ---------------------------------------------------------------------------

/// An X.509 certificate as the wallet keeps it.
///
/// `Debug` leaves the private key out.
#[derive(Clone)]
pub struct Certificate {
    /// The certificate as a single PEM `CERTIFICATE` block.
    pub pem: String,
    /// The subject name exactly as read back from the certificate, in the
    /// `CN=..., O=..., C=...` rendering of the X.509 parser.
    pub subject: String,
    /// The private key as PKCS#8 DER: `Some` for a certificate generated by
    /// the wallet, `None` for one supplied from outside.
    pub private_pkcs8_der: Option<Vec<u8>>,
    /// End of the validity period, RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub not_after: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("pem", &self.pem)
            .field("subject", &self.subject)
            .field(
                "private_pkcs8_der",
                &self.private_pkcs8_der.as_ref().map(|_| "<redacted>"),
            )
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Generates a P-256 key and a self-signed certificate for it, valid for one
/// year from now, whose subject (and issuer) is `subject_dn`.
///
/// The distinguished name is written like `CN=Acme Issuer,O=Acme B.V.,C=NL`.
/// Accepted attributes are `CN`, `O`, `OU`, `C`, `L` and `ST` (names are
/// case-insensitive), each at most once; `CN` is required. Values must not be
/// empty and must stay within the RFC 5280 upper bounds (64 characters for
/// `CN`, `O` and `OU`, 128 for `L` and `ST`); `C` must be a two-letter
/// country code and is uppercased. Spaces around names and values are
/// ignored. A backslash escapes one of `, + " \ < > ; = #` or a space, or
/// introduces two hex digits for a byte of UTF-8; an unescaped `+` or `;`
/// is refused. The whole name may be at most 1024 characters.
///
/// The returned `subject` is read back from the generated certificate, so it
/// is exactly what the certificate says.
pub fn self_signed_certificate(subject_dn: &str) -> Result<Certificate, KeyError> {
    let attributes = parse_distinguished_name(subject_dn)?;

    let mut distinguished_name = rcgen::DistinguishedName::new();
    for (attribute, value) in attributes {
        let value = match attribute {
            DnAttribute::Country => {
                rcgen::DnValue::PrintableString(rcgen::PrintableString::try_from(value.as_str()).map_err(|_| {
                    KeyError::InvalidDistinguishedName("C must be a two-letter country code".to_owned())
                })?)
            }
            _ => rcgen::DnValue::Utf8String(value),
        };
        distinguished_name.push(attribute.dn_type(), value);
    }

    let generation = |e: rcgen::Error| KeyError::CertificateGeneration(e.to_string());
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generation)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generation)?;
    params.distinguished_name = distinguished_name;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| KeyError::CertificateGeneration("the system clock is before 1970".to_owned()))?;
    // Whole seconds: X.509 validity times have no fractions.
    let not_before = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(now.as_secs());
    params.not_before = not_before;
    params.not_after = not_before + CERTIFICATE_VALIDITY;

    // A random positive 128-bit serial number whose top byte is never zero,
    // so it always encodes in the same 16 bytes.
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];

    let certificate = params.self_signed(&key_pair).map_err(generation)?;
    let der = certificate.der();
    let (subject, not_after) = read_certificate_der(der)
        .map_err(|e| KeyError::CertificateGeneration(format!("the generated certificate does not parse: {e}")))?;

    Ok(Certificate {
        pem: certificate_pem(der),
        subject,
        private_pkcs8_der: Some(key_pair.serialize_der()),
        not_after,
    })
}

/// Parses a certificate supplied as PEM text.
///
/// The text must hold exactly one `CERTIFICATE` block (text around it is
/// ignored) whose content is a complete DER certificate. Expired or not yet
/// valid certificates are accepted; this only reads them. The returned
/// `pem` is the block re-encoded in the canonical form, and
/// `private_pkcs8_der` is `None`.
pub fn parse_certificate_pem(pem: &str) -> Result<Certificate, KeyError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(KeyError::InvalidCertificate(format!(
            "the PEM text is larger than {} KiB",
            MAX_PEM_LEN / 1024
        )));
    }
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes());
    let block = match blocks.next() {
        None => {
            return Err(KeyError::InvalidCertificate(
                "no PEM block (-----BEGIN CERTIFICATE-----) found".to_owned(),
            ))
        }
        Some(Err(_)) => return Err(KeyError::InvalidCertificate("the PEM block is malformed".to_owned())),
        Some(Ok(block)) => block,
    };
    if block.label != "CERTIFICATE" {
        return Err(KeyError::InvalidCertificate(format!(
            "expected a CERTIFICATE block, found \"{}\"",
            snippet(&block.label)
        )));
    }
    if blocks.next().is_some() {
        return Err(KeyError::InvalidCertificate(
            "expected exactly one PEM block, found more".to_owned(),
        ));
    }

    let (subject, not_after) = read_certificate_der(&block.contents)?;
    Ok(Certificate {
        pem: certificate_pem(&block.contents),
        subject,
        private_pkcs8_der: None,
        not_after,
    })
}

/// Reads the subject and the end of validity from a DER certificate.
fn read_certificate_der(der: &[u8]) -> Result<(String, String), KeyError> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| KeyError::InvalidCertificate(format!("not a valid X.509 certificate ({e})")))?;
    if !rest.is_empty() {
        return Err(KeyError::InvalidCertificate(
            "unexpected data after the certificate".to_owned(),
        ));
    }
    let subject = certificate.subject().to_string();
    let not_after = rfc3339_utc(certificate.validity().not_after.timestamp());
    Ok((subject, not_after))
}

/// Encodes DER bytes as a PEM `CERTIFICATE` block with 64-character lines.
fn certificate_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::with_capacity(encoded.len() + encoded.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 output is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Formats seconds since the Unix epoch as an RFC 3339 UTC timestamp.
fn rfc3339_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let seconds_of_day = timestamp.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day), counting in 400-year eras of 146 097 days.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An attribute accepted in a certificate subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DnAttribute {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    Locality,
    StateOrProvince,
}

impl DnAttribute {
    /// The attribute for a short name such as `CN`, in any letter case.
    fn from_short_name(name: &str) -> Option<Self> {
        let attribute = match name.to_ascii_uppercase().as_str() {
            "CN" => DnAttribute::CommonName,
            "O" => DnAttribute::Organization,
            "OU" => DnAttribute::OrganizationalUnit,
            "C" => DnAttribute::Country,
            "L" => DnAttribute::Locality,
            "ST" => DnAttribute::StateOrProvince,
            _ => return None,
        };
        Some(attribute)
    }

    /// The canonical short name.
    fn short_name(self) -> &'static str {
        match self {
            DnAttribute::CommonName => "CN",
            DnAttribute::Organization => "O",
            DnAttribute::OrganizationalUnit => "OU",
            DnAttribute::Country => "C",
            DnAttribute::Locality => "L",
            DnAttribute::StateOrProvince => "ST",
        }
    }

    /// Upper bound on the value length in characters (RFC 5280, appendix A).
    fn max_len(self) -> usize {
        match self {
            DnAttribute::CommonName | DnAttribute::Organization | DnAttribute::OrganizationalUnit => 64,
            DnAttribute::Country => 2,
            DnAttribute::Locality | DnAttribute::StateOrProvince => 128,
        }
    }

    /// The matching certificate generator attribute type.
    fn dn_type(self) -> rcgen::DnType {
        match self {
            DnAttribute::CommonName => rcgen::DnType::CommonName,
            DnAttribute::Organization => rcgen::DnType::OrganizationName,
            DnAttribute::OrganizationalUnit => rcgen::DnType::OrganizationalUnitName,
            DnAttribute::Country => rcgen::DnType::CountryName,
            DnAttribute::Locality => rcgen::DnType::LocalityName,
            DnAttribute::StateOrProvince => rcgen::DnType::StateOrProvinceName,
        }
    }
}

/// Splits and validates a textual distinguished name into its attributes,
/// in the order given.
fn parse_distinguished_name(dn: &str) -> Result<Vec<(DnAttribute, String)>, KeyError> {
    let invalid = |message: String| KeyError::InvalidDistinguishedName(message);

    if dn.chars().count() > MAX_DN_LEN {
        return Err(invalid(format!("longer than {MAX_DN_LEN} characters")));
    }
    if dn.trim().is_empty() {
        return Err(invalid("the name must not be empty".to_owned()));
    }

    let mut attributes: Vec<(DnAttribute, String)> = Vec::new();
    for component in split_components(dn)? {
        let RawComponent { name, value } = component;
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("every component must look like NAME=value".to_owned()));
        }
        let attribute = DnAttribute::from_short_name(name).ok_or_else(|| {
            invalid(format!(
                "unsupported attribute \"{}\" (allowed: CN, O, OU, C, L, ST)",
                snippet(name)
            ))
        })?;
        let label = attribute.short_name();
        if attributes.iter().any(|(seen, _)| *seen == attribute) {
            return Err(invalid(format!("{label} may appear only once")));
        }

        let mut value = String::from_utf8(value)
            .map_err(|_| invalid(format!("the escaped bytes in {label} are not valid UTF-8")))?;
        if value.is_empty() {
            return Err(invalid(format!("{label} must not be empty")));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(format!("{label} must not contain control characters")));
        }
        if attribute == DnAttribute::Country {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid("C must be a two-letter country code such as NL".to_owned()));
            }
            value.make_ascii_uppercase();
        }
        let max_len = attribute.max_len();
        if value.chars().count() > max_len {
            return Err(invalid(format!("{label} is longer than {max_len} characters")));
        }
        attributes.push((attribute, value));
    }

    if !attributes
        .iter()
        .any(|(attribute, _)| *attribute == DnAttribute::CommonName)
    {
        return Err(invalid("a common name (CN) is required".to_owned()));
    }
    Ok(attributes)
}

/// One `name=value` component of a distinguished name, the value already
/// unescaped (as bytes, since hex escapes may form UTF-8 sequences) and
/// trimmed of unescaped surrounding spaces.
struct RawComponent {
    name: String,
    value: Vec<u8>,
}

/// Splits a distinguished name at unescaped commas and resolves escapes.
fn split_components(dn: &str) -> Result<Vec<RawComponent>, KeyError> {
    let invalid = |message: &str| KeyError::InvalidDistinguishedName(message.to_owned());

    let mut components = Vec::new();
    let mut name = String::new();
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    // Length of `value` up to its last character that is not an unescaped
    // space: everything after it is trailing padding.
    let mut significant_len = 0;
    let mut chars = dn.chars().peekable();

    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if !in_value {
                    return Err(invalid("attribute names must not contain a backslash"));
                }
                let escaped = chars
                    .next()
                    .ok_or_else(|| invalid("the name ends with a lone backslash"))?;
                if matches!(escaped, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' | '#' | ' ') {
                    value.push(escaped as u8);
                } else if let (Some(high), Some(low)) =
                    (escaped.to_digit(16), chars.peek().and_then(|next| next.to_digit(16)))
                {
                    chars.next();
                    value.push((high * 16 + low) as u8);
                } else {
                    return Err(invalid(
                        "a backslash must be followed by one of , + \" \\ < > ; = # space, \
                         or by two hex digits",
                    ));
                }
                significant_len = value.len();
            }
            ',' => {
                if !in_value {
                    return Err(invalid(
                        "every component must look like NAME=value (empty component or \
                         missing '=')",
                    ));
                }
                value.truncate(significant_len);
                components.push(RawComponent {
                    name: std::mem::take(&mut name),
                    value: std::mem::take(&mut value),
                });
                in_value = false;
                significant_len = 0;
            }
            '=' if !in_value => in_value = true,
            '+' if in_value => {
                return Err(invalid(
                    "multi-valued names are not supported; write a literal '+' as \\+",
                ))
            }
            ';' if in_value => return Err(invalid("separate components with ',' and write a literal ';' as \\;")),
            _ if in_value => {
                if c == ' ' && value.is_empty() {
                    continue;
                }
                let mut buffer = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                if c != ' ' {
                    significant_len = value.len();
                }
            }
            _ => name.push(c),
        }
    }

    if !in_value {
        return Err(invalid(
            "every component must look like NAME=value (empty component or missing '=')",
        ));
    }
    value.truncate(significant_len);
    components.push(RawComponent { name, value });
    Ok(components)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638, section 3.1: the example RSA key and its thumbprint.
    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_rejects_incomplete_or_unknown_keys() {
        assert!(matches!(
            jwk_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "AA"})),
            Err(KeyError::InvalidJwk(_))
        ));
        assert!(matches!(
            jwk_thumbprint(&json!({"kty": "oct", "k": "AA"})),
            Err(KeyError::InvalidJwk(_))
        ));
        assert!(matches!(
            jwk_thumbprint(&json!(["not", "an", "object"])),
            Err(KeyError::InvalidJwk(_))
        ));
        assert!(matches!(
            jwk_thumbprint(&json!({"kty": "OKP", "crv": "Ed25519", "x": 5})),
            Err(KeyError::InvalidJwk(_))
        ));
    }

    /// The did:key example of the method specification and its JWK.
    #[test]
    fn did_key_matches_ed25519_spec_example() {
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY",
        });
        let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
        assert_eq!(did_key_from_jwk(&jwk).unwrap(), did);
        assert_eq!(jwk_from_did_key(did).unwrap(), jwk);
    }

    /// A second Ed25519 vector of the did:key test suite.
    #[test]
    fn did_key_matches_ed25519_test_vector() {
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik",
        });
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        assert_eq!(did_key_from_jwk(&jwk).unwrap(), did);
        assert_eq!(jwk_from_did_key(did).unwrap(), jwk);
    }

    /// A P-256 vector of the did:key test suite.
    #[test]
    fn did_key_matches_p256_test_vector() {
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
            "y": "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
        });
        let did = "did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv";
        assert_eq!(did_key_from_jwk(&jwk).unwrap(), did);
        assert_eq!(jwk_from_did_key(did).unwrap(), jwk);
    }

    fn check_generated(key_type: KeyType, did_prefix: &str) {
        let pair = KeyPair::generate(key_type);
        assert_eq!(pair.key_type, key_type);
        assert!(pair.public_jwk.get("d").is_none(), "{}", pair.public_jwk);
        assert_eq!(pair.public_jwk["crv"], key_type.as_str());
        assert!(!pair.private_pkcs8_der.is_empty());

        let did = did_key_from_jwk(&pair.public_jwk).unwrap();
        assert!(did.starts_with(did_prefix), "{did}");
        let decoded = jwk_from_did_key(&did).unwrap();
        assert_eq!(decoded, pair.public_jwk);
        assert!(decoded.get("d").is_none());

        let thumbprint = jwk_thumbprint(&pair.public_jwk).unwrap();
        assert_eq!(jwk_thumbprint(&decoded).unwrap(), thumbprint);
        assert_eq!(thumbprint.len(), 43);

        let debug = format!("{pair:?}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn generated_ed25519_key_round_trips() {
        check_generated(KeyType::Ed25519, "did:key:z6Mk");
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let pair = KeyPair::generate(KeyType::Ed25519);
        let signing = ed25519_dalek::SigningKey::from_pkcs8_der(&pair.private_pkcs8_der).unwrap();
        assert_eq!(pair.public_jwk, ed25519_jwk(signing.verifying_key().as_bytes()));
    }

    #[test]
    fn generated_p256_key_round_trips() {
        check_generated(KeyType::P256, "did:key:zDn");
        use p256::pkcs8::DecodePrivateKey as _;
        let pair = KeyPair::generate(KeyType::P256);
        let secret = p256::SecretKey::from_pkcs8_der(&pair.private_pkcs8_der).unwrap();
        assert_eq!(pair.public_jwk, p256_jwk(&secret.public_key()));
    }

    #[test]
    fn key_type_uses_jose_names() {
        assert_eq!(serde_json::to_value(KeyType::Ed25519).unwrap(), "Ed25519");
        assert_eq!(serde_json::to_value(KeyType::P256).unwrap(), "P-256");
        assert_eq!(
            serde_json::from_value::<KeyType>(json!("P-256")).unwrap(),
            KeyType::P256
        );
        assert!(serde_json::from_value::<KeyType>(json!("P256")).is_err());
    }

    #[test]
    fn did_key_rejects_bad_input() {
        for did in [
            "",
            "did:web:acme.example",
            "did:key:",
            "did:key:6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "did:key:z0OIl",
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do",
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK#key-1",
        ] {
            assert!(
                matches!(jwk_from_did_key(did), Err(KeyError::InvalidDidKey(_))),
                "{did}"
            );
        }
        // A secp256k1 key is well formed but not supported.
        let secp256k1 = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme";
        let error = jwk_from_did_key(secp256k1).unwrap_err();
        assert!(error.to_string().contains("0xe7"), "{error}");
    }

    #[test]
    fn did_key_from_jwk_rejects_bad_keys() {
        let bad = [
            json!({"kty": "OKP", "crv": "X25519", "x": "Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "Lm_M42cB3HkUiODQsXRcweM6TByfzEHGO9ND274JcOY="}),
            json!({"kty": "EC", "crv": "P-256", "x": "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns"}),
            json!({"kty": "EC", "crv": "P-256",
                   "x": "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
                   "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "crv": "none"}),
        ];
        for jwk in bad {
            assert!(matches!(did_key_from_jwk(&jwk), Err(KeyError::InvalidJwk(_))), "{jwk}");
        }
    }

    #[test]
    fn varint_round_trips() {
        for value in [0u64, 1, 0x7f, 0x80, 0xed, 0x1200, u64::from(u32::MAX)] {
            let mut bytes = Vec::new();
            write_varint(&mut bytes, value);
            bytes.push(0xaa);
            assert_eq!(read_varint(&bytes), Some((value, &[0xaa][..])));
        }
        let mut p256 = Vec::new();
        write_varint(&mut p256, MULTICODEC_P256_PUB);
        assert_eq!(p256, [0x80, 0x24]);
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0x80, 0x00]), None);
    }

    #[test]
    fn did_web_examples() {
        assert_eq!(did_web("acme.example").unwrap(), "did:web:acme.example");
        assert_eq!(did_web("localhost:8443").unwrap(), "did:web:localhost%3A8443");
        assert_eq!(
            did_web("acme.example/users/alice").unwrap(),
            "did:web:acme.example:users:alice"
        );
        assert_eq!(did_web("Acme.Example/").unwrap(), "did:web:acme.example");
        assert_eq!(
            did_web("xn--bcher-kva.example:443/Team_1").unwrap(),
            "did:web:xn--bcher-kva.example%3A443:Team_1"
        );
    }

    #[test]
    fn did_web_rejects_bad_domains() {
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(60).as_str(); 5].join(".");
        assert_eq!(long_name.len(), 304);
        for domain in [
            "https://x",
            "",
            "a b",
            " acme.example",
            "acme.example:",
            "acme.example:0",
            "acme.example:70000",
            "acme.example:https",
            "acme..example",
            ".acme.example",
            "acme.example.",
            "-acme.example",
            "acme_corp.example",
            "bücher.example",
            "acme.example//alice",
            "acme.example/../alice",
            "acme.example/al%20ice",
            "did:web:acme.example",
            long_label.as_str(),
            long_name.as_str(),
            "a".repeat(300).as_str(),
        ] {
            assert!(matches!(did_web(domain), Err(KeyError::InvalidDomain(_))), "{domain}");
        }
    }

    #[test]
    fn did_ebsi_is_legal_entity_form() {
        let did = did_ebsi();
        let encoded = did.strip_prefix("did:ebsi:z").unwrap();
        let bytes = bs58::decode(encoded).into_vec().unwrap();
        assert_eq!(bytes.len(), 17);
        assert_eq!(bytes[0], 0x01);
        assert_ne!(did, did_ebsi());
    }

    #[test]
    fn ebsi_environment_validation() {
        for env in ["pilot", "conformance", "production", "test-2"] {
            assert_eq!(ebsi_environment(env).unwrap(), env);
        }
        for env in ["", "Pilot", "pi lot", "pilot_1", &"a".repeat(33)] {
            assert!(
                matches!(ebsi_environment(env), Err(KeyError::InvalidEnvironment(_))),
                "{env}"
            );
        }
    }

    #[test]
    fn self_signed_certificate_round_trips() {
        let certificate = self_signed_certificate("CN=Acme Issuer,O=Acme B.V.,C=NL").unwrap();
        assert!(
            certificate.subject.contains("CN=Acme Issuer"),
            "{}",
            certificate.subject
        );
        assert!(certificate.subject.contains("O=Acme B.V."));
        assert!(certificate.subject.contains("C=NL"));
        assert!(certificate.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let private_key = certificate.private_pkcs8_der.as_deref().unwrap();
        {
            use p256::pkcs8::DecodePrivateKey as _;
            p256::SecretKey::from_pkcs8_der(private_key).unwrap();
        }

        // Valid for a year from now.
        let (year, _, _) =
            civil_from_days(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 86_400);
        let not_after_year: i64 = certificate.not_after[..4].parse().unwrap();
        assert!(
            not_after_year == year + 1 || not_after_year == year,
            "{}",
            certificate.not_after
        );
        assert!(certificate.not_after.ends_with('Z'));

        let parsed = parse_certificate_pem(&certificate.pem).unwrap();
        assert_eq!(parsed.subject, certificate.subject);
        assert_eq!(parsed.not_after, certificate.not_after);
        assert_eq!(parsed.pem, certificate.pem);
        assert!(parsed.private_pkcs8_der.is_none());
        assert!(!format!("{certificate:?}").contains(&format!("{:?}", private_key)));
    }

    #[test]
    fn distinguished_name_escapes_and_options() {
        let certificate = self_signed_certificate(
            " cn = Acme\\, Issuer , o=Acme B.V.,ou=Credentials,l=Den Haag,st=Zuid-Holland,c=nl",
        )
        .unwrap();
        assert!(
            certificate.subject.contains("CN=Acme, Issuer"),
            "{}",
            certificate.subject
        );
        assert!(certificate.subject.contains("OU=Credentials"));
        assert!(certificate.subject.contains("L=Den Haag"));
        assert!(certificate.subject.contains("ST=Zuid-Holland"));
        assert!(certificate.subject.contains("C=NL"));

        let parsed = parse_distinguished_name("CN=\\C3\\A9t\\ ,O=a\\+b").unwrap();
        assert_eq!(
            parsed,
            vec![
                (DnAttribute::CommonName, "ét ".to_owned()),
                (DnAttribute::Organization, "a+b".to_owned()),
            ]
        );
    }

    #[test]
    fn distinguished_name_rejects_bad_input() {
        let too_long = format!("CN={}", "a".repeat(1100));
        let long_cn = format!("CN={}", "a".repeat(65));
        for dn in [
            "",
            "O=Acme B.V.,C=NL",
            "XX=1",
            "CN=Acme,XX=1",
            "CN=Acme,C=Netherlands",
            "CN=Acme,C=N1",
            "CN=",
            "CN=Acme,O=",
            "CN=Acme,O= ",
            "CN=Acme,,O=Acme",
            "CN=Acme,",
            "CN=Acme,O",
            "CN=Acme,CN=Other",
            "CN=Acme+O=Acme",
            "CN=Acme;O=Acme",
            "CN=Acme\\",
            "CN=Acme\\q",
            "CN=\\FF",
            "CN=Acme\u{7}",
            "serialNumber=1,CN=Acme",
            long_cn.as_str(),
            too_long.as_str(),
        ] {
            assert!(
                matches!(self_signed_certificate(dn), Err(KeyError::InvalidDistinguishedName(_))),
                "{dn}"
            );
        }
    }

    #[test]
    fn parse_certificate_pem_rejects_garbage() {
        let certificate = self_signed_certificate("CN=Acme Issuer").unwrap();
        let body: String = certificate
            .pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let bad = [
            String::new(),
            "garbage".to_owned(),
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_owned(),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
            format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
            format!("{}{}", certificate.pem, certificate.pem),
            format!("-----BEGIN CERTIFICATE-----\n{body}"),
        ];
        for pem in &bad {
            assert!(
                matches!(parse_certificate_pem(pem), Err(KeyError::InvalidCertificate(_))),
                "{pem}"
            );
        }
        // Explanatory text around the block is fine.
        let wrapped = format!("subject=CN = Acme Issuer\n{}\ntrailer\n", certificate.pem);
        assert_eq!(parse_certificate_pem(&wrapped).unwrap().subject, "CN=Acme Issuer");
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
