//! The pages and form handlers of the Web UI.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::forms::{self, field, fields, header_pairs, ChannelForm};
use super::session::{self, Session, SessionData};
use super::{csrf_refused, error_page, target, Ctx, HtmlTemplate, Target};
use crate::auth::Authority;
use crate::channels::TestSendReport;
use crate::domain::channel::{self, ChannelView};
use crate::domain::delivery::{self, AttemptOutcome, Delivery, DeliveryState, Transition};
use crate::error::ApiError;
use crate::events;
use crate::state::AppState;
use crate::store::delivery_log::Scope;
use crate::store::{history, rfc3339_ms};

type FormPairs = Form<Vec<(String, String)>>;

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The signed-in context, when known.
    pub ctx: Option<Ctx>,
    /// HTTP status.
    pub status: u16,
    /// Reason phrase.
    pub title: String,
    /// What went wrong.
    pub message: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "choose_wallet.html")]
struct ChooseWalletPage {
    ctx: Ctx,
    action: String,
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    ctx: Ctx,
    channels: Vec<ChannelView>,
}

#[derive(Template)]
#[template(path = "channel_form.html")]
struct ChannelFormPage {
    ctx: Ctx,
    /// `None` for a new channel.
    channel: Option<ChannelView>,
    form: ChannelForm,
    catalog: Vec<&'static str>,
    types: Vec<String>,
}

#[derive(Template)]
#[template(path = "channel_secret.html")]
struct SecretPage {
    ctx: Ctx,
    key: String,
    secret: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDeletePage {
    ctx: Ctx,
    channel: ChannelView,
}

#[derive(Template)]
#[template(path = "test_result.html")]
struct TestResultPage {
    ctx: Ctx,
    channel_name: String,
    report: TestSendReport,
    request_headers: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    ctx: Ctx,
    items: Vec<Delivery>,
    states: Vec<(DeliveryState, bool)>,
    channels: Vec<(String, String, bool)>,
    from: String,
    to: String,
    channel: String,
    next_href: Option<String>,
    notice: Option<String>,
}

struct AttemptPage {
    attempt: i64,
    started_at: String,
    duration_ms: i64,
    outcome: AttemptOutcome,
    method: String,
    url: String,
    request_headers: Vec<(String, String)>,
    request_body: String,
    response_status: Option<i64>,
    response_headers: Vec<(String, String)>,
    response_body: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    ctx: Ctx,
    delivery: Delivery,
    envelope: String,
    attempts: Vec<AttemptPage>,
}

struct HistoryItem {
    created_at: String,
    action: String,
    actor: String,
    details: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPageT {
    ctx: Ctx,
    items: Vec<HistoryItem>,
    next_href: Option<String>,
}

impl ChannelsPage {
    fn destination(&self, c: &ChannelView) -> String {
        let pick = |block: &Option<Value>, key: &str| {
            block
                .as_ref()
                .and_then(|b| b.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        pick(&c.webhook, "url")
            .or_else(|| pick(&c.kafka, "topic"))
            .or_else(|| pick(&c.jms, "destination"))
            .unwrap_or_default()
    }
}

impl ChannelFormPage {
    fn offers(&self, channel_type: &str) -> bool {
        self.types.iter().any(|t| t == channel_type)
    }
}

/// The freshly generated secret on its way to the page that shows it once.
#[derive(Serialize, Deserialize)]
struct FreshSecret {
    channel: String,
    secret: String,
}

// ---------------------------------------------------------------------------------------------
// Sign-in

/// GET /ui/sign-in: the token form.
pub async fn sign_in_form() -> Response {
    let csrf = session::random_token();
    session::with_cookie(
        HtmlTemplate(SignInPage {
            csrf: csrf.clone(),
            error: None,
        })
        .into_response(),
        session::set_cookie(session::SIGN_IN_COOKIE, &csrf, Some(3600)),
    )
}

/// POST /ui/sign-in: validates the token and opens the session.
pub async fn sign_in(State(state): State<AppState>, headers: axum::http::HeaderMap, Form(form): FormPairs) -> Response {
    let expected = session::cookie(&headers, session::SIGN_IN_COOKIE).unwrap_or_default();
    let submitted = field(&form, "_csrf").unwrap_or_default();
    if expected.is_empty() || !session::constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
        return csrf_refused();
    }
    let token = field(&form, "token").unwrap_or_default().trim().to_string();
    match state.auth.authenticate(&token).await {
        Ok(_) => {
            let data = SessionData {
                token,
                csrf: session::random_token(),
            };
            let sealed = session::seal(&state.secrets, &data);
            let response = session::with_cookie(
                Redirect::to("/ui/integrations/channels").into_response(),
                session::set_cookie(session::SESSION_COOKIE, &sealed, None),
            );
            session::with_cookie(response, session::set_cookie(session::SIGN_IN_COOKIE, "", Some(0)))
        }
        Err(err) => {
            let mut response = HtmlTemplate(SignInPage {
                csrf: expected.to_string(),
                error: Some(err.to_string()),
            })
            .into_response();
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
    }
}

/// POST /ui/sign-out: ends the session.
pub async fn sign_out(session: Session, Form(form): FormPairs) -> Response {
    if !session.csrf_matches(field(&form, "_csrf")) {
        return csrf_refused();
    }
    session::with_cookie(
        Redirect::to("/ui/sign-in").into_response(),
        session::set_cookie(session::SESSION_COOKIE, "", Some(0)),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Resolves the scope of a page; a GLOBAL holder without a choice gets the chooser.
macro_rules! scope_or_page {
    ($session:expr, $query:expr, $tab:expr, $action:expr) => {{
        let query = forms::pairs($query.as_deref());
        match target(&$session.principal, &$session.csrf, &query, $tab) {
            Ok(Target::Scope(scope, ctx)) => (scope, *ctx, query),
            Ok(Target::Choose(ctx)) => {
                return HtmlTemplate(ChooseWalletPage {
                    ctx: *ctx,
                    action: $action.to_string(),
                })
                .into_response()
            }
            Err(err) => return error_page(None, err),
        }
    }};
}

/// For form posts: the CSRF check first, then the scope.
macro_rules! post_scope {
    ($session:expr, $query:expr, $form:expr, $tab:expr) => {{
        if !$session.csrf_matches(field(&$form, "_csrf")) {
            return csrf_refused();
        }
        let query = forms::pairs($query.as_deref());
        match target(&$session.principal, &$session.csrf, &query, $tab) {
            Ok(Target::Scope(scope, ctx)) => (scope, *ctx),
            Ok(Target::Choose(_)) => return error_page(None, ApiError::bad_request("choose a wallet first")),
            Err(err) => return error_page(None, err),
        }
    }};
}

fn catalog() -> Vec<&'static str> {
    events::CATALOG.iter().map(|e| e.type_name).collect()
}

fn channel_types(state: &AppState) -> Vec<String> {
    ["WEBHOOK", "KAFKA", "JMS"]
        .into_iter()
        .filter(|t| state.channels.get(t).is_some())
        .map(str::to_string)
        .collect()
}

fn see_other(location: String) -> Response {
    Redirect::to(&location).into_response()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Sends the new secret to its show-once page.
fn show_secret_once(state: &AppState, ctx: &Ctx, view: &ChannelView) -> Response {
    let key = &view.channel_external_key;
    let sealed = session::seal(
        &state.secrets,
        &FreshSecret {
            channel: key.clone(),
            secret: view.hmac_secret.clone().unwrap_or_default(),
        },
    );
    session::with_cookie(
        see_other(format!("/ui/integrations/channels/{key}/secret{}", ctx.q)),
        session::set_cookie(session::SECRET_COOKIE, &sealed, Some(300)),
    )
}

// ---------------------------------------------------------------------------------------------
// Channels

/// GET the channels table.
pub async fn channels(State(state): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let (scope, ctx, _) = scope_or_page!(session, raw, "channels", "/ui/integrations/channels");
    match channel::list(&state, &session.principal, &scope).await {
        Ok(channels) => HtmlTemplate(ChannelsPage { ctx, channels }).into_response(),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// GET the empty channel form.
pub async fn new_channel(State(state): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let (_scope, ctx, _) = scope_or_page!(session, raw, "channels", "/ui/integrations/channels/new");
    if !ctx.can_manage_channels {
        return error_page(
            Some(&ctx),
            ApiError::Forbidden("you may not create channels here".into()),
        );
    }
    HtmlTemplate(ChannelFormPage {
        ctx,
        channel: None,
        form: ChannelForm::new_webhook(),
        catalog: catalog(),
        types: channel_types(&state),
    })
    .into_response()
}

fn form_with_error(
    state: &AppState,
    ctx: Ctx,
    channel: Option<ChannelView>,
    mut form: ChannelForm,
    err: ApiError,
) -> Response {
    if matches!(
        err,
        ApiError::Unauthorized(_) | ApiError::Forbidden(_) | ApiError::Internal(_) | ApiError::Unavailable(_)
    ) {
        return error_page(Some(&ctx), err);
    }
    let status = err.status_code();
    form.set_error(&err);
    let mut response = HtmlTemplate(ChannelFormPage {
        ctx,
        channel,
        form,
        catalog: catalog(),
        types: channel_types(state),
    })
    .into_response();
    *response.status_mut() = status;
    response
}

/// POST a new channel; on success its secret is shown once.
pub async fn create_channel(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    let values = ChannelForm::from_pairs(&form);
    let body = match values.to_body() {
        Ok(body) => body,
        Err(err) => return form_with_error(&state, ctx, None, values, err),
    };
    match channel::create(&state, &session.principal, &scope, body).await {
        Ok(view) => show_secret_once(&state, &ctx, &view),
        Err(err) => form_with_error(&state, ctx, None, values, err),
    }
}

/// GET the page that shows a fresh secret once.
pub async fn channel_secret(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let (_scope, ctx, _) = scope_or_page!(session, raw, "channels", "/ui/integrations/channels");
    let secret = session::cookie(&headers, session::SECRET_COOKIE)
        .and_then(|c| session::open::<FreshSecret>(&state.secrets, c))
        .filter(|s| s.channel == key && ctx.can_manage_channels)
        .map(|s| s.secret);
    let response = HtmlTemplate(SecretPage { ctx, key, secret }).into_response();
    // Shown once: the cookie is gone after this page.
    let mut response = session::with_cookie(response, session::set_cookie(session::SECRET_COOKIE, "", Some(0)));
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        "no-store".parse().expect("valid header"),
    );
    response
}

/// GET one channel: the edit form (read-only without CRUD).
pub async fn channel(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (scope, ctx, _) = scope_or_page!(session, raw, "channels", "/ui/integrations/channels");
    match channel::get(&state, &session.principal, &scope, &key).await {
        Ok(view) => HtmlTemplate(ChannelFormPage {
            ctx,
            form: ChannelForm::from_view(&view),
            channel: Some(view),
            catalog: catalog(),
            types: channel_types(&state),
        })
        .into_response(),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST the edit form (full replace).
pub async fn replace_channel(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    let current = match channel::get(&state, &session.principal, &scope, &key).await {
        Ok(view) => view,
        Err(err) => return error_page(Some(&ctx), err),
    };
    let values = ChannelForm::from_pairs(&form);
    let body = match values.to_body() {
        Ok(body) => body,
        Err(err) => return form_with_error(&state, ctx, Some(current), values, err),
    };
    match channel::replace(&state, &session.principal, &scope, &key, body).await {
        Ok(_) => see_other(format!("/ui/integrations/channels{}", ctx.q)),
        Err(err) => form_with_error(&state, ctx, Some(current), values, err),
    }
}

/// POST enable/disable.
pub async fn toggle_channel(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    let result = async {
        let view = channel::get(&state, &session.principal, &scope, &key).await?;
        let mut values = ChannelForm::from_view(&view);
        values.enabled = !values.enabled;
        channel::replace(&state, &session.principal, &scope, &key, values.to_body()?).await
    }
    .await;
    match result {
        Ok(_) => see_other(format!("/ui/integrations/channels{}", ctx.q)),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// GET the delete confirmation.
pub async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (scope, ctx, _) = scope_or_page!(session, raw, "channels", "/ui/integrations/channels");
    if !ctx.can_manage_channels {
        return error_page(
            Some(&ctx),
            ApiError::Forbidden("you may not delete channels here".into()),
        );
    }
    match channel::get(&state, &session.principal, &scope, &key).await {
        Ok(channel) => HtmlTemplate(ConfirmDeletePage { ctx, channel }).into_response(),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST the confirmed delete.
pub async fn delete_channel(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    match channel::delete(&state, &session.principal, &scope, &key).await {
        Ok(()) => see_other(format!("/ui/integrations/channels{}", ctx.q)),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST rotate the signing secret; the new one is shown once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    match channel::rotate_secret(&state, &session.principal, &scope, &key).await {
        Ok(view) => show_secret_once(&state, &ctx, &view),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST send a test event and show status, timing and error.
pub async fn test_channel(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    let event_type = field(&form, "event_type").filter(|e| !e.is_empty());
    let result = async {
        let report = channel::test_saved(&state, &session.principal, &scope, &key, event_type).await?;
        let view = channel::get(&state, &session.principal, &scope, &key).await?;
        Ok::<_, ApiError>((report, view))
    }
    .await;
    match result {
        Ok((report, view)) => {
            let request_headers = report.request.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
            HtmlTemplate(TestResultPage {
                ctx,
                channel_name: view.name,
                report,
                request_headers,
            })
            .into_response()
        }
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST the new-channel form to send one test event through it without saving it.
pub async fn test_draft(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "channels");
    let values = ChannelForm::from_pairs(&form);
    let body = match values.to_body() {
        Ok(body) => body,
        Err(err) => return form_with_error(&state, ctx, None, values, err),
    };
    match channel::test_draft(&state, &session.principal, &scope, body, None).await {
        Ok(report) => {
            let request_headers = report.request.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
            HtmlTemplate(TestResultPage {
                ctx,
                channel_name: format!("{} (not saved)", values.name),
                report,
                request_headers,
            })
            .into_response()
        }
        Err(err) => form_with_error(&state, ctx, None, values, err),
    }
}

// ---------------------------------------------------------------------------------------------
// Deliveries

/// The log query of the API built from the page's filters (and a cursor).
fn log_query(query: &[(String, String)], with_cursor: bool) -> Result<(String, Vec<String>), ApiError> {
    let mut api: Vec<(String, String)> = Vec::new();
    let states: Vec<String> = fields(query, "state").into_iter().map(str::to_string).collect();
    for s in &states {
        api.push(("state".into(), s.clone()));
    }
    if let Some(c) = field(query, "channel").filter(|c| !c.is_empty()) {
        api.push(("channel".into(), c.to_string()));
    }
    for bound in ["from", "to"] {
        if let Some(t) = forms::local_to_rfc3339(bound, field(query, bound).unwrap_or_default())? {
            api.push((bound.into(), t));
        }
    }
    if with_cursor {
        if let Some(c) = field(query, "cursor").filter(|c| !c.is_empty()) {
            api.push(("cursor".into(), c.to_string()));
        }
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(api.iter())
        .finish();
    Ok((encoded, states))
}

/// The page's own filter parameters, for links (next page) and redirects.
fn page_filters(query: &[(String, String)]) -> String {
    let keep: Vec<&(String, String)> = query
        .iter()
        .filter(|(k, v)| matches!(k.as_str(), "state" | "channel" | "from" | "to" | "wallet") && !v.is_empty())
        .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(keep)
        .finish()
}

/// GET the filtered, paginated deliveries log.
pub async fn deliveries(State(state): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let (scope, ctx, query) = scope_or_page!(session, raw, "deliveries", "/ui/integrations/deliveries");
    let result = async {
        let (api_query, checked) = log_query(&query, true)?;
        let parsed = delivery::parse_log_query(Some(&api_query))?;
        let page = delivery::list(&state, &session.principal, &scope, &parsed).await?;
        Ok::<_, ApiError>((page, checked, parsed))
    }
    .await;
    let (page, checked, parsed) = match result {
        Ok(found) => found,
        Err(err) => return error_page(Some(&ctx), err),
    };
    // The channel filter lists the channels when the user may see them.
    let selected = field(&query, "channel").unwrap_or_default().to_string();
    let channels = channel::list(&state, &session.principal, &scope)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let chosen = c.channel_external_key == selected;
            (c.channel_external_key, c.name, chosen)
        })
        .collect();
    let states = DeliveryState::ALL
        .iter()
        .map(|&s| {
            let on = if checked.is_empty() {
                parsed.filter.states.contains(&s)
            } else {
                checked.iter().any(|x| x.eq_ignore_ascii_case(s.as_str()))
            };
            (s, on)
        })
        .collect();
    let next_href = page.next_cursor.as_ref().map(|cursor| {
        let filters = page_filters(&query);
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/ui/integrations/deliveries?{filters}{sep}cursor={cursor}")
    });
    let notice = field(&query, "replayed")
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| format!("Failed deliveries queued again: {n}."));
    HtmlTemplate(DeliveriesPage {
        ctx,
        items: page.items,
        states,
        channels,
        from: field(&query, "from").unwrap_or_default().to_string(),
        to: field(&query, "to").unwrap_or_default().to_string(),
        channel: selected,
        next_href,
        notice,
    })
    .into_response()
}

/// GET one delivery with its envelope and every attempt.
pub async fn delivery(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (scope, ctx, _) = scope_or_page!(session, raw, "deliveries", "/ui/integrations/deliveries");
    let detail = match delivery::detail(&state, &session.principal, &scope, &key).await {
        Ok(detail) => detail,
        Err(err) => return error_page(Some(&ctx), err),
    };
    let envelope = detail
        .event
        .as_ref()
        .map(|e| pretty(&serde_json::to_value(e).unwrap_or_default()))
        .unwrap_or_default();
    let attempts = detail
        .attempts
        .into_iter()
        .map(|a| {
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
            AttemptPage {
                attempt: a.attempt,
                started_at: a.started_at,
                duration_ms: a.duration_ms,
                outcome: a.outcome,
                method: text(&a.request["method"]),
                url: text(&a.request["url"]),
                request_headers: header_pairs(&a.request["headers"]),
                request_body: text(&a.request["body"]),
                response_status: a.response.as_ref().and_then(|r| r.status),
                response_headers: a
                    .response
                    .as_ref()
                    .map(|r| header_pairs(&r.headers))
                    .unwrap_or_default(),
                response_body: a.response.and_then(|r| r.body),
                error: a.error,
            }
        })
        .collect();
    HtmlTemplate(DeliveryPage {
        ctx,
        delivery: detail.delivery,
        envelope,
        attempts,
    })
    .into_response()
}

async fn transition(
    state: AppState,
    session: Session,
    key: String,
    raw: Option<String>,
    form: Vec<(String, String)>,
    which: Transition,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "deliveries");
    match delivery::transition(&state, &session.principal, &scope, &key, which).await {
        Ok(_) => see_other(format!("/ui/integrations/deliveries/{key}{}", ctx.q)),
        Err(err) => error_page(Some(&ctx), err),
    }
}

/// POST replay a FAILED delivery.
pub async fn replay(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    transition(state, session, key, raw, form, Transition::Replay).await
}

/// POST dismiss a FAILED delivery.
pub async fn dismiss(
    State(state): State<AppState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    transition(state, session, key, raw, form, Transition::Dismiss).await
}

/// POST replay every FAILED delivery matching the filters.
pub async fn bulk_replay(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
    Form(form): FormPairs,
) -> Response {
    let (scope, ctx) = post_scope!(session, raw, form, "deliveries");
    let result = async {
        // The filter of the page (channel and time range); only FAILED deliveries are replayed.
        let (api_query, _) = log_query(&form, false)?;
        let parsed = delivery::parse_log_query(Some(&api_query))?;
        delivery::replay_matching(&state, &session.principal, &scope, &parsed.filter).await
    }
    .await;
    match result {
        Ok(done) => {
            let filters = page_filters(&form);
            let wallet = if filters.contains("wallet=") {
                String::new()
            } else {
                ctx.amp.clone()
            };
            see_other(format!(
                "/ui/integrations/deliveries?replayed={}&{filters}{wallet}",
                done.replayed
            ))
        }
        Err(err) => error_page(Some(&ctx), err),
    }
}

// ---------------------------------------------------------------------------------------------
// History

/// GET the INTEGRATION audit entries.
pub async fn history(State(state): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let (scope, ctx, query) = scope_or_page!(session, raw, "history", "/ui/integrations/history");
    let principal = &session.principal;
    let allowed = match &scope {
        Scope::Platform => principal.is_global(),
        Scope::Wallet(w) => {
            principal.has(Authority::WalletIntegrationChannelRead, w)
                || principal.has(Authority::WalletIntegrationDeliveryRead, w)
        }
    };
    if !allowed {
        return error_page(
            Some(&ctx),
            ApiError::Forbidden("this requires an integration authority on this wallet".into()),
        );
    }
    let wallet = match &scope {
        Scope::Wallet(w) => Some(w.as_str()),
        Scope::Platform => None,
    };
    let cursor = field(&query, "cursor").and_then(|c| c.parse::<i64>().ok());
    const LIMIT: i64 = 50;
    let mut rows = match history::list(&state.db, wallet, Some("INTEGRATION"), cursor, LIMIT + 1).await {
        Ok(rows) => rows,
        Err(err) => return error_page(Some(&ctx), err.into()),
    };
    let more = rows.len() as i64 > LIMIT;
    rows.truncate(LIMIT as usize);
    let next_href = more
        .then(|| {
            rows.last()
                .map(|r| format!("/ui/integrations/history?cursor={}{}", r.id, ctx.amp))
        })
        .flatten();
    let items = rows
        .into_iter()
        .map(|r| HistoryItem {
            created_at: rfc3339_ms(r.created_at),
            action: r.action,
            actor: r.actor,
            details: r.details.unwrap_or_default(),
        })
        .collect();
    HtmlTemplate(HistoryPageT { ctx, items, next_href }).into_response()
}
