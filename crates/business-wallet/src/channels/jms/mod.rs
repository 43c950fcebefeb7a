//! The JMS channel (on-premise, Cargo feature `jms`): each event becomes one persistent text
//! message in CloudEvents structured mode on the channel's queue or topic, with the event's
//! type and id also set as message properties so that JMS consumers can select on them.
//!
//! - [`config`]: the channel's type block ([`JmsChannelConfig`]) and destination names.
//! - [`channel`]: the [`JmsChannel`] that sends and classifies the broker's answer.
//! - [`stomp`]: a small STOMP 1.2 client (ActiveMQ Classic and Artemis speak it).
//! - [`amqp`]: AMQP 1.0 sending with the JMS mapping (Artemis, ActiveMQ, IBM MQ, RabbitMQ).

pub mod amqp;
pub mod channel;
pub mod config;
pub mod stomp;

pub use channel::JmsChannel;
pub use config::{Destination, JmsChannelConfig};
