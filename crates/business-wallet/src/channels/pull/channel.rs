//! [`PullChannel`]: the registered `PULL` type. It validates the type block; it has nothing to
//! send, because its receiver fetches (the push dispatcher never claims its deliveries).

use serde_json::{json, Value};

use super::config::PullChannelConfig;
use crate::channels::kind::PULL;
use crate::channels::{Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage};
use crate::events::asyncapi::{ContentMode, Transport};

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

    fn asyncapi(&self) -> Option<Transport> {
        Some(transport())
    }
}

/// What a pull receiver fetches, for the AsyncAPI document.
pub fn transport() -> Transport {
    Transport {
        name: "pull",
        title: "Pull",
        description: "Nothing is sent: the receiver fetches. `GET \
            /api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/events?cursor=` \
            (`/api/integration-channels/{channelExternalKey}/events` for a platform channel), with \
            the channel's secret as bearer token or a token with the deliveries authority, answers \
            `{\"events\": [...], \"cursor\": \"...\", \"leaseExpiresAt\": \"...\"}`: the next batch, \
            oldest first, each event one of the messages below, a CloudEvent in structured mode as \
            JSON. `POST .../events/commit` with `{\"cursor\": \"...\"}` acknowledges the batch and \
            everything before it; events not committed before the lease ends are fetched again, \
            with the same `id`. The routes are in the OpenAPI document."
            .into(),
        address: None,
        parameters: json!({}),
        mode: ContentMode::Structured,
        content_type: "application/json",
        headers: |_| Vec::new(),
        operation_bindings: Some(json!({ "http": { "method": "GET", "bindingVersion": "0.3.0" } })),
        message_bindings: None,
    }
}
