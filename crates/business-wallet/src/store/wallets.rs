//! Wallet rows, and the folded display name that the wallet list's name search compares.

use sqlx::FromRow;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::WalletKey;

/// A stored wallet.
#[derive(Debug, Clone, FromRow)]
pub struct WalletRow {
    /// Internal row id.
    pub id: i64,
    /// Public UUID.
    pub wallet_external_key: WalletKey,
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

/// Inserts a wallet and returns its row id. The folded display name is written with it.
///
/// # Errors
/// Database failure.
pub async fn insert(tx: &mut Tx, w: &WalletRow) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO wallet (wallet_external_key, display_name, display_name_folded, email, website, phone_number, address, created_at, created_by) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    with_tx!(tx, c => sqlx::query_scalar(SQL)
        .bind(&w.wallet_external_key)
        .bind(&w.display_name)
        .bind(fold_name(&w.display_name))
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
pub async fn find(db: &Db, key: &WalletKey) -> Result<Option<WalletRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM wallet WHERE wallet_external_key = $1");
    with_reader!(db, p => sqlx::query_as::<_, WalletRow>(&sql).bind(key).fetch_optional(p).await)
}

/// Finds a wallet by its external key inside a transaction (to lock in the domain write).
///
/// # Errors
/// Database failure.
pub async fn find_in(tx: &mut Tx, key: &WalletKey) -> Result<Option<WalletRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM wallet WHERE wallet_external_key = $1");
    with_tx!(tx, c => sqlx::query_as::<_, WalletRow>(&sql).bind(key).fetch_optional(c).await)
}

/// What the wallet list selects.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    /// Only this wallet (a wallet-scoped caller sees its own wallet only).
    pub wallet: Option<&'a str>,
    /// Only wallets whose display name contains this text, compared folded ([`fold_name`]).
    pub name: Option<&'a str>,
    /// Only rows with an id above this one (the cursor: the previous page's last row).
    pub after: Option<i64>,
}

/// One page of wallets in id order (the order they were created in, stable under inserts:
/// new wallets come after every cursor handed out), at most `limit` rows.
///
/// The name search is a `LIKE` on the folded name, with the search text folded the same way
/// and its `%`, `_` and `\` taken literally. No index serves a substring search; the scan
/// stops after `limit` matches.
///
/// # Errors
/// Database failure.
pub async fn list(db: &Db, filter: &ListFilter<'_>, limit: i64) -> Result<Vec<WalletRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM wallet WHERE ($1 IS NULL OR wallet_external_key = $1) \
         AND ($2 IS NULL OR display_name_folded LIKE $2 ESCAPE '\\') AND ($3 IS NULL OR id > $3) \
         ORDER BY id LIMIT $4"
    );
    let pattern = filter.name.map(|name| format!("%{}%", escape_like(&fold_name(name))));
    with_reader!(db, p => sqlx::query_as::<_, WalletRow>(&sql)
        .bind(filter.wallet)
        .bind(&pattern)
        .bind(filter.after)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// Fills in the folded display name of the wallets written before that column existed (the
/// migration adds it empty). Runs after every migration; once done, it finds nothing to do
/// through a small partial index. Several instances running it at once write the same values.
///
/// # Errors
/// Database failure.
pub async fn backfill_folded_names(db: &Db) -> Result<u64, sqlx::Error> {
    const BATCH: i64 = 500;
    const SELECT: &str = "SELECT id, display_name FROM wallet WHERE display_name_folded IS NULL ORDER BY id LIMIT $1";
    const UPDATE: &str = "UPDATE wallet SET display_name_folded = $1 WHERE id = $2 AND display_name_folded IS NULL";
    let mut filled = 0;
    loop {
        let mut tx = db.begin().await?;
        let rows: Vec<(i64, String)> = with_tx!(tx, c => sqlx::query_as(SELECT).bind(BATCH).fetch_all(&mut *c).await)?;
        if rows.is_empty() {
            return Ok(filled);
        }
        for (id, name) in &rows {
            with_tx!(tx, c => sqlx::query(UPDATE).bind(fold_name(name)).bind(id).execute(&mut *c).await.map(|_| ()))?;
        }
        tx.commit().await?;
        filled += rows.len() as u64;
    }
}

/// A display name as the name search compares it: compatibility-decomposed (NFKD), with the
/// combining marks that the decomposition splits off removed, in lower case, and with the
/// letters that carry their accent or ligature inside them (no decomposition) spelled out:
/// "Zürich" and "ZURICH" both become "zurich", "Straße" "strasse", "Ørsted" "orsted".
pub fn fold_name(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match c {
            'ß' => folded.push_str("ss"),
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            'þ' => folded.push_str("th"),
            'ø' => folded.push('o'),
            'đ' | 'ð' => folded.push('d'),
            'ł' => folded.push('l'),
            'ı' => folded.push('i'),
            'ħ' => folded.push('h'),
            other => folded.push(other),
        }
    }
    folded
}

/// `text` for a `LIKE ... ESCAPE '\'` pattern that matches it literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_without_case_and_accents() {
        for (name, folded) in [
            ("Zürich", "zurich"),
            ("ZÜRICH", "zurich"),
            ("Zu\u{308}rich", "zurich"),
            ("Crème Brûlée B.V.", "creme brulee b.v."),
            ("Straße", "strasse"),
            ("Ørsted Æble", "orsted aeble"),
            ("Łódź", "lodz"),
            ("ｆｕｌｌ ｗｉｄｔｈ", "full width"),
            ("İstanbul", "istanbul"),
            ("Ωmega", "ωmega"),
        ] {
            assert_eq!(fold_name(name), folded, "{name}");
        }
    }

    #[test]
    fn like_wildcards_are_taken_literally() {
        assert_eq!(escape_like("100%_a\\b"), "100\\%\\_a\\\\b");
        assert_eq!(escape_like("plain"), "plain");
    }
}
