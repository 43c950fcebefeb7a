use serde_json::json;

use crate::common::TestApp;
use crate::{assert_envelope, assert_valid_against_served_schema, both_backends, events_of};

async fn create_and_read_a_wallet(app: TestApp) {
    let body = json!({
        "displayName": "Acme Logistics B.V.",
        "email": "ops@acme.example",
        "website": "https://acme.example",
        "phoneNumber": "+31 20 555 0100",
        "address": {"street": "Kade 1", "postalCode": "1011 AB", "city": "Amsterdam", "country": "NL"}
    });
    let response = app.post("/api/v1/wallets", Some(&app.admin_token), &body).await;
    assert_eq!(response.status(), 201);
    let wallet: serde_json::Value = response.json().await.unwrap();
    let key = wallet["walletExternalKey"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(key).is_ok());
    assert_eq!(wallet["displayName"], "Acme Logistics B.V.");
    assert_eq!(wallet["address"]["city"], "Amsterdam");
    assert_eq!(wallet["createdBy"], "admin");

    let read = app.get(&format!("/api/v1/wallets/{key}"), Some(&app.admin_token)).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<serde_json::Value>().await.unwrap(), wallet);
}

async fn a_created_wallet_has_exactly_one_valid_event(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("X-Correlation-Id", "corr-wallet-123")
        .json(&json!({"displayName": "Minimal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], "corr-wallet-123");
    let wallet: serde_json::Value = response.json().await.unwrap();
    let key = wallet["walletExternalKey"].as_str().unwrap();

    let events = events_of(&app, key).await;
    assert_eq!(events.len(), 1, "exactly one event");
    let event = &events[0];
    assert_envelope(
        event,
        "com.credenco.businesswallet.wallet.created.v1",
        &format!("wallets/{key}"),
        key,
    );
    assert_eq!(event["correlationid"], "corr-wallet-123");
    assert_eq!(event["data"], wallet, "the data is the wallet as the API returned it");
    assert!(event["data"]["email"].is_null());
    assert_valid_against_served_schema(&app, event["dataschema"].as_str().unwrap(), &event["data"]).await;
}

async fn requests_without_correlation_id_get_a_fresh_one(app: TestApp) {
    let first = app.create_wallet("One").await;
    let second = app.create_wallet("Two").await;
    let a = &events_of(&app, first["walletExternalKey"].as_str().unwrap()).await[0];
    let b = &events_of(&app, second["walletExternalKey"].as_str().unwrap()).await[0];
    assert!(uuid::Uuid::parse_str(a["correlationid"].as_str().unwrap()).is_ok());
    assert_ne!(a["correlationid"], b["correlationid"]);
}

both_backends!(
    create_and_read_a_wallet,
    a_created_wallet_has_exactly_one_valid_event,
    requests_without_correlation_id_get_a_fresh_one
);
