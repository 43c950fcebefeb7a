//! The deliveries log: `/api/wallets/{walletExternalKey}/integration-deliveries` for a
//! wallet's channels and `/api/integration-deliveries` for platform channels.

use axum::extract::{RawQuery, State};
use axum::Json;

use crate::api::extract::{external_key, ApiPath};
use crate::auth::Principal;
use crate::domain::delivery::{self, BulkReplay, Delivery, DeliveryDetail, DeliveryPage, Transition};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::delivery_log::Scope;

fn wallet_scope(wallet: &str) -> Result<Scope, ApiError> {
    Ok(Scope::Wallet(external_key("walletExternalKey", wallet)?))
}

/// Lists a wallet's deliveries, newest first. Filters: `state` (repeatable or comma-separated;
/// default `active` = PENDING, DELIVERING, FAILED; `all` for every state), `channel`,
/// `eventType`, `eventId`, `from`, `to` (RFC 3339), `cursor`, `limit`.
#[utoipa::path(
    get,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries",
    tag = "deliveries",
    params(("walletExternalKey" = String, Path, description = "The wallet")),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Bad filter", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "WALLET_INTEGRATION_DELIVERY_READ is required", body = ErrorBody),
        (status = 404, description = "Unknown wallet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_wallet_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryPage>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(delivery::list(&state, &principal, &scope, &query).await?))
}

/// One delivery with its event and every attempt (request with secrets redacted, response,
/// timing, error).
#[utoipa::path(
    get,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries/{deliveryExternalKey}",
    tag = "deliveries",
    params(("walletExternalKey" = String, Path, description = "The wallet"), ("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        (status = 403, description = "WALLET_INTEGRATION_DELIVERY_READ is required", body = ErrorBody),
        (status = 404, description = "Unknown wallet or delivery", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_wallet_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(delivery::detail(&state, &principal, &scope, &key).await?))
}

/// Replays a FAILED delivery: back to PENDING with its attempts reset.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries/{deliveryExternalKey}/replay",
    tag = "deliveries",
    params(("walletExternalKey" = String, Path, description = "The wallet"), ("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now PENDING", body = Delivery),
        (status = 403, description = "WALLET_INTEGRATION_DELIVERY_CRUD is required", body = ErrorBody),
        (status = 404, description = "Unknown wallet or delivery", body = ErrorBody),
        (status = 409, description = "The delivery is not FAILED", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn replay_wallet_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(
        delivery::transition(&state, &principal, &scope, &key, Transition::Replay).await?,
    ))
}

/// Dismisses a FAILED delivery: it stays in the log but no longer needs attention.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries/{deliveryExternalKey}/dismiss",
    tag = "deliveries",
    params(("walletExternalKey" = String, Path, description = "The wallet"), ("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now DISMISSED", body = Delivery),
        (status = 403, description = "WALLET_INTEGRATION_DELIVERY_CRUD is required", body = ErrorBody),
        (status = 404, description = "Unknown wallet or delivery", body = ErrorBody),
        (status = 409, description = "The delivery is not FAILED", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn dismiss_wallet_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(
        delivery::transition(&state, &principal, &scope, &key, Transition::Dismiss).await?,
    ))
}

/// Replays every FAILED delivery that matches the filters of the query string (the same
/// filters as the list, except `state`).
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries/replay",
    tag = "deliveries",
    params(("walletExternalKey" = String, Path, description = "The wallet")),
    responses(
        (status = 200, description = "How many were replayed", body = BulkReplay),
        (status = 403, description = "WALLET_INTEGRATION_DELIVERY_CRUD is required", body = ErrorBody),
        (status = 404, description = "Unknown wallet", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn bulk_replay_wallet_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<BulkReplay>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(
        delivery::replay_matching(&state, &principal, &scope, &query.filter).await?,
    ))
}

/// Lists the deliveries to platform channels (GLOBAL_WALLET_CRUD).
#[utoipa::path(
    get,
    path = "/api/integration-deliveries",
    tag = "platform",
    responses((status = 200, description = "A page of deliveries", body = DeliveryPage), (status = 403, description = "GLOBAL_WALLET_CRUD is required", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_platform_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryPage>, ApiError> {
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(
        delivery::list(&state, &principal, &Scope::Platform, &query).await?,
    ))
}

/// One delivery to a platform channel.
#[utoipa::path(
    get,
    path = "/api/integration-deliveries/{deliveryExternalKey}",
    tag = "platform",
    params(("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses((status = 200, description = "The delivery", body = DeliveryDetail), (status = 404, description = "Unknown delivery", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_platform_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(
        delivery::detail(&state, &principal, &Scope::Platform, &key).await?,
    ))
}

/// Replays a FAILED delivery to a platform channel.
#[utoipa::path(
    post,
    path = "/api/integration-deliveries/{deliveryExternalKey}/replay",
    tag = "platform",
    params(("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses((status = 200, description = "Now PENDING", body = Delivery), (status = 409, description = "Not FAILED", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn replay_platform_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Delivery>, ApiError> {
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(
        delivery::transition(&state, &principal, &Scope::Platform, &key, Transition::Replay).await?,
    ))
}

/// Dismisses a FAILED delivery to a platform channel.
#[utoipa::path(
    post,
    path = "/api/integration-deliveries/{deliveryExternalKey}/dismiss",
    tag = "platform",
    params(("deliveryExternalKey" = String, Path, description = "The delivery")),
    responses((status = 200, description = "Now DISMISSED", body = Delivery), (status = 409, description = "Not FAILED", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn dismiss_platform_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Delivery>, ApiError> {
    let key = external_key("deliveryExternalKey", &key)?;
    Ok(Json(
        delivery::transition(&state, &principal, &Scope::Platform, &key, Transition::Dismiss).await?,
    ))
}

/// Replays every FAILED platform delivery matching the query's filters.
#[utoipa::path(
    post,
    path = "/api/integration-deliveries/replay",
    tag = "platform",
    responses((status = 200, description = "How many were replayed", body = BulkReplay)),
    security(("bearer" = []))
)]
pub async fn bulk_replay_platform_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
) -> Result<Json<BulkReplay>, ApiError> {
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(
        delivery::replay_matching(&state, &principal, &Scope::Platform, &query.filter).await?,
    ))
}
