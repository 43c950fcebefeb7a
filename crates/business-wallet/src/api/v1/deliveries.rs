//! The deliveries log: `/api/wallets/{walletExternalKey}/integration-deliveries` for a
//! wallet's channels and `/api/integration-deliveries` for platform channels.

use axum::extract::{RawQuery, State};
use axum::Json;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Required};
use utoipa::IntoParams;

use crate::api::doc;
use crate::api::extract::{external_key, ApiPath};
use crate::auth::Principal;
use crate::domain::delivery::{self, BulkReplay, Delivery, DeliveryDetail, DeliveryPage, Transition};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::delivery_log::Scope;

/// The filters of the deliveries log as [`delivery::parse_log_query`] reads them, for the
/// OpenAPI description (the query is parsed by hand, so that `state` may repeat).
pub enum LogFilters {}

impl IntoParams for LogFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = vec![query_param(
            "state",
            "States to list, repeated or comma-separated, in any letter case: PENDING, DELIVERING, \
             DELIVERED, FAILED, DISMISSED, `active` (PENDING, DELIVERING, FAILED: the default) or \
             `all`.",
            ArrayBuilder::new()
                .items(doc::one_of_pattern(state_list_pattern()))
                .into(),
        )];
        params.extend(ReplayFilters::into_params(|| Some(ParameterIn::Query)));
        params.push(query_param(
            "cursor",
            "A previous page's `nextCursor`.",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(i64::MAX))
                .into(),
        ));
        params.push(query_param(
            "limit",
            "Page size, 1 to 200 (default 50).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(200))
                .into(),
        ));
        params
    }
}

/// The filters that select the FAILED deliveries a bulk replay replays.
pub enum ReplayFilters {}

impl IntoParams for ReplayFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            query_param("channel", "Only this channel's deliveries.", doc::uuid().into()),
            query_param(
                "eventType",
                "Only events of this catalog type.",
                doc::one_of_strings(crate::events::CATALOG.iter().map(|e| e.type_name)).into(),
            ),
            query_param(
                "eventId",
                "Only deliveries of this event (its CloudEvents `id`).",
                doc::uuid().into(),
            ),
            query_param(
                "from",
                "Created at or after this time (RFC 3339).",
                doc::date_time().into(),
            ),
            query_param("to", "Created before this time (RFC 3339).", doc::date_time().into()),
        ]
    }
}

fn query_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// One `state` value: comma-separated state names in any ASCII letter case, each with optional
/// blanks around it (empty items are skipped).
fn state_list_pattern() -> String {
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
            .collect()
    };
    let mut words: Vec<String> = delivery::STATES.iter().map(|s| any_case(s)).collect();
    words.push(any_case("active"));
    words.push(any_case("all"));
    let item = format!("[{ws}]*(?:{})?[{ws}]*", words.join("|"), ws = doc::WS);
    format!("^{item}(?:,{item})*$")
}

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
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), LogFilters),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        doc::SecuredLookup,
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
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        doc::SecuredLookup,
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
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now PENDING", body = Delivery),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
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
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now DISMISSED", body = Delivery),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
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
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ReplayFilters),
    responses(
        (status = 200, description = "How many were replayed", body = BulkReplay),
        doc::SecuredLookup,
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
    params(LogFilters),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        doc::Secured,
    ),
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
    params(("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        doc::SecuredLookup,
    ),
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
    params(("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now PENDING", body = Delivery),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
    ),
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
    params(("deliveryExternalKey" = uuid::Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, now DISMISSED", body = Delivery),
        doc::SecuredLookup,
        (status = 409, response = doc::Conflict),
    ),
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
    params(ReplayFilters),
    responses(
        (status = 200, description = "How many were replayed", body = BulkReplay),
        doc::Secured,
    ),
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
