//! Dispatcher and webhook channel, end to end: a real application (both backends), real HTTP
//! receivers on 127.0.0.1, and the dispatcher driven one step at a time with `run_once`.
//!
//! Longer than 600 lines on purpose: one scenario per rule of delivery (retries, leases,
//! fairness, signing, redaction, replay), each short and independent, over the shared receiver
//! of `receiver.rs`; the channel-independent rules are in the contract suite.

#[path = "../common/mod.rs"]
mod common;
mod receiver;
mod tls;

use std::process::{Command, Stdio};
use std::time::Duration;

use business_wallet::channels::ChannelSecrets;
use business_wallet::config::Settings;
use business_wallet::dispatch::{Dispatcher, RunOutcome};
use business_wallet::domain::{AttemptOutcome, Resolution};
use business_wallet::store::deliveries::{self, AttemptRow, ClaimRequest};
use business_wallet::store::{now_ms, Db};
use common::{Backend, TestApp};
use receiver::{status, Receiver, Reply};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

/// Runs `async fn name(app: TestApp)` on both backends with [`local_settings`].
macro_rules! dispatch_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::spawn(crate::common::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::spawn(crate::common::Backend::Postgres).await).await
            }
        }
    )+};
}

/// Like `dispatch_tests!`, with a further settings change for these tests.
macro_rules! dispatch_tests_with {
    ($adjust:ident; $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::spawn_with(crate::common::Backend::Sqlite, super::$adjust).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::spawn_with(crate::common::Backend::Postgres, super::$adjust).await).await
            }
        }
    )+};
}

mod handshake;
mod limits;

/// On-premise with the local receivers allowed, short back-off and short timeouts.
async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

async fn spawn_with(backend: Backend, adjust: fn(&mut Settings)) -> TestApp {
    common::spawn_app_with(backend, |settings| {
        settings.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        settings.integration.retry.base_delay_ms = 1_000;
        settings.integration.retry.max_delay_ms = 60_000;
        settings.integration.webhook.default_timeout_ms = 1_000;
        settings.integration.webhook.max_timeout_ms = 1_000;
        settings.integration.dispatch.lease_secs = 60;
        adjust(settings);
    })
    .await
}

fn one_in_flight_per_channel(settings: &mut Settings) {
    settings.integration.dispatch.max_in_flight_per_channel = 1;
}

fn short_shutdown_grace(settings: &mut Settings) {
    settings.integration.dispatch.shutdown_grace_ms = 100;
    settings.integration.dispatch.poll_interval_ms = 60_000;
}

/// Waits (bounded) until `receiver` has `n` requests: only for tests of the background loop.
async fn wait_for_requests(receiver: &Receiver, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while receiver.received().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "receiver got {} of {n} requests",
            receiver.received().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The delivery columns the tests look at.
#[derive(Debug, Clone, sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    state: String,
    attempts: i64,
    due_at: i64,
    lease_token: Option<String>,
    last_status: Option<i64>,
    last_error: Option<String>,
}

async fn deliveries_of(app: &TestApp, channel_id: i64) -> Vec<DeliveryRow> {
    let sql = format!(
        "SELECT id, state, attempts, due_at, lease_token, last_status, last_error FROM integration_delivery \
         WHERE channel_id = {channel_id} ORDER BY id"
    );
    match &app.state.db {
        Db::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await.unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_as(&sql).fetch_all(writer).await.unwrap(),
    }
}

async fn only_delivery(app: &TestApp, channel_id: i64) -> DeliveryRow {
    let rows = deliveries_of(app, channel_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

/// `(attempt, outcome, response_status, error)` of every stored attempt of a delivery.
async fn attempts_of(app: &TestApp, delivery_id: i64) -> Vec<(i64, String, Option<i64>, Option<String>)> {
    let sql = format!(
        "SELECT attempt, outcome, response_status, error FROM integration_delivery_attempt \
         WHERE delivery_id = {delivery_id} ORDER BY attempt"
    );
    match &app.state.db {
        Db::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await.unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_as(&sql).fetch_all(writer).await.unwrap(),
    }
}

/// A platform webhook channel subscribed to `wallet.created`, pointing at `url`.
async fn platform_channel(app: &TestApp, url: &str, secrets: &ChannelSecrets) -> i64 {
    app.insert_webhook_channel(None, url, secrets, true, &[WALLET_CREATED])
        .await
}

async fn run_once(app: &TestApp) -> RunOutcome {
    Dispatcher::new(&app.state).run_once().await.unwrap()
}

/// Checks a signature header with Python's standard `hmac` module, independently of our code.
fn python_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    const SCRIPT: &str = "import hmac, hashlib, sys\n\
secret, header = sys.argv[1], sys.argv[2]\n\
body = sys.stdin.buffer.read()\n\
items = [i.strip().split('=', 1) for i in header.split(',')]\n\
t = [v for k, v in items if k == 't'][0]\n\
expected = hmac.new(secret.encode(), t.encode() + b'.' + body, hashlib.sha256).hexdigest()\n\
sys.exit(0 if any(hmac.compare_digest(expected, v) for k, v in items if k == 'v1') else 1)\n";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, secret, header])
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait().unwrap().success()
}

fn verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    webhook_verify::verify_now(header, body, &[secret.as_bytes()], webhook_verify::DEFAULT_TOLERANCE).is_ok()
}

dispatch_tests!(
    a_2xx_is_delivered_after_one_signed_binary_mode_request,
    server_errors_are_retried_with_the_same_event_id_until_delivered,
    a_404_fails_at_once,
    retry_after_sets_the_next_due_time,
    a_receiver_that_never_answers_times_out_and_is_retried,
    redirects_are_not_followed_and_are_retried,
    a_disabled_channel_keeps_its_deliveries_waiting_until_enabled,
    events_reach_only_subscribed_channels,
    the_previous_secret_signs_too_during_its_grace_window_only,
    an_expired_lease_is_claimed_again_and_a_late_outcome_is_dropped,
    the_ssrf_gate_refuses_loopback_at_send_time_when_not_allowed,
    api_key_header_is_sent_and_redacted_in_the_stored_request,
    a_silent_instance_gives_its_deliveries_back_at_once,
);

dispatch_tests_with!(short_shutdown_grace; deliveries_go_out_while_the_api_is_busy);
use tls::{
    a_ca_bundle_lets_a_private_ca_receiver_work_for_its_channel_only,
    a_client_certificate_expiring_within_30_days_is_flagged_in_the_view_and_the_metric,
    a_receiver_requiring_a_client_certificate_refuses_a_channel_without_one,
    a_receiver_requiring_a_client_certificate_takes_the_channel_that_presents_it,
    tls_blocks_are_checked_on_save_and_keep_the_key_on_replace,
};
dispatch_tests!(
    a_receiver_requiring_a_client_certificate_takes_the_channel_that_presents_it,
    a_receiver_requiring_a_client_certificate_refuses_a_channel_without_one,
    a_ca_bundle_lets_a_private_ca_receiver_work_for_its_channel_only,
    tls_blocks_are_checked_on_save_and_keep_the_key_on_replace,
    a_client_certificate_expiring_within_30_days_is_flagged_in_the_view_and_the_metric,
);
dispatch_tests!(
    per_wallet_ordering_holds_back_only_the_wallet_of_a_failed_delivery,
    without_ordering_nothing_waits_behind_a_failed_delivery
);
dispatch_tests_with!(a_short_failure_ladder; a_failing_channel_is_paused_and_resumed_without_losing_anything);

async fn a_2xx_is_delivered_after_one_signed_binary_mode_request(app: TestApp) {
    let receiver = Receiver::start().await;
    let secrets = ChannelSecrets::generate();
    let channel = platform_channel(&app, &receiver.url(), &secrets).await;
    let wallet = app.create_wallet("Acme Logistics").await;
    let wallet_key = wallet["walletExternalKey"].as_str().unwrap();

    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.delivered), (1, 1), "{outcome:?}");

    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.last_status),
        ("DELIVERED", 1, Some(200))
    );
    assert_eq!(row.lease_token, None);
    let attempts = attempts_of(&app, row.id).await;
    assert_eq!(attempts, vec![(1, "DELIVERED".to_string(), Some(200), None)]);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.header("content-type"), "application/json");
    let event_id: String = match &app.state.db {
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT event_id FROM integration_event")
                .fetch_one(pool)
                .await
        }
        Db::Sqlite { writer, .. } => {
            sqlx::query_scalar("SELECT event_id FROM integration_event")
                .fetch_one(writer)
                .await
        }
    }
    .unwrap();
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let ce = webhook_verify::parse_ce_headers(headers).unwrap();
    assert_eq!(ce.id, event_id);
    assert_eq!(ce.r#type, WALLET_CREATED);
    assert_eq!(ce.source, "/credenco/wallets");
    assert_eq!(ce.specversion, "1.0");
    assert_eq!(ce.subject.as_deref(), Some(format!("wallets/{wallet_key}").as_str()));
    assert_eq!(ce.extensions["walletexternalkey"], wallet_key);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["walletExternalKey"], wallet_key);

    let signature = request.header("x-credenco-signature");
    assert_eq!(signature.matches("v1=").count(), 1, "{signature}");
    assert!(verifies(&secrets.hmac_secret, signature, &request.body));
    assert!(python_verifies(&secrets.hmac_secret, signature, &request.body));
    assert!(!python_verifies("whsec_wrong", signature, &request.body));

    // Nothing is left to do.
    assert_eq!(run_once(&app).await, RunOutcome::default());
}

async fn server_errors_are_retried_with_the_same_event_id_until_delivered(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([status(500), status(503)]);
    let secrets = ChannelSecrets::generate();
    let channel = platform_channel(&app, &receiver.url(), &secrets).await;
    app.create_wallet("Retry B.V.").await;

    let first = run_once(&app).await;
    assert_eq!((first.claimed, first.retried), (1, 1), "{first:?}");
    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.last_status),
        ("PENDING", 1, Some(500))
    );
    assert!(row.due_at > now_ms(), "the retry waits for its back-off");
    // Not due yet: nothing is claimed.
    assert_eq!(run_once(&app).await.claimed, 0);

    app.make_deliveries_due().await;
    assert_eq!(run_once(&app).await.retried, 1);
    app.make_deliveries_due().await;
    assert_eq!(run_once(&app).await.delivered, 1);

    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.last_status),
        ("DELIVERED", 3, Some(200))
    );
    let outcomes: Vec<String> = attempts_of(&app, row.id).await.into_iter().map(|a| a.1).collect();
    assert_eq!(outcomes, ["RETRYABLE", "RETRYABLE", "DELIVERED"]);

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received.iter().map(|r| r.header("ce-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for request in &received {
        assert!(verifies(
            &secrets.hmac_secret,
            request.header("x-credenco-signature"),
            &request.body
        ));
    }
}

async fn a_404_fails_at_once(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([status(404)]);
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Gone B.V.").await;

    assert_eq!(run_once(&app).await.failed, 1);
    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.last_status),
        ("FAILED", 1, Some(404))
    );
    assert!(row.last_error.unwrap().contains("404"));
    app.make_deliveries_due().await;
    assert_eq!(run_once(&app).await.claimed, 0, "a FAILED delivery is never claimed");
    assert_eq!(receiver.received().len(), 1);
}

async fn retry_after_sets_the_next_due_time(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Status(429, vec![("retry-after", "3".into())])]);
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Busy B.V.").await;

    let before = now_ms();
    assert_eq!(run_once(&app).await.retried, 1);
    let after = now_ms();
    let row = only_delivery(&app, channel).await;
    assert_eq!((row.state.as_str(), row.last_status), ("PENDING", Some(429)));
    assert!(row.due_at >= before + 3_000, "due {} < {}", row.due_at, before + 3_000);
    // Honoured as asked: no exponential back-off or jitter on top.
    assert!(row.due_at <= after + 3_000 + 500, "due {} too late", row.due_at);
}

async fn a_receiver_that_never_answers_times_out_and_is_retried(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang]);
    let secrets = ChannelSecrets::generate();
    let channel = app
        .insert_webhook_channel_with(
            None,
            &json!({"url": receiver.url(), "timeoutMs": 200}),
            &secrets,
            true,
            &[WALLET_CREATED],
        )
        .await;
    app.create_wallet("Slow B.V.").await;

    let started = std::time::Instant::now();
    assert_eq!(run_once(&app).await.retried, 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.last_status),
        ("PENDING", 1, None)
    );
    assert!(
        row.last_error.as_deref().unwrap().contains("200 ms"),
        "{:?}",
        row.last_error
    );

    app.make_deliveries_due().await;
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(only_delivery(&app, channel).await.attempts, 2);
}

async fn redirects_are_not_followed_and_are_retried(app: TestApp) {
    let receiver = Receiver::start().await;
    let target = format!("http://127.0.0.1:{}/target", receiver.port);
    receiver.script([Reply::Status(302, vec![("location", target)])]);
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Moved B.V.").await;

    assert_eq!(run_once(&app).await.retried, 1);
    let row = only_delivery(&app, channel).await;
    assert_eq!((row.state.as_str(), row.last_status), ("PENDING", Some(302)));
    assert!(row.last_error.unwrap().contains("not followed"));
    assert_eq!(receiver.redirect_target_hits(), 0);
}

async fn a_disabled_channel_keeps_its_deliveries_waiting_until_enabled(app: TestApp) {
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("One B.V.").await;
    app.create_wallet("Two B.V.").await;
    app.execute(&format!(
        "UPDATE integration_channel SET enabled = false WHERE id = {channel}"
    ))
    .await;

    assert_eq!(run_once(&app).await.claimed, 0);
    let waiting = deliveries_of(&app, channel).await;
    assert_eq!(waiting.len(), 2);
    assert!(waiting
        .iter()
        .all(|r| r.state == "PENDING" && r.attempts == 0 && r.lease_token.is_none()));
    assert!(receiver.received().is_empty());

    app.execute(&format!(
        "UPDATE integration_channel SET enabled = true WHERE id = {channel}"
    ))
    .await;
    assert_eq!(run_once(&app).await.delivered, 2);
    assert!(deliveries_of(&app, channel)
        .await
        .iter()
        .all(|r| r.state == "DELIVERED" && r.attempts == 1));
}

async fn events_reach_only_subscribed_channels(app: TestApp) {
    let wallets = Receiver::start().await;
    let identifiers = Receiver::start().await;
    let secrets = ChannelSecrets::generate();
    platform_channel(&app, &wallets.url(), &secrets).await;
    app.insert_webhook_channel(None, &identifiers.url(), &secrets, true, &[IDENTIFIER_CREATED])
        .await;
    let wallet = app.create_wallet("Subscribed B.V.").await;
    let key = wallet["walletExternalKey"].as_str().unwrap();

    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(wallets.received().len(), 1);
    assert!(identifiers.received().is_empty());

    let response = app
        .post(
            &format!("/api/v1/wallets/{key}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "acme.example"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(wallets.received().len(), 1);
    let received = identifiers.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("ce-type"), IDENTIFIER_CREATED);
}

async fn the_previous_secret_signs_too_during_its_grace_window_only(app: TestApp) {
    let receiver = Receiver::start().await;
    let mut rotating = ChannelSecrets::generate();
    let old = rotating.hmac_secret.clone();
    let new = rotating.rotate(now_ms(), 3_600_000);
    let mut expired = rotating.clone();
    expired.previous_hmac_secret_expires_at = Some(now_ms() - 1);
    app.insert_webhook_channel(None, &receiver.url(), &rotating, true, &[WALLET_CREATED])
        .await;
    app.create_wallet("Rotating B.V.").await;
    assert_eq!(run_once(&app).await.delivered, 1);

    let request = &receiver.received()[0];
    let header = request.header("x-credenco-signature");
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    for secret in [&new, &old] {
        assert!(verifies(secret, header, &request.body), "{secret}");
        assert!(python_verifies(secret, header, &request.body), "{secret}");
    }

    let after_window = Receiver::start().await;
    app.insert_webhook_channel(None, &after_window.url(), &expired, true, &[WALLET_CREATED])
        .await;
    app.create_wallet("Rotated B.V.").await;
    // The first channel gets the second wallet's event too.
    assert_eq!(run_once(&app).await.delivered, 2);
    let request = &after_window.received()[0];
    let header = request.header("x-credenco-signature");
    assert_eq!(header.matches("v1=").count(), 1, "{header}");
    assert!(verifies(&new, header, &request.body));
    assert!(!verifies(&old, header, &request.body));
}

async fn an_expired_lease_is_claimed_again_and_a_late_outcome_is_dropped(app: TestApp) {
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Crash B.V.").await;

    // A dispatcher claims the delivery and dies before sending.
    let dead = deliveries::claim(
        &app.state.db,
        &ClaimRequest {
            limit: 10,
            lease_ms: 60_000,
            skip_channels: &[],
            owner: "a-dispatcher-that-dies",
        },
    )
    .await
    .unwrap();
    assert_eq!(dead.len(), 1);
    let old_token = dead[0].lease_token.clone();
    let row = only_delivery(&app, channel).await;
    assert_eq!((row.state.as_str(), row.attempts), ("DELIVERING", 1));

    // While the lease lasts, nobody else takes the delivery.
    assert_eq!(run_once(&app).await.claimed, 0);

    // The lease runs out (time moved forward by a minute).
    app.execute("UPDATE integration_delivery SET due_at = due_at - 60000")
        .await;
    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.delivered), (1, 1), "{outcome:?}");
    let row = only_delivery(&app, channel).await;
    assert_eq!((row.state.as_str(), row.attempts), ("DELIVERED", 2));

    // The dead dispatcher's late result changes nothing.
    let late = AttemptRow {
        attempt: 1,
        started_at: 0,
        duration_ms: 0,
        outcome: AttemptOutcome::Rejected,
        request: None,
        response_status: None,
        response_headers: None,
        response_body: None,
        error: Some("late".into()),
    };
    let applied = deliveries::record_outcome(&app.state.db, row.id, &old_token, Resolution::Failed, &late)
        .await
        .unwrap();
    assert!(!applied);
    assert!(!deliveries::release(&app.state.db, row.id, &old_token, 0).await.unwrap());
    let after = only_delivery(&app, channel).await;
    assert_eq!(
        (after.state.as_str(), after.attempts, after.last_error),
        ("DELIVERED", 2, None)
    );
    assert_eq!(attempts_of(&app, row.id).await.len(), 1);
}

async fn the_ssrf_gate_refuses_loopback_at_send_time_when_not_allowed(app: TestApp) {
    // This instance allows 127.0.0.0/8; a second one over the same database does not.
    let receiver = Receiver::start().await;
    let by_name = platform_channel(
        &app,
        &format!("http://localhost:{}/hook", receiver.port),
        &ChannelSecrets::generate(),
    )
    .await;
    let by_address = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Internal B.V.").await;

    let mut strict = (*app.state.settings).clone();
    strict.integration.allowed_networks.clear();
    let mut state = app.state.clone();
    state.channels = business_wallet::channels::ChannelRegistry::from_settings(&strict).unwrap();
    let outcome = Dispatcher::new(&state).run_once().await.unwrap();
    assert_eq!((outcome.claimed, outcome.failed), (2, 2), "{outcome:?}");
    for channel in [by_name, by_address] {
        let row = only_delivery(&app, channel).await;
        assert_eq!((row.state.as_str(), row.attempts, row.last_status), ("FAILED", 1, None));
        assert!(
            row.last_error.as_deref().unwrap().contains("address not allowed"),
            "{:?}",
            row.last_error
        );
    }
    assert!(receiver.received().is_empty());
}

async fn api_key_header_is_sent_and_redacted_in_the_stored_request(app: TestApp) {
    let receiver = Receiver::start().await;
    let secrets = ChannelSecrets {
        api_key_value: Some("key-123".into()),
        ..ChannelSecrets::generate()
    };
    let channel = app
        .insert_webhook_channel_with(
            None,
            &json!({"url": receiver.url(), "apiKey": {"headerName": "X-Api-Key"}}),
            &secrets,
            true,
            &[WALLET_CREATED],
        )
        .await;
    app.create_wallet("Keyed B.V.").await;
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(receiver.received()[0].header("x-api-key"), "key-123");

    let row = only_delivery(&app, channel).await;
    let sql = format!(
        "SELECT request FROM integration_delivery_attempt WHERE delivery_id = {}",
        row.id
    );
    let stored: String = match &app.state.db {
        Db::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_scalar(&sql).fetch_one(writer).await.unwrap(),
    };
    assert!(!stored.contains("key-123"), "{stored}");
    assert!(!stored.contains(&secrets.hmac_secret), "{stored}");
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["method"], "POST");
    let headers = stored["headers"].as_array().unwrap();
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(value("x-api-key").as_deref(), Some("[redacted]"));
    assert!(value("x-credenco-signature").unwrap().ends_with("v1=[redacted]"));
    assert!(value("ce-id").is_some());
}

dispatch_tests_with!(one_in_flight_per_channel; a_channel_at_its_in_flight_limit_gives_extra_claims_back);
dispatch_tests_with!(short_shutdown_grace;
    the_background_loop_is_woken_by_a_commit,
    shutdown_gives_unfinished_deliveries_back,
);
dispatch_tests!(
    a_test_send_is_a_real_signed_request_without_a_delivery_row,
    oauth2_tokens_are_cached_and_refreshed_once_on_a_401,
);

async fn a_channel_at_its_in_flight_limit_gives_extra_claims_back(app: TestApp) {
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    for name in ["A", "B", "C"] {
        app.create_wallet(name).await;
    }
    let outcome = run_once(&app).await;
    assert_eq!(
        (outcome.claimed, outcome.deferred, outcome.delivered),
        (3, 2, 1),
        "{outcome:?}"
    );
    let rows = deliveries_of(&app, channel).await;
    let pending: Vec<&DeliveryRow> = rows.iter().filter(|r| r.state == "PENDING").collect();
    assert_eq!(pending.len(), 2);
    assert!(
        pending.iter().all(|r| r.attempts == 0 && r.lease_token.is_none()),
        "{rows:?}"
    );
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(run_once(&app).await.delivered, 1);
    assert_eq!(receiver.received().len(), 3);
}

async fn the_background_loop_is_woken_by_a_commit(app: TestApp) {
    // The poll interval is a minute: only the wake-up can make this delivery quick.
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(Dispatcher::new(&app.state).run(stop.clone()));
    app.create_wallet("Awake B.V.").await;
    wait_for_requests(&receiver, 1).await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(only_delivery(&app, channel).await.state, "DELIVERED");
}

/// On PostgreSQL a commit on one instance wakes the dispatcher of another through `NOTIFY`
/// (the poll interval is a minute, so only the notification can make this delivery quick),
/// while each dispatcher skips the notifications of its own process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_postgres_instance_is_woken_by_a_commit() {
    let app = spawn_with(Backend::Postgres, short_shutdown_grace).await;
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    // A second instance on the same database; only its dispatcher runs.
    let other = business_wallet::Application::build_with_adapters(app.settings.clone(), Vec::new())
        .await
        .expect("the second instance builds");
    let Db::Postgres(pool) = &app.state.db else {
        unreachable!("a PostgreSQL test")
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(Dispatcher::new(other.state()).run(stop.clone()));
    // Wait until its LISTEN is in place (it claims once on connecting, which finds nothing),
    // so that the delivery below can only be started by the notification.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.create_wallet("Elsewhere B.V.").await;
    wait_for_requests(&receiver, 1).await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(only_delivery(&app, channel).await.state, "DELIVERED");
}

async fn shutdown_gives_unfinished_deliveries_back(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang]);
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(Dispatcher::new(&app.state).run(stop.clone()));
    app.create_wallet("Stuck B.V.").await;
    wait_for_requests(&receiver, 1).await;
    assert_eq!(only_delivery(&app, channel).await.state, "DELIVERING");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the dispatcher stops within its grace period")
        .unwrap();
    let row = only_delivery(&app, channel).await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.lease_token),
        ("PENDING", 0, None)
    );
    assert!(row.due_at <= now_ms());
    assert!(attempts_of(&app, row.id).await.is_empty());
}

async fn a_test_send_is_a_real_signed_request_without_a_delivery_row(app: TestApp) {
    use business_wallet::channels::{test_send, ChannelConfig, WEBHOOK};
    let receiver = Receiver::start().await;
    receiver.script([status(204), status(410)]);
    let webhook = app.state.channels.get(WEBHOOK).unwrap();
    let config = ChannelConfig {
        channel_external_key: "draft".into(),
        config: json!({"url": receiver.url()}),
        secrets: ChannelSecrets::generate(),
    };
    let event_type = business_wallet::events::lookup(IDENTIFIER_CREATED).unwrap();
    let report = test_send(webhook.as_ref(), &config, event_type, "http://wallet.example", None).await;
    assert_eq!(
        (report.outcome, report.status, report.error.as_deref()),
        ("DELIVERED", Some(204), None)
    );
    let request = &receiver.received()[0];
    assert_eq!(request.header("ce-type"), IDENTIFIER_CREATED);
    assert!(verifies(
        &config.secrets.hmac_secret,
        request.header("x-credenco-signature"),
        &request.body
    ));
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery").await, 0);

    let report = test_send(webhook.as_ref(), &config, event_type, "http://wallet.example", None).await;
    assert_eq!((report.outcome, report.status), ("REJECTED", Some(410)));
    assert!(report.error.unwrap().contains("410"));
}

async fn oauth2_tokens_are_cached_and_refreshed_once_on_a_401(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([status(401)]);
    let secrets = ChannelSecrets {
        oauth2_client_secret: Some("client-secret".into()),
        ..ChannelSecrets::generate()
    };
    let token_url = format!("http://127.0.0.1:{}/token", receiver.port);
    let channel = app
        .insert_webhook_channel_with(
            None,
            &json!({"url": receiver.url(), "oauth2": {"tokenUrl": token_url, "clientId": "wallet", "scope": "events"}}),
            &secrets,
            true,
            &[WALLET_CREATED],
        )
        .await;
    app.create_wallet("OAuth B.V.").await;
    app.create_wallet("OAuth Two B.V.").await;

    // One at a time, so that the second delivery finds the cached token.
    let dispatcher = Dispatcher::new(&app.state);
    app.execute("UPDATE integration_delivery SET due_at = due_at + 3600000 WHERE id <> (SELECT MIN(id) FROM integration_delivery)")
        .await;
    assert_eq!(dispatcher.run_once().await.unwrap().delivered, 1);
    app.make_deliveries_due().await;
    assert_eq!(dispatcher.run_once().await.unwrap().delivered, 1);

    let tokens = receiver.token_requests();
    assert_eq!(
        tokens.len(),
        2,
        "one fetch, one refresh after the 401, then the cache: {tokens:?}"
    );
    for form in &tokens {
        assert!(form.contains("grant_type=client_credentials"), "{form}");
        assert!(
            form.contains("client_id=wallet") && form.contains("client_secret=client-secret"),
            "{form}"
        );
        assert!(form.contains("scope=events"), "{form}");
    }
    let authorizations: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("authorization").to_string())
        .collect();
    assert_eq!(authorizations, ["Bearer token-1", "Bearer token-2", "Bearer token-2"]);
    assert!(deliveries_of(&app, channel)
        .await
        .iter()
        .all(|r| r.state == "DELIVERED" && r.attempts == 1));

    let sql = "SELECT request FROM integration_delivery_attempt ORDER BY id LIMIT 1";
    let stored: String = match &app.state.db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_scalar(sql).fetch_one(writer).await.unwrap(),
    };
    assert!(!stored.contains("token-"), "{stored}");
    assert!(stored.contains("Bearer [redacted]"), "{stored}");
}

async fn a_silent_instance_gives_its_deliveries_back_at_once(app: TestApp) {
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    app.create_wallet("Alive B.V.").await;
    app.create_wallet("Killed B.V.").await;
    // Two dispatchers claim one delivery each: one keeps sending heartbeats, the other was
    // killed a minute ago (its lease would last another 59 seconds).
    let now = now_ms();
    app.execute(&format!(
        "INSERT INTO integration_dispatcher (instance_id, started_at, heartbeat_at) VALUES \
         ('alive', {now}, {now}), ('killed', {now}, {})",
        now - 60_000
    ))
    .await;
    for owner in ["alive", "killed"] {
        let request = ClaimRequest {
            limit: 1,
            lease_ms: 60_000,
            skip_channels: &[],
            owner,
        };
        assert_eq!(deliveries::claim(&app.state.db, &request).await.unwrap().len(), 1);
    }

    // The next pass takes the killed one's delivery back and sends it; the live one's stays.
    let outcome = run_once(&app).await;
    assert_eq!((outcome.claimed, outcome.delivered), (1, 1), "{outcome:?}");
    let mut rows = deliveries_of(&app, channel).await;
    rows.sort_by_key(|r| r.state.clone());
    assert_eq!(
        rows.iter().map(|r| (r.state.as_str(), r.attempts)).collect::<Vec<_>>(),
        [("DELIVERED", 2), ("DELIVERING", 1)],
        "{rows:?}"
    );
    assert_eq!(receiver.received().len(), 1);
    let left: Vec<String> = match &app.state.db {
        Db::Postgres(pool) => sqlx::query_scalar("SELECT instance_id FROM integration_dispatcher")
            .fetch_all(pool)
            .await
            .unwrap(),
        Db::Sqlite { writer, .. } => sqlx::query_scalar("SELECT instance_id FROM integration_dispatcher")
            .fetch_all(writer)
            .await
            .unwrap(),
    };
    assert_eq!(left, ["alive"]);
}

/// The real claim loop, while 16 clients keep creating wallets: deliveries arrive during the
/// load, not after it.
async fn deliveries_go_out_while_the_api_is_busy(app: TestApp) {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 25;
    let receiver = Receiver::start().await;
    let channel = platform_channel(&app, &receiver.url(), &ChannelSecrets::generate()).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(Dispatcher::new(&app.state).run(stop.clone()));
    let app = std::sync::Arc::new(app);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let app = app.clone();
        clients.spawn(async move {
            for n in 0..PER_CLIENT {
                app.create_wallet(&format!("Busy {client}-{n}")).await;
            }
        });
    }
    // Halfway through the load, deliveries must already be arriving.
    let total = CLIENTS * PER_CLIENT;
    let mut delivered_at_half = None;
    loop {
        while let Some(done) = clients.try_join_next() {
            done.unwrap();
        }
        if clients.is_empty() {
            break;
        }
        if delivered_at_half.is_none() && app.count("SELECT COUNT(*) FROM wallet").await >= (total / 2) as i64 {
            delivered_at_half = Some(receiver.received().len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_at_end = receiver.received().len();
    let half = delivered_at_half.expect("the load passed its half");
    assert!(half > 0, "nothing was delivered in the first half of the load");
    // Most of what was accepted went out while the API was still busy.
    assert!(
        delivered_at_end * 2 >= total,
        "only {delivered_at_end} of {total} delivered when the load ended ({half} at its half)"
    );
    wait_for_requests(&receiver, total).await;
    stop.cancel();
    running.await.unwrap();
    let rows = deliveries_of(&app, channel).await;
    assert_eq!(rows.len(), total);
    assert!(
        rows.iter().all(|r| r.state == "DELIVERED" && r.attempts == 1),
        "{rows:?}"
    );
    // Each event once: no delivery was attempted twice.
    assert_eq!(receiver.received().len(), total);
}

const STATE_CHANGED: &str = "com.credenco.businesswallet.integration-channel.state-changed.v1";

/// FAILING after 2 failed attempts in a row, PAUSED after 4; no pause by time.
fn a_short_failure_ladder(settings: &mut Settings) {
    settings.integration.failure.failing_after_failures = 2;
    settings.integration.failure.paused_after_failures = 4;
    settings.integration.failure.paused_after_secs = 0;
}

async fn add_identifier(app: &TestApp, wallet: &str, name: &str) {
    let response = app
        .post(
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&app.admin_token),
            &json!({"identifierType": "DID", "displayName": name, "didType": "did:web", "domain": "acme.example"}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

/// The (state, previousState) of every ladder event a receiver got, in arrival order.
fn ladder_events(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .received()
        .iter()
        .filter(|r| r.header("ce-type") == STATE_CHANGED)
        .map(|r| {
            let data: Value = serde_json::from_slice(&r.body).unwrap();
            (
                data["state"].as_str().unwrap().to_string(),
                data["previousState"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn a_failing_channel_is_paused_and_resumed_without_losing_anything(app: TestApp) {
    let failing = Receiver::start().await;
    failing.script(std::iter::repeat_n(status(500), 4));
    let watcher = Receiver::start().await;
    let wallet = app.create_wallet("Ladder B.V.").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let channel = app
        .insert_webhook_channel(
            Some(&w),
            &failing.url(),
            &ChannelSecrets::generate(),
            true,
            &[IDENTIFIER_CREATED],
        )
        .await;
    let key = app
        .texts(&format!(
            "SELECT channel_external_key FROM integration_channel WHERE id = {channel}"
        ))
        .await[0]
        .clone()
        .unwrap();
    // The platform's operators watch the ladder; nothing else is subscribed to it.
    app.insert_webhook_channel(
        None,
        &watcher.url(),
        &ChannelSecrets::generate(),
        true,
        &[STATE_CHANGED],
    )
    .await;
    let state_of = || async {
        let (status, body) = app
            .call(
                reqwest::Method::GET,
                &format!("/api/wallets/{w}/integration-channels/{key}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["deliveryState"].as_str().unwrap().to_string()
    };
    assert_eq!(state_of().await, "ACTIVE");

    // Two failed attempts: FAILING (its deliveries still go out).
    add_identifier(&app, &w, "one").await;
    add_identifier(&app, &w, "two").await;
    run_once(&app).await;
    assert_eq!(failing.received().len(), 2);
    assert_eq!(state_of().await, "FAILING");
    // Two more: PAUSED.
    app.make_deliveries_due().await;
    run_once(&app).await;
    assert_eq!(failing.received().len(), 4);
    assert_eq!(state_of().await, "PAUSED");
    run_once(&app).await;
    assert_eq!(
        ladder_events(&watcher),
        [
            ("FAILING".to_string(), "ACTIVE".to_string()),
            ("PAUSED".to_string(), "FAILING".to_string())
        ]
    );

    // Paused: new events wait with the old ones, and nothing is attempted, however often the
    // dispatcher looks.
    add_identifier(&app, &w, "three").await;
    for _ in 0..3 {
        app.make_deliveries_due().await;
        run_once(&app).await;
    }
    assert_eq!(failing.received().len(), 4);
    let waiting = deliveries_of(&app, channel).await;
    assert_eq!(waiting.len(), 3);
    assert!(
        waiting.iter().all(|r| r.state == "PENDING" && r.lease_token.is_none()),
        "{waiting:?}"
    );

    // The receiver works again; Resume sends everything that waited.
    let (status, resumed) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/wallets/{w}/integration-channels/{key}/resume"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["deliveryState"], "ACTIVE");
    assert_eq!(run_once(&app).await.delivered, 3 + 1);
    assert!(deliveries_of(&app, channel)
        .await
        .iter()
        .all(|r| r.state == "DELIVERED"));
    assert_eq!(failing.received().len(), 4 + 3);
    run_once(&app).await;
    assert_eq!(
        ladder_events(&watcher).last().unwrap(),
        &("ACTIVE".to_string(), "PAUSED".to_string())
    );

    // Every step is in the wallet's history.
    let (status, history) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/wallets/{w}/history?event=INTEGRATION"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let steps: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] != "CHANNEL_CREATED")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["details"]["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("CHANNEL_RESUMED".to_string(), "ACTIVE".to_string()),
            ("CHANNEL_STATE_CHANGED".to_string(), "PAUSED".to_string()),
            ("CHANNEL_STATE_CHANGED".to_string(), "FAILING".to_string()),
        ]
    );
}

/// A platform webhook channel to `url` for identifier events, with the given `ordering`
/// (through the API); its key.
async fn ordered_channel(app: &TestApp, url: &str, ordering: &str) -> String {
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({
                "name": format!("ordered {ordering}"), "type": "WEBHOOK", "ordering": ordering,
                "eventTypeFilters": [IDENTIFIER_CREATED], "webhook": {"url": url}
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ordering"], ordering);
    body["channelExternalKey"].as_str().unwrap().to_string()
}

/// Runs the dispatcher until a pass claims nothing (bounded).
async fn run_until_idle(app: &TestApp) {
    for _ in 0..20 {
        if run_once(app).await.claimed == 0 {
            return;
        }
    }
    panic!("the dispatcher kept claiming");
}

/// The identifier names (`displayName`) a receiver got for `wallet`, in arrival order, with
/// their `ce-sequence`.
fn arrivals(receiver: &Receiver, wallet: &str) -> Vec<(String, u64)> {
    receiver
        .received()
        .iter()
        .filter(|r| r.header("ce-walletexternalkey") == wallet)
        .map(|r| {
            let data: Value = serde_json::from_slice(&r.body).unwrap();
            let sequence = r.header("ce-sequence");
            assert_eq!(
                sequence.len(),
                20,
                "{sequence}: fixed width, so that text order is number order"
            );
            (
                data["displayName"].as_str().unwrap().to_string(),
                sequence.parse().unwrap(),
            )
        })
        .collect()
}

fn names(arrived: &[(String, u64)]) -> Vec<&str> {
    arrived.iter().map(|(name, _)| name.as_str()).collect()
}

/// Three events each of wallets A and B to a receiver that refuses A's second: A's third waits
/// behind it, B's all arrive; after the replay A's arrive in order.
async fn per_wallet_ordering_holds_back_only_the_wallet_of_a_failed_delivery(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.refuse_containing(Some(("alpha two", 404)));
    ordered_channel(&app, &receiver.url(), "PER_WALLET").await;
    let a = app.create_wallet("Alpha").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.create_wallet("Beta").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["alpha one", "alpha two", "alpha three"] {
        add_identifier(&app, &a, name).await;
    }
    for name in ["beta one", "beta two", "beta three"] {
        add_identifier(&app, &b, name).await;
    }
    run_until_idle(&app).await;
    assert_eq!(names(&arrivals(&receiver, &a)), ["alpha one", "alpha two"]);
    assert_eq!(names(&arrivals(&receiver, &b)), ["beta one", "beta two", "beta three"]);

    // The log says what waits behind what.
    let (status, log) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries?wallet={a}&state=PENDING,FAILED"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    let failed = items.iter().find(|d| d["state"] == "FAILED").unwrap();
    let waiting = items.iter().find(|d| d["state"] == "PENDING").unwrap();
    assert_eq!(waiting["waitingBehind"], failed["deliveryExternalKey"]);
    assert_eq!(failed["waitingBehind"], Value::Null);
    // However often the dispatcher looks, it waits.
    app.make_deliveries_due().await;
    run_until_idle(&app).await;
    assert_eq!(arrivals(&receiver, &a).len(), 2);

    // Replaying the head releases the rest, in order.
    receiver.refuse_containing(None);
    let head = failed["deliveryExternalKey"].as_str().unwrap();
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/integration-deliveries/{head}/replay"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    run_until_idle(&app).await;
    let arrived = arrivals(&receiver, &a);
    assert_eq!(names(&arrived), ["alpha one", "alpha two", "alpha two", "alpha three"]);
    // `sequence` counts each wallet's events without gaps (its wallet.created event is 1).
    let sequences: Vec<u64> = arrived.iter().map(|(_, s)| *s).collect();
    assert_eq!(sequences, [2, 3, 3, 4]);
    let sequences: Vec<u64> = arrivals(&receiver, &b).iter().map(|(_, s)| *s).collect();
    assert_eq!(sequences, [2, 3, 4]);
}

/// The default: a FAILED delivery holds nothing back.
async fn without_ordering_nothing_waits_behind_a_failed_delivery(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.refuse_containing(Some(("alpha two", 404)));
    ordered_channel(&app, &receiver.url(), "BEST_EFFORT").await;
    let a = app.create_wallet("Alpha").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["alpha one", "alpha two", "alpha three"] {
        add_identifier(&app, &a, name).await;
    }
    run_until_idle(&app).await;
    let mut arrived = names(&arrivals(&receiver, &a))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    arrived.sort();
    assert_eq!(arrived, ["alpha one", "alpha three", "alpha two"]);
    let (_, log) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries?wallet={a}&state=PENDING,FAILED"),
            None,
        )
        .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["state"], "FAILED");
    assert_eq!(items[0]["waitingBehind"], Value::Null);
}
