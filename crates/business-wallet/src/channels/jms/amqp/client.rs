//! AMQP 1.0 sending (fe2o3-amqp): one connection and session to the broker, and one sender
//! link per target address, attached on first use.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use fe2o3_amqp::connection::{ConnectionHandle, OpenError};
use fe2o3_amqp::link::{SendError, SenderAttachError};
use fe2o3_amqp::session::{BeginError, SessionHandle};
use fe2o3_amqp::types::messaging::{
    ApplicationProperties, Data, Header, Message, MessageAnnotations, Outcome as Disposition, Properties,
};
use fe2o3_amqp::types::primitives::{Binary, Value};
use fe2o3_amqp::{Connection, Sender, Session};

/// `x-opt-jms-msg-type` of a text message in the AMQP JMS mapping.
const JMS_TEXT_MESSAGE: i8 = 5;
/// `x-opt-jms-dest` of a queue and of a topic.
const JMS_QUEUE: i8 = 0;
const JMS_TOPIC: i8 = 1;

/// Why a message could not be handed to the broker; sending again may work.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker URL in the settings does not parse.
    #[error("integration.channels.jms.url: {0}")]
    InvalidUrl(#[source] url::ParseError),
    /// The connection could not be opened (unreachable broker, refused login).
    #[error("AMQP connection failed: {0}")]
    Connect(#[source] OpenError),
    /// The connection opened, but the session on it did not begin.
    #[error("AMQP session failed: {0}")]
    Session(#[source] BeginError),
    /// No sender link to the target address could be attached.
    #[error("AMQP link to {address} failed: {source}")]
    Attach {
        /// The target address.
        address: String,
        /// What the broker or the library said.
        #[source]
        source: SenderAttachError,
    },
    /// The transfer failed on an attached link.
    #[error("AMQP send failed: {0}")]
    Send(#[source] SendError),
}

/// What happened to one message.
#[derive(Debug)]
pub enum Sent {
    /// The broker took it (Accepted).
    Accepted,
    /// The broker refused it for good (Rejected), with its reason.
    Rejected(String),
    /// The broker gave it back (Released, Modified) or the link failed; sending again may work.
    Failed(String),
}

/// One message to send.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Target address.
    pub address: &'a str,
    /// Whether the address is a topic (for the JMS destination annotation).
    pub topic: bool,
    /// Content type of the body.
    pub content_type: &'a str,
    /// The body bytes (a data section).
    pub body: &'a [u8],
    /// The message id.
    pub message_id: &'a str,
    /// Application properties (string values).
    pub properties: &'a [(String, String)],
    /// Add the JMS mapping annotations.
    pub jms_mapping: bool,
}

/// An open connection with its session and sender links.
pub struct AmqpSession {
    connection: ConnectionHandle<()>,
    session: SessionHandle<()>,
    senders: HashMap<String, Sender>,
}

impl std::fmt::Debug for AmqpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSession")
            .field("links", &self.senders.len())
            .finish()
    }
}

impl AmqpSession {
    /// Opens a connection (SASL PLAIN when `url` holds a user name) and a session.
    ///
    /// # Errors
    /// The broker cannot be reached or refuses the connection.
    pub async fn open(url: &str) -> Result<AmqpSession, AmqpError> {
        let mut connection = Connection::open("business-wallet", url)
            .await
            .map_err(AmqpError::Connect)?;
        let session = match Session::begin(&mut connection).await {
            Ok(session) => session,
            Err(e) => {
                let _ = connection.close().await;
                return Err(AmqpError::Session(e));
            }
        };
        Ok(AmqpSession {
            connection,
            session,
            senders: HashMap::new(),
        })
    }

    /// Sends one message and waits for the broker's disposition, attaching a link to the
    /// message's address first if there is none yet.
    ///
    /// # Errors
    /// The link cannot be attached, or the transfer fails.
    pub async fn send(&mut self, message: &Outgoing<'_>) -> Result<Sent, AmqpError> {
        let sender = match self.senders.entry(message.address.to_string()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let name = format!("business-wallet-{}", uuid::Uuid::new_v4().simple());
                let sender = Sender::attach(&mut self.session, name, message.address)
                    .await
                    .map_err(|source| AmqpError::Attach {
                        address: message.address.to_string(),
                        source,
                    })?;
                entry.insert(sender)
            }
        };
        let mut properties = ApplicationProperties::builder();
        for (name, value) in message.properties {
            properties = properties.insert(name.clone(), value.clone());
        }
        let mut builder = Message::builder()
            .header(Header::builder().durable(true).build())
            .properties(
                Properties::builder()
                    .message_id(message.message_id.to_string())
                    .content_type(message.content_type.to_string())
                    .build(),
            )
            .application_properties(properties.build());
        if message.jms_mapping {
            let destination = if message.topic { JMS_TOPIC } else { JMS_QUEUE };
            builder = builder.message_annotations(
                MessageAnnotations::builder()
                    .insert("x-opt-jms-msg-type", Value::Byte(JMS_TEXT_MESSAGE))
                    .insert("x-opt-jms-dest", Value::Byte(destination))
                    .build(),
            );
        }
        let amqp_message = builder.data(Data(Binary::from(message.body.to_vec()))).build();
        match sender.send(amqp_message).await {
            Ok(Disposition::Accepted(_)) => Ok(Sent::Accepted),
            Ok(Disposition::Rejected(rejected)) => Ok(Sent::Rejected(format!(
                "the AMQP broker rejected the message: {:?}",
                rejected.error
            ))),
            Ok(other) => Ok(Sent::Failed(format!(
                "the AMQP broker did not take the message: {other:?}"
            ))),
            Err(e) => Err(AmqpError::Send(e)),
        }
    }

    /// Closes links, session and connection.
    pub async fn close(mut self) {
        for (_, sender) in self.senders.drain() {
            let _ = sender.close().await;
        }
        let _ = self.session.end().await;
        let _ = self.connection.close().await;
    }
}
