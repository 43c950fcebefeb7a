//! What the JMS channel hands to a wire protocol: the [`JmsMessage`] built for an event, and
//! the [`Transport`] the instance's settings pick to send it.

use super::amqp::AmqpTransport;
use super::config::Destination;
use super::stomp::StompTransport;
use crate::channels::Attempt;
use crate::config::{JmsProtocol, JmsSettings};

/// One event as a JMS message, the same whatever the protocol: each transport puts it on its
/// wire in its own way.
#[derive(Debug)]
pub(super) struct JmsMessage<'a> {
    /// The queue or topic.
    pub destination: &'a Destination,
    /// The text: the CloudEvents structured-mode envelope.
    pub body: String,
    /// The message id: the event's `id`.
    pub message_id: &'a str,
    /// The JMS string properties consumers select on, in sending order.
    pub properties: Vec<(String, String)>,
}

/// The wire protocol of the instance's broker.
///
/// An enum rather than a trait object: there are exactly two protocols, chosen once from the
/// settings, and each keeps its own session.
#[derive(Debug)]
pub(super) enum Transport {
    /// STOMP 1.2 (ActiveMQ Classic, Artemis).
    Stomp(StompTransport),
    /// AMQP 1.0 with the JMS mapping (Artemis, ActiveMQ, IBM MQ, RabbitMQ).
    Amqp(AmqpTransport),
}

impl Transport {
    /// The transport `settings` ask for. No connection is made yet.
    pub fn new(settings: &JmsSettings) -> Transport {
        match settings.protocol {
            JmsProtocol::Stomp => Transport::Stomp(StompTransport::new(settings)),
            JmsProtocol::Amqp => Transport::Amqp(AmqpTransport::new(settings)),
        }
    }

    /// Sends one message and waits for the broker's confirmation, within the configured time
    /// limit; the attempt records what was sent and how the broker answered.
    pub async fn send(&self, message: &JmsMessage<'_>) -> Attempt {
        match self {
            Transport::Stomp(stomp) => stomp.send(message).await,
            Transport::Amqp(amqp) => amqp.send(message).await,
        }
    }
}
