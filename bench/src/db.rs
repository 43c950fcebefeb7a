//! Direct database work: fresh PostgreSQL databases, a backlog of pending deliveries written in
//! bulk with the real schema, the cost of the dispatcher's real claim statement, and the
//! databases' own ceilings for the publishing transaction.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use business_wallet::domain::{AttemptOutcome, Resolution, WalletKey};
use business_wallet::store::deliveries::{self, AttemptRow, ClaimRequest, ClaimedDelivery, OutcomeRecord};
use business_wallet::store::events::{self, EventRow, FanOut};
use business_wallet::store::{now_ms, Db};
use business_wallet::Settings;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection as _;

use crate::stats;

const EVENT_TYPE: &str = "com.credenco.businesswallet.wallet.created.v1";

/// Runs `$body` with `$p` bound to the database's writing pool (the body is compiled once per
/// backend).
macro_rules! with_writer {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Postgres(pool) => {
                let $p = pool;
                $body
            }
            Db::Sqlite { writer, .. } => {
                let $p = writer;
                $body
            }
        }
    };
}

/// Drops and creates database `name` on the server of `admin_url`; returns its URL.
pub async fn fresh_pg_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` (clean-up after a run).
pub async fn drop_pg_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// The product's own pools over `url`, migrated.
pub(crate) async fn open_product_db(url: &str, data_dir: &Path) -> anyhow::Result<Db> {
    let mut settings = Settings {
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    };
    settings.database.url = Some(url.to_string());
    let db = Db::connect(&settings).await?;
    db.migrate().await?;
    Ok(db)
}

/// Inserts a platform webhook channel subscribed to wallet.created.v1 (as the API would) and
/// returns its id; used where no server runs.
async fn insert_channel(db: &Db) -> anyhow::Result<i64> {
    const CHANNEL: &str = "INSERT INTO integration_channel (channel_external_key, wallet_external_key, name, description, channel_type, \
                           enabled, config, secrets, created_at, updated_at, created_by, updated_by) \
                           VALUES ($1, NULL, 'bench', NULL, 'WEBHOOK', TRUE, '{\"url\":\"http://127.0.0.1:9/hook\",\"timeoutMs\":10000}', NULL, 0, 0, 'bench', 'bench') \
                           RETURNING id";
    const SUBSCRIPTION: &str = "INSERT INTO integration_channel_subscription (channel_id, event_type) VALUES ($1, $2)";
    let key = uuid::Uuid::new_v4().to_string();
    let id: i64 = with_writer!(db, pool => {
        let id = sqlx::query_scalar(CHANNEL).bind(&key).fetch_one(pool).await?;
        sqlx::query(SUBSCRIPTION)
            .bind(id)
            .bind(EVENT_TYPE)
            .execute(pool)
            .await?;
        id
    });
    Ok(id)
}

/// Writes `n` wallet.created.v1 events with one PENDING delivery each to the first channel,
/// due now, in chunks. The event data has the shape the API writes.
pub async fn write_backlog(db: &Db, n: u64) -> anyhow::Result<Duration> {
    const CHUNK: u64 = 100_000;
    let started = Instant::now();
    let channel_id: i64 = with_writer!(db, pool => {
        sqlx::query_scalar("SELECT id FROM integration_channel ORDER BY id LIMIT 1")
            .fetch_one(pool)
            .await?
    });
    // The same data the API puts in the event (a wallet with every field set).
    const PG_EVENTS: &str = "INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, time, dataschema, \
        correlation_id, data, created_at) \
        SELECT gen_random_uuid()::text, $2, '/credenco/wallets', 'wallets/' || w, w, $3, \
        'http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json', gen_random_uuid()::text, \
        '{\"walletExternalKey\":\"' || w || '\",\"displayName\":\"Bench wallet\",\"email\":\"ops@bench.example\",\"website\":\"https://bench.example\",\"phoneNumber\":null,\"address\":{\"street\":\"Benchstraat 1\",\"postalCode\":\"1000 AA\",\"city\":\"Amsterdam\",\"country\":\"NL\"},\"createdAt\":\"2026-11-26T12:00:00.000Z\",\"createdBy\":\"bench\"}', $3 \
        FROM (SELECT gen_random_uuid()::text AS w FROM generate_series(1, $1)) k";
    const SQLITE_EVENTS: &str = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $1), \
        k(w) AS (SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))) FROM s) \
        INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, time, dataschema, \
        correlation_id, data, created_at) \
        SELECT lower(hex(randomblob(16))), $2, '/credenco/wallets', 'wallets/' || w, w, $3, \
        'http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json', lower(hex(randomblob(16))), \
        '{\"walletExternalKey\":\"' || w || '\",\"displayName\":\"Bench wallet\",\"email\":\"ops@bench.example\",\"website\":\"https://bench.example\",\"phoneNumber\":null,\"address\":{\"street\":\"Benchstraat 1\",\"postalCode\":\"1000 AA\",\"city\":\"Amsterdam\",\"country\":\"NL\"},\"createdAt\":\"2026-11-26T12:00:00.000Z\",\"createdBy\":\"bench\"}', $3 \
        FROM k";
    const PG_DELIVERIES: &str = "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, state, \
        attempts, max_attempts, due_at, created_at, updated_at) \
        SELECT gen_random_uuid()::text, e.id, $1, NULL, 'PENDING', 0, 15, $2, $2, $2 FROM integration_event e WHERE e.id > $3 ORDER BY e.id";
    const SQLITE_DELIVERIES: &str = "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, state, \
        attempts, max_attempts, due_at, created_at, updated_at) \
        SELECT lower(hex(randomblob(16))), e.id, $1, NULL, 'PENDING', 0, 15, $2, $2, $2 FROM integration_event e WHERE e.id > $3 ORDER BY e.id";
    let (events_sql, deliveries_sql, analyze): (_, _, &[&str]) = match db {
        Db::Postgres(_) => (
            PG_EVENTS,
            PG_DELIVERIES,
            &["ANALYZE integration_delivery", "ANALYZE integration_event"],
        ),
        Db::Sqlite { .. } => (SQLITE_EVENTS, SQLITE_DELIVERIES, &["ANALYZE"]),
    };
    let mut written = 0;
    while written < n {
        let size = (n - written).min(CHUNK) as i64;
        let now = now_ms() - 1_000;
        with_writer!(db, pool => {
            let mut tx = pool.begin().await?;
            let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM integration_event")
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(events_sql)
                .bind(size)
                .bind(EVENT_TYPE)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(deliveries_sql)
                .bind(channel_id)
                .bind(now)
                .bind(last)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        written += size as u64;
    }
    // Fresh statistics, as autovacuum / `PRAGMA optimize` would soon have them.
    for statement in analyze {
        with_writer!(db, pool => sqlx::query(statement).execute(pool).await.map(|_| ())?);
    }
    Ok(started.elapsed())
}

/// Opens the product's pools on `url` and writes a backlog (the server must not be running).
pub async fn backlog_for_server(url: &str, data_dir: &Path, n: u64) -> anyhow::Result<Duration> {
    let db = open_product_db(url, data_dir).await?;
    let took = write_backlog(&db, n).await;
    db.close().await;
    took
}

/// What claiming costs with a given number of pending deliveries.
#[derive(Debug, Clone, Copy)]
pub struct ClaimCost {
    /// Median time of one claim of `batch` rows (claim statement plus loading the rows), ms.
    pub median_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Rows per claim.
    pub batch: i64,
    /// Time to write the backlog, s.
    pub setup_s: f64,
}

/// Times the dispatcher's real claim (through the product's store) `repeats` times over a
/// fresh database holding `pending` due deliveries.
pub async fn claim_cost(
    url: &str,
    data_dir: &Path,
    pending: u64,
    repeats: usize,
    batch: i64,
) -> anyhow::Result<ClaimCost> {
    let db = open_product_db(url, data_dir).await?;
    insert_channel(&db).await?;
    let cost = time_claims(&db, pending, repeats, batch).await;
    db.close().await;
    cost
}

/// SQLite's rate for the publishing transaction (wallet row, event row, channel look-up,
/// delivery row, commit) with the product's settings (WAL, `synchronous=FULL`), on one
/// connection as the product's single writer does. Returns commits per second.
pub async fn sqlite_commit_ceiling(data_dir: &Path, duration: Duration) -> anyhow::Result<f64> {
    let file = data_dir.join("ceiling.db");
    let url = format!("sqlite://{}", file.display());
    let db = open_product_db(&url, data_dir).await?;
    insert_channel(&db).await?;
    db.close().await;
    let options = SqliteConnectOptions::from_str(&url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < duration {
        let w = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let mut tx = pool.begin().await?;
        let _wallet: i64 = sqlx::query_scalar(
            "INSERT INTO wallet (wallet_external_key, display_name, email, website, phone_number, address, created_at, created_by) \
             VALUES ($1, 'Bench wallet', 'ops@bench.example', 'https://bench.example', NULL, '{\"street\":\"Benchstraat 1\"}', $2, 'bench') RETURNING id",
        )
        .bind(&w)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let event: i64 = sqlx::query_scalar(
            "INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, time, dataschema, correlation_id, data, created_at) \
             VALUES ($1, $2, '/credenco/wallets', $3, $4, $5, 'http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json', $6, $7, $5) RETURNING id",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(EVENT_TYPE)
        .bind(format!("wallets/{w}"))
        .bind(&w)
        .bind(now)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(format!("{{\"walletExternalKey\":\"{w}\",\"displayName\":\"Bench wallet\",\"email\":\"ops@bench.example\",\"website\":\"https://bench.example\",\"phoneNumber\":null,\"address\":{{\"street\":\"Benchstraat 1\",\"postalCode\":\"1000 AA\",\"city\":\"Amsterdam\",\"country\":\"NL\"}},\"createdAt\":\"2026-11-26T12:00:00.000Z\",\"createdBy\":\"bench\"}}"))
        .fetch_one(&mut *tx)
        .await?;
        let channels: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT c.id, c.wallet_external_key FROM integration_channel c JOIN integration_channel_subscription s ON s.channel_id = c.id \
             WHERE s.event_type = $1 AND c.enabled AND (c.wallet_external_key = $2 OR c.wallet_external_key IS NULL)",
        )
        .bind(EVENT_TYPE)
        .bind(&w)
        .fetch_all(&mut *tx)
        .await?;
        for (channel, owner) in channels {
            sqlx::query(
                "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, state, attempts, max_attempts, due_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'PENDING', 0, 15, $5, $5, $5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(event)
            .bind(channel)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        commits += 1;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}

/// The pgbench script: the statements of the API's publishing transaction for a new wallet
/// (wallet row, event row, fan-out to subscribed channels, NOTIFY), one round trip each as the
/// server makes them. pgbench reads `:name` as a variable even inside a string literal, so
/// the data has no colon directly followed by a letter or digit.
const PGBENCH_SCRIPT: &str = r#"BEGIN;
INSERT INTO wallet (wallet_external_key, display_name, email, website, phone_number, address, created_at, created_by) VALUES (gen_random_uuid()::text, 'Bench wallet', 'ops@bench.example', 'https://bench.example', NULL, '{"street":"Benchstraat 1","postalCode":"1000 AA","city":"Amsterdam","country":"NL"}', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, 'bench') RETURNING wallet_external_key AS k \gset
INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, time, dataschema, correlation_id, data, created_at) VALUES (gen_random_uuid()::text, 'com.credenco.businesswallet.wallet.created.v1', '/credenco/wallets', 'wallets/' || :k, :k, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, 'http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json', gen_random_uuid()::text, '{"walletExternalKey":"' || :k || '","displayName":"Bench wallet","email":"ops@bench.example","website":"https://bench.example","phoneNumber": null,"address":{"street":"Benchstraat 1","postalCode":"1000 AA","city":"Amsterdam","country":"NL"},"createdAt":"2026-11-26T12.00.00.000Z","createdBy":"bench"}', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT) RETURNING id AS eid \gset
INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, state, attempts, max_attempts, due_at, created_at, updated_at) SELECT gen_random_uuid()::text, :eid, c.id, c.wallet_external_key, 'PENDING', 0, 15, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT FROM integration_channel c JOIN integration_channel_subscription s ON s.channel_id = c.id WHERE s.event_type = 'com.credenco.businesswallet.wallet.created.v1' AND c.enabled AND (c.wallet_external_key = :k OR c.wallet_external_key IS NULL);
SELECT pg_notify('business_wallet_deliveries', '');
COMMIT;
"#;

/// PostgreSQL's rate for the same publishing transaction, measured with pgbench (`clients`
/// connections, two threads) on a fresh database with the product's schema and one
/// subscribed channel. Returns (transactions per second, CPU seconds of PostgreSQL).
pub async fn pgbench_ceiling(
    admin_url: &str,
    work: &Path,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64)> {
    let url = fresh_pg_database(admin_url, "bwbench_ceiling").await?;
    let db = open_product_db(&url, work).await?;
    insert_channel(&db).await?;
    db.close().await;
    let script = work.join("publish.pgbench.sql");
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let hz = crate::procstat::clock_ticks();
    let before = crate::procstat::postgres_cpu_seconds(hz);
    let out = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(duration.as_secs().max(1).to_string())
        .arg("-f")
        .arg(&script)
        .arg(&url)
        .output()
        .await
        .context("running pgbench (is it installed?)")?;
    let pg_cpu = crate::procstat::postgres_cpu_seconds(hz) - before;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench output: {text}"))?;
    drop_pg_database(admin_url, "bwbench_ceiling").await?;
    Ok((tps, pg_cpu))
}

/// How the churn scenario takes its deliveries through their life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    /// Written PENDING, claimed, delivered: what a backlog goes through.
    Claimed,
    /// Written already leased to a running dispatcher of the publishing process and delivered:
    /// what a published event goes through while its instance's dispatcher keeps up.
    HandedOff,
}

/// The claim cost with `pending` due deliveries on a fresh table, and again on the same table
/// after `churn` more deliveries went through their whole life (`how`), with autovacuum off
/// for the delivery tables whatever the server's setting, so that nothing cleans up the dead
/// rows and index entries meanwhile; then once more on a second fresh table (`control_url`),
/// right after, so that the churned table can be compared with a fresh one measured minutes
/// later too (a claim commits, and what a commit costs on a virtual disk drifts over minutes).
pub async fn churn_claim_cost(
    url: &str,
    control_url: &str,
    data_dir: &Path,
    churn: u64,
    pending: u64,
    how: Churn,
) -> anyhow::Result<(ClaimCost, ClaimCost, ClaimCost)> {
    const REPEATS: usize = 30;
    const BATCH: i64 = 64;
    let db = open_churn_db(url, data_dir).await?;
    let fresh = time_claims(&db, pending, REPEATS, BATCH).await?;
    deliver_everything(&db).await?;
    let started = Instant::now();
    match how {
        Churn::Claimed => {
            let mut done = 0;
            while done < churn {
                let n = (churn - done).min(50_000);
                write_backlog(&db, n).await?;
                deliver_everything(&db).await?;
                done += n;
            }
        }
        Churn::HandedOff => hand_off_and_deliver(&db, churn).await?,
    }
    let churn_s = started.elapsed().as_secs_f64();
    let mut after = time_claims(&db, pending, REPEATS, BATCH).await?;
    after.setup_s = churn_s;
    db.close().await;
    let control_db = open_churn_db(control_url, data_dir).await?;
    let control = time_claims(&control_db, pending, REPEATS, BATCH).await?;
    control_db.close().await;
    Ok((fresh, after, control))
}

/// Opens a churn scenario's database with its channel, autovacuum off for the delivery tables.
async fn open_churn_db(url: &str, data_dir: &Path) -> anyhow::Result<Db> {
    let db = open_product_db(url, data_dir).await?;
    if let Db::Postgres(pool) = &db {
        for table in [
            "integration_delivery",
            "integration_delivery_attempt",
            "integration_event",
        ] {
            sqlx::query(&format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"))
                .execute(pool)
                .await?;
        }
    }
    insert_channel(&db).await?;
    Ok(db)
}

/// Writes `pending` due deliveries and times `repeats` claims of `batch` (after one warm-up, as
/// a running dispatcher has its statements prepared and pages cached).
async fn time_claims(db: &Db, pending: u64, repeats: usize, batch: i64) -> anyhow::Result<ClaimCost> {
    let setup = write_backlog(db, pending).await?;
    let request = ClaimRequest {
        limit: batch,
        lease_ms: 300_000,
        skip_channels: &[],
        owner: "bench",
    };
    deliveries::claim(db, &request).await?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        let claimed = deliveries::claim(db, &request).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if claimed.len() as i64 != batch {
            bail!("a claim returned {} rows instead of {batch}", claimed.len());
        }
    }
    let p = stats::percentiles(&samples);
    Ok(ClaimCost {
        median_ms: p.p50,
        p95_ms: p.p95,
        batch,
        setup_s: setup.as_secs_f64(),
    })
}

/// Claims everything due (and everything leased by the bench) and stores it as DELIVERED, as
/// the dispatcher would.
async fn deliver_everything(db: &Db) -> anyhow::Result<()> {
    // What the timed claims left leased.
    with_writer!(db, pool => sqlx::query("UPDATE integration_delivery SET state = 'PENDING', lease_token = NULL, lease_owner = NULL WHERE state = 'DELIVERING'")
        .execute(pool)
        .await
        .map(|_| ())?);
    let request = ClaimRequest {
        limit: 1_000,
        lease_ms: 300_000,
        skip_channels: &[],
        owner: "bench",
    };
    loop {
        let claimed = deliveries::claim(db, &request).await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let records: Vec<OutcomeRecord> = claimed.iter().map(delivered).collect();
        for chunk in records.chunks(256) {
            deliveries::record_outcomes(db, chunk).await?;
        }
    }
}

/// The outcome a fast receiver gives.
fn delivered(delivery: &ClaimedDelivery) -> OutcomeRecord {
    OutcomeRecord {
        id: delivery.id,
        lease_token: delivery.lease_token.clone(),
        resolution: Resolution::Delivered,
        attempt: AttemptRow {
            attempt: delivery.attempts,
            started_at: now_ms(),
            duration_ms: 1,
            outcome: AttemptOutcome::Delivered,
            request: None,
            response_status: Some(200),
            response_headers: Some("{}".into()),
            response_body: Some(String::new()),
            error: None,
        },
    }
}

/// Publishes `n` events through the outbox's store statement with their deliveries leased to a
/// dispatcher (as the hand-off does), 500 per transaction, and stores each as DELIVERED.
async fn hand_off_and_deliver(db: &Db, n: u64) -> anyhow::Result<()> {
    let mut done = 0;
    while done < n {
        let size = (n - done).min(500);
        let mut tx = db.begin().await?;
        let mut written = Vec::with_capacity(size as usize);
        let token = uuid::Uuid::new_v4().to_string();
        for _ in 0..size {
            let key = WalletKey::generate();
            let event = EventRow {
                event_id: uuid::Uuid::new_v4().to_string(),
                event_type: EVENT_TYPE.into(),
                source: "/credenco/wallets".into(),
                subject: format!("wallets/{key}"),
                wallet_external_key: key.clone(),
                time: now_ms(),
                dataschema: "http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json".into(),
                correlation_id: uuid::Uuid::new_v4().to_string(),
                traceparent: Some(business_wallet::events::TraceContext::fresh().traceparent().to_string()),
                tracestate: None,
                sequence: Some(1),
                data: format!("{{\"walletExternalKey\":\"{key}\",\"displayName\":\"Bench wallet\"}}"),
            };
            let fan_out = FanOut::Leased {
                owner: "bench",
                lease_token: &token,
                lease_ms: 300_000,
            };
            written.extend(
                events::insert_with_deliveries(&mut tx, &event, 15, now_ms(), fan_out)
                    .await?
                    .deliveries,
            );
        }
        tx.commit().await?;
        let records: Vec<OutcomeRecord> = written.iter().map(delivered).collect();
        for chunk in records.chunks(256) {
            deliveries::record_outcomes(db, chunk).await?;
        }
        done += size;
    }
    Ok(())
}
