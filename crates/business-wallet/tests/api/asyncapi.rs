//! The AsyncAPI description of what the channels send (`GET /api/public/asyncapi.json`), held
//! to what a webhook receiver really gets and to the envelopes a broker channel sends.

use serde_json::{json, Map, Value};

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::{both_backend_kinds, events_of, receiver};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

async fn asyncapi_document(app: &TestApp) -> Value {
    let response = app.get("/api/public/asyncapi.json", None).await;
    assert_eq!(response.status(), 200, "served without a token");
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    doc
}

/// The message of `event_type` in the channel `channel`.
fn message<'d>(doc: &'d Value, channel: &str, event_type: &str) -> &'d Value {
    doc["channels"][channel]["messages"]
        .as_object()
        .unwrap()
        .values()
        .find(|m| m["name"] == event_type)
        .unwrap_or_else(|| panic!("{channel} has a message for {event_type}"))
}

fn validate(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("{what}: the schema compiles: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {instance} is not valid: {errors:?}");
}

/// The received headers under the names the schema gives them (HTTP names ignore case).
fn named_as_in(schema: &Value, headers: &axum::http::HeaderMap) -> Value {
    let mut named = Map::new();
    for name in schema["properties"].as_object().unwrap().keys() {
        if let Some(value) = headers.get(name.as_str()) {
            named.insert(name.clone(), Value::String(value.to_str().unwrap().to_string()));
        }
    }
    Value::Object(named)
}

async fn a_webhook_receives_what_the_document_describes(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let doc = asyncapi_document(&app).await;

    // This deployment offers webhooks only, and the document says so.
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    assert_eq!(channels, ["webhook"]);
    let operation = &doc["operations"]["sendWebhook"];
    assert_eq!(operation["action"], "send");
    assert_eq!(operation["channel"]["$ref"], "#/channels/webhook");
    assert_eq!(operation["bindings"]["http"]["method"], "POST");

    // One message per catalog entry: the served schema as payload, the sample as example.
    let catalog: Vec<Value> = app.get("/api/public/event-types", None).await.json().await.unwrap();
    assert_eq!(operation["messages"].as_array().unwrap().len(), catalog.len());
    for entry in &catalog {
        let type_name = entry["type"].as_str().unwrap();
        let message = message(&doc, "webhook", type_name);
        let path = entry["dataschema"]
            .as_str()
            .unwrap()
            .strip_prefix(&app.address)
            .unwrap();
        let mut schema: Value = app.get(path, None).await.json().await.unwrap();
        schema.as_object_mut().unwrap().remove("$schema");
        schema.as_object_mut().unwrap().remove("$id");
        assert_eq!(
            message["payload"], schema,
            "{type_name}: the payload is the served schema"
        );
        assert_eq!(message["contentType"], "application/json");
        assert_eq!(message["externalDocs"]["url"], entry["dataschema"]);
        let headers = &message["headers"];
        assert_eq!(headers["properties"]["ce-type"]["const"], type_name);
        assert_eq!(headers["properties"]["ce-dataschema"]["const"], entry["dataschema"]);
        let required = headers["required"].as_array().unwrap();
        for name in ["X-Credenco-Signature", "Content-Type", "ce-id", "ce-correlationid"] {
            assert!(required.contains(&json!(name)), "{type_name}: {name} is required");
        }
        let example = &message["examples"][0];
        assert_eq!(example["payload"], entry["sample"]);
        validate(headers, &example["headers"], "the example's headers");
        // The example's signature verifies with the secret the document names.
        let signature = example["headers"]["X-Credenco-Signature"].as_str().unwrap();
        let description = headers["properties"]["X-Credenco-Signature"]["description"]
            .as_str()
            .unwrap();
        let secret = description
            .split('`')
            .find(|s| s.starts_with("whsec_") && s.len() > "whsec_".len() + 3)
            .expect("the description names the example's secret");
        let body = serde_json::to_vec(&example["payload"]).unwrap();
        let signed_at = webhook_verify::parse_header(signature).unwrap().timestamp;
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(signed_at as u64);
        webhook_verify::verify(
            signature,
            &body,
            &[secret.as_bytes()],
            webhook_verify::DEFAULT_TOLERANCE,
            now,
        )
        .expect("the example's signature verifies");
    }

    // Real deliveries of both event types: each request's headers and body are valid against
    // the message that its `ce-type` names.
    let hook = receiver(200).await;
    let channel = json!({
        "name": "everything", "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED, IDENTIFIER_CREATED],
        "webhook": {"url": hook.url},
    });
    let response = app
        .post("/api/integration-channels", Some(&app.admin_token), &channel)
        .await;
    assert_eq!(response.status(), 201);
    let wallet = app.create_wallet("AsyncAPI").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "JWK", "displayName": "Signing", "keyType": "P-256"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    business_wallet::dispatch::Dispatcher::new(&app.state)
        .run_once()
        .await
        .unwrap();
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let mut types: Vec<String> = Vec::new();
    for (headers, body) in &seen {
        let type_name = headers["ce-type"].to_str().unwrap();
        let message = message(&doc, "webhook", type_name);
        validate(
            &message["headers"],
            &named_as_in(&message["headers"], headers),
            &format!("the headers of a {type_name} request"),
        );
        validate(
            &message["payload"],
            &serde_json::from_str(body).unwrap(),
            &format!("the body of a {type_name} request"),
        );
        types.push(type_name.to_string());
    }
    types.sort();
    assert_eq!(types, [IDENTIFIER_CREATED, WALLET_CREATED]);
}

async fn broker_channels_are_described_in_structured_mode(backend: Backend) {
    // The brokers are never reached: nothing is sent to a Kafka or JMS channel here.
    let app = spawn_app_with(backend, |s| {
        s.integration.channels.kafka.enabled = true;
        s.integration.channels.kafka.bootstrap_servers = "127.0.0.1:9".into();
        s.integration.channels.jms.enabled = true;
        s.integration.channels.jms.url = "stomp://127.0.0.1:9".into();
    })
    .await;
    let doc = asyncapi_document(&app).await;
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    assert_eq!(channels, ["jms", "kafka", "webhook"]);
    assert_eq!(doc["channels"]["kafka"]["address"], "{topic}");
    assert_eq!(doc["channels"]["jms"]["address"], "{destination}");
    for name in ["sendWebhook", "sendKafka", "sendJms"] {
        assert_eq!(doc["operations"][name]["action"], "send", "{name}");
    }

    // The envelopes of real events are valid against the structured-mode payloads.
    let wallet = app.create_wallet("Brokers").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "DID", "displayName": "Key", "didType": "did:key"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let events = events_of(&app, &wallet).await;
    assert_eq!(events.len(), 2);
    for event in &events {
        let type_name = event["type"].as_str().unwrap();
        for channel in ["kafka", "jms"] {
            let message = message(&doc, channel, type_name);
            assert!(
                message["contentType"]
                    .as_str()
                    .unwrap()
                    .starts_with("application/cloudevents+json"),
                "{channel}"
            );
            validate(
                &message["payload"],
                event,
                &format!("a {type_name} envelope on {channel}"),
            );
            let example = &message["examples"][0];
            validate(&message["headers"], &example["headers"], "the example's headers");
        }
        let kafka = message(&doc, "kafka", type_name);
        assert_eq!(kafka["bindings"]["kafka"]["key"]["format"], "uuid");
        assert_eq!(
            kafka["headers"]["properties"]["content-type"]["const"],
            kafka["contentType"]
        );
        let jms = message(&doc, "jms", type_name);
        assert_eq!(jms["headers"]["properties"]["ce_type"]["const"], type_name);
    }
}

/// The per-channel options of the broker channels: Kafka's binary mode as a second message per
/// event type, and the JMS attribute properties as optional headers, named for the protocol.
async fn broker_channel_options_are_described(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.channels.kafka.enabled = true;
        s.integration.channels.kafka.bootstrap_servers = "127.0.0.1:9".into();
        s.integration.channels.jms.enabled = true;
        s.integration.channels.jms.protocol = business_wallet::config::JmsProtocol::Amqp;
        s.integration.channels.jms.url = "amqp://127.0.0.1:9".into();
    })
    .await;
    let doc = asyncapi_document(&app).await;
    for type_name in [WALLET_CREATED, IDENTIFIER_CREATED] {
        let binary = doc["channels"]["kafka"]["messages"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(id, m)| id.ends_with("-binary") && m["name"] == type_name)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("a binary Kafka message for {type_name}"));
        assert_eq!(binary["contentType"], "application/json");
        let headers = &binary["headers"];
        assert_eq!(headers["properties"]["ce_type"]["const"], type_name);
        assert!(headers["properties"]["ce_traceparent"].is_object());
        assert!(headers["properties"]["ce_partitionkey"].is_object());
        let example = &binary["examples"][0];
        validate(headers, &example["headers"], "the binary example's headers");
        validate(&binary["payload"], &example["payload"], "the binary example's data");
        let structured = message(&doc, "kafka", type_name);
        assert!(structured["payload"]["properties"]["partitionkey"].is_object());

        let jms = message(&doc, "jms", type_name);
        let required = jms["headers"]["required"].as_array().unwrap();
        for name in [
            "cloudEvents:type",
            "cloudEvents:id",
            "cloudEvents:traceparent",
            "cloudEvents:tracestate",
        ] {
            assert!(jms["headers"]["properties"][name].is_object(), "{name}");
            assert!(!required.contains(&json!(name)), "{name} is optional");
        }
    }
    let operation = doc["operations"]["sendKafka"]["messages"].as_array().unwrap();
    // Two messages (structured and binary) for each of the three event types.
    assert_eq!(operation.len(), 6);
}

/// With pull channels on, the document describes what a pull receiver fetches, and the events
/// of a real fetch are valid against it.
async fn pulled_events_are_described(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.channels.pull.enabled = true).await;
    let doc = asyncapi_document(&app).await;
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    assert_eq!(channels, ["pull", "webhook"]);
    assert_eq!(doc["operations"]["sendPull"]["bindings"]["http"]["method"], "GET");
    let (status, channel) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({"name": "pulled", "type": "PULL", "eventTypeFilters": [WALLET_CREATED], "pull": {}})),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let key = channel["channelExternalKey"].as_str().unwrap();
    app.create_wallet("Pulled").await;
    let (status, batch) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-channels/{key}/events"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let events = batch["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{batch}");
    validate(
        &message(&doc, "pull", WALLET_CREATED)["payload"],
        &events[0],
        "a fetched wallet.created event",
    );
}

both_backend_kinds!(
    a_webhook_receives_what_the_document_describes,
    broker_channels_are_described_in_structured_mode,
    broker_channel_options_are_described,
    pulled_events_are_described
);
