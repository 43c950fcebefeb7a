//! An example of embedding `business-wallet` in another application: the wallet's HTTP API is
//! served on the application's own listener, its dispatcher runs as a task of the application,
//! and a custom channel type, `NATS`, delivers events to NATS JetStream.
//!
//! A `NATS` channel's type block is `{"subject": "wallet.events"}`. Each event is published
//! to that subject in CloudEvents structured mode: the body is the envelope JSON, with the
//! header `Content-Type: application/cloudevents+json` and `Nats-Msg-Id` set to the event id,
//! so that JetStream drops a retried duplicate within its deduplication window.
//!
//! How attempts end:
//! - the stream's publish acknowledgement: delivered;
//! - no stream listens on the subject (no responders), no acknowledgement in time, or the
//!   connection is down: retryable;
//! - an invalid subject: rejected (also refused when the channel is saved).

#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::HeaderMap;
use business_wallet::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord,
};
use business_wallet::{Embedded, Settings, Wallet};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The channel type name operators use: `"type": "NATS"`.
pub const NATS: &str = "NATS";

/// The content type of a structured-mode CloudEvent.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The `NATS` channel type: publishes each event to a JetStream subject.
#[derive(Debug, Clone)]
pub struct NatsChannel {
    jetstream: async_nats::jetstream::Context,
}

impl NatsChannel {
    /// Connects to the NATS server at `url` (e.g. `nats://127.0.0.1:4222`); a publish waits
    /// up to `ack_timeout` for the stream's acknowledgement.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn connect(url: &str, ack_timeout: Duration) -> anyhow::Result<NatsChannel> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to NATS at {url}"))?;
        let mut jetstream = async_nats::jetstream::new(client);
        jetstream.set_timeout(ack_timeout);
        Ok(NatsChannel { jetstream })
    }
}

/// Whether `subject` is a NATS subject one can publish to: dot-separated non-empty tokens of
/// printable characters, without wildcards.
pub fn is_valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 255
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.chars().all(|c| c.is_ascii_graphic() && c != '*' && c != '>')
        })
}

fn subject_of(config: &Value) -> Result<&str, InvalidConfig> {
    let subject = config
        .get("subject")
        .and_then(Value::as_str)
        .ok_or_else(|| InvalidConfig("config.subject: a NATS subject is required".into()))?;
    if !is_valid_subject(subject) {
        return Err(InvalidConfig(format!(
            "config.subject: `{subject}` is not a NATS subject one can publish to (dot-separated tokens, no spaces or wildcards)"
        )));
    }
    Ok(subject)
}

impl Channel for NatsChannel {
    fn kind(&self) -> &str {
        NATS
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        subject_of(config).map(|_| ())
    }

    fn destination(&self, config: &Value) -> Option<String> {
        subject_of(config).ok().map(str::to_string)
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            let subject = match subject_of(&channel.config) {
                Ok(subject) => subject.to_string(),
                Err(err) => {
                    return Attempt::without_request(Outcome::Rejected {
                        error: err.0,
                        response: None,
                    })
                }
            };
            let body = match serde_json::to_string(message.envelope) {
                Ok(body) => body,
                Err(err) => {
                    return Attempt::without_request(Outcome::Rejected {
                        error: format!("the envelope cannot be rendered: {err}"),
                        response: None,
                    })
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert("Content-Type", STRUCTURED_CONTENT_TYPE);
            headers.insert(async_nats::header::NATS_MESSAGE_ID, message.envelope.id.as_str());
            let request = RequestRecord {
                method: "JETSTREAM PUBLISH".into(),
                url: format!("nats:{subject}"),
                headers: vec![
                    ("Content-Type".into(), STRUCTURED_CONTENT_TYPE.into()),
                    ("Nats-Msg-Id".into(), message.envelope.id.clone()),
                ],
                body: body.clone(),
            };
            let acked = match self.jetstream.publish_with_headers(subject, headers, body.into()).await {
                Ok(ack) => ack.await,
                Err(err) => Err(err),
            };
            let outcome = match acked {
                Ok(_) => Outcome::Delivered { response: None },
                Err(err) => classify(err.kind(), err.to_string()),
            };
            Attempt {
                request: Some(request),
                outcome,
            }
        })
    }
}

/// The one place where JetStream publish errors become outcomes.
fn classify(kind: PublishErrorKind, error: String) -> Outcome {
    match kind {
        // The server refused the message for good: an expectation that will not change.
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => {
            Outcome::Rejected { error, response: None }
        }
        // No stream yet (no responders), no acknowledgement in time, connection trouble or a
        // full stream: the same message may be accepted later.
        PublishErrorKind::StreamNotFound
        | PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        | PublishErrorKind::Other => Outcome::Retryable {
            error,
            retry_after: None,
            response: None,
        },
    }
}

/// Builds the embedded wallet with the `NATS` channel type registered.
///
/// # Errors
/// NATS or the database cannot be reached, or the wallet cannot be built.
pub async fn build(settings: Settings, nats_url: &str) -> anyhow::Result<Embedded> {
    let nats = NatsChannel::connect(nats_url, Duration::from_secs(5)).await?;
    Wallet::builder(settings).adapter(Arc::new(nats)).build().await
}

/// Serves the wallet's API on `listener` and runs its dispatcher until `shutdown` is
/// cancelled; then waits for both to stop.
///
/// # Errors
/// The server failed.
pub async fn run(wallet: Embedded, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dispatcher = tokio::spawn(wallet.dispatcher().run(shutdown.clone()));
    let stop = shutdown.clone();
    axum::serve(listener, wallet.router())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("the HTTP server failed")?;
    dispatcher.await.context("the dispatcher task failed")?;
    wallet.db().close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        for good in ["wallet.events", "a", "orders.eu-west.v1"] {
            assert!(is_valid_subject(good), "{good}");
        }
        for bad in ["", "wallet events", "wallet.*", "wallet.>", "a..b", ".a", "a."] {
            assert!(!is_valid_subject(bad), "{bad}");
        }
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(
            classify(PublishErrorKind::StreamNotFound, "x".into()).name(),
            "RETRYABLE"
        );
        assert_eq!(classify(PublishErrorKind::TimedOut, "x".into()).name(), "RETRYABLE");
        assert_eq!(
            classify(PublishErrorKind::WrongLastSequence, "x".into()).name(),
            "REJECTED"
        );
    }
}
