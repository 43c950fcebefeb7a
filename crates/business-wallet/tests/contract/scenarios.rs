//! The contract scenarios, written once for every channel kind: each builds an application on
//! one backend for a destination its kind's fixture set up, creates a platform channel through
//! the API, publishes one event, drives the dispatcher one step and checks the delivery through
//! the deliveries log (and what arrived, through the fixture).

use business_wallet::dispatch::Dispatcher;
use business_wallet::store::now_ms;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Backend, TestApp};
use crate::fixture::{Behaviour, Destination, KindFixture, Provoked};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

/// An application on `backend` for `destination`: the local receivers allowed, short timeouts
/// and back-off, then the destination's own settings and adapters.
async fn spawn<Inbox>(backend: Backend, destination: &mut Destination<Inbox>) -> TestApp {
    let own = std::mem::replace(&mut destination.settings, Box::new(|_| {}));
    common::spawn_app_with_adapters(
        backend,
        move |settings| {
            settings.integration.allowed_networks = vec!["127.0.0.0/8".into()];
            settings.integration.retry.base_delay_ms = 1_000;
            settings.integration.retry.max_delay_ms = 60_000;
            settings.integration.webhook.default_timeout_ms = 2_000;
            settings.integration.webhook.max_timeout_ms = 2_000;
            own(settings);
        },
        destination.adapters.clone(),
    )
    .await
}

/// Says on the test's output when a kind stands in for a behaviour it cannot provoke.
fn note<F: KindFixture>(scenario: &str, provoked: Provoked) {
    if let Provoked::CannotBe { why, instead } = provoked {
        eprintln!(
            "{} {scenario}: not provoked for real ({why}); instead: {instead}",
            F::TYPE
        );
    }
}

/// A saved channel: its key and the HMAC secret shown once on creation.
struct Saved {
    key: String,
    hmac_secret: String,
}

/// The create body of a platform channel of kind `F` with `block`.
fn channel_body<F: KindFixture>(block: &Value) -> Value {
    let mut body = json!({
        "name": format!("contract {}", F::TYPE.to_lowercase()),
        "type": F::TYPE,
        "eventTypeFilters": [WALLET_CREATED],
    });
    body[F::BLOCK_FIELD] = block.clone();
    body
}

/// Creates a platform channel for `destination` through the API (then writes its stale block
/// over the stored one, when it has one).
async fn save<F: KindFixture>(app: &TestApp, destination: &Destination<F::Inbox>) -> Saved {
    let (status, created) = app
        .call(
            Method::POST,
            "/api/integration-channels",
            Some(&channel_body::<F>(&destination.block)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let saved = Saved {
        key: created["channelExternalKey"].as_str().unwrap().to_string(),
        hmac_secret: created["hmacSecret"].as_str().unwrap().to_string(),
    };
    if let Some(stale) = &destination.stored_block {
        let config = stale.to_string().replace('\'', "''");
        app.execute(&format!(
            "UPDATE integration_channel SET config = '{config}' WHERE channel_external_key = '{}'",
            saved.key
        ))
        .await;
    }
    saved
}

/// Creates the wallet whose `wallet.created` event every scenario delivers; returns its key.
/// The wallet has a long name and a full address, so that its event is larger than the
/// smallest record limit a Kafka producer can be given.
async fn publish_event(app: &TestApp) -> String {
    let (status, wallet) = app
        .call(
            Method::POST,
            "/api/v1/wallets",
            Some(&json!({
                "displayName": format!("Contract Logistics {}", "B.V. ".repeat(30)),
                "address": {
                    "street": "Keizersgracht ".repeat(13),
                    "postalCode": "1015 CJ",
                    "city": "Amsterdam ".repeat(9),
                    "country": "Netherlands",
                },
            })),
        )
        .await;
    assert_eq!(status, 201, "{wallet}");
    wallet["walletExternalKey"].as_str().unwrap().to_string()
}

/// The one delivery in the platform deliveries log, with its attempts.
async fn only_delivery(app: &TestApp) -> Value {
    let (status, page) = app
        .call(Method::GET, "/api/integration-deliveries?state=all", None)
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let key = items[0]["deliveryExternalKey"].as_str().unwrap();
    let (status, detail) = app
        .call(Method::GET, &format!("/api/integration-deliveries/{key}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    detail
}

/// `(outcome, error)` of each attempt of a delivery's detail.
fn attempts(detail: &Value) -> Vec<(String, Option<String>)> {
    detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_string(),
                a["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Epoch milliseconds of an RFC 3339 time in a response.
fn millis(time: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap_or_else(|| panic!("not a time: {time}")))
        .unwrap()
        .timestamp_millis()
}

/// Sets up a destination behaving as `behaviour`, an application and a channel for it,
/// publishes the event and runs one dispatcher step; returns the application, the destination
/// and the delivery's detail afterwards, plus when the step ended.
async fn deliver_once<F: KindFixture>(
    backend: Backend,
    behaviour: Behaviour,
    scenario: &str,
) -> (TestApp, Destination<F::Inbox>, Value, i64) {
    let mut destination = F::destination(behaviour).await;
    note::<F>(scenario, destination.provoked);
    let app = spawn(backend, &mut destination).await;
    save::<F>(&app, &destination).await;
    publish_event(&app).await;
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    let ended = now_ms();
    assert_eq!(outcome.claimed, 1, "{outcome:?}");
    let detail = only_delivery(&app).await;
    (app, destination, detail, ended)
}

/// A retried delivery: PENDING, one RETRYABLE attempt with its error, the error kept on the
/// delivery, and the next attempt due after the back-off (nothing is claimed before).
async fn assert_waits_for_a_retry(app: &TestApp, detail: &Value, ended: i64) {
    assert_eq!(detail["state"], "PENDING", "{detail}");
    let attempts = attempts(detail);
    assert_eq!(attempts.len(), 1, "{detail}");
    assert_eq!(attempts[0].0, "RETRYABLE", "{detail}");
    let error = attempts[0].1.as_deref().unwrap_or_default();
    assert!(!error.is_empty(), "the attempt records why: {detail}");
    assert_eq!(detail["lastError"], error, "{detail}");
    assert!(millis(&detail["nextAttemptAt"]) > ended, "the retry waits: {detail}");
    assert_eq!(Dispatcher::new(&app.state).run_once().await.unwrap().claimed, 0);
}

/// Accepted: DELIVERED after one attempt, and the event arrived once, as a CloudEvent.
pub async fn an_accepted_event_is_delivered_once_as_a_cloudevent<F: KindFixture>(backend: Backend) {
    let (app, destination, detail, _) = deliver_once::<F>(backend, Behaviour::Accepts, "accepted").await;
    assert_eq!(detail["state"], "DELIVERED", "{detail}");
    assert_eq!(attempts(&detail), [("DELIVERED".to_string(), None)], "{detail}");
    assert!(detail["deliveredAt"].is_string(), "{detail}");
    let wallet = detail["walletExternalKey"].as_str().unwrap();

    let arrived = F::arrived(&destination.inbox).await;
    assert_eq!(arrived.len(), 1, "exactly once: {arrived:?}");
    let event = &arrived[0];
    assert_eq!(event["specversion"], "1.0", "{event}");
    assert_eq!(event["id"], detail["eventId"], "{event}");
    assert_eq!(event["type"], WALLET_CREATED, "{event}");
    assert_eq!(event["source"], "/credenco/wallets", "{event}");
    assert_eq!(event["subject"], format!("wallets/{wallet}"), "{event}");
    assert_eq!(event["walletexternalkey"], wallet, "{event}");
    assert_eq!(event["data"]["walletExternalKey"], wallet, "{event}");
    assert!(
        event["data"]["displayName"]
            .as_str()
            .unwrap()
            .starts_with("Contract Logistics"),
        "{event}"
    );

    // Nothing is left to do.
    app.make_deliveries_due().await;
    assert_eq!(Dispatcher::new(&app.state).run_once().await.unwrap().claimed, 0);
}

/// A refusal that may pass: PENDING, the attempt recorded, the next attempt due later.
pub async fn a_retryable_refusal_waits_for_the_next_attempt<F: KindFixture>(backend: Backend) {
    let (app, _destination, detail, ended) =
        deliver_once::<F>(backend, Behaviour::RefusesForNow, "retryable refusal").await;
    assert_waits_for_a_retry(&app, &detail, ended).await;
}

/// A refusal for good: FAILED at once, the attempt REJECTED with its error, never claimed
/// again.
pub async fn a_final_refusal_fails_at_once<F: KindFixture>(backend: Backend) {
    let (app, _destination, detail, _) = deliver_once::<F>(backend, Behaviour::RefusesForGood, "final refusal").await;
    assert_eq!(detail["state"], "FAILED", "{detail}");
    let attempts = attempts(&detail);
    assert_eq!(attempts.len(), 1, "{detail}");
    assert_eq!(attempts[0].0, "REJECTED", "{detail}");
    assert!(!attempts[0].1.as_deref().unwrap_or_default().is_empty(), "{detail}");
    assert_eq!(detail["lastError"], attempts[0].1.as_deref().unwrap(), "{detail}");
    assert!(detail["nextAttemptAt"].is_null(), "{detail}");
    app.make_deliveries_due().await;
    assert_eq!(
        Dispatcher::new(&app.state).run_once().await.unwrap().claimed,
        0,
        "a FAILED delivery is never claimed"
    );
}

/// An unreachable destination: retried like a passing refusal, with the error recorded and
/// no response.
pub async fn an_unreachable_destination_is_retried<F: KindFixture>(backend: Backend) {
    let (app, _destination, detail, ended) = deliver_once::<F>(backend, Behaviour::Unreachable, "unreachable").await;
    assert_waits_for_a_retry(&app, &detail, ended).await;
    assert!(detail["lastStatus"].is_null(), "nothing answered: {detail}");
    assert!(detail["attempts"][0]["response"].is_null(), "{detail}");
}

/// An invalid type block: 400 in the documented error shape, naming the field, and nothing
/// stored.
pub async fn an_invalid_configuration_is_refused_on_save<F: KindFixture>(backend: Backend) {
    let mut destination = F::destination(Behaviour::Accepts).await;
    let app = spawn(backend, &mut destination).await;
    let (status, types) = app.call(Method::GET, "/api/public/channel-types", None).await;
    assert_eq!(status, 200);
    assert!(
        types.as_array().unwrap().iter().any(|t| t["type"] == F::TYPE),
        "the kind is on, so that the refusal is about the block: {types}"
    );

    let (block, field) = F::invalid_block();
    let (status, error) = app
        .call(
            Method::POST,
            "/api/integration-channels",
            Some(&channel_body::<F>(&block)),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    let shape = error.as_object().unwrap();
    assert_eq!(error["status"], 400, "{error}");
    assert!(error["error"].is_string(), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(field), "{field} in {error}");
    assert!(
        shape
            .keys()
            .all(|key| ["status", "error", "message", "details"].contains(&key.as_str())),
        "{error}"
    );

    let (_, listed) = app.call(Method::GET, "/api/integration-channels", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    for table in ["integration_channel", "integration_channel_subscription", "history"] {
        assert_eq!(app.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
    }
}

/// Secrets stay secret: no attempt's stored request, in the database or in the deliveries
/// log, holds the HMAC secret or any other secret of the channel or the instance, and the
/// channel as read back holds none either.
pub async fn secrets_never_reach_the_stored_request<F: KindFixture>(backend: Backend) {
    let mut destination = F::destination_with_secrets().await;
    let app = spawn(backend, &mut destination).await;
    let saved = save::<F>(&app, &destination).await;
    publish_event(&app).await;
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, 1, "{outcome:?}");
    let mut secrets = destination.secrets.clone();
    secrets.push(saved.hmac_secret.clone());
    assert!(
        secrets.iter().all(|s| s.len() >= 5),
        "secrets long enough to search for: {secrets:?}"
    );

    let stored = app
        .texts("SELECT request FROM integration_delivery_attempt ORDER BY id")
        .await;
    assert_eq!(stored.len(), 1);
    let detail = only_delivery(&app).await;
    let (_, channel) = app
        .call(Method::GET, &format!("/api/integration-channels/{}", saved.key), None)
        .await;
    let shown = [
        stored[0].clone().expect("the attempt's request is stored"),
        detail["attempts"].to_string(),
        channel.to_string(),
    ];
    for text in &shown {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
    }
    assert!(
        detail["attempts"][0]["request"]["body"].is_string(),
        "a request was recorded: {detail}"
    );
}
