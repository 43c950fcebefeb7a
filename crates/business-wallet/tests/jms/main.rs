//! JMS channel over STOMP against a real ActiveMQ (`scripts/setup/brokers.sh` starts it and
//! exports `BUSINESS_WALLET_TEST_STOMP_URL`, `BUSINESS_WALLET_TEST_OPENWIRE_URL` and `BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH`): a
//! plain Java JMS consumer reads the messages as TextMessages and selects on the event type,
//! and a broker outage is survived without losing events. Over AMQP 1.0 (RabbitMQ,
//! `BUSINESS_WALLET_TEST_AMQP_URL`), a python-qpid-proton receiver reads the messages.
#![cfg(feature = "jms")]

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use business_wallet::dispatch::Dispatcher;
use common::{setup_env, Backend, TestApp};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

both_backend_kinds!(
    a_java_consumer_reads_text_messages_and_selects_on_the_type,
    an_outage_is_retried_and_nothing_is_lost,
    a_bad_destination_is_refused_on_save,
    amqp_messages_carry_the_content_type_and_are_durable,
    an_amqp_outage_is_retried_and_nothing_is_lost,
    a_java_consumer_selects_on_the_cloudevents_type_property,
    amqp_messages_carry_every_attribute_as_a_cloudevents_property,
    a_bad_properties_option_is_refused_on_save
);

/// An on-premise instance with JMS channels on, sending over STOMP to `url`.
async fn spawn(backend: Backend, url: &str) -> TestApp {
    let url = url.to_string();
    common::spawn_app_with(backend, move |settings| {
        let jms = &mut settings.integration.channels.jms;
        jms.enabled = true;
        jms.url = url;
        jms.timeout_ms = 3_000;
    })
    .await
}

/// Creates a platform JMS channel on `destination` through the API.
async fn create_channel(app: &TestApp, destination: &str) {
    create_channel_with(app, json!({ "destination": destination })).await;
}

/// Creates a platform JMS channel with the type block `block` through the API.
async fn create_channel_with(app: &TestApp, block: Value) {
    let response = app
        .post(
            "/api/integration-channels",
            Some(&app.admin_token),
            &json!({
                "name": format!("jms {}", uuid::Uuid::new_v4()),
                "type": "JMS",
                "eventTypeFilters": [WALLET_CREATED, IDENTIFIER_CREATED],
                "jms": block
            }),
        )
        .await;
    let status = response.status();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());
}

async fn states(app: &TestApp) -> Vec<(String, i64)> {
    let sql = "SELECT state, attempts FROM integration_delivery ORDER BY id";
    match &app.state.db {
        business_wallet::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        business_wallet::store::Db::Sqlite { writer, .. } => sqlx::query_as(sql).fetch_all(writer).await.unwrap(),
    }
}

/// The last error of each delivery, for failure messages.
async fn last_errors(app: &TestApp) -> Vec<Option<String>> {
    let sql = "SELECT last_error FROM integration_delivery ORDER BY id";
    match &app.state.db {
        business_wallet::store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        business_wallet::store::Db::Sqlite { writer, .. } => sqlx::query_scalar(sql).fetch_all(writer).await.unwrap(),
    }
}

/// Compiles the Java consumer once per test binary; returns its class directory.
fn java_consumer() -> PathBuf {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    CLASSES
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("bw-jms-consumer-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jms/java/ReceiveText.java");
            let status = Command::new("javac")
                .arg("-cp")
                .arg(setup_env("BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH"))
                .arg("-d")
                .arg(&dir)
                .arg(&source)
                .status()
                .expect("javac runs");
            assert!(status.success(), "the Java consumer compiles");
            dir
        })
        .clone()
}

/// Receives up to `count` messages from `queue` with the Java consumer; returns its lines.
async fn receive(queue: &str, count: usize, selector: Option<&str>) -> Vec<String> {
    receive_with_properties(queue, count, selector, &[]).await
}

/// Like [`receive`], with a `PROPERTY <name> <value>` line per name of `properties` before
/// each message's line.
async fn receive_with_properties(
    queue: &str,
    count: usize,
    selector: Option<&str>,
    properties: &[&str],
) -> Vec<String> {
    let classes = java_consumer();
    let classpath = format!(
        "{}:{}",
        classes.display(),
        setup_env("BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH")
    );
    let mut command = tokio::process::Command::new("java");
    if !properties.is_empty() {
        command.arg(format!("-Dbw.properties={}", properties.join(",")));
    }
    command
        .arg("-cp")
        .arg(classpath)
        .arg("ReceiveText")
        .arg(setup_env("BUSINESS_WALLET_TEST_OPENWIRE_URL"))
        .arg(queue)
        .arg(count.to_string())
        .arg("10000");
    if let Some(selector) = selector {
        command.arg(selector);
    }
    let output = command.output().await.expect("java runs");
    assert!(
        output.status.success(),
        "the Java consumer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Splits a consumer line `TEXT <type> <body>` into the type property and the parsed body.
fn text_message(line: &str) -> (String, Value) {
    let rest = line
        .strip_prefix("TEXT ")
        .unwrap_or_else(|| panic!("not a TextMessage: {line}"));
    let (event_type, body) = rest.split_once(' ').unwrap();
    (event_type.to_string(), serde_json::from_str(body).unwrap())
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn a_java_consumer_reads_text_messages_and_selects_on_the_type(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_STOMP_URL")).await;
    let queue = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel(&app, &format!("queue://{queue}")).await;
    let wallet = app.create_wallet("Acme").await;
    let key = wallet["walletExternalKey"].as_str().unwrap();
    // The identifier's request names its trace context; the wallet's had none.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/wallets/{key}/identifiers")))
        .bearer_auth(&app.admin_token)
        .header("traceparent", TRACEPARENT)
        .json(&json!({"identifierType": "JWK", "displayName": "signing", "keyType": "Ed25519"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, 2, "{outcome:?}");
    assert_eq!(states(&app).await, vec![("DELIVERED".to_string(), 1); 2]);

    // A selector on the type property picks the identifier event, leaving the other.
    let selected = receive(&queue, 2, Some(&format!("ce_type = '{IDENTIFIER_CREATED}'"))).await;
    assert_eq!(selected.len(), 1, "{selected:?}");
    let (event_type, event) = text_message(&selected[0]);
    assert_eq!(event_type, IDENTIFIER_CREATED);
    assert_eq!(event["type"], IDENTIFIER_CREATED);
    assert_eq!(event["walletexternalkey"], key);
    // The distributed-tracing extension, as an attribute of the structured envelope.
    assert_eq!(event["traceparent"], TRACEPARENT);

    let rest = receive(&queue, 2, None).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    let (event_type, event) = text_message(&rest[0]);
    assert_eq!(event_type, WALLET_CREATED);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], WALLET_CREATED);
    assert_eq!(event["source"], "/credenco/wallets");
    assert_eq!(event["subject"], format!("wallets/{key}"));
    assert_eq!(event["data"]["walletExternalKey"], key);
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    let generated = event["traceparent"].as_str().unwrap();
    assert!(
        business_wallet::events::trace::is_valid_traceparent(generated),
        "{generated}"
    );
}

/// A TCP relay in front of the broker that the test can cut, so that an outage disturbs no
/// other test.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(port: u16, target: String) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) cuts every relayed connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, task }
    }

    async fn stop(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}

/// `host:port` of the broker named by the set-up variable `name` (`default_port` when the URL
/// has none): where a [`Relay`] forwards to.
fn broker_address(name: &str, default_port: u16) -> String {
    let broker = url::Url::parse(&setup_env(name)).unwrap();
    format!(
        "{}:{}",
        broker.host_str().unwrap(),
        broker.port().unwrap_or(default_port)
    )
}

/// Delivers a first event (it opens the session, so that the outage also kills a live
/// connection), cuts `relay`, creates a wallet per name, and checks that two rounds of
/// attempts leave those deliveries PENDING. Returns the dispatcher and the relay's port.
async fn deliver_then_cut(app: &TestApp, relay: Relay, names: &[&str]) -> (Dispatcher, u16) {
    app.create_wallet("Before").await;
    let dispatcher = Dispatcher::new(&app.state);
    assert_eq!(dispatcher.run_once().await.unwrap().delivered, 1);

    let port = relay.stop().await;
    for name in names {
        app.create_wallet(name).await;
    }
    for round in 1..=2 {
        let outcome = dispatcher.run_once().await.unwrap();
        assert_eq!(outcome.retried, names.len(), "round {round}: {outcome:?}");
        let now = states(app).await;
        assert_eq!(now[1..], vec![("PENDING".to_string(), round); names.len()], "{now:?}");
        app.make_deliveries_due().await;
    }
    (dispatcher, port)
}

async fn an_outage_is_retried_and_nothing_is_lost(backend: Backend) {
    let target = broker_address("BUSINESS_WALLET_TEST_STOMP_URL", 61613);
    let relay = Relay::start(0, target.clone()).await;
    let app = spawn(backend, &format!("stomp://127.0.0.1:{}", relay.port)).await;
    let queue = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel(&app, &format!("queue://{queue}")).await;
    let (dispatcher, port) = deliver_then_cut(&app, relay, &["Initech", "Umbrella", "Hooli"]).await;

    let _relay = Relay::start(port, target).await;
    let outcome = dispatcher.run_once().await.unwrap();
    assert_eq!(outcome.delivered, 3, "{outcome:?}");
    assert_eq!(
        states(&app).await,
        vec![
            ("DELIVERED".to_string(), 1),
            ("DELIVERED".to_string(), 3),
            ("DELIVERED".to_string(), 3),
            ("DELIVERED".to_string(), 3)
        ]
    );
    let lines = receive(&queue, 5, None).await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        assert_eq!(text_message(line).0, WALLET_CREATED);
    }
}

async fn a_bad_destination_is_refused_on_save(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_STOMP_URL")).await;
    for destination in ["queue://", "jms://x", "has space"] {
        let response = app
            .post(
                "/api/integration-channels",
                Some(&app.admin_token),
                &json!({"name": "bad", "type": "JMS", "eventTypeFilters": [WALLET_CREATED], "jms": {"destination": destination}}),
            )
            .await;
        assert_eq!(response.status(), 400, "{destination}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].to_string().contains("jms.destination"), "{body}");
    }
}

/// An on-premise instance with JMS channels on, sending over AMQP 1.0 to RabbitMQ at `url`.
async fn spawn_amqp(backend: Backend, url: &str) -> TestApp {
    common::spawn_app_with(backend, {
        let url = url.to_string();
        let url = url.clone();
        move |settings| {
            let jms = &mut settings.integration.channels.jms;
            jms.enabled = true;
            jms.protocol = business_wallet::config::JmsProtocol::Amqp;
            jms.url = url;
            jms.username = Some("guest".into());
            jms.password = Some("guest".into());
            jms.timeout_ms = 5_000;
            // RabbitMQ 3 addresses queues as /queue/NAME.
            jms.amqp_queue_prefix = "/queue/".into();
        }
    })
    .await
}

/// Receives up to `count` messages from a RabbitMQ queue with python-qpid-proton; returns one
/// JSON object per message.
async fn receive_amqp(queue: &str, count: usize) -> Vec<Value> {
    let mut receiver_url = url::Url::parse(&setup_env("BUSINESS_WALLET_TEST_AMQP_URL")).unwrap();
    receiver_url.set_username("guest").unwrap();
    receiver_url.set_password(Some("guest")).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jms/amqp_receive.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(receiver_url.as_str())
        .arg(format!("/queue/{queue}"))
        .arg(count.to_string())
        .arg("10")
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the AMQP receiver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn amqp_messages_carry_the_content_type_and_are_durable(backend: Backend) {
    let app = spawn_amqp(backend, &setup_env("BUSINESS_WALLET_TEST_AMQP_URL")).await;
    let queue = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel(&app, &format!("queue://{queue}")).await;
    let wallet = app.create_wallet("Acme").await;
    let key = wallet["walletExternalKey"].as_str().unwrap();
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, 1, "{outcome:?}");

    let messages = receive_amqp(&queue, 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let received = &messages[0];
    assert_eq!(received["content_type"], "application/cloudevents+json; charset=utf-8");
    assert_eq!(received["durable"], true);
    assert_eq!(received["properties"]["ce_type"], WALLET_CREATED);
    assert_eq!(received["annotations"]["x-opt-jms-msg-type"], 5);
    let event: Value = serde_json::from_str(received["body"].as_str().unwrap()).unwrap();
    assert_eq!(event["type"], WALLET_CREATED);
    assert_eq!(event["walletexternalkey"], key);
    assert_eq!(received["properties"]["ce_id"], event["id"]);
    // A request without a traceparent: the envelope carries the new one it was given.
    let traceparent = event["traceparent"].as_str().unwrap();
    assert!(
        business_wallet::events::trace::is_valid_traceparent(traceparent),
        "{traceparent}"
    );
}

async fn an_amqp_outage_is_retried_and_nothing_is_lost(backend: Backend) {
    let target = broker_address("BUSINESS_WALLET_TEST_AMQP_URL", 5672);
    let relay = Relay::start(0, target.clone()).await;
    let app = spawn_amqp(backend, &format!("amqp://127.0.0.1:{}", relay.port)).await;
    let queue = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel(&app, &format!("queue://{queue}")).await;
    let (dispatcher, port) = deliver_then_cut(&app, relay, &["Initech", "Umbrella"]).await;

    let _relay = Relay::start(port, target).await;
    // Once the broker is back, everything is delivered. RabbitMQ 3.10 now and then leaves a
    // transfer on a newly opened link without a disposition (about one run in thirty, seen in
    // the attempts log as "no disposition ... within 5000 ms"); that attempt counts as
    // retryable and the next round delivers it, so allow a second round.
    for round in 1..=2 {
        let outcome = dispatcher.run_once().await.unwrap();
        if states(&app).await.iter().all(|(state, _)| state == "DELIVERED") {
            break;
        }
        assert!(round < 2, "{outcome:?} {:?}", last_errors(&app).await);
        app.make_deliveries_due().await;
    }
    // Nothing is lost: each of the three events arrives (a send that timed out may have
    // reached the queue too, so a duplicate is allowed, as at-least-once delivery permits).
    let messages = receive_amqp(&queue, 5).await;
    let ids: std::collections::BTreeSet<&str> = messages
        .iter()
        .map(|m| m["properties"]["ce_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{messages:?}");
}

async fn a_java_consumer_selects_on_the_cloudevents_type_property(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_STOMP_URL")).await;
    let queue = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel_with(
        &app,
        json!({"destination": format!("queue://{queue}"), "cloudEventsProperties": true}),
    )
    .await;
    let wallet = app.create_wallet("Acme").await;
    let key = wallet["walletExternalKey"].as_str().unwrap();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/wallets/{key}/identifiers")))
        .bearer_auth(&app.admin_token)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .json(&json!({"identifierType": "JWK", "displayName": "signing", "keyType": "Ed25519"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, 2, "{outcome:?}");

    // A real JMS selector on the CloudEvents property picks the identifier event.
    let names = [
        "cloudEvents_type",
        "cloudEvents_id",
        "cloudEvents_specversion",
        "cloudEvents_source",
        "cloudEvents_subject",
        "cloudEvents_walletexternalkey",
        "cloudEvents_traceparent",
        "cloudEvents_tracestate",
    ];
    let selector = format!("cloudEvents_type = '{IDENTIFIER_CREATED}' AND cloudEvents_walletexternalkey = '{key}'");
    let lines = receive_with_properties(&queue, 2, Some(&selector), &names).await;
    assert_eq!(lines.len(), names.len() + 1, "{lines:?}");
    let property = |name: &str| -> String {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("PROPERTY {name} ")))
            .unwrap_or_else(|| panic!("{name} in {lines:?}"))
            .to_string()
    };
    let (ce_type, event) = text_message(lines.last().unwrap());
    assert_eq!(ce_type, IDENTIFIER_CREATED, "the ce_ properties are still there");
    assert_eq!(property("cloudEvents_type"), IDENTIFIER_CREATED);
    assert_eq!(property("cloudEvents_id"), event["id"].as_str().unwrap());
    assert_eq!(property("cloudEvents_specversion"), "1.0");
    assert_eq!(property("cloudEvents_source"), "/credenco/wallets");
    assert_eq!(property("cloudEvents_subject"), event["subject"].as_str().unwrap());
    assert_eq!(property("cloudEvents_walletexternalkey"), key);
    // The trace context travels as properties too, and in the envelope as before.
    assert_eq!(property("cloudEvents_traceparent"), TRACEPARENT);
    assert_eq!(property("cloudEvents_tracestate"), "congo=t61rcWkgMzE");
    assert_eq!(event["traceparent"], TRACEPARENT);

    // The wallet event is left for a consumer that selects the other type.
    let rest = receive(&queue, 2, Some(&format!("cloudEvents_type = '{WALLET_CREATED}'"))).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(text_message(&rest[0]).0, WALLET_CREATED);
}

async fn amqp_messages_carry_every_attribute_as_a_cloudevents_property(backend: Backend) {
    let app = spawn_amqp(backend, &setup_env("BUSINESS_WALLET_TEST_AMQP_URL")).await;
    let with = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    let without = format!("bw.test.{}", uuid::Uuid::new_v4().simple());
    create_channel_with(
        &app,
        json!({"destination": format!("queue://{with}"), "cloudEventsProperties": true}),
    )
    .await;
    create_channel_with(
        &app,
        json!({"destination": format!("queue://{without}"), "cloudEventsProperties": false}),
    )
    .await;
    let response = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .json(&json!({"displayName": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let key = response.json::<Value>().await.unwrap()["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, 2, "{outcome:?}");

    let messages = receive_amqp(&with, 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let received = &messages[0];
    let properties = &received["properties"];
    let event: Value = serde_json::from_str(received["body"].as_str().unwrap()).unwrap();
    assert_eq!(properties["cloudEvents:type"], WALLET_CREATED);
    assert_eq!(properties["cloudEvents:specversion"], "1.0");
    assert_eq!(properties["cloudEvents:id"], event["id"]);
    assert_eq!(properties["cloudEvents:source"], "/credenco/wallets");
    assert_eq!(properties["cloudEvents:time"], event["time"]);
    assert_eq!(properties["cloudEvents:walletexternalkey"], key.as_str());
    assert_eq!(properties["cloudEvents:correlationid"], event["correlationid"]);
    assert_eq!(properties["cloudEvents:traceparent"], TRACEPARENT);
    assert_eq!(properties["cloudEvents:tracestate"], "congo=t61rcWkgMzE");
    assert_eq!(properties["ce_type"], WALLET_CREATED);
    // The body and the message are structured mode, as without the option.
    assert_eq!(received["content_type"], "application/cloudevents+json; charset=utf-8");
    assert_eq!(event["type"], WALLET_CREATED);
    assert_eq!(event["traceparent"], TRACEPARENT);

    // A channel without the option gets the properties it always had, and no others.
    let plain = receive_amqp(&without, 1).await;
    assert_eq!(plain.len(), 1, "{plain:?}");
    let mut names: Vec<&String> = plain[0]["properties"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["ce_id", "ce_type", "ce_walletexternalkey"]);
}

async fn a_bad_properties_option_is_refused_on_save(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_STOMP_URL")).await;
    for option in [json!("yes"), json!(1), json!(["type"])] {
        let response = app
            .post(
                "/api/integration-channels",
                Some(&app.admin_token),
                &json!({"name": "bad", "type": "JMS", "eventTypeFilters": [WALLET_CREATED], "jms": {"destination": "q", "cloudEventsProperties": option}}),
            )
            .await;
        assert_eq!(response.status(), 400, "{option}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 400);
        assert!(
            body["message"].to_string().contains("jms.cloudEventsProperties"),
            "{body}"
        );
    }
}
