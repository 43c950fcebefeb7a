//! The channel pages: the table, the new and edit forms, the show-once secret, enable/disable,
//! delete, secret rotation and test sends.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{href, see_other, ChannelsTab, Ctx, Done, InPage, NewChannelTab, Page, PageError, Post};
use crate::channels::{ChannelKind, TestSendReport};
use crate::domain::channel::health::{self, ChannelHealth};
use crate::domain::channel::{self, ChannelBody, ChannelView};
use crate::domain::{ChannelKey, DomainError};
use crate::error::ApiError;
use crate::events;
use crate::state::AppState;
use crate::web::chart::{self, Chart};
use crate::web::forms::{field, ChannelForm};
use crate::web::session;
use crate::web::HtmlTemplate;

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    ctx: Ctx,
    /// Each channel with its destination and its health.
    channels: Vec<(ChannelView, String, Option<ChannelHealth>)>,
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
    /// An existing channel's health (not on the form shown again with an error).
    health: Option<ChannelHealth>,
    /// An existing channel's deliveries chart, for a user who may read its deliveries.
    chart: Option<Chart>,
    /// The result of a test send of the unsaved form, shown above it.
    test: Option<TestView>,
    /// A saved pull channel's endpoint and cursor state.
    pull: Option<crate::domain::pull::PullStatus>,
}

/// A test send's result as the pages show it.
struct TestView {
    channel_name: String,
    report: TestSendReport,
    request_headers: Vec<(String, String)>,
}

impl TestView {
    fn new(channel_name: String, report: TestSendReport) -> TestView {
        let request_headers = report.request.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
        TestView {
            channel_name,
            report,
            request_headers,
        }
    }
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
    test: TestView,
}

/// The freshly generated secret on its way to the page that shows it once.
#[derive(Serialize, Deserialize)]
struct FreshSecret {
    channel: String,
    secret: String,
}

fn catalog() -> Vec<&'static str> {
    events::CATALOG.iter().map(|e| e.type_name).collect()
}

fn channel_types(state: &AppState) -> Vec<String> {
    state.channels.offered().iter().map(ToString::to_string).collect()
}

/// The channels table of the page's scope, with the notice of what was just done.
fn channels_href(ctx: &Ctx, done: Done) -> String {
    href(
        "/ui/integrations/channels",
        ctx.wallet_param().into_iter().chain([("done", done.as_str())]),
    )
}

/// Sends the new secret to its show-once page.
fn show_secret_once(state: &AppState, ctx: &Ctx, view: &ChannelView) -> Response {
    let key = &view.channel_external_key;
    let sealed = session::seal(
        &state.secrets,
        &FreshSecret {
            channel: key.to_string(),
            secret: view.hmac_secret.clone().unwrap_or_default(),
        },
    );
    session::with_cookie(
        see_other(href(
            &format!("/ui/integrations/channels/{key}/secret"),
            ctx.wallet_param(),
        )),
        session::set_cookie(session::SECRET_COOKIE, &sealed, Some(300)),
    )
}

/// GET the channels table.
///
/// # Errors
/// The error page when the channels cannot be listed.
pub async fn channels(
    State(state): State<AppState>,
    Page {
        principal, scope, ctx, ..
    }: Page<ChannelsTab>,
) -> Result<Response, PageError> {
    let mut health = health::of_channels(&state, &principal, &scope).await.in_page(&ctx)?;
    let channels = channel::list(&state, &principal, &scope)
        .await
        .in_page(&ctx)?
        .into_iter()
        .map(|c| {
            let destination = channel::destination(&state, &c);
            let health = health.remove(&c.channel_external_key);
            (c, destination, health)
        })
        .collect();
    Ok(HtmlTemplate(ChannelsPage { ctx, channels }).into_response())
}

/// GET the empty channel form.
///
/// # Errors
/// 403 for a user who may not create channels here.
pub async fn new_channel(
    State(state): State<AppState>,
    Page { ctx, .. }: Page<NewChannelTab>,
) -> Result<Response, PageError> {
    if !ctx.can_manage_channels {
        return Err(PageError::new(
            Some(&ctx),
            ApiError::Forbidden("you may not create channels here".into()),
        ));
    }
    Ok(HtmlTemplate(ChannelFormPage {
        ctx,
        channel: None,
        form: ChannelForm::new_webhook(),
        catalog: catalog(),
        types: channel_types(&state),
        test: None,
        health: None,
        pull: None,
        chart: None,
    })
    .into_response())
}

/// The form again, with every error next to its field and the first error's status; errors
/// that are not about the form (authorization, an outage) get the error page.
fn form_with_errors(
    state: &AppState,
    ctx: Ctx,
    channel: Option<ChannelView>,
    mut form: ChannelForm,
    errors: Vec<ApiError>,
) -> Result<Response, PageError> {
    let not_about_the_form = |err: &ApiError| {
        matches!(
            err,
            ApiError::Unauthorized(_) | ApiError::Forbidden(_) | ApiError::Internal(_) | ApiError::Unavailable(_)
        )
    };
    let mut errors = errors;
    if let Some(i) = errors.iter().position(not_about_the_form) {
        return Err(PageError::new(Some(&ctx), errors.swap_remove(i)));
    }
    let status = errors
        .first()
        .map_or(axum::http::StatusCode::BAD_REQUEST, ApiError::status_code);
    form.set_errors(&errors);
    let mut response = HtmlTemplate(ChannelFormPage {
        ctx,
        channel,
        form,
        catalog: catalog(),
        types: channel_types(state),
        test: None,
        health: None,
        pull: None,
        chart: None,
    })
    .into_response();
    *response.status_mut() = status;
    Ok(response)
}

/// The body of the posted form, or the form again with every error: the form's own (a
/// timeout that is no number, say) together with the service's checks of the rest.
async fn body_of_form(
    state: &AppState,
    post: &Post<ChannelsTab>,
    current: Option<ChannelView>,
    values: &ChannelForm,
) -> Result<Result<(ChannelBody, Option<ChannelView>), Response>, PageError> {
    let (body, own) = values.body_and_errors();
    if own.is_empty() {
        return Ok(Ok((body, current)));
    }
    let service = channel::check(state, &post.principal, &post.scope, body).await.err();
    let errors = own.into_iter().chain(service.map(ApiError::from)).collect();
    form_with_errors(state, post.ctx.clone(), current, values.clone(), errors).map(Err)
}

/// POST a new channel; on success its secret is shown once.
///
/// # Errors
/// The error page for errors that are not about the form.
pub async fn create_channel(State(state): State<AppState>, post: Post<ChannelsTab>) -> Result<Response, PageError> {
    let values = ChannelForm::from_pairs(&post.form);
    let body = match body_of_form(&state, &post, None, &values).await? {
        Ok((body, _)) => body,
        Err(form) => return Ok(form),
    };
    match channel::create(&state, &post.principal, &post.scope, body).await {
        Ok(view) => Ok(show_secret_once(&state, &post.ctx, &view)),
        Err(err) => form_with_errors(&state, post.ctx, None, values, vec![err.into()]),
    }
}

/// GET the page that shows a fresh secret once.
pub async fn channel_secret(
    State(state): State<AppState>,
    Page { ctx, .. }: Page<ChannelsTab>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
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
///
/// # Errors
/// The error page when the channel cannot be read.
pub async fn channel(
    State(state): State<AppState>,
    Page {
        principal, scope, ctx, ..
    }: Page<ChannelsTab>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&ctx)?;
    let view = channel::get(&state, &principal, &scope, &key).await.in_page(&ctx)?;
    let health = health::of_channel(&state, &principal, &scope, &key)
        .await
        .in_page(&ctx)?;
    // The chart is the deliveries log's figures: left out for a user who may not read it.
    let chart = match health::activity(&state, &principal, &scope, Some(&key)).await {
        Ok(activity) => Some(chart::build(
            "channel-chart",
            "Delivery attempts over the last 24 hours",
            &activity,
        )),
        Err(DomainError::Forbidden(_)) => None,
        Err(err) => return Err(PageError::new(Some(&ctx), err.into())),
    };
    let pull = crate::domain::pull::status(&state, &principal, &scope, &key)
        .await
        .in_page(&ctx)?;
    Ok(HtmlTemplate(ChannelFormPage {
        ctx,
        form: ChannelForm::from_view(&view),
        channel: Some(view),
        catalog: catalog(),
        types: channel_types(&state),
        test: None,
        health: Some(health),
        chart,
        pull,
    })
    .into_response())
}

/// POST the edit form (full replace).
///
/// # Errors
/// The error page when the channel cannot be read, and for errors that are not about the form.
pub async fn replace_channel(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    let current = channel::get(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    let values = ChannelForm::from_pairs(&post.form);
    let (body, current) = match body_of_form(&state, &post, Some(current), &values).await? {
        Ok(checked) => checked,
        Err(form) => return Ok(form),
    };
    match channel::replace(&state, &post.principal, &post.scope, &key, body).await {
        Ok(_) => Ok(see_other(channels_href(&post.ctx, Done::Saved))),
        Err(err) => form_with_errors(&state, post.ctx, current, values, vec![err.into()]),
    }
}

/// POST enable/disable.
///
/// # Errors
/// The error page when the channel cannot be read or saved.
pub async fn toggle_channel(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    let view = channel::get(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    let mut values = ChannelForm::from_view(&view);
    values.enabled = !values.enabled;
    let body = values.to_body().in_page(&post.ctx)?;
    channel::replace(&state, &post.principal, &post.scope, &key, body)
        .await
        .in_page(&post.ctx)?;
    let done = if values.enabled { Done::Enabled } else { Done::Disabled };
    Ok(see_other(channels_href(&post.ctx, done)))
}

/// POST resume a PAUSED (or FAILING) channel: ACTIVE again, and what waited goes out.
///
/// # Errors
/// The error page when the channel cannot be read or resumed.
pub async fn resume_channel(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    channel::ladder::resume(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    Ok(see_other(channels_href(&post.ctx, Done::Resumed)))
}

/// GET the delete confirmation.
///
/// # Errors
/// 403 for a user who may not delete channels here; the error page when the channel cannot be
/// read.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Page {
        principal, scope, ctx, ..
    }: Page<ChannelsTab>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&ctx)?;
    if !ctx.can_manage_channels {
        return Err(PageError::new(
            Some(&ctx),
            ApiError::Forbidden("you may not delete channels here".into()),
        ));
    }
    let channel = channel::get(&state, &principal, &scope, &key).await.in_page(&ctx)?;
    Ok(HtmlTemplate(ConfirmDeletePage { ctx, channel }).into_response())
}

/// POST the confirmed delete.
///
/// # Errors
/// The error page when the channel cannot be deleted.
pub async fn delete_channel(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    channel::delete(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    Ok(see_other(channels_href(&post.ctx, Done::Deleted)))
}

/// POST rotate the signing secret; the new one is shown once.
///
/// # Errors
/// The error page when the secret cannot be rotated.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    let view = channel::rotate_secret(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    Ok(show_secret_once(&state, &post.ctx, &view))
}

/// POST send a test event and show status, timing and error.
///
/// # Errors
/// The error page when the channel cannot be read or tested.
pub async fn test_channel(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<ChannelsTab>,
) -> Result<Response, PageError> {
    let key = ChannelKey::parse(&key).in_page(&post.ctx)?;
    let event_type = field(&post.form, "event_type").filter(|e| !e.is_empty());
    let report = channel::test_saved(&state, &post.principal, &post.scope, &key, event_type)
        .await
        .in_page(&post.ctx)?;
    let view = channel::get(&state, &post.principal, &post.scope, &key)
        .await
        .in_page(&post.ctx)?;
    Ok(HtmlTemplate(TestResultPage {
        ctx: post.ctx,
        test: TestView::new(view.name, report),
    })
    .into_response())
}

/// POST the new-channel form to send one test event through it without saving it. The result
/// is shown above the form, which keeps what was typed (secrets excepted), whether the test
/// succeeded or not.
///
/// # Errors
/// The error page for errors that are not about the form.
pub async fn test_draft(State(state): State<AppState>, post: Post<ChannelsTab>) -> Result<Response, PageError> {
    let values = ChannelForm::from_pairs(&post.form);
    let body = match body_of_form(&state, &post, None, &values).await? {
        Ok((body, _)) => body,
        Err(form) => return Ok(form),
    };
    match channel::test_draft(&state, &post.principal, &post.scope, body, None).await {
        Ok(report) => Ok(HtmlTemplate(ChannelFormPage {
            test: Some(TestView::new(format!("{} (not saved)", values.name), report)),
            ctx: post.ctx,
            channel: None,
            form: values,
            catalog: catalog(),
            types: channel_types(&state),
            health: None,
            pull: None,
            chart: None,
        })
        .into_response()),
        Err(err) => form_with_errors(&state, post.ctx, None, values, vec![err.into()]),
    }
}
