//! Access control: 401 without a valid token, 403 without the authority or for another wallet,
//! and JWKS-validated tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{spawn_app_with, Backend, TestApp};

async fn assert_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
    body
}

async fn tokens_and_authorities_are_enforced(app: TestApp) {
    let a = app.create_wallet("A").await;
    let a = a["walletExternalKey"].as_str().unwrap().to_string();
    let b = app.create_wallet("B").await;
    let b = b["walletExternalKey"].as_str().unwrap().to_string();
    let identifier = json!({"identifierType": "JWK", "displayName": "k"});

    // No token, a malformed header, a garbage token, a tampered token: 401.
    assert_error(
        app.post("/api/v1/wallets", None, &json!({"displayName": "x"})).await,
        401,
    )
    .await;
    assert_error(app.get(&format!("/api/v1/wallets/{a}"), None).await, 401).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/wallets/{a}")))
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_error(response, 401).await;
    assert_error(app.get(&format!("/api/v1/wallets/{a}"), Some("not.a.token")).await, 401).await;
    let mut tampered = app.admin_token.clone();
    tampered.insert(tampered.find('.').unwrap() + 1, 'x');
    assert_error(app.get(&format!("/api/v1/wallets/{a}"), Some(&tampered)).await, 401).await;

    // Expired beyond the leeway: 401.
    let key = std::fs::read_to_string(app.settings.local_key_file()).unwrap();
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.decode(key.trim()).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "admin", "authorities": ["GLOBAL_WALLET_CRUD"], "exp": now - 600}),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    let body = assert_error(app.get(&format!("/api/v1/wallets/{a}"), Some(&expired)).await, 401).await;
    assert!(body["message"].as_str().unwrap().contains("xpired"), "{body}");

    // Valid token without the authority: 403.
    let identifier_crud_a = app.token("ops-a", &["WALLET_IDENTIFIER_CRUD"], Some(&a));
    assert_error(
        app.post(
            "/api/v1/wallets",
            Some(&identifier_crud_a),
            &json!({"displayName": "x"}),
        )
        .await,
        403,
    )
    .await;
    let read_only_a = app.token("reader-a", &["WALLET_INTEGRATION_CHANNEL_READ"], Some(&a));
    assert_error(
        app.post(
            &format!("/api/v1/wallets/{a}/identifiers"),
            Some(&read_only_a),
            &identifier,
        )
        .await,
        403,
    )
    .await;
    let nothing = app.token("nobody", &[], Some(&a));
    assert_error(app.get(&format!("/api/v1/wallets/{a}"), Some(&nothing)).await, 403).await;

    // A token for wallet A works on A and cannot read or change B.
    assert_eq!(
        app.get(&format!("/api/v1/wallets/{a}"), Some(&identifier_crud_a))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/wallets/{a}/identifiers"),
            Some(&identifier_crud_a),
            &identifier
        )
        .await
        .status(),
        201
    );
    assert_error(
        app.get(&format!("/api/v1/wallets/{b}"), Some(&identifier_crud_a)).await,
        403,
    )
    .await;
    assert_error(
        app.get(&format!("/api/v1/wallets/{b}/identifiers"), Some(&identifier_crud_a))
            .await,
        403,
    )
    .await;
    assert_error(
        app.post(
            &format!("/api/v1/wallets/{b}/identifiers"),
            Some(&identifier_crud_a),
            &identifier,
        )
        .await,
        403,
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM identifier").await,
        1,
        "nothing was written for B"
    );

    // GLOBAL_WALLET_CRUD works on every wallet.
    assert_eq!(
        app.get(&format!("/api/v1/wallets/{b}/identifiers"), Some(&app.admin_token))
            .await
            .status(),
        200
    );
}

/// Serves a JWKS on 127.0.0.1 and returns its URL.
async fn serve_jwks(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/.well-known/jwks.json")
}

async fn jwks_tokens(backend: Backend) {
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
    let signing = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let mut jwk: Value = serde_json::from_str(&signing.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!("key-1");
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    let url = serve_jwks(json!({"keys": [jwk]})).await;
    let app = spawn_app_with(backend, |s| {
        s.auth.jwks_url = Some(url);
        s.auth.issuer = Some("https://issuer.example".into());
    })
    .await;

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"sub": "idp-admin", "authorities": ["GLOBAL_WALLET_CRUD"], "exp": now + 600, "iss": "https://issuer.example"});
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let es256 = |kid: &str, claims: &Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
    };

    let good = es256("key-1", &claims);
    let response = app
        .post("/api/v1/wallets", Some(&good), &json!({"displayName": "Via JWKS"}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["createdBy"], "idp-admin");

    // Unknown key id, wrong issuer, and an HS256 token keyed with public material: 401.
    assert_error(
        app.post(
            "/api/v1/wallets",
            Some(&es256("key-2", &claims)),
            &json!({"displayName": "x"}),
        )
        .await,
        401,
    )
    .await;
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("https://evil.example");
    assert_error(
        app.post(
            "/api/v1/wallets",
            Some(&es256("key-1", &other_issuer)),
            &json!({"displayName": "x"}),
        )
        .await,
        401,
    )
    .await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(jwk["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    assert_error(
        app.post("/api/v1/wallets", Some(&confused), &json!({"displayName": "x"}))
            .await,
        401,
    )
    .await;
    // The locally minted token is not accepted when a JWKS is configured.
    assert_error(
        app.post("/api/v1/wallets", Some(&app.admin_token), &json!({"displayName": "x"}))
            .await,
        401,
    )
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 1);
}

async fn tokens_from_a_jwks_are_accepted(app: TestApp) {
    jwks_tokens(app.backend).await;
}

both_backends!(tokens_and_authorities_are_enforced, tokens_from_a_jwks_are_accepted);
