//! `did:key` identifiers in both directions: from a public JWK and back, with the multicodec
//! varint prefix they start with.

use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde_json::Value;

use super::jwk::{jwk_bytes, jwk_object, jwk_str};
use super::pair::{ed25519_jwk, p256_jwk};
use super::{snippet, KeyError};

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
