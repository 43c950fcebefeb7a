//! Delivery settings: attempts and back-off, the dispatcher's claim loop, webhook requests and
//! the retention of finished deliveries.

use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::channels::ChannelSwitches;

/// Integration channels and delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationSettings {
    /// Per-type switches.
    pub channels: ChannelSwitches,
    /// Attempts per delivery before it is FAILED (stored on each delivery when it is created;
    /// the back-off between attempts is `integration.retry`).
    pub max_attempts: u32,
    /// Networks (CIDR) that webhook URLs may point at despite the SSRF gate (on-premise only).
    pub allowed_networks: Vec<String>,
    /// How long the previous HMAC secret keeps signing after a rotation, in seconds.
    pub secret_rotation_grace_secs: u64,
    /// Back-off between attempts.
    pub retry: RetrySettings,
    /// The dispatcher: claiming, leases, concurrency.
    pub dispatch: DispatchSettings,
    /// Webhook requests.
    pub webhook: WebhookSettings,
    /// Clean-up of old deliveries.
    pub retention: RetentionSettings,
    /// The failure ladder: when a channel that keeps failing is FAILING, and when PAUSED.
    pub failure: FailureSettings,
}

/// The failure ladder of every channel. A channel whose attempts keep failing becomes FAILING
/// (its deliveries still go out); a FAILING channel that keeps failing becomes PAUSED: no
/// attempts are made until an operator resumes it, and its deliveries wait untouched. A success
/// takes a FAILING channel back to ACTIVE. Each step is in the history and is an
/// `integration-channel.state-changed` event. Zero switches a rule off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureSettings {
    /// Failed attempts in a row (no success between them) after which a channel is FAILING.
    pub failing_after_failures: u32,
    /// Failed attempts in a row after which a FAILING channel is PAUSED (0: never by count).
    pub paused_after_failures: u32,
    /// Seconds without a success (counted from the last success, or from when it became
    /// FAILING when it never had one) after which a FAILING channel is PAUSED (0: never by time).
    pub paused_after_secs: u64,
}

impl Default for FailureSettings {
    fn default() -> Self {
        FailureSettings {
            failing_after_failures: 5,
            paused_after_failures: 0,
            paused_after_secs: 3 * 24 * 3600,
        }
    }
}

/// How long finished deliveries are kept. DISMISSED deliveries are always kept: an operator
/// decided about them, and they are the record of that decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days a DELIVERED delivery (with its attempts) is kept after its last change.
    pub delivered_days: u32,
    /// Days a FAILED delivery is kept after its last change.
    pub failed_days: u32,
    /// Seconds between two clean-up runs (on instances that run the dispatcher).
    pub interval_secs: u64,
    /// Most deliveries removed by one statement, so a run never holds long locks.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            delivered_days: 7,
            failed_days: 30,
            interval_secs: 3600,
            batch_size: 1000,
        }
    }
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationSettings {
            channels: ChannelSwitches::default(),
            max_attempts: 15,
            allowed_networks: Vec::new(),
            secret_rotation_grace_secs: 3600,
            retry: RetrySettings::default(),
            dispatch: DispatchSettings::default(),
            webhook: WebhookSettings::default(),
            retention: RetentionSettings::default(),
            failure: FailureSettings::default(),
        }
    }
}

/// Exponential back-off with jitter. The delay after attempt `n` is
/// `base_delay_ms * 2^(n-1)`, capped at `max_delay_ms`, then moved by up to `jitter` of itself
/// either way. With the defaults (15 attempts, 30 s, 4 h) the fourteen waits add up to
/// 87 330 s, about 24 hours, before jitter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Delay after the first failed attempt, in milliseconds; also the least a `Retry-After`
    /// can ask for.
    pub base_delay_ms: u64,
    /// Longest delay between two attempts, in milliseconds; also the most a `Retry-After`
    /// can ask for.
    pub max_delay_ms: u64,
    /// Fraction (0 to 1) by which a delay is randomly shortened or lengthened, so that
    /// receivers recovering from an outage are not hit by every retry at once.
    pub jitter: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            base_delay_ms: 30_000,
            max_delay_ms: 4 * 3600 * 1000,
            jitter: 0.2,
        }
    }
}

/// The dispatcher's claim loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchSettings {
    /// How long a claimed delivery belongs to this instance, in seconds. A delivery whose
    /// dispatcher died is claimed again after this; keep it well above the webhook timeout.
    pub lease_secs: u64,
    /// Safety-net poll when no wake-up arrives, in milliseconds.
    pub poll_interval_ms: u64,
    /// Most deliveries claimed by one statement, and most in flight on this instance.
    pub batch_size: u32,
    /// Most deliveries in flight to one channel on this instance, so one slow receiver cannot
    /// hold every slot.
    pub max_in_flight_per_channel: u32,
    /// Longest stored excerpt of a response body, in bytes.
    pub response_excerpt_bytes: usize,
    /// On shutdown, how long in-flight deliveries may finish before their leases are released,
    /// in milliseconds.
    pub shutdown_grace_ms: u64,
    /// An instance whose dispatcher has not said it is alive for this long, in seconds, counts
    /// as dead: another instance gives its in-flight deliveries back at once. Dispatchers say
    /// so every fifth of this time.
    pub instance_timeout_secs: u64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            lease_secs: 300,
            poll_interval_ms: 5_000,
            batch_size: 64,
            max_in_flight_per_channel: 8,
            response_excerpt_bytes: 4096,
            shutdown_grace_ms: 5_000,
            instance_timeout_secs: 10,
        }
    }
}

/// Webhook requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Total request timeout when a channel sets no `timeoutMs`, in milliseconds.
    pub default_timeout_ms: u64,
    /// Largest `timeoutMs` a channel may set, in milliseconds.
    pub max_timeout_ms: u64,
    /// Time allowed to open the TCP and TLS connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// The Ed25519 keys that sign every webhook beside the HMAC (published as a JWKS at
    /// `/api/public/webhook-signing-keys.json`).
    pub signing: SigningSettings,
    /// The `WebHook-Request-Origin` of the validation handshake (default: the host of
    /// `public_base_url` when set, else `business-wallet`).
    pub request_origin: Option<String>,
    /// How often an unverified channel's validation handshake is tried again, in seconds.
    pub validation_retry_secs: u64,
}

/// The deployment's Ed25519 webhook signing keys. With no `keys` configured (the embedded
/// default), they are generated into `key_file`, their private halves encrypted with the
/// secret-encryption key, and `business-wallet signing-key rotate` adds the next one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// Keys given by configuration (production). A key signs from its `signs_from` until the
    /// next key's `signs_from`, and is published from the moment it is configured: give a new
    /// key a `signs_from` at least a day ahead so receivers' cached key sets have it.
    pub keys: Vec<SigningKeySetting>,
    /// The file of generated keys when no `keys` are configured. Defaults to
    /// `{data_dir}/webhook-signing-keys.json`.
    pub key_file: Option<PathBuf>,
    /// How long a key that no longer signs stays published, in seconds (default 7 days): a
    /// request signed just before a rotation must still verify when it is retried or checked
    /// later.
    pub grace_secs: u64,
    /// How long `business-wallet signing-key rotate` publishes a new key before it signs, in
    /// seconds (default 1 day; receivers may cache the key set for 5 minutes).
    pub publish_lead_secs: u64,
}

impl Default for SigningSettings {
    fn default() -> Self {
        SigningSettings {
            keys: Vec::new(),
            key_file: None,
            grace_secs: 7 * 24 * 3600,
            publish_lead_secs: 24 * 3600,
        }
    }
}

/// One configured signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeySetting {
    /// The key's name in the key set; defaults to its RFC 7638 JWK thumbprint. Letters,
    /// digits, `-` and `_`, at most 64.
    #[serde(default)]
    pub kid: Option<String>,
    /// Base64 of the 32-byte Ed25519 private key (seed).
    #[serde(serialize_with = "serialize_exposed_key")]
    pub private_key: SecretString,
    /// When the key starts signing (RFC 3339).
    pub signs_from: String,
}

/// Writes the key as its plain value, as the settings' other secrets are (see
/// `config::secret`): serialising is how settings are layered, never how they are logged.
fn serialize_exposed_key<S: Serializer>(key: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(key.expose_secret())
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            default_timeout_ms: 10_000,
            max_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            signing: SigningSettings::default(),
            request_origin: None,
            validation_retry_secs: 60,
        }
    }
}
