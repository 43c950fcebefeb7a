//! The read and operator side of deliveries: the filtered, paginated log, one delivery with its
//! attempts, and the manual transitions replay (FAILED -> PENDING) and dismiss
//! (FAILED -> DISMISSED). The dispatcher's own claim and outcome statements live in
//! `store::deliveries`.

use sqlx::FromRow;

use super::deliveries::AttemptRow;
use super::{with_reader, with_tx, Db, Tx};
use crate::domain::delivery::DeliveryState;
use crate::domain::{ChannelKey, DeliveryKey, Scope, WalletKey};

/// Filters of the log; empty means "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// States to include.
    pub states: Vec<DeliveryState>,
    /// Only this channel (external key).
    pub channel: Option<ChannelKey>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this event id.
    pub event_id: Option<String>,
    /// Only events of this wallet (on the platform scope, whose channels get every wallet's).
    pub wallet: Option<WalletKey>,
    /// Created at or after, epoch ms.
    pub from: Option<i64>,
    /// Created before, epoch ms.
    pub to: Option<i64>,
}

/// One delivery with its channel and event.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    /// Row id (cursor).
    pub id: i64,
    /// Public key.
    pub delivery_external_key: DeliveryKey,
    /// State.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// Attempt limit.
    pub max_attempts: i64,
    /// Next attempt (PENDING) or lease end (DELIVERING), epoch ms.
    pub due_at: i64,
    /// Last HTTP status or broker code.
    pub last_status: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Updated, epoch ms.
    pub updated_at: i64,
    /// Delivered, epoch ms.
    pub delivered_at: Option<i64>,
    /// Channel public key.
    pub channel_external_key: ChannelKey,
    /// Channel name.
    pub channel_name: String,
    /// Channel type.
    pub channel_type: String,
    /// CloudEvents id.
    pub event_id: String,
    /// CloudEvents type.
    pub event_type: String,
    /// The event's wallet.
    pub event_wallet_external_key: WalletKey,
    /// When the event's integration data was erased, epoch ms (see [`super::erasure`]).
    pub event_erased_at: Option<i64>,
    /// A PENDING delivery of a PER_WALLET channel that waits: the oldest earlier delivery of the
    /// same channel and wallet that is not delivered yet (the head it waits behind).
    pub waiting_behind: Option<DeliveryKey>,
}

const SELECT: &str = "SELECT d.id, d.delivery_external_key, d.state, d.attempts, d.max_attempts, d.due_at, d.last_status, \
    d.last_error, d.created_at, d.updated_at, d.delivered_at, c.channel_external_key, c.name AS channel_name, \
    c.channel_type, e.event_id, e.event_type, e.wallet_external_key AS event_wallet_external_key, e.erased_at AS event_erased_at, \
    CASE WHEN d.ordering_key IS NOT NULL AND d.state = 'PENDING' AND c.ordering = 'PER_WALLET' THEN \
    (SELECT p.delivery_external_key FROM integration_delivery p WHERE p.channel_id = d.channel_id \
    AND p.ordering_key = d.ordering_key AND p.id < d.id AND p.ordering_key IS NOT NULL \
    AND p.state IN ('PENDING', 'DELIVERING', 'FAILED') ORDER BY p.id LIMIT 1) END AS waiting_behind \
    FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id JOIN integration_event e ON e.id = d.event_id";

/// Parameters collected while building a filtered statement.
enum Param {
    Text(String),
    Int(i64),
    State(DeliveryState),
}

/// Appends the scope and filter conditions; returns the WHERE clause.
fn conditions(scope: &Scope, filter: &Filter, params: &mut Vec<Param>) -> String {
    let next = |p: Param, params: &mut Vec<Param>| {
        params.push(p);
        format!("${}", params.len())
    };
    let mut clauses = Vec::new();
    match scope.wallet() {
        Some(w) => clauses.push(format!(
            "d.wallet_external_key = {}",
            next(Param::Text(w.to_string()), params)
        )),
        None => clauses.push("d.wallet_external_key IS NULL".into()),
    }
    if !filter.states.is_empty() {
        let list: Vec<String> = filter.states.iter().map(|s| next(Param::State(*s), params)).collect();
        clauses.push(format!("d.state IN ({})", list.join(", ")));
    }
    if let Some(channel) = &filter.channel {
        clauses.push(format!(
            "c.channel_external_key = {}",
            next(Param::Text(channel.to_string()), params)
        ));
    }
    if let Some(event_type) = &filter.event_type {
        clauses.push(format!(
            "e.event_type = {}",
            next(Param::Text(event_type.clone()), params)
        ));
    }
    if let Some(event_id) = &filter.event_id {
        clauses.push(format!("e.event_id = {}", next(Param::Text(event_id.clone()), params)));
    }
    if let Some(wallet) = &filter.wallet {
        clauses.push(format!(
            "e.wallet_external_key = {}",
            next(Param::Text(wallet.to_string()), params)
        ));
    }
    if let Some(from) = filter.from {
        clauses.push(format!("d.created_at >= {}", next(Param::Int(from), params)));
    }
    if let Some(to) = filter.to {
        clauses.push(format!("d.created_at < {}", next(Param::Int(to), params)));
    }
    clauses.join(" AND ")
}

macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(s) => query.bind(s.clone()),
                Param::Int(i) => query.bind(*i),
                Param::State(s) => query.bind(*s),
            };
        }
        query
    }};
}

/// One page of the log, newest first: rows with ids below `before` (the cursor), at most
/// `limit`.
///
/// # Errors
/// Database failure.
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let mut params = Vec::new();
    let mut clause = conditions(scope, filter, &mut params);
    if let Some(before) = before {
        params.push(Param::Int(before));
        clause.push_str(&format!(" AND d.id < ${}", params.len()));
    }
    params.push(Param::Int(limit));
    let sql = format!("{SELECT} WHERE {clause} ORDER BY d.id DESC LIMIT ${}", params.len());
    with_reader!(db, p => bind_params!(sqlx::query_as::<_, DeliveryRow>(&sql), &params).fetch_all(p).await)
}

/// One delivery of the scope by its public key.
///
/// # Errors
/// Database failure.
pub async fn find(db: &Db, scope: &Scope, key: &DeliveryKey) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let mut params = vec![Param::Text(key.to_string())];
    let clause = conditions(scope, &Filter::default(), &mut params);
    let sql = format!("{SELECT} WHERE d.delivery_external_key = $1 AND {clause}");
    with_reader!(db, p => bind_params!(sqlx::query_as::<_, DeliveryRow>(&sql), &params).fetch_optional(p).await)
}

/// The attempts of a delivery, in order.
///
/// # Errors
/// Database failure.
pub async fn attempts(db: &Db, delivery_id: i64) -> Result<Vec<AttemptRow>, sqlx::Error> {
    const SQL: &str = "SELECT attempt, started_at, duration_ms, outcome, request, response_status, response_headers, \
                       response_body, error FROM integration_delivery_attempt WHERE delivery_id = $1 ORDER BY id";
    with_reader!(db, p => sqlx::query_as::<_, AttemptRow>(SQL).bind(delivery_id).fetch_all(p).await)
}

/// The stored event of a delivery.
///
/// # Errors
/// Database failure.
pub async fn event_of(db: &Db, event_id: &str) -> Result<Option<super::events::EventRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT event_id, event_type, source, subject, wallet_external_key, time, dataschema, correlation_id, traceparent, tracestate, sequence, data \
                       FROM integration_event WHERE event_id = $1";
    with_reader!(db, p => sqlx::query_as::<_, super::events::EventRow>(SQL).bind(event_id).fetch_optional(p).await)
}

/// The `SET` list that moves a delivery to `to`, with the time bound as `$1` and the state as
/// `$2`: a replay (to PENDING) also resets the attempts and makes it due now; a dismissal only
/// changes the state.
fn move_to(to: DeliveryState) -> &'static str {
    if to == DeliveryState::Pending {
        "state = $2, updated_at = $1, attempts = 0, due_at = $1, lease_token = NULL"
    } else {
        "state = $2, updated_at = $1"
    }
}

/// Moves one FAILED delivery of the scope to PENDING (a replay) or DISMISSED. Returns whether
/// it was FAILED (and has moved).
///
/// # Errors
/// Database failure.
pub async fn transition(
    tx: &mut Tx,
    scope: &Scope,
    key: &DeliveryKey,
    to: DeliveryState,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (owner, wallet) = match scope.wallet() {
        Some(w) => ("wallet_external_key = $4", Some(w)),
        None => ("wallet_external_key IS NULL AND $4 IS NULL", None),
    };
    let sql = format!(
        "UPDATE integration_delivery SET {} WHERE delivery_external_key = $3 AND state = $5 AND {owner}",
        move_to(to)
    );
    let updated = with_tx!(tx, c => sqlx::query(&sql)
        .bind(now)
        .bind(to)
        .bind(key)
        .bind(wallet)
        .bind(DeliveryState::Failed)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(updated == 1)
}

/// The FAILED deliveries of the scope that match the filter (its state filter ignored): what a
/// bulk replay or dismissal with that filter would move now.
fn failed_only(filter: &Filter) -> Filter {
    Filter {
        states: vec![DeliveryState::Failed],
        ..filter.clone()
    }
}

/// How many FAILED deliveries of the scope match the filter (its state filter is ignored), as
/// [`transition_matching`] would move them now.
///
/// # Errors
/// Database failure.
pub async fn count_failed_matching(db: &Db, scope: &Scope, filter: &Filter) -> Result<i64, sqlx::Error> {
    let mut params = Vec::new();
    let clause = conditions(scope, &failed_only(filter), &mut params);
    let sql = format!(
        "SELECT COUNT(*) FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id \
         JOIN integration_event e ON e.id = d.event_id WHERE {clause}"
    );
    with_reader!(db, p => bind_params!(sqlx::query_scalar::<_, i64>(&sql), &params).fetch_one(p).await)
}

/// Moves every FAILED delivery of the scope that matches the filter (its state filter is
/// ignored) as [`transition`] moves one. Returns how many.
///
/// # Errors
/// Database failure.
pub async fn transition_matching(
    tx: &mut Tx,
    scope: &Scope,
    filter: &Filter,
    to: DeliveryState,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let mut params = vec![Param::Int(now), Param::State(to)];
    let clause = conditions(scope, &failed_only(filter), &mut params);
    let sql = format!(
        "UPDATE integration_delivery SET {} \
         WHERE id IN (SELECT d.id FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id \
         JOIN integration_event e ON e.id = d.event_id WHERE {clause})",
        move_to(to)
    );
    with_tx!(tx, c => bind_params!(sqlx::query(&sql), &params)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
}
