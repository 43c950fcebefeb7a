//! Kafka channel against a real Kafka-protocol broker (`scripts/setup/brokers.sh` starts one
//! and exports `BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP`, `BUSINESS_WALLET_TEST_KAFKA_TOPIC` and `BUSINESS_WALLET_TEST_TANSU`): records
//! are read back with a librdkafka consumer, and an outage is survived without losing events.
#![cfg(feature = "kafka")]

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use business_wallet::dispatch::Dispatcher;
use common::{setup_env, Backend, TestApp};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

both_backend_kinds!(
    records_are_structured_cloudevents_keyed_by_wallet,
    an_outage_is_retried_and_nothing_is_lost,
    a_record_the_cluster_refuses_fails_at_once,
    a_bad_topic_is_refused_on_save,
    binary_records_are_read_by_the_cloudevents_sdk,
    a_bad_content_mode_is_refused_on_save
);

/// An on-premise instance with Kafka channels on, publishing to `bootstrap`.
async fn spawn(backend: Backend, bootstrap: &str) -> TestApp {
    spawn_with(backend, bootstrap, &[]).await
}

/// Like [`spawn`], with further producer properties.
async fn spawn_with(backend: Backend, bootstrap: &str, properties: &[(&str, &str)]) -> TestApp {
    let bootstrap = bootstrap.to_string();
    let properties: Vec<(String, String)> = properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    common::spawn_app_with(backend, move |settings| {
        let kafka = &mut settings.integration.channels.kafka;
        kafka.enabled = true;
        kafka.bootstrap_servers = bootstrap;
        kafka.message_timeout_ms = 2_000;
        kafka.properties.extend(properties);
    })
    .await
}

/// Creates a platform Kafka channel on `topic` through the API.
async fn create_channel(app: &TestApp, topic: &str) {
    create_channel_with(app, json!({ "topic": topic })).await;
}

/// Creates a platform Kafka channel with the type block `block` through the API.
async fn create_channel_with(app: &TestApp, block: Value) {
    let response = app
        .post(
            "/api/integration-channels",
            Some(&app.admin_token),
            &json!({
                "name": format!("kafka {}", uuid::Uuid::new_v4()),
                "type": "KAFKA",
                "eventTypeFilters": [WALLET_CREATED],
                "kafka": block
            }),
        )
        .await;
    let status = response.status();
    assert_eq!(status, 201, "{}", response.text().await.unwrap());
}

/// Runs the dispatcher until nothing is due.
async fn drain(app: &TestApp) {
    let dispatcher = Dispatcher::new(&app.state);
    for _ in 0..20 {
        if dispatcher.run_once().await.unwrap().claimed == 0 {
            return;
        }
    }
}

async fn states(app: &TestApp) -> Vec<(String, i64)> {
    let sql = "SELECT state, attempts FROM integration_delivery ORDER BY id";
    match &app.state.db {
        business_wallet::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        business_wallet::store::Db::Sqlite { writer, .. } => sqlx::query_as(sql).fetch_all(writer).await.unwrap(),
    }
}

/// Reads `topic` from the start, by partition assignment, until a record keyed by each of
/// `keys` was seen; returns (content-type header, value) by key.
fn consume(bootstrap: &str, topic: &str, keys: &[String]) -> HashMap<String, (String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bw-test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has partitions");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut found = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while found.len() < keys.len() && Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = result.unwrap();
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        if !keys.contains(&key) {
            continue;
        }
        let content_type = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "content-type"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        found.insert(key, (content_type, message.payload().unwrap_or_default().to_vec()));
    }
    found
}

async fn assert_valid_against_served_schema(app: &TestApp, dataschema: &str, data: &Value) {
    let path = dataschema.strip_prefix(&app.address).expect("dataschema served here");
    let schema: Value = app.get(path, None).await.json().await.unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator.iter_errors(data).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{data} against {path}: {errors:?}");
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn records_are_structured_cloudevents_keyed_by_wallet(backend: Backend) {
    let bootstrap = setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP");
    let topic = setup_env("BUSINESS_WALLET_TEST_KAFKA_TOPIC");
    let app = spawn(backend, &bootstrap).await;
    create_channel(&app, &topic).await;
    let mut keys = Vec::new();
    // Acme's request names its trace context; Globex's has none and gets a new one.
    let response = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .json(&serde_json::json!({"displayName": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let acme: Value = response.json().await.unwrap();
    keys.push(acme["walletExternalKey"].as_str().unwrap().to_string());
    let globex = app.create_wallet("Globex").await;
    keys.push(globex["walletExternalKey"].as_str().unwrap().to_string());
    drain(&app).await;
    assert_eq!(states(&app).await, vec![("DELIVERED".to_string(), 1); 2]);

    let records = tokio::task::spawn_blocking({
        let keys = keys.clone();
        move || consume(&bootstrap, &topic, &keys)
    })
    .await
    .unwrap();
    for key in &keys {
        let (content_type, value) = records.get(key).unwrap_or_else(|| panic!("no record keyed {key}"));
        assert_eq!(content_type, "application/cloudevents+json; charset=UTF-8");
        let event: Value = serde_json::from_slice(value).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], WALLET_CREATED);
        assert_eq!(event["source"], "/credenco/wallets");
        assert_eq!(event["subject"], format!("wallets/{key}"));
        assert_eq!(event["walletexternalkey"], key.as_str());
        assert_eq!(event["datacontenttype"], "application/json");
        assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
        assert_eq!(event["data"]["walletExternalKey"], key.as_str());
        // The distributed-tracing extension, as attributes of the structured envelope.
        let traceparent = event["traceparent"].as_str().unwrap();
        if key == &keys[0] {
            assert_eq!(traceparent, TRACEPARENT);
            assert_eq!(event["tracestate"], "congo=t61rcWkgMzE");
        } else {
            assert!(
                business_wallet::events::trace::is_valid_traceparent(traceparent),
                "{traceparent}"
            );
            assert!(event.get("tracestate").is_none(), "{event}");
        }
        assert_valid_against_served_schema(&app, event["dataschema"].as_str().unwrap(), &event["data"]).await;
    }
}

/// A broker of this test's own, so that stopping it disturbs no other test.
struct OwnBroker {
    port: u16,
    child: Option<Child>,
}

impl OwnBroker {
    fn start(port: u16) -> OwnBroker {
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu answers on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let created = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
            .args(["topic", "create", "--broker", &listener, "--partitions", "1", "outage"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "topic created");
        OwnBroker {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn an_outage_is_retried_and_nothing_is_lost(backend: Backend) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut broker = OwnBroker::start(port);
    let app = spawn(backend, &bootstrap).await;
    create_channel(&app, "outage").await;
    broker.stop();

    let mut keys = Vec::new();
    for name in ["Initech", "Umbrella", "Hooli"] {
        let wallet = app.create_wallet(name).await;
        keys.push(wallet["walletExternalKey"].as_str().unwrap().to_string());
    }
    let dispatcher = Dispatcher::new(&app.state);
    for round in 1..=2 {
        let outcome = dispatcher.run_once().await.unwrap();
        assert_eq!(outcome.retried, 3, "round {round}: {outcome:?}");
        assert_eq!(states(&app).await, vec![("PENDING".to_string(), round); 3]);
        app.make_deliveries_due().await;
    }

    let broker = OwnBroker::start(broker.port);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        app.make_deliveries_due().await;
        dispatcher.run_once().await.unwrap();
        let now = states(&app).await;
        if now.iter().all(|(state, _)| state == "DELIVERED") {
            break;
        }
        assert!(
            now.iter().all(|(state, _)| state == "PENDING" || state == "DELIVERED"),
            "{now:?}"
        );
        assert!(Instant::now() < deadline, "still not delivered: {now:?}");
    }
    let records = tokio::task::spawn_blocking({
        let keys = keys.clone();
        move || consume(&bootstrap, "outage", &keys)
    })
    .await
    .unwrap();
    for key in &keys {
        assert!(records.contains_key(key), "the event of wallet {key} arrived");
    }
    drop(broker);
}

async fn a_record_the_cluster_refuses_fails_at_once(backend: Backend) {
    // The smallest record size librdkafka allows, passed through `properties`; the event of a
    // wallet with a long name and address is larger.
    let app = spawn_with(
        backend,
        &setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP"),
        &[("message.max.bytes", "1000")],
    )
    .await;
    create_channel(&app, &setup_env("BUSINESS_WALLET_TEST_KAFKA_TOPIC")).await;
    let response = app
        .post(
            "/api/v1/wallets",
            Some(&app.admin_token),
            &json!({
                "displayName": "x".repeat(200),
                "address": {"street": "s".repeat(200), "city": "c".repeat(100), "country": "n".repeat(100)}
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.failed, 1, "{outcome:?}");
    assert_eq!(states(&app).await, vec![("FAILED".to_string(), 1)]);
}

async fn a_bad_topic_is_refused_on_save(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP")).await;
    for topic in ["has space", "..", ""] {
        let response = app
            .post(
                "/api/integration-channels",
                Some(&app.admin_token),
                &json!({"name": "bad", "type": "KAFKA", "eventTypeFilters": [WALLET_CREATED], "kafka": {"topic": topic}}),
            )
            .await;
        assert_eq!(response.status(), 400, "{topic}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].to_string().contains("kafka.topic"), "{body}");
    }
}

/// A new topic of one partition at the set-up broker, so that a test reads only its own records.
fn new_topic(bootstrap: &str) -> String {
    let topic = format!("bw-test-{}", uuid::Uuid::new_v4().simple());
    let created = Command::new(setup_env("BUSINESS_WALLET_TEST_TANSU"))
        .args(["topic", "create", "--broker", &format!("tcp://{bootstrap}")])
        .args(["--partitions", "1", &topic])
        .stdout(Stdio::null())
        .status()
        .expect("tansu runs");
    assert!(created.success(), "topic {topic} created");
    topic
}

/// Reads up to `count` records of `topic` with kafka-python, each turned into a CloudEvent by
/// the CloudEvents SDK's `cloudevents.kafka.from_binary` (`tests/kafka/binary_receive.py`);
/// returns one JSON object per record.
async fn receive_binary(bootstrap: &str, topic: &str, count: usize) -> Vec<Value> {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/binary_receive.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(bootstrap)
        .arg(topic)
        .arg(count.to_string())
        .arg("10")
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the CloudEvents SDK consumer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn binary_records_are_read_by_the_cloudevents_sdk(backend: Backend) {
    let bootstrap = setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP");
    let binary_topic = new_topic(&bootstrap);
    let structured_topic = new_topic(&bootstrap);
    let app = spawn(backend, &bootstrap).await;
    create_channel_with(&app, json!({"topic": binary_topic, "contentMode": "BINARY"})).await;
    // The option spelled out as the default, next to it: the structured envelope as before,
    // with the partitionkey extension.
    create_channel_with(&app, json!({"topic": structured_topic, "contentMode": "STRUCTURED"})).await;
    let response = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("X-Correlation-Id", "binary-mode-test")
        .json(&json!({"displayName": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let acme = response.json::<Value>().await.unwrap()["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = app.create_wallet("Globex").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    drain(&app).await;
    assert_eq!(states(&app).await, vec![("DELIVERED".to_string(), 1); 4]);

    let records = receive_binary(&bootstrap, &binary_topic, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let mut keys = Vec::new();
    for record in &records {
        let key = record["key"].as_str().unwrap().to_string();
        let event = &record["attributes"];
        // The SDK maps the record key to `partitionkey`; the header says the same.
        assert_eq!(event["partitionkey"], key.as_str(), "{record}");
        assert_eq!(event["walletexternalkey"], key.as_str());
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], WALLET_CREATED);
        assert_eq!(event["source"], "/credenco/wallets");
        assert_eq!(event["subject"], format!("wallets/{key}"));
        assert_eq!(event["datacontenttype"], "application/json");
        assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
        // The value is the data alone, valid against the schema the event names.
        assert_eq!(record["data"]["walletExternalKey"], key.as_str());
        assert!(record["data"].get("specversion").is_none(), "{record}");
        assert_valid_against_served_schema(&app, event["dataschema"].as_str().unwrap(), &record["data"]).await;
        let headers: Vec<&str> = record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(
            headers.contains(&"content-type") && headers.contains(&"ce_partitionkey"),
            "{headers:?}"
        );
        assert!(!headers.contains(&"ce_datacontenttype"), "{headers:?}");
        // The trace context travels as ce_ headers too.
        if key == acme {
            assert_eq!(event["traceparent"], TRACEPARENT);
            assert_eq!(event["tracestate"], "congo=t61rcWkgMzE");
            assert_eq!(event["correlationid"], "binary-mode-test");
        } else {
            let traceparent = event["traceparent"].as_str().unwrap();
            assert!(
                business_wallet::events::trace::is_valid_traceparent(traceparent),
                "{traceparent}"
            );
            assert!(event.get("tracestate").is_none(), "{event}");
        }
        keys.push(key);
    }
    keys.sort();
    let mut expected = vec![acme.clone(), globex.clone()];
    expected.sort();
    assert_eq!(keys, expected);

    let structured = tokio::task::spawn_blocking({
        let keys = keys.clone();
        move || consume(&bootstrap, &structured_topic, &keys)
    })
    .await
    .unwrap();
    for key in &keys {
        let (content_type, value) = structured.get(key).unwrap_or_else(|| panic!("no record keyed {key}"));
        assert_eq!(content_type, "application/cloudevents+json; charset=UTF-8");
        let event: Value = serde_json::from_slice(value).unwrap();
        assert_eq!(event["partitionkey"], key.as_str());
        assert_eq!(event["walletexternalkey"], key.as_str());
        assert_eq!(event["data"]["walletExternalKey"], key.as_str());
    }
}

async fn a_bad_content_mode_is_refused_on_save(backend: Backend) {
    let app = spawn(backend, &setup_env("BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP")).await;
    for mode in [json!("binary"), json!("AVRO"), json!(true)] {
        let response = app
            .post(
                "/api/integration-channels",
                Some(&app.admin_token),
                &json!({"name": "bad", "type": "KAFKA", "eventTypeFilters": [WALLET_CREATED], "kafka": {"topic": "t", "contentMode": mode}}),
            )
            .await;
        assert_eq!(response.status(), 400, "{mode}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 400);
        assert!(body["message"].to_string().contains("kafka.contentMode"), "{body}");
    }
    let response = app.get("/api/integration-channels", Some(&app.admin_token)).await;
    assert_eq!(
        response.json::<Value>().await.unwrap().as_array().map(Vec::len),
        Some(0)
    );
}
