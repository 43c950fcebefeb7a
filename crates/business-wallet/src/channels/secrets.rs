//! The secrets of a channel, stored encrypted in `integration_channel.secrets`.
//!
//! The stored form is the JSON of [`ChannelSecrets`] sealed with the instance's
//! [`SecretBox`]. The HMAC secret is `whsec_` followed by the unpadded base64url of 32 random
//! bytes; receivers of `X-Credenco-Signature` key their HMAC with the UTF-8 bytes of that whole
//! string. New secrets use only the characters that base64url and standard base64 share, so
//! that the same text is also a Standard Webhooks secret (whose libraries decode the part after
//! `whsec_` as standard base64 and key `webhook-signature` with those bytes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::crypto::SecretBox;

/// Prefix of every HMAC secret.
pub const HMAC_SECRET_PREFIX: &str = "whsec_";

/// Everything secret about a channel. Never logged (its `Debug` is redacted), never returned.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelSecrets {
    /// The current signing secret.
    pub hmac_secret: String,
    /// The secret in use before the last rotation, still signing until it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hmac_secret: Option<String>,
    /// When the previous secret stops signing, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hmac_secret_expires_at: Option<i64>,
    /// The webhook API key header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_value: Option<String>,
    /// The webhook OAuth2 client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_client_secret: Option<String>,
    /// The private key of the webhook client certificate (`webhook.tls.clientKey`), PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<String>,
}

impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecrets(..)")
    }
}

/// Stored secrets that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Wrong key or damaged data.
    #[error(transparent)]
    Decrypt(#[from] crate::crypto::DecryptError),
    /// Decrypted, but not the expected JSON.
    #[error("stored channel secrets are not valid: {0}")]
    Format(#[from] serde_json::Error),
}

/// A new random HMAC secret: `whsec_` + base64url (no padding) of 32 random bytes, drawn
/// again until the text has no `-` or `_`, so that it reads the same as standard base64 (the
/// Standard Webhooks form). About one draw in four qualifies; the secret keeps 254 bits.
pub fn generate_hmac_secret() -> String {
    loop {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let encoded = URL_SAFE_NO_PAD.encode(bytes);
        if !encoded.contains(['-', '_']) {
            return format!("{HMAC_SECRET_PREFIX}{encoded}");
        }
    }
}

impl ChannelSecrets {
    /// Secrets holding only a fresh HMAC secret.
    pub fn generate() -> ChannelSecrets {
        ChannelSecrets {
            hmac_secret: generate_hmac_secret(),
            ..ChannelSecrets::default()
        }
    }

    /// Encrypts the secrets for storage.
    pub fn seal(&self, secret_box: &SecretBox) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("serialising plain strings cannot fail");
        secret_box.encrypt(&json)
    }

    /// Decrypts stored secrets.
    ///
    /// # Errors
    /// Wrong key, damaged data, or not the expected JSON.
    pub fn open(secret_box: &SecretBox, sealed: &[u8]) -> Result<ChannelSecrets, SecretsError> {
        let json = secret_box.decrypt(sealed)?;
        Ok(serde_json::from_slice(&json)?)
    }

    /// The secrets of a stored row: opened when it has some, the empty set when it has none.
    ///
    /// # Errors
    /// The sealed secrets cannot be opened (see [`ChannelSecrets::open`]).
    pub fn open_stored(secret_box: &SecretBox, sealed: Option<&[u8]>) -> Result<ChannelSecrets, SecretsError> {
        sealed.map_or_else(
            || Ok(ChannelSecrets::default()),
            |sealed| ChannelSecrets::open(secret_box, sealed),
        )
    }

    /// Replaces the HMAC secret with a new one and keeps the old one signing for `grace_ms`
    /// after `now_ms`. Returns the new secret (shown to the user once).
    pub fn rotate(&mut self, now_ms: i64, grace_ms: i64) -> String {
        let new = generate_hmac_secret();
        let old = std::mem::replace(&mut self.hmac_secret, new.clone());
        self.previous_hmac_secret = Some(old);
        self.previous_hmac_secret_expires_at = Some(now_ms.saturating_add(grace_ms));
        new
    }

    /// The secrets to sign with at `now_ms`: the current one, then the previous one while its
    /// grace window lasts.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<String> {
        let mut secrets = vec![self.hmac_secret.clone()];
        if let (Some(previous), Some(expires)) = (&self.previous_hmac_secret, self.previous_hmac_secret_expires_at) {
            if now_ms < expires {
                secrets.push(previous.clone());
            }
        }
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let a = generate_hmac_secret();
        let b = generate_hmac_secret();
        assert_ne!(a, b);
        let encoded = a.strip_prefix(HMAC_SECRET_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
    }

    #[test]
    fn generated_secrets_are_standard_webhooks_secrets_too() {
        use base64::engine::general_purpose::STANDARD_NO_PAD;
        for _ in 0..64 {
            let secret = generate_hmac_secret();
            let encoded = secret.strip_prefix(HMAC_SECRET_PREFIX).unwrap();
            assert_eq!(
                STANDARD_NO_PAD.decode(encoded).unwrap(),
                URL_SAFE_NO_PAD.decode(encoded).unwrap()
            );
            assert_eq!(webhook_verify::standard_webhooks_key(&secret).len(), 32);
        }
    }

    #[test]
    fn seal_open_round_trip_uses_the_contract_field_names() {
        let secret_box = SecretBox::new(&[3u8; 32]);
        let secrets = ChannelSecrets {
            api_key_value: Some("k".into()),
            ..ChannelSecrets::generate()
        };
        let sealed = secrets.seal(&secret_box);
        assert_eq!(ChannelSecrets::open(&secret_box, &sealed).unwrap(), secrets);
        let json = serde_json::to_value(&secrets).unwrap();
        assert!(json.get("hmacSecret").is_some() && json.get("apiKeyValue").is_some());
        assert!(json.get("previousHmacSecret").is_none());
        assert!(ChannelSecrets::open(&SecretBox::new(&[4u8; 32]), &sealed).is_err());
        assert_eq!(format!("{secrets:?}"), "ChannelSecrets(..)");
    }

    #[test]
    fn the_previous_secret_signs_only_within_its_grace_window() {
        let mut secrets = ChannelSecrets::generate();
        let old = secrets.hmac_secret.clone();
        let new = secrets.rotate(1_000, 500);
        assert_eq!(secrets.signing_secrets(1_000), vec![new.clone(), old]);
        assert_eq!(secrets.signing_secrets(1_499).len(), 2);
        assert_eq!(secrets.signing_secrets(1_500), vec![new]);
    }
}
