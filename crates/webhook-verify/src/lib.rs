//! Receiver-side verification of business-wallet webhook deliveries.
//!
//! Every webhook request sent by business-wallet carries a CloudEvent in
//! HTTP binary mode (`ce-*` headers plus a JSON body) and a signature header:
//!
//! ```text
//! X-Credenco-Signature: t=1746094937,v1=2e0b3ffe8deb...
//! ```
//!
//! * `t` is the signing time in Unix seconds.
//! * `v1` is the lowercase hex HMAC-SHA256 of `<t>.<raw body>`, keyed with the
//!   UTF-8 bytes of the channel secret (the `whsec_...` string exactly as it
//!   is shown when the channel is created).
//! * While a secret is being rotated, a second `v1` computed with the previous
//!   secret follows the first one. A request is authentic when *any* `v1`
//!   matches *any* secret the receiver currently trusts.
//! * Last comes `v1a=<kid>:<signature>`: an Ed25519 signature over the same
//!   `<t>.<raw body>` by the deployment's signing key named `kid`, whose public
//!   half is published as a JWKS (see [`verify_ed25519`] and [`PublicKeys`]).
//!   Verifiers of the `v1` values skip it, as they skip every key they do not
//!   know.
//!
//! This crate implements both sides of that contract:
//!
//! * [`verify`] / [`verify_now`] check a received request,
//! * [`sign`] / [`signature_header`] produce the values a sender puts on the
//!   wire (useful for tests and tooling),
//! * [`verify_ed25519`] checks the Ed25519 entry against a key set read with
//!   [`PublicKeys::from_jwks`]; [`sign_ed25519`] / [`ed25519_entry`] make it,
//! * [`standard_signature_header`] makes the `webhook-signature` value of a
//!   channel that also sends the Standard Webhooks headers,
//! * [`parse_ce_headers`] reads the CloudEvents attributes of a binary-mode
//!   request, and [`percent_encode_header_value`] /
//!   [`percent_decode_header_value`] implement the header value encoding of
//!   the CloudEvents HTTP binding.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use webhook_verify::{signature_header, verify, DEFAULT_TOLERANCE};
//!
//! let secret = "whsec_c2VjcmV0LWZvci1kb2NzLW9ubHk".as_bytes();
//! let body = br#"{"hello":"world"}"#;
//!
//! // What the sender puts in the `X-Credenco-Signature` header.
//! let header = signature_header(&[secret], 1_746_094_937, body);
//!
//! // What the receiver does with it.
//! let now = UNIX_EPOCH + Duration::from_secs(1_746_094_940);
//! let verified = verify(&header, body, &[secret], DEFAULT_TOLERANCE, now).unwrap();
//! assert_eq!(verified.timestamp, 1_746_094_937);
//! assert_eq!(verified.secret_index, 0);
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cloudevents;
mod ed25519;
mod standard;

pub use cloudevents::{
    parse_ce_headers, percent_decode_header_value, percent_encode_header_value, CloudEventHeaderError,
    CloudEventHeaders, PercentDecodeError,
};

pub use ed25519::{
    ed25519_entry, jwk_thumbprint, public_jwk, sign_ed25519, verify_ed25519, KeySetError, PublicKeys, VerifiedEd25519,
    ED25519_SCHEME,
};
pub use standard::{standard_signature_header, standard_webhooks_key};

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Name of the HTTP header that carries the webhook signature.
///
/// HTTP header names are case-insensitive, so receivers should look the
/// header up without regard to case.
///
/// ```
/// assert_eq!(webhook_verify::SIGNATURE_HEADER, "X-Credenco-Signature");
/// ```
pub const SIGNATURE_HEADER: &str = "X-Credenco-Signature";

/// Default maximum distance between the signing time `t` and the receiver's
/// clock: five minutes.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(webhook_verify::DEFAULT_TOLERANCE, Duration::from_secs(300));
/// ```
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Length in bytes of a `v1` signature (the output size of HMAC-SHA256).
const V1_LEN: usize = 32;

/// Builds the keyed MAC over `<timestamp>.<body>`.
fn mac_for(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Computes the `v1` signature of `body` signed at `timestamp` with `secret`.
///
/// The result is the lowercase hex encoding of
/// `HMAC-SHA256(key = secret, message = "<timestamp>." + body)`, where the
/// timestamp is written in decimal. The secret is used as opaque bytes; pass
/// the UTF-8 bytes of the `whsec_...` string exactly as it was issued.
///
/// ```
/// let sig = webhook_verify::sign(b"whsec_test", 1_746_094_937, br#"{"a":1}"#);
/// assert_eq!(sig, "2e0b3ffe8deba37d51231ccbda858e5abe0a7d6140e01f3923aefb19fe2262fb");
/// ```
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac_for(secret, timestamp, body).finalize().into_bytes())
}

/// Builds a complete signature header value: `t=<timestamp>,v1=<hex>[,v1=<hex>...]`.
///
/// One `v1` entry is emitted per secret, in the order given. Senders list the
/// current secret first and, during a rotation grace window, the previous
/// secret second. With an empty `secrets` slice the result contains only the
/// timestamp, which [`parse_header`] rejects.
///
/// ```
/// use webhook_verify::{sign, signature_header};
///
/// let (current, previous) = (b"whsec_new".as_slice(), b"whsec_old".as_slice());
/// let header = signature_header(&[current, previous], 1_746_094_937, b"{}");
/// assert_eq!(
///     header,
///     format!(
///         "t=1746094937,v1={},v1={}",
///         sign(current, 1_746_094_937, b"{}"),
///         sign(previous, 1_746_094_937, b"{}"),
///     )
/// );
/// ```
pub fn signature_header(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, timestamp, body));
    }
    header
}

/// The content of a signature header after parsing.
///
/// ```
/// use webhook_verify::{parse_header, ParsedHeader};
///
/// let hex = "ab".repeat(32);
/// let parsed = parse_header(&format!("t=1746094937,v1={hex}")).unwrap();
/// assert_eq!(
///     parsed,
///     ParsedHeader { timestamp: 1_746_094_937, signatures: vec![vec![0xab; 32]] },
/// );
///
/// // A v1 value must be a complete 32-byte HMAC-SHA256 in hex.
/// assert!(parse_header("t=1746094937,v1=00ff").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader {
    /// The signing time `t`, in Unix seconds.
    pub timestamp: i64,
    /// The decoded `v1` signatures, in header order (each 32 bytes).
    pub signatures: Vec<Vec<u8>>,
}

/// Parses a signature header value such as `t=1746094937,v1=<hex>,v1=<hex>`.
///
/// Parsing rules:
///
/// * items are separated by `,`; whitespace around items, keys and values is
///   ignored, and empty items are skipped;
/// * each item must have the form `key=value`;
/// * `t` must appear exactly once and be a decimal integer;
/// * every `v1` must be 64 hex digits (a 32-byte HMAC-SHA256); hex digits are
///   accepted in either case;
/// * keys are case-sensitive; items with any other key (for example
///   `v0=...`) are ignored, so new schemes can be added without breaking
///   existing receivers;
/// * a header without `t` yields [`VerifyError::MissingTimestamp`], one
///   without any `v1` yields [`VerifyError::NoSignature`].
///
/// ```
/// use webhook_verify::{parse_header, VerifyError};
///
/// let a = "11".repeat(32);
/// let b = "22".repeat(32);
/// let parsed = parse_header(&format!(" t=1746094937 , v0=legacy, v1={a} ,v1={b} ")).unwrap();
/// assert_eq!(parsed.timestamp, 1_746_094_937);
/// assert_eq!(parsed.signatures.len(), 2);
///
/// assert_eq!(parse_header(&format!("v1={a}")), Err(VerifyError::MissingTimestamp));
/// assert_eq!(parse_header("t=1746094937"), Err(VerifyError::NoSignature));
/// ```
pub fn parse_header(header: &str) -> Result<ParsedHeader, VerifyError> {
    let items = parse_items(header)?;
    let timestamp = items.timestamp.ok_or(VerifyError::MissingTimestamp)?;
    if items.signatures.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    Ok(ParsedHeader {
        timestamp,
        signatures: items.signatures,
    })
}

/// Every entry of a signature header that this crate knows.
pub(crate) struct HeaderItems<'a> {
    pub(crate) timestamp: Option<i64>,
    pub(crate) signatures: Vec<Vec<u8>>,
    /// The `v1a` values, unparsed: a verifier of the `v1` values never fails on them.
    pub(crate) ed25519: Vec<&'a str>,
}

/// Reads the items of a signature header by the rules of [`parse_header`], keeping the `v1a`
/// values as they are.
pub(crate) fn parse_items(header: &str) -> Result<HeaderItems<'_>, VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut ed25519 = Vec::new();

    for item in header.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| VerifyError::MalformedHeader(format!("item `{item}` is not key=value")))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(VerifyError::MalformedHeader(
                        "timestamp `t` appears more than once".into(),
                    ));
                }
                let parsed = parse_timestamp(value).ok_or_else(|| {
                    VerifyError::MalformedHeader(format!("timestamp `{value}` is not a decimal integer"))
                })?;
                timestamp = Some(parsed);
            }
            "v1" => {
                let bytes = hex::decode(value)
                    .map_err(|_| VerifyError::MalformedHeader(format!("v1 signature `{value}` is not valid hex")))?;
                if bytes.len() != V1_LEN {
                    return Err(VerifyError::MalformedHeader(format!(
                        "v1 signature has {} bytes, expected {V1_LEN}",
                        bytes.len()
                    )));
                }
                signatures.push(bytes);
            }
            ED25519_SCHEME => ed25519.push(value),
            // Unknown schemes are skipped on purpose.
            _ => {}
        }
    }
    Ok(HeaderItems {
        timestamp,
        signatures,
        ed25519,
    })
}

/// Accepts an optional leading `-` followed by ASCII digits only (no `+`, no
/// spaces, no empty string).
fn parse_timestamp(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The outcome of a successful verification.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use webhook_verify::{signature_header, verify, Verified, DEFAULT_TOLERANCE};
///
/// let (new, old) = (b"whsec_new".as_slice(), b"whsec_old".as_slice());
/// // The sender only knows the old secret so far...
/// let header = signature_header(&[old], 1_000, b"{}");
/// // ...while the receiver already trusts both.
/// let now = UNIX_EPOCH + Duration::from_secs(1_000);
/// let verified = verify(&header, b"{}", &[new, old], DEFAULT_TOLERANCE, now).unwrap();
/// assert_eq!(verified, Verified { timestamp: 1_000, secret_index: 1 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verified {
    /// The signing time `t` from the header, in Unix seconds.
    pub timestamp: i64,
    /// Index into the `secrets` slice passed to [`verify`] of the secret that
    /// produced a matching signature.
    pub secret_index: usize,
}

/// Verifies a webhook request against the trusted `secrets` at time `now`.
///
/// * `header` is the value of the [`SIGNATURE_HEADER`] header.
/// * `body` must be the raw request body bytes, exactly as received: do not
///   parse and re-serialise the JSON before verifying.
/// * `secrets` are the secrets currently trusted for this channel (during a
///   rotation, both the new and the previous one). Each is used as opaque
///   bytes.
/// * `tolerance` bounds the distance between `t` and `now`, in both
///   directions, at whole-second resolution.
///
/// The signature is checked first (every `v1` against every secret, each
/// comparison in constant time), then the timestamp. So
/// [`VerifyError::TimestampOutsideTolerance`] is only returned for a request
/// whose signature is otherwise valid, which typically points at clock skew
/// or a replayed request. With an empty `secrets` slice every request fails
/// with [`VerifyError::NoMatchingSignature`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use webhook_verify::{signature_header, verify, VerifyError, DEFAULT_TOLERANCE};
///
/// let secret = b"whsec_example".as_slice();
/// let header = signature_header(&[secret], 1_746_094_937, b"{}");
/// let now = UNIX_EPOCH + Duration::from_secs(1_746_094_937 + 60);
///
/// assert!(verify(&header, b"{}", &[secret], DEFAULT_TOLERANCE, now).is_ok());
/// assert_eq!(
///     verify(&header, b"{ }", &[secret], DEFAULT_TOLERANCE, now),
///     Err(VerifyError::NoMatchingSignature),
/// );
/// ```
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[&[u8]],
    tolerance: Duration,
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    let parsed = parse_header(header)?;

    let secret_index = secrets
        .iter()
        .position(|secret| {
            let mac = mac_for(secret, parsed.timestamp, body);
            parsed
                .signatures
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        })
        .ok_or(VerifyError::NoMatchingSignature)?;

    let now = unix_seconds(now);
    let distance = (i128::from(now) - i128::from(parsed.timestamp)).unsigned_abs();
    if distance > u128::from(tolerance.as_secs()) {
        return Err(VerifyError::TimestampOutsideTolerance {
            timestamp: parsed.timestamp,
            now,
        });
    }

    Ok(Verified {
        timestamp: parsed.timestamp,
        secret_index,
    })
}

/// Same as [`verify`], using the system clock for `now`.
///
/// ```
/// use std::time::{SystemTime, UNIX_EPOCH};
/// use webhook_verify::{signature_header, verify_now, DEFAULT_TOLERANCE};
///
/// let secret = b"whsec_example".as_slice();
/// let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
/// let header = signature_header(&[secret], t, b"{}");
/// assert!(verify_now(&header, b"{}", &[secret], DEFAULT_TOLERANCE).is_ok());
/// ```
pub fn verify_now(header: &str, body: &[u8], secrets: &[&[u8]], tolerance: Duration) -> Result<Verified, VerifyError> {
    verify(header, body, secrets, tolerance, SystemTime::now())
}

/// Whole Unix seconds (rounded towards negative infinity), saturating at the
/// bounds of `i64`.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let secs = if before.subsec_nanos() > 0 {
                secs.saturating_add(1)
            } else {
                secs
            };
            -secs
        }
    }
}

/// Why a signature header was rejected.
///
/// ```
/// use webhook_verify::{parse_header, VerifyError};
///
/// let err = parse_header("t=now,v1=00").unwrap_err();
/// assert!(matches!(err, VerifyError::MalformedHeader(_)));
/// println!("{err}"); // human-readable, suitable for logs
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The header could not be parsed; the string describes the problem.
    MalformedHeader(String),
    /// The header has no `t=` item.
    MissingTimestamp,
    /// The header has no `v1=` item.
    NoSignature,
    /// The signature is valid but `t` is too far from the receiver's clock.
    TimestampOutsideTolerance {
        /// The signing time `t` from the header, in Unix seconds.
        timestamp: i64,
        /// The receiver's clock at verification time, in Unix seconds.
        now: i64,
    },
    /// No `v1` signature matches any of the trusted secrets (wrong secret,
    /// modified body, or modified timestamp).
    NoMatchingSignature,
    /// The header has no `v1a=` item (Ed25519 verification only).
    NoEd25519Signature,
    /// No `v1a` item names a key of the trusted key set: the set is out of
    /// date (fetch the JWKS again) or the request is not from this deployment.
    UnknownKey {
        /// The key names the header's `v1a` items give.
        kids: Vec<String>,
    },
    /// The `v1a` signature by a trusted key does not verify (modified body
    /// or timestamp, or not signed by that key).
    BadEd25519Signature {
        /// The key that should have signed it.
        kid: String,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedHeader(reason) => write!(f, "malformed signature header: {reason}"),
            Self::MissingTimestamp => f.write_str("signature header has no `t=` timestamp"),
            Self::NoSignature => f.write_str("signature header has no `v1=` signature"),
            Self::TimestampOutsideTolerance { timestamp, now } => write!(
                f,
                "signature timestamp {timestamp} is outside the tolerance window (now is {now}, \
                 difference {}s)",
                (i128::from(*now) - i128::from(*timestamp)).unsigned_abs()
            ),
            Self::NoMatchingSignature => f.write_str("no v1 signature matches any of the configured secrets"),
            Self::NoEd25519Signature => f.write_str("signature header has no `v1a=` Ed25519 signature"),
            Self::UnknownKey { kids } => write!(
                f,
                "no v1a signature is by a key of the key set (the header names {})",
                kids.join(", ")
            ),
            Self::BadEd25519Signature { kid } => write!(f, "the v1a signature by key `{kid}` does not verify"),
        }
    }
}

impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests;
