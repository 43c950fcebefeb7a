//! `/api/v1/wallets`: create and read wallets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::doc;
use crate::api::extract::{external_key, ApiPath, AppJson, CorrelationId};
use crate::auth::Principal;
use crate::domain::wallet::{self, CreateWallet, Wallet};
use crate::error::ApiError;
use crate::state::AppState;

/// Creates a wallet and emits `com.credenco.businesswallet.wallet.created.v1` with it.
#[utoipa::path(
    post,
    path = "/api/v1/wallets",
    tag = "wallets",
    request_body = CreateWallet,
    responses(
        (status = 201, description = "The wallet was created", body = Wallet),
        doc::Secured,
        (status = 413, response = doc::PayloadTooLarge),
    ),
    security(("bearer" = []))
)]
pub async fn create_wallet(
    State(state): State<AppState>,
    principal: Principal,
    correlation: CorrelationId,
    AppJson(body): AppJson<CreateWallet>,
) -> Result<(StatusCode, Json<Wallet>), ApiError> {
    let wallet = wallet::create(&state, &principal, &correlation.0, body).await?;
    Ok((StatusCode::CREATED, Json(wallet)))
}

/// Reads a wallet.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletExternalKey}",
    tag = "wallets",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet's external key (UUID)")),
    responses(
        (status = 200, description = "The wallet", body = Wallet),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn get_wallet(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Wallet>, ApiError> {
    let key = external_key("walletExternalKey", &key)?;
    Ok(Json(wallet::get(&state, &principal, &key).await?))
}
