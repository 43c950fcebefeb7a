//! Pull channels: a receiver written with nothing but an HTTP client fetches its events in
//! batches and commits them; what it does not commit comes back after the lease, and only that.
//! The fetches and commits are in the deliveries log and the metrics; the push dispatcher,
//! running, leaves the deliveries alone. Who may fetch: the channel's secret or a token with
//! the deliveries authority; bad input is a 400 in the documented shape.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::both_backend_kinds;
use crate::both_backends;
use crate::common::{spawn_app_with, Backend, TestApp};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";
/// Long enough for a batch to be committed within its lease on a busy machine, short enough
/// to wait for.
const LEASE_SECONDS: u64 = 3;

/// Creates a PULL channel (platform when `wallet` is `None`) and returns its key and secret.
async fn pull_channel(app: &TestApp, wallet: Option<&str>, name: &str, lease_seconds: u64) -> (String, String) {
    let path = match wallet {
        Some(w) => format!("/api/wallets/{w}/integration-channels"),
        None => "/api/integration-channels".to_string(),
    };
    let body = json!({
        "name": name, "type": "PULL", "eventTypeFilters": [WALLET_CREATED, IDENTIFIER_CREATED],
        "pull": {"leaseSeconds": lease_seconds}
    });
    let (status, channel) = app.call(reqwest::Method::POST, &path, Some(&body)).await;
    assert_eq!(status, 201, "{channel}");
    assert_eq!(channel["type"], "PULL");
    assert_eq!(channel["pull"], json!({"leaseSeconds": lease_seconds}), "{channel}");
    (
        channel["channelExternalKey"].as_str().unwrap().to_string(),
        channel["hmacSecret"].as_str().unwrap().to_string(),
    )
}

/// A pull receiver: nothing but an HTTP client, the events path and a bearer token.
struct Receiver {
    client: reqwest::Client,
    events: String,
    token: String,
}

impl Receiver {
    fn new(app: &TestApp, events: String, token: &str) -> Receiver {
        Receiver {
            client: reqwest::Client::new(),
            events: app.url(&events),
            token: token.to_string(),
        }
    }

    /// One fetch: the status and the answer.
    async fn fetch(&self, cursor: Option<&str>, limit: u32) -> (u16, Value) {
        let mut request = self
            .client
            .get(&self.events)
            .bearer_auth(&self.token)
            .query(&[("limit", limit.to_string())]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// A fetch that must succeed: the batch's event ids and its cursor.
    async fn batch(&self, cursor: Option<&str>, limit: u32) -> (Vec<String>, Option<String>) {
        let (status, batch) = self.fetch(cursor, limit).await;
        assert_eq!(status, 200, "{batch}");
        let ids = batch["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["specversion"], "1.0", "structured-mode CloudEvents: {e}");
                assert_eq!(e["source"], "/credenco/wallets");
                e["id"].as_str().unwrap().to_string()
            })
            .collect();
        (ids, batch["cursor"].as_str().map(str::to_string))
    }

    async fn commit(&self, cursor: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/commit", self.events))
            .bearer_auth(&self.token)
            .json(&json!({ "cursor": cursor }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

async fn create_wallets(app: &TestApp, count: usize) -> Vec<String> {
    stream::iter(0..count)
        .map(|i| async move {
            let wallet = app.create_wallet(&format!("Pulled {i}")).await;
            wallet["walletExternalKey"].as_str().unwrap().to_string()
        })
        .buffer_unordered(8)
        .collect()
        .await
}

async fn event_ids(app: &TestApp) -> BTreeSet<String> {
    app.texts(&format!(
        "SELECT event_id FROM integration_event WHERE event_type = '{WALLET_CREATED}'"
    ))
    .await
    .into_iter()
    .map(Option::unwrap)
    .collect()
}

/// 1,000 events in batches of 100, each committed, except one batch whose receiver "crashes"
/// before its commit: after the lease, a fetch from the last committed cursor gets exactly that
/// batch again, and the rest follows; every event is delivered, none twice after its commit.
/// The dispatcher runs all along and never touches the pull deliveries.
async fn a_receiver_gets_exactly_the_uncommitted_events_again(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.server.dispatcher_enabled = true;
        s.integration.channels.pull.enabled = true;
    })
    .await;
    let (key, secret) = pull_channel(&app, None, "warehouse", LEASE_SECONDS).await;
    let wallets = create_wallets(&app, 1000).await;
    assert_eq!(wallets.len(), 1000);
    let published = event_ids(&app).await;
    assert_eq!(published.len(), 1000);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery WHERE state = 'PENDING'")
            .await,
        1000,
        "the dispatcher claims no pull delivery, and hands none to itself at publish time"
    );

    let receiver = Receiver::new(&app, format!("/api/integration-channels/{key}/events"), &secret);
    let mut received: Vec<String> = Vec::new();
    let mut committed: Option<String> = None;
    let mut crashed: Option<Vec<String>> = None;
    let mut batches = 0;
    loop {
        let (ids, cursor) = receiver.batch(committed.as_deref(), 100).await;
        if ids.is_empty() {
            assert_eq!(cursor, committed, "an empty batch gives the cursor back");
            break;
        }
        batches += 1;
        let cursor = cursor.expect("a batch has a cursor");
        if batches == 4 {
            // The receiver dies before it commits: its in-memory cursor is lost.
            // Before the lease ends, the crashed batch is not offered to anyone: a fetch gets
            // the next events (and is lost in the crash too, never committed).
            let (early, _) = receiver.batch(committed.as_deref(), 100).await;
            assert_eq!(early.len(), 100);
            assert!(
                early.iter().all(|id| !ids.contains(id)),
                "leased events are not handed out twice"
            );
            crashed = Some(ids);
            tokio::time::sleep(Duration::from_millis(LEASE_SECONDS * 1000 + 500)).await;
            continue;
        }
        if batches == 5 {
            assert_eq!(
                Some(&ids),
                crashed.as_ref(),
                "the restarted receiver, from its last committed cursor, gets exactly the uncommitted batch again"
            );
        }
        received.extend(ids.iter().cloned());
        let (status, report) = receiver.commit(&cursor).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["committed"], ids.len(), "{report}");
        committed = Some(cursor);
    }
    assert_eq!(batches, 11, "ten batches, and the crashed one twice");
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "no event twice once its batch was committed"
    );
    assert_eq!(
        received.iter().cloned().collect::<BTreeSet<_>>(),
        published,
        "nothing lost"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery WHERE state = 'DELIVERED'")
            .await,
        1000
    );

    // The deliveries log shows a crashed event's fetches and its commit like push attempts.
    let crashed_event = &crashed.unwrap()[0];
    let (status, page) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries?eventId={crashed_event}&state=all"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let item = &page["items"][0];
    assert_eq!(item["state"], "DELIVERED", "{item}");
    assert_eq!(item["channelType"], "PULL", "{item}");
    let delivery = item["deliveryExternalKey"].as_str().unwrap();
    let (status, detail) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries/{delivery}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let attempts = detail["attempts"].as_array().unwrap();
    let methods: Vec<(&str, &str)> = attempts
        .iter()
        .map(|a| (a["request"]["method"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        methods,
        [("GET", "RETRYABLE"), ("GET", "RETRYABLE"), ("POST", "DELIVERED")],
        "fetched, fetched again after the lease, committed: {detail}"
    );
    assert!(
        attempts[0]["request"]["url"]
            .as_str()
            .unwrap()
            .contains("/events?limit=100"),
        "{detail}"
    );
    assert!(!detail.to_string().contains(&secret), "the secret is not logged");

    // The metrics count the commits as delivered attempts of the pull kind.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("business_wallet_delivery_attempts_total")
                && l.contains("channel_type=\"PULL\"")
                && l.contains("outcome=\"DELIVERED\"")),
        "{metrics}"
    );
}

/// The error answers: the documented shape, never a 500.
fn assert_error(status: u16, body: &Value, expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(needle),
        "`{needle}` in {body}"
    );
}

/// Who may fetch and commit, and what bad input gets.
async fn tokens_authorities_and_bad_input(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.channels.pull.enabled = true).await;
    let wallet = app.create_wallet("Pull access").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let (key, secret) = pull_channel(&app, Some(&w), "erp-pull", 30).await;
    let (other_key, other_secret) = pull_channel(&app, Some(&w), "other-pull", 30).await;
    let events = format!("/api/wallets/{w}/integration-channels/{key}/events");
    let identifier = app
        .post(
            &format!("/api/v1/wallets/{w}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "JWK", "displayName": "k"}),
        )
        .await;
    assert_eq!(identifier.status(), 201);

    // The channel's own secret; another channel's secret is a 401 that says nothing more.
    let (status, body) = Receiver::new(&app, events.clone(), &other_secret).fetch(None, 10).await;
    assert_error(status, &body, 401, "not a secret of this channel");
    let (status, body) = Receiver::new(&app, events.clone(), "whsec_guess").fetch(None, 10).await;
    assert_error(status, &body, 401, "not a secret of this channel");
    let (status, body) = Receiver::new(&app, events.clone(), "not-a-jwt").fetch(None, 10).await;
    assert_eq!(status, 401, "{body}");
    let response = app.client.get(app.url(&events)).send().await.unwrap();
    assert_eq!(response.status(), 401, "no token");

    // The integration authorities: deliveries CRUD on the wallet may, channel READ may not.
    let crud = app.token("ops", &["WALLET_INTEGRATION_DELIVERY_CRUD"], Some(&w));
    let (ids, cursor) = Receiver::new(&app, events.clone(), &crud).batch(None, 10).await;
    assert_eq!(
        ids.len(),
        1,
        "the wallet's identifier.created (the wallet.created came before the channel)"
    );
    let read = app.token("viewer", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&w));
    let (status, body) = Receiver::new(&app, events.clone(), &read).fetch(None, 10).await;
    assert_error(status, &body, 403, "WALLET_INTEGRATION_DELIVERY_CRUD");
    let other_wallet = app.create_wallet("Elsewhere").await;
    let elsewhere = app.token(
        "ops",
        &["WALLET_INTEGRATION_DELIVERY_CRUD"],
        other_wallet["walletExternalKey"].as_str(),
    );
    let (status, _) = Receiver::new(&app, events.clone(), &elsewhere).fetch(None, 10).await;
    assert_eq!(status, 403);

    // A commit with the secret acknowledges the batch the JWT fetched.
    let (status, report) = Receiver::new(&app, events.clone(), &secret)
        .commit(cursor.as_deref().unwrap())
        .await;
    assert_eq!((status, report["committed"].clone()), (200, json!(1)), "{report}");
    let (status, report) = Receiver::new(&app, events.clone(), &secret)
        .commit(cursor.as_deref().unwrap())
        .await;
    assert_eq!(
        (status, report["committed"].clone()),
        (200, json!(0)),
        "a second commit changes nothing"
    );
    // Another channel's cursor acknowledges nothing here.
    let other_events = format!("/api/wallets/{w}/integration-channels/{other_key}/events");
    let (other_ids, _) = Receiver::new(&app, other_events, &other_secret).batch(None, 10).await;
    assert_eq!(other_ids.len(), 1);

    // Bad input: 400 naming the parameter or field.
    let receiver = Receiver::new(&app, events.clone(), &secret);
    for (cursor, limit, needle) in [
        (Some("nonsense"), 10, "cursor"),
        (None, 0, "limit"),
        (None, 1001, "limit"),
    ] {
        let (status, body) = receiver.fetch(cursor, limit).await;
        assert_error(status, &body, 400, needle);
    }
    let response = app
        .client
        .get(app.url(&format!("{events}?limit=ten")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body) = receiver.commit("nonsense").await;
    assert_error(status, &body, 400, "cursor");
    let response = app
        .client
        .post(app.url(&format!("{events}/commit")))
        .bearer_auth(&secret)
        .json(&json!({"cursor": cursor, "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "unknown fields are refused");
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{w}/integration-channels/{}/events", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_error(status, &body, 404, "does not exist");

    // Only PULL channels are fetched; a disabled one says so.
    let (status, webhook) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/wallets/{w}/integration-channels"),
            Some(
                &json!({"name": "hook", "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED],
                         "webhook": {"url": "https://example.com/hook"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{webhook}");
    let hook = webhook["channelExternalKey"].as_str().unwrap();
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{w}/integration-channels/{hook}/events"),
            None,
        )
        .await;
    assert_error(status, &body, 404, "only PULL channels");
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/wallets/{w}/integration-channels/{key}"),
            Some(&json!({"name": "erp-pull", "type": "PULL", "enabled": false,
                         "eventTypeFilters": [WALLET_CREATED], "pull": {}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = receiver.fetch(None, 10).await;
    assert_error(status, &body, 409, "disabled");

    // The block is checked on save.
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(
                &json!({"name": "bad", "type": "PULL", "eventTypeFilters": [WALLET_CREATED],
                         "pull": {"leaseSeconds": 0}}),
            ),
        )
        .await;
    assert_error(status, &body, 400, "pull.leaseSeconds");
}

both_backend_kinds!(a_receiver_gets_exactly_the_uncommitted_events_again);
both_backend_kinds!(tokens_authorities_and_bad_input);

/// Off by default: the type is not offered, and creating one says how to switch it on.
async fn pull_channels_are_off_unless_switched_on(app: TestApp) {
    let (status, types) = app.call(reqwest::Method::GET, "/api/public/channel-types", None).await;
    assert_eq!(status, 200);
    assert!(!types.to_string().contains("PULL"), "{types}");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({"name": "p", "type": "PULL", "eventTypeFilters": [WALLET_CREATED], "pull": {}})),
        )
        .await;
    assert_error(status, &body, 400, "integration.channels");
}

both_backends!(pull_channels_are_off_unless_switched_on);
