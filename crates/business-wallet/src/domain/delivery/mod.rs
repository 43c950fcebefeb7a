//! Deliveries as the product names them, and the deliveries log as operators see it.
//!
//! - [`state`]: [`DeliveryState`], [`AttemptOutcome`] and [`Resolution`], the vocabulary of a
//!   delivery's life and its one spelling as stored TEXT.
//! - [`query`]: the log's filters as a URL carries them.
//! - Here: listing with filters, one delivery with every attempt, and the manual transitions
//!   replay and dismiss, each recorded in the audit log.

mod query;
mod state;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::Object;
use utoipa::{PartialSchema as _, ToSchema};

pub use query::{parse_log_query, LogQuery};
pub use state::{AttemptOutcome, DeliveryState, Resolution, UnknownValue};

use super::history::{self, HistoryAction};
use super::ids::{ChannelKey, DeliveryKey, WalletKey};
use super::scope::{authorize, Scope};
use crate::auth::{Authority, Principal};
use crate::domain::error::DomainError;
use crate::events::CloudEvent;
use crate::state::AppState;
use crate::store::deliveries::AttemptRow;
use crate::store::delivery_log::{self, DeliveryRow, Filter};
use crate::store::{self, rfc3339_ms};

/// One row of the deliveries log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Public key of the delivery.
    #[schema(value_type = String)]
    pub delivery_external_key: DeliveryKey,
    /// PENDING, DELIVERING, DELIVERED, FAILED or DISMISSED.
    #[schema(value_type = String)]
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    /// Attempts allowed before FAILED.
    pub max_attempts: i64,
    /// The channel.
    #[schema(value_type = String)]
    pub channel_external_key: ChannelKey,
    /// The channel's name.
    pub channel_name: String,
    /// The channel's type.
    pub channel_type: String,
    /// CloudEvents type of the event.
    pub event_type: String,
    /// CloudEvents id of the event (the receivers' dedupe key).
    pub event_id: String,
    /// The wallet the event belongs to.
    #[schema(value_type = String)]
    pub wallet_external_key: WalletKey,
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
    /// When the integration data of the event was erased on request (its `data` is then
    /// `null`, and its attempts keep no request or response); `null` when it was not.
    pub data_erased_at: Option<String>,
    /// On a channel with PER_WALLET ordering, a PENDING delivery that waits for an earlier one
    /// of its wallet: that delivery (the oldest not yet delivered; replaying or dismissing it
    /// when FAILED releases this one). `null` otherwise.
    #[schema(value_type = Option<String>)]
    pub waiting_behind: Option<DeliveryKey>,
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
            data_erased_at: row.event_erased_at.map(rfc3339_ms),
            waiting_behind: row.waiting_behind.clone(),
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
    /// What was sent (method, URL, headers with secrets redacted, body); null once the
    /// wallet's integration data was erased.
    #[schema(value_type = Option<Object>)]
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
    /// Response headers, `[name, value]` pairs in receiving order (none once erased).
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
            // None recorded (or erased): an empty list, as the schema has it.
            headers: match parse(row.response_headers.clone()) {
                Value::Null => Value::Array(Vec::new()),
                headers => headers,
            },
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

/// Result of a bulk dismiss.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkDismiss {
    /// How many FAILED deliveries were moved to DISMISSED.
    pub dismissed: u64,
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
) -> Result<DeliveryPage, DomainError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryRead).await?;
    let rows = delivery_log::list(&state.db, scope, &query.filter, query.cursor, query.limit + 1).await?;
    let (rows, next_cursor) = super::page::split(rows, query.limit, |r| r.id);
    Ok(DeliveryPage {
        next_cursor,
        items: rows.iter().map(Delivery::from).collect(),
    })
}

fn delivery_not_found(key: &DeliveryKey) -> DomainError {
    DomainError::NotFound(format!("delivery {key} does not exist"))
}

/// One delivery with its event and attempts.
///
/// # Errors
/// 403/404; database failure.
pub async fn detail(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &DeliveryKey,
) -> Result<DeliveryDetail, DomainError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryRead).await?;
    let row = delivery_log::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| delivery_not_found(key))?;
    let event = delivery_log::event_of(&state.db, &row.event_id)
        .await?
        .map(|e| CloudEvent::from_row(&e))
        .transpose()
        .map_err(DomainError::internal)?;
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

impl Transition {
    /// The state it moves a FAILED delivery to.
    fn target(self) -> DeliveryState {
        match self {
            Transition::Replay => DeliveryState::Pending,
            Transition::Dismiss => DeliveryState::Dismissed,
        }
    }
}

/// Replays or dismisses one FAILED delivery and records it in the audit log, atomically.
///
/// # Errors
/// 403/404; 409 when the delivery is not FAILED.
pub async fn transition(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &DeliveryKey,
    transition: Transition,
) -> Result<Delivery, DomainError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let changed = delivery_log::transition(&mut tx, scope, key, transition.target(), now).await?;
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
        return Err(DomainError::Conflict(format!(
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
) -> Result<BulkReplay, DomainError> {
    let replayed = transition_matching(state, principal, scope, filter, Transition::Replay).await?;
    Ok(BulkReplay { replayed })
}

/// How many FAILED deliveries match the filter now: what a bulk replay or dismissal with it
/// would move (shown before one is confirmed). Needs the authority to move them.
///
/// # Errors
/// 403/404; database failure.
pub async fn count_failed_matching(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    filter: &Filter,
) -> Result<u64, DomainError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
    let count = delivery_log::count_failed_matching(&state.db, scope, filter).await?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Dismisses every FAILED delivery matching the filter; one audit entry records the count.
///
/// # Errors
/// 403/404; database failure.
pub async fn dismiss_matching(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    filter: &Filter,
) -> Result<BulkDismiss, DomainError> {
    let dismissed = transition_matching(state, principal, scope, filter, Transition::Dismiss).await?;
    Ok(BulkDismiss { dismissed })
}

/// Moves every FAILED delivery matching the filter as `transition` says and records the count
/// in the audit log, in one transaction; nothing is recorded when none matched.
async fn transition_matching(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    filter: &Filter,
    transition: Transition,
) -> Result<u64, DomainError> {
    authorize(state, principal, scope, Authority::WalletIntegrationDeliveryCrud).await?;
    let action = match transition {
        Transition::Replay => HistoryAction::DeliveriesReplayed,
        Transition::Dismiss => HistoryAction::DeliveriesDismissed,
    };
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let count = delivery_log::transition_matching(&mut tx, scope, filter, transition.target(), now).await?;
    if count > 0 {
        history::record(
            &mut tx,
            scope,
            action,
            &principal.sub,
            &json!({
                "count": count,
                "channelExternalKey": filter.channel,
                "eventType": filter.event_type,
                "eventId": filter.event_id,
                "walletExternalKey": filter.wallet,
                "from": filter.from.map(rfc3339_ms),
                "to": filter.to.map(rfc3339_ms),
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if count > 0 && transition == Transition::Replay {
        state.outbox.committed();
    }
    Ok(count)
}
