//! The transactional outbox: one delivery per enabled subscribed channel, and all-or-nothing
//! writes.

use serde_json::json;

use crate::both_backends;
use crate::common::{Backend, TestApp};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

async fn deliveries_of(app: &TestApp, event_type: &str) -> Vec<i64> {
    use business_wallet::store::Db;
    let sql = "SELECT d.channel_id FROM integration_delivery d JOIN integration_event e ON e.id = d.event_id \
               WHERE e.event_type = $1 ORDER BY d.channel_id";
    match &app.state.db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).bind(event_type).fetch_all(pool).await.unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_scalar(sql)
            .bind(event_type)
            .fetch_all(writer)
            .await
            .unwrap(),
    }
}

async fn deliveries_go_to_enabled_subscribed_channels_only(app: TestApp) {
    // Platform channels exist before any wallet and receive every wallet's events.
    let platform_all = app
        .insert_channel(None, "platform-all", true, &[WALLET_CREATED, IDENTIFIER_CREATED])
        .await;
    let platform_disabled = app
        .insert_channel(None, "platform-off", false, &[WALLET_CREATED, IDENTIFIER_CREATED])
        .await;
    let platform_identifiers = app
        .insert_channel(None, "platform-ids", true, &[IDENTIFIER_CREATED])
        .await;

    let wallet = app.create_wallet("Outbox").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let other = app.create_wallet("Other").await;
    let o = other["walletExternalKey"].as_str().unwrap();
    assert_eq!(
        deliveries_of(&app, WALLET_CREATED).await,
        vec![platform_all, platform_all],
        "each wallet.created reaches the enabled platform channel subscribed to it, and only that one"
    );

    let own = app.insert_channel(Some(w), "own", true, &[IDENTIFIER_CREATED]).await;
    let own_disabled = app
        .insert_channel(Some(w), "own-off", false, &[IDENTIFIER_CREATED])
        .await;
    let own_wallet_only = app
        .insert_channel(Some(w), "own-wallet-events", true, &[WALLET_CREATED])
        .await;
    let others = app.insert_channel(Some(o), "others", true, &[IDENTIFIER_CREATED]).await;

    let response = app
        .post(
            &format!("/api/v1/wallets/{w}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "JWK", "displayName": "k"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mut expected = vec![platform_all, platform_identifiers, own];
    expected.sort();
    assert_eq!(deliveries_of(&app, IDENTIFIER_CREATED).await, expected);
    for not_expected in [platform_disabled, own_disabled, own_wallet_only, others] {
        assert!(!deliveries_of(&app, IDENTIFIER_CREATED).await.contains(&not_expected));
    }

    // Every delivery starts PENDING, due now, with no attempt yet, and belongs to its channel's
    // owner (NULL for platform channels).
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery WHERE state <> 'PENDING' OR attempts <> 0 OR lease_token IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM integration_delivery WHERE channel_id = {own} AND wallet_external_key = '{w}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM integration_delivery WHERE channel_id = {platform_all} AND wallet_external_key IS NULL"))
            .await,
        3
    );
}

/// Makes every insert into `table` fail, as a crash between two statements would.
async fn inject_failure_on_insert(app: &TestApp, table: &str) {
    match app.backend {
        Backend::Sqlite => {
            app.execute(&format!(
                "CREATE TRIGGER injected_failure BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            ))
            .await
        }
        Backend::Postgres => {
            app.execute(
                "CREATE FUNCTION injected_failure() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;",
            )
            .await;
            app.execute(&format!(
                "CREATE TRIGGER injected_failure BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION injected_failure();"
            ))
            .await
        }
    }
}

async fn a_failure_after_the_domain_insert_writes_nothing(app: TestApp) {
    app.insert_channel(None, "platform", true, &[WALLET_CREATED, IDENTIFIER_CREATED])
        .await;
    let wallet = app.create_wallet("Before").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let before = (
        app.count("SELECT COUNT(*) FROM wallet").await,
        app.count("SELECT COUNT(*) FROM integration_event").await,
        app.count("SELECT COUNT(*) FROM integration_delivery").await,
    );
    assert_eq!(before, (1, 1, 1));

    // The event insert fails after the wallet row was written in the same transaction.
    inject_failure_on_insert(&app, "integration_event").await;
    let response = app
        .post(
            "/api/v1/wallets",
            Some(&app.admin_token),
            &json!({"displayName": "Doomed"}),
        )
        .await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 500);
    assert_eq!(body["message"], "internal error", "no internals leak: {body}");
    let response = app
        .post(
            &format!("/api/v1/wallets/{w}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "JWK", "displayName": "Doomed"}),
        )
        .await;
    assert_eq!(response.status(), 500);
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 1, "no wallet row");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM identifier").await,
        0,
        "no identifier row"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 1, "no event");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery").await,
        1,
        "no delivery"
    );
}

async fn a_failure_in_the_fan_out_writes_nothing(app: TestApp) {
    app.insert_channel(None, "platform", true, &[WALLET_CREATED]).await;
    // The wallet row and the event are written, then a delivery insert fails.
    inject_failure_on_insert(&app, "integration_delivery").await;
    let response = app
        .post(
            "/api/v1/wallets",
            Some(&app.admin_token),
            &json!({"displayName": "Doomed"}),
        )
        .await;
    assert_eq!(response.status(), 500);
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery").await, 0);
}

both_backends!(
    deliveries_go_to_enabled_subscribed_channels_only,
    a_failure_after_the_domain_insert_writes_nothing,
    a_failure_in_the_fan_out_writes_nothing
);
