//! The outbox tables: `integration_event` and the fan-out into `integration_delivery`.

use sqlx::FromRow;

use super::deliveries::ClaimedDelivery;
use super::{with_reader, with_tx, Db, Tx, TxInner};
use crate::domain::delivery::DeliveryState;
use crate::domain::{ChannelKey, DeliveryKey, WalletKey};

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
    pub wallet_external_key: WalletKey,
    /// CloudEvents `time`, epoch milliseconds.
    pub time: i64,
    /// CloudEvents `dataschema`.
    pub dataschema: String,
    /// The `correlationid` extension.
    pub correlation_id: String,
    /// The `traceparent` extension (distributed tracing); `None` on events stored before it
    /// was recorded.
    pub traceparent: Option<String>,
    /// The `tracestate` extension, when the request had one.
    pub tracestate: Option<String>,
    /// The `sequence` extension: the event's number among its wallet's events (1, 2, ...;
    /// `None` on events stored before it was recorded).
    #[sqlx(default)]
    pub sequence: Option<i64>,
    /// The data, as JSON text.
    pub data: String,
}

/// Binds `$1` to `$12` of an event insert: the event's columns, `created_at`, then the trace
/// context (added after `created_at` by a later migration).
macro_rules! bind_event {
    ($query:expr, $event:expr, $now:expr) => {
        $query
            .bind(&$event.event_id)
            .bind(&$event.event_type)
            .bind(&$event.source)
            .bind(&$event.subject)
            .bind(&$event.wallet_external_key)
            .bind($event.time)
            .bind(&$event.dataschema)
            .bind(&$event.correlation_id)
            .bind(&$event.data)
            .bind($now)
            .bind(&$event.traceparent)
            .bind(&$event.tracestate)
    };
}

/// How [`insert_with_deliveries`] writes the deliveries.
#[derive(Debug, Clone, Copy)]
pub enum FanOut<'a> {
    /// PENDING, due now, for any dispatcher to claim.
    Pending,
    /// Already claimed by a dispatcher of this process (DELIVERING under `lease_token`, owned
    /// by `owner`, for `lease_ms`, the attempt counted): handed to it when the transaction
    /// commits, so the delivery goes out without a claim.
    Leased {
        /// The dispatcher instance.
        owner: &'a str,
        /// The lease of every delivery of this event.
        lease_token: &'a str,
        /// Lease length, in milliseconds.
        lease_ms: i64,
    },
}

/// A delivery row written by [`insert_with_deliveries`], with its channel.
#[derive(Debug, Clone, FromRow)]
struct FannedOut {
    id: i64,
    delivery_external_key: DeliveryKey,
    channel_id: i64,
    channel_external_key: ChannelKey,
    channel_type: String,
    channel_config: String,
    channel_secrets: Option<Vec<u8>>,
    channel_delivery_state: String,
    /// Written in the state the fan-out asked for: `false` for a delivery that is written
    /// PENDING however the fan-out asked (see [`HELD`]).
    as_asked: bool,
    /// Left PENDING for a claim, to be made at once: a delivery of an ordered channel.
    to_claim: bool,
}

/// The ordering of a channel whose deliveries of one wallet go out one at a time, in order.
pub const PER_WALLET: &str = "PER_WALLET";

/// The deliveries a fan-out never leases, whatever it asks: those of a PAUSED channel (they
/// wait for a resume), those of a PER_WALLET channel (they wait for their wallet's earlier
/// deliveries: only the claim knows when they may go), those of a PULL channel (its
/// receiver fetches them; no dispatcher sends them), those of a limited channel (a rate, an
/// in-flight limit, a pause its receiver asked for or a rate it allowed in the validation
/// handshake: only the claim counts them against the limits, for every instance together) and
/// those of a channel whose receiver has not answered the validation handshake yet (they wait
/// for it).
const HELD: &str = "(c.delivery_state = 'PAUSED' OR c.ordering = 'PER_WALLET' OR c.channel_type = 'PULL' \
                    OR c.rate_per_sec IS NOT NULL OR c.max_in_flight IS NOT NULL OR c.throttled_until IS NOT NULL \
                    OR c.allowed_rate_per_sec IS NOT NULL OR c.validation_state = 'UNVERIFIED')";
/// Of the held deliveries, those a claim may take at once: all but a PAUSED, PULL or
/// unverified channel's.
const TO_CLAIM: &str = "(c.delivery_state <> 'PAUSED' AND c.channel_type <> 'PULL' \
                        AND (c.validation_state IS NULL OR c.validation_state <> 'UNVERIFIED'))";

/// What [`insert_with_deliveries`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The deliveries written as `fan_out` asked (all of them for [`FanOut::Pending`]), as a
    /// dispatcher that claimed them would hold them.
    pub deliveries: Vec<ClaimedDelivery>,
    /// Deliveries written PENDING although the fan-out leased (see `HELD`), left out of
    /// `deliveries`.
    pub held: usize,
    /// Of those, the ones a claim may take now (an ordered channel's): the dispatchers must be
    /// woken for them.
    pub to_claim: usize,
}

/// Inserts the event and one delivery for every enabled channel subscribed to its type that
/// belongs to the event's wallet or to the platform (no wallet), PENDING or leased as `fan_out`
/// says. Returns the deliveries, as a dispatcher that claimed them would hold them. A PAUSED
/// channel's delivery is always written PENDING and, when `fan_out` leases, left out of the
/// answer: it waits for the channel to be resumed. Runs inside the caller's transaction.
///
/// # Errors
/// Database failure.
pub async fn insert_with_deliveries(
    tx: &mut Tx,
    event: &EventRow,
    max_attempts: i64,
    now: i64,
    fan_out: FanOut<'_>,
) -> Result<Written, sqlx::Error> {
    let (state, attempts, lease_ms, lease_token, owner) = match fan_out {
        FanOut::Pending => (DeliveryState::Pending, 0_i64, 0_i64, None, None),
        FanOut::Leased {
            owner,
            lease_token,
            lease_ms,
        } => (DeliveryState::Delivering, 1, lease_ms, Some(lease_token), Some(owner)),
    };
    let rows: Vec<FannedOut> = match &mut tx.inner {
        // One statement writes the event and fans it out; PostgreSQL generates the delivery
        // keys. The due time comes from the database clock, the clock of the dispatchers'
        // claims and leases.
        TxInner::Postgres(tx) => {
            const INSERT: &str = "WITH e AS (INSERT INTO integration_event (event_id, event_type, source, subject, \
                wallet_external_key, time, dataschema, correlation_id, data, created_at, traceparent, tracestate, sequence) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $19) RETURNING id), \
                d AS (INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, \
                state, attempts, max_attempts, due_at, lease_token, lease_owner, created_at, updated_at, ordering_key) \
                SELECT gen_random_uuid()::text, e.id, c.id, c.wallet_external_key, \
                CASE WHEN {held} THEN 'PENDING' ELSE $13 END, \
                CASE WHEN {held} THEN 0 ELSE $14 END, $15, \
                (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT + CASE WHEN {held} THEN 0 ELSE $16 END, \
                CASE WHEN {held} THEN NULL ELSE $17 END, \
                CASE WHEN {held} THEN NULL ELSE $18 END, $10, $10, \
                CASE WHEN c.ordering = 'PER_WALLET' THEN $5 END \
                FROM e, integration_channel c JOIN integration_channel_subscription s ON s.channel_id = c.id \
                WHERE s.event_type = $2 AND c.enabled AND (c.wallet_external_key = $5 OR c.wallet_external_key IS NULL) \
                RETURNING id, delivery_external_key, channel_id, state) \
                SELECT d.id, d.delivery_external_key, d.channel_id, c.channel_external_key, c.channel_type, \
                c.config AS channel_config, c.secrets AS channel_secrets, c.delivery_state AS channel_delivery_state, \
                d.state = $13 AS as_asked, \
                {to_claim} AS to_claim \
                FROM d JOIN integration_channel c ON c.id = d.channel_id ORDER BY d.id";
            let insert = INSERT.replace("{held}", HELD).replace("{to_claim}", TO_CLAIM);
            bind_event!(sqlx::query_as(&insert), event, now)
                .bind(state)
                .bind(attempts)
                .bind(max_attempts)
                .bind(lease_ms)
                .bind(lease_token)
                .bind(owner)
                .bind(event.sequence)
                .fetch_all(&mut **tx)
                .await?
        }
        // SQLite has no UUID function: select the channels, then insert with keys made here.
        // The statements run on the single writer connection, in the same transaction.
        TxInner::Sqlite(tx) => {
            const INSERT_EVENT: &str =
                "INSERT INTO integration_event (event_id, event_type, source, subject, wallet_external_key, \
                time, dataschema, correlation_id, data, created_at, traceparent, tracestate, sequence) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";
            const CHANNELS: &str = "SELECT c.id, c.wallet_external_key, c.channel_external_key, c.channel_type, c.config, c.secrets, \
                c.delivery_state, c.ordering, \
                (c.rate_per_sec IS NOT NULL OR c.max_in_flight IS NOT NULL OR c.throttled_until IS NOT NULL \
                OR c.allowed_rate_per_sec IS NOT NULL) AS limited, \
                (c.validation_state IS NOT NULL AND c.validation_state = 'UNVERIFIED') AS unverified \
                FROM integration_channel c JOIN integration_channel_subscription s ON s.channel_id = c.id \
                WHERE s.event_type = $1 AND c.enabled AND (c.wallet_external_key = $2 OR c.wallet_external_key IS NULL)";
            const INSERT: &str =
                "INSERT INTO integration_delivery (delivery_external_key, event_id, channel_id, wallet_external_key, \
                state, attempts, max_attempts, due_at, lease_token, lease_owner, created_at, updated_at, ordering_key) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING id";
            let event_row_id: i64 = bind_event!(sqlx::query_scalar(INSERT_EVENT), event, now)
                .bind(event.sequence)
                .fetch_one(&mut **tx)
                .await?;
            type Channel = (
                i64,
                Option<WalletKey>,
                ChannelKey,
                String,
                String,
                Option<Vec<u8>>,
                String,
                String,
                bool,
                bool,
            );
            let channels: Vec<Channel> = sqlx::query_as(CHANNELS)
                .bind(&event.event_type)
                .bind(&event.wallet_external_key)
                .fetch_all(&mut **tx)
                .await?;
            let mut rows = Vec::with_capacity(channels.len());
            for (
                channel_id,
                owner_wallet,
                channel_external_key,
                channel_type,
                config,
                secrets,
                delivery_state,
                ordering,
                limited,
                unverified,
            ) in channels
            {
                let key = DeliveryKey::generate();
                // A PAUSED channel's delivery waits as PENDING, never leased; so does an ordered
                // channel's, which goes out only after the wallet's earlier ones (the claim's rule),
                // a limited channel's, which only the claim counts against its limits, and an
                // unverified channel's, which waits for its receiver's validation handshake.
                let ordered = ordering == PER_WALLET;
                let pulled = channel_type == crate::channels::kind::PULL;
                let to_claim = delivery_state != "PAUSED" && !pulled && !unverified;
                let paused = delivery_state == "PAUSED" || ordered || pulled || limited || unverified;
                let id: i64 = sqlx::query_scalar(INSERT)
                    .bind(&key)
                    .bind(event_row_id)
                    .bind(channel_id)
                    .bind(owner_wallet)
                    .bind(if paused { DeliveryState::Pending } else { state })
                    .bind(if paused { 0 } else { attempts })
                    .bind(max_attempts)
                    .bind(now + if paused { 0 } else { lease_ms })
                    .bind(if paused { None } else { lease_token })
                    .bind(if paused { None } else { owner })
                    .bind(now)
                    .bind(ordered.then_some(&event.wallet_external_key))
                    .fetch_one(&mut **tx)
                    .await?;
                rows.push(FannedOut {
                    id,
                    delivery_external_key: key,
                    channel_id,
                    channel_external_key,
                    channel_type,
                    channel_config: config,
                    channel_secrets: secrets,
                    as_asked: !paused || state == DeliveryState::Pending,
                    to_claim,
                    channel_delivery_state: delivery_state,
                });
            }
            rows
        }
    };
    let held = rows.iter().filter(|row| !row.as_asked).count();
    let to_claim = rows.iter().filter(|row| !row.as_asked && row.to_claim).count();
    let deliveries = rows
        .into_iter()
        .filter(|row| row.as_asked)
        .map(|row| ClaimedDelivery {
            id: row.id,
            delivery_external_key: row.delivery_external_key,
            lease_token: lease_token.unwrap_or_default().to_string(),
            attempts,
            max_attempts,
            created_at: now,
            channel_id: row.channel_id,
            channel_external_key: row.channel_external_key,
            channel_type: row.channel_type,
            channel_config: row.channel_config,
            channel_secrets: row.channel_secrets,
            channel_delivery_state: row.channel_delivery_state,
            channel_ordering: String::new(),
            event: event.clone(),
        })
        .collect();
    Ok(Written {
        deliveries,
        held,
        to_claim,
    })
}

/// Gives the next `sequence` of `wallet`'s events (1 for its first), in the caller's
/// transaction: the wallet's row stays locked until it ends, so concurrent events of one wallet
/// are numbered one after the other, without gaps (a rolled-back number is given again).
/// `None` when the wallet does not exist.
///
/// # Errors
/// Database failure.
pub async fn next_sequence(tx: &mut Tx, wallet: &WalletKey) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "UPDATE wallet SET event_sequence = event_sequence + 1 WHERE wallet_external_key = $1 \
                       RETURNING event_sequence";
    with_tx!(tx, c => sqlx::query_scalar(SQL).bind(wallet).fetch_optional(c).await)
}

/// Events of one wallet, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list_for_wallet(db: &Db, wallet_key: &WalletKey) -> Result<Vec<EventRow>, sqlx::Error> {
    const SQL: &str =
        "SELECT event_id, event_type, source, subject, wallet_external_key, time, dataschema, correlation_id, traceparent, tracestate, data \
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
    if let TxInner::Postgres(tx) = &mut tx.inner {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::outbox::NOTIFY_CHANNEL)
            .bind(sender)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
