//! A custom adapter, registered as an embedding application registers one
//! (`WalletBuilder::adapter`, through the test application's builder): it drops each event, as
//! a structured-mode CloudEvent, into a named in-memory mailbox, handing the mailbox the
//! channel's signing secret as its key. A mailbox accepts, is busy (retryable, with a time to
//! come back), refuses for good, or does not exist (unreachable).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use business_wallet::channels::prelude::REDACTED;
use business_wallet::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord,
};
use serde_json::{json, Value};

use crate::fixture::{Behaviour, Destination, KindFixture};

/// The custom adapter kind.
pub struct Adapter;

/// How a mailbox answers.
#[derive(Debug, Clone, Copy)]
enum Mood {
    Accepting,
    Busy,
    Refusing,
}

#[derive(Debug)]
struct Mailbox {
    mood: Mood,
    /// Each event dropped in, with the key it came with.
    events: Vec<(Value, String)>,
}

/// The adapter: `{"mailbox": "<name>"}` as its type block.
#[derive(Debug, Default)]
pub struct MailboxAdapter {
    mailboxes: Mutex<HashMap<String, Mailbox>>,
}

/// The adapter's type name.
const MAILBOX: &str = "MAILBOX";

impl MailboxAdapter {
    fn open(&self, name: &str, mood: Mood) {
        let mailbox = Mailbox {
            mood,
            events: Vec::new(),
        };
        self.mailboxes.lock().unwrap().insert(name.to_string(), mailbox);
    }

    fn drop_in(&self, name: &str, event: Value, key: &str) -> Outcome {
        let mut mailboxes = self.mailboxes.lock().unwrap();
        let Some(mailbox) = mailboxes.get_mut(name) else {
            return Outcome::Retryable {
                error: format!("no mailbox {name} (yet)"),
                retry_after: None,
                response: None,
            };
        };
        match mailbox.mood {
            Mood::Accepting => {
                mailbox.events.push((event, key.to_string()));
                Outcome::Delivered { response: None }
            }
            Mood::Busy => Outcome::Retryable {
                error: format!("mailbox {name} is busy"),
                retry_after: Some(Duration::from_secs(30)),
                response: None,
            },
            Mood::Refusing => Outcome::Rejected {
                error: format!("mailbox {name} takes no events"),
                response: None,
            },
        }
    }
}

impl Channel for MailboxAdapter {
    fn kind(&self) -> &str {
        MAILBOX
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        match config.get("mailbox").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() => Ok(()),
            _ => Err(InvalidConfig("config.mailbox: a mailbox name is required".into())),
        }
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            let name = channel.config["mailbox"].as_str().unwrap_or_default();
            let event = serde_json::to_value(message.envelope).expect("an envelope serialises");
            let key = message.signing_secrets.first().cloned().unwrap_or_default();
            let request = RequestRecord {
                method: "DROP".into(),
                url: format!("mailbox:{name}"),
                headers: vec![("key".into(), REDACTED.into())],
                body: event.to_string(),
            };
            Attempt {
                outcome: self.drop_in(name, event, &key),
                request: Some(request),
            }
        })
    }
}

/// The adapter of one test and the mailbox its channel drops into.
pub struct Inbox {
    adapter: Arc<MailboxAdapter>,
    mailbox: String,
}

fn destination(mood: Option<Mood>) -> Destination<Inbox> {
    let adapter = Arc::new(MailboxAdapter::default());
    let mailbox = format!("box-{}", uuid::Uuid::new_v4().simple());
    if let Some(mood) = mood {
        adapter.open(&mailbox, mood);
    }
    let block = json!({ "mailbox": mailbox });
    let inbox = Inbox {
        adapter: adapter.clone(),
        mailbox,
    };
    Destination {
        adapters: vec![adapter],
        ..Destination::real(|_| {}, block, inbox)
    }
}

impl KindFixture for Adapter {
    const TYPE: &'static str = MAILBOX;
    const BLOCK_FIELD: &'static str = "config";
    type Inbox = Inbox;

    async fn destination(behaviour: Behaviour) -> Destination<Inbox> {
        destination(match behaviour {
            Behaviour::Accepts => Some(Mood::Accepting),
            Behaviour::RefusesForNow => Some(Mood::Busy),
            Behaviour::RefusesForGood => Some(Mood::Refusing),
            Behaviour::Unreachable => None,
        })
    }

    async fn destination_with_secrets() -> Destination<Inbox> {
        // The adapter's only secret is the channel's signing secret, handed to the mailbox.
        destination(Some(Mood::Accepting))
    }

    async fn arrived(inbox: &Inbox) -> Vec<Value> {
        let mailboxes = inbox.adapter.mailboxes.lock().unwrap();
        let events = &mailboxes[&inbox.mailbox].events;
        assert!(
            events.iter().all(|(_, key)| key.starts_with("whsec_")),
            "each event came with the channel's signing secret"
        );
        events.iter().map(|(event, _)| event.clone()).collect()
    }

    fn invalid_block() -> (Value, &'static str) {
        (json!({ "mailbox": " " }), "config.mailbox")
    }
}
