//! AMQP 1.0 sending (fe2o3-amqp): one connection and session to the instance's broker, one
//! sender link per target address, all opened on first use and again after a failure.

use std::collections::HashMap;

use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::session::SessionHandle;
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
    pub properties: &'a [(&'a str, String)],
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
    pub async fn open(url: &str) -> Result<AmqpSession, String> {
        let mut connection = Connection::open("business-wallet", url)
            .await
            .map_err(|e| format!("AMQP connection failed: {e}"))?;
        let session = match Session::begin(&mut connection).await {
            Ok(session) => session,
            Err(e) => {
                let _ = connection.close().await;
                return Err(format!("AMQP session failed: {e}"));
            }
        };
        Ok(AmqpSession {
            connection,
            session,
            senders: HashMap::new(),
        })
    }

    /// Sends one message and waits for the broker's disposition.
    pub async fn send(&mut self, message: &Outgoing<'_>) -> Result<Sent, String> {
        if !self.senders.contains_key(message.address) {
            let name = format!("business-wallet-{}", uuid::Uuid::new_v4().simple());
            let sender = Sender::attach(&mut self.session, name, message.address)
                .await
                .map_err(|e| format!("AMQP link to {} failed: {e}", message.address))?;
            self.senders.insert(message.address.to_string(), sender);
        }
        let sender = self
            .senders
            .get_mut(message.address)
            .ok_or_else(|| "AMQP link missing".to_string())?;
        let mut properties = ApplicationProperties::builder();
        for (name, value) in message.properties {
            properties = properties.insert(name.to_string(), value.clone());
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
            Err(e) => Err(format!("AMQP send failed: {e}")),
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
