//! The deliveries log: filters, pagination, detail with attempts, replay, dismiss, bulk replay
//! and their audit entries, driven with the dispatcher's single step (no sleeping).

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{spawn_app_with, Backend, TestApp};
use crate::receiver;

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

async fn call(app: &TestApp, method: reqwest::Method, path: &str) -> (u16, Value) {
    app.call(method, path, None).await
}

async fn run_dispatcher(app: &TestApp) {
    business_wallet::dispatch::Dispatcher::new(&app.state)
        .run_once()
        .await
        .unwrap();
}

async fn log_replay_and_dismiss(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(404).await;
    let wallet = app.create_wallet("Deliveries").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let channel_body = json!({
        "name": "erp", "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED],
        "webhook": {"url": hook.url, "apiKey": {"headerName": "X-Api-Key", "value": "api-key-value-123"}}
    });
    let response = app
        .post(
            &format!("/api/wallets/{w}/integration-channels"),
            Some(&app.admin_token),
            &channel_body,
        )
        .await;
    assert_eq!(response.status(), 201);
    let channel: Value = response.json().await.unwrap();
    let channel_key = channel["channelExternalKey"].as_str().unwrap().to_string();
    for name in ["one", "two", "three"] {
        let response = app
            .post(
                &format!("/api/v1/wallets/{w}/identifiers"),
                Some(&app.admin_token),
                &json!({"identifierType": "JWK", "displayName": name}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    let log = format!("/api/wallets/{w}/integration-deliveries");

    let (status, page) = call(&app, reqwest::Method::GET, &log).await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items
        .iter()
        .all(|d| d["state"] == "PENDING" && d["attempts"] == 0 && d["maxAttempts"] == 15));
    assert_eq!(items[0]["channelExternalKey"], channel_key.as_str());
    assert_eq!(items[0]["eventType"], IDENTIFIER_CREATED);
    assert!(page["nextCursor"].is_null());

    // The receiver answers 404: every delivery FAILS after one attempt.
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 3);
    let (_, page) = call(&app, reqwest::Method::GET, &format!("{log}?state=FAILED")).await;
    let failed: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deliveryExternalKey"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["attempts"] == 1 && d["lastStatus"] == 404));

    // The detail shows the request (secrets redacted), the response and the timing.
    let (status, detail) = call(&app, reqwest::Method::GET, &format!("{log}/{}", failed[0])).await;
    assert_eq!(status, 200);
    assert_eq!(detail["state"], "FAILED");
    assert_eq!(detail["event"]["type"], IDENTIFIER_CREATED);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["response"]["status"], 404);
    assert!(attempts[0]["durationMs"].is_number());
    assert!(
        attempts[0]["request"].to_string().contains("ce-id"),
        "{}",
        attempts[0]["request"]
    );
    assert!(
        !detail.to_string().contains("api-key-value-123"),
        "secrets are redacted: {detail}"
    );
    let event_id = detail["event"]["id"].as_str().unwrap().to_string();

    // Replay only from FAILED; the replayed delivery keeps its ce-id.
    let (status, replayed) = call(&app, reqwest::Method::POST, &format!("{log}/{}/replay", failed[0])).await;
    assert_eq!(status, 200);
    assert_eq!(
        (replayed["state"].as_str(), replayed["attempts"].as_i64()),
        (Some("PENDING"), Some(0))
    );
    assert_eq!(
        call(&app, reqwest::Method::POST, &format!("{log}/{}/replay", failed[0]))
            .await
            .0,
        409
    );
    assert_eq!(
        call(&app, reqwest::Method::POST, &format!("{log}/{}/dismiss", failed[0]))
            .await
            .0,
        409
    );
    hook.status.store(200, std::sync::atomic::Ordering::SeqCst);
    run_dispatcher(&app).await;
    let (_, detail) = call(&app, reqwest::Method::GET, &format!("{log}/{}", failed[0])).await;
    assert_eq!(detail["state"], "DELIVERED");
    let ids: Vec<String> = hook
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h["ce-id"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.iter().filter(|id| **id == event_id).count(),
        2,
        "the replay carries the same ce-id"
    );

    // Dismiss another; the default filter now shows only the remaining FAILED one.
    let (status, dismissed) = call(&app, reqwest::Method::POST, &format!("{log}/{}/dismiss", failed[1])).await;
    assert_eq!(status, 200);
    assert_eq!(dismissed["state"], "DISMISSED");
    assert_eq!(
        call(&app, reqwest::Method::POST, &format!("{log}/{}/replay", failed[1]))
            .await
            .0,
        409
    );
    let (_, page) = call(&app, reqwest::Method::GET, &log).await;
    let active: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deliveryExternalKey"].as_str().unwrap())
        .collect();
    assert_eq!(active, [failed[2].as_str()]);
    let (_, page) = call(&app, reqwest::Method::GET, &format!("{log}?state=DELIVERED,DISMISSED")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);

    // Cursor pagination over every state, newest first.
    let mut seen = Vec::new();
    let mut path = format!("{log}?state=all&limit=1");
    loop {
        let (status, page) = call(&app, reqwest::Method::GET, &path).await;
        assert_eq!(status, 200);
        assert!(page["items"].as_array().unwrap().len() <= 1);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["deliveryExternalKey"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("{log}?state=all&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, failed, "the same newest-first order as the FAILED listing");

    // Filters by channel, event type and time.
    let (_, page) = call(
        &app,
        reqwest::Method::GET,
        &format!("{log}?state=all&channel={channel_key}&eventType={IDENTIFIER_CREATED}"),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (_, page) = call(
        &app,
        reqwest::Method::GET,
        &format!("{log}?state=all&from=2999-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        call(&app, reqwest::Method::GET, &format!("{log}?state=LOST")).await.0,
        400
    );
    assert_eq!(
        call(&app, reqwest::Method::GET, &format!("{log}?colour=red")).await.0,
        400
    );
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            &format!("{log}/6f1c2d3e-0000-4000-8000-000000000000")
        )
        .await
        .0,
        404
    );

    // Bulk replay of the FAILED ones matching a filter.
    let (status, bulk) = call(
        &app,
        reqwest::Method::POST,
        &format!("{log}/replay?channel={channel_key}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bulk["replayed"], 1);
    run_dispatcher(&app).await;
    let (_, page) = call(&app, reqwest::Method::GET, &log).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "nothing needs attention any more"
    );

    // Each manual transition is in the audit log.
    let (_, history) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/wallets/{w}/history?event=INTEGRATION"),
    )
    .await;
    let actions: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "DELIVERIES_REPLAYED",
            "DELIVERY_DISMISSED",
            "DELIVERY_REPLAYED",
            "CHANNEL_CREATED"
        ]
    );

    // Platform deliveries are not in the wallet's log, and the other way round.
    let (_, platform) = call(&app, reqwest::Method::GET, "/api/integration-deliveries?state=all").await;
    assert_eq!(platform["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        call(
            &app,
            reqwest::Method::GET,
            &format!("/api/integration-deliveries/{}", failed[0])
        )
        .await
        .0,
        404
    );
}

async fn the_log_lists_replays_and_dismisses(app: TestApp) {
    log_replay_and_dismiss(app.backend).await;
}

both_backends!(the_log_lists_replays_and_dismisses);

/// Creates a webhook channel named `name` of the wallet `w` pointing at `url`; its key.
async fn webhook_channel(app: &TestApp, w: &str, name: &str, url: &str) -> String {
    let response = app
        .post(
            &format!("/api/wallets/{w}/integration-channels"),
            Some(&app.admin_token),
            &json!({"name": name, "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED], "webhook": {"url": url}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let channel: Value = response.json().await.unwrap();
    channel["channelExternalKey"].as_str().unwrap().to_string()
}

/// The states of a wallet's deliveries per channel key, every state listed.
async fn states_by_channel(app: &TestApp, w: &str) -> Vec<(String, String)> {
    let (_, page) = call(
        app,
        reqwest::Method::GET,
        &format!("/api/wallets/{w}/integration-deliveries?state=all"),
    )
    .await;
    let mut states: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["channelExternalKey"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    states.sort();
    states
}

async fn bulk_dismiss(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(404).await;
    let w = app.create_wallet("Dismiss").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let other = app.create_wallet("Untouched").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let a = webhook_channel(&app, &w, "a", &hook.url).await;
    let b = webhook_channel(&app, &w, "b", &hook.url).await;
    let c = webhook_channel(&app, &other, "c", &hook.url).await;
    for (wallet, name) in [(&w, "one"), (&w, "two"), (&other, "three")] {
        let response = app
            .post(
                &format!("/api/v1/wallets/{wallet}/identifiers"),
                Some(&app.admin_token),
                &json!({"identifierType": "JWK", "displayName": name}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    // The receiver answers 404: all five deliveries FAIL.
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 5);
    let log = format!("/api/wallets/{w}/integration-deliveries");

    // Only a token that may change deliveries dismisses, and a bad filter is a 400.
    let reader = app.token("reader", &["WALLET_INTEGRATION_DELIVERY_READ"], Some(&w));
    let refused = app
        .client
        .post(app.url(&format!("{log}/dismiss")))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, error) = call(&app, reqwest::Method::POST, &format!("{log}/dismiss?channel=erp")).await;
    assert_eq!(
        (status, &error["details"]["field"]),
        (400, &json!("channel")),
        "{error}"
    );

    // By channel: only channel a's FAILED deliveries, in this wallet only.
    let (status, bulk) = call(&app, reqwest::Method::POST, &format!("{log}/dismiss?channel={a}")).await;
    assert_eq!(status, 200, "{bulk}");
    assert_eq!(bulk, json!({"dismissed": 2}));
    let mut expected = vec![
        (a.clone(), "DISMISSED".to_string()),
        (a.clone(), "DISMISSED".to_string()),
        (b.clone(), "FAILED".to_string()),
        (b.clone(), "FAILED".to_string()),
    ];
    expected.sort();
    assert_eq!(states_by_channel(&app, &w).await, expected);
    assert_eq!(
        states_by_channel(&app, &other).await,
        [(c.clone(), "FAILED".to_string())]
    );

    // Without a filter: the rest of the wallet's FAILED ones; then nothing is left to dismiss.
    let (_, bulk) = call(&app, reqwest::Method::POST, &format!("{log}/dismiss")).await;
    assert_eq!(bulk, json!({"dismissed": 2}));
    let (_, bulk) = call(&app, reqwest::Method::POST, &format!("{log}/dismiss")).await;
    assert_eq!(bulk, json!({"dismissed": 0}));
    assert!(states_by_channel(&app, &w).await.iter().all(|(_, s)| s == "DISMISSED"));
    assert_eq!(states_by_channel(&app, &other).await, [(c, "FAILED".to_string())]);
    // Dismissed deliveries are never attempted again.
    run_dispatcher(&app).await;
    assert_eq!(hook.count(), 5);

    // Each bulk dismiss that changed something is one audit entry with its count and filter.
    let (_, history) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/wallets/{w}/history?event=INTEGRATION"),
    )
    .await;
    let dismissals: Vec<&Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "DELIVERIES_DISMISSED")
        .collect();
    assert_eq!(dismissals.len(), 2, "{history}");
    assert_eq!(dismissals[0]["details"]["count"], 2);
    assert!(dismissals[0]["details"]["channelExternalKey"].is_null());
    assert_eq!(dismissals[1]["details"]["channelExternalKey"], a.as_str());
    assert_eq!(dismissals[1]["actor"], "admin");

    // The platform route dismisses platform deliveries only: there are none here.
    let (status, bulk) = call(&app, reqwest::Method::POST, "/api/integration-deliveries/dismiss").await;
    assert_eq!((status, bulk), (200, json!({"dismissed": 0})));
}

async fn bulk_dismiss_takes_only_the_matching_failed_deliveries(app: TestApp) {
    bulk_dismiss(app.backend).await;
}

both_backends!(bulk_dismiss_takes_only_the_matching_failed_deliveries);

async fn platform_wallet_filter(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(404).await;
    let response = app
        .post(
            "/api/integration-channels",
            Some(&app.admin_token),
            &json!({"name": "platform", "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED], "webhook": {"url": hook.url}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mut wallets = Vec::new();
    for name in ["North", "South"] {
        let w = app.create_wallet(name).await["walletExternalKey"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..(wallets.len() + 1) {
            let response = app
                .post(
                    &format!("/api/v1/wallets/{w}/identifiers"),
                    Some(&app.admin_token),
                    &json!({"identifierType": "JWK", "displayName": "key"}),
                )
                .await;
            assert_eq!(response.status(), 201);
        }
        wallets.push(w);
    }
    // North has one delivery on the platform channel, South two; all FAIL (404).
    run_dispatcher(&app).await;
    let wallets_listed = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["walletExternalKey"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, all) = call(&app, reqwest::Method::GET, "/api/integration-deliveries").await;
    assert_eq!((status, wallets_listed(&all).len()), (200, 3), "{all}");
    let (_, south) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/integration-deliveries?wallet={}", wallets[1]),
    )
    .await;
    assert_eq!(wallets_listed(&south), [wallets[1].clone(), wallets[1].clone()]);
    let (status, error) = call(&app, reqwest::Method::GET, "/api/integration-deliveries?wallet=north").await;
    assert_eq!((status, &error["details"]["field"]), (400, &json!("wallet")), "{error}");

    // A bulk dismissal by wallet takes that wallet's FAILED deliveries only, and says so in
    // its audit entry.
    let (status, bulk) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/integration-deliveries/dismiss?wallet={}", wallets[0]),
    )
    .await;
    assert_eq!((status, bulk), (200, json!({"dismissed": 1})));
    let (_, failed) = call(&app, reqwest::Method::GET, "/api/integration-deliveries?state=FAILED").await;
    assert_eq!(wallets_listed(&failed), [wallets[1].clone(), wallets[1].clone()]);
    let (status, history) = call(&app, reqwest::Method::GET, "/api/v1/history").await;
    assert_eq!(status, 200, "{history}");
    let entry = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "DELIVERIES_DISMISSED")
        .unwrap_or_else(|| panic!("an audit entry of the dismissal: {history}"));
    assert_eq!(entry["details"]["walletExternalKey"], wallets[0].as_str(), "{history}");
    assert_eq!(entry["details"]["count"], 1);
}

async fn the_platform_log_filters_by_the_events_wallet(app: TestApp) {
    platform_wallet_filter(app.backend).await;
}

both_backends!(the_platform_log_filters_by_the_events_wallet);
