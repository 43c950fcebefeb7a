//! The validation handshake in the Web UI: the form's checkbox, the channel's page and list
//! while its receiver has not answered, and the handshake in a test send's result.

use axum::routing::post as post_route;
use axum::Router;
use business_wallet::dispatch::Dispatcher;

use super::{common::Backend, csrf_of, page, post, sign_in, IDENTIFIER_CREATED};
use crate::both_backend_kinds;

/// A receiver that takes deliveries but knows no `OPTIONS` (axum answers 405); its URL.
async fn receiver_without_handshake() -> String {
    let app = Router::new().route("/hook", post_route(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/hook")
}

async fn an_unverified_channel_says_so_and_a_test_shows_the_handshake(backend: Backend) {
    let app =
        super::common::spawn_app_with(backend, |s| s.integration.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let wallet = app.create_wallet("Handshake UI").await["walletExternalKey"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.token("operator", &["WALLET_INTEGRATION_CHANNEL_CRUD"], Some(&wallet));
    let cookie = sign_in(&app, &token).await;
    let url = receiver_without_handshake().await;
    let (status, form) = page(&app, &cookie, "/ui/integrations/channels/new").await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"validation_handshake\""), "{form}");
    let csrf = csrf_of(&form);
    let fields = [
        ("_csrf", csrf.as_str()),
        ("name", "guarded"),
        ("type", "WEBHOOK"),
        ("enabled", "on"),
        ("event", IDENTIFIER_CREATED),
        ("url", url.as_str()),
        ("validation_handshake", "on"),
    ];

    // A draft's test shows the handshake the receiver did not answer.
    let tested = post(&app, &cookie, "/ui/integrations/channels/test", &fields).await;
    assert_eq!(tested.status(), 200);
    let html = tested.text().await.unwrap();
    assert!(html.contains("data-testid=\"test-handshake\""), "{html}");
    assert!(html.contains("NOT VERIFIED"), "{html}");
    assert!(html.contains("405"), "{html}");

    let saved = post(&app, &cookie, "/ui/integrations/channels", &fields).await;
    assert_eq!(saved.status(), 303);
    let (_, list) = page(&app, &cookie, "/ui/integrations/channels").await;
    assert!(list.contains("data-testid=\"unverified\""), "{list}");
    let channel = app
        .count("SELECT COUNT(*) FROM integration_channel WHERE validation_state = 'UNVERIFIED'")
        .await;
    assert_eq!(channel, 1);

    // One dispatcher round tries the handshake; the page shows why the channel still waits.
    Dispatcher::new(&app.state).run_once().await.unwrap();
    let key: String = match &app.state.db {
        business_wallet::store::Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT channel_external_key FROM integration_channel")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        business_wallet::store::Db::Sqlite { writer, .. } => {
            sqlx::query_scalar("SELECT channel_external_key FROM integration_channel")
                .fetch_one(writer)
                .await
                .unwrap()
        }
    };
    let (status, detail) = page(&app, &cookie, &format!("/ui/integrations/channels/{key}")).await;
    assert_eq!(status, 200, "{detail}");
    assert!(
        detail.contains("Unverified: deliveries wait for the receiver"),
        "{detail}"
    );
    assert!(detail.contains("data-testid=\"unverified-error\""), "{detail}");
    assert!(detail.contains("405"), "{detail}");
    assert!(
        detail.contains("name=\"validation_handshake\" value=\"on\" checked"),
        "the edit form keeps the option: {detail}"
    );
}

both_backend_kinds!(an_unverified_channel_says_so_and_a_test_shows_the_handshake);
