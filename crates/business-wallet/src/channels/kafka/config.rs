//! The Kafka type block stored in `integration_channel.config`: the topic and the content mode.
//! The cluster and its credentials are instance settings (`integration.channels.kafka`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channels::InvalidConfig;

/// Longest topic name Kafka accepts.
const MAX_TOPIC_LENGTH: usize = 249;

/// Where to publish, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaChannelConfig {
    /// The topic the records go to.
    pub topic: String,
    /// How the event is put in the record; left out or null: structured mode, as before the
    /// option existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_mode: Option<KafkaContentMode>,
}

/// The CloudEvents Kafka protocol binding's two content modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KafkaContentMode {
    /// The JSON envelope as the value, `content-type: application/cloudevents+json` (the
    /// default, as the original product sends).
    #[default]
    Structured,
    /// The data alone as the value, each attribute a `ce_` header, `datacontenttype` as the
    /// `content-type` header.
    Binary,
}

impl KafkaChannelConfig {
    /// The content mode, structured unless the block asks for binary.
    pub fn mode(&self) -> KafkaContentMode {
        self.content_mode.unwrap_or_default()
    }
}

impl KafkaChannelConfig {
    /// Reads and checks a stored or submitted type block.
    ///
    /// # Errors
    /// Unknown or missing fields, or a topic name Kafka would refuse.
    pub fn from_value(value: &Value) -> Result<KafkaChannelConfig, InvalidConfig> {
        let config: KafkaChannelConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| InvalidConfig(format!("kafka.{}: {}", e.path(), e.inner())))?;
        check_topic(&config.topic)?;
        Ok(config)
    }
}

/// Kafka's rules for topic names: 1 to 249 characters from `[a-zA-Z0-9._-]`, and not `.` or
/// `..`.
fn check_topic(topic: &str) -> Result<(), InvalidConfig> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LENGTH {
        return Err(InvalidConfig(format!(
            "kafka.topic must be 1 to {MAX_TOPIC_LENGTH} characters long"
        )));
    }
    if topic == "." || topic == ".." {
        return Err(InvalidConfig("kafka.topic cannot be `.` or `..`".into()));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidConfig(format!(
            "kafka.topic may only hold letters, digits, `.`, `_` and `-` (found `{bad}`)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        let config = KafkaChannelConfig::from_value(&json!({"topic": "wallet.events_v1-x"})).unwrap();
        assert_eq!(config.topic, "wallet.events_v1-x");
        for bad in ["", ".", "..", "has space", "slash/topic", "ümlaut", &"x".repeat(250)] {
            let err = KafkaChannelConfig::from_value(&json!({ "topic": bad })).unwrap_err();
            assert!(err.0.starts_with("kafka.topic"), "{bad}: {err}");
        }
        assert!(KafkaChannelConfig::from_value(&json!({"topic": &"x".repeat(249)})).is_ok());
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let err = KafkaChannelConfig::from_value(&json!({"topic": "t", "key": "k"})).unwrap_err();
        assert!(err.0.contains("key"), "{err}");
        let err = KafkaChannelConfig::from_value(&json!({})).unwrap_err();
        assert!(err.0.contains("topic"), "{err}");
    }

    #[test]
    fn the_content_mode_is_structured_unless_binary_is_asked_for() {
        let mode = |block: Value| KafkaChannelConfig::from_value(&block).map(|c| c.mode());
        assert_eq!(mode(json!({"topic": "t"})).unwrap(), KafkaContentMode::Structured);
        assert_eq!(
            mode(json!({"topic": "t", "contentMode": null})).unwrap(),
            KafkaContentMode::Structured
        );
        assert_eq!(
            mode(json!({"topic": "t", "contentMode": "STRUCTURED"})).unwrap(),
            KafkaContentMode::Structured
        );
        assert_eq!(
            mode(json!({"topic": "t", "contentMode": "BINARY"})).unwrap(),
            KafkaContentMode::Binary
        );
        for bad in [json!("binary"), json!("TEXT"), json!(1), json!(true)] {
            let err = mode(json!({"topic": "t", "contentMode": bad})).unwrap_err();
            assert!(err.0.starts_with("kafka.contentMode"), "{bad}: {err}");
        }
        // A block without the option reads back without it: stored channels are unchanged.
        let config = KafkaChannelConfig::from_value(&json!({"topic": "t"})).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), json!({"topic": "t"}));
    }
}
