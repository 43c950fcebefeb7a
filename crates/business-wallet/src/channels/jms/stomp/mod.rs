//! The STOMP transport of the JMS channel: one session to the instance's broker, shared by
//! every JMS channel and opened again after it fails, and the one place where the broker's
//! answers become an [`Outcome`] (`outcome_of`). The wire protocol itself is in [`client`].

pub mod client;

use std::time::Duration;

use tokio::sync::Mutex;

pub use client::{encode, escape, read_frame, unescape, Connection, Frame, RefusalReason, StompError, MAX_FRAME_LEN};

use super::channel::STRUCTURED_CONTENT_TYPE;
use super::transport::JmsMessage;
use crate::channels::{Attempt, Outcome, RequestRecord, ResponseRecord};
use crate::config::JmsSettings;

/// Port used when the STOMP URL names none.
const DEFAULT_STOMP_PORT: u16 = 61613;

/// Sends JMS messages as STOMP 1.2 `SEND` frames, each confirmed by the broker's receipt.
pub(in crate::channels::jms) struct StompTransport {
    settings: JmsSettings,
    session: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for StompTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StompTransport")
            .field("url", &self.settings.url)
            .finish()
    }
}

impl StompTransport {
    /// The transport for the broker in `settings` (already validated). No connection is made
    /// yet.
    pub(in crate::channels::jms) fn new(settings: &JmsSettings) -> StompTransport {
        StompTransport {
            settings: settings.clone(),
            session: Mutex::new(None),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.timeout_ms)
    }

    /// Sends `message` as a persistent `SEND` and waits for the receipt, within the configured
    /// time limit.
    pub(in crate::channels::jms) async fn send(&self, message: &JmsMessage<'_>) -> Attempt {
        let mut headers = vec![
            ("content-type", STRUCTURED_CONTENT_TYPE.to_string()),
            ("persistent", "true".to_string()),
        ];
        if self.settings.jms_mapping {
            // ActiveMQ makes a TextMessage of it (without it, a BytesMessage).
            headers.push(("amq-msg-type", "text".to_string()));
        }
        // Other headers become JMS string properties: consumers can select on them, e.g.
        // `ce_type = 'com.credenco.businesswallet.wallet.created.v1'`.
        headers.extend(
            message
                .properties
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone())),
        );
        let destination = message.destination.stomp();
        let request = RequestRecord {
            method: "SEND".into(),
            url: destination.clone(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            body: message.body.clone(),
        };
        let result = tokio::time::timeout(
            self.timeout(),
            self.send_on_session(&destination, &headers, message.body.as_bytes()),
        )
        .await;
        let outcome = match result {
            Ok(Ok(receipt)) => Outcome::Delivered {
                response: Some(ResponseRecord {
                    status: 0,
                    headers: vec![("receipt-id".into(), receipt)],
                    body_excerpt: String::new(),
                }),
            },
            Ok(Err(err)) => outcome_of(&err),
            Err(_elapsed) => {
                // The session is in an unknown state now.
                *self.session.lock().await = None;
                Outcome::Retryable {
                    error: format!(
                        "no receipt from the STOMP broker within {} ms",
                        self.settings.timeout_ms
                    ),
                    retry_after: None,
                    response: None,
                }
            }
        };
        Attempt {
            request: Some(request),
            outcome,
        }
    }

    /// Sends on the shared session, opening it when needed. A session that fails is dropped;
    /// when an old session turns out to be dead (the broker restarted), the message is sent
    /// once more on a new one.
    async fn send_on_session(
        &self,
        destination: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<String, StompError> {
        let mut session = self.session.lock().await;
        if let Some(connection) = session.as_mut() {
            match connection.send(destination, headers, body).await {
                Ok(receipt) => return Ok(receipt),
                Err(StompError::Io(_)) => *session = None,
                Err(err) => {
                    *session = None;
                    return Err(err);
                }
            }
        }
        let connection = session.insert(self.connect().await?);
        let result = connection.send(destination, headers, body).await;
        if result.is_err() {
            *session = None;
        }
        result
    }

    async fn connect(&self) -> Result<Connection, StompError> {
        let url = url::Url::parse(&self.settings.url).map_err(StompError::InvalidUrl)?;
        let host = url.host_str().unwrap_or("localhost");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port().unwrap_or(DEFAULT_STOMP_PORT);
        Connection::connect(
            host,
            port,
            self.settings.username.as_deref(),
            self.settings.expose_password(),
        )
        .await
    }
}

/// The one place where a STOMP failure becomes retry or reject. A refusal of the message about
/// its destination, permissions or size is final; connection trouble, a refused login (the
/// instance's configuration, not the message: retried until an operator fixes it), a broker
/// that misbehaves and any other refusal (the broker shutting down, a full store) pass.
fn outcome_of(err: &StompError) -> Outcome {
    let error = err.to_string();
    match err {
        StompError::Refused { reason, .. } => match reason {
            RefusalReason::Permission | RefusalReason::Destination | RefusalReason::TooLarge => {
                Outcome::Rejected { error, response: None }
            }
            RefusalReason::Other => retryable(error),
        },
        StompError::Io(_)
        | StompError::LoginRefused { .. }
        | StompError::UnexpectedFrame { .. }
        | StompError::MalformedHeader(_)
        | StompError::FrameTooLarge { .. }
        | StompError::InvalidUrl(_) => retryable(error),
    }
}

fn retryable(error: String) -> Outcome {
    Outcome::Retryable {
        error,
        retry_after: None,
        response: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AttemptOutcome;

    fn refused(message: &str) -> StompError {
        StompError::Refused {
            reason: RefusalReason::of(message, ""),
            message: message.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn permissions_and_bad_messages_are_final_and_the_rest_is_retried() {
        let final_refusals = [
            "User guest is not authorized to write to: queue://x",
            "Message size exceeds the limit",
            "AMQ229032: User: guest does not have permission='SEND' on address x",
            "Invalid destination name: /queue/",
            "Frame too large",
        ];
        for message in final_refusals {
            let outcome = outcome_of(&refused(message));
            assert_eq!(outcome.kind(), AttemptOutcome::Rejected, "{message}");
            assert_eq!(
                outcome.error(),
                Some(format!("the STOMP broker refused: {message}").as_str())
            );
        }
        assert_eq!(
            outcome_of(&refused("Broker is shutting down")).kind(),
            AttemptOutcome::Retryable
        );
        let io = StompError::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(outcome_of(&io).kind(), AttemptOutcome::Retryable);
    }

    #[test]
    fn a_refused_login_and_a_misbehaving_broker_are_retried() {
        let login = StompError::LoginRefused {
            message: "User name [x] or password is invalid.".into(),
            detail: String::new(),
        };
        let outcome = outcome_of(&login);
        assert_eq!(outcome.kind(), AttemptOutcome::Retryable);
        assert_eq!(
            outcome.error(),
            Some("unexpected answer from the STOMP broker: login refused: User name [x] or password is invalid. ")
        );
        for err in [
            StompError::UnexpectedFrame {
                command: "MESSAGE".into(),
            },
            StompError::MalformedHeader("x".into()),
            StompError::FrameTooLarge { limit: MAX_FRAME_LEN },
        ] {
            assert_eq!(outcome_of(&err).kind(), AttemptOutcome::Retryable, "{err}");
        }
    }

    #[test]
    fn refusal_reasons_read_message_and_detail() {
        assert_eq!(
            RefusalReason::of("Error", "java.lang.SecurityException: denied"),
            RefusalReason::Permission
        );
        assert_eq!(RefusalReason::of("ILLEGAL DESTINATION", ""), RefusalReason::Destination);
        assert_eq!(RefusalReason::of("store is full", ""), RefusalReason::Other);
    }
}
