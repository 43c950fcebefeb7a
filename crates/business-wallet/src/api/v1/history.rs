//! The audit log: `GET /api/v1/wallets/{walletExternalKey}/history?event=INTEGRATION`, and
//! `GET /api/v1/history` for platform-level entries.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::doc;
use crate::api::extract::{external_key, ApiPath, ApiQuery};
use crate::auth::{Authority, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{history, rfc3339_ms};

/// The categories of audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryEvent {
    /// Channel changes, secret rotations, delivery replays and dismissals.
    Integration,
}

impl HistoryEvent {
    /// The name stored in the `history.event` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Integration => "INTEGRATION",
        }
    }
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only entries of this category (all when absent).
    #[param(inline)]
    pub event: Option<HistoryEvent>,
    /// From a previous page's `nextCursor`.
    #[param(minimum = -9223372036854775808_i64, maximum = 9223372036854775807_i64)]
    pub cursor: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Category.
    pub event: String,
    /// What happened: CHANNEL_CREATED, CHANNEL_UPDATED, CHANNEL_DELETED, CHANNEL_SECRET_ROTATED,
    /// DELIVERY_REPLAYED, DELIVERY_DISMISSED, DELIVERIES_REPLAYED.
    pub action: String,
    /// `sub` of who did it.
    pub actor: String,
    /// What it was done to.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When.
    pub created_at: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// Newest first.
    pub items: Vec<HistoryEntry>,
    /// For the next page; absent on the last.
    pub next_cursor: Option<String>,
}

async fn page(state: &AppState, wallet: Option<&str>, query: &HistoryQuery) -> Result<HistoryPage, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be a number from 1 to 200"));
    }
    let mut rows = history::list(
        &state.db,
        wallet,
        query.event.map(HistoryEvent::as_str),
        query.cursor,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(HistoryPage {
        next_cursor: more.then(|| rows.last().map(|r| r.id.to_string())).flatten(),
        items: rows
            .into_iter()
            .map(|r| HistoryEntry {
                event: r.event,
                action: r.action,
                actor: r.actor,
                details: r
                    .details
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_default(),
                created_at: rfc3339_ms(r.created_at),
            })
            .collect(),
    })
}

/// The audit log of a wallet (channel changes, secret rotations, replays and dismissals).
/// Readable with WALLET_INTEGRATION_CHANNEL_READ or WALLET_INTEGRATION_DELIVERY_READ.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletExternalKey}/history",
    tag = "history",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), HistoryQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = HistoryPage),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_history(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let wallet = external_key("walletExternalKey", &wallet)?;
    if !principal.has(Authority::WalletIntegrationChannelRead, &wallet)
        && !principal.has(Authority::WalletIntegrationDeliveryRead, &wallet)
    {
        return Err(ApiError::Forbidden(format!(
            "this requires {} or {} on wallet {wallet}",
            Authority::WalletIntegrationChannelRead,
            Authority::WalletIntegrationDeliveryRead
        )));
    }
    if crate::store::wallets::find(&state.db, &wallet).await?.is_none() {
        return Err(crate::domain::wallet::not_found(&wallet));
    }
    Ok(Json(page(&state, Some(&wallet), &query).await?))
}

/// The audit log of the platform channels (GLOBAL_WALLET_CRUD).
#[utoipa::path(
    get,
    path = "/api/v1/history",
    tag = "history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = HistoryPage),
        doc::Secured,
    ),
    security(("bearer" = []))
)]
pub async fn platform_history(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    principal.require_global()?;
    Ok(Json(page(&state, None, &query).await?))
}
