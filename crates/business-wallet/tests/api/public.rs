//! Unauthenticated routes: the catalog, the schemas, health, and the OpenAPI description.

use serde_json::Value;

use crate::both_backends;
use crate::common::TestApp;

async fn catalog_and_schemas_are_public(app: TestApp) {
    let response = app.get("/api/public/event-types", None).await;
    assert_eq!(response.status(), 200);
    let types: Vec<Value> = response.json().await.unwrap();
    let names: Vec<&str> = types.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "com.credenco.businesswallet.wallet.created.v1",
            "com.credenco.businesswallet.identifier.created.v1",
            "com.credenco.businesswallet.integration-channel.state-changed.v1"
        ]
    );
    for entry in &types {
        // Each sample validates against the schema served at its dataschema URL.
        crate::assert_valid_against_served_schema(&app, entry["dataschema"].as_str().unwrap(), &entry["sample"]).await;
    }
    let response = app
        .get("/api/public/schemas/integration/wallet-created/v1.json", None)
        .await;
    assert_eq!(response.headers()["content-type"], "application/schema+json");
    assert_eq!(
        app.get("/api/public/schemas/integration/wallet-created/v9.json", None)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get("/api/public/schemas/integration/nothing/v1.json", None)
            .await
            .status(),
        404
    );
}

async fn health_and_openapi(app: TestApp) {
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["database"], "UP");

    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/wallets",
        "/api/v1/wallets/{walletExternalKey}",
        "/api/v1/wallets/{walletExternalKey}/identifiers",
        "/api/v1/wallets/{walletExternalKey}/identifiers/{identifierExternalKey}",
        "/api/public/event-types",
        "/health/ready",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is described");
    }
    assert!(doc["paths"]["/api/v1/wallets"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["CreateIdentifier"].is_object());
}

both_backends!(catalog_and_schemas_are_public, health_and_openapi);
