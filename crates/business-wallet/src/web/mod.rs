//! The server-rendered Web UI under `/ui`: sign-in with a bearer token, and Settings ->
//! Integrations (channels, deliveries, history). Every page calls the same domain services as
//! the API, so the authorization is the API's; buttons a user cannot use are hidden, and a
//! forged form post is still refused by the service. Every form carries the session's CSRF
//! token, checked on every POST.

pub mod forms;
pub mod pages;
pub mod session;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{Authority, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::delivery_log::Scope;

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
        .route("/ui/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/ui/sign-out", post(pages::sign_out))
        .route(
            "/ui/integrations",
            get(|| async { Redirect::to("/ui/integrations/channels") }),
        )
        .route(
            "/ui/integrations/channels",
            get(pages::channels).post(pages::create_channel),
        )
        .route("/ui/integrations/channels/new", get(pages::new_channel))
        .route("/ui/integrations/channels/test", post(pages::test_draft))
        .route(
            "/ui/integrations/channels/{key}",
            get(pages::channel).post(pages::replace_channel),
        )
        .route("/ui/integrations/channels/{key}/secret", get(pages::channel_secret))
        .route("/ui/integrations/channels/{key}/toggle", post(pages::toggle_channel))
        .route(
            "/ui/integrations/channels/{key}/delete",
            get(pages::confirm_delete).post(pages::delete_channel),
        )
        .route("/ui/integrations/channels/{key}/rotate", post(pages::rotate_secret))
        .route("/ui/integrations/channels/{key}/test", post(pages::test_channel))
        .route("/ui/integrations/deliveries", get(pages::deliveries))
        .route("/ui/integrations/deliveries/replay", post(pages::bulk_replay))
        .route("/ui/integrations/deliveries/{key}", get(pages::delivery))
        .route("/ui/integrations/deliveries/{key}/replay", post(pages::replay))
        .route("/ui/integrations/deliveries/{key}/dismiss", post(pages::dismiss))
        .route("/ui/integrations/history", get(pages::history))
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

/// What every page of a signed-in user needs: who, which wallet, the CSRF token and what the
/// user may do there.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The token's subject.
    pub sub: String,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// `?wallet=...` for links and form actions of GLOBAL holders; empty otherwise.
    pub q: String,
    /// `&wallet=...`, to append to a query string that already has parameters.
    pub amp: String,
    /// What the pages are about: a wallet key, or "Platform".
    pub wallet_label: String,
    /// The current tab: channels, deliveries or history.
    pub tab: &'static str,
    /// May create, edit, rotate, test and delete channels here.
    pub can_manage_channels: bool,
    /// May replay and dismiss deliveries here.
    pub can_manage_deliveries: bool,
    /// Holds GLOBAL_WALLET_CRUD (may switch wallets).
    pub is_global: bool,
}

/// The wallet (or platform) a request is about.
pub enum Target {
    /// A scope to show.
    Scope(Scope, Box<Ctx>),
    /// A GLOBAL holder who has not chosen a wallet yet.
    Choose(Box<Ctx>),
}

/// Picks the scope from `?wallet=` (GLOBAL holders: a wallet key or `platform`) or from the
/// token's `wallet` claim.
pub fn target(
    principal: &Principal,
    csrf: &str,
    query: &[(String, String)],
    tab: &'static str,
) -> Result<Target, ApiError> {
    let requested = forms::field(query, "wallet").filter(|w| !w.is_empty());
    let scope = match requested {
        Some(w) if w.eq_ignore_ascii_case("platform") => Some(Scope::Platform),
        Some(w) => Some(Scope::Wallet(crate::api::extract::external_key("wallet", w)?)),
        None => principal.wallet.clone().map(Scope::Wallet),
    };
    let (q, amp) = match requested {
        Some(w) => {
            let encoded: String = url::form_urlencoded::byte_serialize(w.as_bytes()).collect();
            (format!("?wallet={encoded}"), format!("&wallet={encoded}"))
        }
        None => (String::new(), String::new()),
    };
    let mut ctx = Ctx {
        sub: principal.sub.clone(),
        csrf: csrf.to_string(),
        q,
        amp,
        wallet_label: String::new(),
        tab,
        can_manage_channels: false,
        can_manage_deliveries: false,
        is_global: principal.is_global(),
    };
    match scope {
        None if principal.is_global() => Ok(Target::Choose(Box::new(ctx))),
        None => Err(ApiError::Forbidden(
            "this token names no wallet; sign in with a token that has a `wallet` claim".into(),
        )),
        Some(scope) => {
            let (label, channels, deliveries) = match &scope {
                Scope::Platform => ("Platform".to_string(), principal.is_global(), principal.is_global()),
                Scope::Wallet(w) => (
                    w.clone(),
                    principal.has(Authority::WalletIntegrationChannelCrud, w),
                    principal.has(Authority::WalletIntegrationDeliveryCrud, w),
                ),
            };
            ctx.wallet_label = label;
            ctx.can_manage_channels = channels;
            ctx.can_manage_deliveries = deliveries;
            Ok(Target::Scope(scope, Box::new(ctx)))
        }
    }
}

/// The page shown for an error: 401 goes back to sign-in, anything else shows the message
/// with the API's status code.
pub fn error_page(ctx: Option<&Ctx>, err: ApiError) -> Response {
    if matches!(err, ApiError::Unauthorized(_)) {
        return Redirect::to("/ui/sign-in").into_response();
    }
    let status = err.status_code();
    let body = err.body();
    let mut response = HtmlTemplate(pages::ErrorPage {
        ctx: ctx.cloned(),
        status: status.as_u16(),
        title: body.error,
        message: body.message,
    })
    .into_response();
    if let ApiError::Internal(cause) = &err {
        tracing::error!(error = %format!("{cause:#}"), "UI request failed");
    }
    *response.status_mut() = status;
    response
}

/// The answer to a form post whose CSRF token is missing or wrong.
pub fn csrf_refused() -> Response {
    let mut response = error_page(
        None,
        ApiError::Forbidden(
            "this form is no longer valid (missing or wrong CSRF token); reload the page and try again".into(),
        ),
    );
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}
