//! The AMQP 1.0 transport of the JMS channel: one connection and session to the instance's
//! broker, shared by every JMS channel and opened again after a failure, and the one place
//! where the broker's dispositions become an [`Outcome`]. Sending itself is in [`client`].

pub mod client;

use std::time::Duration;

use tokio::sync::Mutex;

pub use client::{AmqpError, AmqpSession, Outgoing, Sent};

use super::channel::AMQP_CONTENT_TYPE;
use super::config::Destination;
use super::transport::JmsMessage;
use crate::channels::{Attempt, Outcome, RequestRecord, ResponseRecord};
use crate::config::JmsSettings;

/// Sends JMS messages as durable AMQP 1.0 messages, each confirmed by the broker's
/// disposition.
pub(in crate::channels::jms) struct AmqpTransport {
    settings: JmsSettings,
    session: Mutex<Option<AmqpSession>>,
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("url", &self.settings.url)
            .finish()
    }
}

impl AmqpTransport {
    /// The transport for the broker in `settings` (already validated). No connection is made
    /// yet.
    pub(in crate::channels::jms) fn new(settings: &JmsSettings) -> AmqpTransport {
        AmqpTransport {
            settings: settings.clone(),
            session: Mutex::new(None),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.timeout_ms)
    }

    /// Sends over AMQP 1.0: a data section holding the envelope, durable, with the type and id
    /// as application properties (and the JMS mapping annotations when switched on).
    pub(in crate::channels::jms) async fn send(&self, message: &JmsMessage<'_>) -> Attempt {
        let (address, topic) = match message.destination {
            Destination::Queue(name) => (format!("{}{name}", self.settings.amqp_queue_prefix), false),
            Destination::Topic(name) => (format!("{}{name}", self.settings.amqp_topic_prefix), true),
        };
        let mut shown: Vec<(String, String)> = vec![
            ("content-type".into(), AMQP_CONTENT_TYPE.into()),
            ("durable".into(), "true".into()),
            ("message-id".into(), message.message_id.to_string()),
        ];
        shown.extend(message.properties.iter().cloned());
        let request = RequestRecord {
            method: "TRANSFER".into(),
            url: address.clone(),
            headers: shown,
            body: message.body.clone(),
        };
        let outgoing = Outgoing {
            address: &address,
            topic,
            content_type: AMQP_CONTENT_TYPE,
            body: message.body.as_bytes(),
            message_id: message.message_id,
            properties: &message.properties,
            jms_mapping: self.settings.jms_mapping,
        };
        let result = tokio::time::timeout(self.timeout(), self.send_on_session(&outgoing)).await;
        let outcome = match result {
            Ok(Ok(Sent::Accepted)) => Outcome::Delivered {
                response: Some(ResponseRecord {
                    status: 0,
                    headers: vec![("disposition".into(), "accepted".into())],
                    body_excerpt: String::new(),
                }),
            },
            Ok(Ok(Sent::Rejected(error))) => Outcome::Rejected { error, response: None },
            Ok(Ok(Sent::Failed(error))) => retryable(error),
            Ok(Err(error)) => retryable(error.to_string()),
            Err(_elapsed) => {
                // The session is in an unknown state now: out of the shared slot at once, and
                // closed in the background within the time limit. A broker that stopped
                // answering never completes the close handshake, and waiting for it here (with
                // the slot locked) would hold up every later JMS delivery of this instance.
                let stale = self.session.lock().await.take();
                if let Some(session) = stale {
                    let limit = self.timeout();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(limit, session.close()).await;
                    });
                }
                retryable(format!(
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
    async fn send_on_session(&self, outgoing: &Outgoing<'_>) -> Result<Sent, AmqpError> {
        let mut session = self.session.lock().await;
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
        let open = session.insert(AmqpSession::open(&self.url()?).await?);
        let result = open.send(outgoing).await;
        if result.is_err() {
            if let Some(dead) = session.take() {
                dead.close().await;
            }
        }
        result
    }

    /// The AMQP URL with the configured credentials (they are kept out of the URL setting).
    fn url(&self) -> Result<String, AmqpError> {
        let mut url = url::Url::parse(&self.settings.url).map_err(AmqpError::InvalidUrl)?;
        if url.port().is_none() {
            let _ = url.set_port(Some(if url.scheme() == "amqps" { 5671 } else { 5672 }));
        }
        if let Some(username) = &self.settings.username {
            let _ = url.set_username(username);
            let _ = url.set_password(self.settings.expose_password());
        }
        Ok(url.to_string())
    }
}

fn retryable(error: String) -> Outcome {
    Outcome::Retryable {
        error,
        retry_after: None,
        response: None,
    }
}
