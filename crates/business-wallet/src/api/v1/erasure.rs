//! Erasure of a wallet's integration data on request:
//! `POST /api/wallets/{walletExternalKey}/integration-data/erase`.
//!
//! The route sits with the other integration routes of a wallet (`integration-channels`,
//! `integration-deliveries` under `/api/wallets/...`), and is a `POST` of an action, like
//! `replay`, `dismiss` and `rotate-secret`: the rows stay (the audit trail), so it is not the
//! `DELETE` of a resource.

use axum::extract::State;
use axum::Json;

use crate::api::doc;
use crate::api::extract::ApiPath;
use crate::auth::Principal;
use crate::domain::erasure::{self, Erasure};
use crate::domain::WalletKey;
use crate::error::ApiError;
use crate::state::AppState;

/// Erases the integration data of a wallet's events (GLOBAL_WALLET_CRUD): the event data and
/// the stored requests and responses of every attempt, for its own channels and the platform
/// channels. Ids, types, states, times, statuses and errors stay for the audit trail. Its
/// PENDING, DELIVERING and FAILED deliveries are DISMISSED, so nothing goes out with the
/// erased payload. Recorded in the wallet's audit log as INTEGRATION_DATA_ERASED with the
/// counts; repeating it counts only what it changed.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-data/erase",
    tag = "erasure",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet")),
    responses(
        (status = 200, description = "What was erased and dismissed", body = Erasure),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn erase_wallet_integration_data(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
) -> Result<Json<Erasure>, ApiError> {
    let wallet = WalletKey::parse(&wallet)?;
    Ok(Json(erasure::erase(&state, &principal, &wallet).await?))
}
