//! Which built-in channel types exist, and the brokers the Kafka and JMS channels share.

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::secret;

/// Which built-in channel types exist in an on-premise deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSwitches {
    /// Webhook channels.
    pub webhook: Switch,
    /// Kafka channels and the producer they share.
    pub kafka: KafkaSettings,
    /// JMS channels and the broker connection they use.
    pub jms: JmsSettings,
    /// Pull channels (on-premise): the receiver fetches its events over HTTP and commits them.
    /// Off by default.
    pub pull: Switch,
}

impl Default for ChannelSwitches {
    fn default() -> Self {
        ChannelSwitches {
            webhook: Switch { enabled: true },
            kafka: KafkaSettings::default(),
            jms: JmsSettings::default(),
            pull: Switch { enabled: false },
        }
    }
}

/// The Kafka cluster that every Kafka channel of this instance publishes to (a channel only
/// names its topic).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Whether Kafka channels are on offer (needs the `kafka` Cargo feature).
    pub enabled: bool,
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// The producer's `client.id`, as brokers log and meter it.
    pub client_id: String,
    /// How long the producer keeps trying one record before the attempt is retried later, in
    /// milliseconds (librdkafka's `message.timeout.ms`). Must stay below the dispatcher lease.
    pub message_timeout_ms: u64,
    /// Further librdkafka producer properties, passed through unchanged: security protocol,
    /// SASL and TLS settings, and the like. Properties the channel sets itself are refused.
    pub properties: std::collections::BTreeMap<String, String>,
}

// By hand, so that SASL and TLS secrets among the properties are not printed.
impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: std::collections::BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| (key.as_str(), secret::redact_property(key, value)))
            .collect();
        f.debug_struct("KafkaSettings")
            .field("enabled", &self.enabled)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("properties", &properties)
            .finish()
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            enabled: false,
            bootstrap_servers: String::new(),
            client_id: "business-wallet".into(),
            message_timeout_ms: 30_000,
            properties: std::collections::BTreeMap::new(),
        }
    }
}

/// Producer properties the Kafka channel sets itself; `properties` may not replace them.
pub const KAFKA_FIXED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "partitioner",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

/// The JMS broker that every JMS channel of this instance sends to (a channel only names its
/// destination).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JmsSettings {
    /// Whether JMS channels are on offer (needs the `jms` Cargo feature).
    pub enabled: bool,
    /// The wire protocol: `stomp` (ActiveMQ Classic, Artemis) or `amqp` (AMQP 1.0: Artemis,
    /// ActiveMQ, IBM MQ, RabbitMQ).
    pub protocol: JmsProtocol,
    /// The broker address: `stomp://host:port` (default port 61613) for STOMP,
    /// `amqp://host:port` (default port 5672) or `amqps://...` for AMQP 1.0.
    pub url: String,
    /// User name to log in with, if the broker wants one.
    pub username: Option<String>,
    /// Password to log in with.
    #[serde(serialize_with = "secret::serialize_exposed")]
    pub password: Option<SecretString>,
    /// Mark messages so that a JMS consumer reads a `TextMessage`: ActiveMQ's
    /// `amq-msg-type: text` header over STOMP, the AMQP JMS mapping's message annotations over
    /// AMQP. Turn off for brokers that do not understand them (IBM MQ).
    pub jms_mapping: bool,
    /// Time allowed for connecting and for the broker to confirm one message, in milliseconds.
    pub timeout_ms: u64,
    /// AMQP only: put before a queue's name to make its target address (like Qpid JMS's
    /// `jms.queuePrefix`), e.g. `/queue/` for RabbitMQ 3.
    pub amqp_queue_prefix: String,
    /// AMQP only: put before a topic's name to make its target address, e.g. `/topic/`.
    pub amqp_topic_prefix: String,
}

impl Default for JmsSettings {
    fn default() -> Self {
        JmsSettings {
            enabled: false,
            protocol: JmsProtocol::Stomp,
            url: String::new(),
            username: None,
            password: None,
            jms_mapping: true,
            timeout_ms: 10_000,
            amqp_queue_prefix: String::new(),
            amqp_topic_prefix: String::new(),
        }
    }
}

impl JmsSettings {
    /// The password in clear, to log in with; nothing else should see it.
    pub fn expose_password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

/// How the JMS channel talks to its broker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JmsProtocol {
    /// STOMP 1.2.
    Stomp,
    /// AMQP 1.0.
    Amqp,
}

/// An on/off switch.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Switch {
    /// Whether the feature is on.
    pub enabled: bool,
}
