//! The history page: the INTEGRATION audit entries of the scope, newest first, 50 a page.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{href, Ctx, HistoryTab, InPage, Page, PageError};
use crate::domain::history::{self, HistoryEvent};
use crate::state::AppState;
use crate::web::forms::field;
use crate::web::time::Stamp;
use crate::web::HtmlTemplate;

struct HistoryItem {
    created: Stamp,
    action: String,
    actor: String,
    details: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    ctx: Ctx,
    items: Vec<HistoryItem>,
    next_href: Option<String>,
}

/// GET the INTEGRATION audit entries.
///
/// # Errors
/// 403 without an integration authority on the scope (404 for an unknown wallet); the error
/// page when the history cannot be read.
pub async fn history(
    State(state): State<AppState>,
    Page {
        principal,
        scope,
        ctx,
        query,
        ..
    }: Page<HistoryTab>,
) -> Result<Response, PageError> {
    let cursor = field(&query, "cursor").and_then(|c| c.parse::<i64>().ok());
    let query = history::HistoryQuery {
        event: Some(HistoryEvent::Integration),
        cursor,
        limit: 50,
    };
    let page = history::list(&state, &principal, &scope, query).await.in_page(&ctx)?;
    let next_href = page.next_cursor.map(|cursor| {
        href(
            "/ui/integrations/history",
            [("cursor", cursor.as_str())].into_iter().chain(ctx.wallet_param()),
        )
    });
    let now = chrono::Utc::now();
    let items = page
        .items
        .into_iter()
        .map(|entry| HistoryItem {
            created: Stamp::at(&entry.created_at, now),
            action: entry.action,
            actor: entry.actor,
            details: if entry.details.is_null() {
                String::new()
            } else {
                entry.details.to_string()
            },
        })
        .collect();
    Ok(HtmlTemplate(HistoryPage { ctx, items, next_href }).into_response())
}
