//! The deliveries log: `/api/wallets/{walletExternalKey}/integration-deliveries` for a
//! wallet's channels and `/api/integration-deliveries` for platform channels.

use axum::extract::{RawQuery, State};
use axum::Json;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, Required};
use utoipa::IntoParams;

use super::wallet_scope;
use crate::api::doc;
use crate::api::extract::ApiPath;
use crate::auth::Principal;
use crate::domain::delivery::{
    self, BulkDismiss, BulkReplay, Delivery, DeliveryDetail, DeliveryPage, DeliveryState, Transition,
};
use crate::domain::{DeliveryKey, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The filters of the deliveries log as [`delivery::parse_log_query`] reads them, for the
/// OpenAPI description (the query is parsed by hand, so that `state` may repeat).
pub enum LogFilters {}

impl IntoParams for LogFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = vec![query_param(
            "state",
            "States to list, one per `state` parameter (`state=FAILED&state=PENDING`): PENDING, \
             DELIVERING, DELIVERED, FAILED, DISMISSED, `active` (PENDING, DELIVERING, FAILED: the \
             default) or `all`. The server also takes several in one value, comma-separated \
             (`state=FAILED,PENDING`), and ignores letter case and blanks around each.",
            ArrayBuilder::new().items(doc::one_of_strings(state_values())).into(),
        )];
        params.extend(ReplayFilters::into_params(|| Some(ParameterIn::Query)));
        params.push(query_param(
            "cursor",
            "Where the page starts: a previous page's `nextCursor` (a positive whole number, as \
             text).",
            doc::one_of_pattern(cursor_pattern()).into(),
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

/// The filters that select the FAILED deliveries a bulk replay replays or a bulk dismiss dismisses.
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
                "wallet",
                "Only deliveries of this wallet's events (on the platform routes, whose channels \
                 get the events of every wallet).",
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

/// The values of one `state` parameter as described: the state names and the two sets.
fn state_values() -> Vec<&'static str> {
    let mut values: Vec<&'static str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
    values.extend(["active", "all"]);
    values
}

/// A `cursor` as [`delivery::parse_log_query`] takes it: a whole number from 1 to the largest
/// row id (`i64::MAX`), with an optional `+`, leading zeros and blanks around it.
fn cursor_pattern() -> String {
    format!(
        "^[{ws}]*\\+?0*{number}[{ws}]*$",
        ws = doc::WS,
        number = doc::whole_number_up_to(i64::MAX as u64)
    )
}

/// Lists a wallet's deliveries, newest first. Filters: `state` (repeatable or comma-separated;
/// default `active` = PENDING, DELIVERING, FAILED; `all` for every state), `channel`,
/// `eventType`, `eventId`, `wallet`, `from`, `to` (RFC 3339), `cursor`, `limit`.
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
    let key = DeliveryKey::parse(&key)?;
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
    let key = DeliveryKey::parse(&key)?;
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
    let key = DeliveryKey::parse(&key)?;
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

/// Dismisses every FAILED delivery that matches the filters of the query string (the same
/// filters as the bulk replay); one audit entry records the count.
#[utoipa::path(
    post,
    path = "/api/wallets/{walletExternalKey}/integration-deliveries/dismiss",
    tag = "deliveries",
    params(("walletExternalKey" = uuid::Uuid, Path, description = "The wallet"), ReplayFilters),
    responses(
        (status = 200, description = "How many were dismissed", body = BulkDismiss),
        doc::SecuredLookup,
    ),
    security(("bearer" = []))
)]
pub async fn bulk_dismiss_wallet_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(wallet): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<BulkDismiss>, ApiError> {
    let scope = wallet_scope(&wallet)?;
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(
        delivery::dismiss_matching(&state, &principal, &scope, &query.filter).await?,
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
    let key = DeliveryKey::parse(&key)?;
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
    let key = DeliveryKey::parse(&key)?;
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
    let key = DeliveryKey::parse(&key)?;
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

/// Dismisses every FAILED platform delivery matching the query's filters.
#[utoipa::path(
    post,
    path = "/api/integration-deliveries/dismiss",
    tag = "platform",
    params(ReplayFilters),
    responses(
        (status = 200, description = "How many were dismissed", body = BulkDismiss),
        doc::Secured,
    ),
    security(("bearer" = []))
)]
pub async fn bulk_dismiss_platform_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
) -> Result<Json<BulkDismiss>, ApiError> {
    let query = delivery::parse_log_query(query.as_deref())?;
    Ok(Json(
        delivery::dismiss_matching(&state, &principal, &Scope::Platform, &query.filter).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(name: &str, value: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish()
    }

    /// What the description allows is what the parser takes.
    #[test]
    fn the_described_filters_are_the_parsed_ones() {
        let pattern = cursor_pattern();
        for cursor in [
            "1",
            "42",
            " 7\t",
            "+5",
            "007",
            "\u{3000}3",
            "9223372036854775807",
            "09223372036854775807",
            "0",
            "00",
            "+",
            "",
            "-1",
            "1a",
            "1 2",
            "9223372036854775808",
            "18446744073709551616",
        ] {
            let allowed = jsonschema::is_valid(&serde_json::json!({ "pattern": pattern }), &serde_json::json!(cursor));
            let parsed = delivery::parse_log_query(Some(&encoded("cursor", cursor))).is_ok();
            assert_eq!(allowed, parsed, "cursor {cursor:?}");
        }
        for state in state_values() {
            let query = delivery::parse_log_query(Some(&encoded("state", state))).unwrap();
            assert!(!query.filter.states.is_empty(), "{state}");
        }
    }
}
