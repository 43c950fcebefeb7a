//! The Kafka channel (on-premise, Cargo feature `kafka`): each event becomes one record on the
//! channel's topic, in CloudEvents structured mode (or binary mode when the channel asks for
//! it), keyed by the wallet (also the `partitionkey` extension) so that one wallet's events stay
//! in one partition, sent by an idempotent producer that waits for all in-sync replicas.
//!
//! - [`config`]: the channel's type block ([`KafkaChannelConfig`], [`KafkaContentMode`]).
//! - [`channel`]: the [`KafkaChannel`] that produces and classifies the broker's answer.

pub mod channel;
pub mod config;

pub use channel::KafkaChannel;
pub use config::{KafkaChannelConfig, KafkaContentMode};
