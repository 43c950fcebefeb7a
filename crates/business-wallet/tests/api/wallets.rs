use serde_json::{json, Value};

use crate::common::TestApp;
use crate::{assert_envelope, assert_valid_against_served_schema, both_backends, events_of};

async fn create_and_read_a_wallet(app: TestApp) {
    let body = json!({
        "displayName": "Acme Logistics B.V.",
        "email": "ops@acme.example",
        "website": "https://acme.example",
        "phoneNumber": "+31 20 555 0100",
        "address": {"street": "Kade 1", "postalCode": "1011 AB", "city": "Amsterdam", "country": "NL"}
    });
    let response = app.post("/api/v1/wallets", Some(&app.admin_token), &body).await;
    assert_eq!(response.status(), 201);
    let wallet: serde_json::Value = response.json().await.unwrap();
    let key = wallet["walletExternalKey"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(key).is_ok());
    assert_eq!(wallet["displayName"], "Acme Logistics B.V.");
    assert_eq!(wallet["address"]["city"], "Amsterdam");
    assert_eq!(wallet["createdBy"], "admin");

    let read = app.get(&format!("/api/v1/wallets/{key}"), Some(&app.admin_token)).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<serde_json::Value>().await.unwrap(), wallet);
}

async fn a_created_wallet_has_exactly_one_valid_event(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("X-Correlation-Id", "corr-wallet-123")
        .json(&json!({"displayName": "Minimal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], "corr-wallet-123");
    let wallet: serde_json::Value = response.json().await.unwrap();
    let key = wallet["walletExternalKey"].as_str().unwrap();

    let events = events_of(&app, key).await;
    assert_eq!(events.len(), 1, "exactly one event");
    let event = &events[0];
    assert_envelope(
        event,
        "com.credenco.businesswallet.wallet.created.v1",
        &format!("wallets/{key}"),
        key,
    );
    assert_eq!(event["correlationid"], "corr-wallet-123");
    assert_eq!(event["data"], wallet, "the data is the wallet as the API returned it");
    assert!(event["data"]["email"].is_null());
    assert_valid_against_served_schema(&app, event["dataschema"].as_str().unwrap(), &event["data"]).await;
}

async fn requests_without_correlation_id_get_a_fresh_one(app: TestApp) {
    let first = app.create_wallet("One").await;
    let second = app.create_wallet("Two").await;
    let a = &events_of(&app, first["walletExternalKey"].as_str().unwrap()).await[0];
    let b = &events_of(&app, second["walletExternalKey"].as_str().unwrap()).await[0];
    assert!(uuid::Uuid::parse_str(a["correlationid"].as_str().unwrap()).is_ok());
    assert_ne!(a["correlationid"], b["correlationid"]);
}

/// Creates a wallet with `id` as the `X-Correlation-Id` header.
async fn create_with_correlation_id(app: &TestApp, id: &[u8]) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header(
            "X-Correlation-Id",
            reqwest::header::HeaderValue::from_bytes(id).unwrap(),
        )
        .json(&json!({"displayName": "Correlated"}))
        .send()
        .await
        .unwrap()
}

async fn a_correlation_id_that_breaks_the_rule_is_refused(app: TestApp) {
    let long = "x".repeat(129);
    for id in [
        b"has a space".as_slice(),
        b"",
        long.as_bytes(),
        "caf\u{e9}".as_bytes(),
        b"tab\there",
    ] {
        let response = create_with_correlation_id(&app, id).await;
        assert_eq!(response.status(), 400, "{id:?}");
        // Echoed with the new id it was logged with.
        let echoed = response.headers()["x-correlation-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "Bad Request", "{body}");
        assert_eq!(body["details"]["field"], "X-Correlation-Id", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("1 to 128 visible ASCII"),
            "{body}"
        );
    }
    // Given twice: refused too.
    let response = app
        .client
        .get(app.url("/api/v1/wallets"))
        .bearer_auth(&app.admin_token)
        .header("X-Correlation-Id", "one")
        .header("X-Correlation-Id", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM wallet").await, 0, "nothing was written");

    // The longest id allowed, with every kind of visible character, is kept as sent.
    let max = format!("{}!~", "a".repeat(126));
    let response = create_with_correlation_id(&app, max.as_bytes()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], max.as_str());
    let wallet: Value = response.json().await.unwrap();
    let events = events_of(&app, wallet["walletExternalKey"].as_str().unwrap()).await;
    assert_eq!(events[0]["correlationid"], max.as_str());

    // The rule is in the API description.
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    let bad_request = doc["components"]["responses"]["BadRequest"]["description"]
        .as_str()
        .unwrap();
    assert!(bad_request.contains("X-Correlation-Id"), "{bad_request}");
}

/// GETs `path` with `token` and returns the status and the JSON body.
async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let response = app.get(path, token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The display names of a page.
fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|w| w["displayName"].as_str().unwrap())
        .collect()
}

/// Follows `nextCursor` from `first` (a path with its query) to the last page; returns the
/// pages' wallet keys in order and how many pages there were.
async fn every_page(app: &TestApp, first: &str, token: &str) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    let mut path = first.to_string();
    loop {
        let (status, page) = get_json(app, &path, Some(token)).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        keys.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["walletExternalKey"].as_str().unwrap().to_string()),
        );
        match &page["nextCursor"] {
            Value::Null => return (keys, pages),
            Value::String(cursor) => {
                assert!(pages < 100, "the cursor moves forward");
                path = format!("{first}&cursor={cursor}");
            }
            other => panic!("nextCursor is a string or null, not {other}"),
        }
    }
}

async fn the_wallet_list_pages_through_every_wallet_once(app: TestApp) {
    let (status, empty) = get_json(&app, "/api/v1/wallets", Some(&app.admin_token)).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty, json!({"items": [], "nextCursor": null}));

    let mut created = Vec::new();
    for i in 0..7 {
        let wallet = app.create_wallet(&format!("Wallet {i}")).await;
        created.push(wallet);
    }
    let keys: Vec<String> = created
        .iter()
        .map(|w| w["walletExternalKey"].as_str().unwrap().to_string())
        .collect();

    // Three pages of 3, 3 and 1, in creation order, each wallet once.
    let (seen, pages) = every_page(&app, "/api/v1/wallets?limit=3", &app.admin_token).await;
    assert_eq!(pages, 3);
    assert_eq!(
        seen, keys,
        "every wallet once, none twice, in the order they were created"
    );

    // A page that ends exactly at the last wallet says so.
    let (_, page) = get_json(&app, "/api/v1/wallets?limit=7", Some(&app.admin_token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    assert!(page["nextCursor"].is_null(), "{page}");

    // The default page holds all of them, each as the wallet route returns it.
    let (_, page) = get_json(&app, "/api/v1/wallets", Some(&app.admin_token)).await;
    assert_eq!(page["items"], Value::Array(created.clone()));
    assert!(page["nextCursor"].is_null());

    // A wallet created between two pages comes after them: paging on finds it, once.
    let (_, first) = get_json(&app, "/api/v1/wallets?limit=4", Some(&app.admin_token)).await;
    let late = app.create_wallet("Late").await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, rest) = get_json(
        &app,
        &format!("/api/v1/wallets?limit=10&cursor={cursor}"),
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(names(&rest), ["Wallet 4", "Wallet 5", "Wallet 6", "Late"]);
    assert_eq!(rest["items"][3], late);
}

async fn the_wallet_list_searches_names_without_case_or_accents(app: TestApp) {
    for name in [
        "Zürich Versicherung",
        "ZURICH Re",
        "Bern AG",
        "Zurich-Nord Logistik",
        "100% Pure_Goods",
        "100 Pure Goods",
        "Crème Brûlée B.V.",
        "Back\\slash",
    ] {
        app.create_wallet(name).await;
    }
    let search = |query: &str| format!("/api/v1/wallets?{query}");
    let cases: &[(&str, &[&str])] = &[
        (
            "name=zurich",
            &["Zürich Versicherung", "ZURICH Re", "Zurich-Nord Logistik"],
        ),
        (
            "name=Z%C3%9CRICH",
            &["Zürich Versicherung", "ZURICH Re", "Zurich-Nord Logistik"],
        ),
        (
            "name=zu%CC%88rich",
            &["Zürich Versicherung", "ZURICH Re", "Zurich-Nord Logistik"],
        ),
        ("name=RICH+RE", &["ZURICH Re"]),
        ("name=brulee", &["Crème Brûlée B.V."]),
        ("name=cr%C3%A8me+BR%C3%9BL", &["Crème Brûlée B.V."]),
        ("name=+bern+", &["Bern AG"]),
        // LIKE wildcards in the search text match only themselves.
        ("name=%25", &["100% Pure_Goods"]),
        ("name=_", &["100% Pure_Goods"]),
        ("name=0%25+p", &["100% Pure_Goods"]),
        ("name=%5C", &["Back\\slash"]),
        ("name=k%5Cs", &["Back\\slash"]),
        ("name=nowhere", &[]),
    ];
    for (query, expected) in cases {
        let (status, page) = get_json(&app, &search(query), Some(&app.admin_token)).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(names(&page), *expected, "{query}");
    }
    // A blank search selects every wallet.
    let (_, page) = get_json(&app, &search("name=+"), Some(&app.admin_token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 8);

    // A search pages like the full list.
    let (_, first) = get_json(&app, &search("name=zurich&limit=2"), Some(&app.admin_token)).await;
    assert_eq!(names(&first), ["Zürich Versicherung", "ZURICH Re"]);
    let cursor = first["nextCursor"].as_str().expect("a second page");
    let (_, second) = get_json(
        &app,
        &search(&format!("name=zurich&limit=2&cursor={cursor}")),
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(names(&second), ["Zurich-Nord Logistik"]);
    assert!(second["nextCursor"].is_null());

    // A wallet stored before the search existed (no folded name) is found once the
    // migrations ran again, as at the next start.
    let legacy = uuid::Uuid::new_v4().to_string();
    app.execute(&format!(
        "INSERT INTO wallet (wallet_external_key, display_name, created_at, created_by) \
         VALUES ('{legacy}', 'Genève Alt', 0, 'legacy')"
    ))
    .await;
    let (_, page) = get_json(&app, &search("name=geneve"), Some(&app.admin_token)).await;
    assert_eq!(names(&page), Vec::<&str>::new(), "not folded yet");
    app.state.db.migrate().await.expect("migrations run again");
    let (_, page) = get_json(&app, &search("name=geneve"), Some(&app.admin_token)).await;
    assert_eq!(names(&page), ["Genève Alt"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM wallet WHERE display_name_folded IS NULL")
            .await,
        0
    );
}

async fn the_wallet_list_shows_a_scoped_token_its_own_wallet_only(app: TestApp) {
    let own = app.create_wallet("Own Wallet").await;
    app.create_wallet("Other Wallet").await;
    let key = own["walletExternalKey"].as_str().unwrap();

    for authority in ["WALLET_IDENTIFIER_CRUD", "WALLET_INTEGRATION_DELIVERY_READ"] {
        let token = app.token("operator", &[authority], Some(key));
        let (status, page) = get_json(&app, "/api/v1/wallets", Some(&token)).await;
        assert_eq!(status, 200, "{authority}: {page}");
        assert_eq!(page, json!({"items": [own], "nextCursor": null}), "{authority}");
        let (_, page) = get_json(&app, "/api/v1/wallets?name=other", Some(&token)).await;
        assert_eq!(
            names(&page),
            Vec::<&str>::new(),
            "{authority}: the search stays in scope"
        );
        let (_, page) = get_json(&app, "/api/v1/wallets?name=own", Some(&token)).await;
        assert_eq!(names(&page), ["Own Wallet"]);
    }

    // Neither GLOBAL_WALLET_CRUD nor an authority on a wallet: 403, as on the other wallet
    // routes; no token: 401.
    let no_wallet = app.token("operator", &["WALLET_IDENTIFIER_CRUD"], None);
    let no_authority = app.token("operator", &[], Some(key));
    for token in [&no_wallet, &no_authority] {
        let (status, body) = get_json(&app, "/api/v1/wallets", Some(token)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "Forbidden");
        let (status, _) = get_json(&app, &format!("/api/v1/wallets/{key}"), Some(token)).await;
        assert_eq!(status, 403, "like reading the wallet itself");
    }
    let (status, body) = get_json(&app, "/api/v1/wallets", None).await;
    assert_eq!(status, 401, "{body}");
}

async fn the_wallet_list_refuses_bad_limits_and_cursors(app: TestApp) {
    app.create_wallet("Only").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=1.5", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=0", "cursor"),
        ("cursor=-3", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=01", "cursor"),
        ("cursor=1234567890123456789", "cursor"),
        ("cursor=99999999999999999999999", "cursor"),
        ("name=a%00b", "name"),
    ] {
        let (status, body) = get_json(&app, &format!("/api/v1/wallets?{query}"), Some(&app.admin_token)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["status"], 400, "{query}: {body}");
        assert_eq!(body["error"], "Bad Request", "{query}: {body}");
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let (status, body) = get_json(&app, "/api/v1/wallets?colour=blue", Some(&app.admin_token)).await;
    assert_eq!(status, 400, "an unknown parameter: {body}");
    assert!(body["message"].as_str().unwrap().contains("colour"), "{body}");

    // The edges of what is accepted.
    for query in ["limit=1", "limit=200", "cursor=1", "cursor=999999999999999999"] {
        let (status, body) = get_json(&app, &format!("/api/v1/wallets?{query}"), Some(&app.admin_token)).await;
        assert_eq!(status, 200, "{query}: {body}");
    }
    let (_, page) = get_json(
        &app,
        "/api/v1/wallets?cursor=999999999999999999",
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(page, json!({"items": [], "nextCursor": null}));

    // The description gives each parameter its type and bounds.
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    let operation = &doc["paths"]["/api/v1/wallets"]["get"];
    let param = |name: &str| -> Value {
        operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("parameter {name} in {operation}"))
            .clone()
    };
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 200);
    assert!(param("limit")["schema"]["type"].to_string().contains("integer"));
    assert!(param("cursor")["schema"]["type"].to_string().contains("string"));
    assert!(param("name")["schema"]["type"].to_string().contains("string"));
    assert!(param("name")["description"].as_str().unwrap().contains("accents"));
    for status in ["200", "400", "401", "403"] {
        assert!(operation["responses"].get(status).is_some(), "{status} in {operation}");
    }
}

both_backends!(
    create_and_read_a_wallet,
    a_created_wallet_has_exactly_one_valid_event,
    requests_without_correlation_id_get_a_fresh_one,
    a_correlation_id_that_breaks_the_rule_is_refused,
    the_wallet_list_pages_through_every_wallet_once,
    the_wallet_list_searches_names_without_case_or_accents,
    the_wallet_list_shows_a_scoped_token_its_own_wallet_only,
    the_wallet_list_refuses_bad_limits_and_cursors
);
