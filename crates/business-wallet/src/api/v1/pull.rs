//! Pull delivery: `GET .../integration-channels/{channelExternalKey}/events` fetches the next
//! batch of a PULL channel's events and `POST .../events/commit` acknowledges a fetched batch,
//! under a wallet (`/api/wallets/{walletExternalKey}/...`) and for platform channels
//! (`/api/integration-channels/...`). The bearer token is either the channel's secret
//! (`hmacSecret`) or a JWT with WALLET_INTEGRATION_DELIVERY_CRUD (GLOBAL_WALLET_CRUD for the
//! platform).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::Uri;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::wallet_scope;
use crate::api::doc;
use crate::api::extract::{ApiPath, ApiQuery, AppJson};
use crate::auth::{Authenticator, Principal};
use crate::channels::secrets::HMAC_SECRET_PREFIX;
use crate::domain::pull::{self, Caller, CommitBody, CommitReport, FetchRequest, PullBatch};
use crate::domain::{ChannelKey, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The bearer token of a pull request: a channel secret, or a JWT's principal.
#[derive(Debug)]
pub enum PullCredential {
    /// `Bearer whsec_...`: checked against the channel's secrets.
    ChannelSecret(String),
    /// A validated JWT.
    Principal(Principal),
}

impl PullCredential {
    fn caller(&self) -> Caller<'_> {
        match self {
            PullCredential::ChannelSecret(token) => Caller::ChannelSecret(token),
            PullCredential::Principal(principal) => Caller::Principal(principal),
        }
    }
}

impl<S> FromRequestParts<S> for PullCredential
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let secret = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| t.starts_with(HMAC_SECRET_PREFIX));
        match secret {
            Some(secret) => Ok(PullCredential::ChannelSecret(secret.to_string())),
            None => Ok(PullCredential::Principal(
                Principal::from_request_parts(parts, state).await?,
            )),
        }
    }
}

/// The query of a fetch.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FetchQuery {
    /// Continue after this batch: the `cursor` of an earlier fetch. Without it the fetch
    /// starts at the oldest event waiting (a receiver that restarts passes its last committed
    /// cursor, or none).
    #[param(pattern = r"^p1\.(0|[1-9][0-9]{0,17})\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub cursor: Option<String>,
    /// Most events in the batch, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

fn refused() -> ApiError {
    ApiError::Unauthorized("the bearer token is not a secret of this channel".into())
}

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), ToString::to_string)
}

async fn fetch(
    state: &AppState,
    credential: &PullCredential,
    scope: &Scope,
    key: &str,
    query: &FetchQuery,
    uri: &Uri,
) -> Result<Json<PullBatch>, ApiError> {
    let key = ChannelKey::parse(key)?;
    let url = path_and_query(uri);
    let request = FetchRequest {
        cursor: query.cursor.as_deref(),
        limit: query.limit,
        url: &url,
    };
    let batch = pull::fetch(state, credential.caller(), scope, &key, request).await?;
    batch.map(Json).ok_or_else(refused)
}

async fn commit(
    state: &AppState,
    credential: &PullCredential,
    scope: &Scope,
    key: &str,
    body: &CommitBody,
    uri: &Uri,
) -> Result<Json<CommitReport>, ApiError> {
    let key = ChannelKey::parse(key)?;
    let report = pull::commit(state, credential.caller(), scope, &key, body, uri.path()).await?;
    report.map(Json).ok_or_else(refused)
}

/// Fetches the next batch of a PULL channel's events (CloudEvents in structured mode) and leases it to the caller: events not committed before `leaseExpiresAt` are offered again. Bearer: the channel's `hmacSecret`, or a token with WALLET_INTEGRATION_DELIVERY_CRUD.
#[utoipa::path(
    get,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/events",
    tag = "pull",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel"), FetchQuery),
    responses(
        (status = 200, description = "The next batch (possibly empty)", body = PullBatch),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
    ),
    security(("bearer" = []))
)]
pub async fn wallet_fetch_events(
    State(state): State<AppState>,
    credential: PullCredential,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<FetchQuery>,
    uri: Uri,
) -> Result<Json<PullBatch>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    fetch(&state, &credential, &scope, &key, &query, &uri).await
}

/// Acknowledges a fetched batch: its events become DELIVERED. Events whose lease ended before the commit are fetched again. Bearer: the channel's `hmacSecret`, or a token with WALLET_INTEGRATION_DELIVERY_CRUD.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/events/commit",
    tag = "pull",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    request_body = CommitBody,
    responses(
        (status = 200, description = "What was acknowledged", body = CommitReport),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
    ),
    security(("bearer" = []))
)]
pub async fn wallet_commit_events(
    State(state): State<AppState>,
    credential: PullCredential,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
    uri: Uri,
    AppJson(body): AppJson<CommitBody>,
) -> Result<Json<CommitReport>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    commit(&state, &credential, &scope, &key, &body, &uri).await
}

/// Fetches the next batch of a platform PULL channel's events, as for a wallet's channel. Bearer: the channel's `hmacSecret`, or a token with GLOBAL_WALLET_CRUD.
#[utoipa::path(
    get,
    path = "/api/integration-channels/{channelExternalKey}/events",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel"), FetchQuery),
    responses(
        (status = 200, description = "The next batch (possibly empty)", body = PullBatch),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
    ),
    security(("bearer" = []))
)]
pub async fn platform_fetch_events(
    State(state): State<AppState>,
    credential: PullCredential,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<FetchQuery>,
    uri: Uri,
) -> Result<Json<PullBatch>, ApiError> {
    fetch(&state, &credential, &Scope::Platform, &key, &query, &uri).await
}

/// Acknowledges a fetched batch of a platform PULL channel, as for a wallet's channel. Bearer: the channel's `hmacSecret`, or a token with GLOBAL_WALLET_CRUD.
#[utoipa::path(
    post,
    path = "/api/integration-channels/{channelExternalKey}/events/commit",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    request_body = CommitBody,
    responses(
        (status = 200, description = "What was acknowledged", body = CommitReport),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::PayloadTooLarge),
    ),
    security(("bearer" = []))
)]
pub async fn platform_commit_events(
    State(state): State<AppState>,
    credential: PullCredential,
    ApiPath(key): ApiPath<String>,
    uri: Uri,
    AppJson(body): AppJson<CommitBody>,
) -> Result<Json<CommitReport>, ApiError> {
    commit(&state, &credential, &Scope::Platform, &key, &body, &uri).await
}
