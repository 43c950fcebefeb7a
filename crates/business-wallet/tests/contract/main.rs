//! The channel contract: every channel kind goes through the same scenarios, on both backends,
//! with the dispatcher driven one step at a time (`Dispatcher::run_once`):
//!
//! - an accepted event is DELIVERED and arrived once, as a CloudEvent;
//! - a retryable refusal leaves the delivery PENDING, its attempt recorded and the next one due
//!   later;
//! - a final refusal makes it FAILED at once;
//! - an unreachable destination is retried like a retryable refusal, its error recorded;
//! - an invalid type block is refused on save (400 in the documented error shape, nothing
//!   stored);
//! - no stored request of an attempt holds a secret (HMAC secret, API key, OAuth2 client
//!   secret and token, broker password).
//!
//! The kinds: the webhook (a real HTTP receiver on 127.0.0.1), Kafka in structured and in
//! binary content mode (the tansu broker of `scripts/setup/brokers.sh`), JMS over STOMP (ActiveMQ) and over AMQP 1.0 (RabbitMQ), from the
//! same script, and a custom adapter registered like an embedding application's. The brokers'
//! kinds read where their broker is from the variables that script exports, and fail, naming
//! the variable, when it is missing.
//!
//! Each kind is a [`fixture::KindFixture`]: how to make its channel, how to make its
//! destination behave as a scenario asks, how to read what arrived. A kind that cannot make its
//! destination behave so in a test says so in its fixture, with the reason, and the scenario
//! checks what the kind really does instead (the test's output names these). A new kind joins
//! with a fixture in `kinds/` and one `contract_tests!` line below.

#[path = "../common/mod.rs"]
mod common;
#[path = "../dispatch/receiver.rs"]
#[allow(dead_code)]
mod receiver;

mod fixture;
mod scenarios;

/// The kinds' fixtures.
mod kinds {
    pub mod adapter;
    #[cfg(feature = "jms")]
    pub mod jms;
    #[cfg(feature = "kafka")]
    pub mod kafka;
    pub mod webhook;
}

/// `contract_tests!(module => Fixture)`: every scenario of [`scenarios`] for one kind, each on
/// SQLite and PostgreSQL, as `module::scenario::{sqlite, postgres}`.
macro_rules! contract_tests {
    ($kind:ident => $fixture:ty) => {
        contract_tests!(@each $kind, $fixture, [
            an_accepted_event_is_delivered_once_as_a_cloudevent,
            a_retryable_refusal_waits_for_the_next_attempt,
            a_final_refusal_fails_at_once,
            an_unreachable_destination_is_retried,
            an_invalid_configuration_is_refused_on_save,
            secrets_never_reach_the_stored_request,
        ]);
    };
    (@each $kind:ident, $fixture:ty, [$($scenario:ident),+ $(,)?]) => {
        mod $kind {
            $(
                mod $scenario {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn sqlite() {
                        crate::scenarios::$scenario::<$fixture>(crate::common::Backend::Sqlite).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn postgres() {
                        crate::scenarios::$scenario::<$fixture>(crate::common::Backend::Postgres).await
                    }
                }
            )+
        }
    };
}

contract_tests!(webhook => crate::kinds::webhook::Webhook);
contract_tests!(custom_adapter => crate::kinds::adapter::Adapter);
#[cfg(feature = "kafka")]
contract_tests!(kafka => crate::kinds::kafka::Kafka);
#[cfg(feature = "kafka")]
contract_tests!(kafka_binary => crate::kinds::kafka::KafkaBinary);
#[cfg(feature = "jms")]
contract_tests!(jms_stomp => crate::kinds::jms::Stomp);
#[cfg(feature = "jms")]
contract_tests!(jms_amqp => crate::kinds::jms::Amqp);
