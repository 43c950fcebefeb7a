//! Channel health and the deliveries chart: the rollup of attempt outcomes in
//! `integration_channel_activity` (counts per channel and five-minute interval) and
//! `integration_channel_health` (per channel: last success, last failure with its error, failures
//! in a row), and the reads of the pages over it.
//!
//! Why a rollup and not a query of the deliveries log: the log holds millions of rows, and the
//! health of a channel is about its latest attempts and the counts of a day. Counting them from
//! `integration_delivery_attempt` (which has no channel and no time index) would read every
//! attempt of the day on every page view. The rollup is kept where the dispatcher records each
//! outcome ([`super::deliveries::record_outcomes`]): two upsert statements for a whole batch of
//! outcomes (one row per channel and interval, one per channel), so its cost does not grow with
//! the log, and the reads touch at most 288 small rows per channel.
//!
//! Lock order on PostgreSQL: each of the two upserts is a statement of its own (committed on
//! its own) that takes its rows sorted by key (channel, then interval), so that two dispatchers
//! recording outcomes of the same channels may wait for each other but never deadlock.

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::{ChannelKey, Resolution, Scope, WalletKey};

/// The length of one interval of `integration_channel_activity`, in milliseconds.
pub const BUCKET_MS: i64 = 5 * 60_000;
/// One hour in milliseconds: the interval of the chart.
pub const HOUR_MS: i64 = 3_600_000;

/// One stored outcome, as the rollup needs it.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// The delivery's channel (row id).
    pub channel_id: i64,
    /// What the attempt decided.
    pub resolution: Resolution,
    /// When the attempt started, epoch ms.
    pub started_at: i64,
    /// Why it failed, when it did.
    pub error: Option<&'a str>,
}

/// What a batch adds to one channel's interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ActivityDelta {
    pub channel_id: i64,
    pub bucket: i64,
    pub delivered: i64,
    pub retrying: i64,
    pub failed: i64,
}

/// What a batch changes in one channel's health. When the batch had a success,
/// `failures` is the number of failures after its last success and replaces the stored count;
/// otherwise it is added to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthDelta {
    pub channel_id: i64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    pub failures: i64,
}

/// Sums a batch of stored outcomes per channel and interval, and per channel, each sorted by
/// key (the lock order). Within a channel, outcomes count in the order their attempts started.
pub(crate) fn rollup(recorded: &[Recorded<'_>]) -> (Vec<ActivityDelta>, Vec<HealthDelta>) {
    let mut activity: BTreeMap<(i64, i64), ActivityDelta> = BTreeMap::new();
    let mut by_channel: BTreeMap<i64, Vec<&Recorded<'_>>> = BTreeMap::new();
    for r in recorded {
        let bucket = r.started_at - r.started_at.rem_euclid(BUCKET_MS);
        let delta = activity.entry((r.channel_id, bucket)).or_insert(ActivityDelta {
            channel_id: r.channel_id,
            bucket,
            ..ActivityDelta::default()
        });
        match r.resolution {
            Resolution::Delivered => delta.delivered += 1,
            Resolution::Retry { .. } => delta.retrying += 1,
            Resolution::Failed => delta.failed += 1,
        }
        by_channel.entry(r.channel_id).or_default().push(r);
    }
    let health = by_channel
        .into_iter()
        .map(|(channel_id, mut outcomes)| {
            outcomes.sort_by_key(|r| r.started_at);
            let mut delta = HealthDelta {
                channel_id,
                last_success_at: None,
                last_failure_at: None,
                last_error: None,
                failures: 0,
            };
            for r in outcomes {
                if r.resolution == Resolution::Delivered {
                    delta.last_success_at = Some(r.started_at);
                    delta.failures = 0;
                } else {
                    delta.last_failure_at = Some(r.started_at);
                    delta.last_error = Some(r.error.unwrap_or_default().to_string());
                    delta.failures += 1;
                }
            }
            delta
        })
        .collect();
    (activity.into_values().collect(), health)
}

const ACTIVITY_UPSERT: &str = "ON CONFLICT (channel_id, bucket) DO UPDATE SET \
    delivered = integration_channel_activity.delivered + excluded.delivered, \
    retrying = integration_channel_activity.retrying + excluded.retrying, \
    failed = integration_channel_activity.failed + excluded.failed";

const HEALTH_UPSERT: &str = "ON CONFLICT (channel_id) DO UPDATE SET \
    last_success_at = COALESCE(excluded.last_success_at, integration_channel_health.last_success_at), \
    last_failure_at = COALESCE(excluded.last_failure_at, integration_channel_health.last_failure_at), \
    last_error = CASE WHEN excluded.last_failure_at IS NULL THEN integration_channel_health.last_error ELSE excluded.last_error END, \
    consecutive_failures = CASE WHEN excluded.last_success_at IS NULL \
    THEN integration_channel_health.consecutive_failures + excluded.consecutive_failures ELSE excluded.consecutive_failures END";

/// Adds a batch of stored outcomes to the rollup inside the transaction that stored them
/// (SQLite, whose one writer makes the two extra statements cheap and keeps them atomic with
/// the outcomes): one upsert per table for the whole batch, its rows passed as a JSON array.
/// Public for the bench, which measures what it adds to a batch.
///
/// # Errors
/// Database failure.
pub async fn record_in(tx: &mut Tx, recorded: &[Recorded<'_>]) -> Result<(), sqlx::Error> {
    if recorded.is_empty() {
        return Ok(());
    }
    let (activity, health) = rollup(recorded);
    // `WHERE true`: SQLite's parser needs it between an INSERT's SELECT and its ON CONFLICT.
    let activity_sql = format!(
        "INSERT INTO integration_channel_activity (channel_id, bucket, delivered, retrying, failed) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each($1) WHERE true \
         {ACTIVITY_UPSERT}"
    );
    let health_sql = format!(
        "INSERT INTO integration_channel_health (channel_id, last_success_at, last_failure_at, last_error, \
         consecutive_failures) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each($1) WHERE true \
         {HEALTH_UPSERT}"
    );
    let activity_rows = serde_json::Value::from(
        activity
            .iter()
            .map(|a| serde_json::json!([a.channel_id, a.bucket, a.delivered, a.retrying, a.failed]))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let health_rows = serde_json::Value::from(
        health
            .iter()
            .map(|h| {
                serde_json::json!([
                    h.channel_id,
                    h.last_success_at,
                    h.last_failure_at,
                    h.last_error,
                    h.failures
                ])
            })
            .collect::<Vec<_>>(),
    )
    .to_string();
    with_tx!(tx, c => sqlx::query(&activity_sql).bind(&activity_rows).execute(c).await.map(|_| ()))?;
    with_tx!(tx, c => sqlx::query(&health_sql).bind(&health_rows).execute(c).await.map(|_| ()))?;
    Ok(())
}

/// Adds a batch of stored outcomes to the rollup on PostgreSQL: two statements for the whole
/// batch, each one upsert of arrays, run after the outcomes committed (the rollup is
/// bookkeeping of the pages; a failure here loses a few counts, never an outcome). Public for
/// the bench, which measures what it adds to a batch.
///
/// # Errors
/// Database failure.
pub async fn record_pg(pool: &sqlx::PgPool, recorded: &[Recorded<'_>]) -> Result<(), sqlx::Error> {
    if recorded.is_empty() {
        return Ok(());
    }
    let (activity, health) = rollup(recorded);
    let activity_sql = format!(
        "INSERT INTO integration_channel_activity (channel_id, bucket, delivered, retrying, failed) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         ORDER BY 1, 2 {ACTIVITY_UPSERT}"
    );
    sqlx::query(&activity_sql)
        .bind(activity.iter().map(|a| a.channel_id).collect::<Vec<_>>())
        .bind(activity.iter().map(|a| a.bucket).collect::<Vec<_>>())
        .bind(activity.iter().map(|a| a.delivered).collect::<Vec<_>>())
        .bind(activity.iter().map(|a| a.retrying).collect::<Vec<_>>())
        .bind(activity.iter().map(|a| a.failed).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    let health_sql = format!(
        "INSERT INTO integration_channel_health (channel_id, last_success_at, last_failure_at, last_error, \
         consecutive_failures) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) \
         ORDER BY 1 {HEALTH_UPSERT}"
    );
    sqlx::query(&health_sql)
        .bind(health.iter().map(|h| h.channel_id).collect::<Vec<_>>())
        .bind(health.iter().map(|h| h.last_success_at).collect::<Vec<_>>())
        .bind(health.iter().map(|h| h.last_failure_at).collect::<Vec<_>>())
        .bind(health.iter().map(|h| h.last_error.clone()).collect::<Vec<_>>())
        .bind(health.iter().map(|h| h.failures).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes the intervals that started before `before` (the retention job; the pages read one
/// day). Returns how many.
///
/// # Errors
/// Database failure.
pub async fn purge_activity(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let removed = with_tx!(&mut tx, c => sqlx::query("DELETE FROM integration_channel_activity WHERE bucket < $1")
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(removed)
}

/// The health of one channel as stored: its rollup summed over two windows.
#[derive(Debug, Clone, FromRow)]
pub struct HealthRow {
    /// Channel public key.
    pub channel_external_key: ChannelKey,
    /// Whether the channel is enabled.
    pub enabled: bool,
    /// Last delivered attempt, epoch ms.
    pub last_success_at: Option<i64>,
    /// Last attempt that did not deliver, epoch ms.
    pub last_failure_at: Option<i64>,
    /// Its error.
    pub last_error: Option<String>,
    /// Attempts in a row that did not deliver, since the last that did.
    pub consecutive_failures: i64,
    /// Delivered attempts in the short window.
    pub delivered_short: i64,
    /// Attempts that did not deliver in the short window.
    pub failed_short: i64,
    /// Delivered attempts in the long window.
    pub delivered_long: i64,
    /// Attempts that did not deliver in the long window.
    pub failed_long: i64,
}

/// The two windows of [`health`], as the first interval start each includes (epoch ms).
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// Intervals starting at or after this count in the short window.
    pub short_from: i64,
    /// Intervals starting at or after this count in the long window.
    pub long_from: i64,
}

fn owner(scope: &Scope) -> Option<&WalletKey> {
    scope.wallet()
}

fn owner_clause(scope: &Scope, column: &str) -> String {
    match scope {
        Scope::Wallet(_) => format!("{column} = $1"),
        Scope::Platform => format!("{column} IS NULL AND $1 IS NULL"),
    }
}

/// The health of the channels of the scope (or of the one channel `only`), in channel order.
/// Reads the health row and at most one window of intervals of each channel, by primary key.
///
/// # Errors
/// Database failure.
pub async fn health(
    db: &Db,
    scope: &Scope,
    only: Option<&ChannelKey>,
    windows: Windows,
) -> Result<Vec<HealthRow>, sqlx::Error> {
    let channel_filter = if only.is_some() {
        " AND c.channel_external_key = $4"
    } else {
        ""
    };
    let sql = format!(
        "SELECT c.channel_external_key, c.enabled, h.last_success_at, h.last_failure_at, h.last_error, \
         COALESCE(h.consecutive_failures, 0) AS consecutive_failures, \
         COALESCE(a.delivered_short, 0) AS delivered_short, COALESCE(a.failed_short, 0) AS failed_short, \
         COALESCE(a.delivered_long, 0) AS delivered_long, COALESCE(a.failed_long, 0) AS failed_long \
         FROM integration_channel c \
         LEFT JOIN integration_channel_health h ON h.channel_id = c.id \
         LEFT JOIN (SELECT x.channel_id, \
           CAST(SUM(CASE WHEN x.bucket >= $2 THEN x.delivered ELSE 0 END) AS BIGINT) AS delivered_short, \
           CAST(SUM(CASE WHEN x.bucket >= $2 THEN x.retrying + x.failed ELSE 0 END) AS BIGINT) AS failed_short, \
           CAST(SUM(x.delivered) AS BIGINT) AS delivered_long, \
           CAST(SUM(x.retrying + x.failed) AS BIGINT) AS failed_long \
           FROM integration_channel_activity x JOIN integration_channel c ON c.id = x.channel_id \
           WHERE x.bucket >= $3 AND {scope}{channel_filter} GROUP BY x.channel_id) a ON a.channel_id = c.id \
         WHERE {scope}{channel_filter} ORDER BY c.id",
        scope = owner_clause(scope, "c.wallet_external_key"),
    );
    with_reader!(db, p => {
        let query = sqlx::query_as::<_, HealthRow>(&sql)
            .bind(owner(scope))
            .bind(windows.short_from)
            .bind(windows.long_from);
        let query = match only {
            Some(key) => query.bind(key),
            None => query,
        };
        query.fetch_all(p).await
    })
}

/// Outcomes of one hour of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct HourRow {
    /// The hour's start, epoch ms.
    pub hour: i64,
    /// Attempts that delivered.
    pub delivered: i64,
    /// Attempts to be retried.
    pub retrying: i64,
    /// Attempts after which the delivery failed.
    pub failed: i64,
}

/// Attempt outcomes per hour from `from` (an hour's start) on, of the channels of the scope or
/// of the one channel `only`; hours without any are left out.
///
/// # Errors
/// Database failure.
pub async fn hourly(db: &Db, scope: &Scope, only: Option<&ChannelKey>, from: i64) -> Result<Vec<HourRow>, sqlx::Error> {
    let channel_filter = if only.is_some() {
        " AND c.channel_external_key = $3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT x.bucket - x.bucket % {HOUR_MS} AS hour, CAST(SUM(x.delivered) AS BIGINT) AS delivered, \
         CAST(SUM(x.retrying) AS BIGINT) AS retrying, CAST(SUM(x.failed) AS BIGINT) AS failed \
         FROM integration_channel_activity x JOIN integration_channel c ON c.id = x.channel_id \
         WHERE x.bucket >= $2 AND {}{channel_filter} \
         GROUP BY x.bucket - x.bucket % {HOUR_MS} ORDER BY 1",
        owner_clause(scope, "c.wallet_external_key"),
    );
    with_reader!(db, p => {
        let query = sqlx::query_as::<_, HourRow>(&sql).bind(owner(scope)).bind(from);
        let query = match only {
            Some(key) => query.bind(key),
            None => query,
        };
        query.fetch_all(p).await
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outcome(channel_id: i64, resolution: Resolution, started_at: i64, error: Option<&str>) -> Recorded<'_> {
        Recorded {
            channel_id,
            resolution,
            started_at,
            error,
        }
    }

    const RETRY: Resolution = Resolution::Retry {
        delay: Duration::from_secs(1),
    };

    #[test]
    fn a_batch_is_summed_per_channel_and_interval_in_key_order() {
        let t = 10 * BUCKET_MS;
        let (activity, _) = rollup(&[
            outcome(2, Resolution::Delivered, t + 1, None),
            outcome(1, RETRY, t + BUCKET_MS, Some("500")),
            outcome(1, Resolution::Delivered, t, None),
            outcome(1, Resolution::Failed, t + BUCKET_MS - 1, Some("400")),
        ]);
        let row = |channel_id, bucket, delivered, retrying, failed| ActivityDelta {
            channel_id,
            bucket,
            delivered,
            retrying,
            failed,
        };
        assert_eq!(
            activity,
            vec![row(1, t, 1, 0, 1), row(1, t + BUCKET_MS, 0, 1, 0), row(2, t, 1, 0, 0)]
        );
    }

    #[test]
    fn failures_after_the_last_success_replace_the_count_and_without_one_add_to_it() {
        let (_, health) = rollup(&[
            outcome(1, RETRY, 30, Some("HTTP 500")),
            outcome(1, Resolution::Delivered, 20, None),
            outcome(1, RETRY, 10, Some("old")),
            outcome(1, Resolution::Failed, 40, Some("HTTP 400")),
            outcome(2, RETRY, 5, Some("timeout")),
            outcome(2, RETRY, 6, None),
        ]);
        assert_eq!(
            health,
            vec![
                HealthDelta {
                    channel_id: 1,
                    last_success_at: Some(20),
                    last_failure_at: Some(40),
                    last_error: Some("HTTP 400".into()),
                    failures: 2,
                },
                HealthDelta {
                    channel_id: 2,
                    last_success_at: None,
                    last_failure_at: Some(6),
                    last_error: Some(String::new()),
                    failures: 2,
                },
            ]
        );
    }

    #[test]
    fn times_before_1970_still_fall_into_their_interval() {
        let (activity, _) = rollup(&[outcome(1, Resolution::Delivered, -1, None)]);
        assert_eq!(activity[0].bucket, -BUCKET_MS);
    }
}
