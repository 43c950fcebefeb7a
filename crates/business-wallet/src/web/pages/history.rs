//! The history page: the INTEGRATION audit entries of the scope, newest first, 50 a page.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{href, Ctx, HistoryTab, InPage, Page, PageError};
use crate::auth::Authority;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::delivery_log::Scope;
use crate::store::{history, rfc3339_ms};
use crate::web::forms::field;
use crate::web::HtmlTemplate;

struct HistoryItem {
    created_at: String,
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
/// 403 without an integration authority on the scope; the error page when the history cannot
/// be read.
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
    let allowed = match &scope {
        Scope::Platform => principal.is_global(),
        Scope::Wallet(w) => {
            principal.has(Authority::WalletIntegrationChannelRead, w)
                || principal.has(Authority::WalletIntegrationDeliveryRead, w)
        }
    };
    if !allowed {
        return Err(PageError::new(
            Some(&ctx),
            ApiError::Forbidden("this requires an integration authority on this wallet".into()),
        ));
    }
    let wallet = match &scope {
        Scope::Wallet(w) => Some(w.as_str()),
        Scope::Platform => None,
    };
    let cursor = field(&query, "cursor").and_then(|c| c.parse::<i64>().ok());
    const LIMIT: i64 = 50;
    let mut rows = history::list(&state.db, wallet, Some("INTEGRATION"), cursor, LIMIT + 1)
        .await
        .in_page(&ctx)?;
    let more = rows.len() as i64 > LIMIT;
    rows.truncate(LIMIT as usize);
    let next_href = more
        .then(|| {
            rows.last().map(|r| {
                let id = r.id.to_string();
                href(
                    "/ui/integrations/history",
                    [("cursor", id.as_str())].into_iter().chain(ctx.wallet_param()),
                )
            })
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
    Ok(HtmlTemplate(HistoryPage { ctx, items, next_href }).into_response())
}
