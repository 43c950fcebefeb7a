//! The audit log (`history`): who changed which channel or delivery, and when.

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::WalletKey;

/// One audit entry.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    /// Row id (also the pagination cursor).
    pub id: i64,
    /// The wallet concerned; `None` for platform channels.
    pub wallet_external_key: Option<WalletKey>,
    /// Category, e.g. `INTEGRATION`.
    pub event: String,
    /// What happened, e.g. `CHANNEL_CREATED`.
    pub action: String,
    /// `sub` of the principal.
    pub actor: String,
    /// JSON details.
    pub details: Option<String>,
    /// When, epoch milliseconds.
    pub created_at: i64,
}

/// Appends an entry inside the caller's transaction, so it commits with the change it records.
///
/// # Errors
/// Database failure.
pub async fn append(
    tx: &mut Tx,
    wallet: Option<&WalletKey>,
    event: &str,
    action: &str,
    actor: &str,
    details: &serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO history (wallet_external_key, event, action, actor, details, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6)";
    with_tx!(tx, c => sqlx::query(SQL)
        .bind(wallet)
        .bind(event)
        .bind(action)
        .bind(actor)
        .bind(details.to_string())
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Entries of one wallet (or of the platform when `wallet` is `None`), newest first, with ids
/// below `before` when given.
///
/// # Errors
/// Database failure.
pub async fn list(
    db: &Db,
    wallet: Option<&WalletKey>,
    event: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, wallet_external_key, event, action, actor, details, created_at FROM history \
                       WHERE (wallet_external_key = $1 OR ($1 IS NULL AND wallet_external_key IS NULL)) \
                       AND ($2 IS NULL OR event = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4";
    with_reader!(db, p => sqlx::query_as::<_, HistoryRow>(SQL)
        .bind(wallet)
        .bind(event)
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await)
}
