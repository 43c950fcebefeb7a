//! The JMS channel (on-premise, Cargo feature `jms`): each event becomes one persistent text
//! message in CloudEvents structured mode on the channel's queue or topic, with the event's
//! type and id also set as message properties so that JMS consumers can select on them (and,
//! when the channel asks for it, every attribute, as the CloudEvents AMQP binding names them).
//!
//! - [`config`]: the channel's type block ([`JmsChannelConfig`]) and destination names.
//! - [`channel`]: the [`JmsChannel`], which builds the message for an event and hands it to
//!   the instance's transport.
//! - `transport`: the message as both protocols send it, and the choice between them.
//! - [`stomp`]: the STOMP 1.2 transport (ActiveMQ Classic and Artemis speak it) over a small
//!   client, with its classification of ERROR frames.
//! - [`amqp`]: the AMQP 1.0 transport with the JMS mapping (Artemis, ActiveMQ, IBM MQ,
//!   RabbitMQ), with its classification of dispositions.

pub mod amqp;
pub mod channel;
pub mod config;
pub mod stomp;
mod transport;

pub use channel::JmsChannel;
pub use config::{Destination, JmsChannelConfig};
