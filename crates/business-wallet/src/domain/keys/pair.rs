//! Key pairs: generating Ed25519 and P-256 keys, with the public half as a JWK and the private
//! half as PKCS#8 DER.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rand::rngs::OsRng;
use serde_json::{json, Value};

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
pub(super) fn ed25519_jwk(public_key: &[u8]) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public_key),
    })
}

/// Public JWK of a P-256 key.
pub(super) fn p256_jwk(public_key: &p256::PublicKey) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{did_key_from_jwk, jwk_from_did_key, jwk_thumbprint};

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
}
