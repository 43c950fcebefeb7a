//! Erasure of a wallet's integration data on request: the event data and the stored requests
//! and responses are gone from every text column of the outbox tables, the rows, their states
//! and the audit trail stay, the deliveries still to go out are dismissed, another wallet's
//! data is untouched, and the log, the detail and the retention job work on what remains.
//! Driven with the dispatcher's single step against a real receiver.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::receiver;
use crate::{both_backend_kinds, both_backends};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";
const TABLES: [&str; 3] = [
    "integration_event",
    "integration_delivery",
    "integration_delivery_attempt",
];

async fn run_dispatcher(app: &TestApp) {
    business_wallet::dispatch::Dispatcher::new(&app.state)
        .run_once()
        .await
        .unwrap();
}

/// The names of a table's text columns, read from the database's own catalog.
async fn text_columns(app: &TestApp, table: &str) -> Vec<String> {
    let sql = match app.backend {
        Backend::Postgres => format!(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' AND data_type = 'text'"
        ),
        Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') WHERE upper(type) = 'TEXT'"),
    };
    let columns: Vec<String> = app.texts(&sql).await.into_iter().flatten().collect();
    assert!(!columns.is_empty(), "{table} has text columns");
    columns
}

/// Where `needle` occurs in a text column of the outbox tables, as `table.column` (once per
/// row).
async fn occurrences(app: &TestApp, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for table in TABLES {
        for column in text_columns(app, table).await {
            let n = app
                .count(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%{needle}%'"
                ))
                .await;
            found.extend(std::iter::repeat_n(format!("{table}.{column}"), n as usize));
        }
    }
    found
}

async fn created(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn create_channel(app: &TestApp, path: &str, url: &str, types: &[&str]) -> String {
    let body = json!({
        "name": format!("erp {}", uuid::Uuid::new_v4()), "type": "WEBHOOK", "eventTypeFilters": types,
        "webhook": {"url": url}
    });
    created(app.post(path, Some(&app.admin_token), &body).await).await["channelExternalKey"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create_identifier(app: &TestApp, wallet: &str, name: &str) {
    let body = json!({"identifierType": "JWK", "displayName": name});
    created(
        app.post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &body,
        )
        .await,
    )
    .await;
}

async fn erasure_removes_the_payloads_and_keeps_the_trail(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(200).await;
    create_channel(&app, "/api/integration-channels", &hook.url, &[WALLET_CREATED]).await;

    // Identifying values of the wallet to erase and of a bystander.
    let erased_names = [
        "Erasure Wallet Zq81",
        "Jane Erasable 7731",
        "Distinctive Marker Qx93",
        "Third Name Rw55",
        "Fourth Name Tp20",
    ];
    let kept_names = ["Bystander Wallet Kf62", "Bystander Identifier Lm44"];
    let a = app.create_wallet(erased_names[0]).await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.create_wallet(kept_names[0]).await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let a_channels = format!("/api/wallets/{a}/integration-channels");
    create_channel(&app, &a_channels, &hook.url, &[IDENTIFIER_CREATED]).await;
    let b_channels = format!("/api/wallets/{b}/integration-channels");
    create_channel(&app, &b_channels, &hook.url, &[IDENTIFIER_CREATED]).await;

    // Delivered: both wallets' wallet.created (platform) and identifier.created (own channels).
    create_identifier(&app, &a, erased_names[1]).await;
    create_identifier(&app, &b, kept_names[1]).await;
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 4);
    // FAILED (404), PENDING after a retryable attempt (503), PENDING never tried.
    hook.status.store(404, Ordering::SeqCst);
    create_identifier(&app, &a, erased_names[2]).await;
    run_dispatcher(&app).await;
    hook.status.store(503, Ordering::SeqCst);
    create_identifier(&app, &a, erased_names[3]).await;
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 6);
    create_identifier(&app, &a, erased_names[4]).await;

    let log = format!("/api/wallets/{a}/integration-deliveries");
    let (_, page) = app.call(reqwest::Method::GET, &format!("{log}?state=all"), None).await;
    let before: Vec<(String, String, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deliveryExternalKey"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    let states: Vec<(&str, i64)> = before.iter().map(|(_, s, n)| (s.as_str(), *n)).collect();
    assert_eq!(
        states,
        [("PENDING", 0), ("PENDING", 1), ("FAILED", 1), ("DELIVERED", 1)],
        "newest first"
    );
    let delivered = before[3].0.clone();
    let (_, platform) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries?state=all&wallet={a}"),
            None,
        )
        .await;
    let platform_delivery = platform["items"][0]["deliveryExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    // The search does find them before the erasure: in the event data and the stored requests.
    for name in erased_names.iter().chain(&kept_names) {
        let found = occurrences(&app, name).await;
        assert!(
            found.contains(&"integration_event.data".to_string()),
            "{name}: {found:?}"
        );
    }
    let sent = occurrences(&app, erased_names[1]).await;
    assert!(
        sent.contains(&"integration_delivery_attempt.request".to_string()),
        "{sent:?}"
    );
    let attempts_before = app.count("SELECT COUNT(*) FROM integration_delivery_attempt").await;
    let deliveries_before = app.count("SELECT COUNT(*) FROM integration_delivery").await;
    let events_before = app.count("SELECT COUNT(*) FROM integration_event").await;

    let erase = format!("/api/wallets/{a}/integration-data/erase");
    let (status, answer) = app.call(reqwest::Method::POST, &erase, None).await;
    assert_eq!(status, 200, "{answer}");
    // Five events (wallet.created and four identifiers); the attempts of the platform delivery
    // and of the DELIVERED, FAILED and retried deliveries; the FAILED and both PENDING dismissed.
    assert_eq!(answer, json!({"events": 5, "attempts": 4, "dismissed": 3}));

    for name in erased_names {
        let found = occurrences(&app, name).await;
        assert!(found.is_empty(), "{name} is still stored in {found:?}");
    }
    for name in kept_names {
        let found = occurrences(&app, name).await;
        assert!(
            found.contains(&"integration_event.data".to_string()),
            "{name}: {found:?}"
        );
    }
    assert!(
        occurrences(&app, kept_names[1])
            .await
            .contains(&"integration_delivery_attempt.request".to_string()),
        "the bystander's stored request is untouched"
    );
    let a_attempts = format!(
        "SELECT COUNT(*) FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id \
         JOIN integration_event e ON e.id = d.event_id WHERE e.wallet_external_key = '{a}'"
    );
    assert_eq!(
        app.count(&format!(
            "{a_attempts} AND (a.request IS NOT NULL OR a.response_headers IS NOT NULL OR a.response_body IS NOT NULL)"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!("{a_attempts} AND a.response_status IS NOT NULL"))
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery_attempt").await,
        attempts_before,
        "the attempt rows stay"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery").await,
        deliveries_before
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, events_before);

    // The log keeps every delivery with its key, attempts and times; the ones that could still
    // have gone out are DISMISSED, and each says its data was erased.
    let (status, page) = app.call(reqwest::Method::GET, &format!("{log}?state=all"), None).await;
    assert_eq!(status, 200);
    let after: Vec<(String, String, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["dataErasedAt"].is_string(), "{d}");
            (
                d["deliveryExternalKey"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, i64)> = before
        .iter()
        .map(|(key, state, n)| {
            let state = if state == "DELIVERED" {
                state.clone()
            } else {
                "DISMISSED".into()
            };
            (key.clone(), state, *n)
        })
        .collect();
    assert_eq!(after, expected);
    assert_eq!(page["items"][2]["lastStatus"], 404, "the last status stays");

    // The detail answers, with the envelope's ids and no data, and attempts without contents.
    let (status, detail) = app
        .call(reqwest::Method::GET, &format!("{log}/{delivered}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["state"], "DELIVERED");
    assert_eq!(detail["event"]["type"], IDENTIFIER_CREATED);
    assert!(detail["event"]["id"].is_string());
    assert_eq!(detail["event"]["walletexternalkey"], a.as_str());
    assert!(detail["event"]["data"].is_null(), "{detail}");
    assert!(detail["dataErasedAt"].is_string());
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["outcome"], "DELIVERED");
    assert!(attempt["request"].is_null(), "{attempt}");
    assert_eq!(attempt["response"]["status"], 200);
    assert!(attempt["response"]["body"].is_null(), "{attempt}");
    assert_eq!(
        attempt["response"]["headers"],
        json!([]),
        "no headers left, as the schema's list"
    );
    let (status, detail) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries/{platform_delivery}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail["event"]["data"].is_null() && detail["dataErasedAt"].is_string());
    // A dismissed delivery cannot be replayed into sending the erased payload.
    let (status, _) = app
        .call(reqwest::Method::POST, &format!("{log}/{}/replay", before[2].0), None)
        .await;
    assert_eq!(status, 409);
    // The bystander's deliveries are not marked.
    let (_, page) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{b}/integration-deliveries?state=all"),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["state"], "DELIVERED");
    assert!(page["items"][0]["dataErasedAt"].is_null());

    // Nothing of the erased wallet goes out any more.
    hook.status.store(200, Ordering::SeqCst);
    app.make_deliveries_due().await;
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 6);

    // The audit trail: the channel's creation and the erasure with its counts.
    let (status, history) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/wallets/{a}/history?event=INTEGRATION"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = history["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "INTEGRATION_DATA_ERASED");
    assert_eq!(items[0]["details"], json!({"events": 5, "attempts": 4, "dismissed": 3}));
    assert!(items.iter().any(|e| e["action"] == "CHANNEL_CREATED"));

    // Asked again, it changes nothing and says so (and is recorded again).
    let (status, again) = app.call(reqwest::Method::POST, &erase, None).await;
    assert_eq!(status, 200);
    assert_eq!(again, json!({"events": 0, "attempts": 0, "dismissed": 0}));

    // Events published afterwards carry their data as usual.
    create_identifier(&app, &a, "After Erasure Vb17").await;
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 7);
    assert!(hook.seen.lock().unwrap()[6].1.contains("After Erasure Vb17"));

    // The retention job works on what remains: DELIVERED rows go, DISMISSED ones stay.
    let settings = app.settings.integration.retention.clone();
    let later = business_wallet::store::now_ms() + 400 * 24 * 3600 * 1000;
    let purged = business_wallet::dispatch::retention::run_once(&app.state.db, &settings, later)
        .await
        .unwrap();
    // A's platform and identifier deliveries, B's two, and the one sent after the erasure.
    assert_eq!((purged.delivered, purged.failed), (5, 0));
    assert_eq!(purged.events, 5, "the events no delivery refers to any more");
    for (key, _, _) in &before[..3] {
        let (status, detail) = app.call(reqwest::Method::GET, &format!("{log}/{key}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(detail["state"], "DISMISSED");
        assert!(detail["event"]["data"].is_null());
    }
}

both_backend_kinds!(erasure_removes_the_payloads_and_keeps_the_trail);

async fn erasure_needs_the_global_authority(app: TestApp) {
    let wallet = app.create_wallet("Guarded").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/wallets/{wallet}/integration-data/erase");
    let send = |token: Option<String>, path: String| {
        let app = &app;
        async move {
            let mut request = app.client.post(app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            if status >= 400 {
                assert_eq!(body["status"], status, "{body}");
                assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
            }
            (status, body)
        }
    };
    assert_eq!(send(None, path.clone()).await.0, 401);
    for authorities in [
        vec!["WALLET_INTEGRATION_DELIVERY_CRUD", "WALLET_INTEGRATION_CHANNEL_CRUD"],
        vec!["WALLET_IDENTIFIER_CRUD"],
    ] {
        let token = app.token("wallet-operator", &authorities, Some(&wallet));
        let (status, body) = send(Some(token), path.clone()).await;
        assert_eq!(status, 403, "{authorities:?}");
        assert!(
            body["message"].as_str().unwrap().contains("GLOBAL_WALLET_CRUD"),
            "{body}"
        );
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = send(
        Some(app.admin_token.clone()),
        format!("/api/wallets/{unknown}/integration-data/erase"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = send(
        Some(app.admin_token.clone()),
        "/api/wallets/not-a-key/integration-data/erase".into(),
    )
    .await;
    assert_eq!(status, 400);
    // Refused requests record nothing.
    let (_, history) = app
        .call(reqwest::Method::GET, &format!("/api/v1/wallets/{wallet}/history"), None)
        .await;
    assert!(history["items"].as_array().unwrap().is_empty(), "{history}");
    // The holder of GLOBAL_WALLET_CRUD may, on a wallet with no integration data yet.
    let (status, answer) = send(Some(app.admin_token.clone()), path).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"events": 1, "attempts": 0, "dismissed": 0}));
}

both_backends!(erasure_needs_the_global_authority);

/// A delivery in flight when the erasure runs loses its lease: it is DISMISSED, and the outcome
/// its dispatcher reports afterwards (with the request, which holds the payload) is not stored.
async fn an_attempt_in_flight_is_not_stored_after_the_erasure(app: TestApp) {
    let wallet = app.create_wallet("In Flight").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    create_channel(
        &app,
        &format!("/api/wallets/{wallet}/integration-channels"),
        "https://receiver.example/hook",
        &[IDENTIFIER_CREATED],
    )
    .await;
    let name = "In Flight Person Ws08";
    create_identifier(&app, &wallet, name).await;
    // As a dispatcher's claim leaves it: DELIVERING under a lease, the attempt counted.
    app.execute(
        "UPDATE integration_delivery SET state = 'DELIVERING', lease_token = 'lease-in-flight', \
         attempts = 1, due_at = 9000000000000",
    )
    .await;
    let id = app.count("SELECT id FROM integration_delivery").await;

    let (status, answer) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/wallets/{wallet}/integration-data/erase"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["dismissed"], 1);

    let attempt = business_wallet::store::deliveries::AttemptRow {
        attempt: 1,
        started_at: business_wallet::store::now_ms(),
        duration_ms: 5,
        outcome: business_wallet::domain::AttemptOutcome::Delivered,
        request: Some(json!({"method": "POST", "body": format!("{{\"displayName\":\"{name}\"}}")}).to_string()),
        response_status: Some(200),
        response_headers: Some("[]".into()),
        response_body: Some(name.into()),
        error: None,
    };
    let applied = business_wallet::store::deliveries::record_outcome(
        &app.state.db,
        id,
        "lease-in-flight",
        business_wallet::domain::Resolution::Delivered,
        &attempt,
    )
    .await
    .unwrap();
    assert!(!applied, "the lease was taken away");
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery_attempt").await, 0);
    assert_eq!(
        app.texts("SELECT state FROM integration_delivery").await,
        [Some("DISMISSED".to_string())]
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery WHERE lease_token IS NULL AND lease_owner IS NULL")
            .await,
        1
    );
    let found = occurrences(&app, name).await;
    assert!(found.is_empty(), "{found:?}");
}

both_backends!(an_attempt_in_flight_is_not_stored_after_the_erasure);
