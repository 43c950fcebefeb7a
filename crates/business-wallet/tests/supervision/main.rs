//! Supervision of a running instance: a channel adapter that panics in the middle of a
//! delivery attempt is logged with its channel and delivery, the attempt counts as retryable,
//! and the running dispatcher goes on and delivers it on the next attempt. (A task of the
//! instance that ends before shutdown is covered by the unit tests of `app`.)
//!
//! Each test runs on a runtime of one thread whose default subscriber is the server's JSON
//! subscriber writing into a buffer, so every task of the application logs there.

#[path = "../common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use business_wallet::channels::{Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome};
use business_wallet::telemetry::MemoryLog;
use common::Backend;
use serde_json::{json, Value};

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";
const FRAGILE: &str = "FRAGILE";

/// An adapter that panics on its first attempt and delivers afterwards.
#[derive(Default)]
struct FragileAdapter {
    calls: AtomicU32,
}

impl Channel for FragileAdapter {
    fn kind(&self) -> &str {
        FRAGILE
    }

    fn validate(&self, _config: &Value) -> Result<(), InvalidConfig> {
        Ok(())
    }

    fn deliver<'a>(&'a self, _message: &'a OutboundMessage<'a>, _channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            // Once inside the future, after a suspension point, as a real adapter would.
            tokio::task::yield_now().await;
            if call == 1 {
                panic!("adapter exploded on call {call}");
            }
            Attempt::without_request(Outcome::Delivered { response: None })
        })
    }
}

fn a_panicking_adapter_is_logged_and_its_delivery_retried(backend: Backend) {
    let sink = MemoryLog::default();
    let dispatch = sink.json_subscriber();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let adapter = Arc::new(FragileAdapter::default());
    let (channel_key, delivery_key) = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let app = common::spawn_app_with_adapters(
                backend,
                |s| {
                    // The real claim loop this time, retrying at once.
                    s.server.dispatcher_enabled = true;
                    s.integration.dispatch.poll_interval_ms = 20;
                    s.integration.retry.base_delay_ms = 1;
                    s.integration.retry.max_delay_ms = 1;
                    s.integration.retry.jitter = 0.0;
                },
                vec![adapter.clone()],
            )
            .await;
            let wallet = app.create_wallet("Fragile").await;
            let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
            let (status, channel) = app.call(reqwest::Method::POST,
                &format!("/api/wallets/{w}/integration-channels"),
                Some(&json!({"name": "erp", "type": FRAGILE, "eventTypeFilters": [IDENTIFIER_CREATED], "config": {}})),
            )
            .await;
            assert_eq!(status, 201, "{channel}");
            let response = app
                .post(
                    &format!("/api/v1/wallets/{w}/identifiers"),
                    Some(&app.admin_token),
                    &json!({"identifierType": "JWK", "displayName": "first"}),
                )
                .await;
            assert_eq!(response.status(), 201);
            let log = format!("/api/wallets/{w}/integration-deliveries");
            // Every state: the delivery may be DELIVERED already (the dispatcher retries at once),
            // and the log lists only what still needs attention unless asked for more.
            let (_, page) = app.call(reqwest::Method::GET, &format!("{log}?state=all"), None).await;
            let delivery = page["items"][0]["deliveryExternalKey"].as_str().unwrap().to_string();

            // The dispatcher survives the panic and delivers on the next attempt.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let detail = loop {
                let (_, detail) = app.call(reqwest::Method::GET, &format!("{log}/{delivery}"), None).await;
                if detail["state"] == "DELIVERED" {
                    break detail;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "not delivered in time: {detail}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let attempts = detail["attempts"].as_array().unwrap();
            let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
            assert_eq!(outcomes, ["RETRYABLE", "DELIVERED"], "{detail}");
            assert_eq!(
                attempts[0]["error"],
                "the channel adapter panicked: adapter exploded on call 1"
            );
            assert_eq!(adapter.calls.load(Ordering::SeqCst), 2);
            let channel_key = channel["channelExternalKey"].as_str().unwrap().to_string();
            (channel_key, delivery)
        })
    });
    drop(runtime);
    let lines = sink.json_lines();
    let panicked: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "the channel adapter panicked during a delivery attempt")
        .collect();
    assert_eq!(panicked.len(), 1, "{lines:?}");
    let line = panicked[0];
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["channel"], channel_key.as_str(), "{line}");
    assert_eq!(line["delivery"], delivery_key.as_str(), "{line}");
    assert_eq!(line["channel_type"], FRAGILE, "{line}");
    assert_eq!(line["panic"], "adapter exploded on call 1", "{line}");
    // The dispatcher went on: no task of the instance ended.
    assert!(
        !lines
            .iter()
            .any(|line| line["message"] == "a task ended before shutdown; stopping the instance"),
        "{lines:?}"
    );
}

#[test]
fn a_panicking_adapter_is_logged_and_its_delivery_retried_sqlite() {
    a_panicking_adapter_is_logged_and_its_delivery_retried(Backend::Sqlite);
}

#[test]
fn a_panicking_adapter_is_logged_and_its_delivery_retried_postgres() {
    a_panicking_adapter_is_logged_and_its_delivery_retried(Backend::Postgres);
}
