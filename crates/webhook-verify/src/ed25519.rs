//! The Ed25519 entry of the signature header: `v1a=<kid>:<signature>`.
//!
//! Beside the HMAC `v1` values, every request carries one Ed25519 signature by the
//! deployment's current signing key over the same signed content, `<t>.<raw body>`:
//!
//! ```text
//! X-Credenco-Signature: t=1746094937,v1=2e0b3ffe...,v1a=kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k:x8KWqDq8...
//! ```
//!
//! * `kid` names the key in the deployment's published key set (a JWKS served without
//!   authentication at `/api/public/webhook-signing-keys.json`).
//! * the signature is the 64-byte Ed25519 signature in unpadded base64url.
//!
//! A receiver that knows only the HMAC secret ignores the entry (as Stripe's verifier does
//! with schemes it does not know); one that holds the key set needs no shared secret at all.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::{parse_items, unix_seconds, VerifyError};

/// The header key of the Ed25519 entry.
pub const ED25519_SCHEME: &str = "v1a";

/// Signs `<timestamp>.<body>` with `key`.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use webhook_verify::sign_ed25519;
///
/// // The secret key of RFC 8032's first test vector.
/// let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
/// let key = SigningKey::from_bytes(&seed.try_into().unwrap());
/// assert_eq!(
///     sign_ed25519(&key, 1_746_094_937, br#"{"a":1}"#),
///     "x8KWqDq83kADBFxZBvQ3YoE1j1QTguJXNmwMpIoCZmI7Bpmsecdo1Esfw5NY9RNDokV_dx7NUCnaJPIhOlhUCg",
/// );
/// ```
pub fn sign_ed25519(key: &SigningKey, timestamp: i64, body: &[u8]) -> String {
    let mut content = format!("{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    URL_SAFE_NO_PAD.encode(key.sign(&content).to_bytes())
}

/// The `,v1a=<kid>:<signature>` entry that follows the `v1` values of a signature header.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use webhook_verify::{ed25519_entry, sign_ed25519, signature_header};
///
/// let key = SigningKey::from_bytes(&[7; 32]);
/// let mut header = signature_header(&[b"whsec_test".as_slice()], 1_000, b"{}");
/// header.push_str(&ed25519_entry("k1", &key, 1_000, b"{}"));
/// assert!(header.ends_with(&format!(",v1a=k1:{}", sign_ed25519(&key, 1_000, b"{}"))));
/// ```
pub fn ed25519_entry(kid: &str, key: &SigningKey, timestamp: i64, body: &[u8]) -> String {
    format!(",{ED25519_SCHEME}={kid}:{}", sign_ed25519(key, timestamp, body))
}

/// The public half of a signing key as a JWK (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use`
/// sig), named `kid`.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// let key = SigningKey::from_bytes(&[7; 32]);
/// let jwk = webhook_verify::public_jwk("k1", &key.verifying_key());
/// assert_eq!(jwk["kty"], "OKP");
/// assert_eq!(jwk["kid"], "k1");
/// ```
pub fn public_jwk(kid: &str, key: &VerifyingKey) -> Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
    })
}

/// The RFC 7638 thumbprint of an Ed25519 public key, in unpadded base64url: the `kid` the
/// deployment gives a generated key.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
/// let key = SigningKey::from_bytes(&seed.try_into().unwrap());
/// assert_eq!(
///     webhook_verify::jwk_thumbprint(&key.verifying_key()),
///     "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
/// );
/// ```
pub fn jwk_thumbprint(key: &VerifyingKey) -> String {
    use sha2::Digest as _;
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// The Ed25519 keys a receiver trusts, by `kid`: read from the deployment's JWKS (fetched from
/// its URL or saved to a file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicKeys {
    keys: Vec<(String, VerifyingKey)>,
}

/// A key set that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError(pub String);

impl std::fmt::Display for KeySetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid key set: {}", self.0)
    }
}

impl std::error::Error for KeySetError {}

impl PublicKeys {
    /// Reads a JWKS (`{"keys": [...]}`) or a single JWK. Keys other than Ed25519 (`kty` OKP,
    /// `crv` Ed25519) are skipped; an Ed25519 key without a `kid` or with a bad `x` is an
    /// error.
    ///
    /// ```
    /// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
    ///                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"RSA","kid":"other"}]}"#;
    /// let keys = webhook_verify::PublicKeys::from_jwks(jwks).unwrap();
    /// assert_eq!(keys.kids().collect::<Vec<_>>(), ["kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"]);
    /// assert!(webhook_verify::PublicKeys::from_jwks("[]").is_err());
    /// ```
    ///
    /// # Errors
    /// Not JSON, neither a JWKS nor a JWK, or an Ed25519 key that cannot be used.
    pub fn from_jwks(text: &str) -> Result<PublicKeys, KeySetError> {
        let value: Value = serde_json::from_str(text).map_err(|e| KeySetError(format!("not JSON: {e}")))?;
        let entries = match (&value["keys"], &value["kty"]) {
            (Value::Array(keys), _) => keys.clone(),
            (_, Value::String(_)) => vec![value.clone()],
            _ => return Err(KeySetError("neither a JWKS (`keys`) nor a JWK (`kty`)".into())),
        };
        let mut keys = Vec::new();
        for entry in entries {
            if entry["kty"] != "OKP" || entry["crv"] != "Ed25519" {
                continue;
            }
            let kid = entry["kid"]
                .as_str()
                .ok_or_else(|| KeySetError("an Ed25519 key has no `kid`".into()))?;
            let x = entry["x"]
                .as_str()
                .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
                .and_then(|x| <[u8; 32]>::try_from(x).ok())
                .ok_or_else(|| KeySetError(format!("key `{kid}`: `x` is not 32 bytes of base64url")))?;
            let key = VerifyingKey::from_bytes(&x)
                .map_err(|_| KeySetError(format!("key `{kid}`: `x` is not an Ed25519 public key")))?;
            keys.push((kid.to_string(), key));
        }
        Ok(PublicKeys { keys })
    }

    /// A set from keys already at hand.
    pub fn new(keys: impl IntoIterator<Item = (String, VerifyingKey)>) -> PublicKeys {
        PublicKeys {
            keys: keys.into_iter().collect(),
        }
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// The names of the keys, in set order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(kid, _)| kid.as_str())
    }
}

/// A request whose Ed25519 signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEd25519 {
    /// The signing time `t`, in Unix seconds.
    pub timestamp: i64,
    /// The key that signed it.
    pub kid: String,
}

/// Verifies the Ed25519 entry of a signature header against the keys a receiver trusts, at
/// time `now`: some `v1a` entry must be a valid signature of `<t>.<body>` by the key its `kid`
/// names, and `t` must be within `tolerance` of `now`. The `v1` values are not looked at.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use ed25519_dalek::SigningKey;
/// use webhook_verify::*;
///
/// let key = SigningKey::from_bytes(&[7; 32]);
/// let header = format!("t=1000,v1={}{}", "00".repeat(32), ed25519_entry("k1", &key, 1_000, b"{}"));
/// let trusted = PublicKeys::new([("k1".to_string(), key.verifying_key())]);
/// let now = UNIX_EPOCH + Duration::from_secs(1_010);
/// let verified = verify_ed25519(&header, b"{}", &trusted, DEFAULT_TOLERANCE, now).unwrap();
/// assert_eq!(verified.kid, "k1");
/// assert!(verify_ed25519(&header, b"{ }", &trusted, DEFAULT_TOLERANCE, now).is_err());
/// ```
///
/// # Errors
/// A malformed header, no `v1a` entry, no entry by a trusted key, a signature that does not
/// verify, or a timestamp outside the tolerance.
pub fn verify_ed25519(
    header: &str,
    body: &[u8],
    keys: &PublicKeys,
    tolerance: Duration,
    now: SystemTime,
) -> Result<VerifiedEd25519, VerifyError> {
    let items = parse_items(header)?;
    let timestamp = items.timestamp.ok_or(VerifyError::MissingTimestamp)?;
    if items.ed25519.is_empty() {
        return Err(VerifyError::NoEd25519Signature);
    }
    let mut content = format!("{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    let entries = items
        .ed25519
        .iter()
        .map(|value| parse_entry(value))
        .collect::<Result<Vec<_>, _>>()?;
    let mut known = None;
    for (kid, signature) in &entries {
        let Some(key) = keys.get(kid) else { continue };
        known = Some(kid.clone());
        if key.verify_strict(&content, signature).is_ok() {
            let now = unix_seconds(now);
            if (i128::from(now) - i128::from(timestamp)).unsigned_abs() > u128::from(tolerance.as_secs()) {
                return Err(VerifyError::TimestampOutsideTolerance { timestamp, now });
            }
            return Ok(VerifiedEd25519 {
                timestamp,
                kid: kid.clone(),
            });
        }
    }
    Err(match known {
        Some(kid) => VerifyError::BadEd25519Signature { kid },
        None => VerifyError::UnknownKey {
            kids: entries.into_iter().map(|(kid, _)| kid).collect(),
        },
    })
}

/// Reads the value of a `v1a` entry: `<kid>:<unpadded base64url signature>`.
fn parse_entry(value: &str) -> Result<(String, Signature), VerifyError> {
    let (kid, signature) = value
        .split_once(':')
        .ok_or_else(|| VerifyError::MalformedHeader(format!("v1a value `{value}` is not <kid>:<signature>")))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| {
            VerifyError::MalformedHeader(format!("v1a signature of `{kid}` is not 64 bytes of base64url"))
        })?;
    Ok((kid.to_string(), Signature::from_bytes(&bytes)))
}
