//! Metrics and the retention job.

use serde_json::{json, Value};

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::{both_backends, receiver};

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// A wallet with a channel to `status` and `n` identifiers, each with one delivery, attempted once.
async fn deliveries(app: &TestApp, status: u16, n: usize) -> (String, Vec<String>) {
    let hook = receiver(status).await;
    let wallet = app.create_wallet("Ops").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"name": format!("c{status}"), "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED], "webhook": {"url": hook.url}});
    assert_eq!(
        app.post(
            &format!("/api/wallets/{wallet}/integration-channels"),
            Some(&app.admin_token),
            &body
        )
        .await
        .status(),
        201
    );
    for i in 0..n {
        let id = json!({"identifierType": "JWK", "displayName": format!("k{i}")});
        app.post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &id,
        )
        .await;
    }
    business_wallet::dispatch::Dispatcher::new(&app.state)
        .run_once()
        .await
        .unwrap();
    let page: Value = app
        .get(
            &format!("/api/wallets/{wallet}/integration-deliveries?state=all"),
            Some(&app.admin_token),
        )
        .await
        .json()
        .await
        .unwrap();
    let keys = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deliveryExternalKey"].as_str().unwrap().to_string())
        .collect();
    (wallet, keys)
}

async fn metrics_report_failures_backlog_and_attempts(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let (wallet, failed) = deliveries(&app, 404, 2).await;
    deliveries(&app, 200, 1).await;
    // One more, never attempted: backlog.
    app.execute("UPDATE integration_channel SET enabled = TRUE").await;
    app.post(
        &format!("/api/v1/wallets/{wallet}/identifiers"),
        Some(&app.admin_token),
        &json!({"identifierType": "JWK", "displayName": "late"}),
    )
    .await;

    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(metric(&text, "business_wallet_deliveries_failed"), 2.0);
    assert_eq!(metric(&text, "business_wallet_delivery_backlog"), 1.0);
    assert!(metric(&text, "business_wallet_oldest_due_delivery_age_seconds") >= 0.0);
    assert!(
        text.contains(r#"business_wallet_delivery_attempts_total{channel_type="WEBHOOK",outcome="REJECTED"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"business_wallet_delivery_attempts_total{channel_type="WEBHOOK",outcome="DELIVERED"}"#),
        "{text}"
    );
    assert!(
        text.contains("business_wallet_delivery_latency_seconds_bucket"),
        "{text}"
    );
    // Every metric family says what it measures (`promtool check metrics` wants a HELP text).
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(families.contains(&"business_wallet_delivery_attempts_total"), "{text}");
    for family in families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP text:\n{text}"
        );
    }

    // A dismissed delivery no longer counts as failed.
    let path = format!("/api/wallets/{wallet}/integration-deliveries/{}/dismiss", failed[0]);
    assert_eq!(
        app.client
            .post(app.url(&path))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(metric(&text, "business_wallet_deliveries_failed"), 1.0);
}

async fn metrics_are_served(app: TestApp) {
    metrics_report_failures_backlog_and_attempts(app.backend).await;
}

async fn retention_removes_old_finished_deliveries_but_keeps_dismissed(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let (wallet, failed) = deliveries(&app, 404, 3).await;
    let (_, delivered) = deliveries(&app, 200, 1).await;
    let dismiss = format!("/api/wallets/{wallet}/integration-deliveries/{}/dismiss", failed[0]);
    assert_eq!(
        app.client
            .post(app.url(&dismiss))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery_attempt").await, 4);

    let settings = app.settings.integration.retention.clone();
    let day = 24 * 3600 * 1000_i64;
    let now = business_wallet::store::now_ms();
    // Nothing is old yet.
    let purged = business_wallet::dispatch::retention::run_once(&app.state.db, &settings, now)
        .await
        .unwrap();
    assert_eq!((purged.delivered, purged.failed), (0, 0));
    // Age everything: DELIVERED past its 7 days, one FAILED past its 30, the other FAILED not.
    app.execute(&format!(
        "UPDATE integration_delivery SET updated_at = {}",
        now - 40 * day
    ))
    .await;
    app.execute(&format!(
        "UPDATE integration_delivery SET updated_at = {} WHERE delivery_external_key = '{}'",
        now - 10 * day,
        failed[1]
    ))
    .await;
    app.execute(&format!("UPDATE integration_event SET created_at = {}", now - 40 * day))
        .await;
    let purged = business_wallet::dispatch::retention::run_once(&app.state.db, &settings, now)
        .await
        .unwrap();
    assert_eq!((purged.delivered, purged.failed), (1, 1));
    let remaining =
        |key: &str| format!("SELECT COUNT(*) FROM integration_delivery WHERE delivery_external_key = '{key}'");
    assert_eq!(app.count(&remaining(&failed[0])).await, 1, "DISMISSED is kept");
    assert_eq!(
        app.count(&remaining(&failed[1])).await,
        1,
        "a FAILED delivery younger than 30 days is kept"
    );
    assert_eq!(app.count(&remaining(&failed[2])).await, 0);
    assert_eq!(app.count(&remaining(&delivered[0])).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery_attempt").await,
        2,
        "attempts go with their delivery"
    );
    // Events that no delivery refers to any more are gone too (two wallets' created events,
    // which had no subscriber, and the events of the removed deliveries).
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 2);
}

async fn retention_job(app: TestApp) {
    retention_removes_old_finished_deliveries_but_keeps_dismissed(app.backend).await;
}

both_backends!(metrics_are_served, retention_job);
