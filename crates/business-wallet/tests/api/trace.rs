//! W3C trace context: a request's `traceparent` (and `tracestate`) travels with its event to
//! the webhook as the CloudEvents distributed-tracing extension (`ce-traceparent`,
//! `ce-tracestate`); a request without a valid one gets a new one, and is never refused for it.
//! Driven with the dispatcher's single step and the real receiver.

use std::time::Duration;

use business_wallet::channels::ChannelSecrets;
use business_wallet::dispatch::Dispatcher;
use business_wallet::events::trace::is_valid_traceparent;
use serde_json::json;

use crate::both_backend_kinds;
use crate::common::{spawn_app_with, Backend, TestApp};
use crate::{events_of, receiver};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// Creates a wallet with `headers`; returns its key. The request must succeed whatever the
/// trace headers say.
async fn create_wallet_with(app: &TestApp, name: &str, headers: &[(&str, &str)]) -> String {
    let mut request = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "displayName": name }));
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201, "{headers:?}");
    let wallet: serde_json::Value = response.json().await.unwrap();
    wallet["walletExternalKey"].as_str().unwrap().to_string()
}

async fn traceparent_reaches_the_webhook(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(204).await;
    let secrets = ChannelSecrets::generate();
    app.insert_webhook_channel(None, &hook.url, &secrets, true, &[WALLET_CREATED])
        .await;

    let given = create_wallet_with(&app, "Given", &[("traceparent", GIVEN), ("tracestate", STATE)]).await;
    let absent = create_wallet_with(&app, "Absent", &[]).await;
    // Upper-case hex breaks the grammar: ignored with its tracestate, replaced by a new one.
    let invalid_value = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    let invalid = create_wallet_with(
        &app,
        "Invalid",
        &[("traceparent", invalid_value), ("tracestate", STATE)],
    )
    .await;
    let zero = create_wallet_with(
        &app,
        "Zero",
        &[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")],
    )
    .await;

    // Stored with the event, as the envelope rebuilt from its row shows.
    let stored = &events_of(&app, &given).await[0];
    assert_eq!(stored["traceparent"], GIVEN);
    assert_eq!(stored["tracestate"], STATE);

    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.claimed, 4, "{outcome:?}");
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    let header_of = |wallet: &str, name: &str| -> Option<String> {
        let (headers, _) = seen
            .iter()
            .find(|(headers, _)| headers["ce-walletexternalkey"] == wallet)
            .unwrap_or_else(|| panic!("no webhook for {wallet}"));
        headers.get(name).map(|v| v.to_str().unwrap().to_string())
    };

    assert_eq!(header_of(&given, "ce-traceparent").as_deref(), Some(GIVEN));
    assert_eq!(header_of(&given, "ce-tracestate").as_deref(), Some(STATE));

    let mut generated = Vec::new();
    for wallet in [&absent, &invalid, &zero] {
        let traceparent = header_of(wallet, "ce-traceparent").expect("every webhook has a traceparent");
        assert!(is_valid_traceparent(&traceparent), "{traceparent}");
        assert!(traceparent.ends_with("-01"), "new traces are sampled: {traceparent}");
        assert_ne!(traceparent, GIVEN);
        assert_ne!(traceparent, invalid_value);
        assert_eq!(
            header_of(wallet, "ce-tracestate"),
            None,
            "no state without the caller's parent"
        );
        generated.push(traceparent[3..35].to_string());
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 3, "each request starts its own trace: {generated:?}");

    // The signature covers the timestamp and the body only, so adding the headers keeps it
    // verifiable exactly as before.
    for (headers, body) in &seen {
        let signature = headers["x-credenco-signature"].to_str().unwrap();
        webhook_verify::verify_now(
            signature,
            body.as_bytes(),
            &[secrets.hmac_secret.as_bytes()],
            Duration::from_secs(300),
        )
        .unwrap();
    }
}

both_backend_kinds!(traceparent_reaches_the_webhook);
