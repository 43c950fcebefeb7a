//! The statements of pull channels: a fetch leases the next deliveries of a channel to its
//! receiver, a commit marks a fetched batch delivered, and the channel's cursor row says how far
//! the receiver has got. Each fetch and each commit also writes one attempt per delivery into
//! `integration_delivery_attempt`, so the deliveries log shows them as it shows pushes.
//!
//! A pull delivery is an ordinary delivery row. Leased, it is DELIVERING with `lease_owner`
//! [`PULL_OWNER`] (never a dispatcher instance, so no instance take-back touches it) and
//! `due_at` at the end of the lease; when the lease ends the dispatchers' expired-lease
//! take-back turns it back into PENDING, and a fetch takes an ended lease itself as well (an
//! API-only deployment runs no dispatcher). Times come from the database clock, as for the
//! dispatcher's leases.

use sqlx::FromRow;

use super::deliveries::expand;
use super::events::EventRow;
use super::{with_reader, with_tx, Db, Tx};
use crate::domain::delivery::AttemptOutcome;
use crate::domain::DeliveryKey;

/// The `lease_owner` of a delivery leased to a pull receiver.
pub const PULL_OWNER: &str = "pull";

/// The `last_error` of a delivery handed out and not committed yet.
pub const AWAITING_COMMIT: &str = "fetched by the receiver; not committed yet";

/// What a fetch takes.
#[derive(Debug, Clone)]
pub struct Fetch<'a> {
    /// The channel row id.
    pub channel_id: i64,
    /// Only deliveries after this row id (0: from the start).
    pub after: i64,
    /// Most deliveries to hand out.
    pub limit: i64,
    /// Lease length, in milliseconds.
    pub lease_ms: i64,
    /// The lease of this fetch.
    pub lease_token: &'a str,
    /// The request as the deliveries log stores it (JSON of a request record).
    pub request: &'a str,
    /// When the fetch started (process clock), epoch milliseconds.
    pub started_at: i64,
}

/// A delivery handed out by a fetch, with its event.
#[derive(Debug, Clone, FromRow)]
pub struct Pulled {
    /// Row id (the cursor's position).
    pub id: i64,
    /// `deliveryExternalKey`.
    pub delivery_external_key: DeliveryKey,
    /// This hand-out's attempt number (already counted).
    pub attempts: i64,
    /// When the lease ends, epoch milliseconds (database clock).
    pub due_at: i64,
    /// The event.
    #[sqlx(flatten)]
    pub event: EventRow,
}

/// Hands out up to `fetch.limit` deliveries of the channel after `fetch.after`, oldest first:
/// PENDING ones and those whose lease ended. Each is leased under `fetch.lease_token`, its
/// attempt counted and logged. A delivery already handed out `max_attempts` times without a
/// commit fails instead (an operator may replay it).
///
/// # Errors
/// Database failure; nothing is leased then.
pub async fn fetch(db: &Db, fetch: &Fetch<'_>) -> Result<Vec<Pulled>, sqlx::Error> {
    const AVAILABLE: &str = "channel_id = $1 AND id > $2 AND (state = {pending} \
                             OR (state = {delivering} AND due_at <= {now}))";
    let exhaust = expand(
        db,
        &format!(
            "UPDATE integration_delivery SET state = {{failed}}, last_error = $3, lease_token = NULL, \
             lease_owner = NULL, updated_at = {{now}} WHERE {AVAILABLE} AND attempts >= max_attempts"
        ),
    );
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite { .. } => "",
    };
    let lease = expand(
        db,
        &format!(
            "UPDATE integration_delivery SET state = {{delivering}}, due_at = {{now}} + $4, lease_token = $5, \
             lease_owner = $6, attempts = attempts + 1, last_status = 200, last_error = $7, updated_at = {{now}} \
             WHERE id IN (SELECT id FROM integration_delivery WHERE {AVAILABLE} ORDER BY id LIMIT $3{lock})"
        ),
    );
    let log = expand(
        db,
        "INSERT INTO integration_delivery_attempt (delivery_id, attempt, started_at, duration_ms, outcome, request, \
         response_status, error) SELECT id, attempts, $3, 0, $4, $5, 200, $6 FROM integration_delivery \
         WHERE channel_id = $1 AND state = {delivering} AND lease_token = $2",
    );
    let load = expand(
        db,
        "SELECT d.id, d.delivery_external_key, d.attempts, d.due_at, e.event_id, e.event_type, e.source, e.subject, \
         e.wallet_external_key, e.time, e.dataschema, e.correlation_id, e.traceparent, e.tracestate, e.data \
         FROM integration_delivery d JOIN integration_event e ON e.id = d.event_id \
         WHERE d.channel_id = $1 AND d.state = {delivering} AND d.lease_token = $2 ORDER BY d.id",
    );
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, c => sqlx::query(&exhaust)
        .bind(fetch.channel_id)
        .bind(fetch.after)
        .bind("fetched as often as the attempt limit allows without a commit")
        .execute(c)
        .await
        .map(|_| ()))?;
    with_tx!(&mut tx, c => sqlx::query(&lease)
        .bind(fetch.channel_id)
        .bind(fetch.after)
        .bind(fetch.limit)
        .bind(fetch.lease_ms)
        .bind(fetch.lease_token)
        .bind(PULL_OWNER)
        .bind(AWAITING_COMMIT)
        .execute(c)
        .await
        .map(|_| ()))?;
    with_tx!(&mut tx, c => sqlx::query(&log)
        .bind(fetch.channel_id)
        .bind(fetch.lease_token)
        .bind(fetch.started_at)
        .bind(AttemptOutcome::Retryable)
        .bind(fetch.request)
        .bind(AWAITING_COMMIT)
        .execute(c)
        .await
        .map(|_| ()))?;
    let pulled: Vec<Pulled> = with_tx!(&mut tx, c => sqlx::query_as::<_, Pulled>(&load)
        .bind(fetch.channel_id)
        .bind(fetch.lease_token)
        .fetch_all(c)
        .await)?;
    let position = pulled.last().map_or(0, |p| p.id);
    advance(&mut tx, db, fetch.channel_id, Advance::Fetched(position)).await?;
    tx.commit().await?;
    Ok(pulled)
}

/// What a commit takes.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    /// The channel row id.
    pub channel_id: i64,
    /// The lease of the fetch being acknowledged.
    pub lease_token: &'a str,
    /// Up to this delivery row id.
    pub up_to: i64,
    /// The request as the deliveries log stores it.
    pub request: &'a str,
    /// When the commit started (process clock), epoch milliseconds.
    pub started_at: i64,
}

/// A delivery a commit marked delivered.
#[derive(Debug, Clone, FromRow)]
pub struct Committed {
    /// Row id.
    pub id: i64,
    /// When the delivery was created (with its event), epoch milliseconds.
    pub created_at: i64,
}

/// Marks DELIVERED the deliveries of the channel still leased under `commit.lease_token` up to
/// `commit.up_to`, logging a delivered attempt for each. Deliveries whose lease has been taken
/// back or handed to another fetch since are left alone: they go out again.
///
/// # Errors
/// Database failure; nothing is committed then.
pub async fn commit(db: &Db, commit: &Commit<'_>) -> Result<Vec<Committed>, sqlx::Error> {
    let update = expand(
        db,
        "UPDATE integration_delivery SET state = {delivered}, delivered_at = {now}, last_status = 200, \
         last_error = NULL, lease_token = NULL, lease_owner = NULL, updated_at = {now} \
         WHERE channel_id = $1 AND state = {delivering} AND lease_token = $2 AND id <= $3 \
         RETURNING id, created_at",
    );
    let ids = match db {
        Db::Postgres(_) => "id = ANY($1)",
        Db::Sqlite { .. } => "id IN (SELECT value FROM json_each($1))",
    };
    let log = format!(
        "INSERT INTO integration_delivery_attempt (delivery_id, attempt, started_at, duration_ms, outcome, request, \
         response_status) SELECT id, attempts, $2, 0, $3, $4, 200 FROM integration_delivery WHERE {ids}"
    );
    let mut tx = db.begin().await?;
    let committed: Vec<Committed> = with_tx!(&mut tx, c => sqlx::query_as::<_, Committed>(&update)
        .bind(commit.channel_id)
        .bind(commit.lease_token)
        .bind(commit.up_to)
        .fetch_all(c)
        .await)?;
    if committed.is_empty() {
        return Ok(committed);
    }
    let id_list: Vec<i64> = committed.iter().map(|c| c.id).collect();
    match &mut tx.inner {
        super::TxInner::Postgres(c) => {
            sqlx::query(&log)
                .bind(&id_list)
                .bind(commit.started_at)
                .bind(AttemptOutcome::Delivered)
                .bind(commit.request)
                .execute(&mut **c)
                .await?;
        }
        super::TxInner::Sqlite(c) => {
            sqlx::query(&log)
                .bind(serde_json::to_string(&id_list).expect("a list of integers serialises"))
                .bind(commit.started_at)
                .bind(AttemptOutcome::Delivered)
                .bind(commit.request)
                .execute(&mut **c)
                .await?;
        }
    }
    let position = committed.iter().map(|c| c.id).max().unwrap_or(0);
    advance(&mut tx, db, commit.channel_id, Advance::Committed(position)).await?;
    tx.commit().await?;
    Ok(committed)
}

/// Which position of the cursor row moves.
enum Advance {
    Fetched(i64),
    Committed(i64),
}

/// Moves the channel's cursor row forward (never back) and counts the fetch or commit.
async fn advance(tx: &mut Tx, db: &Db, channel_id: i64, advance: Advance) -> Result<(), sqlx::Error> {
    let (position, column, count, at) = match advance {
        Advance::Fetched(p) => (p, "fetched_position", "fetches", "last_fetch_at"),
        Advance::Committed(p) => (p, "committed_position", "commits", "last_commit_at"),
    };
    let sql = expand(
        db,
        &format!(
            "INSERT INTO integration_pull_cursor (channel_id, {column}, {count}, {at}) VALUES ($1, $2, 1, {{now}}) \
             ON CONFLICT (channel_id) DO UPDATE SET \
             {column} = CASE WHEN excluded.{column} > integration_pull_cursor.{column} \
             THEN excluded.{column} ELSE integration_pull_cursor.{column} END, \
             {count} = integration_pull_cursor.{count} + 1, {at} = excluded.{at}"
        ),
    );
    with_tx!(tx, c => sqlx::query(&sql).bind(channel_id).bind(position).execute(c).await.map(|_| ()))
}

/// Where a pull channel's receiver is, for the channel's page.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow)]
pub struct PullState {
    /// Highest delivery id handed out (0: none yet).
    pub fetched_position: i64,
    /// Highest delivery id committed (0: none yet).
    pub committed_position: i64,
    /// Fetches so far.
    pub fetches: i64,
    /// Commits so far (those that acknowledged something).
    pub commits: i64,
    /// Last fetch, epoch milliseconds.
    pub last_fetch_at: Option<i64>,
    /// Last commit that acknowledged something, epoch milliseconds.
    pub last_commit_at: Option<i64>,
    /// Deliveries waiting to be fetched.
    pub waiting: i64,
    /// Deliveries fetched and not committed yet.
    pub leased: i64,
}

/// The cursor and the backlog of a pull channel.
///
/// # Errors
/// Database failure.
pub async fn state(db: &Db, channel_id: i64) -> Result<PullState, sqlx::Error> {
    let sql = expand(
        db,
        "SELECT COALESCE(p.fetched_position, 0) AS fetched_position, \
         COALESCE(p.committed_position, 0) AS committed_position, COALESCE(p.fetches, 0) AS fetches, \
         COALESCE(p.commits, 0) AS commits, p.last_fetch_at, p.last_commit_at, \
         (SELECT COUNT(*) FROM integration_delivery WHERE channel_id = $1 AND state = {pending}) AS waiting, \
         (SELECT COUNT(*) FROM integration_delivery WHERE channel_id = $1 AND state = {delivering}) AS leased \
         FROM (SELECT $1 AS channel_id) k LEFT JOIN integration_pull_cursor p ON p.channel_id = k.channel_id",
    );
    with_reader!(db, p => sqlx::query_as::<_, PullState>(&sql).bind(channel_id).fetch_one(p).await)
}
