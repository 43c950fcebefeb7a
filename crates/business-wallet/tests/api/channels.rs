//! The channels API: create (secret shown once), read (never a secret), replace (secrets
//! kept), rotate, delete, names, validation, the SSRF gate on save, test sends, and the audit
//! log.

use business_wallet::domain::{ChannelKey, Scope, WalletKey};
use serde_json::{json, Value};

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::{both_backends, receiver};

/// The stored row of a wallet's channel.
async fn stored_channel(app: &TestApp, wallet: &str, channel: &str) -> business_wallet::store::channels::ChannelRow {
    business_wallet::store::channels::find(
        &app.state.db,
        &Scope::Wallet(WalletKey::parse(wallet).unwrap()),
        &ChannelKey::parse(channel).unwrap(),
    )
    .await
    .unwrap()
    .expect("the channel is stored")
}

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

fn webhook_body(name: &str, url: &str) -> Value {
    json!({
        "name": name,
        "description": "Our ERP",
        "type": "WEBHOOK",
        "eventTypeFilters": [IDENTIFIER_CREATED],
        "webhook": {
            "url": url,
            "timeoutMs": 5000,
            "apiKey": {"headerName": "X-Api-Key", "value": "api-key-value-123"},
            "oauth2": {"tokenUrl": "https://idp.example/token", "clientId": "wallet", "clientSecret": "client-secret-456", "scope": "events"}
        }
    })
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn channel_lifecycle(app: TestApp) {
    let wallet = app.create_wallet("Channels").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let base = format!("/api/wallets/{w}/integration-channels");
    let admin = app.admin_token.clone();

    let (status, created) = send(
        &app,
        reqwest::Method::POST,
        &base,
        &admin,
        Some(&webhook_body("erp", "https://erp.example/hooks")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["hmacSecret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let key = created["channelExternalKey"].as_str().unwrap().to_string();
    assert_eq!(created["webhook"]["apiKey"], json!({"headerName": "X-Api-Key"}));
    assert_eq!(created["webhook"]["oauth2"]["clientId"], "wallet");
    assert!(!created.to_string().contains("api-key-value-123") && !created.to_string().contains("client-secret-456"));

    // Never again: not on read, not in the list.
    let (status, read) = send(&app, reqwest::Method::GET, &format!("{base}/{key}"), &admin, None).await;
    assert_eq!(status, 200);
    let (_, list) = send(&app, reqwest::Method::GET, &base, &admin, None).await;
    for text in [read.to_string(), list.to_string()] {
        assert!(!text.contains(&secret) && !text.contains("hmacSecret"));
        assert!(!text.contains("api-key-value-123") && !text.contains("client-secret-456"));
    }
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(read["eventTypeFilters"], json!([IDENTIFIER_CREATED]));

    // Secrets are stored encrypted.
    let stored = stored_channel(&app, w, &key).await;
    let sealed = stored.secrets.clone().unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("whsec_"));
    let secrets = business_wallet::channels::ChannelSecrets::open(&app.state.secrets, &sealed).unwrap();
    assert_eq!(secrets.hmac_secret, secret);

    // Full replace without secret values keeps them, and never changes the HMAC secret.
    let mut replacement = webhook_body("erp-renamed", "https://erp.example/v2");
    replacement["webhook"]["apiKey"] = json!({"headerName": "X-Key"});
    replacement["webhook"]["oauth2"]
        .as_object_mut()
        .unwrap()
        .remove("clientSecret");
    replacement["eventTypeFilters"] = json!([WALLET_CREATED, IDENTIFIER_CREATED]);
    replacement["enabled"] = json!(false);
    let (status, replaced) = send(
        &app,
        reqwest::Method::PUT,
        &format!("{base}/{key}"),
        &admin,
        Some(&replacement),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["name"], "erp-renamed");
    assert_eq!(replaced["enabled"], false);
    assert!(replaced.get("hmacSecret").is_none());
    let stored = stored_channel(&app, w, &key).await;
    let secrets =
        business_wallet::channels::ChannelSecrets::open(&app.state.secrets, stored.secrets.as_ref().unwrap()).unwrap();
    assert_eq!(secrets.hmac_secret, secret);
    assert_eq!(secrets.api_key_value.as_deref(), Some("api-key-value-123"));
    assert_eq!(secrets.oauth2_client_secret.as_deref(), Some("client-secret-456"));
    // Dropping the API key block drops its secret; a new one needs its value.
    let mut without_key = replacement.clone();
    without_key["webhook"].as_object_mut().unwrap().remove("apiKey");
    assert_eq!(
        send(
            &app,
            reqwest::Method::PUT,
            &format!("{base}/{key}"),
            &admin,
            Some(&without_key)
        )
        .await
        .0,
        200
    );
    let (status, body) = send(
        &app,
        reqwest::Method::PUT,
        &format!("{base}/{key}"),
        &admin,
        Some(&replacement),
    )
    .await;
    // The body is well formed; it conflicts with the stored channel, which has no key to keep.
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("apiKey.value"));

    // Rotation: a new secret, shown once; the old one keeps signing for the grace window.
    let (status, rotated) = send(
        &app,
        reqwest::Method::POST,
        &format!("{base}/{key}/rotate-secret"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new_secret = rotated["hmacSecret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(rotated["previousSecretValidUntil"].is_string());
    let (_, read) = send(&app, reqwest::Method::GET, &format!("{base}/{key}"), &admin, None).await;
    assert!(!read.to_string().contains(new_secret));

    // Delete.
    let (status, _) = send(&app, reqwest::Method::DELETE, &format!("{base}/{key}"), &admin, None).await;
    assert_eq!(status, 204);
    assert_eq!(
        send(&app, reqwest::Method::GET, &format!("{base}/{key}"), &admin, None)
            .await
            .0,
        404
    );

    // Every change is in the audit log, newest first, with its actor.
    let (status, history) = send(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/wallets/{w}/history?event=INTEGRATION"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "CHANNEL_DELETED",
            "CHANNEL_SECRET_ROTATED",
            "CHANNEL_UPDATED",
            "CHANNEL_UPDATED",
            "CHANNEL_CREATED"
        ]
    );
    assert!(history["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "admin"));
}

async fn names_and_fields_are_validated(app: TestApp) {
    let a = app.create_wallet("A").await;
    let a = a["walletExternalKey"].as_str().unwrap();
    let b = app.create_wallet("B").await;
    let b = b["walletExternalKey"].as_str().unwrap();
    let admin = app.admin_token.clone();
    let path_a = format!("/api/wallets/{a}/integration-channels");
    let path_b = format!("/api/wallets/{b}/integration-channels");
    assert_eq!(
        send(
            &app,
            reqwest::Method::POST,
            &path_a,
            &admin,
            Some(&webhook_body("dup", "https://a.example"))
        )
        .await
        .0,
        201
    );
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &path_a,
        &admin,
        Some(&webhook_body("dup", "https://a.example")),
    )
    .await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["status"], 412);
    // The same name in another wallet, and among platform channels, is fine.
    assert_eq!(
        send(
            &app,
            reqwest::Method::POST,
            &path_b,
            &admin,
            Some(&webhook_body("dup", "https://a.example"))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        send(
            &app,
            reqwest::Method::POST,
            "/api/integration-channels",
            &admin,
            Some(&webhook_body("dup", "https://a.example"))
        )
        .await
        .0,
        201
    );

    let mut cases: Vec<(Value, u16, &str)> = Vec::new();
    let mut long_description = webhook_body("x1", "https://a.example");
    long_description["description"] = json!("d".repeat(2049));
    cases.push((long_description, 400, "description"));
    let mut unknown_type = webhook_body("x2", "https://a.example");
    unknown_type["eventTypeFilters"] = json!(["com.credenco.businesswallet.wallet.deleted.v1"]);
    cases.push((unknown_type, 400, "unknown event type"));
    let mut no_types = webhook_body("x3", "https://a.example");
    no_types["eventTypeFilters"] = json!([]);
    cases.push((no_types, 400, "eventTypeFilters"));
    let mut kafka = webhook_body("x4", "https://a.example");
    kafka["type"] = json!("KAFKA");
    kafka.as_object_mut().unwrap().remove("webhook");
    kafka["kafka"] = json!({"topic": "wallet-events"});
    cases.push((kafka, 400, "switched off"));
    let mut no_block = webhook_body("x5", "https://a.example");
    no_block.as_object_mut().unwrap().remove("webhook");
    cases.push((no_block, 400, "webhook"));
    let mut wrong_block = webhook_body("x6", "https://a.example");
    wrong_block["jms"] = json!({"destination": "queue://x"});
    cases.push((wrong_block, 422, "jms"));
    cases.push((webhook_body("x7", "not a url"), 400, "webhook.url"));
    let mut bad_timeout = webhook_body("x8", "https://a.example");
    bad_timeout["webhook"]["timeoutMs"] = json!(10_000_000);
    cases.push((bad_timeout, 400, "timeoutMs"));
    let mut bad_header = webhook_body("x9", "https://a.example");
    bad_header["webhook"]["apiKey"]["headerName"] = json!("X-Credenco-Signature");
    cases.push((bad_header, 400, "headerName"));
    for (body, status, needle) in cases {
        let (got, answer) = send(&app, reqwest::Method::POST, &path_a, &admin, Some(&body)).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{answer} should mention {needle}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        3,
        "nothing half-written"
    );
}

async fn test_sends(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let wallet = app.create_wallet("Test sends").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let base = format!("/api/wallets/{w}/integration-channels");
    let hook = receiver(200).await;
    let (url, seen) = (hook.url.clone(), hook.seen.clone());
    let mut body = webhook_body("local", &url);
    body["webhook"].as_object_mut().unwrap().remove("oauth2");
    let (status, created) = send(&app, reqwest::Method::POST, &base, &app.admin_token, Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    let key = created["channelExternalKey"].as_str().unwrap();
    let secret = created["hmacSecret"].as_str().unwrap();

    let (status, report) = send(
        &app,
        reqwest::Method::POST,
        &format!("{base}/{key}/test?eventType={WALLET_CREATED}"),
        &app.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], 200);
    assert_eq!(report["outcome"], "DELIVERED");
    assert!(report["durationMs"].is_number());
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        assert_eq!(headers["ce-type"], WALLET_CREATED);
        assert_eq!(headers["x-api-key"], "api-key-value-123");
        // About the channel's own wallet, not the catalog sample's.
        assert_eq!(headers["ce-walletexternalkey"], w);
        assert_eq!(headers["ce-subject"], format!("wallets/{w}").as_str());
        let data: Value = serde_json::from_str(body).unwrap();
        assert_eq!(data["walletExternalKey"], w);
        let signature = headers["x-credenco-signature"].to_str().unwrap();
        webhook_verify::verify_now(
            signature,
            body.as_bytes(),
            &[secret.as_bytes()],
            webhook_verify::DEFAULT_TOLERANCE,
        )
        .expect("the test send is signed with the channel's secret");
    }
    // No delivery row, no event row.
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_delivery").await, 0);
    assert!(
        !report.to_string().contains("api-key-value-123"),
        "the report redacts secrets: {report}"
    );

    // A draft is sent with a throwaway secret.
    let (status, report) = send(
        &app,
        reqwest::Method::POST,
        &format!("{base}/test"),
        &app.admin_token,
        Some(&body),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], 200);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        1,
        "the draft is not saved"
    );

    // A receiver answering 404 is reported, not retried.
    let url = receiver(404).await.url;
    let mut failing = body.clone();
    failing["webhook"]["url"] = json!(url);
    let (_, report) = send(
        &app,
        reqwest::Method::POST,
        &format!("{base}/test"),
        &app.admin_token,
        Some(&failing),
    )
    .await;
    assert_eq!(report["status"], 404);
    assert_eq!(report["outcome"], "REJECTED");
    assert!(report["error"].is_string());
}

async fn test_sends_reach_a_loopback_receiver_on_premise(app: TestApp) {
    test_sends(app.backend).await;
}

async fn saas_refuses_unsafe_urls(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.mode = business_wallet::config::DeploymentMode::Saas).await;
    let wallet = app.create_wallet("SaaS").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let path = format!("/api/wallets/{w}/integration-channels");
    for (i, url) in [
        "http://erp.example/hooks",
        "https://127.0.0.1/hooks",
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://localhost/hooks",
        "https://100.64.0.1/hooks",
        "https://[fd00::1]/hooks",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = send(
            &app,
            reqwest::Method::POST,
            &path,
            &app.admin_token,
            Some(&webhook_body(&format!("c{i}"), url)),
        )
        .await;
        assert_eq!(status, 400, "{url} must be refused: {body}");
        assert_eq!(body["status"], 400);
    }
    // Kafka and JMS do not exist in SaaS mode.
    let mut kafka = webhook_body("k", "https://a.example");
    kafka["type"] = json!("KAFKA");
    kafka.as_object_mut().unwrap().remove("webhook");
    kafka["kafka"] = json!({"topic": "t"});
    let (status, body) = send(&app, reqwest::Method::POST, &path, &app.admin_token, Some(&kafka)).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("SaaS"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_channel").await, 0);
    // A public https URL is accepted.
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &path,
        &app.admin_token,
        Some(&webhook_body("ok", "https://93.184.215.14/hooks")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn the_ssrf_gate_applies_in_saas_mode(app: TestApp) {
    saas_refuses_unsafe_urls(app.backend).await;
}

/// A body with several field errors is answered with all of them at once: the message names
/// each, `details.field` the first, `details.errors` every one; nothing is written.
async fn every_field_error_is_reported_at_once(app: TestApp) {
    let wallet = app.create_wallet("Errors").await;
    let path = format!(
        "/api/wallets/{}/integration-channels",
        wallet["walletExternalKey"].as_str().unwrap()
    );
    let body = json!({"name": " ", "type": "WEBHOOK", "eventTypeFilters": [], "webhook": {"url": "not a url"}});
    let (status, answer) = send(&app, reqwest::Method::POST, &path, &app.admin_token, Some(&body)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["details"]["field"], "name", "{answer}");
    let fields: Vec<&str> = answer["details"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of errors: {answer}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "eventTypeFilters", "webhook.url"], "{answer}");
    let message = answer["message"].as_str().unwrap();
    for field in fields {
        assert!(message.contains(field), "{message} names {field}");
    }
    // One error alone keeps the single-error shape.
    let body =
        json!({"name": "ok", "type": "WEBHOOK", "eventTypeFilters": [], "webhook": {"url": "https://a.example"}});
    let (status, answer) = send(&app, reqwest::Method::POST, &path, &app.admin_token, Some(&body)).await;
    assert_eq!(
        (status, &answer["details"]),
        (400, &json!({"field": "eventTypeFilters"})),
        "{answer}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM integration_channel").await,
        0,
        "nothing written"
    );
}

both_backends!(
    channel_lifecycle,
    names_and_fields_are_validated,
    every_field_error_is_reported_at_once,
    test_sends_reach_a_loopback_receiver_on_premise,
    the_ssrf_gate_applies_in_saas_mode
);
