//! The OpenAPI description says what the routes answer and what they accept: every error a
//! route can give is documented with the error body, and a request body the description allows
//! is accepted while one it forbids is refused (checked here on examples of each rule; the
//! schemathesis check in `scripts/checks/` generates thousands more).

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::TestApp;

const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";

async fn served_document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every `$ref` in `value`, with where it was found.
fn references<'v>(value: &'v Value, at: String, found: &mut Vec<(String, &'v str)>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "$ref" {
                    if let Some(target) = item.as_str() {
                        found.push((at.clone(), target));
                    }
                } else {
                    references(item, format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The response object of `status`, its `$ref` followed.
fn response<'d>(doc: &'d Value, operation: &'d Value, status: &str) -> Option<&'d Value> {
    let response = operation["responses"].get(status)?;
    match response["$ref"].as_str() {
        Some(target) => doc.pointer(target.trim_start_matches('#')),
        None => Some(response),
    }
}

async fn every_route_documents_its_errors(app: TestApp) {
    let doc = served_document(&app).await;

    let mut found = Vec::new();
    references(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, target) in &found {
        assert!(
            doc.pointer(target.trim_start_matches('#')).is_some(),
            "{at}: $ref {target} does not resolve"
        );
    }

    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );

    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            let mut expected = vec!["400"];
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if secured {
                expected.extend(["401", "403", "503"]);
            }
            if path.contains('{') {
                expected.push("404");
            }
            if operation.get("requestBody").is_some() {
                expected.push("413");
            }
            for status in expected {
                let response =
                    response(&doc, operation, status).unwrap_or_else(|| panic!("{name} does not document {status}"));
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{name}: {status} carries the error body"
                );
            }
            let success = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|s| s.starts_with('2'))
                .count();
            assert_eq!(success, 1, "{name} documents one success status");
        }
    }
    assert_eq!(operations, 52, "every operation is described");

    // The routes that need a token do say so, and an unauthenticated call gets the 401 promised.
    let wallet = app.create_wallet("Acme").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/api/v1/wallets/{w}".to_string(),
        "/api/wallets/{w}/integration-channels".into(),
        "/api/wallets/{w}/integration-deliveries".into(),
        "/api/v1/history".into(),
    ] {
        let response = app.get(&path.replace("{w}", &wallet), None).await;
        assert_eq!(response.status(), 401, "{path}");
        let template = doc["paths"][&path.replace("{w}", "{walletExternalKey}")]["get"].clone();
        assert!(template["security"].is_array(), "{path} declares its bearer security");
    }
}

/// Whether `body` is valid against the component schema `name` of the served document.
fn allowed(doc: &Value, name: &str, body: &Value) -> bool {
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
    });
    schema["components"] = doc["components"].clone();
    jsonschema::options()
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name} compiles: {e}"))
        .is_valid(body)
}

/// Sends each body and checks that the description and the server agree on it: allowed and
/// answered `2xx`, or forbidden and answered with the given status.
async fn agree(app: &TestApp, doc: &Value, schema: &str, method: reqwest::Method, path: &str, cases: &[(Value, u16)]) {
    for (body, status) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&app.admin_token)
            .json(body)
            .send()
            .await
            .unwrap();
        let answered = response.status().as_u16();
        let text = response.text().await.unwrap();
        let valid = allowed(doc, schema, body);
        assert_eq!(answered, *status, "{method} {path} {body}: {text}");
        assert_eq!(
            valid,
            (200..300).contains(status),
            "{body}: the description {} it, the server answered {answered}",
            if valid { "allows" } else { "forbids" }
        );
    }
}

async fn the_schemas_say_what_the_server_accepts(app: TestApp) {
    let doc = served_document(&app).await;

    let long = "a".repeat(201);
    agree(
        &app,
        &doc,
        "CreateWallet",
        reqwest::Method::POST,
        "/api/v1/wallets",
        &[
            (json!({"displayName": "  Acme  "}), 201),
            (
                json!({"displayName": "A", "email": " ", "website": "", "phoneNumber": null, "address": {}}),
                201,
            ),
            (
                json!({"displayName": "Acme", "email": "ops@acme.example", "website": "https://acme.example/x",
                       "phoneNumber": "+31 (20) 555-0100", "address": {"city": " Amsterdam ", "country": "NL"}}),
                201,
            ),
            (json!({"displayName": ""}), 400),
            (json!({"displayName": " \t "}), 400),
            (json!({"displayName": "a\u{7}b"}), 400),
            (json!({ "displayName": long }), 400),
            (json!({"displayName": "a", "email": "not-an-email"}), 400),
            (json!({"displayName": "a", "website": "ftp://acme.example"}), 400),
            (json!({"displayName": "a", "phoneNumber": "call me"}), 400),
            (json!({"displayName": "a", "address": {"town": "x"}}), 400),
            (json!({"displayName": "a", "extra": 1}), 400),
            (json!({}), 400),
        ],
    )
    .await;

    let wallet = app.create_wallet("Acme").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    agree(
        &app,
        &doc,
        "CreateIdentifier",
        reqwest::Method::POST,
        &format!("/api/v1/wallets/{wallet}/identifiers"),
        &[
            (json!({"identifierType": "DID", "displayName": "Key", "didType": "did:key"}), 201),
            (json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "Acme.example:8443/issuer/"}), 201),
            (json!({"identifierType": "DID", "displayName": "EBSI", "didType": "did:ebsi", "didEnvironment": "pilot", "keyType": null}), 201),
            (json!({"identifierType": "JWK", "displayName": "Signing", "keyType": "P-256"}), 201),
            (json!({"identifierType": "X509", "displayName": "Seal", "subject": "CN=Acme Seal,O=Acme B.V.,C=nl"}), 201),
            (json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "acme.example", "keyType": "Ed25519"}), 422),
            (json!({"identifierType": "JWK", "displayName": "Signing", "subject": "CN=x"}), 422),
            (json!({"identifierType": "X509", "displayName": "Seal", "subject": "CN=x", "certificatePem": "x"}), 422),
            (json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web", "domain": "acme..example"}), 400),
            (json!({"identifierType": "DID", "displayName": "Web", "didType": "did:web"}), 400),
            (json!({"identifierType": "DID", "displayName": "EBSI", "didType": "did:ebsi", "didEnvironment": "Pilot"}), 400),
            (json!({"identifierType": "X509", "displayName": "Seal", "subject": "O=No Common Name"}), 400),
            (json!({"identifierType": "X509", "displayName": "Seal"}), 400),
            (json!({"identifierType": "DID", "displayName": " ", "didType": "did:key"}), 400),
            (json!({"identifierType": "LDAP", "displayName": "x"}), 400),
        ],
    )
    .await;

    let channel = |name: &str, webhook: Value| json!({"name": name, "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED], "webhook": webhook});
    let url = "https://receiver.example/hook";
    agree(
        &app,
        &doc,
        "ChannelBody",
        reqwest::Method::POST,
        "/api/integration-channels",
        &[
            (channel(" plain ", json!({ "url": url })), 201),
            (channel("whole", json!({"url": url, "timeoutMs": 1500.0})), 201),
            (
                channel("keyed", json!({"url": format!("  {url}  "), "timeoutMs": 30000,
                    "apiKey": {"headerName": "X-Api-Key", "value": "k"},
                    "oauth2": {"tokenUrl": "https://idp.example/token", "clientId": " wallet ", "clientSecret": "s", "scope": ""}})),
                201,
            ),
            (channel("guarded", json!({"url": url, "validationHandshake": true})), 201),
            (channel("unguarded", json!({"url": url, "validationHandshake": null})), 201),
            (channel("", json!({ "url": url })), 400),
            (channel("vague", json!({"url": url, "validationHandshake": "yes"})), 400),
            (channel("zero", json!({"url": url, "timeoutMs": 0})), 400),
            (channel("slow", json!({"url": url, "timeoutMs": 30001})), 400),
            (channel("half", json!({"url": url, "timeoutMs": 1.5})), 400),
            (channel("ftp", json!({"url": "ftp://receiver.example/hook"})), 400),
            (channel("nokey", json!({"url": url, "apiKey": {"headerName": "X-Api-Key"}})), 400),
            (channel("badname", json!({"url": url, "apiKey": {"headerName": "X Api Key", "value": "k"}})), 400),
            (json!({"name": "none", "type": "WEBHOOK", "eventTypeFilters": [], "webhook": {"url": url}}), 400),
            (json!({"name": "unknown", "type": "WEBHOOK", "eventTypeFilters": ["x.y"], "webhook": {"url": url}}), 400),
            (json!({"name": "kafka", "type": "KAFKA", "eventTypeFilters": [WALLET_CREATED], "kafka": {"topic": "t"}}), 400),
            (json!({"name": "noblock", "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED]}), 400),
            (
                json!({"name": "two", "type": "WEBHOOK", "eventTypeFilters": [WALLET_CREATED], "webhook": {"url": url}, "kafka": {"topic": "t"}}),
                422,
            ),
        ],
    )
    .await;

    // This deployment offers webhooks only, and its description says so.
    let titles: Vec<&str> = doc["components"]["schemas"]["ChannelBody"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["WEBHOOK"]);
}

both_backends!(
    every_route_documents_its_errors,
    the_schemas_say_what_the_server_accepts
);

/// `path` with each parameter filled in: the wallet given, the catalog's first schema, and a
/// made-up key for anything else.
fn filled(template: &str, wallet: &str) -> String {
    let mut path = template
        .replace("{walletExternalKey}", wallet)
        .replace("{slug}", "wallet-created")
        .replace("{file}", "v1.json");
    while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
        path.replace_range(start..=end, &uuid::Uuid::new_v4().to_string());
    }
    path
}

/// Every operation of the document reaches a handler: with made-up keys (and an empty body
/// where it takes one) it may be refused, but never as an unknown route or a wrong method.
async fn every_documented_route_answers(app: TestApp) {
    let doc = served_document(&app).await;
    let wallet = app.create_wallet("Walk").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let mut called = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = filled(template, &wallet);
        for (method, operation) in item.as_object().unwrap() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&app.admin_token);
            if operation.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {template}: {body}");
            assert!(
                !(status == 404 && body["message"] == "no such route"),
                "{method} {template} is documented but not routed"
            );
            called += 1;
        }
    }
    assert!(called > 30, "{called} operations called");
}

/// The routes the README names are in the document: those it writes out in full
/// (`` `GET /api/v1/history` ``), the rows of its channel and deliveries tables, which
/// abbreviate the paths, in full for both scopes, and the wallet, identifier, public and
/// operations routes that its examples call.
async fn the_readme_routes_are_documented(app: TestApp) {
    let doc = served_document(&app).await;
    let readme = include_str!("../../../../README.md");
    let mut routes: Vec<(String, String)> = Vec::new();
    for span in readme.split('`').skip(1).step_by(2) {
        let mut words = span.split_whitespace();
        let (Some(methods), Some(path), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let path = path.split('?').next().unwrap();
        if !path.starts_with('/') {
            continue;
        }
        for method in methods.split('|') {
            if ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method) {
                routes.push((method.to_string(), path.to_string()));
            }
        }
    }
    assert!(routes.contains(&("GET".into(), "/api/v1/history".into())), "{routes:?}");
    for (channels, deliveries) in [
        (
            "/api/wallets/{walletExternalKey}/integration-channels",
            "/api/wallets/{walletExternalKey}/integration-deliveries",
        ),
        ("/api/integration-channels", "/api/integration-deliveries"),
    ] {
        let channel = format!("{channels}/{{channelExternalKey}}");
        let delivery = format!("{deliveries}/{{deliveryExternalKey}}");
        for (method, path) in [
            ("GET", channels.to_string()),
            ("POST", channels.to_string()),
            ("GET", channel.clone()),
            ("PUT", channel.clone()),
            ("DELETE", channel.clone()),
            ("POST", format!("{channel}/rotate-secret")),
            ("POST", format!("{channel}/test")),
            ("POST", format!("{channels}/test")),
            ("GET", deliveries.to_string()),
            ("GET", delivery.clone()),
            ("POST", format!("{delivery}/replay")),
            ("POST", format!("{delivery}/dismiss")),
            ("POST", format!("{deliveries}/replay")),
        ] {
            routes.push((method.into(), path));
        }
    }
    for (method, path) in [
        ("POST", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/{walletExternalKey}"),
        ("POST", "/api/v1/wallets/{walletExternalKey}/identifiers"),
        ("GET", "/api/v1/wallets/{walletExternalKey}/identifiers"),
        (
            "GET",
            "/api/v1/wallets/{walletExternalKey}/identifiers/{identifierExternalKey}",
        ),
        ("GET", "/api/public/event-types"),
        ("GET", "/api/public/schemas/integration/{slug}/{file}"),
        ("GET", "/api/public/asyncapi.json"),
        ("GET", "/api/openapi.json"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
    ] {
        routes.push((method.into(), path.into()));
    }
    for (method, path) in &routes {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "the README's {method} {path} is not in the OpenAPI document"
        );
    }
}

both_backends!(every_documented_route_answers, the_readme_routes_are_documented);
