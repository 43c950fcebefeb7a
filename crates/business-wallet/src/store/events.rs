//! The outbox tables: `integration_event` and the fan-out into `integration_delivery`.

use sqlx::FromRow;
use uuid::Uuid;

use super::{with_reader, with_tx, Db, Tx};

/// An event as stored: the CloudEvent attributes and its data.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    /// CloudEvents `id`.
    pub event_id: String,
    /// CloudEvents `type`.
    pub event_type: String,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `subject`.
    pub subject: String,
    /// The `walletexternalkey` extension.
    pub wallet_external_key: String,
    /// CloudEvents `time`, epoch milliseconds.
    pub time: i64,
    /// CloudEvents `dataschema`.
    pub dataschema: String,
    /// The `correlationid` extension.
    pub correlation_id: String,
    /// The data, as JSON text.
    pub data: String,
}

/// Inserts the event and one PENDING delivery for every enabled channel subscribed to its type
/// that belongs to the event's wallet or to the platform (no wallet). Returns the number of
/// deliveries created. Runs inside the caller's transaction.
///
/// # Errors
/// Database failure.
pub async fn insert_with_deliveries(
    tx: &mut Tx,
    event: &EventRow,
    max_attempts: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    const INSERT_EVENT: &str = "INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, time, \
                                dataschema, correlation_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
    let event_row_id: i64 = with_tx!(&mut *tx, c => sqlx::query_scalar(INSERT_EVENT)
        .bind(&event.event_id)
        .bind(&event.event_type)
        .bind(&event.source)
        .bind(&event.subject)
        .bind(&event.wallet_external_key)
        .bind(event.time)
        .bind(&event.dataschema)
        .bind(&event.correlation_id)
        .bind(&event.data)
        .bind(now)
        .fetch_one(c)
        .await)?;

    match tx {
        // One statement fans the event out; PostgreSQL generates the delivery keys. The due time
        // comes from the database clock, the clock the dispatchers' claims compare it with.
        Tx::Postgres(tx) => {
            const FAN_OUT: &str = "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, \
                                   state, attempts, max_attempts, due_at, created_at, updated_at) \
                                   SELECT gen_random_uuid()::text, $1, c.id, c.wallet_external_key, 'PENDING', 0, $2, \
                                   (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, $3, $3 \
                                   FROM integration_channel c JOIN integration_channel_subscription s ON s.channel_id = c.id \
                                   WHERE s.event_type = $4 AND c.enabled AND (c.wallet_external_key = $5 OR c.wallet_external_key IS NULL)";
            let done = sqlx::query(FAN_OUT)
                .bind(event_row_id)
                .bind(max_attempts)
                .bind(now)
                .bind(&event.event_type)
                .bind(&event.wallet_external_key)
                .execute(&mut **tx)
                .await?;
            Ok(done.rows_affected())
        }
        // SQLite has no UUID function: select the channels, then insert with keys made here.
        // Both statements run on the single writer connection, in the same transaction.
        Tx::Sqlite(tx) => {
            const CHANNELS: &str = "SELECT c.id, c.wallet_external_key FROM integration_channel c \
                                    JOIN integration_channel_subscription s ON s.channel_id = c.id \
                                    WHERE s.event_type = $1 AND c.enabled AND (c.wallet_external_key = $2 OR c.wallet_external_key IS NULL)";
            const INSERT: &str =
                "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, \
                                  state, attempts, max_attempts, due_at, created_at, updated_at) \
                                  VALUES ($1, $2, $3, $4, 'PENDING', 0, $5, $6, $6, $6)";
            let channels: Vec<(i64, Option<String>)> = sqlx::query_as(CHANNELS)
                .bind(&event.event_type)
                .bind(&event.wallet_external_key)
                .fetch_all(&mut **tx)
                .await?;
            for (channel_id, owner) in &channels {
                sqlx::query(INSERT)
                    .bind(Uuid::new_v4().to_string())
                    .bind(event_row_id)
                    .bind(channel_id)
                    .bind(owner)
                    .bind(max_attempts)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(channels.len() as u64)
        }
    }
}

/// Events of one wallet, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list_for_wallet(db: &Db, wallet_key: &str) -> Result<Vec<EventRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT event_id, event_type, source, subject, wallet_external_key, time, dataschema, correlation_id, data \
                       FROM integration_event WHERE wallet_external_key = $1 ORDER BY id";
    with_reader!(db, p => sqlx::query_as::<_, EventRow>(SQL).bind(wallet_key).fetch_all(p).await)
}

/// Queues a wake-up for dispatchers on other PostgreSQL instances; delivered at commit, and
/// only if the transaction commits. `sender` identifies the publishing outbox, whose own
/// dispatcher is woken in-process instead. SQLite has a single process, woken in-process.
///
/// # Errors
/// Database failure.
pub async fn notify_dispatchers(tx: &mut Tx, sender: &str) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::outbox::NOTIFY_CHANNEL)
            .bind(sender)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
