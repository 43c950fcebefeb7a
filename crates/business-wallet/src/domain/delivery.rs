//! Deliveries as the product names them, and the deliveries log as operators see it.
//!
//! - [`DeliveryState`] and [`AttemptOutcome`]: the closed sets of values stored as TEXT in
//!   `integration_delivery.state` and `integration_delivery_attempt.outcome`. Their spellings
//!   are written down here and nowhere else; the store binds and decodes the enums.
//! - [`Resolution`]: what an attempt decides for its delivery, and the state that follows.
//! - The log: listing with filters, one delivery with every attempt, and the manual transitions
//!   replay and dismiss, each recorded in the audit log.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::Object;
use utoipa::{PartialSchema as _, ToSchema};

use super::history::{self, HistoryAction};
use super::scope::{authorize, Scope};
use crate::auth::{Authority, Principal};
use crate::error::ApiError;
use crate::events::{self, CloudEvent};
use crate::state::AppState;
use crate::store::deliveries::AttemptRow;
use crate::store::delivery_log::{self, DeliveryRow, Filter};
use crate::store::{self, rfc3339_ms};

/// Text that is none of the spellings of a closed set of stored values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    /// Which set, e.g. `delivery state`.
    pub what: &'static str,
    /// The text that was read.
    pub value: String,
}

/// Declares a closed set of values stored as TEXT: the enum, the one spelling of each variant
/// (`as_str`, [`FromStr`](std::str::FromStr), `Display`, JSON), every variant in declaration
/// order (`ALL`), and how sqlx binds and decodes it on every backend (as the spelling's text,
/// so the stored values are exactly those written here).
macro_rules! stored_text {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and shown) spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            /// The value spelled exactly `text` (letter case included).
            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: text.to_string(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

stored_text! {
    /// The state of a delivery (`integration_delivery.state`).
    pub enum DeliveryState ("delivery state") {
        /// Waiting for its first attempt or, between retries, for the next one.
        Pending = "PENDING",
        /// Leased by a dispatcher: an attempt is under way (or its dispatcher died and the
        /// lease has yet to end).
        Delivering = "DELIVERING",
        /// The receiver accepted it.
        Delivered = "DELIVERED",
        /// Rejected, or out of attempts: waits for an operator to replay or dismiss it.
        Failed = "FAILED",
        /// Failed and put aside by an operator; kept by the retention job.
        Dismissed = "DISMISSED",
    }
}

impl DeliveryState {
    /// The default filter of the log: everything that still needs attention or is under way.
    pub const ACTIVE: &'static [DeliveryState] =
        &[DeliveryState::Pending, DeliveryState::Delivering, DeliveryState::Failed];
}

stored_text! {
    /// How one attempt ended (`integration_delivery_attempt.outcome`, and the `outcome` label
    /// of the attempts metric): the kind of a channel's [`Outcome`](crate::channels::Outcome).
    pub enum AttemptOutcome ("attempt outcome") {
        /// The receiver accepted the event.
        Delivered = "DELIVERED",
        /// A failure that may go away by sending again later.
        Retryable = "RETRYABLE",
        /// A failure that sending again will not mend.
        Rejected = "REJECTED",
    }
}

/// What an attempt decides for its delivery (see [`crate::dispatch::retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Done.
    Delivered,
    /// Attempted again after this delay.
    Retry {
        /// From when the outcome is stored.
        delay: Duration,
    },
    /// Given up; an operator may replay it.
    Failed,
}

impl Resolution {
    /// The delivery's state once the resolution is stored.
    pub fn state(self) -> DeliveryState {
        match self {
            Resolution::Delivered => DeliveryState::Delivered,
            Resolution::Retry { .. } => DeliveryState::Pending,
            Resolution::Failed => DeliveryState::Failed,
        }
    }
}

/// One row of the deliveries log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Public key of the delivery.
    pub delivery_external_key: String,
    /// PENDING, DELIVERING, DELIVERED, FAILED or DISMISSED.
    #[schema(value_type = String)]
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    /// Attempts allowed before FAILED.
    pub max_attempts: i64,
    /// The channel.
    pub channel_external_key: String,
    /// The channel's name.
    pub channel_name: String,
    /// The channel's type.
    pub channel_type: String,
    /// CloudEvents type of the event.
    pub event_type: String,
    /// CloudEvents id of the event (the receivers' dedupe key).
    pub event_id: String,
    /// The wallet the event belongs to.
    pub wallet_external_key: String,
    /// When the delivery was created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// When the next attempt is due (PENDING only).
    pub next_attempt_at: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<String>,
    /// Status of the last attempt (HTTP status for webhooks).
    pub last_status: Option<i64>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
}

impl From<&DeliveryRow> for Delivery {
    fn from(row: &DeliveryRow) -> Self {
        Delivery {
            delivery_external_key: row.delivery_external_key.clone(),
            state: row.state,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            channel_external_key: row.channel_external_key.clone(),
            channel_name: row.channel_name.clone(),
            channel_type: row.channel_type.clone(),
            event_type: row.event_type.clone(),
            event_id: row.event_id.clone(),
            wallet_external_key: row.event_wallet_external_key.clone(),
            created_at: rfc3339_ms(row.created_at),
            updated_at: rfc3339_ms(row.updated_at),
            next_attempt_at: (row.state == DeliveryState::Pending).then(|| rfc3339_ms(row.due_at)),
            delivered_at: row.delivered_at.map(rfc3339_ms),
            last_status: row.last_status,
            last_error: row.last_error.clone(),
        }
    }
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One attempt as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// Attempt number, from 1.
    pub attempt: i64,
    /// When it started.
    pub started_at: String,
    /// How long it took.
    pub duration_ms: i64,
    /// DELIVERED, RETRYABLE or REJECTED.
    #[schema(value_type = String)]
    pub outcome: AttemptOutcome,
    /// What was sent (method, URL, headers with secrets redacted, body).
    #[schema(value_type = Object)]
    pub request: Value,
    /// What came back, when anything did.
    pub response: Option<ResponseView>,
    /// Why it did not succeed.
    pub error: Option<String>,
}

/// A recorded response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseView {
    /// Status code (or broker code).
    pub status: Option<i64>,
    /// Response headers, `[name, value]` pairs in receiving order.
    #[schema(schema_with = crate::api::doc::header_pairs)]
    pub headers: Value,
    /// The start of the body, up to the configured size.
    pub body: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        let response = (row.response_status.is_some() || row.response_body.is_some()).then(|| ResponseView {
            status: row.response_status,
            headers: parse(row.response_headers.clone()),
            body: row.response_body.clone(),
        });
        AttemptView {
            attempt: row.attempt,
            started_at: rfc3339_ms(row.started_at),
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            request: parse(row.request),
            response,
            error: row.error,
        }
    }
}

/// A delivery with its event and every attempt. In its JSON, `attempts` is the list of attempts
/// (the count of the list view is left out: the two cannot share the key).
#[derive(Debug)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: Delivery,
    /// The CloudEvent being delivered.
    pub event: Option<CloudEvent>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

impl Serialize for DeliveryDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap as _};
        let Value::Object(fields) = serde_json::to_value(&self.delivery).map_err(S::Error::custom)? else {
            return Err(S::Error::custom("a delivery serializes to an object"));
        };
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in fields.iter().filter(|(key, _)| key.as_str() != "attempts") {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("event", &self.event)?;
        map.serialize_entry("attempts", &self.attempts)?;
        map.end()
    }
}

impl utoipa::PartialSchema for DeliveryDetail {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema, Type};
        use utoipa::openapi::{Ref, RefOr};
        // The list view's schema, with `attempts` as the list and the event added.
        let RefOr::T(Schema::Object(mut object)) = Delivery::schema() else {
            unreachable!("Delivery's schema is an object");
        };
        object.description = Some("A delivery with its CloudEvent and every attempt, oldest first.".into());
        object.properties.insert(
            "attempts".into(),
            ArrayBuilder::new()
                .items(Ref::from_schema_name("AttemptView"))
                .description(Some("Every attempt, oldest first."))
                .into(),
        );
        object.properties.insert(
            "event".into(),
            OneOfBuilder::new()
                .item(Object::with_type(Type::Null))
                .item(Ref::from_schema_name("CloudEvent"))
                .description(Some("The CloudEvent being delivered."))
                .into(),
        );
        if !object.required.iter().any(|r| r == "event") {
            object.required.push("event".into());
        }
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for DeliveryDetail {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("AttemptView".into(), AttemptView::schema()));
        schemas.push(("ResponseView".into(), ResponseView::schema()));
        schemas.push(("CloudEvent".into(), CloudEvent::schema()));
        AttemptView::schemas(schemas);
    }
}

/// Result of a bulk replay.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkReplay {
    /// How many FAILED deliveries were moved back to PENDING.
    pub replayed: u64,
}

/// The query of the log, parsed from the URL.
#[derive(Debug, Default)]
pub struct LogQuery {
    /// Filters.
    pub filter: Filter,
    /// Cursor (exclusive upper bound of row ids).
    pub cursor: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Parses `state` (repeatable or comma-separated; `active` and `all` are shorthands), `channel`,
/// `eventType`, `eventId`, `from`, `to` (RFC 3339), `cursor` and `limit` (1 to 200, default 50).
///
/// # Errors
/// 400 naming the bad parameter.
pub fn parse_log_query(query: Option<&str>) -> Result<LogQuery, ApiError> {
    let mut parsed = LogQuery {
        limit: 50,
        ..LogQuery::default()
    };
    let mut states: Vec<DeliveryState> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim().to_string();
        match key.as_ref() {
            "state" | "states" => {
                for state in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match state.to_ascii_uppercase().as_str() {
                        "ACTIVE" => states.extend_from_slice(DeliveryState::ACTIVE),
                        "ALL" => states.extend_from_slice(DeliveryState::ALL),
                        named => match named.parse() {
                            Ok(named) => states.push(named),
                            Err(_) => return Err(ApiError::invalid_field("state", format!("unknown state `{state}`"))),
                        },
                    }
                }
            }
            "channel" | "channelExternalKey" => {
                parsed.filter.channel = Some(crate::api::extract::external_key("channel", &value)?)
            }
            "eventType" => {
                if events::lookup(&value).is_none() {
                    return Err(ApiError::invalid_field(
                        "eventType",
                        format!("unknown event type `{value}`"),
                    ));
                }
                parsed.filter.event_type = Some(value)
            }
            "eventId" => parsed.filter.event_id = Some(crate::api::extract::external_key("eventId", &value)?),
            "from" => parsed.filter.from = Some(parse_time("from", &value)?),
            "to" => parsed.filter.to = Some(parse_time("to", &value)?),
            "cursor" => {
                parsed.cursor = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor from this log"))?,
                )
            }
            "limit" => {
                parsed.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=200).contains(l))
                    .ok_or_else(|| ApiError::invalid_field("limit", "must be a number from 1 to 200"))?
            }
            other => return Err(ApiError::invalid_field(other, "is not a filter of the deliveries log")),
        }
    }
    if states.is_empty() {
        states = DeliveryState::ACTIVE.to_vec();
    }
    states.sort();
    states.dedup();
    parsed.filter.states = states;
    Ok(parsed)
}

fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid_field(field, format!("`{value}` is not an RFC 3339 time")))
}

/// One page of the log.
///
/// # Errors
/// 403/404 as [`authorize`](super::scope::authorize); database failure.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    query: &LogQuery,
) -> Result<DeliveryPage, ApiError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryRead).await?;
    let rows = delivery_log::list(&state.db, scope, &query.filter, query.cursor, query.limit + 1).await?;
    let (rows, next_cursor) = super::page::split(rows, query.limit, |r| r.id);
    Ok(DeliveryPage {
        next_cursor,
        items: rows.iter().map(Delivery::from).collect(),
    })
}

fn delivery_not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("delivery {key} does not exist"))
}

/// One delivery with its event and attempts.
///
/// # Errors
/// 403/404; database failure.
pub async fn detail(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &str,
) -> Result<DeliveryDetail, ApiError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryRead).await?;
    let row = delivery_log::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| delivery_not_found(key))?;
    let event = delivery_log::event_of(&state.db, &row.event_id)
        .await?
        .map(|e| CloudEvent::from_row(&e))
        .transpose()
        .map_err(ApiError::internal)?;
    let attempts = delivery_log::attempts(&state.db, row.id).await?;
    Ok(DeliveryDetail {
        delivery: Delivery::from(&row),
        event,
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    })
}

/// What an operator does to a FAILED delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// FAILED -> PENDING, attempts reset.
    Replay,
    /// FAILED -> DISMISSED.
    Dismiss,
}

/// Replays or dismisses one FAILED delivery and records it in the audit log, atomically.
///
/// # Errors
/// 403/404; 409 when the delivery is not FAILED.
pub async fn transition(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &str,
    transition: Transition,
) -> Result<Delivery, ApiError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let changed = match transition {
        Transition::Replay => delivery_log::replay(&mut tx, scope, key, now).await?,
        Transition::Dismiss => delivery_log::dismiss(&mut tx, scope, key, now).await?,
    };
    if !changed {
        drop(tx);
        let current = delivery_log::find(&state.db, scope, key)
            .await?
            .ok_or_else(|| delivery_not_found(key))?;
        let verb = if transition == Transition::Replay {
            "replayed"
        } else {
            "dismissed"
        };
        return Err(ApiError::Conflict(format!(
            "delivery {key} is {}; only FAILED deliveries can be {verb}",
            current.state
        )));
    }
    let action = match transition {
        Transition::Replay => HistoryAction::DeliveryReplayed,
        Transition::Dismiss => HistoryAction::DeliveryDismissed,
    };
    history::record(
        &mut tx,
        scope,
        action,
        &principal.sub,
        &json!({ "deliveryExternalKey": key }),
        now,
    )
    .await?;
    tx.commit().await?;
    if transition == Transition::Replay {
        state.outbox.committed();
    }
    let row = delivery_log::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| delivery_not_found(key))?;
    Ok(Delivery::from(&row))
}

/// Replays every FAILED delivery matching the filter; one audit entry records the count.
///
/// # Errors
/// 403/404; database failure.
pub async fn replay_matching(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    filter: &Filter,
) -> Result<BulkReplay, ApiError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let replayed = delivery_log::replay_matching(&mut tx, scope, filter, now).await?;
    if replayed > 0 {
        history::record(
            &mut tx,
            scope,
            HistoryAction::DeliveriesReplayed,
            &principal.sub,
            &json!({
                "count": replayed,
                "channelExternalKey": filter.channel,
                "eventType": filter.event_type,
                "from": filter.from.map(rfc3339_ms),
                "to": filter.to.map(rfc3339_ms),
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if replayed > 0 {
        state.outbox.committed();
    }
    Ok(BulkReplay { replayed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_spelling_and_nothing_else_does() {
        for state in DeliveryState::ALL {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(*state));
            assert_eq!(state.to_string(), state.as_str());
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        for outcome in AttemptOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<AttemptOutcome>(), Ok(*outcome));
        }
        let lower = DeliveryState::Pending.as_str().to_ascii_lowercase();
        assert_eq!(
            lower.parse::<DeliveryState>().unwrap_err().to_string(),
            format!("unknown delivery state `{lower}`")
        );
        assert!("active".parse::<DeliveryState>().is_err());
        assert!(DeliveryState::ACTIVE.iter().all(|s| DeliveryState::ALL.contains(s)));
    }

    #[test]
    fn each_resolution_leads_to_its_state() {
        let retry = Resolution::Retry {
            delay: Duration::from_secs(1),
        };
        assert_eq!(Resolution::Delivered.state(), DeliveryState::Delivered);
        assert_eq!(retry.state(), DeliveryState::Pending);
        assert_eq!(Resolution::Failed.state(), DeliveryState::Failed);
    }
}
