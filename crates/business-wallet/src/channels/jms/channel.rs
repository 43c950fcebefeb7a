//! [`JmsChannel`]: one STOMP session or AMQP connection to the instance's broker, shared by
//! every JMS channel and opened again after it fails; the message it builds for an event; and
//! where the broker's answers are classified (STOMP ERROR frames in `classify`, AMQP
//! dispositions in `send_amqp`).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::amqp::{AmqpSession, Outgoing, Sent};
use super::config::{Destination, JmsChannelConfig};
use super::stomp::{self, StompError};
use crate::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord, ResponseRecord,
};
use crate::config::{JmsProtocol, JmsSettings};
use crate::events::asyncapi::{ContentMode, Header, Transport};
use crate::events::CloudEvent;

/// Type name of the JMS channel.
pub const JMS: &str = "JMS";

/// The content type of every message body: a CloudEvents structured-mode envelope.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json;charset=utf-8";

/// The content type of an AMQP message's data section.
pub const AMQP_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// Port used when the STOMP URL names none.
const DEFAULT_STOMP_PORT: u16 = 61613;

/// The built-in `JMS` channel type.
pub struct JmsChannel {
    settings: JmsSettings,
    session: Mutex<Option<stomp::Connection>>,
    amqp: Mutex<Option<AmqpSession>>,
}

impl std::fmt::Debug for JmsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JmsChannel").field("url", &self.settings.url).finish()
    }
}

/// What the broker's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Retry,
    Reject,
}

impl JmsChannel {
    /// The channel for the broker in `settings` (already validated). No connection is made yet.
    pub fn new(settings: &JmsSettings) -> JmsChannel {
        JmsChannel {
            settings: settings.clone(),
            session: Mutex::new(None),
            amqp: Mutex::new(None),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.timeout_ms)
    }

    async fn send(&self, message: &OutboundMessage<'_>, channel: &ChannelConfig) -> Attempt {
        let destination = match JmsChannelConfig::from_value(&channel.config).and_then(|c| c.destination()) {
            Ok(destination) => destination,
            Err(err) => return Attempt::rejected_before_request(format!("invalid channel configuration: {err}")),
        };
        let body = match serde_json::to_string(message.envelope) {
            Ok(body) => body,
            Err(err) => return Attempt::rejected_before_request(format!("the event cannot be rendered: {err}")),
        };
        if self.settings.protocol == JmsProtocol::Amqp {
            return self.send_amqp(message, &destination, body).await;
        }
        let envelope = message.envelope;
        let mut headers = vec![
            ("content-type", STRUCTURED_CONTENT_TYPE.to_string()),
            ("persistent", "true".to_string()),
        ];
        if self.settings.jms_mapping {
            // ActiveMQ makes a TextMessage of it (without it, a BytesMessage).
            headers.push(("amq-msg-type", "text".to_string()));
        }
        // Other headers become JMS string properties: consumers can select on them, e.g.
        // `ce_type = 'com.credenco.businesswallet.wallet.created.v1'`.
        headers.push(("ce_id", envelope.id.clone()));
        headers.push(("ce_type", envelope.event_type.clone()));
        headers.push(("ce_walletexternalkey", envelope.walletexternalkey.clone()));
        let stomp_destination = destination.stomp();
        let request = RequestRecord {
            method: "SEND".into(),
            url: stomp_destination.clone(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            body: body.clone(),
        };
        let result = tokio::time::timeout(
            self.timeout(),
            self.send_on_session(&stomp_destination, &headers, body.as_bytes()),
        )
        .await;
        let outcome = match result {
            Ok(Ok(receipt)) => Outcome::Delivered {
                response: Some(ResponseRecord {
                    status: 0,
                    headers: vec![("receipt-id".into(), receipt)],
                    body_excerpt: String::new(),
                }),
            },
            Ok(Err(err)) => {
                let error = err.to_string();
                match classify(&err) {
                    Verdict::Retry => Outcome::Retryable {
                        error,
                        retry_after: None,
                        response: None,
                    },
                    Verdict::Reject => Outcome::Rejected { error, response: None },
                }
            }
            Err(_elapsed) => {
                // The session is in an unknown state now.
                *self.session.lock().await = None;
                Outcome::Retryable {
                    error: format!(
                        "no receipt from the STOMP broker within {} ms",
                        self.settings.timeout_ms
                    ),
                    retry_after: None,
                    response: None,
                }
            }
        };
        Attempt {
            request: Some(request),
            outcome,
        }
    }

    /// Sends on the shared session, opening it when needed. A session that fails is dropped;
    /// when an old session turns out to be dead (the broker restarted), the message is sent
    /// once more on a new one.
    async fn send_on_session(
        &self,
        destination: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<String, StompError> {
        let mut session = self.session.lock().await;
        if let Some(connection) = session.as_mut() {
            match connection.send(destination, headers, body).await {
                Ok(receipt) => return Ok(receipt),
                Err(StompError::Io(_)) => *session = None,
                Err(err) => {
                    *session = None;
                    return Err(err);
                }
            }
        }
        let connection = session.insert(self.connect().await?);
        let result = connection.send(destination, headers, body).await;
        if result.is_err() {
            *session = None;
        }
        result
    }

    /// Sends over AMQP 1.0: a data section holding the envelope, durable, with the type and id
    /// as application properties (and the JMS mapping annotations when switched on).
    async fn send_amqp(&self, message: &OutboundMessage<'_>, destination: &Destination, body: String) -> Attempt {
        let envelope = message.envelope;
        let (address, topic) = match destination {
            Destination::Queue(name) => (format!("{}{name}", self.settings.amqp_queue_prefix), false),
            Destination::Topic(name) => (format!("{}{name}", self.settings.amqp_topic_prefix), true),
        };
        let properties = [
            ("ce_id", envelope.id.clone()),
            ("ce_type", envelope.event_type.clone()),
            ("ce_walletexternalkey", envelope.walletexternalkey.clone()),
        ];
        let mut shown: Vec<(String, String)> = vec![
            ("content-type".into(), AMQP_CONTENT_TYPE.into()),
            ("durable".into(), "true".into()),
            ("message-id".into(), envelope.id.clone()),
        ];
        shown.extend(properties.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let request = RequestRecord {
            method: "TRANSFER".into(),
            url: address.clone(),
            headers: shown,
            body: body.clone(),
        };
        let outgoing = Outgoing {
            address: &address,
            topic,
            content_type: AMQP_CONTENT_TYPE,
            body: body.as_bytes(),
            message_id: &envelope.id,
            properties: &properties,
            jms_mapping: self.settings.jms_mapping,
        };
        let result = tokio::time::timeout(self.timeout(), self.send_on_amqp(&outgoing)).await;
        let retry = |error: String| Outcome::Retryable {
            error,
            retry_after: None,
            response: None,
        };
        let outcome = match result {
            Ok(Ok(Sent::Accepted)) => Outcome::Delivered {
                response: Some(ResponseRecord {
                    status: 0,
                    headers: vec![("disposition".into(), "accepted".into())],
                    body_excerpt: String::new(),
                }),
            },
            Ok(Ok(Sent::Rejected(error))) => Outcome::Rejected { error, response: None },
            Ok(Ok(Sent::Failed(error))) | Ok(Err(error)) => retry(error),
            Err(_elapsed) => {
                // The session is in an unknown state now: out of the shared slot at once, and
                // closed in the background within the time limit. A broker that stopped
                // answering never completes the close handshake, and waiting for it here (with
                // the slot locked) would hold up every later JMS delivery of this instance.
                let stale = self.amqp.lock().await.take();
                if let Some(session) = stale {
                    let limit = self.timeout();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(limit, session.close()).await;
                    });
                }
                retry(format!(
                    "no disposition from the AMQP broker within {} ms",
                    self.settings.timeout_ms
                ))
            }
        };
        Attempt {
            request: Some(request),
            outcome,
        }
    }

    /// Sends on the shared AMQP session, opening it when needed; a session whose transfer
    /// fails is dropped, and an old one that turns out dead is replaced straight away, once.
    async fn send_on_amqp(&self, outgoing: &Outgoing<'_>) -> Result<Sent, String> {
        let mut session = self.amqp.lock().await;
        if let Some(open) = session.as_mut() {
            match open.send(outgoing).await {
                Ok(sent) => return Ok(sent),
                Err(_) => {
                    if let Some(dead) = session.take() {
                        dead.close().await;
                    }
                }
            }
        }
        let open = session.insert(AmqpSession::open(&self.amqp_url()?).await?);
        let result = open.send(outgoing).await;
        if result.is_err() {
            if let Some(dead) = session.take() {
                dead.close().await;
            }
        }
        result
    }

    /// The AMQP URL with the configured credentials (they are kept out of the URL setting).
    fn amqp_url(&self) -> Result<String, String> {
        let mut url = url::Url::parse(&self.settings.url).map_err(|e| format!("integration.channels.jms.url: {e}"))?;
        if url.port().is_none() {
            let _ = url.set_port(Some(if url.scheme() == "amqps" { 5671 } else { 5672 }));
        }
        if let Some(username) = &self.settings.username {
            let _ = url.set_username(username);
            let _ = url.set_password(self.settings.expose_password());
        }
        Ok(url.to_string())
    }

    async fn connect(&self) -> Result<stomp::Connection, StompError> {
        let url = url::Url::parse(&self.settings.url)
            .map_err(|e| StompError::Protocol(format!("integration.channels.jms.url: {e}")))?;
        let host = url.host_str().unwrap_or("localhost");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port().unwrap_or(DEFAULT_STOMP_PORT);
        stomp::Connection::connect(
            host,
            port,
            self.settings.username.as_deref(),
            self.settings.expose_password(),
        )
        .await
        // A refused login is the instance's configuration, not the message: keep retrying
        // until an operator fixes it.
        .map_err(|err| match err {
            StompError::Refused { message, detail } => {
                StompError::Protocol(format!("login refused: {message} {detail}"))
            }
            other => other,
        })
    }
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

    fn asyncapi(&self) -> Option<Transport> {
        Some(transport(self.settings.protocol))
    }
}

/// What a JMS message looks like over `protocol`, for the AsyncAPI document.
pub fn transport(protocol: JmsProtocol) -> Transport {
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
    Transport {
        name: "jms",
        title: "JMS",
        description: format!(
            "A text message on the channel's `jms.destination` at the instance's JMS broker \
             (`integration.channels.jms`), in CloudEvents structured mode: the text is the JSON \
             envelope. The string properties `ce_id`, `ce_type` and `ce_walletexternalkey` repeat \
             those attributes, so that consumers can select on them (for example \
             `ce_type = 'com.credenco.businesswallet.wallet.created.v1'`). This instance speaks {how}."
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
    headers
}

/// The one place where a broker answer becomes retry or reject: an ERROR frame about the
/// destination, permissions or the message itself is final; connection trouble and any other
/// refusal (the broker shutting down, a full store) pass.
fn classify(err: &StompError) -> Verdict {
    const FINAL: &[&str] = &[
        "not authorized",
        "unauthorized",
        "permission",
        "security",
        "not allowed",
        "invalid destination",
        "illegal destination",
        "too large",
        "exceeds",
    ];
    match err {
        StompError::Refused { message, detail } => {
            let text = format!("{message} {detail}").to_ascii_lowercase();
            if FINAL.iter().any(|f| text.contains(f)) {
                Verdict::Reject
            } else {
                Verdict::Retry
            }
        }
        StompError::Io(_) | StompError::Protocol(_) => Verdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str) -> StompError {
        StompError::Refused {
            message: message.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn permissions_and_bad_messages_are_final_and_the_rest_is_retried() {
        assert_eq!(
            classify(&refused("User guest is not authorized to write to: queue://x")),
            Verdict::Reject
        );
        assert_eq!(classify(&refused("Message size exceeds the limit")), Verdict::Reject);
        assert_eq!(classify(&refused("Broker is shutting down")), Verdict::Retry);
        assert_eq!(
            classify(&StompError::Io(std::io::ErrorKind::ConnectionRefused.into())),
            Verdict::Retry
        );
    }
}
