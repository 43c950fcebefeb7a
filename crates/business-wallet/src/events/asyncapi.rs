//! The AsyncAPI 3.0 description of what the channels send, served without authentication at
//! `GET /api/public/asyncapi.json`.
//!
//! The document has one AsyncAPI channel and one `send` operation per channel type this
//! instance offers, and in each channel one message per catalog event type: its payload schema
//! (the catalog's JSON Schema of the data, or the structured-mode envelope around it), its
//! headers (the CloudEvents attributes in binary mode, the signature, the broker's own ones),
//! where its correlation id is, and the catalog sample as an example.
//!
//! What differs between channel types (address, headers, bindings, binary or structured mode)
//! is described by each type itself, as a [`Transport`] returned by
//! [`Channel::asyncapi`](crate::channels::Channel::asyncapi); this module adds what every type
//! shares (the catalog, the envelope) and puts the parts together.

use serde_json::{json, Map, Value};

use super::{CloudEvent, EventType, CATALOG, DATA_CONTENT_TYPE, SOURCE, SPEC_VERSION};

/// The AsyncAPI version of the document.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// How the CloudEvent travels (the CloudEvents protocol bindings' two content modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentMode {
    /// The attributes as `ce-` headers, the data alone as the body.
    Binary,
    /// The whole envelope, attributes and data, as a JSON body.
    Structured,
    /// Structured mode by default, binary mode for the channels that ask for it: each event
    /// type then has a second message, `<message id>-binary`, described by the option.
    StructuredOrBinary(BinaryOption),
}

/// The binary mode a channel type offers besides its default structured mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryOption {
    /// The prefix of the attribute headers, e.g. Kafka's `ce_`.
    pub prefix: &'static str,
    /// The header that carries `datacontenttype` instead of a prefixed one, e.g. Kafka's
    /// `content-type`.
    pub content_type_header: &'static str,
    /// How a channel asks for binary mode (markdown), e.g. "`kafka.contentMode: BINARY`".
    pub how: &'static str,
    /// Extension attributes the type adds in both modes (e.g. Kafka's `partitionkey`).
    pub extensions: &'static [Extension],
}

/// An extension attribute that a channel type adds to the envelope's own, with the value of
/// one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    /// Its name, e.g. `partitionkey`.
    pub name: &'static str,
    /// The envelope attribute whose value it has, e.g. `walletexternalkey`.
    pub same_as: &'static str,
    /// What it means (markdown).
    pub description: &'static str,
}

impl ContentMode {
    /// The extensions a structured message of this mode carries besides the envelope's own.
    fn extensions(self) -> &'static [Extension] {
        match self {
            ContentMode::StructuredOrBinary(option) => option.extensions,
            ContentMode::Binary | ContentMode::Structured => &[],
        }
    }
}

/// One header (or message property) that a channel type sets on every message.
#[derive(Debug, Clone)]
pub struct Header {
    /// Its name as sent.
    pub name: String,
    /// JSON Schema of its value, with a description.
    pub schema: Value,
    /// Whether every message carries it.
    pub required: bool,
    /// Its value on the example message, when it has one.
    pub example: Option<String>,
}

impl Header {
    /// A header that every message carries, with its value on the example message.
    pub fn required(name: impl Into<String>, schema: Value, example: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            schema,
            required: true,
            example: Some(example.into()),
        }
    }

    /// A header that only some channels' messages carry (not shown on the example).
    pub fn optional(name: impl Into<String>, schema: Value) -> Header {
        Header {
            name: name.into(),
            schema,
            required: false,
            example: None,
        }
    }
}

/// How one channel type puts an event on the wire: the parts of the AsyncAPI document that
/// only the type knows.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Key of its AsyncAPI channel (and, after `send`, of its operation), e.g. `webhook`.
    pub name: &'static str,
    /// Short title, e.g. `Webhook`.
    pub title: &'static str,
    /// What a receiver needs to know (markdown).
    pub description: String,
    /// The address, with `{parameter}` placeholders; `None` when every channel has its own
    /// (a webhook's URL).
    pub address: Option<&'static str>,
    /// The AsyncAPI parameter objects of the address, by name.
    pub parameters: Value,
    /// Binary or structured mode.
    pub mode: ContentMode,
    /// The content type of the message body.
    pub content_type: &'static str,
    /// The headers the type sets itself on a message carrying `example` (binary mode's `ce-`
    /// headers are added by this module; with [`ContentMode::StructuredOrBinary`], these are the
    /// structured message's, and the binary one has those of its [`BinaryOption`]).
    pub headers: fn(&CloudEvent) -> Vec<Header>,
    /// AsyncAPI bindings of the operation, e.g. `{"http": {"method": "POST"}}`.
    pub operation_bindings: Option<Value>,
    /// AsyncAPI bindings of each message, e.g. a Kafka record's key.
    pub message_bindings: Option<Value>,
}

/// The AsyncAPI 3.0 document for `transports`, with the `dataschema` URLs under `base_url`.
pub fn document(base_url: &str, transports: &[Transport]) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    for transport in transports {
        let mut messages = Map::new();
        let mut references = Vec::new();
        for event in CATALOG {
            let id = message_id(event);
            references.push(json!({ "$ref": format!("#/channels/{}/messages/{id}", transport.name) }));
            messages.insert(id.clone(), message(transport, event, base_url));
            if let ContentMode::StructuredOrBinary(option) = transport.mode {
                let id = format!("{id}-binary");
                references.push(json!({ "$ref": format!("#/channels/{}/messages/{id}", transport.name) }));
                messages.insert(id, binary_message(transport, &option, event, base_url));
            }
        }
        let mut channel = json!({
            "address": transport.address,
            "title": transport.title,
            "description": transport.description,
            "messages": messages,
        });
        if transport.parameters.as_object().is_some_and(|p| !p.is_empty()) {
            channel["parameters"] = transport.parameters.clone();
        }
        channels.insert(transport.name.to_string(), channel);

        let mut operation = json!({
            "action": "send",
            "channel": { "$ref": format!("#/channels/{}", transport.name) },
            "title": format!("Deliver events to a {} channel", transport.title),
            "summary": "Each event, once per subscribed channel, at least once.",
            "description": DELIVERY,
            "messages": references,
        });
        if let Some(bindings) = &transport.operation_bindings {
            operation["bindings"] = bindings.clone();
        }
        operations.insert(operation_id(transport), operation);
    }
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:com:credenco:businesswallet:events",
        "info": {
            "title": "business-wallet events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": INTRODUCTION,
            "license": { "name": "Apache-2.0" },
        },
        "defaultContentType": DATA_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
    })
}

const INTRODUCTION: &str = "The CloudEvents 1.0 events a Business Wallet delivers to its \
integration channels. Each event type of the catalog (`GET /api/public/event-types`) is one \
message in each channel below; its data is described by the JSON Schema at its `dataschema` URL, \
which the payload schemas here repeat. Every event carries the attributes `specversion`, `type`, \
`source`, `id`, `time`, `subject`, `dataschema`, `datacontenttype` and the extensions \
`walletexternalkey` and `correlationid`, and the CloudEvents distributed-tracing extension: `traceparent` (the W3C trace context of the API request that caused the event, or a new one when the request had no valid one) and, when the request sent one with it, `tracestate`. Receivers that do not trace can ignore both. Only the channel types this instance offers are listed.";

const DELIVERY: &str = "The application sends every event of a subscribed type to every \
enabled channel of its wallet and to every enabled platform channel. Delivery is at least once: \
the same event can arrive again (after a retry, a replay, or a restart), always with the same \
`id`, so receivers deduplicate on it. Failed attempts are retried with exponential back-off; \
the order of arrival is not guaranteed.";

/// The key of an event type's message in each channel, e.g. `wallet-created-v1`.
fn message_id(event: &EventType) -> String {
    format!("{}-v{}", event.slug, event.major)
}

/// `send` followed by the transport's name with a capital, e.g. `sendWebhook`.
fn operation_id(transport: &Transport) -> String {
    let mut name = transport.name.chars();
    let first = name.next().map(|c| c.to_ascii_uppercase()).into_iter();
    format!("send{}", first.chain(name).collect::<String>())
}

/// The `traceparent` of the example envelope (the W3C specification's own example).
pub const EXAMPLE_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// The `tracestate` of the example envelope.
pub const EXAMPLE_TRACESTATE: &str = "congo=t61rcWkgMzE";

/// The catalog sample in a fixed envelope, so that the document is the same on every call.
pub fn example_envelope(event: &EventType, base_url: &str) -> CloudEvent {
    let mut envelope = event.sample_envelope(base_url);
    envelope.id = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d".into();
    envelope.correlationid = "0e8f3c1a-6a8e-4a2e-9a53-2f1c4f6d7b90".into();
    envelope.traceparent = Some(EXAMPLE_TRACEPARENT.into());
    envelope.tracestate = Some(EXAMPLE_TRACESTATE.into());
    envelope.sequence = Some(crate::events::sequence_text(1));
    // The event's time is when what it tells of happened, as its data says.
    if let Some(created) = ["createdAt", "changedAt"]
        .iter()
        .find_map(|at| envelope.data[*at].as_str())
    {
        envelope.time = created.to_string();
    }
    envelope
}

fn message(transport: &Transport, event: &EventType, base_url: &str) -> Value {
    let example = example_envelope(event, base_url);
    let mut headers = Vec::new();
    if transport.mode == ContentMode::Binary {
        for (attribute, schema, required) in attributes(event, base_url) {
            headers.push(Header {
                name: format!("ce-{attribute}"),
                schema,
                required,
                example: attribute_value(&example, attribute)
                    .map(|value| webhook_verify::percent_encode_header_value(&value)),
            });
        }
    }
    headers.extend((transport.headers)(&example));

    let extensions = transport.mode.extensions();
    let (payload, example_payload, correlation) = match transport.mode {
        ContentMode::Binary => (
            data_schema(event, base_url),
            example.data.clone(),
            "$message.header#/ce-correlationid".to_string(),
        ),
        ContentMode::Structured | ContentMode::StructuredOrBinary(_) => {
            let mut payload = serde_json::to_value(&example).expect("an envelope is JSON");
            for extension in extensions {
                payload[extension.name] = attribute_value(&example, extension.same_as).into();
            }
            (
                envelope_schema(event, base_url, extensions),
                payload,
                "$message.payload#/correlationid".to_string(),
            )
        }
    };
    assemble(
        Parts {
            title: event.type_name.to_string(),
            summary: event.description.to_string(),
            content_type: transport.content_type,
            headers,
            payload,
            example_payload,
            correlation,
        },
        transport,
        event,
        base_url,
    )
}

/// The binary-mode message of a type that offers it besides structured mode: the attributes
/// and extensions as headers named with the option's prefix (`datacontenttype` as its own
/// header), the data alone as the payload.
fn binary_message(transport: &Transport, option: &BinaryOption, event: &EventType, base_url: &str) -> Value {
    let example = example_envelope(event, base_url);
    let mut headers = vec![Header::required(
        option.content_type_header,
        json!({
            "type": "string",
            "const": DATA_CONTENT_TYPE,
            "description": "The event's `datacontenttype`: the data is JSON.",
        }),
        DATA_CONTENT_TYPE,
    )];
    for (attribute, schema, required) in attributes(event, base_url) {
        if attribute == "datacontenttype" {
            continue;
        }
        headers.push(Header {
            name: format!("{}{attribute}", option.prefix),
            schema,
            required,
            example: attribute_value(&example, attribute),
        });
    }
    for extension in option.extensions {
        headers.push(Header::required(
            format!("{}{}", option.prefix, extension.name),
            json!({ "type": "string", "description": extension.description }),
            attribute_value(&example, extension.same_as).unwrap_or_default(),
        ));
    }
    assemble(
        Parts {
            title: format!("{} (binary mode)", event.type_name),
            summary: format!(
                "{} Sent in CloudEvents binary mode, instead of the structured message, to the channels with {}.",
                event.description, option.how
            ),
            content_type: DATA_CONTENT_TYPE,
            headers,
            payload: data_schema(event, base_url),
            example_payload: example.data.clone(),
            correlation: format!("$message.header#/{}correlationid", option.prefix),
        },
        transport,
        event,
        base_url,
    )
}

/// What differs between the messages of one event type.
struct Parts {
    title: String,
    summary: String,
    content_type: &'static str,
    headers: Vec<Header>,
    payload: Value,
    example_payload: Value,
    correlation: String,
}

/// The AsyncAPI message object of `parts`.
fn assemble(parts: Parts, transport: &Transport, event: &EventType, base_url: &str) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut example_headers = Map::new();
    for header in parts.headers {
        if header.required {
            required.push(Value::String(header.name.clone()));
        }
        if let Some(value) = header.example {
            example_headers.insert(header.name.clone(), Value::String(value));
        }
        properties.insert(header.name, header.schema);
    }
    let mut message = json!({
        "name": event.type_name,
        "title": parts.title,
        "summary": parts.summary,
        "contentType": parts.content_type,
        "headers": { "type": "object", "required": required, "properties": properties },
        "payload": parts.payload,
        "correlationId": {
            "description": "The `correlationid` extension: the `X-Correlation-Id` of the API request that caused the event, else a UUID shared by the events of that request.",
            "location": parts.correlation,
        },
        "externalDocs": {
            "description": "The data's JSON Schema (2020-12): the events' `dataschema`.",
            "url": event.schema_url(base_url),
        },
        "examples": [{
            "name": "sample",
            "summary": "The catalog's sample of this event type.",
            "headers": example_headers,
            "payload": parts.example_payload,
        }],
    });
    if let Some(bindings) = &transport.message_bindings {
        message["bindings"] = bindings.clone();
    }
    message
}

/// The catalog's schema of the event's data, without the keywords that only make sense at the
/// top of a schema document (`$schema`, `$id`): here it is a part of the AsyncAPI document.
pub fn data_schema(event: &EventType, base_url: &str) -> Value {
    let mut schema = event.schema(base_url);
    if let Some(schema) = schema.as_object_mut() {
        schema.remove("$schema");
        schema.remove("$id");
    }
    schema
}

/// The structured-mode envelope of the event: every attribute, the `extensions` of the
/// channel type (optional: a receiver that reads events elsewhere, such as the events API,
/// does not get them), and the data.
fn envelope_schema(event: &EventType, base_url: &str, extensions: &[Extension]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (attribute, schema, always) in attributes(event, base_url) {
        if always {
            required.push(Value::String(attribute.into()));
        }
        properties.insert(attribute.into(), schema);
    }
    for extension in extensions {
        properties.insert(
            extension.name.into(),
            json!({ "type": "string", "description": extension.description }),
        );
    }
    properties.insert("data".into(), data_schema(event, base_url));
    required.push("data".into());
    json!({
        "type": "object",
        "description": "A CloudEvents 1.0 envelope in structured mode (JSON event format).",
        "required": required,
        "properties": properties,
    })
}

/// The CloudEvents attributes of `event` with the schema of each value and whether every
/// event has it.
fn attributes(event: &EventType, base_url: &str) -> Vec<(&'static str, Value, bool)> {
    let always = [
        (
            "specversion",
            json!({ "type": "string", "const": SPEC_VERSION, "description": "The CloudEvents version." }),
        ),
        (
            "type",
            json!({ "type": "string", "const": event.type_name, "description": "The event type." }),
        ),
        (
            "source",
            json!({ "type": "string", "const": SOURCE, "description": "Where the event comes from." }),
        ),
        (
            "id",
            json!({
                "type": "string",
                "format": "uuid",
                "description": "The event's identifier: the same on every retry and replay, so receivers deduplicate on it.",
            }),
        ),
        (
            "time",
            json!({
                "type": "string",
                "format": "date-time",
                "description": "When the change was committed (RFC 3339, UTC, milliseconds).",
            }),
        ),
        (
            "subject",
            json!({
                "type": "string",
                "pattern": subject_pattern(event.subject_pattern),
                "description": format!("What the event is about: `{}`.", event.subject_pattern),
            }),
        ),
        (
            "dataschema",
            json!({
                "type": "string",
                "const": event.schema_url(base_url),
                "description": "The URL of the data's JSON Schema.",
            }),
        ),
        (
            "datacontenttype",
            json!({ "type": "string", "const": DATA_CONTENT_TYPE, "description": "The data is JSON." }),
        ),
        (
            "walletexternalkey",
            json!({
                "type": "string",
                "format": "uuid",
                "description": "Extension: the wallet the event belongs to (it tells a platform channel's receiver which wallet).",
            }),
        ),
        (
            "correlationid",
            json!({
                "type": "string",
                "minLength": 1,
                "description": "Extension: the `X-Correlation-Id` of the API request that caused the event, else a UUID shared by the events of that request.",
            }),
        ),
    ];
    let tracing = [
        (
            "sequence",
            json!({
                "type": "string",
                "pattern": "^[0-9]{20}$",
                "description": "Sequence extension: the event's number among its wallet's events (1 for the first, without gaps), as 20 decimal digits so that text order is number order. A receiver can check that it has every event of a wallet, in order (with a channel's PER_WALLET ordering they also arrive in that order). Test sends have none; events stored before it was recorded lack it.",
            }),
        ),
        (
            "traceparent",
            json!({
                "type": "string",
                "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "Distributed-tracing extension: the W3C `traceparent` of the API request that caused the event, exactly as sent when valid (version 00, trace id and parent id not all zeros), else a new one (random ids, sampled flag `01`) for that request. Every event published since trace context is recorded has one; events stored before lack it.",
            }),
        ),
        (
            "tracestate",
            json!({
                "type": "string",
                "maxLength": 512,
                "description": "Distributed-tracing extension: the W3C `tracestate` sent with a valid `traceparent` (several headers joined by `,`); absent otherwise.",
            }),
        ),
    ];
    always
        .into_iter()
        .map(|(name, schema)| (name, schema, true))
        .chain(tracing.into_iter().map(|(name, schema)| (name, schema, false)))
        .collect()
}

fn attribute_value(envelope: &CloudEvent, attribute: &str) -> Option<String> {
    let value = match attribute {
        "specversion" => &envelope.specversion,
        "type" => &envelope.event_type,
        "source" => &envelope.source,
        "id" => &envelope.id,
        "time" => &envelope.time,
        "subject" => &envelope.subject,
        "dataschema" => &envelope.dataschema,
        "datacontenttype" => &envelope.datacontenttype,
        "walletexternalkey" => &envelope.walletexternalkey,
        "correlationid" => &envelope.correlationid,
        "sequence" => return envelope.sequence.clone(),
        "traceparent" => return envelope.traceparent.clone(),
        "tracestate" => return envelope.tracestate.clone(),
        _ => unreachable!("attributes() names only the envelope's attributes"),
    };
    Some(value.clone())
}

/// A regular expression for the subjects a catalog pattern makes: each `{placeholder}` is one
/// path segment.
fn subject_pattern(pattern: &str) -> String {
    let mut regex = String::from("^");
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        regex.push_str(&escape(&rest[..start]));
        match rest[start..].find('}') {
            Some(end) => {
                regex.push_str("[^/]+");
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    regex.push_str(&escape(rest));
    regex.push('$');
    regex
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_headers(example: &CloudEvent) -> Vec<Header> {
        vec![
            Header::required("x-id", json!({ "type": "string" }), example.id.clone()),
            Header::optional("x-maybe", json!({ "type": "string" })),
        ]
    }

    fn transport(name: &'static str, mode: ContentMode) -> Transport {
        Transport {
            name,
            title: "Test",
            description: "A test transport.".into(),
            address: Some("{where}"),
            parameters: json!({ "where": { "description": "Somewhere." } }),
            mode,
            content_type: "application/test",
            headers: fake_headers,
            operation_bindings: None,
            message_bindings: None,
        }
    }

    fn valid(schema: &Value, instance: &Value) -> Result<(), String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| format!("schema compiles: {e}"))?;
        let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    #[test]
    fn subject_patterns_become_anchored_expressions() {
        assert_eq!(
            subject_pattern("wallets/{walletExternalKey}/identifiers/{identifierExternalKey}"),
            "^wallets/[^/]+/identifiers/[^/]+$"
        );
        assert_eq!(subject_pattern("a.b/{x}"), r"^a\.b/[^/]+$");
        assert_eq!(subject_pattern("open{"), r"^open\{$");
    }

    #[test]
    fn every_transport_has_a_channel_an_operation_and_a_message_per_event_type() {
        let base = "https://wallet.example";
        let doc = document(
            base,
            &[
                transport("binary", ContentMode::Binary),
                transport("structured", ContentMode::Structured),
            ],
        );
        assert_eq!(doc["asyncapi"], "3.0.0");
        for (name, operation) in [("binary", "sendBinary"), ("structured", "sendStructured")] {
            let channel = &doc["channels"][name];
            assert_eq!(channel["address"], "{where}");
            assert!(channel["parameters"]["where"].is_object());
            let operation = &doc["operations"][operation];
            assert_eq!(operation["action"], "send");
            assert_eq!(operation["channel"]["$ref"], format!("#/channels/{name}"));
            let references: Vec<&str> = operation["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["$ref"].as_str().unwrap())
                .collect();
            assert_eq!(references.len(), CATALOG.len());
            for event in CATALOG {
                let message = &channel["messages"][message_id(event)];
                assert_eq!(message["name"], event.type_name, "{name}");
                assert!(references.contains(&format!("#/channels/{name}/messages/{}", message_id(event)).as_str()));
                // The example is valid against the schemas it illustrates.
                let sample = &message["examples"][0];
                valid(&message["payload"], &sample["payload"]).unwrap();
                valid(&message["headers"], &sample["headers"]).unwrap();
                assert_eq!(sample["headers"]["x-id"], "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d");
                assert!(sample["headers"].get("x-maybe").is_none());
                let required = message["headers"]["required"].as_array().unwrap();
                assert!(required.contains(&json!("x-id")) && !required.contains(&json!("x-maybe")));
            }
        }

        let event = &super::super::IDENTIFIER_CREATED_V1;
        let binary = &doc["channels"]["binary"]["messages"][message_id(event)];
        // Binary mode: the data alone, as the catalog's schema describes it, and the attributes as headers.
        assert_eq!(binary["payload"], data_schema(event, base));
        assert_eq!(binary["payload"]["title"], event.type_name);
        assert!(binary["payload"].get("$schema").is_none());
        assert_eq!(binary["headers"]["properties"]["ce-type"]["const"], event.type_name);
        assert_eq!(
            binary["headers"]["properties"]["ce-dataschema"]["const"],
            event.schema_url(base)
        );
        assert_eq!(binary["correlationId"]["location"], "$message.header#/ce-correlationid");
        // The distributed-tracing extension: described, shown on the example, not required
        // (events stored before it was recorded lack it).
        let headers = &binary["headers"];
        for name in ["ce-traceparent", "ce-tracestate"] {
            assert!(headers["properties"][name].is_object(), "{name}");
            assert!(
                !headers["required"].as_array().unwrap().contains(&json!(name)),
                "{name}"
            );
        }
        assert_eq!(binary["examples"][0]["headers"]["ce-traceparent"], EXAMPLE_TRACEPARENT);
        assert_eq!(binary["examples"][0]["headers"]["ce-tracestate"], EXAMPLE_TRACESTATE);
        // Structured mode: a real envelope of the event validates, and one of another type does not.
        let structured = &doc["channels"]["structured"]["messages"][message_id(event)];
        assert_eq!(
            structured["correlationId"]["location"],
            "$message.payload#/correlationid"
        );
        let envelope = serde_json::to_value(event.sample_envelope(base)).unwrap();
        valid(&structured["payload"], &envelope).unwrap();
        assert!(structured["payload"]["properties"]["traceparent"].is_object());
        assert_eq!(structured["examples"][0]["payload"]["traceparent"], EXAMPLE_TRACEPARENT);
        let mut untraced = envelope.clone();
        untraced.as_object_mut().unwrap().remove("traceparent");
        valid(&structured["payload"], &untraced).unwrap();
        untraced["traceparent"] = json!("01-not-a-traceparent");
        assert!(valid(&structured["payload"], &untraced).is_err());
        let other = serde_json::to_value(super::super::WALLET_CREATED_V1.sample_envelope(base)).unwrap();
        assert!(valid(&structured["payload"], &other).is_err());
    }

    const OPTION: BinaryOption = BinaryOption {
        prefix: "ce_",
        content_type_header: "content-type",
        how: "`test.mode: BINARY`",
        extensions: &[Extension {
            name: "partitionkey",
            same_as: "walletexternalkey",
            description: "The record key.",
        }],
    };

    #[test]
    fn a_binary_option_adds_a_binary_message_per_event_type() {
        let base = "https://wallet.example";
        let doc = document(base, &[transport("both", ContentMode::StructuredOrBinary(OPTION))]);
        let channel = &doc["channels"]["both"];
        let references = doc["operations"]["sendBoth"]["messages"].as_array().unwrap();
        assert_eq!(references.len(), 2 * CATALOG.len());
        for event in CATALOG {
            let structured = &channel["messages"][message_id(event)];
            let binary = &channel["messages"][format!("{}-binary", message_id(event))];
            assert!(references
                .contains(&json!({ "$ref": format!("#/channels/both/messages/{}-binary", message_id(event)) })));
            for message in [structured, binary] {
                assert_eq!(message["name"], event.type_name);
                let sample = &message["examples"][0];
                valid(&message["payload"], &sample["payload"]).unwrap();
                valid(&message["headers"], &sample["headers"]).unwrap();
            }
            // Structured: the transport's headers, and the extension in the envelope (not
            // required: events read elsewhere lack it).
            assert_eq!(structured["contentType"], "application/test");
            assert_eq!(
                structured["examples"][0]["headers"]["x-id"],
                "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
            );
            let sample = &structured["examples"][0]["payload"];
            assert_eq!(sample["partitionkey"], sample["walletexternalkey"]);
            let envelope = serde_json::to_value(event.sample_envelope(base)).unwrap();
            valid(&structured["payload"], &envelope).unwrap();
            // Binary: the prefixed attributes and extension, `datacontenttype` as its own
            // header, the data alone; not the structured message's headers.
            assert_eq!(binary["contentType"], DATA_CONTENT_TYPE);
            assert_eq!(binary["payload"], data_schema(event, base));
            let headers = &binary["examples"][0]["headers"];
            assert_eq!(headers["content-type"], DATA_CONTENT_TYPE);
            assert_eq!(headers["ce_type"], event.type_name);
            assert_eq!(headers["ce_traceparent"], EXAMPLE_TRACEPARENT);
            assert_eq!(headers["ce_partitionkey"], headers["ce_walletexternalkey"]);
            assert!(headers.get("ce_datacontenttype").is_none() && headers.get("x-id").is_none());
            let required = binary["headers"]["required"].as_array().unwrap();
            assert!(required.contains(&json!("ce_partitionkey")) && !required.contains(&json!("ce_traceparent")));
            assert_eq!(binary["correlationId"]["location"], "$message.header#/ce_correlationid");
            assert!(binary["summary"].as_str().unwrap().contains("`test.mode: BINARY`"));
        }
    }

    #[test]
    fn the_document_is_the_same_on_every_call() {
        let transports = [transport("binary", ContentMode::Binary)];
        assert_eq!(document("http://x", &transports), document("http://x", &transports));
    }
}
