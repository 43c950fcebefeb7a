//! The validation handshake's columns of `integration_channel` (see
//! `domain::channel::validation`): which unverified channels are due for a try, what a try
//! found, and a channel its receiver disabled with 410 Gone.
//!
//! Every change is guarded by the state it expects (`validation_state = 'UNVERIFIED'`,
//! `enabled`), so that two dispatcher instances never record the same change twice.

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::{ChannelKey, WalletKey};

/// The state of a channel whose receiver has not answered the handshake yet.
pub const UNVERIFIED: &str = "UNVERIFIED";
/// The state of a channel whose receiver answered it.
pub const VERIFIED: &str = "VERIFIED";

/// Most channels one heartbeat round tries.
const BATCH: i64 = 20;

/// An unverified channel taken for a handshake try.
#[derive(Debug, Clone, FromRow)]
pub struct Unverified {
    /// Row id.
    pub id: i64,
    /// Public key.
    pub channel_external_key: ChannelKey,
    /// Owning wallet; `None` for a platform channel.
    pub wallet_external_key: Option<WalletKey>,
    /// Name.
    pub name: String,
    /// Type.
    pub channel_type: String,
    /// The type block, as JSON text (the try is recorded only while it is unchanged).
    pub config: String,
    /// Sealed secrets.
    pub secrets: Option<Vec<u8>>,
    /// The channel's own rate limit, a second.
    pub rate_per_sec: Option<f64>,
}

/// Takes the enabled unverified channels not tried since `before` (epoch ms), at most a
/// batch, and marks them tried at `now`: another instance's round leaves them alone until
/// `before` passes them again.
///
/// # Errors
/// Database failure.
pub async fn take_due(db: &Db, before: i64, now: i64) -> Result<Vec<Unverified>, sqlx::Error> {
    // The common case (no channel waits) reads one empty partial index, and never takes
    // SQLite's one writer connection.
    const ANY: &str = "SELECT EXISTS (SELECT 1 FROM integration_channel WHERE validation_state = 'UNVERIFIED')";
    if !with_reader!(db, p => sqlx::query_scalar::<_, bool>(ANY).fetch_one(p).await)? {
        return Ok(Vec::new());
    }
    const SQL: &str = "UPDATE integration_channel SET validation_checked_at = $2 WHERE id IN (\
                       SELECT id FROM integration_channel WHERE validation_state = 'UNVERIFIED' AND enabled \
                       AND (validation_checked_at IS NULL OR validation_checked_at <= $1) ORDER BY id LIMIT $3{lock}) \
                       AND validation_state = 'UNVERIFIED' \
                       RETURNING id, channel_external_key, wallet_external_key, name, channel_type, config, secrets, rate_per_sec";
    match db {
        Db::Postgres(pool) => {
            sqlx::query_as(&SQL.replace("{lock}", " FOR UPDATE SKIP LOCKED"))
                .bind(before)
                .bind(now)
                .bind(BATCH)
                .fetch_all(pool)
                .await
        }
        Db::Sqlite { writer, .. } => {
            sqlx::query_as(&SQL.replace("{lock}", ""))
                .bind(before)
                .bind(now)
                .bind(BATCH)
                .fetch_all(writer)
                .await
        }
    }
}

/// Stores why a try did not verify the channel (while it is still unverified).
///
/// # Errors
/// Database failure.
pub async fn record_failure(db: &Db, id: i64, error: &str) -> Result<(), sqlx::Error> {
    const SQL: &str =
        "UPDATE integration_channel SET validation_error = $2 WHERE id = $1 AND validation_state = 'UNVERIFIED'";
    match db {
        Db::Postgres(pool) => sqlx::query(SQL).bind(id).bind(error).execute(pool).await.map(|_| ()),
        Db::Sqlite { writer, .. } => sqlx::query(SQL).bind(id).bind(error).execute(writer).await.map(|_| ()),
    }
}

/// Marks the channel verified with the rate its receiver allowed, when it is still unverified
/// with the type block `config` the handshake was sent for; `false` otherwise (another
/// instance verified it, or it was edited meanwhile).
///
/// # Errors
/// Database failure.
pub async fn mark_verified(
    tx: &mut Tx,
    id: i64,
    config: &str,
    allowed_rate_per_sec: Option<f64>,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE integration_channel SET validation_state = 'VERIFIED', validation_error = NULL, \
                       allowed_rate_per_sec = $3 WHERE id = $1 AND config = $2 AND validation_state = 'UNVERIFIED'";
    let done = with_tx!(tx, c => sqlx::query(SQL)
        .bind(id)
        .bind(config)
        .bind(allowed_rate_per_sec)
        .execute(c)
        .await
        .map(|d| d.rows_affected()))?;
    Ok(done == 1)
}

/// Disables an enabled channel at `now`, as an operator would: its deliveries wait until it is
/// enabled again. `false` when it was disabled already.
///
/// # Errors
/// Database failure.
pub async fn disable(tx: &mut Tx, id: i64, now: i64, actor: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str =
        "UPDATE integration_channel SET enabled = FALSE, updated_at = $2, updated_by = $3 WHERE id = $1 AND enabled";
    let done = with_tx!(tx, c => sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .bind(actor)
        .execute(c)
        .await
        .map(|d| d.rows_affected()))?;
    Ok(done == 1)
}

/// The channel's row details for a history entry: key, wallet, name and type.
///
/// # Errors
/// Database failure.
pub async fn describe(
    tx: &mut Tx,
    id: i64,
) -> Result<Option<(ChannelKey, Option<WalletKey>, String, String)>, sqlx::Error> {
    const SQL: &str =
        "SELECT channel_external_key, wallet_external_key, name, channel_type FROM integration_channel WHERE id = $1";
    with_tx!(tx, c => sqlx::query_as(SQL).bind(id).fetch_optional(c).await)
}
