//! Channels: `/api/wallets/{walletExternalKey}/integration-channels` for a wallet's own
//! channels and `/api/integration-channels` for platform channels, which receive every
//! wallet's events. The two sets of routes behave the same; platform routes need
//! GLOBAL_WALLET_CRUD.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::wallet_scope;
use crate::api::doc;
use crate::api::extract::{ApiPath, ApiQuery, AppJson};
use crate::auth::Principal;
use crate::channels::TestSendReport;
use crate::domain::channel::{self, ChannelBody, ChannelReplaceBody, ChannelView};
use crate::domain::{ChannelKey, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The event whose sample a test send uses.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TestQuery {
    /// An event type of the catalog; defaults to the channel's first subscription.
    #[serde(rename = "eventType")]
    #[param(schema_with = catalog_event_type)]
    pub event_type: Option<String>,
}

fn catalog_event_type() -> utoipa::openapi::schema::ObjectBuilder {
    doc::one_of_strings(crate::events::CATALOG.iter().map(|e| e.type_name))
}

/// Lists the channels (never their secrets).
#[utoipa::path(
    get,
    path = "/api/wallets/{walletExternalKey}/integration-channels",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet")),
    responses(
        (status = 200, description = "The channels", body = Vec<ChannelView>),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_list_channels(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    Ok(Json(channel::list(&state, &principal, &scope).await?))
}

/// Creates a channel. The answer holds the new `hmacSecret`, the only time it is shown.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet")),
    request_body = ChannelBody,
    responses(
        (status = 201, description = "Created; holds hmacSecret once", body = ChannelView),
        doc::SecuredLookup,
        (status = 412, response = doc::PreconditionFailed),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn wallet_create_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let scope = wallet_scope(&wallet)?;
    Ok((
        StatusCode::CREATED,
        Json(channel::create(&state, &principal, &scope, body).await?),
    ))
}

/// Sends the catalog sample of `eventType` once to an unsaved draft, signed with a throwaway secret. No delivery row, no retry.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels/test",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), TestQuery),
    request_body = ChannelBody,
    responses(
        (status = 200, description = "What happened", body = TestSendReport),
        doc::SecuredLookup,
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn wallet_test_draft(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    ApiQuery(query): ApiQuery<TestQuery>,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<Json<TestSendReport>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    Ok(Json(
        channel::test_draft(&state, &principal, &scope, body, query.event_type.as_deref()).await?,
    ))
}

/// Reads a channel (never its secrets).
#[utoipa::path(
    get,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_get_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::get(&state, &principal, &scope, &key).await?))
}

/// Replaces a channel. Omitted secrets keep their value; the HMAC secret never changes here.
#[utoipa::path(
    put,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    request_body = ChannelReplaceBody,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
        (status = 412, response = doc::PreconditionFailed),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn wallet_replace_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::replace(&state, &principal, &scope, &key, body).await?))
}

/// Deletes a channel and its deliveries.
#[utoipa::path(
    delete,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 204, description = "Deleted"),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_delete_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    channel::delete(&state, &principal, &scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the HMAC secret; the previous one keeps signing during the grace window. The answer holds the new `hmacSecret` once.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/rotate-secret",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "Holds the new hmacSecret once", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::rotate_secret(&state, &principal, &scope, &key).await?))
}

/// Resumes a PAUSED (or FAILING) channel: ACTIVE again, its failures in a row forgotten, and every delivery waiting for it goes out at once in the order it was created. Recorded as CHANNEL_RESUMED and emitted as `integration-channel.state-changed.v1`. Resuming an ACTIVE channel changes nothing.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/resume",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "The channel, ACTIVE", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_resume_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::ladder::resume(&state, &principal, &scope, &key).await?))
}

/// Sends the catalog sample of `eventType` once through the channel, signed with its secrets. No delivery row, no retry.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-channels/{channelExternalKey}/test",
    tag = "channels",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("channelExternalKey" = uuid::Uuid, Path, description = "The channel"), TestQuery),
    responses(
        (status = 200, description = "What happened", body = TestSendReport),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn wallet_test_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((wallet, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<TestQuery>,
) -> Result<Json<TestSendReport>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(
        channel::test_saved(&state, &principal, &scope, &key, query.event_type.as_deref()).await?,
    ))
}

/// Lists the channels (never their secrets).
#[utoipa::path(
    get,
    path = "/api/integration-channels",
    tag = "platform",
    responses(
        (status = 200, description = "The channels", body = Vec<ChannelView>),
        doc::Secured,
    ),
    security(("bearer" = []))
)]
pub async fn platform_list_channels(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let scope = Scope::Platform;
    Ok(Json(channel::list(&state, &principal, &scope).await?))
}

/// Creates a channel. The answer holds the new `hmacSecret`, the only time it is shown.
#[utoipa::path(
    post,
    path = "/api/integration-channels",
    tag = "platform",
    request_body = ChannelBody,
    responses(
        (status = 201, description = "Created; holds hmacSecret once", body = ChannelView),
        doc::Secured,
        (status = 412, response = doc::PreconditionFailed),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn platform_create_channel(
    State(state): State<AppState>,
    principal: Principal,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let scope = Scope::Platform;
    Ok((
        StatusCode::CREATED,
        Json(channel::create(&state, &principal, &scope, body).await?),
    ))
}

/// Sends the catalog sample of `eventType` once to an unsaved draft, signed with a throwaway secret. No delivery row, no retry.
#[utoipa::path(
    post,
    path = "/api/integration-channels/test",
    tag = "platform",
    params(TestQuery),
    request_body = ChannelBody,
    responses(
        (status = 200, description = "What happened", body = TestSendReport),
        doc::Secured,
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn platform_test_draft(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TestQuery>,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<Json<TestSendReport>, ApiError> {
    let scope = Scope::Platform;
    Ok(Json(
        channel::test_draft(&state, &principal, &scope, body, query.event_type.as_deref()).await?,
    ))
}

/// Reads a channel (never its secrets).
#[utoipa::path(
    get,
    path = "/api/integration-channels/{channelExternalKey}",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn platform_get_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::get(&state, &principal, &scope, &key).await?))
}

/// Replaces a channel. Omitted secrets keep their value; the HMAC secret never changes here.
#[utoipa::path(
    put,
    path = "/api/integration-channels/{channelExternalKey}",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    request_body = ChannelReplaceBody,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
        (status = 412, response = doc::PreconditionFailed),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 422, response = doc::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn platform_replace_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    AppJson(body): AppJson<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::replace(&state, &principal, &scope, &key, body).await?))
}

/// Deletes a channel and its deliveries.
#[utoipa::path(
    delete,
    path = "/api/integration-channels/{channelExternalKey}",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 204, description = "Deleted"),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn platform_delete_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    channel::delete(&state, &principal, &scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the HMAC secret; the previous one keeps signing during the grace window. The answer holds the new `hmacSecret` once.
#[utoipa::path(
    post,
    path = "/api/integration-channels/{channelExternalKey}/rotate-secret",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "Holds the new hmacSecret once", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn platform_rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::rotate_secret(&state, &principal, &scope, &key).await?))
}

/// Resumes a PAUSED (or FAILING) platform channel: ACTIVE again, its failures in a row forgotten, and every delivery waiting for it goes out at once in the order it was created. Recorded as CHANNEL_RESUMED. Resuming an ACTIVE channel changes nothing.
#[utoipa::path(
    post,
    path = "/api/integration-channels/{channelExternalKey}/resume",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel")),
    responses(
        (status = 200, description = "The channel, ACTIVE", body = ChannelView),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn platform_resume_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(channel::ladder::resume(&state, &principal, &scope, &key).await?))
}

/// Sends the catalog sample of `eventType` once through the channel, signed with its secrets. No delivery row, no retry.
#[utoipa::path(
    post,
    path = "/api/integration-channels/{channelExternalKey}/test",
    tag = "platform",
    params(("channelExternalKey" = uuid::Uuid, Path, description = "The channel"), TestQuery),
    responses(
        (status = 200, description = "What happened", body = TestSendReport),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn platform_test_channel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<TestQuery>,
) -> Result<Json<TestSendReport>, ApiError> {
    let scope = Scope::Platform;
    let key = ChannelKey::parse(&key)?;
    Ok(Json(
        channel::test_saved(&state, &principal, &scope, &key, query.event_type.as_deref()).await?,
    ))
}
