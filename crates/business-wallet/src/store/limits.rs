//! The limited channels' part of the claim (see `deliveries::claim_with_limits`): which
//! channels have limits and due deliveries, how many each may take now, and what the claim
//! took. A channel is limited when it has a rate (`rate_per_sec`), an in-flight limit
//! (`max_in_flight`), a pause its receiver asked for (`throttled_until`) or a rate its receiver
//! allowed in the validation handshake (`allowed_rate_per_sec`); the partial index
//! `integration_channel_limited` finds them.
//!
//! Every dispatcher instance reads and moves the same columns under the channel row's lock, so
//! the limits hold for all instances together: the rate through the stored TAT of a generic
//! cell rate algorithm (`Gcra`), the in-flight limit by counting the channel's DELIVERING
//! rows (a delivery whose attempt is over counts until its outcome is stored: the count errs on
//! the safe side).

use std::time::Duration;

use super::deliveries::{expand_pg, expand_sqlite};
use super::{with_reader, Db, Tx, TxInner};
use crate::domain::channel::limits::{default_burst, Gcra};

/// The rule that makes a channel limited; the partial index has the same.
const LIMITED: &str = "(c.rate_per_sec IS NOT NULL OR c.max_in_flight IS NOT NULL OR c.throttled_until IS NOT NULL \
                       OR c.allowed_rate_per_sec IS NOT NULL)";

/// A limited channel with due deliveries, locked by this claim.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct LimitedRow {
    id: i64,
    rate_per_sec: Option<f64>,
    rate_burst: Option<i32>,
    /// The rate the receiver allowed in the validation handshake, a second.
    allowed_rate_per_sec: Option<f64>,
    max_in_flight: Option<i32>,
    rate_tat_us: i64,
    throttled_until: Option<i64>,
    /// The database clock when the row was read, epoch milliseconds.
    now_ms: i64,
}

impl LimitedRow {
    /// The rate that holds: the smaller of the channel's own and the one its receiver allowed;
    /// with the channel's burst, or when it set none (only its receiver limits it) the default
    /// burst of that rate.
    fn gcra(&self) -> Option<Gcra> {
        let rate = match (self.rate_per_sec, self.allowed_rate_per_sec) {
            (Some(own), Some(allowed)) => own.min(allowed),
            (own, allowed) => own.or(allowed)?,
        };
        let burst = self
            .rate_burst
            .unwrap_or_else(|| i32::try_from(default_burst(rate)).unwrap_or(i32::MAX));
        Some(Gcra::new(rate, burst))
    }
}

/// How many deliveries one limited channel may take in this claim.
#[derive(Debug)]
pub(super) struct Room {
    /// The channel's row id.
    pub channel: i64,
    /// At most this many; set to what was taken once the channel's claim ran.
    pub take: i64,
    /// What its rate alone allowed (`None`: no rate).
    by_rate: Option<i64>,
    row: LimitedRow,
}

/// What the limited channels may take in this claim.
#[derive(Debug)]
pub(super) struct Plan {
    /// One per locked channel.
    pub rooms: Vec<Room>,
}

/// The channels the claim's main statement leaves out, by row id, and whether any of them is
/// limited (then the limited part of the claim runs): the limited channels, claimed one at a
/// time under their row's lock, and those waiting for their validation handshake, not claimed
/// at all. Looked up in two partial indexes; the common case, none, costs one probe of empty
/// indexes.
///
/// Leaving these channels out by id, not by conditions on their columns, keeps the main
/// statement's conditions what they are without them: without column statistics (a new
/// database, or a server without autovacuum) the planner takes each `... IS NULL` to hold for
/// one row in 200, which can turn it away from reading the due index in order. A channel given
/// limits while a claim runs may have that one claim taken without them.
///
/// # Errors
/// Database failure.
pub(super) async fn held_channels(db: &Db) -> Result<(Vec<i64>, bool), sqlx::Error> {
    let sql = format!(
        "SELECT c.id, {LIMITED} AS limited FROM integration_channel c \
         WHERE {LIMITED} OR c.validation_state = 'UNVERIFIED'"
    );
    let rows: Vec<(i64, bool)> = with_reader!(db, p => sqlx::query_as(&sql).fetch_all(p).await)?;
    let any_limited = rows.iter().any(|(_, limited)| *limited);
    Ok((rows.into_iter().map(|(id, _)| id).collect(), any_limited))
}

/// Locks the limited channels of dispatchable state (enabled, not PULL, not PAUSED, not waiting
/// for the validation handshake) that have due deliveries, skipping those
/// in `skip` (full on this instance) and, on PostgreSQL, those another claim holds right now
/// (it takes their room; this claim leaves them alone).
///
/// # Errors
/// Database failure.
pub(super) async fn lock_due(tx: &mut Tx, skip: &[i64]) -> Result<Vec<LimitedRow>, sqlx::Error> {
    const TEMPLATE: &str =
        "SELECT c.id, c.rate_per_sec, c.rate_burst, c.allowed_rate_per_sec, c.max_in_flight, c.rate_tat_us, \
        c.throttled_until, {now} AS now_ms FROM integration_channel c WHERE {limited} AND c.enabled \
        AND c.channel_type <> 'PULL' AND c.delivery_state <> 'PAUSED' {verified} AND {not_skipped} AND EXISTS (SELECT 1 FROM integration_delivery p \
        WHERE p.channel_id = c.id AND p.state = {pending} AND p.due_at <= {now}) ORDER BY c.id{lock}";
    let template = TEMPLATE
        .replace("{limited}", LIMITED)
        .replace("{verified}", super::deliveries::VERIFIED);
    let sql = |not_skipped: &str, lock: &str| template.replace("{not_skipped}", not_skipped).replace("{lock}", lock);
    match &mut tx.inner {
        TxInner::Postgres(pg) => {
            let sql = expand_pg(&sql("NOT (c.id = ANY($1))", " FOR UPDATE OF c SKIP LOCKED"));
            sqlx::query_as(&sql).bind(skip).fetch_all(&mut **pg).await
        }
        TxInner::Sqlite(lite) => {
            // The one writer connection serialises claims: no lock to take.
            let sql = expand_sqlite(&sql("c.id NOT IN (SELECT value FROM json_each($1))", ""));
            sqlx::query_as(&sql)
                .bind(serde_json::to_string(skip).expect("a list of integers serialises"))
                .fetch_all(&mut **lite)
                .await
        }
    }
}

/// How many each locked channel may take now, `limit` in all: none while its receiver's pause
/// lasts; otherwise what its rate allows and what its in-flight limit leaves (counted after the
/// lock was taken, so that the claims of every instance that held it before are seen).
///
/// # Errors
/// Database failure.
pub(super) async fn plan(tx: &mut Tx, rows: &[LimitedRow], limit: i64) -> Result<Plan, sqlx::Error> {
    let counted: Vec<i64> = rows
        .iter()
        .filter(|r| r.max_in_flight.is_some())
        .map(|r| r.id)
        .collect();
    let in_flight: Vec<(i64, i64)> = if counted.is_empty() {
        Vec::new()
    } else {
        const TEMPLATE: &str = "SELECT channel_id, count(*) FROM integration_delivery WHERE state = {delivering} \
                                AND {channels} GROUP BY channel_id";
        match &mut tx.inner {
            TxInner::Postgres(pg) => {
                let sql = expand_pg(&TEMPLATE.replace("{channels}", "channel_id = ANY($1)"));
                sqlx::query_as(&sql).bind(&counted).fetch_all(&mut **pg).await?
            }
            TxInner::Sqlite(lite) => {
                let sql =
                    expand_sqlite(&TEMPLATE.replace("{channels}", "channel_id IN (SELECT value FROM json_each($1))"));
                sqlx::query_as(&sql)
                    .bind(serde_json::to_string(&counted).expect("a list of integers serialises"))
                    .fetch_all(&mut **lite)
                    .await?
            }
        }
    };
    let mut left = limit.max(0);
    let rooms = rows
        .iter()
        .map(|row| {
            let throttled = row.throttled_until.is_some_and(|until| until > row.now_ms);
            let by_rate = row
                .gcra()
                .map(|gcra| gcra.available(row.rate_tat_us, row.now_ms.saturating_mul(1000)));
            let by_in_flight = row.max_in_flight.map(|most| {
                let busy = in_flight
                    .iter()
                    .find(|(channel, _)| *channel == row.id)
                    .map_or(0, |(_, n)| *n);
                (i64::from(most) - busy).max(0)
            });
            let take = if throttled {
                0
            } else {
                [Some(left), by_rate, by_in_flight]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(0)
            };
            left -= take;
            Room {
                channel: row.id,
                take,
                by_rate: if throttled { None } else { by_rate },
                row: row.clone(),
            }
        })
        .collect();
    Ok(Plan { rooms })
}

/// Stores what the claim took: each rated channel's TAT moves on by its deliveries taken, and a
/// receiver's pause that is over is cleared. Returns how soon a channel left behind may send
/// again: one whose rate was used up, or whose receiver's pause still lasts.
///
/// # Errors
/// Database failure.
pub(super) async fn record_taken(tx: &mut Tx, plan: &Plan) -> Result<Option<Duration>, sqlx::Error> {
    let mut next_in_us: Option<i64> = None;
    let mut soonest = |us: i64| next_in_us = Some(next_in_us.map_or(us, |n| n.min(us)));
    for room in &plan.rooms {
        let row = &room.row;
        let now_us = row.now_ms.saturating_mul(1000);
        match row.throttled_until {
            Some(until) if until > row.now_ms => {
                soonest((until - row.now_ms).saturating_mul(1000));
                continue;
            }
            Some(_) => {
                let sql =
                    "UPDATE integration_channel SET throttled_until = NULL WHERE id = $1 AND throttled_until <= $2";
                super::with_tx!(&mut *tx, c => sqlx::query(sql).bind(row.id).bind(row.now_ms).execute(c).await.map(|_| ()))?;
            }
            None => {}
        }
        let Some(gcra) = row.gcra() else { continue };
        if room.take > 0 {
            let tat = gcra.take(row.rate_tat_us, now_us, room.take);
            let sql = "UPDATE integration_channel SET rate_tat_us = $2 WHERE id = $1";
            super::with_tx!(&mut *tx, c => sqlx::query(sql).bind(row.id).bind(tat).execute(c).await.map(|_| ()))?;
            if Some(room.take) == room.by_rate {
                soonest(gcra.next_in(tat, now_us));
            }
        } else if room.by_rate == Some(0) {
            soonest(gcra.next_in(row.rate_tat_us, now_us));
        }
    }
    Ok(next_in_us.map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0))))
}

/// Pauses a channel for `for_ms` from now (database clock) because its receiver asked for it
/// (`429` or `503` with `Retry-After`): no delivery of the channel is claimed before then, on
/// any instance. A longer pause already set is kept.
///
/// # Errors
/// Database failure.
pub async fn throttle(db: &Db, channel_id: i64, for_ms: i64) -> Result<(), sqlx::Error> {
    let sql = super::deliveries::expand(
        db,
        "UPDATE integration_channel SET throttled_until = {now} + $2 \
         WHERE id = $1 AND (throttled_until IS NULL OR throttled_until < {now} + $2)",
    );
    match db {
        Db::Postgres(pool) => sqlx::query(&sql)
            .bind(channel_id)
            .bind(for_ms)
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Sqlite { writer, .. } => sqlx::query(&sql)
            .bind(channel_id)
            .bind(for_ms)
            .execute(writer)
            .await
            .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rate_per_sec: Option<f64>, rate_burst: Option<i32>, allowed_rate_per_sec: Option<f64>) -> LimitedRow {
        LimitedRow {
            id: 1,
            rate_per_sec,
            rate_burst,
            allowed_rate_per_sec,
            max_in_flight: None,
            rate_tat_us: 0,
            throttled_until: None,
            now_ms: 0,
        }
    }

    #[test]
    fn the_smaller_of_the_own_and_the_allowed_rate_holds() {
        assert_eq!(row(None, None, None).gcra(), None);
        // Only the receiver's rate: its default burst (a tenth of a second's worth, at least 1).
        assert_eq!(row(None, None, Some(10.0)).gcra(), Some(Gcra::new(10.0, 1)));
        assert_eq!(row(None, None, Some(100.0)).gcra(), Some(Gcra::new(100.0, 10)));
        // Both: the smaller rate, with the channel's own burst.
        assert_eq!(row(Some(50.0), Some(5), Some(10.0)).gcra(), Some(Gcra::new(10.0, 5)));
        assert_eq!(row(Some(2.0), Some(1), Some(10.0)).gcra(), Some(Gcra::new(2.0, 1)));
        assert_eq!(row(Some(2.0), Some(3), None).gcra(), Some(Gcra::new(2.0, 3)));
    }
}
