//! `/api/v1/wallets`: create, list and read wallets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::doc;
use crate::api::extract::{ApiPath, ApiQuery, AppJson, CorrelationId};
use crate::auth::Principal;
use crate::domain::wallet::{self, CreateWallet, ListQuery, Wallet, WalletPage};
use crate::domain::WalletKey;
use crate::error::ApiError;
use crate::events::TraceContext;
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
    trace: TraceContext,
    AppJson(body): AppJson<CreateWallet>,
) -> Result<(StatusCode, Json<Wallet>), ApiError> {
    let wallet = wallet::create(&state, &principal, &correlation.0, &trace, body).await?;
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
    let key = WalletKey::parse(&key)?;
    Ok(Json(wallet::get(&state, &principal, &key).await?))
}

/// The query of the wallet list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WalletListQuery {
    /// Only wallets whose display name contains this text, ignoring letter case and accents
    /// ("zurich" finds "Zürich", "ZURICH" and "Zurich"); `%` and `_` match only themselves.
    /// Surrounding blanks are ignored; a blank text selects every wallet.
    #[param(pattern = "^[^\\u0000]*$")]
    pub name: Option<String>,
    /// A previous page's `nextCursor`, passed unchanged (opaque; any other text is refused).
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
}

impl WalletListQuery {
    /// Checks the parameters.
    ///
    /// # Errors
    /// 400 naming `limit` or `cursor`.
    fn parse(self) -> Result<ListQuery, ApiError> {
        let limit = match self.limit {
            None => 50,
            Some(limit) => limit
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| ApiError::invalid_field("limit", "must be a number from 1 to 200"))?,
        };
        Ok(ListQuery::parse(self.name.as_deref(), self.cursor.as_deref(), limit)?)
    }
}

/// Lists wallets in the order they were created, a page at a time. With GLOBAL_WALLET_CRUD
/// every wallet; with a token for one wallet (any authority on it) only that wallet.
#[utoipa::path(
    get,
    path = "/api/v1/wallets",
    tag = "wallets",
    params(WalletListQuery),
    responses(
        (status = 200, description = "A page of wallets; `nextCursor` is null on the last page", body = WalletPage),
        doc::Secured,
    ),
    security(("bearer" = []))
)]
pub async fn list_wallets(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<WalletListQuery>,
) -> Result<Json<WalletPage>, ApiError> {
    let query = query.parse()?;
    Ok(Json(wallet::list(&state, &principal, &query).await?))
}
