//! [`KafkaChannel`]: one idempotent producer shared by every Kafka channel of the instance,
//! the record it builds for an event, and the one place where broker errors are classified.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use super::config::{KafkaChannelConfig, KafkaContentMode};
use crate::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord, ResponseRecord,
};
use crate::config::KafkaSettings;
use crate::events::asyncapi::{self, BinaryOption, ContentMode, Extension, Transport};

/// Type name of the Kafka channel.
pub use crate::channels::kind::KAFKA;

/// The `content-type` header of every record: CloudEvents structured mode.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// Extra time past `message.timeout.ms` before an attempt is given up locally, should the
/// delivery report never come.
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// The `content-type` header of a binary-mode record: the event's `datacontenttype`.
pub const BINARY_CONTENT_TYPE: &str = crate::events::DATA_CONTENT_TYPE;

/// Name of the CloudEvents Kafka binding's `partitionkey` extension: the record key, here the
/// event's `walletexternalkey` (the key every record had before the extension was sent).
pub const PARTITION_KEY: &str = "partitionkey";

/// Prefix of the attribute headers in binary mode.
pub const BINARY_HEADER_PREFIX: &str = "ce_";

/// What goes on the wire for one event: the record's key, headers and value.
#[derive(Debug)]
struct Record<'a> {
    key: &'a str,
    headers: Vec<(String, &'a str)>,
    value: Vec<u8>,
}

/// The structured envelope with the `partitionkey` extension.
#[derive(serde::Serialize)]
struct KeyedEnvelope<'a> {
    #[serde(flatten)]
    envelope: &'a crate::events::CloudEvent,
    partitionkey: &'a str,
}

impl<'a> Record<'a> {
    /// The record of `message` in `mode`. Both modes key the record by the wallet and carry
    /// that key as `partitionkey`, as the CloudEvents Kafka binding maps it.
    ///
    /// # Errors
    /// The envelope cannot be rendered as JSON (it always can: it was read from JSON).
    fn of(message: &'a OutboundMessage<'a>, mode: KafkaContentMode) -> Result<Record<'a>, serde_json::Error> {
        let envelope = message.envelope;
        let key = envelope.walletexternalkey.as_str();
        match mode {
            KafkaContentMode::Structured => Ok(Record {
                key,
                headers: vec![("content-type".into(), STRUCTURED_CONTENT_TYPE)],
                value: serde_json::to_vec(&KeyedEnvelope {
                    envelope,
                    partitionkey: key,
                })?,
            }),
            KafkaContentMode::Binary => {
                let mut headers = vec![("content-type".to_string(), envelope.datacontenttype.as_str())];
                for (name, value) in envelope.attributes() {
                    // `datacontenttype` travels as the record's `content-type` header.
                    if name != "datacontenttype" {
                        headers.push((format!("{BINARY_HEADER_PREFIX}{name}"), value));
                    }
                }
                headers.push((format!("{BINARY_HEADER_PREFIX}{PARTITION_KEY}"), key));
                Ok(Record {
                    key,
                    headers,
                    // The data exactly as stored, as the webhook's body.
                    value: message.body.to_vec(),
                })
            }
        }
    }
}

/// The built-in `KAFKA` channel type.
pub struct KafkaChannel {
    settings: KafkaSettings,
    /// Replaced after a fatal producer error (an idempotent producer cannot go on after one).
    producer: Mutex<FutureProducer>,
}

impl std::fmt::Debug for KafkaChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaChannel")
            .field("bootstrap_servers", &self.settings.bootstrap_servers)
            .finish()
    }
}

impl KafkaChannel {
    /// The channel for the cluster in `settings`. No connection is made yet.
    ///
    /// # Errors
    /// librdkafka refuses the producer properties.
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<KafkaChannel> {
        let producer = build_producer(settings)?;
        Ok(KafkaChannel {
            settings: settings.clone(),
            producer: Mutex::new(producer),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts over with a new producer when `failed` can no longer send, unless another
    /// attempt already replaced it (many in-flight records fail together).
    fn renew_producer(&self, failed: &FutureProducer) {
        let mut current = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        if current.client().native_ptr() != failed.client().native_ptr() {
            return;
        }
        match build_producer(&self.settings) {
            Ok(fresh) => {
                tracing::warn!("the Kafka producer can no longer send; a new one takes over");
                *current = fresh;
            }
            Err(err) => tracing::error!(error = %err, "cannot rebuild the Kafka producer"),
        }
    }

    async fn send(&self, message: &OutboundMessage<'_>, channel: &ChannelConfig) -> Attempt {
        let config = match KafkaChannelConfig::from_value(&channel.config) {
            Ok(config) => config,
            Err(err) => return Attempt::rejected_before_request(format!("invalid channel configuration: {err}")),
        };
        let wire = match Record::of(message, config.mode()) {
            Ok(wire) => wire,
            Err(err) => return Attempt::rejected_before_request(format!("the event cannot be rendered: {err}")),
        };
        let request = RequestRecord {
            method: "PRODUCE".into(),
            url: config.topic.clone(),
            headers: std::iter::once(("key".to_string(), wire.key.to_string()))
                .chain(wire.headers.iter().map(|(n, v)| (n.clone(), v.to_string())))
                .collect(),
            body: String::from_utf8_lossy(&wire.value).into_owned(),
        };
        let headers = wire.headers.iter().fold(OwnedHeaders::new(), |headers, (name, value)| {
            headers.insert(Header {
                key: name.as_str(),
                value: Some(*value),
            })
        });
        let record = FutureRecord::to(&config.topic)
            .key(wire.key)
            .payload(&wire.value)
            .headers(headers);
        let producer = self.producer();
        // Enqueueing does not wait: a full local queue is reported at once (and retried later).
        let delivery = match producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((err, _)) => return self.failed(request, &err, &producer),
        };
        let limit = Duration::from_millis(self.settings.message_timeout_ms) + REPORT_GRACE;
        let outcome = match tokio::time::timeout(limit, delivery).await {
            Ok(Ok(Ok((partition, offset)))) => Outcome::Delivered {
                response: Some(ResponseRecord {
                    status: 0,
                    headers: vec![
                        ("partition".into(), partition.to_string()),
                        ("offset".into(), offset.to_string()),
                    ],
                    body_excerpt: format!("partition {partition}, offset {offset}"),
                }),
            },
            Ok(Ok(Err((err, _)))) => return self.failed(request, &err, &producer),
            Ok(Err(_canceled)) => Outcome::Retryable {
                error: "the Kafka producer went away before the broker answered".into(),
                retry_after: None,
                response: None,
            },
            Err(_elapsed) => Outcome::Retryable {
                error: format!("no delivery report from Kafka within {} ms", limit.as_millis()),
                retry_after: None,
                response: None,
            },
        };
        Attempt {
            request: Some(request),
            outcome,
        }
    }

    /// The attempt for a record the broker did not take.
    fn failed(&self, request: RequestRecord, err: &KafkaError, producer: &FutureProducer) -> Attempt {
        let code = err.rdkafka_error_code();
        // An idempotent producer that hit a fatal error, or whose producer id the broker no
        // longer accepts, fails every later record too: only a new producer (with a new id)
        // gets through again. A broker restarted with its log but not its producer state
        // answers ProducerFenced to every record of the old producer, without librdkafka
        // calling it fatal; the producer's own fatal state is checked as well.
        let identity_refused = matches!(
            code,
            Some(
                RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
            )
        );
        if identity_refused || producer.client().fatal_error().is_some() {
            self.renew_producer(producer);
        }
        Attempt {
            request: Some(request),
            outcome: classify(code, format!("Kafka: {err}")),
        }
    }
}

impl Channel for KafkaChannel {
    fn kind(&self) -> &str {
        KAFKA
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        KafkaChannelConfig::from_value(config).map(|_| ())
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(self.send(message, channel))
    }

    fn asyncapi(&self) -> Option<Transport> {
        Some(transport())
    }

    fn destination(&self, config: &Value) -> Option<String> {
        KafkaChannelConfig::from_value(config).ok().map(|c| c.topic)
    }
}

/// Kafka's binary mode, for the AsyncAPI document.
const BINARY: BinaryOption = BinaryOption {
    prefix: BINARY_HEADER_PREFIX,
    content_type_header: "content-type",
    how: "`kafka.contentMode: BINARY`",
    extensions: &[Extension {
        name: PARTITION_KEY,
        same_as: "walletexternalkey",
        description: "The CloudEvents Kafka binding's `partitionkey` extension: the record key, \
            which is the event's `walletexternalkey`.",
    }],
};

/// What a Kafka record looks like, for the AsyncAPI document.
pub fn transport() -> Transport {
    Transport {
        name: "kafka",
        title: "Kafka",
        description: "A record on the channel's `kafka.topic` in the instance's Kafka cluster \
            (`integration.channels.kafka`). The key is the event's `walletexternalkey`, so that \
            one wallet's events stay in order on one partition, and the event carries it also as \
            the CloudEvents Kafka binding's `partitionkey` extension. By default (and with \
            `kafka.contentMode: STRUCTURED`) the record is in CloudEvents structured mode: the \
            value is the JSON envelope and the `content-type` header says so. A channel with \
            `kafka.contentMode: BINARY` sends binary mode instead (the `-binary` messages): the \
            value is the data JSON alone, `content-type: application/json`, and every other \
            attribute is a `ce_` header (`ce_type`, `ce_id`, ..., `ce_traceparent` and \
            `ce_tracestate` when the event has them, `ce_partitionkey`), as the CloudEvents SDKs' \
            Kafka bindings read it. The producer is idempotent with `acks=all`; the broker's \
            acknowledgement makes the delivery DELIVERED."
            .into(),
        address: Some("{topic}"),
        parameters: json!({ "topic": { "description": "The channel's `kafka.topic`." } }),
        mode: ContentMode::StructuredOrBinary(BINARY),
        content_type: STRUCTURED_CONTENT_TYPE,
        headers: |_| {
            vec![asyncapi::Header::required(
                "content-type",
                json!({ "type": "string", "const": STRUCTURED_CONTENT_TYPE }),
                STRUCTURED_CONTENT_TYPE,
            )]
        },
        operation_bindings: None,
        message_bindings: Some(json!({
            "kafka": {
                "key": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The event's `walletexternalkey` (also its `partitionkey`).",
                },
                "bindingVersion": "0.5.0",
            }
        })),
    }
}

/// The producer: idempotent, acknowledged by all in-sync replicas, keys hashed like the Java
/// client (so a wallet's records land where a Java producer would put them), and a bounded
/// time per record so an attempt ends well within the dispatcher's lease.
fn build_producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    let mut config = ClientConfig::new();
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", &settings.client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", settings.message_timeout_ms.to_string());
    Ok(config.create()?)
}

/// The one place where a broker or client error (its code, when it has one) becomes a retryable
/// or a rejected outcome with `error` as its message. Anything not named here is treated as
/// passing: retrying costs little, failing a delivery for a transient fault loses it until
/// somebody replays it.
fn classify(code: Option<RDKafkaErrorCode>, error: String) -> Outcome {
    use RDKafkaErrorCode as C;
    match code {
        // The record itself, or the channel's topic, can never be accepted as configured.
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::PolicyViolation
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::InvalidArgument
            | C::BadMessage,
        ) => Outcome::Rejected { error, response: None },
        // Transport, timeouts, leader elections, unavailable brokers or replicas, a full local
        // queue, a topic still being created, an error without a code, and everything else.
        _ => Outcome::Retryable {
            error,
            retry_after: None,
            response: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::AttemptOutcome;

    fn class(code: Option<RDKafkaErrorCode>) -> AttemptOutcome {
        classify(code, "Kafka: failed".into()).kind()
    }

    fn sample() -> (crate::events::CloudEvent, Vec<u8>) {
        let mut envelope = crate::events::WALLET_CREATED_V1.sample_envelope("http://x");
        envelope.tracestate = Some("congo=t61rcWkgMzE".into());
        let body = serde_json::to_vec(&envelope.data).unwrap();
        (envelope, body)
    }

    fn outbound<'a>(envelope: &'a crate::events::CloudEvent, body: &'a [u8]) -> OutboundMessage<'a> {
        OutboundMessage {
            envelope,
            body,
            signing_secrets: Vec::new(),
            attempt: 1,
        }
    }

    #[test]
    fn a_structured_record_is_the_envelope_with_its_partition_key() {
        let (envelope, body) = sample();
        let message = outbound(&envelope, &body);
        let record = Record::of(&message, KafkaContentMode::Structured).unwrap();
        assert_eq!(record.key, envelope.walletexternalkey);
        assert_eq!(
            record.headers,
            vec![("content-type".to_string(), STRUCTURED_CONTENT_TYPE)]
        );
        let mut value: Value = serde_json::from_slice(&record.value).unwrap();
        assert_eq!(value["partitionkey"], envelope.walletexternalkey.as_str());
        // Without it, the value is exactly the envelope every other consumer knows.
        value.as_object_mut().unwrap().remove("partitionkey");
        assert_eq!(value, serde_json::to_value(&envelope).unwrap());
    }

    #[test]
    fn a_binary_record_is_the_data_with_prefixed_attribute_headers() {
        let (envelope, body) = sample();
        let message = outbound(&envelope, &body);
        let record = Record::of(&message, KafkaContentMode::Binary).unwrap();
        assert_eq!(record.key, envelope.walletexternalkey);
        assert_eq!(record.value, body);
        let names: Vec<&str> = record.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "ce_specversion",
                "ce_type",
                "ce_source",
                "ce_id",
                "ce_time",
                "ce_subject",
                "ce_dataschema",
                "ce_walletexternalkey",
                "ce_correlationid",
                "ce_traceparent",
                "ce_tracestate",
                "ce_partitionkey"
            ]
        );
        let header = |name: &str| record.headers.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("ce_type"), Some(envelope.event_type.as_str()));
        assert_eq!(header("ce_traceparent"), envelope.traceparent.as_deref());
        assert_eq!(header("ce_tracestate"), Some("congo=t61rcWkgMzE"));
        assert_eq!(header("ce_partitionkey"), Some(envelope.walletexternalkey.as_str()));
    }

    #[test]
    fn transient_broker_trouble_is_retried_and_bad_records_are_rejected() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::BrokerNotAvailable,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert_eq!(class(Some(code)), AttemptOutcome::Retryable, "{code:?}");
        }
        assert_eq!(class(None), AttemptOutcome::Retryable);
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::UnknownTopic,
        ] {
            assert_eq!(class(Some(code)), AttemptOutcome::Rejected, "{code:?}");
        }
        let rejected = classify(Some(RDKafkaErrorCode::InvalidTopic), "Kafka: bad topic".into());
        assert_eq!(rejected.error(), Some("Kafka: bad topic"));
    }
}
