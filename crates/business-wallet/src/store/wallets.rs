//! Wallet rows.

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};

/// A stored wallet.
#[derive(Debug, Clone, FromRow)]
pub struct WalletRow {
    /// Internal row id.
    pub id: i64,
    /// Public UUID.
    pub wallet_external_key: String,
    /// Display name.
    pub display_name: String,
    /// Contact email.
    pub email: Option<String>,
    /// Website URL.
    pub website: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// Postal address as JSON text.
    pub address: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// `sub` of the creator.
    pub created_by: String,
}

const COLUMNS: &str =
    "id, wallet_external_key, display_name, email, website, phone_number, address, created_at, created_by";

/// Inserts a wallet and returns its row id.
///
/// # Errors
/// Database failure.
pub async fn insert(tx: &mut Tx, w: &WalletRow) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO wallet (wallet_external_key, display_name, email, website, phone_number, address, created_at, created_by) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
    with_tx!(tx, c => sqlx::query_scalar(SQL)
        .bind(&w.wallet_external_key)
        .bind(&w.display_name)
        .bind(&w.email)
        .bind(&w.website)
        .bind(&w.phone_number)
        .bind(&w.address)
        .bind(w.created_at)
        .bind(&w.created_by)
        .fetch_one(c)
        .await)
}

/// Finds a wallet by its external key.
///
/// # Errors
/// Database failure.
pub async fn find(db: &Db, key: &str) -> Result<Option<WalletRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM wallet WHERE wallet_external_key = $1");
    with_reader!(db, p => sqlx::query_as::<_, WalletRow>(&sql).bind(key).fetch_optional(p).await)
}

/// Finds a wallet by its external key inside a transaction (to lock in the domain write).
///
/// # Errors
/// Database failure.
pub async fn find_in(tx: &mut Tx, key: &str) -> Result<Option<WalletRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM wallet WHERE wallet_external_key = $1");
    with_tx!(tx, c => sqlx::query_as::<_, WalletRow>(&sql).bind(key).fetch_optional(c).await)
}
