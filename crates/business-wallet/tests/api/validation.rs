//! Bad input gets 400/404/413/422 in the JSON error shape; nothing answers 500 and nothing is
//! half-written.

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::TestApp;

enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    path: String,
    body: Body,
    status: u16,
    message_contains: &'static str,
}

fn case(name: &'static str, path: &str, body: Value, status: u16, message_contains: &'static str) -> Case {
    Case {
        name,
        path: path.to_string(),
        body: Body::Json(body),
        status,
        message_contains,
    }
}

fn raw(
    name: &'static str,
    path: &str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    message_contains: &'static str,
) -> Case {
    Case {
        name,
        path: path.to_string(),
        body: Body::Raw(content_type, body),
        status,
        message_contains,
    }
}

async fn bad_input_is_refused_cleanly(app: TestApp) {
    let wallet = app.create_wallet("Valid").await;
    let w = wallet["walletExternalKey"].as_str().unwrap();
    let wallets = "/api/v1/wallets";
    let ids = format!("/api/v1/wallets/{w}/identifiers");
    let long = "x".repeat(201);

    let cases = vec![
        raw(
            "malformed JSON",
            wallets,
            "application/json",
            b"{\"displayName\": ".to_vec(),
            400,
            "malformed JSON",
        ),
        raw(
            "trailing garbage",
            wallets,
            "application/json",
            b"{\"displayName\": \"a\"} x".to_vec(),
            400,
            "malformed JSON",
        ),
        raw(
            "not JSON content type",
            wallets,
            "text/plain",
            b"displayName=a".to_vec(),
            400,
            "JSON",
        ),
        case("empty object", wallets, json!({}), 400, "displayName"),
        case("wrong type", wallets, json!({"displayName": 42}), 400, "displayName"),
        case(
            "wrong nested type",
            wallets,
            json!({"displayName": "a", "address": {"city": 7}}),
            400,
            "address.city",
        ),
        case(
            "unknown field",
            wallets,
            json!({"displayName": "a", "colour": "red"}),
            400,
            "colour",
        ),
        case(
            "array instead of object",
            wallets,
            json!(["displayName"]),
            400,
            "invalid type",
        ),
        case(
            "array instead of nested object",
            wallets,
            json!({"displayName": "a", "address": ["Kade 1", "1011", "Amsterdam", "NL"]}),
            400,
            "address",
        ),
        case("blank name", wallets, json!({"displayName": "   "}), 400, "displayName"),
        case(
            "over-long name",
            wallets,
            json!({"displayName": long}),
            400,
            "displayName",
        ),
        case(
            "over-long city",
            wallets,
            json!({"displayName": "a", "address": {"city": "c".repeat(101)}}),
            400,
            "address.city",
        ),
        case(
            "malformed email",
            wallets,
            json!({"displayName": "a", "email": "not-an-email"}),
            400,
            "email",
        ),
        case(
            "malformed website",
            wallets,
            json!({"displayName": "a", "website": "javascript:alert(1)"}),
            400,
            "website",
        ),
        case(
            "malformed phone",
            wallets,
            json!({"displayName": "a", "phoneNumber": "call me maybe"}),
            400,
            "phoneNumber",
        ),
        case(
            "unknown identifier type",
            &ids,
            json!({"identifierType": "PGP", "displayName": "k"}),
            400,
            "identifierType",
        ),
        case(
            "unknown DID method",
            &ids,
            json!({"identifierType": "DID", "displayName": "k", "didType": "did:foo"}),
            400,
            "didType",
        ),
        case(
            "unknown key type",
            &ids,
            json!({"identifierType": "JWK", "displayName": "k", "keyType": "RSA"}),
            400,
            "keyType",
        ),
        case(
            "DID without method",
            &ids,
            json!({"identifierType": "DID", "displayName": "k"}),
            400,
            "didType",
        ),
        case(
            "did:web without domain",
            &ids,
            json!({"identifierType": "DID", "displayName": "k", "didType": "did:web"}),
            400,
            "domain",
        ),
        case(
            "did:web with a URL",
            &ids,
            json!({"identifierType": "DID", "displayName": "k", "didType": "did:web", "domain": "https://acme.example"}),
            400,
            "domain",
        ),
        case(
            "did:ebsi without environment",
            &ids,
            json!({"identifierType": "DID", "displayName": "k", "didType": "did:ebsi"}),
            400,
            "didEnvironment",
        ),
        case(
            "did:web with a key type",
            &ids,
            json!({"identifierType": "DID", "displayName": "k", "didType": "did:web", "domain": "a.example", "keyType": "Ed25519"}),
            422,
            "keyType",
        ),
        case(
            "JWK with a DID method",
            &ids,
            json!({"identifierType": "JWK", "displayName": "k", "didType": "did:key"}),
            422,
            "didType",
        ),
        case(
            "X509 with subject and certificate",
            &ids,
            json!({"identifierType": "X509", "displayName": "k", "subject": "CN=a", "certificatePem": "x"}),
            422,
            "certificatePem",
        ),
        case(
            "X509 without subject",
            &ids,
            json!({"identifierType": "X509", "displayName": "k"}),
            400,
            "subject",
        ),
        case(
            "X509 bad subject",
            &ids,
            json!({"identifierType": "X509", "displayName": "k", "subject": "XX=nope"}),
            400,
            "subject",
        ),
        case(
            "X509 garbage certificate",
            &ids,
            json!({"identifierType": "X509", "displayName": "k", "certificatePem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
            400,
            "certificatePem",
        ),
        case(
            "over-long identifier name",
            &ids,
            json!({"identifierType": "JWK", "displayName": long}),
            400,
            "displayName",
        ),
        case(
            "unknown wallet",
            "/api/v1/wallets/6f1c2d3e-0000-4000-8000-000000000000/identifiers",
            json!({"identifierType": "JWK", "displayName": "k"}),
            404,
            "does not exist",
        ),
        case(
            "malformed wallet key",
            "/api/v1/wallets/not-a-uuid/identifiers",
            json!({"identifierType": "JWK", "displayName": "k"}),
            400,
            "walletExternalKey",
        ),
        case("unknown route", "/api/v1/nothing-here", json!({}), 404, "route"),
    ];

    for c in cases {
        let request = app.client.post(app.url(&c.path)).bearer_auth(&app.admin_token);
        let request = match &c.body {
            Body::Json(v) => request.json(v),
            Body::Raw(content_type, bytes) => request.header("Content-Type", *content_type).body(bytes.clone()),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, c.status, "{}: {text}", c.name);
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: error body is not JSON: {text}", c.name));
        assert_eq!(body["status"], c.status, "{}: {body}", c.name);
        assert!(body["error"].is_string(), "{}: {body}", c.name);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(c.message_contains),
            "{}: message {message:?} should mention {:?}",
            c.name,
            c.message_contains
        );
    }

    // An oversized body is refused from its Content-Length before it is read. The request
    // announces `Expect: 100-continue`, as clients do for large bodies, so the 413 arrives
    // before the body is sent; a client that sends it anyway may see the connection closed.
    let (status, body) = oversized_post(&app, wallets, 200 * 1024).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], 413);
    assert!(body["message"].as_str().unwrap().contains("limit"));

    // Reading with bad keys is just as clean.
    let response = app.get("/api/v1/wallets/not-a-uuid", Some(&app.admin_token)).await;
    assert_eq!(response.status(), 400);
    let response = app
        .get(
            "/api/v1/wallets/6f1c2d3e-0000-4000-8000-000000000000",
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], 404);
    let response = app
        .get(
            &format!("{ids}/6f1c2d3e-0000-4000-8000-000000000000"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(response.status(), 404);

    // Nothing was half-written: only the valid wallet and its one event exist.
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM identifier").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM integration_event").await, 1);
}

both_backends!(bad_input_is_refused_cleanly);

/// POSTs `size` bytes with `Expect: 100-continue` over a plain connection and returns the
/// status and body of the answer, sending the body only if the server asks for it.
async fn oversized_post(app: &TestApp, path: &str, size: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Read the head, then exactly Content-Length bytes: the server may keep the connection
    // open, waiting for a body it will never read.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_end, length) = loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(n > 0, "connection closed before an answer");
        answer.extend_from_slice(&buf[..n]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while answer.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed in the middle of the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer[..head_end]).to_string();
    assert!(
        !text.starts_with("HTTP/1.1 100"),
        "the server must refuse before asking for the body: {text}"
    );
    let status = text[9..12].parse().unwrap();
    let body = String::from_utf8_lossy(&answer[head_end..head_end + length]).to_string();
    (status, body)
}
