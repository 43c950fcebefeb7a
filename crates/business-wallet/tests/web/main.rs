//! Web UI pages over HTTP: sign-in and its cookie, redirects without a session, CSRF checks,
//! what a read-only user is shown, and escaping; the console's actions and searches in
//! [`console`]; the wallet picker and the event catalog in
//! [`pages`]. The browser scenarios live in `ui-tests/`.

#[path = "../common/mod.rs"]
mod common;
mod console;
mod handshake;
mod limits;
mod pages;
mod pull;
#[allow(dead_code)]
#[path = "../dispatch/receiver.rs"]
mod receiver;

use business_wallet::dispatch::Dispatcher;
use common::{Backend, TestApp};
use serde_json::json;

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

/// A client that does not follow redirects, so that the tests see them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of a `Set-Cookie` header for `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

/// The value of the first hidden `_csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + "name=\"_csrf\" value=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Signs in with `token` and returns the session cookie (`bw_session=...`).
async fn sign_in(app: &TestApp, token: &str) -> String {
    let client = client();
    let form = client.get(app.url("/ui/sign-in")).send().await.unwrap();
    let (pre, _) = set_cookie(&form, "bw_sign_in").expect("the sign-in form sets its CSRF cookie");
    let csrf = csrf_of(&form.text().await.unwrap());
    let response = client
        .post(app.url("/ui/sign-in"))
        .header("cookie", pre)
        .form(&[("_csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (cookie, full) = set_cookie(&response, "bw_session").expect("a session cookie");
    assert!(full.contains("HttpOnly"), "{full}");
    assert!(full.contains("SameSite=Strict"), "{full}");
    assert!(full.contains("Path=/ui"), "{full}");
    assert!(!full.contains(token), "the token is sealed, not stored in clear");
    cookie
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn wallet_with_channel(app: &TestApp, name: &str) -> (String, String) {
    let wallet = app.create_wallet("Web").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .post(
            &format!("/api/wallets/{wallet}/integration-channels"),
            Some(&app.admin_token),
            &json!({
                "name": name,
                "type": "WEBHOOK",
                "eventTypeFilters": [IDENTIFIER_CREATED],
                "webhook": {"url": "https://receiver.example/hook"}
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let channel: serde_json::Value = response.json().await.unwrap();
    (wallet, channel["channelExternalKey"].as_str().unwrap().to_string())
}

async fn pages_need_a_session(app: TestApp) {
    for path in [
        "/ui/integrations/channels",
        "/ui/integrations/deliveries",
        "/ui/integrations/history",
    ] {
        let response = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/ui/sign-in");
    }
    let sign_in = client().get(app.url("/ui/sign-in")).send().await.unwrap();
    assert_eq!(sign_in.headers()["x-frame-options"], "DENY");
    assert_eq!(sign_in.headers()["cache-control"], "no-store");
    assert!(sign_in.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let (status, _) = page(&app, "bw_session=forged", "/ui/integrations/channels").await;
    assert_eq!(status, 303, "a cookie that does not open is no session");
    let css = client().get(app.url("/ui/assets/app.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

async fn sign_in_refuses_bad_tokens_and_forms(app: TestApp) {
    let client = client();
    let form = client.get(app.url("/ui/sign-in")).send().await.unwrap();
    let (pre, _) = set_cookie(&form, "bw_sign_in").unwrap();
    let html = form.text().await.unwrap();
    assert!(html.contains("<label for=\"token\">"), "the token field is labelled");
    let csrf = csrf_of(&html);
    let bad = client
        .post(app.url("/ui/sign-in"))
        .header("cookie", &pre)
        .form(&[("_csrf", csrf.as_str()), ("token", "not-a-jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.text().await.unwrap().contains("invalid bearer token"));
    let no_csrf = client
        .post(app.url("/ui/sign-in"))
        .header("cookie", &pre)
        .form(&[("token", app.admin_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403, "the sign-in form has its CSRF token too");
}

async fn operator_sees_and_manages_channels(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Orders <script>alert(1)</script>").await;
    let token = app.token(
        "operator",
        &["WALLET_INTEGRATION_CHANNEL_CRUD", "WALLET_INTEGRATION_DELIVERY_CRUD"],
        Some(&wallet),
    );
    let cookie = sign_in(&app, &token).await;
    let (status, html) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Orders &#60;script&#62;") || html.contains("Orders &lt;script&gt;"),
        "escaped: {html}"
    );
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("https://receiver.example/hook"));
    assert!(html.contains("New channel"));
    assert!(html.contains(&wallet));

    // A post without the CSRF token changes nothing; with it, the channel is disabled.
    let refused = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/toggle"),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let csrf = csrf_of(&html);
    let done = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/toggle"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(done.status(), 303);
    let (_, html) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(html.contains(">Enable<"), "the channel is now disabled");

    // A form error is shown next to its field.
    let (_, form) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    assert!(form.contains("<legend>Event filters</legend>"));
    assert!(
        !form.contains("<legend>Kafka</legend>"),
        "Kafka is off in this deployment"
    );
    let invalid = post(
        &app,
        &cookie,
        "/ui/integrations/channels",
        &[
            ("_csrf", csrf.as_str()),
            ("name", "x"),
            ("type", "WEBHOOK"),
            ("url", "https://receiver.example/h"),
        ],
    )
    .await;
    assert_eq!(invalid.status(), 400);
    let html = invalid.text().await.unwrap();
    assert!(
        html.contains("eventTypeFilters: must name at least one event type"),
        "{html}"
    );

    let (status, html) = page(&app, &cookie, "/ui/integrations/history").await;
    assert_eq!(status, 200);
    assert!(html.contains("CHANNEL_UPDATED"));
}

async fn reader_sees_no_management(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Watched").await;
    let token = app.token(
        "reader",
        &["WALLET_INTEGRATION_CHANNEL_READ", "WALLET_INTEGRATION_DELIVERY_READ"],
        Some(&wallet),
    );
    let cookie = sign_in(&app, &token).await;
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    let (_, detail) = page(&app, &cookie, &format!("/ui/integrations/channels/{channel}")).await;
    let (_, deliveries) = page(&app, &cookie, "/ui/integrations/deliveries").await;
    for html in [&list, &detail, &deliveries] {
        for word in [
            "New channel",
            "Rotate secret",
            "Save changes",
            "Delete",
            "Replay",
            "Dismiss",
        ] {
            assert!(!html.contains(word), "{word} shown to a reader");
        }
    }
    assert!(detail.contains("disabled"), "the channel form is read-only");
    let csrf = csrf_of(&list);
    let forged = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/rotate"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(forged.status(), 403);
}

async fn global_holder_chooses_a_wallet(app: TestApp) {
    let cookie = sign_in(&app, &app.admin_token.clone()).await;
    let (status, html) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert_eq!(status, 200);
    assert!(html.contains("Choose a wallet"));
    let (status, html) = page(&app, &cookie, "/ui/integrations/channels?wallet=platform").await;
    assert_eq!(status, 200);
    assert!(html.contains("Platform"));
    let (_, html) = page(
        &app,
        &cookie,
        "/ui/integrations/deliveries?wallet=platform&state=FAILED&state=DISMISSED",
    )
    .await;
    assert!(html.contains("value=\"FAILED\" checked"));
    assert!(!html.contains("value=\"PENDING\" checked"));
}

both_backends!(
    pages_need_a_session,
    sign_in_refuses_bad_tokens_and_forms,
    operator_sees_and_manages_channels,
    reader_sees_no_management,
    global_holder_chooses_a_wallet,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_https() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |s| {
        s.public_base_url = Some("https://wallet.example".into());
    })
    .await;
    let form = client().get(app.url("/ui/sign-in")).send().await.unwrap();
    let (_, full) = set_cookie(&form, "bw_sign_in").unwrap();
    assert!(full.ends_with("; Secure"), "{full}");
}

async fn operator_edits_and_deletes_a_channel(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Before").await;
    let token = app.token("operator", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let (_, form) = page(&app, &cookie, &format!("/ui/integrations/channels/{channel}")).await;
    assert!(form.contains("value=\"Before\""), "the edit form is filled in");
    assert!(form.contains("Rotate secret"));
    let csrf = csrf_of(&form);
    let saved = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}"),
        &[
            ("_csrf", csrf.as_str()),
            ("name", "After"),
            ("type", "WEBHOOK"),
            ("enabled", "on"),
            ("event", IDENTIFIER_CREATED),
            ("url", "https://receiver.example/other"),
            ("timeout_ms", "3000"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303);
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(list.contains(">After<") && list.contains("https://receiver.example/other"));

    let (status, confirm) = page(&app, &cookie, &format!("/ui/integrations/channels/{channel}/delete")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("cannot be undone"));
    let deleted = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}/delete"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(deleted.status(), 303);
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(list.contains("No channels yet"));
}

both_backends!(operator_edits_and_deletes_a_channel);

/// A CA certificate and a client certificate of it valid for `days` more days, with its key
/// (PEM each).
fn client_certificate(days: u64) -> (String, String, String) {
    use chrono::Datelike as _;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Web CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "web-client");
    let until = chrono::Utc::now().date_naive() + chrono::Days::new(days);
    params.not_after = rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
    let certificate = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), certificate.pem(), key.serialize_pem())
}

async fn the_channel_page_flags_an_expiring_certificate_and_an_edit_keeps_the_tls_settings(app: TestApp) {
    let wallet = app.create_wallet("Web TLS").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let (ca, certificate, key) = client_certificate(10);
    let response = app
        .post(
            &format!("/api/wallets/{wallet}/integration-channels"),
            Some(&app.admin_token),
            &json!({
                "name": "Mutual",
                "type": "WEBHOOK",
                "eventTypeFilters": [IDENTIFIER_CREATED],
                "webhook": {"url": "https://receiver.example/hook",
                            "tls": {"clientCertificate": certificate, "clientKey": key, "caCertificates": ca}}
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let channel = response.json::<serde_json::Value>().await.unwrap()["channelExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.token("operator", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(list.contains("certificate expires soon"), "the list marks the channel");
    let (_, detail) = page(&app, &cookie, &format!("/ui/integrations/channels/{channel}")).await;
    assert!(detail.contains("data-testid=\"certificates\""), "{detail}");
    assert!(detail.contains("CN=web-client") && detail.contains("CN=Web CA"));
    assert!(detail.contains("data-testid=\"certificate-expiring\""));
    // The key is never shown, not even in the edit form.
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for piece in key_body.split(['/', '+']).filter(|p| p.len() >= 8) {
        assert!(!detail.contains(piece), "a piece of the key is on the page");
    }
    // Saving the form with the key left empty keeps the TLS settings and the stored key.
    let csrf = csrf_of(&detail);
    let saved = post(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{channel}"),
        &[
            ("_csrf", csrf.as_str()),
            ("name", "Mutual, renamed"),
            ("type", "WEBHOOK"),
            ("enabled", "on"),
            ("event", IDENTIFIER_CREATED),
            ("url", "https://receiver.example/hook"),
            ("tls_client_certificate", certificate.as_str()),
            ("tls_client_key", ""),
            ("tls_ca_certificates", ca.as_str()),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303);
    let view: serde_json::Value = app
        .get(
            &format!("/api/wallets/{wallet}/integration-channels/{channel}"),
            Some(&app.admin_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["name"], "Mutual, renamed");
    assert_eq!(view["webhook"]["tls"]["clientCertificate"], json!(certificate));
    assert_eq!(view["webhook"]["tls"]["caCertificates"], json!(ca));
    assert_eq!(view["certificates"][0]["expiresSoon"], true);
}

both_backends!(the_channel_page_flags_an_expiring_certificate_and_an_edit_keeps_the_tls_settings);

async fn errors_keep_the_page_and_links_keep_the_wallet(app: TestApp) {
    let (wallet, channel) = wallet_with_channel(&app, "Kept").await;
    let cookie = sign_in(&app, &app.admin_token.clone()).await;

    // An error of a known scope is shown inside that scope's navigation.
    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, html) = page(
        &app,
        &cookie,
        &format!("/ui/integrations/channels/{missing}?wallet={wallet}"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(html.contains("Signed in as"), "{html}");
    assert!(
        html.contains(&format!("/ui/integrations/deliveries?wallet={wallet}")),
        "{html}"
    );
    // Its way back stays in the wallet too.
    assert!(
        html.contains(&format!(
            "<a href=\"/ui/integrations/channels?wallet={wallet}\" data-testid=\"back\">"
        )),
        "{html}"
    );
    // A wallet that is not a key has no scope, so no navigation.
    let (status, html) = page(&app, &cookie, "/ui/integrations/channels?wallet=nope").await;
    assert_eq!(status, 400);
    assert!(!html.contains("Signed in as"), "{html}");

    // The chooser comes back to the page it was shown for.
    let (status, chooser) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    assert_eq!(status, 200);
    assert!(
        chooser.contains("action=\"/ui/integrations/channels/new\""),
        "{chooser}"
    );

    // A post needs a chosen wallet; with one, it comes back to that wallet's page.
    let csrf = csrf_of(&chooser);
    let toggle = format!("/ui/integrations/channels/{channel}/toggle");
    let refused = post(&app, &cookie, &toggle, &[("_csrf", csrf.as_str())]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("choose a wallet first"));
    let done = post(
        &app,
        &cookie,
        &format!("{toggle}?wallet={wallet}"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        format!("/ui/integrations/channels?wallet={wallet}&done=disabled").as_str()
    );
    let replayed = post(
        &app,
        &cookie,
        &format!("/ui/integrations/deliveries/replay?wallet={wallet}"),
        &[("_csrf", csrf.as_str()), ("channel", channel.as_str()), ("from", "")],
    )
    .await;
    assert_eq!(replayed.status(), 303);
    assert_eq!(
        replayed.headers()["location"],
        format!("/ui/integrations/deliveries?wallet={wallet}&channel={channel}&done=replayed&n=0").as_str()
    );
}

both_backends!(errors_keep_the_page_and_links_keep_the_wallet);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_ends_with_the_token() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |s| s.auth.leeway_secs = Some(0)).await;
    let wallet = app.create_wallet("Short").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let token = business_wallet::auth::mint_local_token(
        &app.settings,
        "brief",
        &["WALLET_INTEGRATION_CHANNEL_READ".to_string()],
        Some(&wallet),
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    let cookie = sign_in(&app, &token).await;
    let (status, _) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (status, _) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert_eq!(status, 303, "an expired token sends the user back to sign-in");
}

/// Creates a webhook channel of `wallet` sending identifier.created to `url`; returns its key.
async fn webhook_channel(app: &TestApp, wallet: &str, name: &str, url: &str, enabled: bool) -> String {
    let response = app
        .post(
            &format!("/api/wallets/{wallet}/integration-channels"),
            Some(&app.admin_token),
            &json!({
                "name": name,
                "type": "WEBHOOK",
                "enabled": enabled,
                "eventTypeFilters": [IDENTIFIER_CREATED],
                "webhook": {"url": url}
            }),
        )
        .await;
    assert_eq!(response.status(), 201, "creating channel {name}");
    let channel: serde_json::Value = response.json().await.unwrap();
    channel["channelExternalKey"].as_str().unwrap().to_string()
}

/// The table row of a channel on the Channels list.
fn row_of<'a>(html: &'a str, channel: &str) -> &'a str {
    let start = html
        .find(&format!("data-channel=\"{channel}\""))
        .unwrap_or_else(|| panic!("no row for {channel}: {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// A channel whose receiver answers 500 to everything is failing after one dispatcher round,
/// with its failures in a row and its last error, on the list and on its page; a channel whose
/// receiver accepts is healthy with its success rate; a disabled one is disabled; the charts of
/// the Deliveries page (whole wallet and one channel) and of the channel page count the attempts.
async fn channel_health_and_the_deliveries_chart(backend: Backend) {
    let app = common::spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.integration.webhook.default_timeout_ms = 2_000;
    })
    .await;
    let broken = receiver::Receiver::start().await;
    broken.script((0..20).map(|_| receiver::status(500)));
    let fine = receiver::Receiver::start().await;
    let flaky = receiver::Receiver::start().await;
    flaky.script([receiver::status(503), receiver::status(503)]);
    let wallet = app.create_wallet("Health").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let failing = webhook_channel(&app, &wallet, "Broken", &broken.url(), true).await;
    let healthy = webhook_channel(&app, &wallet, "Fine", &fine.url(), true).await;
    let disabled = webhook_channel(&app, &wallet, "Off", &fine.url(), false).await;
    let recovering = webhook_channel(&app, &wallet, "Flaky", &flaky.url(), true).await;
    for name in ["one", "two"] {
        let response = app
            .post(
                &format!("/api/v1/wallets/{wallet}/identifiers"),
                Some(&app.admin_token),
                &json!({"identifierType": "JWK", "displayName": name}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }

    let token = app.token(
        "viewer",
        &["WALLET_INTEGRATION_CHANNEL_READ", "WALLET_INTEGRATION_DELIVERY_READ"],
        Some(&wallet),
    );
    let cookie = sign_in(&app, &token).await;
    let (status, before) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert_eq!(status, 200);
    assert!(
        row_of(&before, &failing).contains("data-health=\"healthy\""),
        "nothing failed yet"
    );
    assert!(row_of(&before, &failing).contains("1 h: 0 attempts<br>"), "{before}");

    // One dispatcher round: two attempts per enabled channel.
    Dispatcher::new(&app.state).run_once().await.unwrap();
    let error = app
        .texts("SELECT DISTINCT last_error FROM integration_delivery WHERE last_error LIKE '%500%'")
        .await;
    assert_eq!(error.len(), 1, "{error:?}");
    let error = error[0].clone().unwrap();
    assert!(error.contains("500"), "{error}");

    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    let row = row_of(&list, &failing);
    assert!(row.contains("data-health=\"failing\""), "{row}");
    assert!(row.contains("2 failed in a row"), "{row}");
    assert!(row.contains(&error), "{row}");
    assert!(row.contains("1 h: 2 attempts, 0% ok"), "{row}");
    let row = row_of(&list, &healthy);
    assert!(row.contains("data-health=\"healthy\""), "{row}");
    assert!(row.contains("1 h: 2 attempts, 100% ok"), "{row}");
    assert!(row.contains("24 h: 2 attempts, 100% ok"), "{row}");
    assert!(!row.contains("in a row"), "{row}");
    assert!(row_of(&list, &disabled).contains("data-health=\"disabled\""), "{list}");

    let (status, channel_page) = page(&app, &cookie, &format!("/ui/integrations/channels/{failing}")).await;
    assert_eq!(status, 200);
    assert!(channel_page.contains("data-health=\"failing\""), "{channel_page}");
    assert!(
        channel_page.contains("data-testid=\"consecutive-failures\">2<"),
        "{channel_page}"
    );
    assert!(
        channel_page.contains(&format!("data-testid=\"last-error\">{error}<")),
        "{channel_page}"
    );
    assert!(
        channel_page.contains("over the last 24 hours (UTC): 0 delivered, 2 retrying, 0 failed</title>"),
        "{channel_page}"
    );
    let (_, fine_page) = page(&app, &cookie, &format!("/ui/integrations/channels/{healthy}")).await;
    assert!(fine_page.contains("data-health=\"healthy\""), "{fine_page}");
    assert!(fine_page.contains("2 attempts, 100% delivered"), "{fine_page}");

    let (status, deliveries) = page(&app, &cookie, "/ui/integrations/deliveries").await;
    assert_eq!(status, 200);
    assert!(deliveries.contains("data-testid=\"chart\""), "{deliveries}");
    assert!(deliveries.contains("role=\"img\""));
    assert!(
        deliveries.contains("over the last 24 hours (UTC): 2 delivered, 4 retrying, 0 failed</title>"),
        "{deliveries}"
    );
    assert!(!deliveries.contains("style="), "no inline style under the CSP");
    let (_, filtered) = page(&app, &cookie, &format!("/ui/integrations/deliveries?channel={healthy}")).await;
    assert!(
        filtered.contains("over the last 24 hours (UTC): 2 delivered, 0 retrying, 0 failed</title>"),
        "{filtered}"
    );

    assert!(row_of(&list, &recovering).contains("2 failed in a row"), "{list}");

    // Another round: the failures in a row go on counting; the receiver that recovered makes
    // its channel healthy again.
    app.make_deliveries_due().await;
    Dispatcher::new(&app.state).run_once().await.unwrap();
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(row_of(&list, &failing).contains("4 failed in a row"), "{list}");
    let row = row_of(&list, &recovering);
    assert!(row.contains("data-health=\"healthy\""), "{row}");
    assert!(row.contains("24 h: 4 attempts, 50% ok"), "{row}");
    assert!(!row.contains("in a row"), "{row}");

    // A user who may read channels but not deliveries sees the health and no chart.
    let channels_only = app.token("channels", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&wallet));
    let cookie = sign_in(&app, &channels_only).await;
    let (status, html) = page(&app, &cookie, &format!("/ui/integrations/channels/{failing}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-health=\"failing\""), "{html}");
    assert!(!html.contains("data-testid=\"chart\""), "{html}");
}
both_backend_kinds!(channel_health_and_the_deliveries_chart);

/// The Kafka and JMS options show on the edit form as saved, and saving the form keeps them, or
/// leaves them out when unchecked.
async fn broker_options_survive_the_edit_form(backend: Backend) {
    let app = common::spawn_app_with(backend, |s| {
        s.integration.channels.kafka.enabled = true;
        s.integration.channels.kafka.bootstrap_servers = "127.0.0.1:9".into();
    })
    .await;
    let wallet = app.create_wallet("Brokers").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let channels = format!("/api/wallets/{wallet}/integration-channels");
    let response = app
        .post(
            &channels,
            Some(&app.admin_token),
            &json!({"name": "stream", "type": "KAFKA", "eventTypeFilters": [IDENTIFIER_CREATED],
                    "kafka": {"topic": "wallet-events", "contentMode": "BINARY"}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let channel = response.json::<serde_json::Value>().await.unwrap()["channelExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.token("operator", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let path = format!("/ui/integrations/channels/{channel}");
    let (_, form) = page(&app, &cookie, &path).await;
    assert!(
        form.contains(r#"name="kafka_binary" value="on" checked"#),
        "the binary mode is shown as saved"
    );
    let csrf = csrf_of(&form);
    let stored = || async {
        let response = app.get(&format!("{channels}/{channel}"), Some(&app.admin_token)).await;
        response.json::<serde_json::Value>().await.unwrap()["kafka"].clone()
    };
    let fields = |binary: bool| {
        let mut fields = vec![
            ("_csrf", csrf.clone()),
            ("name", "stream".to_string()),
            ("type", "KAFKA".to_string()),
            ("enabled", "on".to_string()),
            ("event", IDENTIFIER_CREATED.to_string()),
            ("kafka_topic", "wallet-events".to_string()),
        ];
        if binary {
            fields.push(("kafka_binary", "on".to_string()));
        }
        fields
    };
    let kept = fields(true);
    let kept: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post(&app, &cookie, &path, &kept).await.status(), 303);
    assert_eq!(
        stored().await,
        json!({"topic": "wallet-events", "contentMode": "BINARY"})
    );
    let unchecked = fields(false);
    let unchecked: Vec<(&str, &str)> = unchecked.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post(&app, &cookie, &path, &unchecked).await.status(), 303);
    assert_eq!(stored().await, json!({"topic": "wallet-events"}));
}

both_backend_kinds!(broker_options_survive_the_edit_form);
