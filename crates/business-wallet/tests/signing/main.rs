//! Ed25519 signatures and the Standard Webhooks option, checked by independent verifiers: a
//! real application (both backends) delivers to a real receiver on 127.0.0.1, across a key
//! rotation of the generated key file, and Python (`cryptography`, Stripe's
//! `WebhookSignature`, `standardwebhooks`) and Node (`crypto`, `standardwebhooks`) scripts
//! check the captured requests against the JWKS they fetch from the running server.
//!
//! The scripts' packages are pinned in `requirements.txt` and `package-lock.json` here and
//! installed by `scripts/setup/signing.sh` (which `scripts/test.sh` runs); without them the
//! tests fail and say so.

#[path = "../common/mod.rs"]
mod common;
// Shared with the dispatch suite, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "../dispatch/receiver.rs"]
mod receiver;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use business_wallet::channels::webhook::keys::rotate_key_file;
use business_wallet::dispatch::Dispatcher;
use common::{Backend, TestApp};
use receiver::Receiver;
use serde_json::{json, Value};

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signing");

both_backend_kinds!(
    every_delivery_verifies_with_the_served_keys_across_a_rotation,
    during_a_secret_rotation_both_secrets_verify_with_the_libraries,
    a_channel_without_the_option_sends_what_it_sent_before,
    the_asyncapi_example_carries_a_v1a_that_its_documented_key_verifies,
);

async fn spawn(backend: Backend) -> TestApp {
    common::spawn_app_with(backend, |settings| {
        settings.integration.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await
}

/// Creates a platform channel for wallet creations pointing at `receiver`; returns its
/// secret.
async fn channel(app: &TestApp, receiver: &Receiver, name: &str, standard_webhooks: Option<bool>) -> String {
    create_channel(app, receiver, name, standard_webhooks).await["hmacSecret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Like [`channel`]; returns the whole creation response.
async fn create_channel(app: &TestApp, receiver: &Receiver, name: &str, standard_webhooks: Option<bool>) -> Value {
    let mut webhook = json!({ "url": receiver.url() });
    if let Some(on) = standard_webhooks {
        webhook["standardWebhooks"] = json!(on);
    }
    let response = app
        .post(
            "/api/integration-channels",
            Some(&app.admin_token),
            &json!({"name": name, "type": "WEBHOOK", "enabled": true,
                    "eventTypeFilters": [WALLET_CREATED], "webhook": webhook}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    if standard_webhooks == Some(true) {
        assert_eq!(created["webhook"]["standardWebhooks"], true, "{created}");
    } else {
        assert!(created["webhook"].get("standardWebhooks").is_none(), "{created}");
    }
    created
}

/// Creates a wallet and delivers its event to every channel.
async fn deliver_one_event(app: &TestApp, channels: usize) {
    app.create_wallet("Signed B.V.").await;
    let outcome = Dispatcher::new(&app.state).run_once().await.unwrap();
    assert_eq!(outcome.delivered, channels, "{outcome:?}");
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let response = app.get("/api/public/webhook-signing-keys.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = response.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!((k["kty"].as_str(), k["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
            k["kid"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Runs a verifier script over the captured deliveries; returns its JSON summary.
fn run_script(program: &str, script: &str, deliveries: &Path, jwks_url: &str) -> Value {
    let output = Command::new(program)
        .arg(Path::new(SCRIPTS).join(script))
        .arg(deliveries)
        .arg(jwks_url)
        .current_dir(SCRIPTS)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} does not run ({e}): run scripts/test.sh or source scripts/setup/signing.sh")
        });
    assert!(
        output.status.success(),
        "{script} refused a delivery (missing packages? source scripts/setup/signing.sh): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn captured(receiver: &Receiver, secret: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
                .collect();
            json!({ "secret": secret, "headers": headers, "body": String::from_utf8(r.body.to_vec()).unwrap() })
        })
        .collect()
}

async fn every_delivery_verifies_with_the_served_keys_across_a_rotation(backend: Backend) {
    let app = spawn(backend).await;
    let standard = Receiver::start().await;
    let plain = Receiver::start().await;
    let standard_secret = channel(&app, &standard, "standard", Some(true)).await;
    let plain_secret = channel(&app, &plain, "plain", None).await;

    // The embedded default generated one key; it signs the first event.
    let first = jwks_kids(&app).await;
    assert_eq!(first.len(), 1, "{first:?}");
    deliver_one_event(&app, 2).await;

    // A rotation publishes the next key at once and lets it sign only after the lead time.
    let lead = Duration::from_secs(2);
    let rotated = rotate_key_file(&app.settings, lead).unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the file is looked at once a second
    let published = jwks_kids(&app).await;
    assert_eq!(
        published,
        [first[0].clone(), rotated.kid.clone()],
        "published before it signs"
    );
    deliver_one_event(&app, 2).await;

    tokio::time::sleep(lead).await;
    deliver_one_event(&app, 2).await;
    // The old key stays published for the grace period.
    assert_eq!(jwks_kids(&app).await, published);

    let dir = tempfile::tempdir().unwrap();
    let mut all = captured(&standard, &standard_secret);
    all.extend(captured(&plain, &plain_secret));
    assert_eq!(all.len(), 6);
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_vec(&all).unwrap()).unwrap();
    let jwks_url = app.url("/api/public/webhook-signing-keys.json");

    let python = run_script("python3", "verify.py", &file, &jwks_url);
    assert_eq!(
        (&python["deliveries"], &python["ed25519"], &python["stripe"]),
        (&json!(6), &json!(6), &json!(6)),
        "{python}"
    );
    assert_eq!(
        (&python["standard_hmac"], &python["standard_ed25519"]),
        (&json!(3), &json!(3)),
        "{python}"
    );
    let node = run_script("node", "verify.mjs", &file, &jwks_url);
    assert_eq!(
        (
            &node["deliveries"],
            &node["ed25519"],
            &node["standard_hmac"],
            &node["standard_ed25519"]
        ),
        (&json!(6), &json!(6), &json!(3), &json!(3)),
        "{node}"
    );
    // Standard channel first: old key, old key (the new one only published), new key; then the
    // plain channel the same.
    let old = json!(first[0]);
    let new = json!(rotated.kid);
    assert_eq!(python["kids"], json!([old, old, new, old, old, new]), "{python}");
    assert_eq!(node["kids"], python["kids"]);
}

async fn during_a_secret_rotation_both_secrets_verify_with_the_libraries(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    let created = create_channel(&app, &receiver, "rotating", Some(true)).await;
    let old_secret = created["hmacSecret"].as_str().unwrap().to_string();
    let key = created["channelExternalKey"].as_str().unwrap();
    let response = app
        .post(
            &format!("/api/integration-channels/{key}/rotate-secret"),
            Some(&app.admin_token),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_secret = rotated["hmacSecret"].as_str().unwrap().to_string();
    deliver_one_event(&app, 1).await;
    let request = &receiver.received()[0];
    assert_eq!(request.header("webhook-signature").matches("v1,").count(), 2);
    // The same request, checked by a receiver that has moved to the new secret and by one that
    // still has the old one.
    let mut both = captured(&receiver, &new_secret);
    both.extend(captured(&receiver, &old_secret));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_vec(&both).unwrap()).unwrap();
    let jwks_url = app.url("/api/public/webhook-signing-keys.json");
    let python = run_script("python3", "verify.py", &file, &jwks_url);
    assert_eq!(
        (&python["stripe"], &python["standard_hmac"]),
        (&json!(2), &json!(2)),
        "{python}"
    );
    let node = run_script("node", "verify.mjs", &file, &jwks_url);
    assert_eq!(node["standard_hmac"], json!(2), "{node}");

    // The deliveries log keeps the HMAC values of both headers redacted.
    let (status, list) = app
        .call(reqwest::Method::GET, "/api/integration-deliveries?state=all", None)
        .await;
    assert_eq!(status, 200, "{list}");
    let delivery = list["items"][0]["deliveryExternalKey"].as_str().unwrap();
    let (status, detail) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/integration-deliveries/{delivery}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let stored = detail["attempts"][0]["request"]["headers"].to_string();
    for secret_derived in request
        .header("webhook-signature")
        .split(' ')
        .filter(|e| e.starts_with("v1,"))
    {
        assert!(!stored.contains(&secret_derived[3..]), "{stored}");
    }
    assert!(stored.contains("v1,[redacted] v1,[redacted] v1a,"), "{stored}");
    assert!(
        stored.contains(&format!("\"{}\"", request.header("webhook-id"))),
        "{stored}"
    );
}

async fn a_channel_without_the_option_sends_what_it_sent_before(backend: Backend) {
    let app = spawn(backend).await;
    let plain = Receiver::start().await;
    let explicit_off = Receiver::start().await;
    let secret = channel(&app, &plain, "plain", None).await;
    channel(&app, &explicit_off, "off", Some(false)).await;
    deliver_one_event(&app, 2).await;
    for receiver in [&plain, &explicit_off] {
        let request = &receiver.received()[0];
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(request.headers.get(name).is_none(), "{name} sent without the option");
        }
    }
    // Today's header, byte for byte, with one more entry at its end that v1 verifiers skip.
    let request = &plain.received()[0];
    let header = request.header("x-credenco-signature");
    let (hmac_part, ed25519_part) = header.split_once(",v1a=").expect("an Ed25519 entry");
    let t = webhook_verify::parse_header(header).unwrap().timestamp;
    assert_eq!(
        hmac_part,
        webhook_verify::signature_header(&[secret.as_bytes()], t, &request.body)
    );
    assert!(!ed25519_part.contains(','), "{header}");
    webhook_verify::verify_now(
        header,
        &request.body,
        &[secret.as_bytes()],
        webhook_verify::DEFAULT_TOLERANCE,
    )
    .unwrap();
}

async fn the_asyncapi_example_carries_a_v1a_that_its_documented_key_verifies(backend: Backend) {
    let app = spawn(backend).await;
    let doc: Value = app.get("/api/public/asyncapi.json", None).await.json().await.unwrap();
    let messages = doc["channels"]["webhook"]["messages"].as_object().unwrap();
    assert!(!messages.is_empty());
    for message in messages.values() {
        let property = |name: &str| message["headers"]["properties"][name].clone();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(property(name)["description"]
                .as_str()
                .unwrap()
                .contains("webhook.standardWebhooks"));
        }
        let description = property("X-Credenco-Signature")["description"]
            .as_str()
            .unwrap()
            .to_string();
        let x = description
            .split("public `x`: `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .expect("the description gives the example key");
        let kid = webhook_verify::jwk_thumbprint(
            &ed25519_dalek::VerifyingKey::from_bytes(&base64_url(x).try_into().unwrap()).unwrap(),
        );
        let keys = webhook_verify::PublicKeys::from_jwks(
            &json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x}).to_string(),
        )
        .unwrap();
        let header = message["examples"][0]["headers"]["X-Credenco-Signature"]
            .as_str()
            .unwrap();
        let body = serde_json::to_vec(&message["examples"][0]["payload"]).unwrap();
        let t = webhook_verify::parse_header(header).unwrap().timestamp;
        let at = std::time::UNIX_EPOCH + Duration::from_secs(t as u64);
        let verified =
            webhook_verify::verify_ed25519(header, &body, &keys, webhook_verify::DEFAULT_TOLERANCE, at).unwrap();
        assert_eq!(verified.kid, kid);
    }
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}
