//! Robustness at the edges of the server: a body read from outside is capped (the OAuth2 token
//! endpoint), a configured issuer and audience are required claims, a NUL is refused wherever
//! it comes in, control characters never reach a header, the errors answered before any
//! route is chosen carry the same JSON error body as the others, and a client that sends its
//! whole request before it reads (Python's urllib) reads a 413 or 431 instead of a broken pipe.
//! Every test runs on SQLite and PostgreSQL.
//!
//! Longer than 600 lines on purpose: each edge is one self-contained scenario over a raw TCP
//! client, and all of them share the few helpers at the top (the raw exchange, the check of the
//! JSON error body); kept together, a reader sees every way in from outside in one place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::common::{spawn_app_with, Backend, TestApp};
use crate::{both_backend_kinds, both_backends, receiver};

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

/// Upper bound for any single exchange of these tests; reaching it is a failure, not a wait.
const GUARD: Duration = Duration::from_secs(60);

/// What is wrong with an answer that should be the JSON error of `expected`, if anything.
fn error_body_problem(status: u16, body: &Value, expected: u16) -> Option<String> {
    let shaped = body["status"] == expected && body["error"].is_string() && body["message"].is_string();
    (status != expected || !shaped).then(|| format!("answered {status} {body}"))
}

/// Checks the JSON error shape and the status it repeats.
fn assert_error_body(status: u16, body: &Value, expected: u16, what: &str) {
    if let Some(problem) = error_body_problem(status, body, expected) {
        panic!("{what}: expected {expected}, {problem}");
    }
}

/// Fails with every problem found, one per line.
fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn webhook_channel(name: &str, webhook: Value) -> Value {
    json!({"name": name, "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED], "webhook": webhook})
}

// ---------------------------------------------------------------------------------------------
// Bodies read from outside are capped.

/// A token endpoint that answers every request with a 200 whose JSON body runs on for `total`
/// bytes (with that `Content-Length` when `declare_length`, else until the connection closes),
/// and reports for each connection how many body bytes the client let it hand over before it
/// went away.
async fn oversized_token_endpoint(total: usize, declare_length: bool) -> (String, mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let length = if declare_length {
                    format!("content-length: {total}\r\n")
                } else {
                    String::new()
                };
                let preamble =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n");
                let mut sent = 0;
                if stream.write_all(preamble.as_bytes()).await.is_ok() {
                    let mut chunk = vec![b'a'; 64 * 1024];
                    chunk[..17].copy_from_slice(b"{\"access_token\":\"");
                    while sent < total {
                        if stream.write_all(&chunk).await.is_err() {
                            break;
                        }
                        sent += chunk.len();
                        chunk.fill(b'a');
                    }
                }
                let _ = report.send(sent);
            });
        }
    });
    (url, reports)
}

/// What the token endpoint handed to the next connection, in bytes.
async fn next_sent(reports: &mut mpsc::UnboundedReceiver<usize>) -> usize {
    tokio::time::timeout(GUARD, reports.recv())
        .await
        .expect("the token endpoint saw the connection end")
        .expect("the token endpoint runs")
}

const HUNDRED_MB: usize = 100 * 1024 * 1024;
/// The issue's bound on the server's memory growth for a 100 MB token answer.
const TEN_MB: usize = 10 * 1024 * 1024;

fn assert_token_refused(report: &Value, what: &str) {
    assert_eq!(report["outcome"], "RETRYABLE", "{what}: {report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("OAuth2 token response") && error.contains("larger than 65536 bytes"),
        "{what}: {report}"
    );
}

async fn oauth2_token_answers_are_read_within_a_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await;
    let hook = receiver(200).await;
    let (token_url, mut sent) = oversized_token_endpoint(HUNDRED_MB, false).await;
    let wallet = app.create_wallet("Token limits").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let base = format!("/api/wallets/{w}/integration-channels");
    let body = webhook_channel(
        "oauth2",
        json!({"url": hook.url, "oauth2": {"tokenUrl": token_url, "clientId": "wallet", "clientSecret": "s3cret"}}),
    );

    // The test send of a draft.
    let (status, report) = app
        .call(
            reqwest::Method::POST,
            &format!("{base}/test?eventType={IDENTIFIER_CREATED}"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let handed = next_sent(&mut sent).await;
    assert!(
        handed < TEN_MB,
        "the draft test send read {handed} bytes of the token answer"
    );
    assert_token_refused(&report, "draft test send");

    // The test send of a saved channel.
    let (status, created) = app.call(reqwest::Method::POST, &base, Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    let key = created["channelExternalKey"].as_str().unwrap();
    let (status, report) = app
        .call(reqwest::Method::POST, &format!("{base}/{key}/test"), None)
        .await;
    assert_eq!(status, 200, "{report}");
    let handed = next_sent(&mut sent).await;
    assert!(
        handed < TEN_MB,
        "the saved test send read {handed} bytes of the token answer"
    );
    assert_token_refused(&report, "saved test send");

    // A delivery: the attempt is recorded as a retryable failure, with the reason.
    let (status, identifier) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/wallets/{w}/identifiers"),
            Some(&json!({"identifierType": "JWK", "displayName": "k", "keyType": "P-256"})),
        )
        .await;
    assert_eq!(status, 201, "{identifier}");
    business_wallet::dispatch::Dispatcher::new(&app.state)
        .run_once()
        .await
        .unwrap();
    let handed = next_sent(&mut sent).await;
    assert!(handed < TEN_MB, "the delivery read {handed} bytes of the token answer");
    let (status, page) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/wallets/{w}/integration-deliveries"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let delivery = &page["items"][0];
    assert_eq!(delivery["state"], "PENDING", "retried later: {page}");
    assert_eq!(delivery["attempts"], 1, "{page}");
    assert!(
        delivery["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("larger than 65536 bytes")),
        "{page}"
    );

    // An answer that announces its size is refused before its body is read.
    let (declared_url, mut declared) = oversized_token_endpoint(HUNDRED_MB, true).await;
    let declared_body = webhook_channel(
        "declared",
        json!({"url": hook.url, "oauth2": {"tokenUrl": declared_url, "clientId": "wallet", "clientSecret": "s3cret"}}),
    );
    let (status, report) = app
        .call(reqwest::Method::POST, &format!("{base}/test"), Some(&declared_body))
        .await;
    assert_eq!(status, 200, "{report}");
    let handed = next_sent(&mut declared).await;
    assert!(handed < TEN_MB, "a declared 100 MB answer: {handed} bytes read");
    assert_token_refused(&report, "declared length");

    assert_eq!(hook.count(), 0, "no event goes out without a token");
}

// ---------------------------------------------------------------------------------------------
// A configured issuer and audience are required.

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "business-wallet";

/// Serves a key set on 127.0.0.1 and returns its URL.
async fn serve_jwks(jwks: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/jwks.json")
}

/// Signing keys for RS256 and ES256 and the key set that publishes their public halves.
struct Signers {
    rsa: EncodingKey,
    ec: EncodingKey,
    jwks: Value,
}

fn signers() -> Signers {
    use base64::Engine as _;
    use p256::pkcs8::EncodePrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let rsa_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&rsa_key, rsa::pkcs8::LineEnding::LF).unwrap();
    let rsa_jwk = json!({
        "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": b64(&rsa_key.n().to_bytes_be()), "e": b64(&rsa_key.e().to_bytes_be()),
    });
    let ec_key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let mut ec_jwk: Value = serde_json::from_str(&ec_key.public_key().to_jwk_string()).unwrap();
    ec_jwk["kid"] = json!("ec-1");
    ec_jwk["alg"] = json!("ES256");
    ec_jwk["use"] = json!("sig");
    let ec_pem = ec_key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    Signers {
        rsa: EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
        ec: EncodingKey::from_ec_pem(ec_pem.as_bytes()).unwrap(),
        jwks: json!({"keys": [rsa_jwk, ec_jwk]}),
    }
}

async fn status_with(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app.get("/api/v1/history", Some(token)).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn issuer_and_audience_are_required_claims(backend: Backend) {
    let signers = signers();
    let url = serve_jwks(signers.jwks.clone()).await;
    let app = spawn_app_with(backend, |s| {
        s.auth.jwks_url = Some(url);
        s.auth.issuer = Some(ISSUER.into());
        s.auth.audience = Some(AUDIENCE.into());
    })
    .await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = |iss: Option<Value>, aud: Option<Value>| {
        let mut claims = json!({"sub": "idp-admin", "authorities": ["GLOBAL_WALLET_CRUD"], "exp": now + 600});
        if let Some(iss) = iss {
            claims["iss"] = iss;
        }
        if let Some(aud) = aud {
            claims["aud"] = aud;
        }
        claims
    };
    let (iss, aud) = (Some(json!(ISSUER)), Some(json!(AUDIENCE)));
    let cases = [
        ("issuer and audience", claims(iss.clone(), aud.clone()), 200),
        (
            "audience among several",
            claims(iss.clone(), Some(json!(["other", AUDIENCE]))),
            200,
        ),
        ("no issuer", claims(None, aud.clone()), 401),
        ("no audience", claims(iss.clone(), None), 401),
        ("neither", claims(None, None), 401),
        (
            "another issuer",
            claims(Some(json!("https://evil.example")), aud.clone()),
            401,
        ),
        (
            "another audience",
            claims(iss.clone(), Some(json!("someone-else"))),
            401,
        ),
        (
            "only other audiences",
            claims(iss.clone(), Some(json!(["a", "b"]))),
            401,
        ),
    ];
    let mut problems = Vec::new();
    for (algorithm, kid, key) in [
        (Algorithm::RS256, "rsa-1", &signers.rsa),
        (Algorithm::ES256, "ec-1", &signers.ec),
    ] {
        for (what, claims, expected) in &cases {
            let mut header = Header::new(algorithm);
            header.kid = Some(kid.into());
            let token = jsonwebtoken::encode(&header, claims, key).unwrap();
            let (status, body) = status_with(&app, &token).await;
            let problem = if *expected == 200 {
                (status != 200).then(|| format!("answered {status} {body}"))
            } else {
                error_body_problem(status, &body, 401)
            };
            if let Some(problem) = problem {
                problems.push(format!("{algorithm:?}, {what}: expected {expected}, {problem}"));
            }
        }
    }
    assert_no_problems(&problems);

    // The local key: minted tokens carry the configured issuer and audience; one without the
    // audience is refused like any other.
    let local = spawn_app_with(backend, |s| {
        s.auth.issuer = Some(ISSUER.into());
        s.auth.audience = Some(AUDIENCE.into());
    })
    .await;
    let (status, body) = status_with(&local, &local.admin_token).await;
    assert_eq!(status, 200, "minted token: {body}");
    let key = std::fs::read_to_string(local.settings.local_key_file()).unwrap();
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.decode(key.trim()).unwrap();
    let without_audience = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(Some(json!(ISSUER)), None),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    let (status, body) = status_with(&local, &without_audience).await;
    assert_error_body(status, &body, 401, "local token without audience");
}

// ---------------------------------------------------------------------------------------------
// NUL is refused everywhere.

enum Input {
    None,
    Json(Value),
    Text(&'static str),
    Form(&'static str),
}

async fn nul_is_refused_everywhere(app: TestApp) {
    let wallet = app.create_wallet("NUL").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let channels = format!("/api/wallets/{w}/integration-channels");
    let valid_channel = webhook_channel("valid", json!({"url": "https://receiver.example/hook"}));
    let (status, created) = app.call(reqwest::Method::POST, &channels, Some(&valid_channel)).await;
    assert_eq!(status, 201, "{created}");
    let c = created["channelExternalKey"].as_str().unwrap().to_string();
    let with = |path: &[&str], value: Value| {
        let mut body = valid_channel.clone();
        let mut at = &mut body;
        for key in path {
            at = &mut at[*key];
        }
        *at = value;
        body
    };
    let deliveries = format!("/api/wallets/{w}/integration-deliveries");
    let nul = "a\u{0}b";
    use reqwest::Method as M;
    let cases: Vec<(M, String, Input, Option<&str>)> = vec![
        // Bodies: a value, a nested value, an array item, a key.
        (
            M::POST,
            "/api/v1/wallets".into(),
            Input::Json(json!({"displayName": nul})),
            Some("displayName"),
        ),
        (
            M::POST,
            "/api/v1/wallets".into(),
            Input::Json(json!({"displayName": "a", "address": {"city": nul}})),
            Some("address.city"),
        ),
        (
            M::POST,
            "/api/v1/wallets".into(),
            Input::Json(json!({"displayName": "a", "x\u{0}": 1})),
            Some("x\\u0000"),
        ),
        (
            M::POST,
            format!("/api/v1/wallets/{w}/identifiers"),
            Input::Json(
                json!({"identifierType": "DID", "displayName": "web", "didType": "did:web", "domain": "acme\u{0}.example"}),
            ),
            Some("domain"),
        ),
        (
            M::POST,
            channels.clone(),
            Input::Json(with(&["name"], json!(nul))),
            Some("name"),
        ),
        (
            M::POST,
            channels.clone(),
            Input::Json(with(&["eventTypeFilters"], json!([IDENTIFIER_CREATED, nul]))),
            Some("eventTypeFilters[1]"),
        ),
        (
            M::PUT,
            format!("{channels}/{c}"),
            Input::Json(with(&["description"], json!(nul))),
            Some("description"),
        ),
        (
            M::POST,
            format!("{channels}/test"),
            Input::Json(with(&["webhook", "url"], json!("https://receiver.example/\u{0}"))),
            Some("webhook.url"),
        ),
        (
            M::POST,
            "/api/integration-channels".into(),
            Input::Json(with(&["name"], json!(nul))),
            Some("name"),
        ),
        // The escape as JSON text, also inside a longer value.
        (
            M::POST,
            "/api/v1/wallets".into(),
            Input::Text(r#"{"displayName": "abc\u0000def"}"#),
            Some("displayName"),
        ),
        // Paths.
        (M::GET, "/api/v1/wallets/%00".into(), Input::None, None),
        (
            M::GET,
            format!("/api/v1/wallets/{w}/identifiers/%00"),
            Input::None,
            None,
        ),
        (M::GET, format!("{channels}/%00"), Input::None, None),
        (M::DELETE, format!("{channels}/a%00"), Input::None, None),
        (M::GET, format!("{deliveries}/%00"), Input::None, None),
        (M::POST, format!("{deliveries}/%00/replay"), Input::None, None),
        (M::GET, "/api/integration-deliveries/%00".into(), Input::None, None),
        (
            M::GET,
            "/api/public/schemas/integration/%00/v1.json".into(),
            Input::None,
            None,
        ),
        (M::GET, "/no/such/%00/route".into(), Input::None, None),
        // Queries.
        (
            M::GET,
            format!("/api/v1/wallets/{w}/history?event=%00"),
            Input::None,
            Some("event"),
        ),
        (M::GET, "/api/v1/history?event=%00".into(), Input::None, Some("event")),
        (
            M::GET,
            format!("{deliveries}?eventType=%00"),
            Input::None,
            Some("eventType"),
        ),
        (
            M::GET,
            format!("{deliveries}?eventId=x%00"),
            Input::None,
            Some("eventId"),
        ),
        (
            M::GET,
            format!("{deliveries}?state=FAILED&channel=%00"),
            Input::None,
            Some("channel"),
        ),
        (
            M::POST,
            format!("{deliveries}/replay?eventType=%00"),
            Input::None,
            Some("eventType"),
        ),
        (
            M::GET,
            "/api/integration-deliveries?eventType=%00".into(),
            Input::None,
            Some("eventType"),
        ),
        (
            M::POST,
            format!("{channels}/{c}/test?eventType=%00"),
            Input::None,
            Some("eventType"),
        ),
        (
            M::POST,
            format!("{channels}/test?eventType=%00"),
            Input::Json(valid_channel.clone()),
            Some("eventType"),
        ),
        (M::GET, "/api/v1/history?%00=1".into(), Input::None, Some("%00")),
        // The Web UI: a query and form posts.
        (
            M::GET,
            "/ui/integrations/channels?wallet=%00".into(),
            Input::None,
            Some("wallet"),
        ),
        (
            M::POST,
            "/ui/sign-in".into(),
            Input::Form("_csrf=x&token=a%00b"),
            Some("token"),
        ),
        (
            M::POST,
            "/ui/integrations/channels".into(),
            Input::Form("_csrf=x&name=n%00&type=WEBHOOK"),
            Some("name"),
        ),
    ];
    let mut problems = Vec::new();
    for (method, path, input, field) in cases {
        let what = format!("{method} {path}");
        let mut request = app.client.request(method, app.url(&path)).bearer_auth(&app.admin_token);
        request = match input {
            Input::None => request,
            Input::Json(body) => request.json(&body),
            Input::Text(text) => request.header("content-type", "application/json").body(text),
            Input::Form(form) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let named = body["message"].as_str().is_some_and(|m| m.contains("NUL"))
            && field.is_none_or(|field| body["details"]["field"] == field);
        if let Some(problem) = error_body_problem(status, &body, 400) {
            problems.push(format!("{what}: {problem}"));
        } else if !named {
            problems.push(format!("{what}: not a NUL refusal naming {field:?}: {body}"));
        }
    }
    assert_no_problems(&problems);

    // A token whose subject (stored as the actor) or wallet claim holds a NUL is no token.
    for token in [
        app.token("a\u{0}b", &["GLOBAL_WALLET_CRUD"], None),
        app.token("ops", &["WALLET_IDENTIFIER_CRUD"], Some(&format!("{w}\u{0}"))),
    ] {
        let response = app
            .post(
                &format!("/api/v1/wallets/{w}/identifiers"),
                Some(&token),
                &json!({"identifierType": "JWK", "displayName": "k", "keyType": "P-256"}),
            )
            .await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_error_body(status, &body, 401, "a NUL in a token claim");
    }

    // An escaped backslash followed by `u0000` is text, not a NUL.
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/wallets",
            Some(&json!({"displayName": "backslash \\u0000"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["displayName"], "backslash \\u0000");

    // Nothing was written by the refused requests.
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM identifier").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_channel").await, 1);
    let (_, channel) = app.call(reqwest::Method::GET, &format!("{channels}/{c}"), None).await;
    assert_eq!(channel["description"], Value::Null, "{channel}");
}

// ---------------------------------------------------------------------------------------------
// Control characters never reach a header, a URL or the token request.

async fn control_characters_are_refused_at_save(app: TestApp) {
    let wallet = app.create_wallet("Control characters").await;
    let w = wallet["walletExternalKey"].as_str().unwrap().to_string();
    let channels = format!("/api/wallets/{w}/integration-channels");
    let good = json!({
        "url": "https://receiver.example/hook",
        "apiKey": {"headerName": "X-Api-Key", "value": "key-123"},
        "oauth2": {"tokenUrl": "https://idp.example/token", "clientId": "wallet", "clientSecret": "s3cret", "scope": "events"},
    });
    let (status, created) = app
        .call(
            reqwest::Method::POST,
            &channels,
            Some(&webhook_channel("saved", good.clone())),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let c = created["channelExternalKey"].as_str().unwrap().to_string();
    let (status, platform) = app
        .call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&webhook_channel("platform", good.clone())),
        )
        .await;
    assert_eq!(status, 201, "{platform}");
    let p = platform["channelExternalKey"].as_str().unwrap().to_string();

    let cases: [(&str, Value, &str); 13] = [
        ("/apiKey/value", json!("\n"), "webhook.apiKey.value"),
        ("/apiKey/value", json!("key\r\nX-Injected: 1"), "webhook.apiKey.value"),
        ("/apiKey/value", json!("key\u{0}"), "webhook.apiKey.value"),
        ("/apiKey/value", json!("key\u{7f}"), "webhook.apiKey.value"),
        ("/apiKey/headerName", json!("X Api Key"), "webhook.apiKey.headerName"),
        (
            "/apiKey/headerName",
            json!("X-Api\u{7}Key"),
            "webhook.apiKey.headerName",
        ),
        ("/oauth2/clientId", json!("wallet\u{0}"), "webhook.oauth2.clientId"),
        ("/oauth2/clientId", json!("wal\nlet"), "webhook.oauth2.clientId"),
        (
            "/oauth2/clientSecret",
            json!("s3cret\r\n"),
            "webhook.oauth2.clientSecret",
        ),
        ("/oauth2/scope", json!("events\tadmin"), "webhook.oauth2.scope"),
        (
            "/oauth2/tokenUrl",
            json!("https://idp.example/to\u{1}ken"),
            "webhook.oauth2.tokenUrl",
        ),
        ("/url", json!("https://receiver.example/hook\u{0}"), "webhook.url"),
        ("/url", json!("https://receiver.example/ho\nok"), "webhook.url"),
    ];
    use reqwest::Method as M;
    let routes = [
        (M::POST, channels.clone()),
        (M::PUT, format!("{channels}/{c}")),
        (M::POST, format!("{channels}/test")),
        (M::POST, "/api/integration-channels".to_string()),
        (M::PUT, format!("/api/integration-channels/{p}")),
        (M::POST, "/api/integration-channels/test".to_string()),
    ];
    let mut problems = Vec::new();
    for (pointer, value, field) in &cases {
        let mut webhook = good.clone();
        *webhook.pointer_mut(pointer).unwrap() = value.clone();
        let body = webhook_channel("changed", webhook);
        for (method, path) in &routes {
            let what = format!("{method} {path} with {pointer} = {value}");
            let (status, answer) = app.call(method.clone(), path, Some(&body)).await;
            if let Some(problem) = error_body_problem(status, &answer, 400) {
                problems.push(format!("{what}: {problem}"));
            } else if answer["details"]["field"] != *field {
                problems.push(format!("{what}: does not name {field}: {answer}"));
            }
        }
    }
    assert_no_problems(&problems);

    // Nothing was saved: two channels, unchanged.
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_channel").await, 2);
    let (_, saved) = app.call(reqwest::Method::GET, &format!("{channels}/{c}"), None).await;
    assert_eq!(saved["name"], "saved", "{saved}");
    assert_eq!(saved["updatedAt"], created["updatedAt"], "{saved}");
}

// ---------------------------------------------------------------------------------------------
// Errors before routing, and the history filter.

/// Sends raw bytes on a new connection and reads the answer until the server closes it.
async fn raw_exchange(app: &TestApp, request: Vec<u8>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let write = async {
        // The server may answer and close before it has read everything.
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
    };
    let read = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return answer,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                // Closing with part of a refused request unread resets the connection; what
                // arrived before the reset is the answer.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => return answer,
                Err(e) => panic!("reading the answer: {e}"),
            }
        }
    };
    let ((), answer) = tokio::time::timeout(GUARD, async { tokio::join!(write, read) })
        .await
        .expect("the server answers and closes the connection");
    let (status, headers, body) = parse_answer(&answer);
    (status, headers, body.to_vec())
}

/// Splits a whole HTTP answer into its status, its headers (names in lower case) and its body.
fn parse_answer(answer: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer).expect("an HTTP response") else {
        panic!("incomplete response: {}", String::from_utf8_lossy(answer));
    };
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    (response.code.unwrap(), headers, &answer[head..])
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn errors_before_routing_carry_the_json_body(app: TestApp) {
    let long_uri = format!("/api/v1/history?cursor={}", "1".repeat(70_000));
    let many_headers: String = (0..150).map(|i| format!("x-header-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed request line", b"NOT AN HTTP REQUEST\r\n\r\n".to_vec(), 400),
        ("no version", b"GET /health/live\r\nhost: x\r\n\r\n".to_vec(), 400),
        (
            "bad Content-Length",
            b"POST /api/v1/wallets HTTP/1.1\r\nhost: x\r\ncontent-length: 12abc\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Content-Lengths",
            b"POST /api/v1/wallets HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n".to_vec(),
            400,
        ),
        (
            "NUL in a header",
            b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-note: a\0b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "URI too long",
            format!("GET {long_uri} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
            414,
        ),
        (
            "headers too large",
            format!(
                "GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
                "b".repeat(500_000)
            )
            .into_bytes(),
            431,
        ),
        (
            "too many headers",
            format!("GET /health/live HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
    ];
    let mut problems = Vec::new();
    for (what, request, expected) in cases {
        let (status, headers, raw) = raw_exchange(&app, request).await;
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let framed = header(&headers, "content-type") == Some("application/json")
            && header(&headers, "content-length") == Some(raw.len().to_string().as_str());
        if let Some(problem) = error_body_problem(status, &body, expected) {
            problems.push(format!(
                "{what}: expected {expected}, {problem} (raw body {:?})",
                String::from_utf8_lossy(&raw)
            ));
        } else if !framed {
            problems.push(format!("{what}: headers {headers:?}"));
        }
    }
    assert_no_problems(&problems);

    // A wrong method: 405 with its own status and reason in the body (not 400), and the
    // methods the route takes.
    let (status, headers, body) = raw_exchange(
        &app,
        b"DELETE /api/v1/wallets HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_error_body(status, &body, 405, "DELETE /api/v1/wallets");
    assert_eq!(body["status"], 405, "{body}");
    assert_eq!(body["error"], "Method Not Allowed", "{body}");
    let allow = header(&headers, "allow").expect("an Allow header");
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let wallet = uuid::Uuid::new_v4();
    for (method, path) in [
        ("PUT", format!("/api/v1/wallets/{wallet}")),
        ("PATCH", format!("/api/wallets/{wallet}/integration-channels")),
        ("GET", format!("/api/integration-channels/{wallet}/rotate-secret")),
        ("POST", "/health/live".to_string()),
        ("POST", "/api/openapi.json".to_string()),
        ("DELETE", "/ui/sign-in".to_string()),
        ("FOO", "/api/v1/wallets".to_string()),
    ] {
        let request = format!("{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}", app.admin_token);
        let (status, headers, body) = raw_exchange(&app, request.into_bytes()).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            (status, &body["status"], &body["error"]),
            (405, &json!(405), &json!("Method Not Allowed")),
            "{method} {path}: {body}"
        );
        assert!(header(&headers, "allow").is_some(), "{method} {path}: {headers:?}");
    }

    // A request that parses still passes through the same connection layer, kept alive.
    let response = app.get("/health/live", None).await;
    assert_eq!(response.status(), 200);

    // The history filter takes the categories it knows, and names the parameter otherwise.
    let wallet = app.create_wallet("History").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    for path in [format!("/api/v1/wallets/{w}/history"), "/api/v1/history".to_string()] {
        let (status, page) = app
            .call(reqwest::Method::GET, &format!("{path}?event=INTEGRATION"), None)
            .await;
        assert_eq!(status, 200, "{path}: {page}");
        for value in ["FOO", "integration", ""] {
            let (status, body) = app
                .call(reqwest::Method::GET, &format!("{path}?event={value}"), None)
                .await;
            assert_error_body(status, &body, 400, &format!("{path}?event={value}"));
            assert_eq!(body["details"]["field"], "event", "{body}");
            assert!(body["message"].as_str().unwrap().contains("INTEGRATION"), "{body}");
        }
    }
    let openapi: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    let parameters = openapi["paths"]["/api/v1/history"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let event = parameters.iter().find(|p| p["name"] == "event").unwrap();
    assert_eq!(event["schema"]["enum"], json!(["INTEGRATION"]), "{event}");
}

/// Sends raw bytes on a new connection the way simple clients do, everything first, and only
/// then reads the answer to its end: a connection reset or a broken pipe on the way fails.
async fn send_all_then_read(app: &TestApp, request: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let address = app.address.trim_start_matches("http://").to_string();
    let exchange = async {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(request).await.expect("the whole request is taken");
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .expect("the answer is read to its end");
        answer
    };
    let answer = tokio::time::timeout(GUARD, exchange)
        .await
        .expect("the server answers and closes the connection");
    let (status, headers, body) = parse_answer(&answer);
    (status, headers, serde_json::from_slice(body).unwrap_or(Value::Null))
}

/// Posts a wallet body of about 6 MB with Python's `urllib.request`, with a declared
/// `Content-Length` (`length`) or chunked (`chunked`); returns what the script printed: the
/// status on the first line, the body on the second, or the exception it got.
async fn python_posts_six_megabytes(app: &TestApp, mode: &str) -> String {
    const SCRIPT: &str = r#"
import sys, urllib.request, urllib.error
url, token, mode = sys.argv[1:4]
body = b'{"displayName": "' + b'x' * 6_000_000 + b'"}'
data = body if mode == 'length' else iter([body[i:i + 65536] for i in range(0, len(body), 65536)])
request = urllib.request.Request(url, data=data, method='POST', headers={
    'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token})
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(response.status)
        print(response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code)
    print(error.read().decode())
except Exception as error:
    print('exception', repr(error))
"#;
    let output = tokio::time::timeout(
        GUARD,
        tokio::process::Command::new("python3")
            .args(["-c", SCRIPT, &app.url("/api/v1/wallets"), &app.admin_token, mode])
            .output(),
    )
    .await
    .expect("the script ends")
    .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn refused_requests_are_answered_to_clients_that_send_everything_first(app: TestApp) {
    // A body over the limit, declared or chunked: Python's urllib sends all of it before it
    // reads, and reads the 413 with its JSON body (not a broken pipe).
    for mode in ["length", "chunked"] {
        let printed = python_posts_six_megabytes(&app, mode).await;
        let mut lines = printed.lines();
        assert_eq!(lines.next(), Some("413"), "{mode}: {printed}");
        let body: Value = serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or(Value::Null);
        assert_eq!(body["status"], 413, "{mode}: {printed}");
        assert_eq!(body["error"], "Payload Too Large", "{mode}: {printed}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 0, "nothing was written");

    // The same on a raw connection, with the connection closed after the answer.
    let body = vec![b'x'; 3_000_000];
    let mut request = format!(
        "POST /api/v1/wallets HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        app.admin_token,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (status, headers, answer) = send_all_then_read(&app, &request).await;
    assert_error_body(status, &answer, 413, "a declared body over the limit");
    assert_eq!(header(&headers, "connection"), Some("close"), "{headers:?}");

    // A client that waits for `100 Continue` is answered at once, never asked for the body.
    let request = format!(
        "POST /api/v1/wallets HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 3000000\r\nexpect: 100-continue\r\n\r\n",
        app.admin_token
    );
    let (status, _, answer) = send_all_then_read(&app, request.as_bytes()).await;
    assert_error_body(status, &answer, 413, "Expect: 100-continue");

    // A request head over the cap is 431 with the JSON body every time, however much of it
    // the client still sends after the cap; one below the cap is served.
    for (size, round) in [(100_000, 1), (8_000_000, 1), (100_000, 2), (8_000_000, 2)] {
        let request = format!(
            "GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "b".repeat(size)
        );
        let (status, _, answer) = send_all_then_read(&app, request.as_bytes()).await;
        assert_error_body(status, &answer, 431, &format!("a {size}-byte header, round {round}"));
    }
    let request = format!(
        "GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "b".repeat(60_000)
    );
    let (status, _, answer) = send_all_then_read(&app, request.as_bytes()).await;
    assert_eq!(status, 200, "a 60,000-byte header fits: {answer}");
}

both_backend_kinds!(
    oauth2_token_answers_are_read_within_a_limit,
    issuer_and_audience_are_required_claims
);
both_backends!(
    nul_is_refused_everywhere,
    control_characters_are_refused_at_save,
    errors_before_routing_carry_the_json_body,
    refused_requests_are_answered_to_clients_that_send_everything_first
);
