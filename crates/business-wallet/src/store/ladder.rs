//! The failure ladder's rows: a channel's delivery state with its health, the compare-and-set
//! that moves it, and what a resume releases (see `domain::channel::ladder`).

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::{ChannelKey, DeliveryState, WalletKey};

/// Where a channel stands: its state and the health the ladder's rule reads.
#[derive(Debug, Clone, FromRow)]
pub struct Standing {
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
    /// `ACTIVE`, `FAILING` or `PAUSED`.
    pub delivery_state: String,
    /// Since when, epoch ms (`None`: since the channel was created).
    pub delivery_state_since: Option<i64>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i64,
    /// The last successful attempt, epoch ms.
    pub last_success_at: Option<i64>,
}

/// The standing of each of `channels` (row ids) that still exists.
///
/// # Errors
/// Database failure.
pub async fn standings(db: &Db, channels: &[i64]) -> Result<Vec<Standing>, sqlx::Error> {
    const SELECT: &str = "SELECT c.id, c.channel_external_key, c.wallet_external_key, c.name, c.channel_type, \
                          c.delivery_state, c.delivery_state_since, COALESCE(h.consecutive_failures, 0) AS consecutive_failures, \
                          h.last_success_at FROM integration_channel c \
                          LEFT JOIN integration_channel_health h ON h.channel_id = c.id";
    match db {
        Db::Postgres(pool) => {
            sqlx::query_as(&format!("{SELECT} WHERE c.id = ANY($1) ORDER BY c.id"))
                .bind(channels)
                .fetch_all(pool)
                .await
        }
        Db::Sqlite { .. } => with_reader!(db, p => sqlx::query_as(&format!(
            "{SELECT} WHERE c.id IN (SELECT value FROM json_each($1)) ORDER BY c.id"
        ))
        .bind(serde_json::to_string(channels).expect("a list of integers serialises"))
        .fetch_all(p)
        .await),
    }
}

/// Moves channel `id` from state `from` to `to` at `now`; `false` when it was not in `from`
/// (another instance moved it first).
///
/// # Errors
/// Database failure.
pub async fn set_state(tx: &mut Tx, id: i64, from: &str, to: &str, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE integration_channel SET delivery_state = $1, delivery_state_since = $2 \
                       WHERE id = $3 AND delivery_state = $4";
    let done = with_tx!(tx, c => sqlx::query(SQL).bind(to).bind(now).bind(id).bind(from).execute(c).await.map(|d| d.rows_affected()))?;
    Ok(done == 1)
}

/// Forgets channel `id`'s failures in a row (a resume starts counting afresh).
///
/// # Errors
/// Database failure.
pub async fn clear_failures(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE integration_channel_health SET consecutive_failures = 0 WHERE channel_id = $1";
    with_tx!(tx, c => sqlx::query(SQL).bind(id).execute(c).await.map(|d| d.rows_affected()))?;
    Ok(())
}

/// Makes every PENDING delivery of channel `id` due at `now`, so that all that waited go out at
/// once, in the order they were created (the claim takes equal due times by row id). Returns
/// how many.
///
/// # Errors
/// Database failure.
pub async fn release_waiting(tx: &mut Tx, id: i64, now: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str =
        "UPDATE integration_delivery SET due_at = $1, updated_at = $1 WHERE channel_id = $2 AND state = $3";
    let done = with_tx!(tx, c => sqlx::query(SQL).bind(now).bind(id).bind(DeliveryState::Pending).execute(c).await.map(|d| d.rows_affected()))?;
    Ok(done)
}
