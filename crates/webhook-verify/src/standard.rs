//! The Standard Webhooks headers (<https://www.standardwebhooks.com/>), sent by a channel with
//! `webhook.standardWebhooks`: `webhook-id`, `webhook-timestamp` and `webhook-signature`.
//!
//! The signed content is `<webhook-id>.<webhook-timestamp>.<raw body>`. `webhook-signature`
//! holds space-separated entries: `v1,<base64 HMAC-SHA256>` keyed with the base64-decoded part
//! of the `whsec_` secret after its prefix (one per secret during a rotation), and
//! `v1a,<base64 Ed25519 signature>` by the deployment's current signing key. Receivers check
//! them with the `standardwebhooks` libraries, passing the channel's `hmacSecret` unchanged.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::Mac as _;

use crate::HmacSha256;

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// The HMAC key that a Standard Webhooks library derives from the secret text: the base64
/// after `whsec_`, decoded. Secrets issued before the standard form was adopted are unpadded
/// base64url; they decode here too, though the libraries want the standard alphabet. Text
/// that is not base64 at all is used as its UTF-8 bytes.
///
/// ```
/// use webhook_verify::standard_webhooks_key;
/// assert_eq!(standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
/// # fn base64_decode(s: &str) -> Vec<u8> { use base64::Engine as _; base64::engine::general_purpose::STANDARD.decode(s).unwrap() }
/// ```
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(encoded).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn signed_content(message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{message_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// The value of `webhook-signature`: a `v1,` entry per secret (in the order given), then a
/// `v1a,` entry when a signing key is given.
///
/// The vector below is the one the Standard Webhooks specification publishes.
///
/// ```
/// use webhook_verify::standard_signature_header;
/// let header = standard_signature_header(
///     &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
///     None,
///     "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     1_614_265_330,
///     br#"{"test": 2432232314}"#,
/// );
/// assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// ```
pub fn standard_signature_header(
    secrets: &[&str],
    key: Option<&SigningKey>,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let content = signed_content(message_id, timestamp, body);
    let mut entries: Vec<String> = secrets
        .iter()
        .map(|secret| {
            let mut mac =
                HmacSha256::new_from_slice(&standard_webhooks_key(secret)).expect("HMAC accepts keys of any length");
            mac.update(&content);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect();
    if let Some(key) = key {
        entries.push(format!("v1a,{}", STANDARD.encode(key.sign(&content).to_bytes())));
    }
    entries.join(" ")
}
