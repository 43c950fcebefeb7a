//! The pull channel in the Web UI: the form offers the type with its lease, and a pull
//! channel's page shows the endpoint its receiver fetches and how far the receiver has got.

use serde_json::{json, Value};

use super::{common::Backend, csrf_of, page, post, sign_in, IDENTIFIER_CREATED};
use crate::both_backend_kinds;

async fn the_form_offers_pull_and_the_page_shows_the_cursor_state(backend: Backend) {
    let app = super::common::spawn_app_with(backend, |s| s.integration.channels.pull.enabled = true).await;
    let wallet = app.create_wallet("Pull UI").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.token(
        "operator",
        &["WALLET_INTEGRATION_CHANNEL_CRUD", "WALLET_INTEGRATION_DELIVERY_CRUD"],
        Some(&wallet),
    );
    let cookie = sign_in(&app, &token).await;
    let (status, form) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    assert_eq!(status, 200);
    assert!(form.contains("<option value=\"PULL\""), "the type is offered: {form}");
    assert!(form.contains("name=\"pull_lease_seconds\""), "{form}");

    // Created from the form, with its lease; a lease that is not a number is named.
    let csrf = csrf_of(&form);
    let bad = post(
        &app,
        &cookie,
        "/ui/integrations/channels",
        &[
            ("_csrf", csrf.as_str()),
            ("name", "warehouse"),
            ("type", "PULL"),
            ("event", IDENTIFIER_CREATED),
            ("pull_lease_seconds", "soon"),
        ],
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("must be a whole number of seconds"));
    let created = post(
        &app,
        &cookie,
        "/ui/integrations/channels",
        &[
            ("_csrf", csrf.as_str()),
            ("name", "warehouse"),
            ("type", "PULL"),
            ("event", IDENTIFIER_CREATED),
            ("enabled", "on"),
            ("pull_lease_seconds", "45"),
        ],
    )
    .await;
    assert!(
        created.status().is_success() || created.status().is_redirection(),
        "{}",
        created.status()
    );
    let (status, channels) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{wallet}/integration-channels"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let channel = &channels[0];
    assert_eq!(channel["type"], "PULL", "{channels}");
    assert_eq!(channel["pull"], json!({"leaseSeconds": 45}), "{channels}");
    let key = channel["channelExternalKey"].as_str().unwrap().to_string();

    // Two events; the receiver fetches both and commits one batch of one.
    for name in ["a", "b"] {
        let response = app
            .post(
                &format!("/api/v1/wallets/{wallet}/identifiers"),
                Some(&app.admin_token),
                &json!({"identifierType": "JWK", "displayName": name}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    let events = format!("/api/wallets/{wallet}/integration-channels/{key}/events");
    let first: Value = app
        .client
        .get(app.url(&format!("{events}?limit=1")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["cursor"].as_str().unwrap();
    let response = app
        .client
        .post(app.url(&format!("{events}/commit")))
        .bearer_auth(&token)
        .json(&json!({ "cursor": cursor }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let second = app
        .client
        .get(app.url(&format!("{events}?limit=1&cursor={cursor}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);

    let (status, html) = page(&app, &cookie, &format!("/ui/integrations/channels/{key}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("GET {events}?cursor=")), "the endpoint: {html}");
    assert!(html.contains("data-testid=\"pull-waiting\">0 events"), "{html}");
    assert!(html.contains("data-testid=\"pull-leased\">1 events"), "{html}");
    assert!(html.contains("(2 fetches, last"), "{html}");
    assert!(html.contains("(1 commits, last"), "{html}");
    assert!(html.contains("value=\"45\""), "the lease is in the form: {html}");
}

both_backend_kinds!(the_form_offers_pull_and_the_page_shows_the_cursor_state);
