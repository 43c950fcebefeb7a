//! The dispatcher's statements on `integration_delivery` and `integration_delivery_attempt`:
//! claiming due deliveries under a lease, recording outcomes guarded by the lease token, and
//! releasing leases.
//!
//! Times of leases and retries come from the database clock (`now()` on PostgreSQL), so
//! instances with skewed clocks agree on when a lease has ended. Every statement after the claim
//! names the row's `lease_token`: when it no longer matches, another dispatcher has taken the
//! delivery over and the late result is dropped.
//!
//! No statement of the store spells a state: one that varies is bound as a [`DeliveryState`],
//! and a fixed one is a placeholder of the SQL template (`{pending}`, `{delivering}`, …) that
//! `expand` turns into a literal spelled by the enum. A literal rather than a parameter on
//! purpose: the claim, the take-backs and the backlog gauge must say `state = 'PENDING'` or
//! `state = 'DELIVERING'` for the planner to use the partial indexes on due and on leased rows
//! (a bound parameter hides the value from it).

use std::time::Duration;

use sqlx::FromRow;

use super::events::EventRow;
use super::health;
use super::{with_reader, with_tx, Db};
use crate::domain::delivery::{AttemptOutcome, DeliveryState, Resolution};
use crate::domain::{ChannelKey, DeliveryKey};

/// Epoch milliseconds from the database clock, per backend.
const PG_NOW: &str = "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT";
// Rounded, not truncated: the float arithmetic can land just below the exact millisecond, and
// a row written in the same millisecond (by the outbox, with the process clock) must be due.
const SQLITE_NOW: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// The statement for `db` from an SQL template: `{now}` becomes the database clock in epoch
/// milliseconds, and `{pending}`, `{delivering}`, `{delivered}`, `{failed}` and `{dismissed}`
/// become those states as SQL literals. Any other `{…}` is kept as it is. One pass, one
/// allocation.
pub(crate) fn expand(db: &Db, template: &str) -> String {
    let now = match db {
        Db::Postgres(_) => PG_NOW,
        Db::Sqlite { .. } => SQLITE_NOW,
    };
    expand_with(template, now)
}

/// [`expand`] for PostgreSQL, where only the transaction says the backend.
pub(super) fn expand_pg(template: &str) -> String {
    expand_with(template, PG_NOW)
}

/// [`expand`] for SQLite, where only the transaction says the backend.
pub(super) fn expand_sqlite(template: &str) -> String {
    expand_with(template, SQLITE_NOW)
}

fn expand_with(template: &str, now: &str) -> String {
    let mut sql = String::with_capacity(template.len() + 2 * now.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        sql.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some(close) = rest.find('}') else { break };
        let state = match &rest[1..close] {
            "now" => None,
            "pending" => Some(DeliveryState::Pending),
            "delivering" => Some(DeliveryState::Delivering),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            "dismissed" => Some(DeliveryState::Dismissed),
            _ => {
                sql.push_str(&rest[..=close]);
                rest = &rest[close + 1..];
                continue;
            }
        };
        match state {
            None => sql.push_str(now),
            Some(state) => {
                sql.push('\'');
                sql.push_str(state.as_str());
                sql.push('\'');
            }
        }
        rest = &rest[close + 1..];
    }
    sql.push_str(rest);
    sql
}

/// A delivery this dispatcher holds the lease of, with its event and channel.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    /// Row id.
    pub id: i64,
    /// `deliveryExternalKey`.
    pub delivery_external_key: DeliveryKey,
    /// The lease; every later statement on the row must present it.
    pub lease_token: String,
    /// This attempt's number (already counted).
    pub attempts: i64,
    /// Attempts allowed before the delivery fails.
    pub max_attempts: i64,
    /// When the delivery was created (with its event), epoch milliseconds.
    pub created_at: i64,
    /// Channel row id.
    pub channel_id: i64,
    /// `channelExternalKey`.
    pub channel_external_key: ChannelKey,
    /// Channel type name, e.g. `WEBHOOK`.
    pub channel_type: String,
    /// The channel's type block (JSON text, no secrets).
    pub channel_config: String,
    /// The channel's sealed secrets.
    pub channel_secrets: Option<Vec<u8>>,
    /// The channel's place on the failure ladder when the delivery was claimed (`ACTIVE`,
    /// `FAILING`; never `PAUSED`, whose deliveries are not claimed).
    pub channel_delivery_state: String,
    /// The channel's ordering: `PER_WALLET` or `BEST_EFFORT` (empty on a delivery the outbox
    /// handed over, which is never of a PER_WALLET channel).
    #[sqlx(default)]
    pub channel_ordering: String,
    /// The event.
    #[sqlx(flatten)]
    pub event: EventRow,
}

/// The claim's rule for a delivery of a PER_WALLET channel (one with an `ordering_key`): it
/// may go only when no earlier delivery of the same channel and wallet is still to be delivered
/// (PENDING: waiting or retrying; DELIVERING; FAILED: until replayed or dismissed). One probe
/// of the partial index `integration_delivery_ordered`. Within one claim the earlier delivery is
/// still PENDING, so a claim never takes two of one wallet at once; on PostgreSQL the probe
/// reads the statement's snapshot, so a concurrent claim does not either.
const IN_ORDER: &str = "AND (d.ordering_key IS NULL OR c.ordering <> 'PER_WALLET' OR NOT EXISTS (\
                        SELECT 1 FROM integration_delivery p WHERE p.channel_id = d.channel_id \
                        AND p.ordering_key = d.ordering_key AND p.id < d.id \
                        AND p.ordering_key IS NOT NULL AND p.state IN ({pending}, {delivering}, {failed})))";

/// What a claim takes.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// Most rows to take.
    pub limit: i64,
    /// Lease length, in milliseconds.
    pub lease_ms: i64,
    /// Channels that already have their fill of deliveries in flight here.
    pub skip_channels: &'a [i64],
    /// The claiming dispatcher instance (see [`super::instances`]).
    pub owner: &'a str,
}

/// What one claim took, and when a rate-limited channel may send again.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The deliveries, each channel's oldest due first.
    pub deliveries: Vec<ClaimedDelivery>,
    /// How soon a channel that had due deliveries left behind (by its rate, or by its
    /// receiver's `Retry-After`) may send again; `None` when none was left behind so.
    pub next_in: Option<Duration>,
}

/// The main claim's own rule: none beyond the common ones. The limited channels (a rate of
/// their own or one their receiver allowed, an in-flight limit, a receiver's pause) are claimed
/// one channel at a time, under their row's lock, and left out of it by id (see
/// [`claim_with_limits`]).
const UNLIMITED: &str = "";
/// The claim's rule for the validation handshake: nothing of a channel whose receiver has not
/// answered it yet is claimed (its deliveries wait, their attempts not counted).
pub(super) const VERIFIED: &str = "AND (c.validation_state IS NULL OR c.validation_state <> 'UNVERIFIED')";
/// The claim's rule for one limited channel, `$6`.
const ONE_CHANNEL: &str = "AND d.channel_id = $6";

// The inner SELECT picks the rows; on PostgreSQL it locks them and skips rows another
// instance is claiming at this moment, so concurrent dispatchers never take the same row.
// SQLite runs the statement on its single writer connection, which serialises claims.
const PG_CLAIM: &str = "UPDATE integration_delivery SET state = {delivering}, due_at = {now} + $1, lease_token = $2, \
                        lease_owner = $5, attempts = attempts + 1, updated_at = {now} \
                        WHERE id IN (SELECT d.id FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id \
                        WHERE d.state = {pending} AND d.due_at <= {now} AND c.enabled AND c.channel_type <> 'PULL' AND c.delivery_state <> 'PAUSED' {verified} {in_order} \
                        AND NOT (d.channel_id = ANY($4)) {which} \
                        ORDER BY d.due_at, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED)";
const SQLITE_CLAIM: &str = "UPDATE integration_delivery SET state = {delivering}, due_at = {now} + $1, lease_token = $2, \
                            lease_owner = $5, attempts = attempts + 1, updated_at = {now} \
                            WHERE id IN (SELECT d.id FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id \
                            WHERE d.state = {pending} AND d.due_at <= {now} AND c.enabled AND c.channel_type <> 'PULL' AND c.delivery_state <> 'PAUSED' {verified} {in_order} \
                            AND d.channel_id NOT IN (SELECT value FROM json_each($4)) {which} \
                            ORDER BY d.due_at, d.id LIMIT $3)";
// The claimed rows are loaded by id: there is no index on `lease_token`, and a look-up by
// token would read the whole table, so that a claim would cost more as the table grows.
const COLUMNS: &str = "d.id, d.delivery_external_key, d.lease_token, d.attempts, d.max_attempts, d.created_at, d.channel_id, \
                       c.channel_external_key, c.channel_type, c.config AS channel_config, c.secrets AS channel_secrets, \
                       c.delivery_state AS channel_delivery_state, c.ordering AS channel_ordering, e.event_id, e.event_type, e.source, e.subject, e.wallet_external_key, e.time, e.dataschema, \
                       e.correlation_id, e.traceparent, e.tracestate, e.sequence, e.data";

/// The claim statement for `db`, taking the rows `which` allows.
fn claim_sql(db: &Db, which: &str) -> String {
    let template = match db {
        Db::Postgres(_) => PG_CLAIM,
        Db::Sqlite { .. } => SQLITE_CLAIM,
    };
    let sql = expand(
        db,
        &template
            .replace("{in_order}", IN_ORDER)
            .replace("{verified}", VERIFIED)
            .replace("{which}", which),
    );
    match db {
        // One round trip: the update returns the rows it took and the same statement joins
        // their channels and events.
        Db::Postgres(_) => format!(
            "WITH d AS ({sql} RETURNING id, delivery_external_key, lease_token, attempts, max_attempts, created_at, channel_id, \
             event_id, due_at) \
             SELECT {COLUMNS} FROM d JOIN integration_channel c ON c.id = d.channel_id \
             JOIN integration_event e ON e.id = d.event_id ORDER BY d.due_at, d.id"
        ),
        Db::Sqlite { .. } => format!("{sql} RETURNING id"),
    }
}

/// Takes up to `limit` due PENDING deliveries of enabled channels, oldest due first: sets them
/// DELIVERING under a fresh lease token owned by `request.owner`, counts the attempt, and
/// returns them with their events and channels. The claim commits before anything is sent.
/// Deliveries of disabled and of PAUSED channels, and of channels whose receiver has not
/// answered the validation handshake yet, are left as they are. Equal due times are
/// taken in the order the deliveries were created. A lease that ended, or whose owner
/// stopped sending heartbeats, is turned back into PENDING by [`super::instances`] first.
/// Channels with limits take no more than their limits allow ([`claim_with_limits`]).
///
/// # Errors
/// Database failure.
pub async fn claim(db: &Db, request: &ClaimRequest<'_>) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    Ok(claim_with_limits(db, request).await?.deliveries)
}

/// [`claim`], telling also when a rate-limited channel may send again.
///
/// First the limited channels (a rate, an in-flight limit, or a receiver's `Retry-After`):
/// their rows are locked, one transaction for all of them, so that two dispatchers never count
/// the same room twice (one that finds a channel locked leaves it to the other); each takes
/// what its limits allow now, and its rate's TAT moves on by what it took. Then the rest, in
/// one statement, as many as `limit` still allows.
///
/// # Errors
/// Database failure.
pub async fn claim_with_limits(db: &Db, request: &ClaimRequest<'_>) -> Result<Claimed, sqlx::Error> {
    let lease_token = uuid::Uuid::new_v4().to_string();
    let mut claimed = Claimed::default();
    let mut sqlite_ids = Vec::new();
    let (held, any_limited) = super::limits::held_channels(db).await?;
    if any_limited {
        let mut tx = db.begin().await?;
        let rows = super::limits::lock_due(&mut tx, request.skip_channels).await?;
        let mut plan = super::limits::plan(&mut tx, &rows, request.limit).await?;
        // Each room is filled as far as there are due rows, and then says what was taken.
        let sql = claim_sql(db, ONE_CHANNEL);
        for room in &mut plan.rooms {
            if room.take == 0 {
                continue;
            }
            let (channel, take) = (room.channel, room.take);
            let taken = match &mut tx.inner {
                super::TxInner::Postgres(tx) => {
                    let rows: Vec<ClaimedDelivery> = sqlx::query_as(&sql)
                        .bind(request.lease_ms)
                        .bind(&lease_token)
                        .bind(take)
                        .bind(request.skip_channels)
                        .bind(request.owner)
                        .bind(channel)
                        .fetch_all(&mut **tx)
                        .await?;
                    let taken = rows.len();
                    claimed.deliveries.extend(rows);
                    taken
                }
                super::TxInner::Sqlite(tx) => {
                    let ids: Vec<i64> = sqlx::query_scalar(&sql)
                        .bind(request.lease_ms)
                        .bind(&lease_token)
                        .bind(take)
                        .bind(serde_json::to_string(request.skip_channels).expect("a list of integers serialises"))
                        .bind(request.owner)
                        .bind(channel)
                        .fetch_all(&mut **tx)
                        .await?;
                    let taken = ids.len();
                    sqlite_ids.extend(ids);
                    taken
                }
            };
            room.take = i64::try_from(taken).unwrap_or(i64::MAX);
        }
        claimed.next_in = super::limits::record_taken(&mut tx, &plan).await?;
        tx.commit().await?;
    }
    let taken = i64::try_from(claimed.deliveries.len() + sqlite_ids.len()).unwrap_or(i64::MAX);
    let rest = request.limit.saturating_sub(taken);
    let sql = claim_sql(db, UNLIMITED);
    let mut skip = request.skip_channels.to_vec();
    skip.extend(held);
    match db {
        Db::Postgres(pool) => {
            if rest > 0 {
                let rows: Vec<ClaimedDelivery> = sqlx::query_as(&sql)
                    .bind(request.lease_ms)
                    .bind(&lease_token)
                    .bind(rest)
                    .bind(&skip)
                    .bind(request.owner)
                    .fetch_all(pool)
                    .await?;
                claimed.deliveries.extend(rows);
            }
        }
        Db::Sqlite { writer, reader, .. } => {
            if rest > 0 {
                let ids: Vec<i64> = sqlx::query_scalar(&sql)
                    .bind(request.lease_ms)
                    .bind(&lease_token)
                    .bind(rest)
                    .bind(serde_json::to_string(&skip).expect("a list of integers serialises"))
                    .bind(request.owner)
                    .fetch_all(writer)
                    .await?;
                sqlite_ids.extend(ids);
            }
            if !sqlite_ids.is_empty() {
                let load = format!(
                    "SELECT {COLUMNS} FROM integration_delivery d JOIN integration_channel c ON c.id = d.channel_id \
                     JOIN integration_event e ON e.id = d.event_id \
                     WHERE d.id IN (SELECT value FROM json_each($1)) AND d.lease_token = $2 AND d.state = $3 \
                     ORDER BY d.due_at, d.id"
                );
                claimed.deliveries = sqlx::query_as::<_, ClaimedDelivery>(&load)
                    .bind(serde_json::to_string(&sqlite_ids).expect("a list of integers serialises"))
                    .bind(&lease_token)
                    .bind(DeliveryState::Delivering)
                    .fetch_all(reader)
                    .await?;
            }
        }
    }
    Ok(claimed)
}

/// One attempt as stored in `integration_delivery_attempt`: written by the dispatcher, read
/// back by the deliveries log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    /// 1-based attempt number.
    pub attempt: i64,
    /// When the attempt started, epoch milliseconds.
    pub started_at: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The request as JSON (secrets redacted), when one was made.
    pub request: Option<String>,
    /// The response status, when there was a response.
    pub response_status: Option<i64>,
    /// The response headers as JSON.
    pub response_headers: Option<String>,
    /// The start of the response body.
    pub response_body: Option<String>,
    /// Why it did not succeed.
    pub error: Option<String>,
}

/// One attempt's result to store under its lease (see [`record_outcomes`]).
#[derive(Debug, Clone)]
pub struct OutcomeRecord {
    /// Delivery row id.
    pub id: i64,
    /// The lease the attempt was made under.
    pub lease_token: String,
    /// What the attempt decided for the delivery.
    pub resolution: Resolution,
    /// The attempt.
    pub attempt: AttemptRow,
}

/// A delay as the statements take it: whole milliseconds.
fn millis(delay: Duration) -> i64 {
    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
}

/// Moves a claimed delivery to its next state and stores the attempt, in one transaction, if
/// the lease is still ours. Returns `false` (and changes nothing) when the lease was lost.
///
/// # Errors
/// Database failure; the lease then stays and the delivery is retried when it ends.
pub async fn record_outcome(
    db: &Db,
    id: i64,
    lease_token: &str,
    resolution: Resolution,
    attempt: &AttemptRow,
) -> Result<bool, sqlx::Error> {
    let record = OutcomeRecord {
        id,
        lease_token: lease_token.to_string(),
        resolution,
        attempt: attempt.clone(),
    };
    Ok(record_outcomes(db, std::slice::from_ref(&record)).await?[0])
}

/// Stores several outcomes in one transaction (one commit, however many deliveries), each
/// guarded by its lease: returns, per record, whether it was applied (`false`: the lease was
/// lost and that delivery was left unchanged).
///
/// This is the dispatcher's bookkeeping: through the dispatcher's handle
/// ([`Db::for_dispatcher`]) the commit on PostgreSQL does not wait for the WAL flush, and a
/// crash can lose the last few outcomes, whose deliveries then come back when their leases end
/// and are sent again, which at-least-once delivery allows. The publishing transaction keeps
/// full durability.
///
/// The outcomes that were applied are also added to the channel health rollup
/// ([`super::health`]): in the same transaction on SQLite, in two statements right after on
/// PostgreSQL.
///
/// # Errors
/// Database failure; nothing is stored then, and the leases run out.
pub async fn record_outcomes(db: &Db, records: &[OutcomeRecord]) -> Result<Vec<bool>, sqlx::Error> {
    const DELIVERED: &str =
        "UPDATE integration_delivery SET state = {delivered}, delivered_at = {now}, last_status = $3, \
                             last_error = NULL, lease_token = NULL, lease_owner = NULL, updated_at = {now} \
                             WHERE id = $1 AND lease_token = $2 AND state = {delivering}";
    const RETRY: &str = "UPDATE integration_delivery SET state = {pending}, due_at = {now} + $5, last_status = $3, \
                         last_error = $4, lease_token = NULL, lease_owner = NULL, updated_at = {now} \
                         WHERE id = $1 AND lease_token = $2 AND state = {delivering}";
    const FAILED: &str = "UPDATE integration_delivery SET state = {failed}, last_status = $3, last_error = $4, \
                          lease_token = NULL, lease_owner = NULL, updated_at = {now} \
                          WHERE id = $1 AND lease_token = $2 AND state = {delivering}";
    const INSERT_ATTEMPT: &str =
        "INSERT INTO integration_delivery_attempt (delivery_id, attempt, started_at, duration_ms, outcome, \
                                  request, response_status, response_headers, response_body, error) \
                                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    if let Db::Postgres(pool) = db {
        return record_outcomes_pg(pool, records).await;
    }
    // Each update returns the delivery's channel, for the health rollup.
    let delivered = format!("{} RETURNING channel_id", expand(db, DELIVERED));
    let retry = format!("{} RETURNING channel_id", expand(db, RETRY));
    let failed = format!("{} RETURNING channel_id", expand(db, FAILED));
    let mut tx = db.begin().await?;
    let mut applied = Vec::with_capacity(records.len());
    let mut rollup = Vec::with_capacity(records.len());
    for record in records {
        let update = match record.resolution {
            Resolution::Delivered => &delivered,
            Resolution::Retry { .. } => &retry,
            Resolution::Failed => &failed,
        };
        let attempt = &record.attempt;
        let channel: Option<i64> = with_tx!(&mut tx, c => {
            let mut query = sqlx::query_scalar(update)
                .bind(record.id)
                .bind(&record.lease_token)
                .bind(attempt.response_status);
            if record.resolution != Resolution::Delivered {
                query = query.bind(&attempt.error);
            }
            if let Resolution::Retry { delay } = record.resolution {
                query = query.bind(millis(delay));
            }
            query.fetch_optional(c).await
        })?;
        applied.push(channel.is_some());
        let Some(channel_id) = channel else {
            continue;
        };
        rollup.push(health::Recorded {
            channel_id,
            resolution: record.resolution,
            started_at: attempt.started_at,
            error: attempt.error.as_deref(),
        });
        with_tx!(&mut tx, c => sqlx::query(INSERT_ATTEMPT)
            .bind(record.id)
            .bind(attempt.attempt)
            .bind(attempt.started_at)
            .bind(attempt.duration_ms)
            .bind(attempt.outcome)
            .bind(&attempt.request)
            .bind(attempt.response_status)
            .bind(&attempt.response_headers)
            .bind(&attempt.response_body)
            .bind(&attempt.error)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?;
    }
    if applied.iter().any(|a| *a) {
        health::record_in(&mut tx, &rollup).await?;
        tx.commit().await?;
    }
    Ok(applied)
}

/// [`record_outcomes`] on PostgreSQL: one statement for the whole batch (the updates, guarded
/// by the leases, and the attempts of the rows that were updated), so that the cost per
/// outcome is the rows' own work, not a round trip and a statement each.
async fn record_outcomes_pg(pool: &sqlx::PgPool, records: &[OutcomeRecord]) -> Result<Vec<bool>, sqlx::Error> {
    const SQL: &str = "WITH input AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[]) \
        AS i(id, lease_token, next_state, delay_ms, status, error)), \
        updated AS (UPDATE integration_delivery d SET state = i.next_state, \
        delivered_at = CASE WHEN i.next_state = {delivered} THEN {now} ELSE d.delivered_at END, \
        due_at = CASE WHEN i.next_state = {pending} THEN {now} + i.delay_ms ELSE d.due_at END, \
        last_status = i.status, last_error = CASE WHEN i.next_state = {delivered} THEN NULL ELSE i.error END, \
        lease_token = NULL, lease_owner = NULL, updated_at = {now} \
        FROM input i WHERE d.id = i.id AND d.lease_token = i.lease_token AND d.state = {delivering} \
        RETURNING d.id, d.channel_id), \
        inserted AS (INSERT INTO integration_delivery_attempt (delivery_id, attempt, started_at, duration_ms, outcome, request, \
        response_status, response_headers, response_body, error) \
        SELECT a.id, a.attempt, a.started_at, a.duration_ms, a.outcome, a.request, a.status, a.headers, a.body, a.error \
        FROM unnest($1::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $5::bigint[], $12::text[], \
        $13::text[], $6::text[]) AS a(id, attempt, started_at, duration_ms, outcome, request, status, headers, body, error) \
        JOIN updated u ON u.id = a.id) \
        SELECT id, channel_id FROM updated";
    let state = |r: &OutcomeRecord| r.resolution.state().as_str();
    let delay = |r: &OutcomeRecord| match r.resolution {
        Resolution::Retry { delay } => millis(delay),
        _ => 0,
    };
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    // One statement is one transaction: no BEGIN and COMMIT round trips around it.
    let applied: Vec<(i64, i64)> = sqlx::query_as(&expand_with(SQL, PG_NOW))
        .bind(&ids)
        .bind(records.iter().map(|r| r.lease_token.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(state).collect::<Vec<_>>())
        .bind(records.iter().map(delay).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.response_status).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.error.clone()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.attempt).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.started_at).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.duration_ms).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.outcome.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.attempt.request.clone()).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| r.attempt.response_headers.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|r| r.attempt.response_body.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool)
        .await?;
    let channel_of: std::collections::HashMap<i64, i64> = applied.into_iter().collect();
    let rollup: Vec<health::Recorded<'_>> = records
        .iter()
        .filter_map(|r| {
            channel_of.get(&r.id).map(|&channel_id| health::Recorded {
                channel_id,
                resolution: r.resolution,
                started_at: r.attempt.started_at,
                error: r.attempt.error.as_deref(),
            })
        })
        .collect();
    // After the outcomes committed, in statements of their own: see `store::health`.
    if let Err(err) = health::record_pg(pool, &rollup).await {
        tracing::warn!(error = %err, outcomes = rollup.len(), "the channel health rollup missed a batch of outcomes");
    }
    Ok(ids.iter().map(|id| channel_of.contains_key(id)).collect())
}

/// Gives a claimed delivery back without an attempt: PENDING, the attempt uncounted, due after
/// `delay_ms`. Used at shutdown and when a channel already has its fill in flight. Returns
/// `false` when the lease was no longer ours.
///
/// # Errors
/// Database failure; the lease then simply runs out.
pub async fn release(db: &Db, id: i64, lease_token: &str, delay_ms: i64) -> Result<bool, sqlx::Error> {
    const RELEASE: &str =
        "UPDATE integration_delivery SET state = {pending}, attempts = attempts - 1, due_at = {now} + $3, \
                           lease_token = NULL, lease_owner = NULL, updated_at = {now} \
                           WHERE id = $1 AND lease_token = $2 AND state = {delivering}";
    let sql = expand(db, RELEASE);
    let done = match db {
        Db::Postgres(pool) => sqlx::query(&sql)
            .bind(id)
            .bind(lease_token)
            .bind(delay_ms)
            .execute(pool)
            .await?
            .rows_affected(),
        Db::Sqlite { writer, .. } => sqlx::query(&sql)
            .bind(id)
            .bind(lease_token)
            .bind(delay_ms)
            .execute(writer)
            .await?
            .rows_affected(),
    };
    Ok(done == 1)
}

/// Figures for the metrics gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// FAILED deliveries (DISMISSED excluded).
    pub failed: i64,
    /// PENDING and DELIVERING deliveries.
    pub backlog: i64,
    /// Age of the oldest due PENDING delivery, in ms (0 when none is due).
    pub oldest_due_age_ms: i64,
}

/// Counts for the gauges, in one statement.
///
/// # Errors
/// Database failure.
pub async fn stats(db: &Db, now: i64) -> Result<DeliveryStats, sqlx::Error> {
    const SQL: &str = "SELECT \
        (SELECT COUNT(*) FROM integration_delivery WHERE state = {failed}), \
        (SELECT COUNT(*) FROM integration_delivery WHERE state IN ({pending}, {delivering})), \
        (SELECT MIN(due_at) FROM integration_delivery WHERE state = {pending} AND due_at <= $1)";
    let sql = expand(db, SQL);
    let (failed, backlog, oldest): (i64, i64, Option<i64>) =
        with_reader!(db, p => sqlx::query_as(&sql).bind(now).fetch_one(p).await)?;
    Ok(DeliveryStats {
        failed,
        backlog,
        oldest_due_age_ms: oldest.map(|due| (now - due).max(0)).unwrap_or(0),
    })
}

/// Removes up to `batch` finished deliveries in `state` (DELIVERED or FAILED) last changed
/// before `before`, with their attempts, in one transaction. Returns how many were removed.
///
/// # Errors
/// Database failure.
pub async fn purge_finished(db: &Db, state: DeliveryState, before: i64, batch: i64) -> Result<u64, sqlx::Error> {
    debug_assert!(
        matches!(state, DeliveryState::Delivered | DeliveryState::Failed),
        "only finished deliveries are purged"
    );
    const PICK: &str = "SELECT id FROM integration_delivery WHERE state = $1 AND updated_at < $2 ORDER BY id LIMIT $3";
    let mut tx = db.begin().await?;
    let removed = with_tx!(&mut tx, c => {
        let ids: Vec<i64> = sqlx::query_scalar(PICK).bind(state).bind(before).bind(batch).fetch_all(&mut *c).await?;
        for id in &ids {
            sqlx::query("DELETE FROM integration_delivery_attempt WHERE delivery_id = $1").bind(id).execute(&mut *c).await?;
        }
        let mut removed = 0;
        for id in &ids {
            // The state is checked again: a FAILED delivery replayed meanwhile stays.
            removed += sqlx::query("DELETE FROM integration_delivery WHERE id = $1 AND state = $2")
                .bind(id)
                .bind(state)
                .execute(&mut *c)
                .await?
                .rows_affected();
        }
        Ok::<u64, sqlx::Error>(removed)
    })?;
    tx.commit().await?;
    Ok(removed)
}

/// Removes up to `batch` events created before `before` that no delivery refers to any more.
///
/// # Errors
/// Database failure.
pub async fn purge_orphan_events(db: &Db, before: i64, batch: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM integration_event WHERE id IN (SELECT e.id FROM integration_event e \
                       WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM integration_delivery d WHERE d.event_id = e.id) \
                       ORDER BY e.id LIMIT $2)";
    let mut tx = db.begin().await?;
    let removed =
        with_tx!(&mut tx, c => sqlx::query(SQL).bind(before).bind(batch).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_the_clock_and_the_states_spelled_by_the_enum() {
        let sql = expand_with(
            "SET state = {delivering}, due_at = {now} + $1 WHERE state IN ({pending}, {failed}) AND {not_held} {",
            "NOW()",
        );
        let literal = |state: DeliveryState| format!("'{}'", state.as_str());
        assert_eq!(
            sql,
            format!(
                "SET state = {}, due_at = NOW() + $1 WHERE state IN ({}, {}) AND {{not_held}} {{",
                literal(DeliveryState::Delivering),
                literal(DeliveryState::Pending),
                literal(DeliveryState::Failed)
            )
        );
        assert_eq!(expand_with("no placeholders", "NOW()"), "no placeholders");
    }
}
