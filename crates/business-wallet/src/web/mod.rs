//! The server-rendered Web UI under `/ui`: sign-in with a bearer token, and Settings ->
//! Integrations (channels, deliveries, history, and the catalog of event types). Every page calls the same domain services as
//! the API, so the authorization is the API's; buttons a user cannot use are hidden, and a
//! forged form post is still refused by the service. Every form carries the session's CSRF
//! token, checked on every POST.
//!
//! Layout: this file has the routes, the headers every page gets and [`HtmlTemplate`];
//! [`session`] the sealed session cookie; [`forms`] the decoding of forms and queries and the
//! channel form; [`pages`] the handlers, their extractors and their error page; [`chart`] the
//! deliveries chart.

pub mod chart;
pub mod forms;
pub mod pages;
pub mod session;
pub mod time;

use askama::Template;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;
use pages::{channels, deliveries, events, history, sign_in};

/// The routes of the Web UI. When the public base URL is `https`, cookies are marked Secure.
pub fn router(state: &AppState) -> Router<AppState> {
    let secure = state
        .settings
        .public_base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let routes = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/integrations/channels") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/integrations/channels") }))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route("/ui/sign-in", get(sign_in::sign_in_form).post(sign_in::sign_in))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route(
            "/ui/integrations",
            get(|| async { Redirect::to("/ui/integrations/channels") }),
        )
        .route(
            "/ui/integrations/channels",
            get(channels::channels).post(channels::create_channel),
        )
        .route("/ui/integrations/channels/new", get(channels::new_channel))
        .route("/ui/integrations/channels/test", post(channels::test_draft))
        .route(
            "/ui/integrations/channels/{key}",
            get(channels::channel).post(channels::replace_channel),
        )
        .route("/ui/integrations/channels/{key}/secret", get(channels::channel_secret))
        .route("/ui/integrations/channels/{key}/toggle", post(channels::toggle_channel))
        .route("/ui/integrations/channels/{key}/resume", post(channels::resume_channel))
        .route(
            "/ui/integrations/channels/{key}/delete",
            get(channels::confirm_delete).post(channels::delete_channel),
        )
        .route("/ui/integrations/channels/{key}/rotate", post(channels::rotate_secret))
        .route("/ui/integrations/channels/{key}/test", post(channels::test_channel))
        .route("/ui/integrations/deliveries", get(deliveries::deliveries))
        .route(
            "/ui/integrations/deliveries/replay",
            get(deliveries::confirm_bulk_replay).post(deliveries::bulk_replay),
        )
        .route(
            "/ui/integrations/deliveries/dismiss",
            get(deliveries::confirm_bulk_dismiss).post(deliveries::bulk_dismiss),
        )
        .route("/ui/integrations/deliveries/{key}", get(deliveries::delivery))
        .route("/ui/integrations/deliveries/{key}/replay", post(deliveries::replay))
        .route("/ui/integrations/deliveries/{key}/dismiss", post(deliveries::dismiss))
        .route("/ui/integrations/history", get(history::history))
        .route("/ui/integrations/events", get(events::events))
        .layer(axum::middleware::map_response(page_headers));
    if secure {
        routes.layer(axum::middleware::map_response(secure_cookies))
    } else {
        routes
    }
}

/// Pages are not framed by other sites, load only this server's script and style, and are not
/// cached (they carry CSRF tokens and the wallet's data).
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let static_value = header::HeaderValue::from_static;
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        static_value("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, static_value("DENY"));
    headers.insert(header::REFERRER_POLICY, static_value("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, static_value("nosniff"));
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(header::CACHE_CONTROL, static_value("no-store"));
    }
    response
}

/// Adds `Secure` to every cookie set, for deployments served over https.
async fn secure_cookies(mut response: Response) -> Response {
    let cookies: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(|v| format!("{v}; Secure")))
        .collect();
    response.headers_mut().remove(header::SET_COOKIE);
    for cookie in cookies {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
        .into_response()
}

/// Renders an askama template as an HTML response (500 when rendering fails).
pub struct HtmlTemplate<T>(pub T);

impl<T: Template> IntoResponse for HtmlTemplate<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(html) => Html(html).into_response(),
            Err(err) => ApiError::internal(anyhow::anyhow!("rendering a page: {err}")).into_response(),
        }
    }
}
