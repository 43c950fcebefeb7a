//! Every channel and delivery route, called with no token, READ authorities, CRUD
//! authorities, a token for another wallet, and GLOBAL_WALLET_CRUD: each gets the expected
//! status, and no answer to a READ holder contains a secret.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::common::{spawn_app_with, Backend};
use crate::receiver;

const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Need {
    ChannelRead,
    ChannelCrud,
    DeliveryRead,
    DeliveryCrud,
    AnyRead,
    Global,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prepare {
    Nothing,
    FreshChannel,
    FailedDelivery,
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    need: Need,
    success: u16,
    prepare: Prepare,
}

struct Caller {
    name: &'static str,
    token: Option<String>,
    grants: &'static [Need],
}

async fn every_route_checks_its_authority(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.integration.allowed_networks = vec!["127.0.0.0/8".into()];
        s.server.dispatcher_enabled = false;
    })
    .await;
    let hook = receiver(200).await;
    let a = app.create_wallet("A").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.create_wallet("B").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let channel_body = |name: &str| {
        json!({
            "name": name, "type": "WEBHOOK", "eventTypeFilters": [IDENTIFIER_CREATED],
            "webhook": {"url": hook.url, "apiKey": {"headerName": "X-Api-Key", "value": "api-key-value-123"},
                        "oauth2": {"tokenUrl": "https://idp.example/token", "clientId": "c", "clientSecret": "client-secret-456"}}
        })
    };
    let channels = format!("/api/wallets/{a}/integration-channels");
    let created: Value = app
        .post(&channels, Some(&app.admin_token), &channel_body("main"))
        .await
        .json()
        .await
        .unwrap();
    let hmac_secret = created["hmacSecret"].as_str().unwrap().to_string();
    let channel = created["channelExternalKey"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/v1/wallets/{a}/identifiers"),
        Some(&app.admin_token),
        &json!({"identifierType": "JWK", "displayName": "k"}),
    )
    .await;
    let deliveries = format!("/api/wallets/{a}/integration-deliveries");
    let page: Value = app.get(&deliveries, Some(&app.admin_token)).await.json().await.unwrap();
    let delivery = page["items"][0]["deliveryExternalKey"].as_str().unwrap().to_string();
    let mut draft = channel_body("draft");
    draft["webhook"].as_object_mut().unwrap().remove("oauth2");
    let mut test_channel = channel_body("main");
    test_channel["webhook"].as_object_mut().unwrap().remove("oauth2");

    let route = |method: Method, path: String, body: Option<Value>, need: Need, success: u16, prepare: Prepare| Route {
        method,
        path,
        body,
        need,
        success,
        prepare,
    };
    let routes = vec![
        route(
            Method::GET,
            channels.clone(),
            None,
            Need::ChannelRead,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            channels.clone(),
            Some(channel_body("{unique}")),
            Need::ChannelCrud,
            201,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            format!("{channels}/test"),
            Some(draft.clone()),
            Need::ChannelCrud,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::GET,
            format!("{channels}/{channel}"),
            None,
            Need::ChannelRead,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::PUT,
            format!("{channels}/{channel}"),
            Some(test_channel.clone()),
            Need::ChannelCrud,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            format!("{channels}/{channel}/rotate-secret"),
            None,
            Need::ChannelCrud,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            format!("{channels}/{channel}/test"),
            None,
            Need::ChannelCrud,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::DELETE,
            format!("{channels}/{{fresh}}"),
            None,
            Need::ChannelCrud,
            204,
            Prepare::FreshChannel,
        ),
        route(
            Method::GET,
            deliveries.clone(),
            None,
            Need::DeliveryRead,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::GET,
            format!("{deliveries}/{delivery}"),
            None,
            Need::DeliveryRead,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            format!("{deliveries}/{delivery}/replay"),
            None,
            Need::DeliveryCrud,
            200,
            Prepare::FailedDelivery,
        ),
        route(
            Method::POST,
            format!("{deliveries}/{delivery}/dismiss"),
            None,
            Need::DeliveryCrud,
            200,
            Prepare::FailedDelivery,
        ),
        route(
            Method::POST,
            format!("{deliveries}/replay"),
            None,
            Need::DeliveryCrud,
            200,
            Prepare::FailedDelivery,
        ),
        route(
            Method::GET,
            format!("/api/v1/wallets/{a}/history?event=INTEGRATION"),
            None,
            Need::AnyRead,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::GET,
            "/api/integration-channels".into(),
            None,
            Need::Global,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::POST,
            "/api/integration-channels".into(),
            Some(channel_body("{unique}")),
            Need::Global,
            201,
            Prepare::Nothing,
        ),
        route(
            Method::GET,
            "/api/integration-deliveries".into(),
            None,
            Need::Global,
            200,
            Prepare::Nothing,
        ),
        route(
            Method::GET,
            "/api/v1/history".into(),
            None,
            Need::Global,
            200,
            Prepare::Nothing,
        ),
    ];

    use Need::*;
    let callers = [
        Caller {
            name: "no token",
            token: None,
            grants: &[],
        },
        Caller {
            name: "READ",
            token: Some(app.token(
                "reader",
                &["WALLET_INTEGRATION_CHANNEL_READ", "WALLET_INTEGRATION_DELIVERY_READ"],
                Some(&a),
            )),
            grants: &[ChannelRead, DeliveryRead, AnyRead],
        },
        Caller {
            name: "channel CRUD only",
            token: Some(app.token("channel-admin", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&a))),
            grants: &[ChannelRead, ChannelCrud, AnyRead],
        },
        Caller {
            name: "CRUD",
            token: Some(app.token(
                "operator",
                &["WALLET_INTEGRATION_CHANNEL_CRUD", "WALLET_INTEGRATION_DELIVERY_CRUD"],
                Some(&a),
            )),
            grants: &[ChannelRead, ChannelCrud, DeliveryRead, DeliveryCrud, AnyRead],
        },
        Caller {
            name: "CRUD for another wallet",
            token: Some(app.token(
                "other",
                &["WALLET_INTEGRATION_CHANNEL_CRUD", "WALLET_INTEGRATION_DELIVERY_CRUD"],
                Some(&b),
            )),
            grants: &[],
        },
        Caller {
            name: "GLOBAL_WALLET_CRUD",
            token: Some(app.token("root", &["GLOBAL_WALLET_CRUD"], None)),
            grants: &[ChannelRead, ChannelCrud, DeliveryRead, DeliveryCrud, AnyRead, Global],
        },
    ];

    let mut unique = 0;
    for caller in &callers {
        for r in &routes {
            let allowed = caller.grants.contains(&r.need);
            let mut path = r.path.clone();
            if allowed {
                match r.prepare {
                    Prepare::Nothing => {}
                    Prepare::FreshChannel => {
                        unique += 1;
                        let fresh: Value = app
                            .post(
                                &channels,
                                Some(&app.admin_token),
                                &channel_body(&format!("fresh-{unique}")),
                            )
                            .await
                            .json()
                            .await
                            .unwrap();
                        path = path.replace("{fresh}", fresh["channelExternalKey"].as_str().unwrap());
                    }
                    Prepare::FailedDelivery => app.execute("UPDATE integration_delivery SET state = 'FAILED'").await,
                }
            } else {
                path = path.replace("{fresh}", &channel);
            }
            let mut request = app.client.request(r.method.clone(), app.url(&path));
            if let Some(token) = &caller.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &r.body {
                unique += 1;
                let text = body.to_string().replace("{unique}", &format!("u{unique}"));
                request = request.header("Content-Type", "application/json").body(text);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let expected = match (&caller.token, allowed) {
                (None, _) => 401,
                (Some(_), false) => 403,
                (Some(_), true) => r.success,
            };
            assert_eq!(status, expected, "{} {} {} -> {text}", caller.name, r.method, path);
            if !text.is_empty() {
                let json: Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{} {path}: not JSON: {text}", caller.name));
                if status >= 400 {
                    assert_eq!(json["status"], status);
                }
            }
            if caller.name == "READ" {
                for secret in [hmac_secret.as_str(), "api-key-value-123", "client-secret-456", "whsec_"] {
                    assert!(
                        !text.contains(secret),
                        "READ holder saw a secret at {} {path}: {text}",
                        r.method
                    );
                }
            }
        }
    }
}

async fn channel_and_delivery_routes_check_authorities(app: crate::common::TestApp) {
    every_route_checks_its_authority(app.backend).await;
}

both_backends!(channel_and_delivery_routes_check_authorities);
