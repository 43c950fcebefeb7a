//! Embedding the wallet: a custom channel adapter registered by the embedding application goes
//! through the same channels API, delivery states, attempts, replay and dismiss as a webhook;
//! the publisher writes catalog events in the application's own transaction; the builder's
//! router serves the API. Every test runs on both backends, with the dispatcher driven one step
//! at a time.

#[path = "../common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use business_wallet::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord,
};
use business_wallet::dispatch::{Dispatcher, RunOutcome};
use business_wallet::embed::{EventToPublish, PublishError};
use business_wallet::events::trace::is_valid_traceparent;
use business_wallet::events::{TraceContext, WALLET_CREATED_V1};
use business_wallet::Wallet;
use common::{Backend, TestApp};
use serde_json::{json, Value};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";
const SCRIPTED: &str = "SCRIPTED";

/// What the scripted adapter saw of one attempt.
#[derive(Debug, Clone)]
struct Seen {
    event_id: String,
    event_type: String,
    attempt: u32,
    target: String,
    traceparent: Option<String>,
}

/// A custom adapter that answers from a script (Delivered once the script is empty) and
/// records what it was given. Its type block is `{"target": "<non-empty text>"}`.
#[derive(Default)]
struct ScriptedAdapter {
    script: Mutex<VecDeque<Outcome>>,
    seen: Mutex<Vec<Seen>>,
}

impl ScriptedAdapter {
    fn then(&self, outcome: Outcome) {
        self.script.lock().unwrap().push_back(outcome);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Channel for ScriptedAdapter {
    fn kind(&self) -> &str {
        SCRIPTED
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        match config.get("target").and_then(Value::as_str) {
            Some(target) if !target.trim().is_empty() => Ok(()),
            _ => Err(InvalidConfig("config.target: must be a non-empty string".into())),
        }
    }

    fn destination(&self, config: &Value) -> Option<String> {
        config["target"].as_str().map(|target| format!("scripted:{target}"))
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            let target = channel.config["target"].as_str().unwrap_or_default().to_string();
            self.seen.lock().unwrap().push(Seen {
                event_id: message.envelope.id.clone(),
                event_type: message.envelope.event_type.clone(),
                attempt: message.attempt,
                target: target.clone(),
                traceparent: message.envelope.traceparent.clone(),
            });
            let outcome = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Outcome::Delivered { response: None });
            Attempt {
                request: Some(RequestRecord {
                    method: "SEND".into(),
                    url: format!("scripted:{target}"),
                    headers: vec![("content-type".into(), "application/cloudevents+json".into())],
                    body: serde_json::to_string(message.envelope).unwrap(),
                }),
                outcome,
            }
        })
    }
}

fn retryable(error: &str) -> Outcome {
    Outcome::Retryable {
        error: error.into(),
        retry_after: None,
        response: None,
    }
}

fn rejected(error: &str) -> Outcome {
    Outcome::Rejected {
        error: error.into(),
        response: None,
    }
}

/// Runs `async fn name(app: TestApp, adapter: Arc<ScriptedAdapter>)` on both backends.
macro_rules! with_adapter {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, adapter) = super::spawn(crate::common::Backend::Sqlite).await;
                super::$name(app, adapter).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (app, adapter) = super::spawn(crate::common::Backend::Postgres).await;
                super::$name(app, adapter).await
            }
        }
    )+};
}

with_adapter!(
    custom_type_is_listed_and_validated_by_its_adapter,
    custom_type_is_offered_and_created_in_the_web_ui,
    adapter_outcomes_drive_states_attempts_replay_and_dismiss,
    publisher_writes_in_the_callers_transaction,
);

async fn spawn(backend: Backend) -> (TestApp, Arc<ScriptedAdapter>) {
    let adapter = Arc::new(ScriptedAdapter::default());
    let app = common::spawn_app_with_adapters(
        backend,
        |s| {
            s.integration.retry.base_delay_ms = 1_000;
            s.integration.retry.max_delay_ms = 60_000;
        },
        vec![adapter.clone()],
    )
    .await;
    (app, adapter)
}

async fn run_once(app: &TestApp) -> RunOutcome {
    Dispatcher::new(&app.state).run_once().await.unwrap()
}

fn scripted_channel(name: &str, config: Value) -> Value {
    json!({"name": name, "type": SCRIPTED, "eventTypeFilters": [IDENTIFIER_CREATED], "config": config})
}

async fn custom_type_is_listed_and_validated_by_its_adapter(app: TestApp, _adapter: Arc<ScriptedAdapter>) {
    let (status, types) = app.call(reqwest::Method::GET, "/api/public/channel-types", None).await;
    assert_eq!(status, 200);
    assert!(
        types
            .as_array()
            .unwrap()
            .contains(&json!({"type": SCRIPTED, "configField": "config", "builtIn": false})),
        "{types}"
    );
    assert!(
        types
            .as_array()
            .unwrap()
            .contains(&json!({"type": "WEBHOOK", "configField": "webhook", "builtIn": true})),
        "{types}"
    );

    let wallet = app.create_wallet("Adapters").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let channels = format!("/api/wallets/{w}/integration-channels");

    // A registered custom type with a block its adapter accepts: stored and shown as it was.
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            &channels,
            Some(&scripted_channel("orders", json!({"target": "orders"}))),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], SCRIPTED);
    assert_eq!(created["config"], json!({"target": "orders"}));
    let key = created["channelExternalKey"].as_str().unwrap();
    let (status, read) = app.call(reqwest::Method::GET, &format!("{channels}/{key}"), None).await;
    assert_eq!((status, &read["config"]), (200, &json!({"target": "orders"})));

    // The adapter's own validation decides about the block.
    let (status, error) = app
        .call(
            reqwest::Method::POST,
            &channels,
            Some(&scripted_channel("bad", json!({"target": " "}))),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["details"]["field"], "config");
    assert!(error["message"].as_str().unwrap().contains("config.target"), "{error}");
    let (status, error) = app
        .call(
            reqwest::Method::POST,
            &channels,
            Some(&json!({"name": "none", "type": SCRIPTED, "eventTypeFilters": [IDENTIFIER_CREATED]})),
        )
        .await;
    assert_eq!(status, 400, "a missing block: {error}");

    // A type nobody registered is refused, on wallet and platform channels alike.
    let unknown = json!({"name": "pigeon", "type": "CARRIER_PIGEON", "eventTypeFilters": [IDENTIFIER_CREATED], "config": {"target": "x"}});
    for path in [channels.as_str(), "/api/integration-channels"] {
        let (status, error) = app.call(reqwest::Method::POST, path, Some(&unknown)).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert!(error["message"].as_str().unwrap().contains("CARRIER_PIGEON"), "{error}");
    }

    // Platform channels accept the custom type too.
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&scripted_channel("all orders", json!({"target": "all"}))),
        )
        .await;
    assert_eq!(status, 201, "{created}");
}

async fn adapter_outcomes_drive_states_attempts_replay_and_dismiss(app: TestApp, adapter: Arc<ScriptedAdapter>) {
    let wallet = app.create_wallet("Scripted").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let (status, channel) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/wallets/{w}/integration-channels"),
            Some(&scripted_channel("erp", json!({"target": "erp"}))),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let add_identifier = |name: &'static str| {
        let app = &app;
        let w = w.clone();
        async move {
            let response = app
                .post(
                    &format!("/api/v1/wallets/{w}/identifiers"),
                    Some(&app.admin_token),
                    &json!({"identifierType": "JWK", "displayName": name}),
                )
                .await;
            assert_eq!(response.status(), 201);
        }
    };
    add_identifier("first").await;
    let log = format!("/api/wallets/{w}/integration-deliveries");
    let (_, page) = app.call(reqwest::Method::GET, &log, None).await;
    let first = page["items"][0]["deliveryExternalKey"].as_str().unwrap().to_string();
    assert_eq!(page["items"][0]["channelType"], SCRIPTED);

    // Retryable: back to PENDING with the attempt counted and the error kept.
    adapter.then(retryable("receiver busy"));
    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.retried), (1, 1), "{outcome:?}");
    let (_, detail) = app.call(reqwest::Method::GET, &format!("{log}/{first}"), None).await;
    assert_eq!(
        (&detail["state"], &detail["attempts"].as_array().unwrap().len()),
        (&json!("PENDING"), &1)
    );
    assert_eq!(detail["lastError"], "receiver busy");
    assert!(detail["nextAttemptAt"].is_string(), "{detail}");

    // Not due yet: nothing is claimed until the back-off has passed.
    assert_eq!(run_once(&app).await.claimed, 0);
    app.make_deliveries_due().await;

    // Rejected: FAILED at once, both attempts in the log with their outcome and request.
    adapter.then(rejected("unknown order book"));
    let outcome = run_once(&app).await;
    assert_eq!(outcome.failed, 1, "{outcome:?}");
    let (_, detail) = app.call(reqwest::Method::GET, &format!("{log}/{first}"), None).await;
    assert_eq!(detail["state"], "FAILED");
    let attempts = detail["attempts"].as_array().unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["RETRYABLE", "REJECTED"]);
    assert_eq!(attempts[1]["error"], "unknown order book");
    assert_eq!(attempts[1]["request"]["url"], "scripted:erp");

    // Replay: PENDING with the attempts reset; the next attempt delivers with the same id.
    let (status, replayed) = app
        .call(reqwest::Method::POST, &format!("{log}/{first}/replay"), None)
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        (&replayed["state"], &replayed["attempts"]),
        (&json!("PENDING"), &json!(0))
    );
    let outcome = run_once(&app).await;
    assert_eq!(outcome.delivered, 1, "{outcome:?}");
    let (_, detail) = app.call(reqwest::Method::GET, &format!("{log}/{first}"), None).await;
    assert_eq!(detail["state"], "DELIVERED");
    assert!(detail["deliveredAt"].is_string());
    assert_eq!(
        app.call(reqwest::Method::POST, &format!("{log}/{first}/dismiss"), None)
            .await
            .0,
        409,
        "only FAILED deliveries can be dismissed"
    );

    // Dismiss: a FAILED delivery is put aside and stays so.
    add_identifier("second").await;
    adapter.then(rejected("no such order book"));
    assert_eq!(run_once(&app).await.failed, 1);
    let (_, page) = app
        .call(reqwest::Method::GET, &format!("{log}?state=FAILED"), None)
        .await;
    let second = page["items"][0]["deliveryExternalKey"].as_str().unwrap().to_string();
    let (status, dismissed) = app
        .call(reqwest::Method::POST, &format!("{log}/{second}/dismiss"), None)
        .await;
    assert_eq!((status, &dismissed["state"]), (200, &json!("DISMISSED")), "{dismissed}");
    assert_eq!(
        app.call(reqwest::Method::POST, &format!("{log}/{second}/replay"), None)
            .await
            .0,
        409
    );
    assert_eq!(run_once(&app).await.claimed, 0);

    // What the adapter was handed: the event, the attempt number and its channel's block.
    let seen = adapter.seen();
    let attempts: Vec<u32> = seen.iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 1, 1]);
    assert!(seen
        .iter()
        .all(|s| s.event_type == IDENTIFIER_CREATED && s.target == "erp"));
    assert_eq!(seen[0].event_id, seen[2].event_id, "a replay keeps the event id");
    assert_ne!(seen[0].event_id, seen[3].event_id);
}

async fn publisher_writes_in_the_callers_transaction(app: TestApp, adapter: Arc<ScriptedAdapter>) {
    // A second wallet over the same database, as an application with its own pool would build.
    let embedded = Wallet::builder(app.settings.clone())
        .pool(app.state.db.clone())
        .adapter(adapter.clone())
        .build()
        .await
        .unwrap();
    assert!(embedded.channel_types().contains(&SCRIPTED.to_string()));
    let wallet = "8d1f3c52-27a4-4e54-bd8e-0c0ea3a1f001";
    app.execute(&format!(
        "INSERT INTO integration_channel (channel_external_key, wallet_external_key, name, channel_type, enabled, config, created_at, updated_at, created_by, updated_by) \
         VALUES ('c-pub', NULL, 'platform', '{SCRIPTED}', TRUE, '{{\"target\":\"platform\"}}', 0, 0, 'test', 'test')"
    ))
    .await;
    app.execute(&format!(
        "INSERT INTO integration_channel_subscription (channel_id, event_type) SELECT id, '{WALLET_CREATED}' FROM integration_channel WHERE channel_external_key = 'c-pub'"
    ))
    .await;

    let mut data = WALLET_CREATED_V1.sample_data();
    data["walletExternalKey"] = json!(wallet);
    let subject = [("walletExternalKey", wallet)];
    let event = |data: Value| EventToPublish {
        event_type: WALLET_CREATED,
        wallet_external_key: wallet,
        subject_values: &subject,
        data,
        correlation_id: "import-1",
    };
    let publisher = embedded.publisher();

    // Refused before anything is written.
    let mut tx = publisher.begin().await.unwrap();
    let mut unknown = event(data.clone());
    unknown.event_type = "com.credenco.businesswallet.wallet.deleted.v1";
    assert!(matches!(
        publisher.publish(&mut tx, unknown).await,
        Err(PublishError::UnknownEventType(_))
    ));
    let mut no_subject = event(data.clone());
    no_subject.subject_values = &[];
    assert!(matches!(
        publisher.publish(&mut tx, no_subject).await,
        Err(PublishError::MissingSubjectValue { ref placeholder, .. }) if placeholder == "walletExternalKey"
    ));
    let mut bad = data.clone();
    bad["displayName"] = json!(42);
    match publisher.publish(&mut tx, event(bad)).await {
        Err(PublishError::InvalidData { errors, .. }) => {
            assert!(errors.iter().any(|e| e.contains("/displayName")), "{errors:?}")
        }
        other => panic!("expected invalid data, got {other:?}"),
    }

    // Rolled back with the caller's transaction: nothing is left.
    let published = publisher.publish(&mut tx, event(data.clone())).await.unwrap();
    assert_eq!(published.deliveries, 1);
    drop(tx);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery").await, 0);

    // Committed with the caller's own write: the event is delivered.
    let mut tx = publisher.begin().await.unwrap();
    let published = publisher.publish(&mut tx, event(data.clone())).await.unwrap();
    publisher.commit(tx).await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 1);
    let outcome = embedded.dispatcher().run_once().await.unwrap();
    assert_eq!(outcome.delivered, 1, "{outcome:?}");
    let seen = adapter.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].event_id, published.event_id);
    assert_eq!(seen[0].target, "platform");
    // `publish` starts a new trace; `publish_traced` continues the application's own.
    assert!(
        is_valid_traceparent(seen[0].traceparent.as_deref().unwrap()),
        "{:?}",
        seen[0].traceparent
    );
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let trace = TraceContext::parse(given, Some("congo=t61rcWkgMzE")).unwrap();
    assert_eq!(TraceContext::parse("00-not-valid", None), None);
    let mut tx = publisher.begin().await.unwrap();
    publisher
        .publish_traced(&mut tx, event(data.clone()), &trace)
        .await
        .unwrap();
    publisher.commit(tx).await.unwrap();
    assert_eq!(embedded.dispatcher().run_once().await.unwrap().delivered, 1);
    assert_eq!(adapter.seen()[1].traceparent.as_deref(), Some(given));

    // The embedded router serves the same API.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = embedded.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let response = app
        .client
        .get(format!("http://{address}/api/public/channel-types"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let types: Value = response.json().await.unwrap();
    assert!(types.to_string().contains(SCRIPTED), "{types}");
    server.abort();
}

/// The value of `name="..." value="..."` in a page, e.g. the hidden `_csrf` field.
fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// The `name=value` of the cookie `name` that a response sets.
fn cookie_set(response: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    let header = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} cookie"));
    header.split(';').next().unwrap().to_string()
}

async fn custom_type_is_offered_and_created_in_the_web_ui(app: TestApp, _adapter: Arc<ScriptedAdapter>) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser.get(app.url("/ui/sign-in")).send().await.unwrap();
    let pre = cookie_set(&form, "bw_sign_in");
    let csrf = input_value(&form.text().await.unwrap(), "_csrf");
    let signed_in = browser
        .post(app.url("/ui/sign-in"))
        .header("cookie", pre)
        .form(&[("_csrf", csrf.as_str()), ("token", app.admin_token.as_str())])
        .send()
        .await
        .unwrap();
    let session = cookie_set(&signed_in, "bw_session");
    let wallet = app.create_wallet("Console").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();

    // The adapter's type is offered next to the built-in ones, with a field for its settings.
    let new_form = browser
        .get(app.url(&format!("/ui/integrations/channels/new?wallet={wallet}")))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(new_form.status(), 200);
    let html = new_form.text().await.unwrap();
    assert!(html.contains(&format!("<option value=\"{SCRIPTED}\"")), "{html}");
    assert!(html.contains("<option value=\"WEBHOOK\""), "{html}");
    assert!(
        html.contains("name=\"config\""),
        "no field for the adapter's settings: {html}"
    );
    let csrf = input_value(&html, "_csrf");

    let create = |config: &'static str| {
        let request = browser
            .post(app.url(&format!("/ui/integrations/channels?wallet={wallet}")))
            .header("cookie", &session)
            .form(&[
                ("_csrf", csrf.as_str()),
                ("name", "From the console"),
                ("type", SCRIPTED),
                ("enabled", "on"),
                ("event", IDENTIFIER_CREATED),
                ("config", config),
            ]);
        async move { request.send().await.unwrap() }
    };
    // Settings that are not JSON, and settings the adapter refuses, come back on the form.
    let not_json = create("{target").await;
    assert_eq!(not_json.status(), 400);
    assert!(not_json.text().await.unwrap().contains("config: is not valid JSON"));
    let refused = create(r#"{"target": ""}"#).await;
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("config.target: must be a non-empty string"));

    let created = create(r#"{"target": "ledger"}"#).await;
    assert_eq!(created.status(), 303, "{}", created.text().await.unwrap());
    let (status, channels) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{wallet}/integration-channels"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(channels.as_array().unwrap().len(), 1, "{channels}");
    assert_eq!(channels[0]["type"], SCRIPTED);
    assert_eq!(channels[0]["config"], json!({"target": "ledger"}));

    // The list shows it like the built-in ones: its type, and the destination its adapter names.
    let list = browser
        .get(app.url(&format!("/ui/integrations/channels?wallet={wallet}")))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!("<td data-label=\"Type\">{SCRIPTED}</td>")),
        "{list}"
    );
    assert!(
        list.contains("<td data-label=\"Destination\" class=\"wrap\">scripted:ledger</td>"),
        "no destination from the adapter: {list}"
    );
}
