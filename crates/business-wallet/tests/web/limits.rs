//! Channel limits in the Web UI: the form sets them (a value that is not a number is named),
//! the edit form shows them as stored, and a channel whose receiver asked for a pause says so.

use serde_json::json;

use super::{common::TestApp, csrf_of, page, post, sign_in, wallet_with_channel, IDENTIFIER_CREATED};
use crate::both_backends;

async fn the_form_sets_limits_and_the_page_shows_a_receivers_pause(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Limited").await;
    let token = app.token("operator", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let path = format!("/ui/integrations/channels/{channel}");
    let (_, form) = page(&app, &cookie, &path).await;
    assert!(form.contains("name=\"limit_rate\""), "{form}");
    let csrf = csrf_of(&form);
    let fields = |rate: &'static str| -> Vec<(&str, &str)> {
        vec![
            ("_csrf", csrf.as_str()),
            ("name", "Limited"),
            ("type", "WEBHOOK"),
            ("enabled", "on"),
            ("event", IDENTIFIER_CREATED),
            ("url", "https://receiver.example/hook"),
            ("limit_rate", rate),
            ("limit_in_flight", "4"),
        ]
    };
    let bad = fields("fast");
    let refused = post(&app, &cookie, &path, &bad).await;
    assert_eq!(refused.status(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("must be a number"), "{text}");
    assert!(text.contains("value=\"fast\""), "the typed value is shown again");

    let good = fields("12.5");
    let saved = post(&app, &cookie, &path, &good).await;
    assert_eq!(saved.status(), 303);
    let (_, view) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{wallet}/integration-channels/{channel}"),
            None,
        )
        .await;
    assert_eq!(
        view["limits"],
        json!({"eventsPerSecond": 12.5, "burst": 2, "maxInFlight": 4}),
        "the burst left empty is a tenth of a second's worth: {view}"
    );
    let (_, form) = page(&app, &cookie, &path).await;
    assert!(
        form.contains("name=\"limit_rate\" inputmode=\"decimal\" value=\"12.5\""),
        "{form}"
    );
    assert!(
        form.contains("name=\"limit_burst\" inputmode=\"numeric\" value=\"2\""),
        "{form}"
    );
    assert!(!form.contains("data-testid=\"throttled-notice\""));

    // The receiver asked for a pause (as a 429 with Retry-After does): the page says until when.
    app.execute(&format!(
        "UPDATE integration_channel SET throttled_until = {} WHERE channel_external_key = '{channel}'",
        business_wallet::store::now_ms() + 60_000
    ))
    .await;
    let (_, form) = page(&app, &cookie, &path).await;
    assert!(form.contains("data-testid=\"throttled-notice\""), "{form}");
    assert!(form.contains("asked for a pause"), "{form}");
}

both_backends!(the_form_sets_limits_and_the_page_shows_a_receivers_pause);
