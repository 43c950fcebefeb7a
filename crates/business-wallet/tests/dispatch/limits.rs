//! Channel rate and in-flight limits, enforced over every dispatcher instance sharing a
//! database, and the pause a receiver asks for with `429`/`503` and `Retry-After`: real
//! receivers that time every arrival and count the requests they are answering at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use business_wallet::dispatch::Dispatcher;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::common::{Backend, TestApp};
use super::{spawn_with, WALLET_CREATED};

/// A receiver that answers after `delay`, times every arrival, and keeps the most requests it
/// was answering at once; the first `pauses` requests get `status` with `Retry-After: 2`.
#[derive(Clone)]
struct Timed {
    port: u16,
    inner: Arc<TimedInner>,
}

struct TimedInner {
    delay: Duration,
    arrivals: Mutex<Vec<Instant>>,
    now: AtomicUsize,
    most: AtomicUsize,
    pauses: Mutex<Vec<u16>>,
}

impl Timed {
    async fn start(delay: Duration) -> Timed {
        let inner = Arc::new(TimedInner {
            delay,
            arrivals: Mutex::new(Vec::new()),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            pauses: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/hook", post(timed)).with_state(inner.clone());
        let port = super::receiver::serve(app).await;
        Timed { port, inner }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.inner.arrivals.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived, at most `within`.
    async fn wait_for(&self, n: usize, within: Duration) {
        let started = Instant::now();
        while self.arrivals().len() < n {
            assert!(started.elapsed() < within, "{} of {n} arrived", self.arrivals().len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn most_at_once(&self) -> usize {
        self.inner.most.load(Ordering::SeqCst)
    }
}

async fn timed(State(inner): State<Arc<TimedInner>>) -> Response {
    inner.arrivals.lock().unwrap().push(Instant::now());
    let pause = {
        let mut pauses = inner.pauses.lock().unwrap();
        (!pauses.is_empty()).then(|| pauses.remove(0))
    };
    if let Some(status) = pause {
        return (
            StatusCode::from_u16(status).unwrap(),
            [("Retry-After", "2")],
            "slow down",
        )
            .into_response();
    }
    let now = inner.now.fetch_add(1, Ordering::SeqCst) + 1;
    inner.most.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(inner.delay).await;
    inner.now.fetch_sub(1, Ordering::SeqCst);
    (StatusCode::OK, "ok").into_response()
}

/// A platform webhook channel to `url` for wallet events with `limits`; its key.
async fn limited_channel(app: &TestApp, name: &str, url: &str, limits: Value) -> String {
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({
                "name": name, "type": "WEBHOOK", "limits": limits,
                "eventTypeFilters": [WALLET_CREATED], "webhook": {"url": url}
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["channelExternalKey"].as_str().unwrap().to_string()
}

/// Creates `n` wallets, eight requests at a time.
async fn create_wallets(app: &TestApp, n: usize) {
    futures_util::stream::iter(0..n)
        .for_each_concurrent(8, |i| async move {
            app.create_wallet(&format!("Limited {i} B.V.")).await;
        })
        .await;
}

/// How many of `arrivals` fall in the `span` that starts `after` the first arrival.
fn within(arrivals: &[Instant], after: Duration, span: Duration) -> usize {
    let Some(first) = arrivals.iter().min() else { return 0 };
    let start = *first + after;
    arrivals
        .iter()
        .filter(|t| **t >= start && t.duration_since(start) < span)
        .count()
}

/// The application's own dispatcher and `more` further instances on the same database, each
/// running its claim loop until the token is cancelled.
async fn run_instances(
    app: &TestApp,
    more: usize,
) -> (
    CancellationToken,
    Vec<tokio::task::JoinHandle<()>>,
    Vec<business_wallet::Application>,
) {
    let stop = CancellationToken::new();
    let mut running = vec![tokio::spawn(Dispatcher::new(&app.state).run(stop.clone()))];
    let mut instances = Vec::new();
    for _ in 0..more {
        let other = business_wallet::Application::build_with_adapters(app.settings.clone(), Vec::new())
            .await
            .expect("another instance builds");
        running.push(tokio::spawn(Dispatcher::new(other.state()).run(stop.clone())));
        instances.push(other);
    }
    (stop, running, instances)
}

/// Stops the claim loops and waits until each has given back what it held.
async fn stop_all(stop: CancellationToken, running: Vec<tokio::task::JoinHandle<()>>) {
    stop.cancel();
    for run in running {
        run.await.unwrap();
    }
}

fn quick_polls(settings: &mut business_wallet::config::Settings) {
    settings.integration.dispatch.poll_interval_ms = 200;
}

/// Three dispatcher instances on one PostgreSQL database: a channel limited to 50 a second
/// (burst 5) gets no more than 50/s plus the burst over 20 s, and most of that; the 20 s are
/// counted from one second after the first arrival, so that the first requests' connection
/// set-up (which delays the first arrival, and so would move the window) is behind; a channel
/// limited to 3 in flight never has more than 3 requests open at its receiver, although each
/// instance alone would allow 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_postgres_instances_keep_a_channels_rate_and_in_flight_limit_together() {
    let app = spawn_with(Backend::Postgres, quick_polls).await;
    let fast = Timed::start(Duration::from_millis(2)).await;
    let slow = Timed::start(Duration::from_millis(100)).await;
    limited_channel(&app, "rated", &fast.url(), json!({"eventsPerSecond": 50, "burst": 5})).await;
    limited_channel(&app, "narrow", &slow.url(), json!({"maxInFlight": 3})).await;
    create_wallets(&app, 1_400).await;
    let (stop, running, _instances) = run_instances(&app, 2).await;
    // Until 1 s + 20 s after the first arrival, and a little more, so that anything too fast
    // shows.
    fast.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(22_000)).await;
    stop_all(stop, running).await;
    let arrived = within(&fast.arrivals(), Duration::from_secs(1), Duration::from_secs(20));
    assert!(
        arrived <= 50 * 20 + 5,
        "{arrived} arrivals in 20 s at 50/s with a burst of 5"
    );
    assert!(arrived >= 50 * 20 * 8 / 10, "only {arrived} arrivals in 20 s at 50/s");
    let narrow = slow.most_at_once();
    assert!(narrow <= 3, "{narrow} requests in flight at once with maxInFlight 3");
    let got = slow.arrivals().len();
    assert!(
        got >= 100,
        "only {got} deliveries at 3 in flight and 100 ms each in 20 s"
    );
    println!("rated: {arrived} in 20 s; narrow: {got} deliveries, at most {narrow} at once");
}

/// One instance, either backend: a rate of 20/s with a burst of 2 spreads 40 deliveries over at
/// least (40 - 2) / 20 s, with at most 2 in flight, and all of them arrive.
async fn a_single_instance_keeps_the_rate_and_the_in_flight_limit(app: TestApp) {
    let receiver = Timed::start(Duration::from_millis(30)).await;
    limited_channel(
        &app,
        "rated",
        &receiver.url(),
        json!({"eventsPerSecond": 20, "burst": 2, "maxInFlight": 2}),
    )
    .await;
    create_wallets(&app, 40).await;
    let (stop, running, _) = run_instances(&app, 0).await;
    receiver.wait_for(40, Duration::from_secs(20)).await;
    stop_all(stop, running).await;
    let arrivals = receiver.arrivals();
    let span = arrivals
        .iter()
        .max()
        .unwrap()
        .duration_since(*arrivals.iter().min().unwrap());
    assert!(
        span >= Duration::from_millis(1_850),
        "40 deliveries at 20/s (burst 2) took only {span:?}"
    );
    assert!(receiver.most_at_once() <= 2, "{} at once", receiver.most_at_once());
}

/// A receiver answering `status` with `Retry-After: 2` pauses the whole channel: the channel
/// shows the pause, nothing else of it is sent for 2 s (on a channel without limits), then
/// everything arrives.
async fn a_pause_asked_with(app: TestApp, status: u16) {
    let receiver = Timed::start(Duration::from_millis(1)).await;
    receiver.inner.pauses.lock().unwrap().push(status);
    let key = limited_channel(&app, "paused", &receiver.url(), Value::Null).await;
    app.create_wallet("First B.V.").await;
    let (stop, running, _) = run_instances(&app, 0).await;
    let started = Instant::now();
    let shown = loop {
        let (_, view) = app
            .call(reqwest::Method::GET, &format!("/api/integration-channels/{key}"), None)
            .await;
        if view["throttledUntil"].is_string() {
            break view;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no pause shown: {view}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let paused_at = receiver.arrivals()[0];
    create_wallets(&app, 5).await;
    receiver.wait_for(6, Duration::from_secs(15)).await;
    stop_all(stop, running).await;
    let next = receiver.arrivals()[1].duration_since(paused_at);
    assert!(
        next >= Duration::from_millis(1_900),
        "{status}: the next delivery came {next:?} after the pause began (shown: {shown})"
    );
}

async fn retry_after_on_a_429_pauses_the_whole_channel(app: TestApp) {
    a_pause_asked_with(app, 429).await;
}

async fn retry_after_on_a_503_pauses_the_whole_channel(app: TestApp) {
    a_pause_asked_with(app, 503).await;
}

dispatch_tests_with!(quick_polls;
    a_single_instance_keeps_the_rate_and_the_in_flight_limit,
    retry_after_on_a_429_pauses_the_whole_channel,
    retry_after_on_a_503_pauses_the_whole_channel,
);
