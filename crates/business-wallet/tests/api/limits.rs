//! Channel limits through the API: stored and shown as set (the burst filled in), replaced and
//! removed with the channel, and bad values refused with a 400 naming the field, nothing stored.

use serde_json::{json, Value};

use crate::both_backends;
use crate::common::TestApp;

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

fn body(name: &str, limits: Value) -> Value {
    json!({
        "name": name, "type": "WEBHOOK", "limits": limits,
        "eventTypeFilters": [IDENTIFIER_CREATED],
        "webhook": {"url": "https://receiver.example/hook"}
    })
}

async fn limits_are_stored_shown_replaced_and_checked(app: TestApp) {
    let post = |b: Value| {
        let app = &app;
        async move {
            app.call(reqwest::Method::POST, "/api/integration-channels", Some(&b))
                .await
        }
    };
    let (status, created) = post(body("rated", json!({"eventsPerSecond": 50, "maxInFlight": 4}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["limits"],
        json!({"eventsPerSecond": 50.0, "burst": 5, "maxInFlight": 4})
    );
    assert_eq!(created["throttledUntil"], Value::Null);
    let key = created["channelExternalKey"].as_str().unwrap().to_string();
    let path = format!("/api/integration-channels/{key}");

    let (status, replaced) = app
        .call(
            reqwest::Method::PUT,
            &path,
            Some(&body("rated", json!({"eventsPerSecond": 0.5, "burst": 3}))),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["limits"], json!({"eventsPerSecond": 0.5, "burst": 3}));
    for none in [Value::Null, json!({}), json!({"burst": 4})] {
        let (status, replaced) = app.call(reqwest::Method::PUT, &path, Some(&body("rated", none))).await;
        assert_eq!(status, 200, "{replaced}");
        assert_eq!(replaced["limits"], Value::Null, "{replaced}");
    }

    for (limits, field) in [
        (json!({"eventsPerSecond": 0}), "limits.eventsPerSecond"),
        (json!({"eventsPerSecond": -3}), "limits.eventsPerSecond"),
        (json!({"eventsPerSecond": 20000}), "limits.eventsPerSecond"),
        (json!({"eventsPerSecond": 5, "burst": 0}), "limits.burst"),
        (json!({"maxInFlight": 0}), "limits.maxInFlight"),
        (json!({"maxInFlight": 5000}), "limits.maxInFlight"),
    ] {
        let (status, answer) = post(body("refused", limits.clone())).await;
        assert_eq!(status, 400, "{limits}: {answer}");
        assert_eq!(answer["details"]["field"], field, "{limits}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{answer}");
    }
    for limits in [json!({"eventsPerSecond": "fast"}), json!({"rate": 3}), json!(7)] {
        let (status, answer) = post(body("refused", limits.clone())).await;
        assert_eq!(status, 400, "{limits}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (_, list) = app.call(reqwest::Method::GET, "/api/integration-channels", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing refused was stored: {list}");
}

both_backends!(limits_are_stored_shown_replaced_and_checked);
