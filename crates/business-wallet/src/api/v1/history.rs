//! The audit log: `GET /api/v1/wallets/{walletExternalKey}/history?event=INTEGRATION`, and
//! `GET /api/v1/history` for platform-level entries.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::doc;
use crate::api::extract::{ApiPath, ApiQuery};
use crate::auth::Principal;
use crate::domain::history::{self, HistoryEvent, HistoryPage};
use crate::domain::{Scope, WalletKey};
use crate::error::ApiError;
use crate::state::AppState;

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

async fn page(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    query: &HistoryQuery,
) -> Result<HistoryPage, ApiError> {
    let query = history::HistoryQuery {
        event: query.event,
        cursor: query.cursor,
        limit: query.limit.unwrap_or(50),
    };
    Ok(history::list(state, principal, scope, query).await?)
}

/// The audit log of a wallet (channel changes, secret rotations, replays and dismissals,
/// erasures of its integration data).
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
    let wallet = WalletKey::parse(&wallet)?;
    Ok(Json(page(&state, &principal, &Scope::Wallet(wallet), &query).await?))
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
    Ok(Json(page(&state, &principal, &Scope::Platform, &query).await?))
}
