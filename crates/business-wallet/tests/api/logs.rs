//! The server's JSON log lines: every line logged while serving a request, and the line of a
//! delivery attempt, carry the correlation id as the top-level `correlation_id`, never nested,
//! and the W3C trace context as the top-level `traceparent` next to it.
//!
//! The application runs on a runtime of one thread whose default subscriber is the server's
//! JSON subscriber (`telemetry::subscriber`, the one `serve` installs) writing into a buffer,
//! so every task of the application logs there and the process-wide subscriber is untouched.

use std::future::Future;

use business_wallet::channels::ChannelSecrets;
use business_wallet::dispatch::Dispatcher;
use business_wallet::telemetry::MemoryLog;
use serde_json::{json, Value};

use crate::common::{spawn_app, Backend, TestApp};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

/// A process-wide subscriber that takes nothing but says every callsite may be wanted.
///
/// tracing caches, per callsite, whether any subscriber wants it. The other tests of this
/// binary run on threads without a subscriber; a callsite first reached there while this
/// test's scoped subscriber is being registered can be cached as unwanted (the registration
/// and the rebuild of the cache race), and its lines would then be missing here. With this
/// global subscriber answering "sometimes", no callsite is ever cached as unwanted, and each
/// event asks the subscriber of its own thread.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `scenario` against an application on `backend` with JSON logs; returns what it
/// returned and every line logged, parsed (a line that is not one JSON object fails the test).
fn with_json_logs<F, Fut, T>(backend: Backend, scenario: F) -> (T, Vec<Value>)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = T>,
{
    // Fails when a global subscriber is already set (`TEST_LOG`, or the other backend's run):
    // that one wants every line at info too.
    let _ = tracing::subscriber::set_global_default(Undecided);
    let log = MemoryLog::default();
    let dispatch = log.json_subscriber();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async move { scenario(spawn_app(backend).await).await })
    });
    drop(runtime);
    let lines = log.json_lines();
    for line in &lines {
        assert!(line.is_object(), "not a JSON object: {line}");
    }
    (result, lines)
}

/// The caller's trace context, logged as the top-level `traceparent` next to `correlation_id`.
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn the_correlation_id_is_a_top_level_field_of_every_line(backend: Backend) {
    let (fresh, lines) = with_json_logs(backend, |app| async move {
        // A platform channel to a loopback address: its attempt is refused at send time by the
        // SSRF gate, and logged like any other attempt.
        app.insert_webhook_channel(
            None,
            "http://127.0.0.1:9/hook",
            &ChannelSecrets::generate(),
            true,
            &[WALLET_CREATED],
        )
        .await;
        let response = app
            .client
            .post(app.url("/api/v1/wallets"))
            .bearer_auth(&app.admin_token)
            .header("X-Correlation-Id", "logs-corr-42")
            .header("traceparent", TRACEPARENT)
            .json(&json!({"displayName": "Logged"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
        assert_eq!(outcome.claimed, 1, "{outcome:?}");

        // Refused for its correlation id: logged with the new one it is answered with.
        let response = app
            .client
            .get(app.url("/api/v1/wallets"))
            .bearer_auth(&app.admin_token)
            .header("X-Correlation-Id", "has a space")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let fresh = response.headers()["x-correlation-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
        fresh
    });

    let find = |message: &str, correlation_id: &str| -> Option<&Value> {
        lines
            .iter()
            .find(|line| line["message"] == message && line["correlation_id"] == correlation_id)
    };
    let request = find("request", "logs-corr-42").unwrap_or_else(|| panic!("the access line in {lines:#?}"));
    assert_eq!(request["status"], 201, "{request}");
    assert_eq!(request["method"], "POST", "{request}");
    assert_eq!(request["route"], "/api/v1/wallets", "{request}");
    assert_eq!(request["traceparent"], TRACEPARENT, "{request}");
    assert!(
        find("wallet created", "logs-corr-42").is_some(),
        "a line of the handler carries it too: {lines:#?}"
    );
    let attempt = find("delivery attempt", "logs-corr-42").unwrap_or_else(|| panic!("the attempt line in {lines:#?}"));
    assert_eq!(attempt["event_type"], WALLET_CREATED, "{attempt}");
    assert_eq!(
        attempt["traceparent"], TRACEPARENT,
        "next to the correlation id: {attempt}"
    );

    let refused = find("request", &fresh).unwrap_or_else(|| panic!("the refused request's line in {lines:#?}"));
    assert_eq!(refused["status"], 400, "{refused}");
    let generated = refused["traceparent"].as_str().unwrap_or_default();
    assert!(
        business_wallet::events::trace::is_valid_traceparent(generated),
        "a request without one is logged with its new traceparent: {refused}"
    );

    // Never nested: no line keeps a span object holding it.
    for line in &lines {
        for (key, value) in line.as_object().unwrap() {
            assert!(
                !value.is_object() || value.get("correlation_id").is_none(),
                "`{key}` nests the correlation id: {line}"
            );
        }
    }
}

mod the_correlation_id_is_a_top_level_field_of_every_line {
    #[test]
    fn sqlite() {
        super::the_correlation_id_is_a_top_level_field_of_every_line(super::Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        super::the_correlation_id_is_a_top_level_field_of_every_line(super::Backend::Postgres)
    }
}
