//! [`JmsChannel`]: the message it builds for an event, handed to the transport the instance's
//! settings pick ([`super::stomp`] or [`super::amqp`]); each transport keeps one session to the
//! broker, shared by every JMS channel, and classifies the broker's answers itself.

use serde_json::{json, Value};

use super::config::JmsChannelConfig;
use super::transport::{JmsMessage, Transport};
use crate::channels::{Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage};
use crate::config::{JmsProtocol, JmsSettings};
use crate::events::asyncapi::{ContentMode, Header, Transport as AsyncApiTransport};
use crate::events::CloudEvent;

/// Type name of the JMS channel.
pub use crate::channels::kind::JMS;

/// The content type of every message body: a CloudEvents structured-mode envelope.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json;charset=utf-8";

/// The content type of an AMQP message's data section.
pub const AMQP_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// The built-in `JMS` channel type.
pub struct JmsChannel {
    settings: JmsSettings,
    transport: Transport,
}

impl std::fmt::Debug for JmsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JmsChannel").field("url", &self.settings.url).finish()
    }
}

impl JmsChannel {
    /// The channel for the broker in `settings` (already validated). No connection is made yet.
    pub fn new(settings: &JmsSettings) -> JmsChannel {
        JmsChannel {
            settings: settings.clone(),
            transport: Transport::new(settings),
        }
    }

    async fn send(&self, message: &OutboundMessage<'_>, channel: &ChannelConfig) -> Attempt {
        let (config, destination) =
            match JmsChannelConfig::from_value(&channel.config).and_then(|c| c.destination().map(|d| (c, d))) {
                Ok(parsed) => parsed,
                Err(err) => return Attempt::rejected_before_request(format!("invalid channel configuration: {err}")),
            };
        let body = match serde_json::to_string(message.envelope) {
            Ok(body) => body,
            Err(err) => return Attempt::rejected_before_request(format!("the event cannot be rendered: {err}")),
        };
        let envelope = message.envelope;
        let message = JmsMessage {
            destination: &destination,
            body,
            message_id: &envelope.id,
            properties: properties(envelope, self.settings.protocol, config.all_attributes_as_properties()),
        };
        self.transport.send(&message).await
    }
}

/// The prefix of the attribute properties over `protocol`: the CloudEvents AMQP binding's
/// `cloudEvents:` over AMQP 1.0, and over STOMP the binding's other spelling, `cloudEvents_`,
/// because the broker makes JMS properties of STOMP headers and a JMS selector can only name a
/// property that is a Java identifier (`:` is not allowed in one).
pub fn attribute_prefix(protocol: JmsProtocol) -> &'static str {
    match protocol {
        JmsProtocol::Amqp => "cloudEvents:",
        JmsProtocol::Stomp => "cloudEvents_",
    }
}

/// The message properties of `envelope`: always `ce_id`, `ce_type` and `ce_walletexternalkey`
/// (what consumers of the original product select on), then, when `all_attributes`, every
/// attribute (trace context included) under the protocol's [`attribute_prefix`].
fn properties(envelope: &CloudEvent, protocol: JmsProtocol, all_attributes: bool) -> Vec<(String, String)> {
    let mut properties = vec![
        ("ce_id".to_string(), envelope.id.clone()),
        ("ce_type".to_string(), envelope.event_type.clone()),
        ("ce_walletexternalkey".to_string(), envelope.walletexternalkey.clone()),
    ];
    if all_attributes {
        let prefix = attribute_prefix(protocol);
        properties.extend(
            envelope
                .attributes()
                .into_iter()
                .map(|(name, value)| (format!("{prefix}{name}"), value.to_string())),
        );
    }
    properties
}

impl Channel for JmsChannel {
    fn kind(&self) -> &str {
        JMS
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        JmsChannelConfig::from_value(config).map(|_| ())
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(self.send(message, channel))
    }

    fn asyncapi(&self) -> Option<AsyncApiTransport> {
        Some(transport(self.settings.protocol))
    }

    fn destination(&self, config: &Value) -> Option<String> {
        JmsChannelConfig::from_value(config).ok().map(|c| c.destination)
    }
}

/// What a JMS message looks like over `protocol`, for the AsyncAPI document.
pub fn transport(protocol: JmsProtocol) -> AsyncApiTransport {
    let (how, content_type, headers): (&str, _, fn(&CloudEvent) -> Vec<Header>) = match protocol {
        JmsProtocol::Stomp => (
            "STOMP 1.2: a persistent `SEND` to `/queue/<name>` or `/topic/<name>`, marked as a text \
             message for ActiveMQ (`amq-msg-type: text`) unless `integration.channels.jms.jms_mapping` \
             is off; the broker's receipt makes the delivery DELIVERED",
            STRUCTURED_CONTENT_TYPE,
            stomp_headers,
        ),
        JmsProtocol::Amqp => (
            "AMQP 1.0 with the JMS mapping's annotations (a TextMessage) unless \
             `integration.channels.jms.jms_mapping` is off: a durable message whose `message-id` is \
             the event's `id`, sent to the configured queue or topic prefix followed by the name; \
             the broker's `accepted` makes the delivery DELIVERED",
            AMQP_CONTENT_TYPE,
            amqp_headers,
        ),
    };
    AsyncApiTransport {
        name: "jms",
        title: JMS,
        description: format!(
            "A text message on the channel's `jms.destination` at the instance's JMS broker \
             (`integration.channels.jms`), in CloudEvents structured mode: the text is the JSON \
             envelope. The string properties `ce_id`, `ce_type` and `ce_walletexternalkey` repeat \
             those attributes, so that consumers can select on them (for example \
             `ce_type = 'com.credenco.businesswallet.wallet.created.v1'`). A channel with \
             `jms.cloudEventsProperties: true` also sets every CloudEvents attribute (the trace \
             context included) as a string property named as the CloudEvents AMQP binding says: \
             `cloudEvents:type` and so on over AMQP 1.0, and `cloudEvents_type` and so on over \
             STOMP, where the broker makes JMS properties of the headers and a selector can only \
             name a Java identifier (for example `cloudEvents_type = \
             'com.credenco.businesswallet.wallet.created.v1'`). This instance speaks {how}, so its \
             prefix is `{prefix}`.",
            prefix = attribute_prefix(protocol),
        ),
        address: Some("{destination}"),
        parameters: json!({
            "destination": {
                "description": "The channel's `jms.destination`: `queue://<name>`, `topic://<name>`, or a bare name (a queue).",
            }
        }),
        mode: ContentMode::Structured,
        content_type,
        headers,
        operation_bindings: None,
        message_bindings: None,
    }
}

/// The properties every JMS message carries, whatever the protocol.
fn jms_properties(example: &CloudEvent) -> Vec<Header> {
    let string = |description: &str| json!({ "type": "string", "description": description });
    vec![
        Header::required(
            "ce_id",
            string("JMS string property: the event's `id`."),
            example.id.clone(),
        ),
        Header::required(
            "ce_type",
            json!({ "type": "string", "const": example.event_type, "description": "JMS string property: the event's `type`." }),
            example.event_type.clone(),
        ),
        Header::required(
            "ce_walletexternalkey",
            string("JMS string property: the event's `walletexternalkey`."),
            example.walletexternalkey.clone(),
        ),
    ]
}

/// The properties of `jms.cloudEventsProperties`: every attribute under `prefix`, on the
/// channels that ask for them only.
fn attribute_properties(example: &CloudEvent, prefix: &str) -> Vec<Header> {
    example
        .attributes()
        .into_iter()
        .map(|(name, _)| {
            Header::optional(
                format!("{prefix}{name}"),
                json!({
                    "type": "string",
                    "description": format!(
                        "String property, on channels with `jms.cloudEventsProperties: true`: the event's `{name}` attribute{}.",
                        if matches!(name, "traceparent" | "tracestate") { ", when the event has it" } else { "" }
                    ),
                }),
            )
        })
        .collect()
}

fn stomp_headers(example: &CloudEvent) -> Vec<Header> {
    let mut headers = vec![
        Header::required(
            "content-type",
            json!({ "type": "string", "const": STRUCTURED_CONTENT_TYPE }),
            STRUCTURED_CONTENT_TYPE,
        ),
        Header::required("persistent", json!({ "type": "string", "const": "true" }), "true"),
        Header::optional(
            "amq-msg-type",
            json!({
                "type": "string",
                "const": "text",
                "description": "Makes ActiveMQ deliver a TextMessage; sent unless `integration.channels.jms.jms_mapping` is off.",
            }),
        ),
    ];
    headers.extend(jms_properties(example));
    headers.extend(attribute_properties(example, attribute_prefix(JmsProtocol::Stomp)));
    headers
}

fn amqp_headers(example: &CloudEvent) -> Vec<Header> {
    let mut headers = vec![
        Header::required(
            "content-type",
            json!({ "type": "string", "const": AMQP_CONTENT_TYPE, "description": "The AMQP message's content type." }),
            AMQP_CONTENT_TYPE,
        ),
        Header::required(
            "message-id",
            json!({ "type": "string", "description": "The AMQP message id: the event's `id`." }),
            example.id.clone(),
        ),
    ];
    headers.extend(jms_properties(example));
    headers.extend(attribute_properties(example, attribute_prefix(JmsProtocol::Amqp)));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_a_property_only_when_asked_for_with_the_protocols_prefix() {
        let mut envelope = crate::events::WALLET_CREATED_V1.sample_envelope("http://x");
        envelope.tracestate = Some("congo=t61rcWkgMzE".into());
        let names = |protocol, all| -> Vec<String> {
            properties(&envelope, protocol, all)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        for protocol in [JmsProtocol::Stomp, JmsProtocol::Amqp] {
            assert_eq!(names(protocol, false), ["ce_id", "ce_type", "ce_walletexternalkey"]);
        }
        let stomp = properties(&envelope, JmsProtocol::Stomp, true);
        assert_eq!(stomp.len(), 3 + 12);
        assert!(stomp.contains(&("cloudEvents_type".into(), envelope.event_type.clone())));
        assert!(stomp.contains(&("cloudEvents_traceparent".into(), envelope.traceparent.clone().unwrap())));
        assert!(stomp.contains(&("cloudEvents_tracestate".into(), "congo=t61rcWkgMzE".into())));
        // Names a JMS selector can use: Java identifiers.
        for (name, _) in &stomp {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        }
        let amqp = properties(&envelope, JmsProtocol::Amqp, true);
        assert!(amqp.contains(&("cloudEvents:specversion".into(), "1.0".into())));
        assert!(amqp.contains(&("cloudEvents:id".into(), envelope.id.clone())));
        assert!(amqp.contains(&("ce_type".into(), envelope.event_type.clone())));
    }
}
