//! The deliveries pages: the filtered, paginated log, one delivery with its attempts, and
//! replay and dismiss, one at a time or in bulk.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{href, query_string, see_other, Ctx, DeliveriesTab, InPage, Page, PageError, Post};
use crate::domain::channel::health;
use crate::domain::delivery::{self, AttemptOutcome, Delivery, DeliveryState, LogQuery, Transition};
use crate::domain::{channel, DeliveryKey};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::chart::{self, Chart};
use crate::web::forms::{self, field, fields, header_pairs};
use crate::web::HtmlTemplate;

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
    /// Attempts per hour over the last day, of the page's scope and channel filter.
    chart: Chart,
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

/// The page's filters as the API's log query (with the cursor when `with_cursor`), parsed by
/// the API's own parser, and the states checked on the page.
fn log_query(query: &[(String, String)], with_cursor: bool) -> Result<(LogQuery, Vec<String>), ApiError> {
    let states: Vec<String> = fields(query, "state").into_iter().map(str::to_string).collect();
    let mut api: Vec<(&str, String)> = states.iter().map(|s| ("state", s.clone())).collect();
    if let Some(c) = field(query, "channel").filter(|c| !c.is_empty()) {
        api.push(("channel", c.to_string()));
    }
    for bound in ["from", "to"] {
        if let Some(t) = forms::local_to_rfc3339(bound, field(query, bound).unwrap_or_default())? {
            api.push((bound, t));
        }
    }
    if with_cursor {
        if let Some(c) = field(query, "cursor").filter(|c| !c.is_empty()) {
            api.push(("cursor", c.to_string()));
        }
    }
    let encoded = query_string(api.iter().map(|(k, v)| (*k, v.as_str())));
    let parsed = delivery::parse_log_query(Some(&encoded))?;
    Ok((parsed, states))
}

/// The page's own filter parameters that are set, for links (next page) and redirects.
fn page_filters(query: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    query
        .iter()
        .filter(|(k, v)| matches!(k.as_str(), "state" | "channel" | "from" | "to" | "wallet") && !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// GET the filtered, paginated deliveries log.
///
/// # Errors
/// 400 for a filter that does not parse; the error page when the log cannot be read.
pub async fn deliveries(
    State(state): State<AppState>,
    Page {
        principal,
        scope,
        ctx,
        query,
        ..
    }: Page<DeliveriesTab>,
) -> Result<Response, PageError> {
    let (parsed, checked) = log_query(&query, true).in_page(&ctx)?;
    let page = delivery::list(&state, &principal, &scope, &parsed)
        .await
        .in_page(&ctx)?;
    // The channel filter lists the channels when the user may see them.
    let selected = field(&query, "channel").unwrap_or_default().to_string();
    let channels = channel::list(&state, &principal, &scope)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let chosen = c.channel_external_key.as_str() == selected;
            (c.channel_external_key.to_string(), c.name, chosen)
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
    let next_href = page.next_cursor.as_deref().map(|cursor| {
        href(
            "/ui/integrations/deliveries",
            page_filters(&query).chain([("cursor", cursor)]),
        )
    });
    let activity = health::activity(&state, &principal, &scope, parsed.filter.channel.as_ref())
        .await
        .in_page(&ctx)?;
    let chart = chart::build("deliveries-chart", "Deliveries over the last 24 hours", &activity);
    let notice = field(&query, "replayed")
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| format!("Failed deliveries queued again: {n}."));
    Ok(HtmlTemplate(DeliveriesPage {
        ctx,
        items: page.items,
        states,
        channels,
        from: field(&query, "from").unwrap_or_default().to_string(),
        to: field(&query, "to").unwrap_or_default().to_string(),
        channel: selected,
        next_href,
        notice,
        chart,
    })
    .into_response())
}

/// GET one delivery with its envelope and every attempt.
///
/// # Errors
/// The error page when the delivery cannot be read.
pub async fn delivery(
    State(state): State<AppState>,
    Page {
        principal, scope, ctx, ..
    }: Page<DeliveriesTab>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let key = DeliveryKey::parse(&key).in_page(&ctx)?;
    let detail = delivery::detail(&state, &principal, &scope, &key).await.in_page(&ctx)?;
    let envelope = detail
        .event
        .as_ref()
        .map(|e| serde_json::to_string_pretty(&serde_json::to_value(e).unwrap_or_default()).unwrap_or_default())
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
    Ok(HtmlTemplate(DeliveryPage {
        ctx,
        delivery: detail.delivery,
        envelope,
        attempts,
    })
    .into_response())
}

/// Replays or dismisses one delivery, then back to it.
async fn transition(
    state: AppState,
    key: DeliveryKey,
    post: Post<DeliveriesTab>,
    which: Transition,
) -> Result<Response, PageError> {
    let Post {
        principal, scope, ctx, ..
    } = post;
    delivery::transition(&state, &principal, &scope, &key, which)
        .await
        .in_page(&ctx)?;
    Ok(see_other(href(
        &format!("/ui/integrations/deliveries/{key}"),
        ctx.wallet_param(),
    )))
}

/// POST replay a FAILED delivery.
///
/// # Errors
/// The error page when the delivery cannot be replayed.
pub async fn replay(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<DeliveriesTab>,
) -> Result<Response, PageError> {
    let key = DeliveryKey::parse(&key).in_page(&post.ctx)?;
    transition(state, key, post, Transition::Replay).await
}

/// POST dismiss a FAILED delivery.
///
/// # Errors
/// The error page when the delivery cannot be dismissed.
pub async fn dismiss(
    State(state): State<AppState>,
    Path(key): Path<String>,
    post: Post<DeliveriesTab>,
) -> Result<Response, PageError> {
    let key = DeliveryKey::parse(&key).in_page(&post.ctx)?;
    transition(state, key, post, Transition::Dismiss).await
}

/// POST replay every FAILED delivery matching the filters.
///
/// # Errors
/// 400 for a filter that does not parse; the error page when the replay fails.
pub async fn bulk_replay(State(state): State<AppState>, post: Post<DeliveriesTab>) -> Result<Response, PageError> {
    // The filter of the page (channel and time range); only FAILED deliveries are replayed.
    let (parsed, _) = log_query(&post.form, false).in_page(&post.ctx)?;
    let done = delivery::replay_matching(&state, &post.principal, &post.scope, &parsed.filter)
        .await
        .in_page(&post.ctx)?;
    let replayed = done.replayed.to_string();
    let filters: Vec<(&str, &str)> = page_filters(&post.form).collect();
    // The page's wallet, unless the form names one itself.
    let wallet = post
        .ctx
        .wallet_param()
        .filter(|_| !filters.iter().any(|(k, _)| *k == "wallet"));
    Ok(see_other(href(
        "/ui/integrations/deliveries",
        [("replayed", replayed.as_str())]
            .into_iter()
            .chain(filters)
            .chain(wallet),
    )))
}
