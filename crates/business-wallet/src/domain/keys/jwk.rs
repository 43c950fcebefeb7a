//! JWK thumbprints (RFC 7638), and the readers of JWK members the other parts share.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{snippet, KeyError};

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
pub(super) fn jwk_object(jwk: &Value) -> Result<&Map<String, Value>, KeyError> {
    jwk.as_object()
        .ok_or_else(|| KeyError::InvalidJwk("a JWK must be a JSON object".to_owned()))
}

/// A required, non-empty string member of a JWK.
pub(super) fn jwk_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, KeyError> {
    match object.get(name) {
        None => Err(KeyError::InvalidJwk(format!("the \"{name}\" member is missing"))),
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        Some(Value::String(_)) => Err(KeyError::InvalidJwk(format!("the \"{name}\" member must not be empty"))),
        Some(_) => Err(KeyError::InvalidJwk(format!("the \"{name}\" member must be a string"))),
    }
}

/// A required base64url (unpadded) member of a JWK, decoded, of exactly
/// `expected_len` bytes.
pub(super) fn jwk_bytes(object: &Map<String, Value>, name: &str, expected_len: usize) -> Result<Vec<u8>, KeyError> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
}
