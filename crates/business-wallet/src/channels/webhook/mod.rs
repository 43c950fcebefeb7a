//! The webhook channel: one HTTP `POST` per delivery, in CloudEvents binary mode (attributes as
//! `ce-` headers, the event data as the JSON body), signed with `X-Credenco-Signature` (HMAC
//! and Ed25519), optionally with the Standard Webhooks headers too, with optional API-key or
//! OAuth2 client-credentials authentication.
//!
//! - [`config`]: the channel's type block ([`WebhookChannelConfig`]).
//! - [`handshake`]: the CloudEvents validation handshake a channel may require before it
//!   delivers.
//! - [`channel`]: the [`WebhookChannel`] that builds, signs and sends the request.
//! - [`keys`]: the deployment's Ed25519 signing keys, their publication and rotation.
//! - [`classify`]: what the receiver's status or the transport error means for the delivery.
//! - [`request`]: the webhook block of a create or replace request, checked and split from its
//!   secrets.
//! - [`ssrf`]: the gate deciding which addresses a webhook may reach.
//! - [`tls`]: a channel's client certificate and CA bundle, checked, described and turned
//!   into the channel's own HTTP client.
//! - [`body`]: reading a remote body with a size limit (token and key set responses).

pub mod body;
pub mod channel;
pub mod classify;
pub mod config;
pub mod handshake;
pub mod keys;
pub mod request;
pub mod ssrf;
pub mod tls;

pub use channel::WebhookChannel;
pub use config::WebhookChannelConfig;
pub use keys::SigningKeys;
pub use ssrf::{check_url, NetworkPolicy, UrlRejected};
