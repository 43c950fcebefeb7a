//! The event catalog and the CloudEvents envelope.
//!
//! The catalog is data: each [`EventType`] carries its CloudEvents `type`, the slug of its
//! public schema, its major version, its subject pattern, its JSON Schema (2020-12) and a
//! canonical sample. Everything that needs an event type (subscriptions, the schema routes,
//! the test send) looks it up here, so adding an event or a new major version is one entry.
//!
//! [`asyncapi`] describes the catalog as the channels send it (AsyncAPI 3.0); [`trace`] is the
//! W3C trace context that every event carries as the distributed-tracing extension.

pub mod asyncapi;
pub mod trace;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::domain::WalletKey;
use crate::store::{events::EventRow, rfc3339_ms};
pub use trace::TraceContext;

/// The CloudEvents `source` of every event.
pub const SOURCE: &str = "/credenco/wallets";
/// The CloudEvents spec version.
pub const SPEC_VERSION: &str = "1.0";
/// `datacontenttype` of every event.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// One entry of the catalog.
#[derive(Debug)]
pub struct EventType {
    /// CloudEvents `type`, ending in `.v<major>`.
    pub type_name: &'static str,
    /// Slug of the schema URL.
    pub slug: &'static str,
    /// Major version (the `.vN` suffix and the schema file).
    pub major: u32,
    /// Subject pattern with `{placeholders}`.
    pub subject_pattern: &'static str,
    /// What triggers the event.
    pub description: &'static str,
    schema_template: &'static str,
    sample: fn() -> Value,
}

/// Fired once when a wallet is created.
pub static WALLET_CREATED_V1: EventType = EventType {
    type_name: "com.credenco.businesswallet.wallet.created.v1",
    slug: "wallet-created",
    major: 1,
    subject_pattern: "wallets/{walletExternalKey}",
    description: "A Business Wallet is created.",
    schema_template: include_str!("schemas/wallet-created.v1.json"),
    sample: wallet_created_sample,
};

/// Fired once when an identifier (DID, X509 or JWK) is added to a wallet.
pub static IDENTIFIER_CREATED_V1: EventType = EventType {
    type_name: "com.credenco.businesswallet.identifier.created.v1",
    slug: "identifier-created",
    major: 1,
    subject_pattern: "wallets/{walletExternalKey}/identifiers/{identifierExternalKey}",
    description: "A wallet identifier (DID, X509 or JWK) is created.",
    schema_template: include_str!("schemas/identifier-created.v1.json"),
    sample: identifier_created_sample,
};

/// Fired when a wallet's channel moves along the failure ladder (see
/// `domain::channel::ladder`). Never subscribed to unless a channel names it.
pub static CHANNEL_STATE_CHANGED_V1: EventType = EventType {
    type_name: "com.credenco.businesswallet.integration-channel.state-changed.v1",
    slug: "integration-channel-state-changed",
    major: 1,
    subject_pattern: "wallets/{walletExternalKey}/integration-channels/{channelExternalKey}",
    description: "The delivery state of an integration channel changes: FAILING after failed attempts in a row, \
                  PAUSED (no attempts until resumed), or ACTIVE again after a success or a resume.",
    schema_template: include_str!("schemas/integration-channel-state-changed.v1.json"),
    sample: channel_state_changed_sample,
};

/// Every event type the product emits.
pub static CATALOG: &[&EventType] = &[&WALLET_CREATED_V1, &IDENTIFIER_CREATED_V1, &CHANNEL_STATE_CHANGED_V1];

/// Finds a catalog entry by its CloudEvents `type`.
pub fn lookup(type_name: &str) -> Option<&'static EventType> {
    CATALOG.iter().copied().find(|e| e.type_name == type_name)
}

/// Finds a catalog entry by schema slug and major version.
pub fn lookup_schema(slug: &str, major: u32) -> Option<&'static EventType> {
    CATALOG.iter().copied().find(|e| e.slug == slug && e.major == major)
}

impl EventType {
    /// The public URL of this type's schema under `base_url`.
    pub fn schema_url(&self, base_url: &str) -> String {
        format!(
            "{base_url}/api/public/schemas/integration/{}/v{}.json",
            self.slug, self.major
        )
    }

    /// The JSON Schema, with its `$id` under `base_url`.
    pub fn schema(&self, base_url: &str) -> Value {
        let text = self.schema_template.replace("{base}", base_url);
        serde_json::from_str(&text).expect("catalog schemas are valid JSON (checked by a unit test)")
    }

    /// The canonical sample data.
    pub fn sample_data(&self) -> Value {
        (self.sample)()
    }

    /// Fills the subject pattern. Unknown placeholders are left as they are.
    pub fn subject(&self, values: &[(&str, &str)]) -> String {
        let mut subject = self.subject_pattern.to_string();
        for (name, value) in values {
            subject = subject.replace(&format!("{{{name}}}"), value);
        }
        subject
    }

    /// A complete envelope around the canonical sample (the documents' examples).
    pub fn sample_envelope(&self, base_url: &str) -> CloudEvent {
        self.sample_envelope_for(base_url, None)
    }

    /// Like [`EventType::sample_envelope`], about `wallet` when one is given: its key in the
    /// data, the subject and the `walletexternalkey` attribute (a test send to a wallet's
    /// channel, so the receiver sees the wallet it will get events of).
    pub fn sample_envelope_for(&self, base_url: &str, wallet: Option<&WalletKey>) -> CloudEvent {
        let mut data = self.sample_data();
        let wallet = match wallet {
            Some(wallet) => {
                if let Some(slot) = data.get_mut(WalletKey::FIELD) {
                    *slot = json!(wallet);
                }
                wallet.to_string()
            }
            None => data[WalletKey::FIELD].as_str().unwrap_or_default().to_string(),
        };
        let identifier = data["identifierExternalKey"].as_str().unwrap_or_default().to_string();
        let channel = data["channelExternalKey"].as_str().unwrap_or_default().to_string();
        CloudEvent {
            specversion: SPEC_VERSION.into(),
            event_type: self.type_name.into(),
            source: SOURCE.into(),
            id: uuid::Uuid::new_v4().to_string(),
            time: rfc3339_ms(crate::store::now_ms()),
            subject: self.subject(&[
                ("walletExternalKey", &wallet),
                ("identifierExternalKey", &identifier),
                ("channelExternalKey", &channel),
            ]),
            dataschema: self.schema_url(base_url),
            datacontenttype: DATA_CONTENT_TYPE.into(),
            walletexternalkey: wallet,
            correlationid: uuid::Uuid::new_v4().to_string(),
            traceparent: Some(TraceContext::fresh().traceparent().to_string()),
            tracestate: None,
            // A sample is none of the wallet's events: it has no place in their order.
            sequence: None,
            data,
        }
    }
}

fn channel_state_changed_sample() -> Value {
    json!({
        "walletExternalKey": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "channelExternalKey": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "channelName": "ERP webhook",
        "state": "PAUSED",
        "previousState": "FAILING",
        "reason": "20 failed attempts in a row",
        "consecutiveFailures": 20,
        "lastSuccessAt": "2026-03-01T09:15:00.000Z",
        "changedAt": "2026-03-01T12:00:00.000Z",
        "changedBy": "dispatcher"
    })
}

fn wallet_created_sample() -> Value {
    json!({
        "walletExternalKey": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "displayName": "Example Logistics B.V.",
        "email": "integrations@example.com",
        "website": "https://logistics.example.com",
        "phoneNumber": "+31 20 123 4567",
        "address": {"street": "Havenstraat 12", "postalCode": "1011 AB", "city": "Amsterdam", "country": "NL"},
        "createdAt": "2026-05-01T09:42:17.812Z",
        "createdBy": "operator@example.com"
    })
}

fn identifier_created_sample() -> Value {
    json!({
        "walletExternalKey": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "identifierExternalKey": "c4a4e34b-1d6d-4b9a-9e6f-3a7d6f8b1e02",
        "identifierType": "DID",
        "identifier": "did:web:logistics.example.com",
        "displayName": "Issuing DID",
        "didType": "did:web",
        "didEnvironment": null,
        "createdAt": "2026-05-01T09:43:02.401Z",
        "createdBy": "operator@example.com"
    })
}

/// The `sequence` attribute of a wallet's `n`-th event: 20 decimal digits, zero-padded, so
/// that comparing two as text compares their numbers (the extension asks for lexical order).
pub fn sequence_text(n: i64) -> String {
    format!("{n:020}")
}

/// A CloudEvents 1.0 envelope as the product emits it (structured mode JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// The catalog type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Always `/credenco/wallets`.
    pub source: String,
    /// UUID; stable across retries and replays (the receivers' dedupe key).
    pub id: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Per the catalog's subject pattern.
    pub subject: String,
    /// URL of the data's JSON Schema.
    pub dataschema: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Extension: the wallet the event belongs to.
    pub walletexternalkey: String,
    /// Extension: shared by the events of one API request.
    pub correlationid: String,
    /// Distributed-tracing extension: the W3C `traceparent` of the request that caused the
    /// event (see [`trace`]). Absent only on events stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Distributed-tracing extension: the W3C `tracestate` that came with the traceparent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// Sequence extension: the event's number among its wallet's events, 1 for the first,
    /// without gaps, as 20 decimal digits so that text order is number order. Absent only on
    /// events stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// The event data.
    pub data: Value,
}

impl CloudEvent {
    /// Rebuilds the envelope from its stored row.
    ///
    /// # Errors
    /// The stored data is not JSON (it always is when written by the outbox).
    pub fn from_row(row: &EventRow) -> Result<CloudEvent, serde_json::Error> {
        // An event stored before trace context was recorded has none, and is sent as before.
        let trace = row
            .traceparent
            .as_deref()
            .and_then(|parent| TraceContext::parse(parent, row.tracestate.as_deref()));
        Ok(CloudEvent {
            specversion: SPEC_VERSION.into(),
            event_type: row.event_type.clone(),
            source: row.source.clone(),
            id: row.event_id.clone(),
            time: rfc3339_ms(row.time),
            subject: row.subject.clone(),
            dataschema: row.dataschema.clone(),
            datacontenttype: DATA_CONTENT_TYPE.into(),
            walletexternalkey: row.wallet_external_key.to_string(),
            correlationid: row.correlation_id.clone(),
            traceparent: trace.as_ref().map(|t| t.traceparent().to_string()),
            tracestate: trace.as_ref().and_then(|t| t.tracestate()).map(str::to_string),
            sequence: row.sequence.map(sequence_text),
            data: serde_json::from_str(&row.data)?,
        })
    }

    /// Every attribute but `data`, by its bare name (`type`, `traceparent`, ...), in the order
    /// of [`CloudEvent::binary_mode_headers`]; `sequence`, `traceparent` and `tracestate` last, each when
    /// the event has it. The broker channels prefix the names as their protocol bindings say.
    pub fn attributes(&self) -> Vec<(&'static str, &str)> {
        let mut attributes: Vec<(&'static str, &str)> = vec![
            ("specversion", &self.specversion),
            ("type", &self.event_type),
            ("source", &self.source),
            ("id", &self.id),
            ("time", &self.time),
            ("subject", &self.subject),
            ("dataschema", &self.dataschema),
            ("datacontenttype", &self.datacontenttype),
            ("walletexternalkey", &self.walletexternalkey),
            ("correlationid", &self.correlationid),
        ];
        if let Some(sequence) = &self.sequence {
            attributes.push(("sequence", sequence));
        }
        if let Some(traceparent) = &self.traceparent {
            attributes.push(("traceparent", traceparent));
        }
        if let Some(tracestate) = &self.tracestate {
            attributes.push(("tracestate", tracestate));
        }
        attributes
    }

    /// The attributes as CloudEvents HTTP binary-mode headers (`ce-` names, values not yet
    /// percent-encoded), in the order of the catalog's sample requests; `ce-sequence`,
    /// `ce-traceparent` and `ce-tracestate` last, each when the event has it.
    pub fn binary_mode_headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers: Vec<(&'static str, &str)> = vec![
            ("ce-specversion", &self.specversion),
            ("ce-type", &self.event_type),
            ("ce-source", &self.source),
            ("ce-id", &self.id),
            ("ce-time", &self.time),
            ("ce-subject", &self.subject),
            ("ce-dataschema", &self.dataschema),
            ("ce-datacontenttype", &self.datacontenttype),
            ("ce-walletexternalkey", &self.walletexternalkey),
            ("ce-correlationid", &self.correlationid),
        ];
        if let Some(sequence) = &self.sequence {
            headers.push(("ce-sequence", sequence));
        }
        if let Some(traceparent) = &self.traceparent {
            headers.push(("ce-traceparent", traceparent));
        }
        if let Some(tracestate) = &self.tracestate {
            headers.push(("ce-tracestate", tracestate));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_are_consistent() {
        for entry in CATALOG {
            assert!(
                entry.type_name.ends_with(&format!(".v{}", entry.major)),
                "{}",
                entry.type_name
            );
            assert!(entry.type_name.starts_with("com.credenco.businesswallet."));
            let schema = entry.schema("https://wallet.example");
            assert_eq!(schema["$id"], entry.schema_url("https://wallet.example"));
            assert_eq!(schema["title"], entry.type_name);
            assert_eq!(lookup(entry.type_name).unwrap().slug, entry.slug);
            assert_eq!(
                lookup_schema(entry.slug, entry.major).unwrap().type_name,
                entry.type_name
            );
        }
        assert!(lookup("com.credenco.businesswallet.wallet.deleted.v1").is_none());
    }

    fn row(traceparent: Option<&str>, tracestate: Option<&str>) -> EventRow {
        EventRow {
            event_id: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d".into(),
            event_type: WALLET_CREATED_V1.type_name.into(),
            source: SOURCE.into(),
            subject: "wallets/3f2504e0-4f89-41d3-9a0c-0305e82c3301".into(),
            wallet_external_key: WalletKey::parse("3f2504e0-4f89-41d3-9a0c-0305e82c3301").unwrap(),
            time: 0,
            dataschema: WALLET_CREATED_V1.schema_url("http://x"),
            correlation_id: "c-1".into(),
            traceparent: traceparent.map(str::to_string),
            tracestate: tracestate.map(str::to_string),
            sequence: None,
            data: "{}".into(),
        }
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// The structured envelope (what the Kafka and JMS channels send, `serde_json` of the
    /// envelope) carries the trace context as top-level attributes, and survives its JSON form.
    #[test]
    fn the_structured_envelope_carries_the_trace_context() {
        let envelope = CloudEvent::from_row(&row(Some(TRACEPARENT), Some("congo=t61rcWkgMzE"))).unwrap();
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["traceparent"], TRACEPARENT);
        assert_eq!(json["tracestate"], "congo=t61rcWkgMzE");
        assert_eq!(json["correlationid"], "c-1");
        assert_eq!(serde_json::from_value::<CloudEvent>(json).unwrap(), envelope);
        let headers = envelope.binary_mode_headers();
        assert!(headers.contains(&("ce-traceparent", TRACEPARENT)), "{headers:?}");
        assert!(headers.contains(&("ce-tracestate", "congo=t61rcWkgMzE")), "{headers:?}");
        // The bare attributes are the binary-mode headers without their `ce-`.
        let bare: Vec<String> = envelope
            .attributes()
            .iter()
            .map(|(n, v)| format!("ce-{n}={v}"))
            .collect();
        let prefixed: Vec<String> = headers.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(bare, prefixed);
    }

    /// An event stored before trace context was recorded (or with a stored value that is not
    /// valid) is sent as before: no attribute, no header; and an envelope without them reads.
    #[test]
    fn an_untraced_event_has_neither_attribute_nor_header() {
        for stored in [row(None, None), row(None, Some("a=b")), row(Some("garbage"), None)] {
            let envelope = CloudEvent::from_row(&stored).unwrap();
            let json = serde_json::to_value(&envelope).unwrap();
            assert!(
                json.get("traceparent").is_none() && json.get("tracestate").is_none(),
                "{json}"
            );
            assert_eq!(envelope.binary_mode_headers().len(), 10);
            assert_eq!(serde_json::from_value::<CloudEvent>(json).unwrap(), envelope);
        }
        let traced = CloudEvent::from_row(&row(Some(TRACEPARENT), None)).unwrap();
        assert_eq!(
            traced.binary_mode_headers().last(),
            Some(&("ce-traceparent", TRACEPARENT))
        );
        assert!(serde_json::to_value(&traced).unwrap().get("tracestate").is_none());
    }

    #[test]
    fn subjects_follow_the_pattern() {
        assert_eq!(
            IDENTIFIER_CREATED_V1.subject(&[("walletExternalKey", "w"), ("identifierExternalKey", "i")]),
            "wallets/w/identifiers/i"
        );
        let sample = WALLET_CREATED_V1.sample_envelope("http://x");
        assert_eq!(sample.subject, "wallets/3f2504e0-4f89-41d3-9a0c-0305e82c3301");
        assert_eq!(
            sample.dataschema,
            "http://x/api/public/schemas/integration/wallet-created/v1.json"
        );
    }
}
