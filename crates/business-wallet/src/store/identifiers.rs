//! Identifier rows.

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::{IdentifierKey, WalletKey};

/// A stored identifier. The private key is encrypted and never leaves the store module's
/// callers in the domain layer.
#[derive(Debug, Clone, FromRow)]
pub struct IdentifierRow {
    /// Public UUID.
    pub identifier_external_key: IdentifierKey,
    /// Owning wallet's public UUID (joined).
    pub wallet_external_key: WalletKey,
    /// DID, X509 or JWK.
    pub identifier_type: String,
    /// The identifier value.
    pub identifier: String,
    /// Display name.
    pub display_name: String,
    /// DID method, for DIDs.
    pub did_type: Option<String>,
    /// DID environment, for methods that have one.
    pub did_environment: Option<String>,
    /// Key algorithm, when a key pair was generated.
    pub key_type: Option<String>,
    /// Public key as JWK JSON text.
    pub public_jwk: Option<String>,
    /// Certificate, for X509.
    pub certificate_pem: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_at: i64,
    /// `sub` of the creator.
    pub created_by: String,
}

/// Inserts an identifier for the wallet with row id `wallet_id`; `private_key` is already
/// encrypted.
///
/// # Errors
/// Database failure.
pub async fn insert(
    tx: &mut Tx,
    wallet_id: i64,
    row: &IdentifierRow,
    private_key: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO identifier (identifier_external_key, wallet_id, identifier_type, identifier, display_name, \
                       did_type, did_environment, key_type, public_jwk, certificate_pem, private_key, created_at, created_by) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    with_tx!(tx, c => sqlx::query(SQL)
        .bind(&row.identifier_external_key)
        .bind(wallet_id)
        .bind(&row.identifier_type)
        .bind(&row.identifier)
        .bind(&row.display_name)
        .bind(&row.did_type)
        .bind(&row.did_environment)
        .bind(&row.key_type)
        .bind(&row.public_jwk)
        .bind(&row.certificate_pem)
        .bind(private_key)
        .bind(row.created_at)
        .bind(&row.created_by)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

const SELECT: &str = "SELECT i.identifier_external_key, w.wallet_external_key, i.identifier_type, i.identifier, i.display_name, \
                      i.did_type, i.did_environment, i.key_type, i.public_jwk, i.certificate_pem, i.created_at, i.created_by \
                      FROM identifier i JOIN wallet w ON w.id = i.wallet_id";

/// Lists a wallet's identifiers, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list(db: &Db, wallet_key: &WalletKey) -> Result<Vec<IdentifierRow>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE w.wallet_external_key = $1 ORDER BY i.id");
    with_reader!(db, p => sqlx::query_as::<_, IdentifierRow>(&sql).bind(wallet_key).fetch_all(p).await)
}

/// Finds one identifier of a wallet.
///
/// # Errors
/// Database failure.
pub async fn find(
    db: &Db,
    wallet_key: &WalletKey,
    identifier_key: &IdentifierKey,
) -> Result<Option<IdentifierRow>, sqlx::Error> {
    let sql = format!("{SELECT} WHERE w.wallet_external_key = $1 AND i.identifier_external_key = $2");
    with_reader!(db, p => sqlx::query_as::<_, IdentifierRow>(&sql)
        .bind(wallet_key)
        .bind(identifier_key)
        .fetch_optional(p)
        .await)
}
