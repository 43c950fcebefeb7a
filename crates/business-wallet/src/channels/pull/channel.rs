//! [`PullChannel`]: the registered `PULL` type. It validates the type block; it has nothing to
//! send, because its receiver fetches (the push dispatcher never claims its deliveries).

use serde_json::Value;

use super::config::PullChannelConfig;
use crate::channels::kind::PULL;
use crate::channels::{Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage};

/// The pull channel type.
#[derive(Debug, Default, Clone)]
pub struct PullChannel;

impl Channel for PullChannel {
    fn kind(&self) -> &str {
        PULL
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        PullChannelConfig::from_value(config).map(|_| ())
    }

    /// Never called by the dispatcher; a test send answers that there is nothing to send.
    fn deliver<'a>(&'a self, _message: &'a OutboundMessage<'a>, _channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(async {
            Attempt::rejected_before_request(
                "a PULL channel sends nothing: its receiver fetches GET .../integration-channels/{channelExternalKey}/events",
            )
        })
    }

    fn destination(&self, _config: &Value) -> Option<String> {
        Some("fetched by the receiver".into())
    }
}
