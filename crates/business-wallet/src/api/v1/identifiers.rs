//! `/api/v1/wallets/{walletExternalKey}/identifiers`: create and read a wallet's identifiers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::doc;
use crate::api::extract::{ApiPath, AppJson, CorrelationId};
use crate::auth::Principal;
use crate::domain::identifier::{self, CreateIdentifier, Identifier};
use crate::domain::{IdentifierKey, WalletKey};
use crate::error::ApiError;
use crate::events::TraceContext;
use crate::state::AppState;

/// Creates an identifier (DID, X509 or JWK) with fresh key material and emits
/// `com.credenco.businesswallet.identifier.created.v1` with it.
#[utoipa::path(
    post,
    path = "/api/v1/wallets/{walletExternalKey}/identifiers",
    tag = "identifiers",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet's external key (UUID)")),
    request_body = CreateIdentifier,
    responses(
        (status = 201, description = "The identifier was created", body = Identifier),
        doc::SecuredLookup,
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn create_identifier(
    State(state): State<AppState>,
    principal: Principal,
    correlation: CorrelationId,
    trace: TraceContext,
    ApiPath(wallet): ApiPath<String>,
    AppJson(body): AppJson<CreateIdentifier>,
) -> Result<(StatusCode, Json<Identifier>), ApiError> {
    let wallet = WalletKey::parse(&wallet)?;
    let created = identifier::create(&state, &principal, &correlation.0, &trace, &wallet, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists a wallet's identifiers, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletExternalKey}/identifiers",
    tag = "identifiers",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet's external key (UUID)")),
    responses(
        (status = 200, description = "The identifiers, oldest first", body = Vec<Identifier>),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn list_identifiers(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
) -> Result<Json<Vec<Identifier>>, ApiError> {
    let wallet = WalletKey::parse(&wallet)?;
    Ok(Json(identifier::list(&state, &principal, &wallet).await?))
}

/// Reads one identifier.
#[utoipa::path(
    get,
    path = "/api/v1/wallets/{walletExternalKey}/identifiers/{identifierExternalKey}",
    tag = "identifiers",
    params(
        ("walletExternalKey" = uuid::Uuid, Path, description = "The wallet's external key (UUID)"),
        ("identifierExternalKey" = uuid::Uuid, Path, description = "The identifier's external key (UUID)"),
    ),
    responses(
        (status = 200, description = "The identifier", body = Identifier),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn get_identifier(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, id)): ApiPath<(String, String)>,
) -> Result<Json<Identifier>, ApiError> {
    let wallet = WalletKey::parse(&wallet)?;
    let id = IdentifierKey::parse(&id)?;
    Ok(Json(identifier::get(&state, &principal, &wallet, &id).await?))
}
