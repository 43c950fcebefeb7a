//! The shared vocabulary of channels: the [`Channel`] trait, the message handed to it, and the
//! three-way [`Outcome`] it returns together with the records kept in the deliveries log.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::secrets::ChannelSecrets;
use crate::domain::delivery::AttemptOutcome;
use crate::events::asyncapi::Transport;
use crate::events::CloudEvent;

/// A boxed future, so that [`Channel`] stays object-safe (`Arc<dyn Channel>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A channel type: the webhook, a broker, or a custom adapter of an embedding application.
///
/// Implementations classify their own errors into an [`Outcome`], in one place, and never
/// touch the database; the dispatcher records the result and decides about retries.
///
/// An embedding application registers its own types with
/// [`WalletBuilder::adapter`](crate::WalletBuilder::adapter). Operators then create channels of
/// that type through the channels API, with the adapter's settings as JSON in the body field
/// `config`; [`Channel::validate`] checks that block before it is saved, and
/// [`Channel::deliver`] gets it back in [`ChannelConfig::config`].
///
/// A minimal adapter that appends each event, as a structured-mode CloudEvent, to an
/// in-memory log named by its `config`:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use business_wallet::channels::{
///     Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome,
/// };
/// use serde_json::{json, Value};
///
/// #[derive(Default)]
/// struct MemoryLog {
///     lines: Mutex<Vec<(String, String)>>,
/// }
///
/// impl Channel for MemoryLog {
///     fn kind(&self) -> &str {
///         "MEMORY_LOG"
///     }
///
///     fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
///         match config.get("log").and_then(Value::as_str) {
///             Some(name) if !name.is_empty() => Ok(()),
///             _ => Err(InvalidConfig("config.log: a log name is required".into())),
///         }
///     }
///
///     fn deliver<'a>(
///         &'a self,
///         message: &'a OutboundMessage<'a>,
///         channel: &'a ChannelConfig,
///     ) -> BoxFuture<'a, Attempt> {
///         Box::pin(async move {
///             let Some(log) = channel.config["log"].as_str() else {
///                 return Attempt::without_request(Outcome::Rejected {
///                     error: "no log name".into(),
///                     response: None,
///                 });
///             };
///             let line = serde_json::to_string(message.envelope).expect("an envelope serialises");
///             self.lines.lock().unwrap().push((log.to_string(), line));
///             Attempt::without_request(Outcome::Delivered { response: None })
///         })
///     }
/// }
///
/// let adapter = Arc::new(MemoryLog::default());
/// assert!(adapter.validate(&json!({"log": "audit"})).is_ok());
/// assert!(adapter.validate(&json!({})).is_err());
/// // Registered with: Wallet::builder(settings).adapter(adapter).build().await
/// ```
pub trait Channel: Send + Sync + 'static {
    /// The type name stored on channel rows, e.g. `WEBHOOK`.
    fn kind(&self) -> &str;

    /// Checks a channel's type block (the stored `config` JSON, without secrets) before it is
    /// saved.
    ///
    /// # Errors
    /// The block does not describe a usable channel of this type; the message says why.
    fn validate(&self, config: &Value) -> Result<(), InvalidConfig>;

    /// Sends one event once. Must finish within the channel's own timeout and must not panic.
    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt>;

    /// How this type puts an event on the wire, for the AsyncAPI description served at
    /// `GET /api/public/asyncapi.json`. A type that returns `None` (the default) is left out
    /// of it.
    fn asyncapi(&self) -> Option<Transport> {
        None
    }

    /// Where a channel of this type sends, for people (the Destination column of the Web UI's
    /// channel list): the URL, topic or queue of its stored type block. `None` (the default)
    /// leaves the column empty.
    fn destination(&self, _config: &Value) -> Option<String> {
        None
    }
}

/// A channel's type block that cannot be used; the message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// One channel as the dispatcher hands it to its type: identity, type block and secrets.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The channel's `channelExternalKey` (also the key of per-channel caches).
    pub channel_external_key: String,
    /// The type block (`integration_channel.config`).
    pub config: Value,
    /// The decrypted secrets.
    pub secrets: ChannelSecrets,
}

/// What to send: the envelope, the exact body bytes, the secrets to sign with, and which
/// attempt this is.
#[derive(Debug)]
pub struct OutboundMessage<'a> {
    /// The CloudEvent (its `data` is also rendered in `body`).
    pub envelope: &'a CloudEvent,
    /// The data JSON exactly as stored: the body that is signed and sent.
    pub body: &'a [u8],
    /// HMAC secrets, current first, then the previous one while its grace window lasts.
    pub signing_secrets: Vec<String>,
    /// 1-based attempt number.
    pub attempt: u32,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The receiver accepted the event (2xx, broker ack).
    Delivered {
        /// The receiver's answer.
        response: Option<ResponseRecord>,
    },
    /// The receiver may accept it later: retry with back-off.
    Retryable {
        /// What went wrong.
        error: String,
        /// How long the receiver asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The receiver's answer, when there was one.
        response: Option<ResponseRecord>,
    },
    /// Sending again will not help: the delivery fails at once.
    Rejected {
        /// What went wrong.
        error: String,
        /// The receiver's answer, when there was one.
        response: Option<ResponseRecord>,
    },
}

impl Outcome {
    /// The receiver's answer, when there was one.
    pub fn response(&self) -> Option<&ResponseRecord> {
        match self {
            Outcome::Delivered { response }
            | Outcome::Retryable { response, .. }
            | Outcome::Rejected { response, .. } => response.as_ref(),
        }
    }

    /// The error message, unless delivered.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Delivered { .. } => None,
            Outcome::Retryable { error, .. } | Outcome::Rejected { error, .. } => Some(error),
        }
    }

    /// Which of the three it is, as stored with the attempt.
    pub fn kind(&self) -> AttemptOutcome {
        match self {
            Outcome::Delivered { .. } => AttemptOutcome::Delivered,
            Outcome::Retryable { .. } => AttemptOutcome::Retryable,
            Outcome::Rejected { .. } => AttemptOutcome::Rejected,
        }
    }

    /// The stored name of the outcome: `DELIVERED`, `RETRYABLE` or `REJECTED`.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// One attempt as the deliveries log shows it: the request (when one was made) and the outcome.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// What was sent, secrets redacted.
    pub request: Option<RequestRecord>,
    /// How it ended.
    pub outcome: Outcome,
}

impl Attempt {
    /// An attempt that ended before any request was made.
    pub fn without_request(outcome: Outcome) -> Attempt {
        Attempt { request: None, outcome }
    }

    /// An attempt refused for good before any request was made (a bad channel configuration,
    /// an event that cannot be rendered): sending again would not help.
    pub fn rejected_before_request(error: impl Into<String>) -> Attempt {
        Attempt::without_request(Outcome::Rejected {
            error: error.into(),
            response: None,
        })
    }
}

/// A request as stored: method, URL, headers with secret values replaced, body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method (or the broker operation).
    pub method: String,
    /// Target URL (or topic, queue).
    pub url: String,
    /// Headers in sending order; signature, API key and `Authorization` values redacted.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

/// A response as stored: status, headers and the start of the body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseRecord {
    /// HTTP status code.
    pub status: u16,
    /// Headers in receiving order.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body (up to the configured excerpt size), as lossy UTF-8.
    pub body_excerpt: String,
}

/// The value stored in place of a secret header value.
pub const REDACTED: &str = "[redacted]";
