//! The Kafka kind, against the tansu broker of `scripts/setup/brokers.sh`
//! (`BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP`; topics are made with `BUSINESS_WALLET_TEST_TANSU`):
//! each destination is a topic of its own, read back from its start with a librdkafka
//! consumer. [`KafkaBinary`] is the same kind with `kafka.contentMode: BINARY`, its records
//! read back through their `ce_` headers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use business_wallet::config::Settings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::common::setup_env;
use crate::fixture::{closed_port, silent_listener, Behaviour, Destination, KindFixture, Provoked};

/// The Kafka channel kind.
pub struct Kafka;

/// A topic at a broker.
pub struct Inbox {
    bootstrap: String,
    topic: String,
}

/// The instance settings for a Kafka cluster at `bootstrap`, with further producer
/// `properties`.
fn cluster(bootstrap: String, properties: Vec<(&'static str, &'static str)>) -> impl FnOnce(&mut Settings) + Send {
    move |settings| {
        let kafka = &mut settings.integration.channels.kafka;
        kafka.enabled = true;
        kafka.bootstrap_servers = bootstrap;
        kafka.message_timeout_ms = 2_000;
        kafka
            .properties
            .extend(properties.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
}

/// A new topic of one partition at the set-up broker.
fn new_topic(bootstrap: &str) -> String {
    let topic = format!("bw-contract-{}", uuid::Uuid::new_v4().simple());
    let created = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
        .args(["topic", "create", "--broker", &format!("tcp://{bootstrap}")])
        .args(["--partitions", "1", &topic])
        .stdout(Stdio::null())
        .status()
        .expect("tansu runs");
    assert!(created.success(), "topic {topic} created");
    topic
}

/// A destination on a new topic of the broker at `bootstrap`, with further producer
/// `properties`.
fn on_new_topic(bootstrap: String, properties: Vec<(&'static str, &'static str)>) -> Destination<Inbox> {
    let topic = new_topic(&bootstrap);
    let block = json!({ "topic": topic });
    Destination::real(
        cluster(bootstrap.clone(), properties),
        block,
        Inbox { bootstrap, topic },
    )
}

impl KindFixture for Kafka {
    const TYPE: &'static str = "KAFKA";
    const BLOCK_FIELD: &'static str = "kafka";
    type Inbox = Inbox;

    async fn destination(behaviour: Behaviour) -> Destination<Inbox> {
        // Read first, whatever the behaviour: without the broker, every test of the kind fails.
        let bootstrap = setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP");
        match behaviour {
            Behaviour::Accepts => on_new_topic(bootstrap, Vec::new()),
            Behaviour::RefusesForNow => {
                let (port, keep) = silent_listener().await;
                let hanging = format!("127.0.0.1:{port}");
                let inbox = Inbox {
                    bootstrap: hanging.clone(),
                    topic: "bw-contract-hanging".into(),
                };
                Destination {
                    provoked: Provoked::CannotBe {
                        why: "tansu creates a missing topic on first use and has no passing refusal (no quotas, \
                              no replicas to wait for) a test can cause",
                        instead: "a broker that takes the connection and never answers: no delivery report \
                                  within the message timeout, retried",
                    },
                    keep,
                    ..Destination::real(cluster(hanging, Vec::new()), json!({ "topic": inbox.topic }), inbox)
                }
            }
            // The smallest record size librdkafka allows; the contract's event is larger. The
            // producer refuses the record itself (MSG_SIZE_TOO_LARGE), as it does when the
            // cluster's own limit is smaller; tansu has no record limit a test can set.
            Behaviour::RefusesForGood => Destination {
                provoked: Provoked::CannotBe {
                    why: "the tansu test broker enforces no record size limit a test can set",
                    instead: "the producer's own record limit (message.max.bytes = 1000) refuses the record for good",
                },
                ..on_new_topic(bootstrap, vec![("message.max.bytes", "1000")])
            },
            Behaviour::Unreachable => {
                let closed = format!("127.0.0.1:{}", closed_port());
                let inbox = Inbox {
                    bootstrap: closed.clone(),
                    topic: "bw-contract-unreachable".into(),
                };
                Destination::real(cluster(closed, Vec::new()), json!({ "topic": inbox.topic }), inbox)
            }
        }
    }

    async fn destination_with_secrets() -> Destination<Inbox> {
        // A SASL password among the producer properties (librdkafka ignores it on this
        // plaintext listener, but the channel has it).
        Destination {
            secrets: vec!["contract-sasl-password".into()],
            ..on_new_topic(
                setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP"),
                vec![
                    ("sasl.username", "contract"),
                    ("sasl.password", "contract-sasl-password"),
                ],
            )
        }
    }

    async fn arrived(inbox: &Inbox) -> Vec<Value> {
        let (bootstrap, topic) = (inbox.bootstrap.clone(), inbox.topic.clone());
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic))
            .await
            .unwrap()
    }

    fn invalid_block() -> (Value, &'static str) {
        (json!({ "topic": "has space" }), "kafka.topic")
    }
}

/// The Kafka kind in binary content mode: the same destinations, with the option in the block.
pub struct KafkaBinary;

/// `block` with the binary content mode.
fn binary(mut destination: Destination<Inbox>) -> Destination<Inbox> {
    destination.block["contentMode"] = json!("BINARY");
    destination
}

impl KindFixture for KafkaBinary {
    const TYPE: &'static str = "KAFKA";
    const BLOCK_FIELD: &'static str = "kafka";
    type Inbox = Inbox;

    async fn destination(behaviour: Behaviour) -> Destination<Inbox> {
        binary(Kafka::destination(behaviour).await)
    }

    async fn destination_with_secrets() -> Destination<Inbox> {
        binary(Kafka::destination_with_secrets().await)
    }

    async fn arrived(inbox: &Inbox) -> Vec<Value> {
        let (bootstrap, topic) = (inbox.bootstrap.clone(), inbox.topic.clone());
        tokio::task::spawn_blocking(move || read_topic_with(&bootstrap, &topic, binary_record))
            .await
            .unwrap()
    }

    fn invalid_block() -> (Value, &'static str) {
        (json!({ "topic": "t", "contentMode": "binary" }), "kafka.contentMode")
    }
}

/// A binary-mode record in structured form, as the CloudEvents Kafka binding reads it: each
/// `ce_` header an attribute, `content-type` the `datacontenttype`, the value the data.
fn binary_record(message: &rdkafka::message::BorrowedMessage<'_>) -> Value {
    let mut event = serde_json::Map::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned();
            if header.key == "content-type" {
                event.insert("datacontenttype".into(), value.into());
            } else if let Some(attribute) = header.key.strip_prefix("ce_") {
                event.insert(attribute.into(), value.into());
            }
        }
    }
    let data = serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON data");
    event.insert("data".into(), data);
    Value::Object(event)
}

/// Every record of the one partition of `topic`, from its start to its end, as JSON.
fn read_topic(bootstrap: &str, topic: &str) -> Vec<Value> {
    read_topic_with(bootstrap, topic, |message| {
        serde_json::from_slice(message.payload().unwrap_or_default()).expect("a JSON record")
    })
}

/// Every record of the one partition of `topic`, from its start to its end, read by `read`.
fn read_topic_with(
    bootstrap: &str,
    topic: &str,
    read: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> Value,
) -> Vec<Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bw-contract-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&partitions).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no end of {topic} within 30 s");
        match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => return records,
            Some(Err(err)) => panic!("reading {topic}: {err}"),
            Some(Ok(message)) => records.push(read(&message)),
        }
    }
}
