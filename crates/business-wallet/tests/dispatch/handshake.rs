//! The CloudEvents webhook validation handshake (`webhook.validationHandshake`): a real receiver
//! that answers `OPTIONS` as a test switches it (not at all, or with `WebHook-Allowed-Origin`
//! and a rate), times every delivery, and may answer deliveries with 410 Gone. The background
//! dispatcher sends the handshakes from its heartbeat rounds.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use business_wallet::config::Settings;
use business_wallet::dispatch::Dispatcher;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::common::TestApp;
use super::{spawn_with, WALLET_CREATED};

/// A receiver of `/hook`: `OPTIONS` is answered with 405 until `answer` is set, then with
/// 200, `WebHook-Allowed-Origin` echoing the request's origin and `WebHook-Allowed-Rate` when
/// `rate` is set; `POST` with `post_status`.
#[derive(Clone)]
struct Gatekeeper {
    port: u16,
    inner: Arc<Inner>,
}

struct Inner {
    answer: AtomicBool,
    rate: Mutex<Option<String>>,
    post_status: AtomicU16,
    handshakes: Mutex<Vec<HeaderMap>>,
    arrivals: Mutex<Vec<Instant>>,
}

impl Gatekeeper {
    async fn start(answer: bool, rate: Option<&str>) -> Gatekeeper {
        let inner = Arc::new(Inner {
            answer: AtomicBool::new(answer),
            rate: Mutex::new(rate.map(str::to_string)),
            post_status: AtomicU16::new(200),
            handshakes: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/hook", any(hook)).with_state(inner.clone());
        let port = super::receiver::serve(app).await;
        Gatekeeper { port, inner }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.inner.arrivals.lock().unwrap().clone()
    }

    fn handshakes(&self) -> Vec<HeaderMap> {
        self.inner.handshakes.lock().unwrap().clone()
    }
}

async fn hook(State(inner): State<Arc<Inner>>, method: Method, headers: HeaderMap) -> Response {
    if method == Method::OPTIONS {
        inner.handshakes.lock().unwrap().push(headers.clone());
        if !inner.answer.load(Ordering::SeqCst) {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let origin = headers
            .get("webhook-request-origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let mut response = (StatusCode::OK, [("WebHook-Allowed-Origin", origin)]).into_response();
        if let Some(rate) = inner.rate.lock().unwrap().clone() {
            response
                .headers_mut()
                .insert("webhook-allowed-rate", rate.parse().unwrap());
        }
        return response;
    }
    inner.arrivals.lock().unwrap().push(Instant::now());
    StatusCode::from_u16(inner.post_status.load(Ordering::SeqCst))
        .unwrap()
        .into_response()
}

/// Handshakes retried every second, heartbeat rounds every 400 ms, polls every 200 ms.
fn quick_handshakes(settings: &mut Settings) {
    settings.integration.webhook.validation_retry_secs = 1;
    settings.integration.dispatch.instance_timeout_secs = 2;
    settings.integration.dispatch.poll_interval_ms = 200;
}

fn body(name: &str, url: &str, enabled: bool) -> Value {
    json!({
        "name": name, "type": "WEBHOOK", "enabled": enabled,
        "eventTypeFilters": [WALLET_CREATED],
        "webhook": {"url": url, "validationHandshake": true}
    })
}

/// A platform webhook channel to `url` requiring the handshake; its key.
async fn guarded_channel(app: &TestApp, name: &str, url: &str) -> String {
    let (status, view) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&body(name, url, true)),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["webhook"]["validationHandshake"], true, "{view}");
    assert_eq!(view["validation"]["state"], "UNVERIFIED", "{view}");
    view["channelExternalKey"].as_str().unwrap().to_string()
}

async fn channel(app: &TestApp, key: &str) -> Value {
    let (status, view) = app
        .call(reqwest::Method::GET, &format!("/api/integration-channels/{key}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Waits (bounded) until the channel's view satisfies `done`; returns that view.
async fn wait_for_view(app: &TestApp, key: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let view = channel(app, key).await;
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{what}: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until `receiver` has `n` deliveries.
async fn wait_for_arrivals(receiver: &Gatekeeper, n: usize) {
    let started = Instant::now();
    while receiver.arrivals().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} of {n} deliveries arrived",
            receiver.arrivals().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The platform history entries with `action`.
async fn history(app: &TestApp, action: &str) -> Vec<Value> {
    let (status, page) = app.call(reqwest::Method::GET, "/api/v1/history?limit=200", None).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == action)
        .cloned()
        .collect()
}

/// `(state, attempts)` of the channel's deliveries, oldest first.
async fn delivery_states(app: &TestApp, key: &str) -> Vec<(String, i64)> {
    let id = app
        .count(&format!(
            "SELECT id FROM integration_channel WHERE channel_external_key = '{key}'"
        ))
        .await;
    super::deliveries_of(app, id)
        .await
        .into_iter()
        .map(|row| (row.state, row.attempts))
        .collect()
}

fn start_dispatcher(app: &TestApp) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let running = tokio::spawn(Dispatcher::new(&app.state).run(stop.clone()));
    (stop, running)
}

/// How many of `arrivals` fall in the `span` after the first.
fn within(arrivals: &[Instant], span: Duration) -> usize {
    let Some(first) = arrivals.iter().min() else { return 0 };
    arrivals.iter().filter(|t| t.duration_since(*first) <= span).count()
}

/// A receiver that answers the handshake with `WebHook-Allowed-Rate: 600` gets the deliveries
/// that waited for it, at no more than 10 a second plus one burst, and most of that.
async fn an_answered_handshake_verifies_and_its_allowed_rate_holds(app: TestApp) {
    let receiver = Gatekeeper::start(true, Some("600")).await;
    let key = guarded_channel(&app, "guarded", &receiver.url()).await;
    for i in 0..40 {
        app.create_wallet(&format!("Rated {i} B.V.")).await;
    }
    assert!(receiver.arrivals().is_empty(), "nothing goes out before the handshake");
    let (stop, running) = start_dispatcher(&app);
    let view = wait_for_view(&app, &key, "verified", |v| v["validation"]["state"] == "VERIFIED").await;
    assert_eq!(view["validation"]["allowedRatePerMinute"], 600, "{view}");
    assert!(view["validation"]["error"].is_null(), "{view}");
    wait_for_arrivals(&receiver, 40).await;
    stop.cancel();
    running.await.unwrap();

    let arrivals = receiver.arrivals();
    let window = Duration::from_secs(2);
    let in_window = within(&arrivals, window);
    // 10 a second, a burst of 1 (the default burst of that rate).
    assert!(
        in_window <= 10 * 2 + 1,
        "{in_window} deliveries in {window:?} at 600 a minute"
    );
    assert!(
        in_window >= 15,
        "only {in_window} deliveries in {window:?} at 600 a minute"
    );
    let span = arrivals
        .iter()
        .max()
        .unwrap()
        .duration_since(*arrivals.iter().min().unwrap());
    assert!(
        span >= Duration::from_millis(3_700),
        "40 deliveries at 10/s took only {span:?}"
    );
    println!("600 a minute: {in_window} deliveries in the first {window:?}, all 40 in {span:?}");

    let handshake = &receiver.handshakes()[0];
    let origin = handshake["webhook-request-origin"].to_str().unwrap();
    assert!(!origin.is_empty());
    assert!(
        handshake.get("webhook-request-rate").is_none(),
        "the channel has no rate of its own"
    );
    let verified = history(&app, "CHANNEL_VERIFIED").await;
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert_eq!(verified[0]["actor"], "dispatcher");
    assert_eq!(verified[0]["details"]["channelExternalKey"], key.as_str());
    assert_eq!(verified[0]["details"]["origin"], origin);
    assert_eq!(verified[0]["details"]["allowedRatePerMinute"], 600);
}

/// A receiver that does not answer the handshake keeps the deliveries waiting (none is sent,
/// none counts an attempt, the channel shows why); once it answers, all of them arrive.
async fn an_unanswered_handshake_keeps_deliveries_waiting_until_it_is_answered(app: TestApp) {
    let receiver = Gatekeeper::start(false, None).await;
    let key = guarded_channel(&app, "waiting", &receiver.url()).await;
    for i in 0..3 {
        app.create_wallet(&format!("Waiting {i} B.V.")).await;
    }
    let (stop, running) = start_dispatcher(&app);
    // Three tries (one a second) without an answer.
    let started = Instant::now();
    while receiver.handshakes().len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} handshakes",
            receiver.handshakes().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = wait_for_view(&app, &key, "the error shown", |v| v["validation"]["error"].is_string()).await;
    assert_eq!(view["validation"]["state"], "UNVERIFIED", "{view}");
    assert!(view["validation"]["checkedAt"].is_string(), "{view}");
    assert!(view["validation"]["error"].as_str().unwrap().contains("405"), "{view}");
    assert!(
        receiver.arrivals().is_empty(),
        "a delivery went out before the handshake"
    );
    assert_eq!(
        delivery_states(&app, &key).await,
        vec![("PENDING".to_string(), 0); 3],
        "the deliveries wait, no attempt counted"
    );

    receiver.inner.answer.store(true, Ordering::SeqCst);
    wait_for_arrivals(&receiver, 3).await;
    let view = wait_for_view(&app, &key, "verified", |v| v["validation"]["state"] == "VERIFIED").await;
    assert!(view["validation"]["allowedRatePerMinute"].is_null(), "{view}");
    let started = Instant::now();
    while delivery_states(&app, &key).await != vec![("DELIVERED".to_string(), 1); 3] {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            delivery_states(&app, &key).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(receiver.arrivals().len(), 3);
    assert_eq!(history(&app, "CHANNEL_VERIFIED").await.len(), 1);
}

/// A receiver answering a delivery with 410 Gone disables the channel with a history entry;
/// its deliveries wait PENDING (none FAILED), and all arrive once the channel is enabled again.
async fn a_410_disables_the_channel_and_nothing_is_lost(app: TestApp) {
    let receiver = Gatekeeper::start(true, None).await;
    receiver.inner.post_status.store(410, Ordering::SeqCst);
    let key = guarded_channel(&app, "gone", &receiver.url()).await;
    for i in 0..3 {
        app.create_wallet(&format!("Gone {i} B.V.")).await;
    }
    let (stop, running) = start_dispatcher(&app);
    wait_for_view(&app, &key, "disabled", |v| v["enabled"] == false).await;
    let disabled = history(&app, "CHANNEL_DISABLED_BY_RECEIVER").await;
    assert_eq!(disabled.len(), 1, "{disabled:?}");
    assert_eq!(disabled[0]["actor"], "dispatcher");
    assert_eq!(disabled[0]["details"]["status"], 410);
    assert_eq!(disabled[0]["details"]["channelExternalKey"], key.as_str());
    // The deliveries in flight when it was disabled are stored as attempts and wait.
    let started = Instant::now();
    loop {
        let states = delivery_states(&app, &key).await;
        if states.iter().all(|(state, _)| state == "PENDING") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = receiver.arrivals().len();
    assert!(gone >= 1);

    receiver.inner.post_status.store(200, Ordering::SeqCst);
    let (status, view) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/integration-channels/{key}"),
            Some(&body("gone", &receiver.url(), true)),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["validation"]["state"], "VERIFIED",
        "the same URL stays verified: {view}"
    );
    wait_for_arrivals(&receiver, gone + 3).await;
    let started = Instant::now();
    while delivery_states(&app, &key)
        .await
        .iter()
        .any(|(state, _)| state != "DELIVERED")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            delivery_states(&app, &key).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(history(&app, "CHANNEL_DISABLED_BY_RECEIVER").await.len(), 1);
}

/// The option in the API: a bad value is a 400 naming it; turning it off, or replacing the URL,
/// changes the state as documented; a channel without it shows none.
async fn the_option_is_validated_and_its_state_follows_the_channel(app: TestApp) {
    let receiver = Gatekeeper::start(true, Some("*")).await;
    let mut bad = body("bad", &receiver.url(), true);
    bad["webhook"]["validationHandshake"] = json!("yes");
    let (status, error) = app
        .call(reqwest::Method::POST, "/api/integration-channels", Some(&bad))
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(error.to_string().contains("validationHandshake"), "{error}");
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_channel").await, 0);

    let mut plain = body("plain", &receiver.url(), true);
    plain["webhook"] = json!({"url": receiver.url()});
    let (status, view) = app
        .call(reqwest::Method::POST, "/api/integration-channels", Some(&plain))
        .await;
    assert_eq!(status, 201, "{view}");
    assert!(view["validation"].is_null(), "{view}");
    assert!(view["webhook"].get("validationHandshake").is_none(), "{view}");

    let key = guarded_channel(&app, "guarded", &receiver.url()).await;
    // Turned off: no state; turned on again: unverified again.
    let (_, off) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/integration-channels/{key}"),
            Some(
                &json!({"name": "guarded", "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED],
                         "webhook": {"url": receiver.url()}}),
            ),
        )
        .await;
    assert!(off["validation"].is_null(), "{off}");
    let (_, on) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/integration-channels/{key}"),
            Some(&body("guarded", &receiver.url(), true)),
        )
        .await;
    assert_eq!(on["validation"]["state"], "UNVERIFIED", "{on}");

    // A test send of a draft shows the handshake's result beside the sample's.
    let (status, report) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels/test",
            Some(&body("draft", &receiver.url(), true)),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["handshake"]["verified"], true, "{report}");
    assert_eq!(report["handshake"]["status"], 200, "{report}");
    assert_eq!(
        report["handshake"]["allowedOrigin"], report["handshake"]["origin"],
        "{report}"
    );
    assert!(
        report["handshake"]["allowedRate"].is_null(),
        "`*` allows any rate: {report}"
    );
    // A channel with a rate of its own asks for it, per minute.
    let mut rated = body("rated draft", &receiver.url(), true);
    rated["limits"] = json!({"eventsPerSecond": 5});
    let (status, report) = app
        .call(reqwest::Method::POST, "/api/integration-channels/test", Some(&rated))
        .await;
    assert_eq!(status, 200, "{report}");
    let asked = receiver.handshakes().last().unwrap().clone();
    assert_eq!(asked["webhook-request-rate"], "300", "{asked:?}");
    receiver.inner.answer.store(false, Ordering::SeqCst);
    let (_, report) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/integration-channels/{key}/test"),
            None,
        )
        .await;
    assert_eq!(report["handshake"]["verified"], false, "{report}");
    assert_eq!(report["handshake"]["status"], 405, "{report}");
    assert!(
        report["handshake"]["error"].as_str().unwrap().contains("405"),
        "{report}"
    );
    // A test send changes nothing about the channel.
    assert_eq!(channel(&app, &key).await["validation"]["state"], "UNVERIFIED");
}

dispatch_tests_with!(quick_handshakes;
    an_answered_handshake_verifies_and_its_allowed_rate_holds,
    an_unanswered_handshake_keeps_deliveries_waiting_until_it_is_answered,
    a_410_disables_the_channel_and_nothing_is_lost,
    the_option_is_validated_and_its_state_follows_the_channel,
);
