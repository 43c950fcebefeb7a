//! What a channel kind tells the contract scenarios: how to make a channel of it, how to make
//! its destination accept, refuse for now, refuse for good or be out of reach, and how to read
//! what arrived there.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use business_wallet::channels::Channel;
use business_wallet::config::Settings;
use serde_json::Value;

/// How a scenario wants the destination to behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Takes every event.
    Accepts,
    /// Refuses, in a way that may pass (sending again later may work).
    RefusesForNow,
    /// Refuses for good (sending again will not help).
    RefusesForGood,
    /// Cannot be reached at all.
    Unreachable,
}

/// How a destination came to behave as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provoked {
    /// The destination itself behaves so (a real receiver or broker).
    ForReal,
    /// The kind's destination cannot be made to behave so in a test; `why` says why, and
    /// `instead` what the scenario checks in its place (the same expected result, reached by
    /// what the kind really does).
    CannotBe {
        /// Why the real behaviour cannot be provoked.
        why: &'static str,
        /// What the test does in its place.
        instead: &'static str,
    },
}

/// A destination set up for one scenario: everything the application and its channel need to
/// reach it, and where to look for what arrived.
pub struct Destination<Inbox> {
    /// Instance settings the destination needs (the kind switched on, broker address and
    /// credentials, producer properties).
    pub settings: Box<dyn FnOnce(&mut Settings) + Send>,
    /// Custom adapters to register with the application.
    pub adapters: Vec<Arc<dyn Channel>>,
    /// The channel's type block, as sent to the channels API.
    pub block: Value,
    /// A type block written over the stored one after the channel was saved: one the API
    /// would refuse (a channel saved before a rule was tightened), for a substitute.
    pub stored_block: Option<Value>,
    /// Where the events sent to the destination can be read back.
    pub inbox: Inbox,
    /// Whether the behaviour is real, or what stands in for it.
    pub provoked: Provoked,
    /// The secret values this channel's requests must never show (besides the channel's own
    /// HMAC secret, which the scenarios read from the create response).
    pub secrets: Vec<String>,
    /// Whatever must live as long as the test (listeners, receivers): held for its `Drop`,
    /// never read.
    #[allow(dead_code)]
    pub keep: Box<dyn Any + Send>,
}

impl<Inbox> Destination<Inbox> {
    /// A destination that behaves as asked for real, with nothing else to register or keep.
    pub fn real(settings: impl FnOnce(&mut Settings) + Send + 'static, block: Value, inbox: Inbox) -> Self {
        Destination {
            settings: Box::new(settings),
            adapters: Vec::new(),
            block,
            stored_block: None,
            inbox,
            provoked: Provoked::ForReal,
            secrets: Vec::new(),
            keep: Box::new(()),
        }
    }

    /// The final-refusal stand-in of a kind whose destination cannot refuse for good in a test:
    /// the channel is saved with `block`, then its stored block is replaced by `stale`, which the
    /// channel refuses before sending anything, as it would a block it can no longer use.
    pub fn stale(self, stale: Value, why: &'static str) -> Self {
        Destination {
            stored_block: Some(stale),
            provoked: Provoked::CannotBe {
                why,
                instead: "the stored type block is one the channel can no longer use: refused for good before anything is sent",
            },
            ..self
        }
    }
}

/// One channel kind, as the contract scenarios drive it. A new kind joins the contract with an
/// implementation of this trait and one line in `main.rs`.
pub trait KindFixture: 'static {
    /// The channel `type` (`WEBHOOK`, `KAFKA`, ...).
    const TYPE: &'static str;
    /// The request body field that holds the type block (`webhook`, `kafka`, `jms`, `config`).
    const BLOCK_FIELD: &'static str;
    /// Where events sent to a destination can be read back.
    type Inbox: Send + Sync;

    /// A destination that behaves as `behaviour` asks. A kind whose broker is not configured
    /// (its set-up variable is missing) panics here, naming the variable.
    fn destination(behaviour: Behaviour) -> impl Future<Output = Destination<Self::Inbox>>;

    /// A destination that accepts, with every secret the kind knows set to a known value
    /// (listed in [`Destination::secrets`]).
    fn destination_with_secrets() -> impl Future<Output = Destination<Self::Inbox>>;

    /// Every event that arrived at the inbox so far, as CloudEvents in structured form (the
    /// attributes and `data` in one JSON object, whatever the kind's wire format). Waits, within
    /// reason, for events still on their way, and returns duplicates as they arrived.
    fn arrived(inbox: &Self::Inbox) -> impl Future<Output = Vec<Value>>;

    /// A type block that save must refuse, and the field its error message must name.
    fn invalid_block() -> (Value, &'static str);
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listener on 127.0.0.1 that takes connections and never says a word (a broker that hangs);
/// its port, and a guard that closes it when dropped.
pub async fn silent_listener() -> (u16, Box<dyn Any + Send>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    (port, Box::new(AbortOnDrop(task)))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
