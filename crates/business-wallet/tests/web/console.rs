//! The console's safer actions and reading aids over HTTP: bulk replay and dismiss behind a
//! confirmation that shows how many deliveries match, a notice after each action, every error of
//! the channel form at once, a draft test send that keeps the form, and the log's search by
//! event id, event type and time in UTC.

use serde_json::{json, Value};

use super::common::{spawn_app_with, Backend, TestApp};
use super::{csrf_of, page, post, sign_in, wallet_with_channel};
use crate::{both_backend_kinds, both_backends};

const OPERATOR: [&str; 3] = [
    "WALLET_INTEGRATION_CHANNEL_CRUD",
    "WALLET_INTEGRATION_DELIVERY_CRUD",
    "WALLET_IDENTIFIER_CRUD",
];

/// A wallet with a channel and `n` FAILED deliveries on it; their event ids, oldest first.
async fn failed_deliveries(app: &TestApp, n: usize) -> (String, String, Vec<String>) {
    let (wallet, channel) = wallet_with_channel(app, "Orders").await;
    for i in 0..n {
        let response = app
            .post(
                &format!("/api/v1/wallets/{wallet}/identifiers"),
                Some(&app.admin_token),
                &json!({"identifierType": "JWK", "displayName": format!("key {i}")}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    app.execute("UPDATE integration_delivery SET state = 'FAILED'").await;
    let events = app
        .texts(
            "SELECT e.event_id FROM integration_delivery d JOIN integration_event e ON e.id = d.event_id ORDER BY d.id",
        )
        .await
        .into_iter()
        .flatten()
        .collect();
    (wallet, channel, events)
}

async fn failed_count(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM integration_delivery WHERE state = 'FAILED'")
        .await
}

/// Follows a 303 and returns the page it leads to.
async fn follow(app: &TestApp, cookie: &str, response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let (status, html) = page(app, cookie, &location).await;
    assert_eq!(status, 200, "{location}");
    (location, html)
}

async fn bulk_actions_show_their_count_and_act_on_confirmation(app: TestApp) {
    let (wallet, _, events) = failed_deliveries(&app, 3).await;
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;

    // The log offers both bulk actions, as links to their confirmation.
    let (_, log) = page(&app, &cookie, "/ui/integrations/deliveries").await;
    assert!(log.contains("href=\"/ui/integrations/deliveries/replay\""), "{log}");
    assert!(log.contains("href=\"/ui/integrations/deliveries/dismiss\""));

    // The confirmation counts what matches and changes nothing.
    let (status, confirm) = page(&app, &cookie, "/ui/integrations/deliveries/dismiss").await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains("3 FAILED deliveries match these filters."),
        "{confirm}"
    );
    assert!(confirm.contains("Dismiss 3 deliveries"));
    let one = &events[1];
    let (_, confirm) = page(
        &app,
        &cookie,
        &format!("/ui/integrations/deliveries/dismiss?event_id={one}"),
    )
    .await;
    assert!(
        confirm.contains("1 FAILED delivery matches these filters."),
        "{confirm}"
    );
    assert!(confirm.contains(one.as_str()), "the filter is shown");
    assert_eq!(failed_count(&app).await, 3, "nothing changed before the confirmation");

    // Confirmed: only the matching one, and the log says how many with the filter kept.
    let csrf = csrf_of(&confirm);
    let done = post(
        &app,
        &cookie,
        "/ui/integrations/deliveries/dismiss",
        &[("_csrf", csrf.as_str()), ("event_id", one.as_str())],
    )
    .await;
    let (location, html) = follow(&app, &cookie, done).await;
    assert_eq!(
        location,
        format!("/ui/integrations/deliveries?event_id={one}&done=dismissed&n=1")
    );
    assert!(html.contains("Failed deliveries dismissed: 1."), "{html}");
    assert!(html.contains(&format!("value=\"{one}\"")), "the filter stays set");
    assert_eq!(failed_count(&app).await, 2);

    let done = post(
        &app,
        &cookie,
        "/ui/integrations/deliveries/replay",
        &[("_csrf", csrf.as_str())],
    )
    .await;
    let (_, html) = follow(&app, &cookie, done).await;
    assert!(html.contains("Failed deliveries queued again: 2."), "{html}");
    assert_eq!(failed_count(&app).await, 0);
    let (_, confirm) = page(&app, &cookie, "/ui/integrations/deliveries/replay").await;
    assert!(
        confirm.contains("No FAILED delivery matches these filters."),
        "{confirm}"
    );
    assert!(!confirm.contains("type=\"submit\">Replay"), "nothing to confirm");

    // Each is one audit entry with its count and filter.
    let (_, history) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/wallets/{wallet}/history?event=INTEGRATION"),
            None,
        )
        .await;
    let entry = |action: &str| -> Value {
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("{action} in {history}"))
    };
    let dismissed = entry("DELIVERIES_DISMISSED");
    assert_eq!(
        (&dismissed["details"]["count"], &dismissed["details"]["eventId"]),
        (&json!(1), &json!(one))
    );
    assert_eq!(entry("DELIVERIES_REPLAYED")["details"]["count"], 2);

    // Someone who may only read gets no confirmation page.
    let reader = app.token("reader", &["WALLET_INTEGRATION_DELIVERY_READ"], Some(&wallet));
    let reader = sign_in(&app, &reader).await;
    let (status, _) = page(&app, &reader, "/ui/integrations/deliveries/replay").await;
    assert_eq!(status, 403);
}

async fn single_actions_and_channel_changes_leave_a_notice(app: TestApp) {
    let (wallet, channel, _) = failed_deliveries(&app, 1).await;
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;
    let key = app
        .texts("SELECT delivery_external_key FROM integration_delivery")
        .await
        .remove(0)
        .unwrap();
    let (_, detail) = page(&app, &cookie, &format!("/ui/integrations/deliveries/{key}")).await;
    let csrf = csrf_of(&detail);
    let done = post(
        &app,
        &cookie,
        &format!("/ui/integrations/deliveries/{key}/replay"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    let (_, html) = follow(&app, &cookie, done).await;
    assert!(html.contains("Delivery queued again"), "{html}");
    let (_, html) = page(&app, &cookie, &format!("/ui/integrations/deliveries/{key}")).await;
    assert!(
        !html.contains("Delivery queued again"),
        "the notice is shown once, after the action"
    );

    let done = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/toggle"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    let (_, html) = follow(&app, &cookie, done).await;
    assert!(html.contains("Channel disabled"), "{html}");
    // A made-up notice shows nothing.
    let (_, html) = page(&app, &cookie, "/ui/integrations/channels?done=%3Cb%3Ehacked").await;
    assert!(!html.contains("data-testid=\"notice\""));
}

async fn the_channel_form_shows_every_error_at_once(app: TestApp) {
    let (wallet, _) = wallet_with_channel(&app, "Existing").await;
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;
    let (_, form) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    let csrf = csrf_of(&form);
    let invalid = post(
        &app,
        &cookie,
        "/ui/integrations/channels",
        &[
            ("_csrf", csrf.as_str()),
            ("name", " "),
            ("type", "WEBHOOK"),
            ("url", "not a url"),
            ("timeout_ms", "soon"),
        ],
    )
    .await;
    assert_eq!(invalid.status(), 400);
    let html = invalid.text().await.unwrap();
    assert!(html.contains("4 things need fixing"), "{html}");
    for message in [
        "must be a whole number of milliseconds",
        "name: must not be empty",
        "eventTypeFilters: must name at least one event type",
        "webhook.url:",
    ] {
        assert_eq!(
            html.matches(message).count(),
            2,
            "{message} in the summary and beside its field: {html}"
        );
    }
    assert!(html.contains("value=\"not a url\""), "what was typed is kept");
    assert!(html.contains("value=\"soon\""));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        1,
        "nothing saved"
    );
}

async fn a_failed_draft_test_keeps_the_form(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.integration.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let wallet = app.create_wallet("Draft").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;
    // A port with nothing listening: the test send fails.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/hook");
    let (_, form) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    let csrf = csrf_of(&form);
    let response = post(
        &app,
        &cookie,
        "/ui/integrations/channels/test",
        &[
            ("_csrf", csrf.as_str()),
            ("name", "Draft receiver"),
            ("description", "typed once"),
            ("type", "WEBHOOK"),
            ("event", super::IDENTIFIER_CREATED),
            ("url", url.as_str()),
            ("timeout_ms", "2000"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("data-testid=\"test-result\""), "{html}");
    assert!(!html.contains(">DELIVERED<"), "the test did not get through: {html}");
    for kept in [
        "value=\"Draft receiver\"",
        ">typed once</textarea>",
        &format!("value=\"{url}\""),
        "value=\"2000\"",
    ] {
        assert!(html.contains(kept), "{kept} is kept: {html}");
    }
    assert!(
        html.contains("action=\"/ui/integrations/channels\""),
        "the form can be saved from here"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        0,
        "a draft is not saved"
    );
}

async fn the_log_searches_by_event_id_type_and_utc_time(app: TestApp) {
    let (wallet, _, events) = failed_deliveries(&app, 2).await;
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;
    let rows = |html: &str| html.matches("<tr data-delivery=").count();
    let (_, html) = page(&app, &cookie, "/ui/integrations/deliveries").await;
    assert_eq!(rows(&html), 2);
    assert!(html.contains(" UTC</time>"), "times are shown in UTC: {html}");
    assert!(
        !html.contains("Wallet of the event"),
        "a wallet's own log has no wallet filter"
    );

    let (_, html) = page(
        &app,
        &cookie,
        &format!("/ui/integrations/deliveries?event_id={}", events[0]),
    )
    .await;
    assert_eq!(rows(&html), 1);
    let summary = format!(
        "data-testid=\"filter-summary\">active deliveries · event id {}<",
        events[0]
    );
    assert!(html.contains(&summary), "the folded filters say which are set: {html}");
    let (_, html) = page(
        &app,
        &cookie,
        "/ui/integrations/deliveries?event_type=com.credenco.businesswallet.wallet.created.v1",
    )
    .await;
    assert_eq!(rows(&html), 0, "the channel only gets identifier events");
    let (_, html) = page(
        &app,
        &cookie,
        "/ui/integrations/deliveries?from=2000-01-01+00%3A00&to=2999-01-01",
    )
    .await;
    assert_eq!(rows(&html), 2);
    let (_, html) = page(&app, &cookie, "/ui/integrations/deliveries?from=2999-01-01+00%3A00").await;
    assert_eq!(rows(&html), 0);
    for bad in ["event_id=nope", "from=01%2F05%2F2026", "event_type=unknown.v1"] {
        let (status, html) = page(&app, &cookie, &format!("/ui/integrations/deliveries?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {html}");
        assert!(html.contains("data-testid=\"error-message\""));
    }

    // The platform view can filter by the event's wallet.
    let admin = sign_in(&app, &app.admin_token).await;
    let (status, html) = page(&app, &admin, "/ui/integrations/deliveries?wallet=platform").await;
    assert_eq!(status, 200);
    assert!(html.contains("Wallet of the event"), "{html}");
    let (status, _) = page(
        &app,
        &admin,
        &format!("/ui/integrations/deliveries?wallet=platform&event_wallet={wallet}"),
    )
    .await;
    assert_eq!(status, 200);
}

/// A PAUSED channel says so in the list and on its page, with a Resume button that sends what
/// waited; an ACTIVE one shows no button.
async fn a_paused_channel_shows_its_state_and_resumes(app: TestApp) {
    let (wallet, channel, _) = failed_deliveries(&app, 2).await;
    app.execute("UPDATE integration_delivery SET state = 'PENDING', due_at = 4102444800000")
        .await;
    app.execute("UPDATE integration_channel SET delivery_state = 'PAUSED', delivery_state_since = 1767225600000")
        .await;
    let cookie = sign_in(&app, &app.token("operator", &OPERATOR, Some(&wallet))).await;

    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(list.contains("data-delivery-state=\"PAUSED\""), "{list}");
    assert!(
        list.contains(&format!("/ui/integrations/channels/{channel}/resume")),
        "{list}"
    );
    let (_, detail) = page(&app, &cookie, &format!("/ui/integrations/channels/{channel}")).await;
    assert!(detail.contains("data-testid=\"delivery-state-notice\""), "{detail}");
    assert!(detail.contains("No attempts are made"), "{detail}");
    assert!(detail.contains("2026-01-01 00:00:00 UTC"), "{detail}");

    let csrf = csrf_of(&detail);
    let done = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/resume"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    let (_, html) = follow(&app, &cookie, done).await;
    assert!(html.contains("Channel resumed"), "{html}");
    assert!(html.contains("data-delivery-state=\"ACTIVE\""), "{html}");
    assert!(
        !html.contains(&format!("/ui/integrations/channels/{channel}/resume")),
        "{html}"
    );
    // What waited is due now.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_delivery WHERE state = 'PENDING' AND due_at < 4102444800000")
            .await,
        2
    );

    // Someone who may only read sees the state but no button.
    app.execute("UPDATE integration_channel SET delivery_state = 'PAUSED'")
        .await;
    let reader = sign_in(
        &app,
        &app.token("reader", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&wallet)),
    )
    .await;
    let (status, detail) = page(&app, &reader, &format!("/ui/integrations/channels/{channel}")).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail.contains("No attempts are made"), "{detail}");
    assert!(!detail.contains("/resume"), "{detail}");
}

both_backends!(
    a_paused_channel_shows_its_state_and_resumes,
    bulk_actions_show_their_count_and_act_on_confirmation,
    single_actions_and_channel_changes_leave_a_notice,
    the_channel_form_shows_every_error_at_once,
    the_log_searches_by_event_id_type_and_utc_time
);

both_backend_kinds!(a_failed_draft_test_keeps_the_form);
