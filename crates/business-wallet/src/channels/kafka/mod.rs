//! The Kafka channel (on-premise, Cargo feature `kafka`): each event becomes one record in
//! CloudEvents structured mode on the channel's topic, keyed by the wallet so that one wallet's
//! events stay in one partition, sent by an idempotent producer that waits for all in-sync
//! replicas.
//!
//! - [`config`]: the channel's type block ([`KafkaChannelConfig`]).
//! - [`channel`]: the [`KafkaChannel`] that produces and classifies the broker's answer.

pub mod channel;
pub mod config;

pub use channel::KafkaChannel;
pub use config::KafkaChannelConfig;
