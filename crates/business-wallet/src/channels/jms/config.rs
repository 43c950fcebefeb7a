//! The JMS type block stored in `integration_channel.config`: the destination, and whether
//! every CloudEvents attribute is also a message property. The broker and its credentials are
//! instance settings (`integration.channels.jms`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channels::InvalidConfig;

/// Longest destination name accepted.
const MAX_DESTINATION_LENGTH: usize = 255;

/// Where to send, and which properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JmsChannelConfig {
    /// `queue://name`, `topic://name`, or a bare `name` (a queue).
    pub destination: String,
    /// Also set every CloudEvents attribute as a message property, named as the CloudEvents
    /// AMQP binding says (`cloudEvents:type` over AMQP 1.0, `cloudEvents_type` over STOMP,
    /// where names must be JMS selector identifiers). Left out, null or false: only the
    /// `ce_id`, `ce_type` and `ce_walletexternalkey` properties, as before the option existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_events_properties: Option<bool>,
}

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A point-to-point queue.
    Queue(String),
    /// A publish-subscribe topic.
    Topic(String),
}

impl Destination {
    /// The name without its kind.
    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(name) | Destination::Topic(name) => name,
        }
    }

    /// The STOMP destination header ActiveMQ and Artemis understand: `/queue/x`, `/topic/x`.
    pub fn stomp(&self) -> String {
        match self {
            Destination::Queue(name) => format!("/queue/{name}"),
            Destination::Topic(name) => format!("/topic/{name}"),
        }
    }
}

impl JmsChannelConfig {
    /// Whether every attribute is also a message property.
    pub fn all_attributes_as_properties(&self) -> bool {
        self.cloud_events_properties.unwrap_or(false)
    }

    /// Reads and checks a stored or submitted type block.
    ///
    /// # Errors
    /// Unknown or missing fields, or a destination that cannot be used.
    pub fn from_value(value: &Value) -> Result<JmsChannelConfig, InvalidConfig> {
        let config: JmsChannelConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| InvalidConfig(format!("jms.{}: {}", e.path(), e.inner())))?;
        config.destination()?;
        Ok(config)
    }

    /// The destination, parsed.
    ///
    /// # Errors
    /// An empty or unusable name.
    pub fn destination(&self) -> Result<Destination, InvalidConfig> {
        let raw = self.destination.as_str();
        let destination = if let Some(name) = raw.strip_prefix("queue://") {
            Destination::Queue(name.to_string())
        } else if let Some(name) = raw.strip_prefix("topic://") {
            Destination::Topic(name.to_string())
        } else if raw.contains("://") {
            return Err(InvalidConfig(
                "jms.destination must start with queue:// or topic://, or be a bare queue name".into(),
            ));
        } else {
            Destination::Queue(raw.to_string())
        };
        let name = destination.name();
        if name.is_empty() || name.len() > MAX_DESTINATION_LENGTH {
            return Err(InvalidConfig(format!(
                "jms.destination needs a name of 1 to {MAX_DESTINATION_LENGTH} characters"
            )));
        }
        if name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | ',' | '*' | '>'))
        {
            return Err(InvalidConfig(
                "jms.destination may not hold spaces, control characters, `/`, `,`, `*` or `>`".into(),
            ));
        }
        Ok(destination)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(destination: &str) -> Result<Destination, InvalidConfig> {
        JmsChannelConfig::from_value(&json!({ "destination": destination })).and_then(|c| c.destination())
    }

    #[test]
    fn queues_topics_and_bare_names() {
        assert_eq!(parse("queue://wallet.events").unwrap().stomp(), "/queue/wallet.events");
        assert_eq!(parse("topic://wallet.events").unwrap().stomp(), "/topic/wallet.events");
        assert_eq!(parse("events").unwrap(), Destination::Queue("events".into()));
    }

    #[test]
    fn bad_destinations_are_named() {
        for bad in [
            "",
            "queue://",
            "jms://x",
            "has space",
            "a/b",
            "wild.*",
            &"x".repeat(256),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.0.starts_with("jms.destination"), "{bad}: {err}");
        }
        let err = JmsChannelConfig::from_value(&json!({"destination": "q", "x": 1})).unwrap_err();
        assert!(err.0.contains('x'), "{err}");
    }

    #[test]
    fn attribute_properties_are_off_unless_asked_for() {
        let on = |block: Value| JmsChannelConfig::from_value(&block).map(|c| c.all_attributes_as_properties());
        assert!(!on(json!({"destination": "q"})).unwrap());
        assert!(!on(json!({"destination": "q", "cloudEventsProperties": null})).unwrap());
        assert!(!on(json!({"destination": "q", "cloudEventsProperties": false})).unwrap());
        assert!(on(json!({"destination": "q", "cloudEventsProperties": true})).unwrap());
        for bad in [json!("true"), json!(1), json!({})] {
            let err = on(json!({"destination": "q", "cloudEventsProperties": bad})).unwrap_err();
            assert!(err.0.starts_with("jms.cloudEventsProperties"), "{bad}: {err}");
        }
        let config = JmsChannelConfig::from_value(&json!({"destination": "q"})).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), json!({"destination": "q"}));
    }
}
