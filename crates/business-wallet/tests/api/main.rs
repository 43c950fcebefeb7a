//! API integration tests: the real application over real SQLite and PostgreSQL databases.
//! Every test runs on both backends.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod asyncapi;
mod channels;
mod deliveries;
mod erasure;
mod identifiers;
mod limits;
mod logs;
mod openapi;
mod operations;
mod outbox;
mod permissions;
mod public;
mod pull;
mod robustness;
mod trace;
mod validation;

mod wallets;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Fetches the served schema for an event's `dataschema` and validates `data` against it.
pub async fn assert_valid_against_served_schema(app: &common::TestApp, dataschema: &str, data: &Value) {
    let path = dataschema
        .strip_prefix(&app.address)
        .unwrap_or_else(|| panic!("dataschema {dataschema} is not served by this instance"));
    let response = app.get(path, None).await;
    assert_eq!(response.status(), 200, "schema {path} is served without authentication");
    let schema: Value = response.json().await.unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the served schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(data)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "data {data} does not validate against {path}: {errors:?}"
    );
}

/// The stored events of a wallet as CloudEvent JSON envelopes.
pub async fn events_of(app: &common::TestApp, wallet: &str) -> Vec<Value> {
    business_wallet::store::events::list_for_wallet(
        &app.state.db,
        &business_wallet::domain::WalletKey::parse(wallet).unwrap(),
    )
    .await
    .unwrap()
    .iter()
    .map(|row| serde_json::to_value(business_wallet::events::CloudEvent::from_row(row).unwrap()).unwrap())
    .collect()
}

/// Checks every envelope attribute and extension of an emitted event.
pub fn assert_envelope(event: &Value, event_type: &str, subject: &str, wallet: &str) {
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], event_type);
    assert_eq!(event["source"], "/credenco/wallets");
    assert!(
        uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok(),
        "id is a UUID"
    );
    let time = event["time"].as_str().unwrap();
    assert!(
        chrono_like_rfc3339_ms(time),
        "time {time} is RFC 3339 UTC with milliseconds"
    );
    assert_eq!(event["subject"], subject);
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["walletexternalkey"], wallet);
    assert!(!event["correlationid"].as_str().unwrap().is_empty());
    let slug = if event_type.contains(".wallet.") {
        "wallet-created"
    } else {
        "identifier-created"
    };
    assert!(
        event["dataschema"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/public/schemas/integration/{slug}/v1.json")),
        "dataschema {}",
        event["dataschema"]
    );
}

fn chrono_like_rfc3339_ms(time: &str) -> bool {
    // 2026-05-01T09:42:17.812Z
    time.len() == 24
        && time.ends_with('Z')
        && time.as_bytes()[10] == b'T'
        && time.as_bytes()[19] == b'.'
        && time[..4].parse::<u32>().is_ok()
}

/// A webhook receiver on 127.0.0.1 that records what it gets and answers the status it is
/// set to (which a test may change).
pub struct Receiver {
    /// Where it listens.
    pub url: String,
    /// Headers and body of each request, in order.
    pub seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    /// The status it answers.
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Starts a [`Receiver`] answering `status`.
pub async fn receiver(status: u16) -> Receiver {
    let seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let answer = Arc::new(AtomicU16::new(status));
    let (record, current) = (seen.clone(), answer.clone());
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (record, current) = (record.clone(), current.clone());
            async move {
                record.lock().unwrap().push((headers, body));
                axum::http::StatusCode::from_u16(current.load(Ordering::SeqCst)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Receiver {
        url: format!("http://{address}/hook"),
        seen,
        status: answer,
    }
}
