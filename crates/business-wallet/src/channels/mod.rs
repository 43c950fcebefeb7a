//! Integration channels: the one trait every channel type implements, the registry of the
//! types this instance offers, and the built-in types.
//!
//! A channel turns one event into one request to a receiver and says how that went, as an
//! [`Outcome`]: delivered, retryable or rejected. It never touches the database and never
//! decides when to retry; that is the dispatcher's job. Custom adapters implement the same
//! [`Channel`] trait and are registered in the same [`ChannelRegistry`].
//!
//! - [`prelude`]: the shared vocabulary (trait, message, outcome, records).
//! - [`secrets`]: the stored, encrypted secrets of a channel and the signing secret format.
//! - [`webhook`]: HTTP POST in CloudEvents binary mode, signed, behind the SSRF gate.
//! - `kafka` (Cargo feature `kafka`): records in CloudEvents structured mode on a topic.
//! - `jms` (Cargo feature `jms`): text messages in structured mode on a JMS queue or topic.
//! - [`pull`]: nothing is sent; the receiver fetches batches over HTTP and commits them.

#[cfg(feature = "jms")]
pub mod jms;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod kind;
pub mod prelude;
pub mod pull;
pub mod secrets;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::config::{DeploymentMode, Settings};
use crate::domain::WalletKey;
use crate::events::EventType;
pub use kind::{ChannelKind, WEBHOOK};
pub use prelude::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord, ResponseRecord,
};
pub use secrets::{generate_hmac_secret, ChannelSecrets};

/// The channel types this instance can deliver to, by type name (`WEBHOOK`, a custom
/// adapter's type). Cheap to clone.
#[derive(Clone, Default)]
pub struct ChannelRegistry {
    channels: BTreeMap<String, Arc<dyn Channel>>,
    signing_keys: Option<Arc<webhook::SigningKeys>>,
    /// The built-in webhook type, for its validation handshake (`None` when it is off or a
    /// custom adapter took its place).
    webhook: Option<Arc<webhook::WebhookChannel>>,
}

impl std::fmt::Debug for ChannelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.channels.keys()).finish()
    }
}

impl ChannelRegistry {
    /// The built-in channel types that the settings switch on.
    ///
    /// # Errors
    /// The webhook HTTP client cannot be built (for example, no TLS roots).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<ChannelRegistry> {
        let mut registry = ChannelRegistry::default();
        let webhook_on = settings.mode == DeploymentMode::Saas || settings.integration.channels.webhook.enabled;
        if webhook_on {
            let webhook = Arc::new(webhook::WebhookChannel::from_settings(settings)?);
            registry.signing_keys = webhook.signing_keys().cloned();
            registry.register(webhook.clone());
            registry.webhook = Some(webhook);
        }
        // Brokers are on-premise only (the settings refuse them in saas mode as well).
        let on_premise = settings.mode == DeploymentMode::OnPremise;
        #[cfg(feature = "kafka")]
        if on_premise && settings.integration.channels.kafka.enabled {
            registry.register(Arc::new(kafka::KafkaChannel::new(
                &settings.integration.channels.kafka,
            )?));
        }
        #[cfg(feature = "jms")]
        if on_premise && settings.integration.channels.jms.enabled {
            registry.register(Arc::new(jms::JmsChannel::new(&settings.integration.channels.jms)));
        }
        // Like the brokers, pull channels are on-premise only (SaaS offers webhooks alone).
        if on_premise && settings.integration.channels.pull.enabled {
            registry.register(Arc::new(pull::PullChannel));
        }
        Ok(registry)
    }

    /// Adds (or replaces) a channel type under its [`Channel::kind`].
    pub fn register(&mut self, channel: Arc<dyn Channel>) {
        if channel.kind() == WEBHOOK {
            self.webhook = None;
        }
        self.channels.insert(channel.kind().to_string(), channel);
    }

    /// The built-in webhook type, when it is on (and no custom adapter replaced it): what
    /// sends the validation handshake.
    pub fn webhook(&self) -> Option<&Arc<webhook::WebhookChannel>> {
        self.webhook.as_ref()
    }

    /// The deployment's webhook signing keys (published as a JWKS), when the built-in webhook
    /// type is on.
    pub fn signing_keys(&self) -> Option<&Arc<webhook::SigningKeys>> {
        self.signing_keys.as_ref()
    }

    /// The channel type called `kind`, when it is on.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn Channel>> {
        self.channels.get(kind).cloned()
    }

    /// Names of the types that are on.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// The types that are on, in the order the UI offers them: the built-in ones first, then
    /// the custom adapters by name.
    pub fn offered(&self) -> Vec<ChannelKind> {
        let mut kinds: Vec<ChannelKind> = self.kinds().map(ChannelKind::parse).collect();
        kinds.sort();
        kinds
    }

    /// How the types that are on send events (those that describe themselves), for the
    /// AsyncAPI document.
    pub fn transports(&self) -> Vec<crate::events::asyncapi::Transport> {
        self.channels
            .values()
            .filter_map(|channel| channel.asyncapi())
            .collect()
    }
}

/// The result of a test send: one real, signed request with a catalog sample, no delivery row,
/// no retry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSendReport {
    /// `DELIVERED`, `RETRYABLE` or `REJECTED`: what the dispatcher would have made of it.
    pub outcome: &'static str,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it was not delivered.
    pub error: Option<String>,
    /// Time from the start of the send to its end, in milliseconds.
    pub duration_ms: u64,
    /// The request as sent (secrets redacted).
    #[schema(value_type = Option<Object>)]
    pub request: Option<RequestRecord>,
    /// The response, when there was one.
    #[schema(value_type = Option<Object>)]
    pub response: Option<ResponseRecord>,
    /// For a webhook channel with `validationHandshake`: the validation handshake, sent before
    /// the sample (which is sent whatever the handshake found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<webhook::handshake::HandshakeReport>,
}

/// Sends the canonical sample of `event_type` once through `channel`, signed with the
/// channel's secrets and about the channel's `wallet` (the sample's own wallet key for a
/// platform channel): the `POST .../test` operation. Nothing is stored and nothing is retried.
/// For an unsaved draft, pass a [`ChannelConfig`] whose secrets hold a throwaway
/// [`generate_hmac_secret`].
pub async fn test_send(
    channel: &dyn Channel,
    config: &ChannelConfig,
    event_type: &EventType,
    public_base_url: &str,
    wallet: Option<&WalletKey>,
) -> TestSendReport {
    let envelope = event_type.sample_envelope_for(public_base_url, wallet);
    let body = envelope.data.to_string().into_bytes();
    let now = crate::store::now_ms();
    let message = OutboundMessage {
        envelope: &envelope,
        body: &body,
        signing_secrets: config.secrets.signing_secrets(now),
        attempt: 1,
    };
    let started = Instant::now();
    let attempt = channel.deliver(&message, config).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let outcome = attempt.outcome.name();
    let error = attempt.outcome.error().map(str::to_string);
    let response = attempt.outcome.response().cloned();
    TestSendReport {
        outcome,
        status: response.as_ref().map(|r| r.status),
        error,
        duration_ms,
        request: attempt.request,
        response,
        handshake: None,
    }
}
