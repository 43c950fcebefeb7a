//! The health scenario: the cost of the channel health and deliveries chart queries of the
//! operator console over a large deliveries log, and what keeping their rollup adds to the
//! dispatcher's recording of outcomes.
//!
//! The database gets `rows` deliveries (each with its event and one attempt) spread over the
//! last seven days and over 50 platform channels (90 % delivered, 5 % failed, 5 % pending and due),
//! written in bulk with `INSERT ... SELECT` from a generated series (PostgreSQL) or a recursive
//! CTE (SQLite). The rollup tables are filled from those attempts as the dispatcher would have
//! filled them, for all seven days (more than the two days retention keeps: the pessimistic
//! case). Then, through the product's store functions, after one warm-up each:
//! - the health of every channel (the Channels list) and of one channel (a channel's page);
//! - the chart of the scope (the Deliveries page) and of one channel;
//! - `record_outcomes` of 64 delivered outcomes (claimed from the pending rows), and the rollup
//!   statements alone for such a batch, over 50 channels and over one (on SQLite inside a transaction that is rolled back, as
//!   they run inside the outcomes' transaction; on PostgreSQL as the dispatcher runs them).

use std::path::Path;
use std::time::{Duration, Instant};

use business_wallet::domain::{AttemptOutcome, Resolution, Scope};
use business_wallet::store::deliveries::{self, AttemptRow, ClaimRequest, OutcomeRecord};
use business_wallet::store::health::{self, Recorded, Windows, BUCKET_MS, HOUR_MS};
use business_wallet::store::{now_ms, Db};

use crate::stats;

const CHANNELS: i64 = 50;
const SPREAD_MS: i64 = 7 * 24 * HOUR_MS;
const REPEATS: usize = 30;

/// Median and 95th percentile, ms.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct HealthCost {
    pub seed_s: f64,
    pub activity_rows: i64,
    pub list: Timing,
    pub one: Timing,
    pub chart_scope: Timing,
    pub chart_channel: Timing,
    pub record_batch: Timing,
    pub rollup_batch: Timing,
    pub rollup_one_channel: Timing,
}

async fn exec(db: &Db, sql: &str) -> anyhow::Result<()> {
    match db {
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ())?,
        Db::Sqlite { writer, .. } => sqlx::raw_sql(sql).execute(writer).await.map(|_| ())?,
    }
    Ok(())
}

async fn count(db: &Db, sql: &str) -> anyhow::Result<i64> {
    Ok(match db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        Db::Sqlite { writer, .. } => sqlx::query_scalar(sql).fetch_one(writer).await?,
    })
}

/// Writes the channels, `rows` events, deliveries and attempts, and the rollup.
async fn seed(db: &Db, rows: u64) -> anyhow::Result<()> {
    let now = now_ms();
    let postgres = matches!(db, Db::Postgres(_));
    let series = if postgres {
        "(SELECT n FROM generate_series(1, {rows}) AS g(n))"
    } else {
        "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) SELECT n FROM s)"
    }
    .replace("{rows}", &rows.to_string());
    let channels = if postgres {
        "(SELECT n FROM generate_series(1, 50) AS g(n))".to_string()
    } else {
        "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50) SELECT n FROM s)".to_string()
    };
    // Explicit ids, so that each row names its neighbours without a look-up.
    let overriding = if postgres { "OVERRIDING SYSTEM VALUE" } else { "" };
    // Row n: channel 1 + n % 50, created `n * SPREAD / rows` ago; 1 in 20 failed and 1 in 20
    // pending (n % 20 = 0 and 1), the rest delivered.
    let sql = format!(
        "INSERT INTO integration_channel (id, channel_external_key, wallet_external_key, name, channel_type, enabled, config, \
         created_at, updated_at, created_by, updated_by) \
         {overriding} SELECT n, 'c0000000-0000-4000-8000-' || (100000000000 + n), NULL, 'bench ' || n, 'WEBHOOK', TRUE, \
         '{{\"url\":\"http://127.0.0.1:9/hook\"}}', 0, 0, 'bench', 'bench' FROM {channels} c;
         INSERT INTO integration_event (id, event_id, event_type, source, subject, wallet_external_key, time, dataschema, \
         correlation_id, data, created_at) \
         {overriding} SELECT n, 'e' || n, 'com.credenco.businesswallet.wallet.created.v1', '/credenco/wallets', 'wallets/w' || n, 'w' || n, \
         {now} - CAST(n AS BIGINT) * {SPREAD_MS} / {rows}, 'http://127.0.0.1/schema.json', 'k' || n, '{{}}', {now} - CAST(n AS BIGINT) * {SPREAD_MS} / {rows} \
         FROM {series} s;
         INSERT INTO integration_delivery (id, delivery_external_key, event_id, channel_id, wallet_external_key, state, attempts, \
         max_attempts, due_at, last_status, last_error, created_at, updated_at, delivered_at) \
         {overriding} SELECT id, 'd' || id, id, 1 + id % {CHANNELS}, NULL, \
         CASE id % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'PENDING' ELSE 'DELIVERED' END, \
         CASE id % 20 WHEN 1 THEN 0 ELSE 1 END, 15, created_at, \
         CASE id % 20 WHEN 0 THEN 400 WHEN 1 THEN NULL ELSE 200 END, \
         CASE id % 20 WHEN 0 THEN 'receiver answered 400 Bad Request' END, created_at, created_at, \
         CASE WHEN id % 20 > 1 THEN created_at END FROM integration_event;
         INSERT INTO integration_delivery_attempt (delivery_id, attempt, started_at, duration_ms, outcome, response_status, error) \
         SELECT id, 1, created_at, 5, CASE state WHEN 'FAILED' THEN 'REJECTED' ELSE 'DELIVERED' END, last_status, last_error \
         FROM integration_delivery WHERE state <> 'PENDING';
         INSERT INTO integration_channel_activity (channel_id, bucket, delivered, retrying, failed) \
         SELECT d.channel_id, a.started_at - a.started_at % {BUCKET_MS}, \
         SUM(CASE WHEN a.outcome = 'DELIVERED' THEN 1 ELSE 0 END), 0, SUM(CASE WHEN a.outcome = 'REJECTED' THEN 1 ELSE 0 END) \
         FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id \
         GROUP BY d.channel_id, a.started_at - a.started_at % {BUCKET_MS};
         INSERT INTO integration_channel_health (channel_id, last_success_at, last_failure_at, last_error, consecutive_failures) \
         SELECT d.channel_id, MAX(CASE WHEN a.outcome = 'DELIVERED' THEN a.started_at END), \
         MAX(CASE WHEN a.outcome <> 'DELIVERED' THEN a.started_at END), MAX(a.error), 0 \
         FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id GROUP BY d.channel_id;"
    );
    exec(db, &sql).await?;
    if postgres {
        exec(db, "SELECT setval(pg_get_serial_sequence('integration_channel', 'id'), 1000); \
                  SELECT setval(pg_get_serial_sequence('integration_event', 'id'), (SELECT MAX(id) FROM integration_event)); \
                  SELECT setval(pg_get_serial_sequence('integration_delivery', 'id'), (SELECT MAX(id) FROM integration_delivery)); \
                  ANALYZE").await?;
    } else {
        exec(db, "ANALYZE").await?;
    }
    Ok(())
}

/// The median and p95 of `REPEATS` runs of `f` after one warm-up.
async fn time<F, Fut>(mut f: F) -> anyhow::Result<Timing>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    f().await?;
    let mut samples = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        samples.push(f().await?.as_secs_f64() * 1000.0);
    }
    let p = stats::percentiles(&samples);
    Ok(Timing {
        p50_ms: p.p50,
        p95_ms: p.p95,
    })
}

async fn timed<T, E: Into<anyhow::Error>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f.await.map_err(Into::into)?;
    Ok(started.elapsed())
}

/// Seeds a fresh database at `url` with `rows` deliveries and measures (see the module).
pub async fn health_cost(url: &str, data_dir: &Path, rows: u64) -> anyhow::Result<HealthCost> {
    let db = crate::db::open_product_db(url, data_dir).await?;
    let started = Instant::now();
    seed(&db, rows).await?;
    let seed_s = started.elapsed().as_secs_f64();
    let activity_rows = count(&db, "SELECT COUNT(*) FROM integration_channel_activity").await?;
    let delivery_rows = count(&db, "SELECT COUNT(*) FROM integration_delivery").await?;
    anyhow::ensure!(
        delivery_rows == rows as i64,
        "seeded {delivery_rows} deliveries, not {rows}"
    );

    let now = now_ms();
    // The windows of the console (domain::channel::health::windows).
    let windows = Windows {
        short_from: now - now % BUCKET_MS - 11 * BUCKET_MS,
        long_from: now - now % HOUR_MS - 23 * HOUR_MS,
    };
    let scope = Scope::Platform;
    let key = health::health(&db, &scope, None, windows).await?[7]
        .channel_external_key
        .clone();
    let list = time(|| timed(health::health(&db, &scope, None, windows))).await?;
    let one = time(|| timed(health::health(&db, &scope, Some(&key), windows))).await?;
    let chart_scope = time(|| timed(health::hourly(&db, &scope, None, windows.long_from))).await?;
    let chart_channel = time(|| timed(health::hourly(&db, &scope, Some(&key), windows.long_from))).await?;

    // The dispatcher's own handle (on PostgreSQL its pool commits without waiting for the WAL
    // flush), as the outcomes and the rollup are written through it.
    let dispatcher = db.for_dispatcher(2);
    let request = ClaimRequest {
        limit: 64,
        lease_ms: 300_000,
        skip_channels: &[],
        owner: "bench",
    };
    let record_batch = time(|| async {
        let claimed = deliveries::claim(&dispatcher, &request).await?;
        anyhow::ensure!(claimed.len() == 64, "claimed {} instead of 64", claimed.len());
        let records: Vec<OutcomeRecord> = claimed
            .iter()
            .map(|d| OutcomeRecord {
                id: d.id,
                lease_token: d.lease_token.clone(),
                resolution: Resolution::Delivered,
                attempt: AttemptRow {
                    attempt: d.attempts,
                    started_at: now_ms(),
                    duration_ms: 1,
                    outcome: AttemptOutcome::Delivered,
                    request: None,
                    response_status: Some(200),
                    response_headers: Some("{}".into()),
                    response_body: Some(String::new()),
                    error: None,
                },
            })
            .collect();
        timed(deliveries::record_outcomes(&dispatcher, &records)).await
    })
    .await?;
    // A batch as the claims above give: 64 outcomes over consecutive channels.
    let at = now_ms();
    let batch: Vec<Recorded<'static>> = (0..64)
        .map(|i| Recorded {
            channel_id: 1 + i % CHANNELS,
            resolution: if i % 10 == 0 {
                Resolution::Retry {
                    delay: Duration::from_secs(1),
                }
            } else {
                Resolution::Delivered
            },
            started_at: at + i,
            error: (i % 10 == 0).then_some("receiver answered 500 Internal Server Error"),
        })
        .collect();
    let rollup = |batch: Vec<Recorded<'static>>| {
        let db = &dispatcher;
        time(move || {
            let batch = batch.clone();
            async move {
                match db {
                    Db::Postgres(pool) => timed(health::record_pg(pool, &batch)).await,
                    Db::Sqlite { .. } => {
                        let mut tx = db.begin().await?;
                        let took = timed(health::record_in(&mut tx, &batch)).await;
                        drop(tx); // rolled back: the commit is the outcomes' own
                        took
                    }
                }
            }
        })
    };
    let one_channel: Vec<Recorded<'static>> = batch.iter().map(|r| Recorded { channel_id: 1, ..*r }).collect();
    let rollup_batch = rollup(batch).await?;
    let rollup_one_channel = rollup(one_channel).await?;
    dispatcher.close().await;
    db.close().await;
    Ok(HealthCost {
        seed_s,
        activity_rows,
        list,
        one,
        chart_scope,
        chart_channel,
        record_batch,
        rollup_batch,
        rollup_one_channel,
    })
}
