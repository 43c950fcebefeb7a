//! The bridge end to end: a real NATS server with JetStream (`NATS_URL`, by default
//! `nats://127.0.0.1:4222`; the README's test command starts one), the embedded wallet on a
//! fresh SQLite database, wallets created through its HTTP API, and a JetStream consumer that
//! must receive one structured CloudEvent per wallet.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use business_wallet::channels::{Channel, ChannelConfig, ChannelSecrets, OutboundMessage};
use business_wallet::events::WALLET_CREATED_V1;
use business_wallet::Settings;
use futures_util::StreamExt as _;
use nats_bridge::{NatsChannel, NATS, STRUCTURED_CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn jetstream() -> jetstream::Context {
    let url = nats_url();
    let client = async_nats::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("no NATS server at {url} ({e}): run the README's test command, or set NATS_URL"));
    jetstream::new(client)
}

/// A stream of its own for one test, on a subject nobody else uses.
async fn fresh_stream(js: &jetstream::Context) -> (stream::Stream, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let subject = format!("bwtest.{id}.events");
    let stream = js
        .create_stream(stream::Config {
            name: format!("BWTEST_{id}"),
            subjects: vec![subject.clone()],
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .expect("create a JetStream stream (is JetStream enabled on the server?)");
    (stream, subject)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_created_through_the_embedded_api_arrive_as_structured_cloudevents() {
    let js = jetstream().await;
    let (stream, subject) = fresh_stream(&js).await;

    // The application: the wallet embedded, its API on our listener, its dispatcher running.
    let dir = tempfile_dir();
    let mut settings = Settings {
        data_dir: dir.clone(),
        ..Settings::default()
    };
    settings.database.url = Some(format!("sqlite://{}", dir.join("bridge.db").display()));
    settings.integration.dispatch.poll_interval_ms = 200;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    settings.public_base_url = Some(base.clone());
    let token = business_wallet::auth::mint_local_token(
        &settings,
        "operator",
        &["GLOBAL_WALLET_CRUD".into()],
        None,
        Duration::from_secs(600),
    )
    .unwrap();
    let wallet = nats_bridge::build(settings, &nats_url()).await.unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(nats_bridge::run(wallet, listener, shutdown.clone()));
    let http = reqwest::Client::new();

    // The type is on offer, and the adapter validates its block.
    let types: Value = http
        .get(format!("{base}/api/public/channel-types"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(types.to_string().contains("\"NATS\""), "{types}");
    let bad = http
        .post(format!("{base}/api/integration-channels"))
        .bearer_auth(&token)
        .json(&json!({"name": "bad", "type": NATS, "eventTypeFilters": [WALLET_CREATED], "config": {"subject": "wallet events.*"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // A platform channel: it exists before the wallets, so it receives their creation.
    let created = http
        .post(format!("{base}/api/integration-channels"))
        .bearer_auth(&token)
        .json(&json!({"name": "nats", "type": NATS, "eventTypeFilters": [WALLET_CREATED], "config": {"subject": subject}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    let mut wallets = BTreeSet::new();
    for name in ["Acme Logistics B.V.", "Globex Shipping", "Initech Freight"] {
        let response = http
            .post(format!("{base}/api/v1/wallets"))
            .bearer_auth(&token)
            .json(&json!({"displayName": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        wallets.insert(body["walletExternalKey"].as_str().unwrap().to_string());
    }

    let consumer = stream.create_consumer(consumer::pull::Config::default()).await.unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut received = BTreeSet::new();
    while received.len() < wallets.len() {
        let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("every wallet's event arrives within 20 s")
            .expect("the consumer keeps going")
            .unwrap();
        let headers = message.headers.clone().expect("the message has headers");
        assert_eq!(
            headers.get("Content-Type").map(|v| v.as_str()),
            Some(STRUCTURED_CONTENT_TYPE)
        );
        let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(envelope["specversion"], "1.0");
        assert_eq!(envelope["type"], WALLET_CREATED);
        assert_eq!(envelope["source"], "/credenco/wallets");
        assert_eq!(envelope["datacontenttype"], "application/json");
        assert_eq!(
            headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str()),
            envelope["id"].as_str()
        );
        let key = envelope["walletexternalkey"].as_str().unwrap().to_string();
        assert_eq!(envelope["subject"], format!("wallets/{key}"));
        assert_eq!(envelope["data"]["walletExternalKey"], key.as_str());
        assert!(
            envelope["dataschema"].as_str().unwrap().starts_with(&base),
            "{envelope}"
        );
        message.ack().await.unwrap();
        received.insert(key);
    }
    assert_eq!(received, wallets);

    // The deliveries log agrees, once the dispatcher has recorded the acknowledgements (the
    // consumer may see a message before its outcome is stored).
    let mut delivered = 0;
    for _ in 0..100 {
        let log: Value = http
            .get(format!("{base}/api/integration-deliveries?state=DELIVERED"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        delivered = log["items"].as_array().unwrap().len();
        if delivered == wallets.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, wallets.len());

    shutdown.cancel();
    running.await.unwrap().unwrap();
    js.delete_stream(stream.cached_info().config.name.clone()).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn no_stream_is_retryable_and_a_bad_subject_rejected() {
    let channel = NatsChannel::connect(&nats_url(), Duration::from_secs(2)).await.unwrap();
    let envelope = WALLET_CREATED_V1.sample_envelope("http://wallet.example");
    let body = envelope.data.to_string().into_bytes();
    let message = OutboundMessage {
        envelope: &envelope,
        body: &body,
        signing_secrets: Vec::new(),
        attempt: 1,
    };
    let config = |subject: &str| ChannelConfig {
        channel_external_key: "c".into(),
        config: json!({ "subject": subject }),
        secrets: ChannelSecrets::default(),
    };

    // Nothing listens on this subject: no responders, so try again later.
    let unheard = format!("bwtest.{}.nobody", uuid::Uuid::new_v4().simple());
    let attempt = channel.deliver(&message, &config(&unheard)).await;
    assert_eq!(attempt.outcome.name(), "RETRYABLE", "{:?}", attempt.outcome);

    // A subject one cannot publish to never works.
    let attempt = channel.deliver(&message, &config("wallet.>")).await;
    assert_eq!(attempt.outcome.name(), "REJECTED", "{:?}", attempt.outcome);
    assert!(channel.validate(&json!({"subject": "wallet.>"})).is_err());
    assert!(channel.validate(&json!({})).is_err());
    assert!(channel.validate(&json!({"subject": "wallet.events"})).is_ok());

    // With a stream on the subject, the same message is delivered.
    let js = jetstream().await;
    let (stream, subject) = fresh_stream(&js).await;
    let attempt = channel.deliver(&message, &config(&subject)).await;
    assert_eq!(attempt.outcome.name(), "DELIVERED", "{:?}", attempt.outcome);
    js.delete_stream(stream.cached_info().config.name.clone()).await.ok();
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nats-bridge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
