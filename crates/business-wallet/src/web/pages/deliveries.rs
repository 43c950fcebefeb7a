//! The deliveries pages: the filtered, paginated log, one delivery with its attempts, and
//! replay and dismiss, one at a time or in bulk.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{href, query_string, see_other, Ctx, DeliveriesTab, Done, InPage, Page, PageError, Post};
use crate::domain::channel::health;
use crate::domain::delivery::{self, AttemptOutcome, AttemptView, Delivery, DeliveryState, LogQuery, Transition};
use crate::domain::{channel, DeliveryKey, Scope};
use crate::error::ApiError;
use crate::events;
use crate::state::AppState;
use crate::web::chart::{self, Chart};
use crate::web::forms::{self, field, fields, header_pairs};
use crate::web::time::Stamp;
use crate::web::HtmlTemplate;

/// One row of the log as the page shows it.
struct Row {
    d: Delivery,
    created: Stamp,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    ctx: Ctx,
    items: Vec<Row>,
    states: Vec<(DeliveryState, bool)>,
    channels: Vec<(String, String, bool)>,
    /// Each catalog type, and whether it is the one filtered on.
    event_types: Vec<(&'static str, bool)>,
    /// The platform view: every wallet's events, so the wallet can be filtered on.
    platform: bool,
    filters: Filters,
    /// The filters that are set, in words, for the folded filter form's summary.
    summary: String,
    /// The confirmation pages of the bulk actions, with the page's filters.
    replay_href: String,
    dismiss_href: String,
    next_href: Option<String>,
    /// Attempts per hour over the last day, of the page's scope and channel filter.
    chart: Chart,
}

/// The filters of the page as typed, re-shown in their inputs.
#[derive(Debug, Default)]
struct Filters {
    channel: String,
    event_type: String,
    event_id: String,
    event_wallet: String,
    from: String,
    to: String,
}

impl Filters {
    fn of(query: &[(String, String)]) -> Filters {
        let get = |k: &str| field(query, k).unwrap_or_default().trim().to_string();
        Filters {
            channel: get("channel"),
            event_type: get("event_type"),
            event_id: get("event_id"),
            event_wallet: get("event_wallet"),
            from: get("from"),
            to: get("to"),
        }
    }
}

/// The filters that are set, in words: the states checked (or the default, the active ones),
/// then each other filter.
fn summary(states: &[String], filters: &Filters, channels: &[(String, String, bool)]) -> String {
    let mut parts = vec![if states.is_empty() {
        "active deliveries".to_string()
    } else {
        states.join(", ")
    }];
    parts.extend(describe(filters, channels).into_iter().map(|(name, value)| {
        let value = if name == "Event type" {
            value.trim_start_matches("com.credenco.businesswallet.").to_string()
        } else {
            value
        };
        format!("{} {value}", name.to_lowercase())
    }));
    parts.join(" · ")
}

/// The page's parameter names and the API's, for the filters that are not states or times.
const FILTER_NAMES: [(&str, &str); 4] = [
    ("channel", "channel"),
    ("event_type", "eventType"),
    ("event_id", "eventId"),
    ("event_wallet", "wallet"),
];

/// The page's filters as the API's log query (with the cursor when `with_cursor`), parsed by
/// the API's own parser, and the states checked on the page.
fn log_query(query: &[(String, String)], with_cursor: bool) -> Result<(LogQuery, Vec<String>), ApiError> {
    let states: Vec<String> = fields(query, "state").into_iter().map(str::to_string).collect();
    let mut api: Vec<(&str, String)> = states.iter().map(|s| ("state", s.clone())).collect();
    for (page_name, api_name) in FILTER_NAMES {
        if let Some(v) = field(query, page_name).map(str::trim).filter(|v| !v.is_empty()) {
            api.push((api_name, v.to_string()));
        }
    }
    for bound in ["from", "to"] {
        if let Some(t) = forms::utc_to_rfc3339(bound, field(query, bound).unwrap_or_default())? {
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

/// The page's own filter parameters that are set (without the states when `with_states` is
/// false), for links (next page, bulk actions) and redirects.
fn page_filters(query: &[(String, String)], with_states: bool) -> impl Iterator<Item = (&str, &str)> {
    query
        .iter()
        .filter(move |(k, v)| {
            let known =
                FILTER_NAMES.iter().any(|(page, _)| page == k) || matches!(k.as_str(), "from" | "to" | "wallet");
            (known || (with_states && k == "state")) && !v.is_empty()
        })
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
    let filters = Filters::of(&query);
    // The channel filter lists the channels when the user may see them.
    let channels: Vec<(String, String, bool)> = channel::list(&state, &principal, &scope)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let chosen = c.channel_external_key.as_str() == filters.channel;
            (c.channel_external_key.to_string(), c.name, chosen)
        })
        .collect();
    let summary = summary(&checked, &filters, &channels);
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
    let event_types = events::CATALOG
        .iter()
        .map(|e| (e.type_name, e.type_name == filters.event_type))
        .collect();
    let next_href = page.next_cursor.as_deref().map(|cursor| {
        href(
            "/ui/integrations/deliveries",
            page_filters(&query, true).chain([("cursor", cursor)]),
        )
    });
    let bulk_href = |action: &str| {
        href(
            &format!("/ui/integrations/deliveries/{action}"),
            page_filters(&query, false),
        )
    };
    let now = chrono::Utc::now();
    let activity = health::activity(&state, &principal, &scope, parsed.filter.channel.as_ref())
        .await
        .in_page(&ctx)?;
    let chart = chart::build(
        "deliveries-chart",
        "Delivery attempts over the last 24 hours",
        &activity,
    );
    Ok(HtmlTemplate(DeliveriesPage {
        items: page
            .items
            .into_iter()
            .map(|d| Row {
                created: Stamp::at(&d.created_at, now),
                d,
            })
            .collect(),
        states,
        channels,
        event_types,
        platform: scope == Scope::Platform,
        summary,
        filters,
        replay_href: bulk_href("replay"),
        dismiss_href: bulk_href("dismiss"),
        next_href,
        chart,
        ctx,
    })
    .into_response())
}

struct AttemptPage {
    /// Its place among every attempt of the delivery, oldest first, from 1: it goes on
    /// counting across replays.
    number: usize,
    /// Its number as recorded, within its round (a replay starts again from 1).
    attempt: i64,
    /// How many replays came before it (0: the first round).
    round: usize,
    /// Whether it is the first attempt after a replay (the page marks the boundary).
    after_replay: bool,
    /// The newest attempt, shown open; the others are collapsed.
    latest: bool,
    started: Stamp,
    duration_ms: i64,
    outcome: AttemptOutcome,
    method: String,
    url: String,
    request_headers: Vec<(String, String)>,
    request_body: String,
    /// The request as a curl command (secrets stay redacted), for an HTTP request.
    curl: Option<String>,
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
    created: Stamp,
    next_attempt: Option<Stamp>,
    delivered: Option<Stamp>,
    envelope: String,
    attempts: Vec<AttemptPage>,
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
    let attempts = attempt_pages(detail.attempts, chrono::Utc::now());
    Ok(HtmlTemplate(DeliveryPage {
        ctx,
        created: Stamp::of(&detail.delivery.created_at),
        next_attempt: detail.delivery.next_attempt_at.as_deref().map(Stamp::of),
        delivered: detail.delivery.delivered_at.as_deref().map(Stamp::of),
        delivery: detail.delivery,
        envelope,
        attempts,
    })
    .into_response())
}

/// The attempts as the page shows them, newest first: numbered across replays, each replay's
/// first attempt marked, bodies that are JSON pretty-printed.
fn attempt_pages(attempts: Vec<AttemptView>, now: chrono::DateTime<chrono::Utc>) -> Vec<AttemptPage> {
    let count = attempts.len();
    let mut round = 0;
    let mut previous = 0;
    let mut pages: Vec<AttemptPage> = attempts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let after_replay = i > 0 && a.attempt <= previous;
            if after_replay {
                round += 1;
            }
            previous = a.attempt;
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
            let method = text(&a.request["method"]);
            let url = text(&a.request["url"]);
            let request_headers = header_pairs(&a.request["headers"]);
            let raw_body = text(&a.request["body"]);
            let curl = curl_command(&method, &url, &request_headers, &raw_body);
            AttemptPage {
                number: i + 1,
                attempt: a.attempt,
                round,
                after_replay,
                latest: i + 1 == count,
                started: Stamp::at(&a.started_at, now),
                duration_ms: a.duration_ms,
                outcome: a.outcome,
                method,
                url,
                request_headers,
                request_body: pretty_json(&raw_body),
                curl,
                response_status: a.response.as_ref().and_then(|r| r.status),
                response_headers: a
                    .response
                    .as_ref()
                    .map(|r| header_pairs(&r.headers))
                    .unwrap_or_default(),
                response_body: a.response.and_then(|r| r.body).map(|b| pretty_json(&b)),
                error: a.error,
            }
        })
        .collect();
    pages.reverse();
    pages
}

/// `text` indented when it is a JSON object or array, as it is otherwise. The members keep the
/// order they were sent in (the text is re-indented, not rebuilt).
fn pretty_json(text: &str) -> String {
    let trimmed = text.trim();
    let is_container = trimmed.starts_with('{') || trimmed.starts_with('[');
    if !is_container || serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_err() {
        return text.to_string();
    }
    let mut out = String::with_capacity(trimmed.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    out.extend(chars.next());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The recorded HTTP request as a curl command line, every part quoted for a POSIX shell, the
/// body sent as it was (not re-indented). The recorded headers already have their secrets
/// redacted. `None` for what is not an HTTP request (a Kafka or JMS send).
fn curl_command(method: &str, url: &str, headers: &[(String, String)], body: &str) -> Option<String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || method.is_empty() {
        return None;
    }
    let quote = |s: &str| shlex::try_quote(s).map(|q| q.into_owned()).ok();
    let mut lines = vec![format!("curl -X {} {}", quote(method)?, quote(url)?)];
    for (name, value) in headers {
        lines.push(format!("-H {}", quote(&format!("{name}: {value}"))?));
    }
    if !body.is_empty() {
        lines.push(format!("--data-binary {}", quote(body)?));
    }
    Some(lines.join(" \\\n  "))
}

/// Replays or dismisses one delivery, then back to it with a notice.
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
        ctx.wallet_param().into_iter().chain([("done", done(which).as_str())]),
    )))
}

fn done(which: Transition) -> Done {
    match which {
        Transition::Replay => Done::Replayed,
        Transition::Dismiss => Done::Dismissed,
    }
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

#[derive(Template)]
#[template(path = "confirm_bulk.html")]
struct ConfirmBulkPage {
    ctx: Ctx,
    /// `replay` or `dismiss`.
    action: &'static str,
    /// How many FAILED deliveries match now.
    count: u64,
    /// The filters, as hidden fields of the confirming form.
    hidden: Vec<(String, String)>,
    /// The filters in words.
    described: Vec<(&'static str, String)>,
    /// Back to the log with the same filters.
    back_href: String,
}

/// The filters of a bulk action in words, for its confirmation.
fn describe(filters: &Filters, channels: &[(String, String, bool)]) -> Vec<(&'static str, String)> {
    let channel = channels
        .iter()
        .find(|(key, _, _)| *key == filters.channel)
        .map_or_else(|| filters.channel.clone(), |(_, name, _)| name.clone());
    [
        ("Channel", channel),
        ("Event type", filters.event_type.clone()),
        ("Event id", filters.event_id.clone()),
        ("Wallet of the event", filters.event_wallet.clone()),
        ("Created from (UTC)", filters.from.clone()),
        ("Created before (UTC)", filters.to.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect()
}

/// The confirmation of a bulk replay or dismissal: how many FAILED deliveries match the
/// filters, and a button that acts on them.
async fn confirm_bulk(state: AppState, page: Page<DeliveriesTab>, which: Transition) -> Result<Response, PageError> {
    let Page {
        principal,
        scope,
        ctx,
        query,
        ..
    } = page;
    let (parsed, _) = log_query(&query, false).in_page(&ctx)?;
    let count = delivery::count_failed_matching(&state, &principal, &scope, &parsed.filter)
        .await
        .in_page(&ctx)?;
    let channels: Vec<(String, String, bool)> = channel::list(&state, &principal, &scope)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.channel_external_key.to_string(), c.name, false))
        .collect();
    let filters = Filters::of(&query);
    let hidden = page_filters(&query, false)
        .filter(|(k, _)| *k != "wallet")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(HtmlTemplate(ConfirmBulkPage {
        action: match which {
            Transition::Replay => "replay",
            Transition::Dismiss => "dismiss",
        },
        count,
        hidden,
        described: describe(&filters, &channels),
        back_href: href("/ui/integrations/deliveries", page_filters(&query, false)),
        ctx,
    })
    .into_response())
}

/// GET the confirmation of a bulk replay.
///
/// # Errors
/// 400 for a filter that does not parse; 403 without the authority to replay.
pub async fn confirm_bulk_replay(
    State(state): State<AppState>,
    page: Page<DeliveriesTab>,
) -> Result<Response, PageError> {
    confirm_bulk(state, page, Transition::Replay).await
}

/// GET the confirmation of a bulk dismissal.
///
/// # Errors
/// 400 for a filter that does not parse; 403 without the authority to dismiss.
pub async fn confirm_bulk_dismiss(
    State(state): State<AppState>,
    page: Page<DeliveriesTab>,
) -> Result<Response, PageError> {
    confirm_bulk(state, page, Transition::Dismiss).await
}

/// Replays or dismisses every FAILED delivery matching the posted filters, then back to the log
/// with those filters and a notice of the count.
async fn bulk(state: AppState, post: Post<DeliveriesTab>, which: Transition) -> Result<Response, PageError> {
    let (parsed, _) = log_query(&post.form, false).in_page(&post.ctx)?;
    let filter = &parsed.filter;
    let count = match which {
        Transition::Replay => {
            delivery::replay_matching(&state, &post.principal, &post.scope, filter)
                .await
                .in_page(&post.ctx)?
                .replayed
        }
        Transition::Dismiss => {
            delivery::dismiss_matching(&state, &post.principal, &post.scope, filter)
                .await
                .in_page(&post.ctx)?
                .dismissed
        }
    };
    let count = count.to_string();
    let filters: Vec<(&str, &str)> = page_filters(&post.form, false)
        .filter(|(k, _)| *k != "wallet")
        .collect();
    Ok(see_other(href(
        "/ui/integrations/deliveries",
        post.ctx
            .wallet_param()
            .into_iter()
            .chain(filters)
            .chain([("done", done(which).as_str()), ("n", count.as_str())]),
    )))
}

/// POST replay every FAILED delivery matching the filters (the confirmation's form).
///
/// # Errors
/// 400 for a filter that does not parse; the error page when the replay fails.
pub async fn bulk_replay(State(state): State<AppState>, post: Post<DeliveriesTab>) -> Result<Response, PageError> {
    bulk(state, post, Transition::Replay).await
}

/// POST dismiss every FAILED delivery matching the filters (the confirmation's form).
///
/// # Errors
/// 400 for a filter that does not parse; the error page when the dismissal fails.
pub async fn bulk_dismiss(State(state): State<AppState>, post: Post<DeliveriesTab>) -> Result<Response, PageError> {
    bulk(state, post, Transition::Dismiss).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attempt(number: i64, outcome: AttemptOutcome) -> AttemptView {
        AttemptView {
            attempt: number,
            started_at: format!("2026-12-03T10:00:0{number}Z"),
            duration_ms: 5,
            outcome,
            request: json!({
                "method": "POST",
                "url": "https://receiver.example/hook",
                "headers": [["content-type", "application/json"], ["x-credenco-signature", "t=1,v1=[redacted]"]],
                "body": "{\"a\":1}",
            }),
            response: None,
            error: None,
        }
    }

    #[test]
    fn attempts_are_numbered_across_replays_newest_first() {
        use AttemptOutcome::{Delivered, Retryable};
        // Two attempts, a replay, then two more: recorded as 1, 2, 1, 2.
        let recorded = vec![
            attempt(1, Retryable),
            attempt(2, Retryable),
            attempt(1, Retryable),
            attempt(2, Delivered),
        ];
        let now = chrono::Utc::now();
        let pages = attempt_pages(recorded, now);
        let shown: Vec<(usize, i64, usize, bool, bool)> = pages
            .iter()
            .map(|a| (a.number, a.attempt, a.round, a.after_replay, a.latest))
            .collect();
        assert_eq!(
            shown,
            [
                (4, 2, 1, false, true),
                (3, 1, 1, true, false),
                (2, 2, 0, false, false),
                (1, 1, 0, false, false)
            ]
        );
        assert_eq!(pages[0].request_body, "{\n  \"a\": 1\n}", "JSON bodies are indented");
    }

    #[test]
    fn pretty_json_keeps_the_order_and_the_strings_as_sent() {
        let sent = r#"{"z":1,"a":{"s":"x, y: {z}","e":"q\"}"},"l":[1,[],{}],"n":null}"#;
        let shown = pretty_json(sent);
        assert_eq!(
            shown,
            "{\n  \"z\": 1,\n  \"a\": {\n    \"s\": \"x, y: {z}\",\n    \"e\": \"q\\\"}\"\n  },\n  \"l\": [\n    1,\n    [],\n    {}\n  ],\n  \"n\": null\n}"
        );
        let again: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(sent).unwrap());
        assert_eq!(pretty_json("thanks"), "thanks");
        assert_eq!(pretty_json("{broken"), "{broken");
        assert_eq!(pretty_json("42"), "42");
    }

    #[test]
    fn an_http_attempt_is_a_quoted_curl_command() {
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-credenco-signature".to_string(), "t=1,v1=[redacted]".to_string()),
        ];
        let body = "{\"it's\":\"$HOME `id` \\\\ \\\" !\"}";
        let curl = curl_command("POST", "https://receiver.example/hook?a=1&b=2", &headers, body).unwrap();
        assert!(
            curl.starts_with(
                "curl -X POST 'https://receiver.example/hook?a=1&b=2' \\\n  -H 'content-type: application/json'"
            ),
            "{curl}"
        );
        // A POSIX shell reads every argument back exactly as it was recorded.
        let echo = curl.replacen("curl ", "printf '%s\\n' ", 1);
        let out = std::process::Command::new("sh").arg("-c").arg(&echo).output().unwrap();
        let args: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            args,
            [
                "-X",
                "POST",
                "https://receiver.example/hook?a=1&b=2",
                "-H",
                "content-type: application/json",
                "-H",
                "x-credenco-signature: t=1,v1=[redacted]",
                "--data-binary",
                body
            ]
        );
        assert_eq!(curl_command("", "kafka://topic", &[], ""), None);
    }
}
