//! Channel rows and their subscriptions.

use sqlx::FromRow;

use super::{with_reader, with_tx, Db, Tx};
use crate::domain::{ChannelKey, Scope, WalletKey};

/// A stored channel. `secrets` is sealed; `config` holds no secret.
#[derive(Debug, Clone, FromRow)]
pub struct ChannelRow {
    /// Row id.
    pub id: i64,
    /// Public key.
    pub channel_external_key: ChannelKey,
    /// Owning wallet; `None` for a platform channel.
    pub wallet_external_key: Option<WalletKey>,
    /// Unique per wallet (or among platform channels).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `WEBHOOK`, `KAFKA`, `JMS` or a custom adapter's type.
    pub channel_type: String,
    /// Whether new deliveries are created and existing ones dispatched.
    pub enabled: bool,
    /// The type block as JSON text.
    pub config: String,
    /// Sealed secrets.
    pub secrets: Option<Vec<u8>>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Updated, epoch ms.
    pub updated_at: i64,
    /// Creator's `sub`.
    pub created_by: String,
    /// Last editor's `sub`.
    pub updated_by: String,
    /// Where the channel stands on the failure ladder: `ACTIVE`, `FAILING` or `PAUSED`.
    pub delivery_state: String,
    /// Since when, epoch ms (`None`: since it was created).
    pub delivery_state_since: Option<i64>,
    /// `BEST_EFFORT` or `PER_WALLET`.
    pub ordering: String,
    /// Most deliveries a second, on all instances together (`None`: no rate limit).
    pub rate_per_sec: Option<f64>,
    /// Most deliveries at once within the rate (set when `rate_per_sec` is).
    pub rate_burst: Option<i32>,
    /// Most deliveries in flight at once, on all instances together (`None`: no limit beyond
    /// `integration.dispatch.max_in_flight_per_channel` per instance).
    pub max_in_flight: Option<i32>,
    /// The receiver asked for a pause (`429`/`503` with `Retry-After`) until then, epoch ms.
    pub throttled_until: Option<i64>,
    /// The validation handshake: `None` when the channel does not require it, `UNVERIFIED`
    /// until its receiver has answered it (its deliveries wait), `VERIFIED` once it has.
    pub validation_state: Option<String>,
    /// When the handshake was last tried, epoch ms.
    pub validation_checked_at: Option<i64>,
    /// Why the last try did not verify the receiver.
    pub validation_error: Option<String>,
    /// The rate the receiver allowed in the handshake, a second (`None`: any rate).
    pub allowed_rate_per_sec: Option<f64>,
}

const COLUMNS: &str =
    "id, channel_external_key, wallet_external_key, name, description, channel_type, enabled, config, \
                       secrets, created_at, updated_at, created_by, updated_by, delivery_state, delivery_state_since, ordering, \
                       rate_per_sec, rate_burst, max_in_flight, throttled_until, validation_state, validation_checked_at, \
                       validation_error, allowed_rate_per_sec";

fn owner_clause(scope: &Scope) -> &'static str {
    match scope {
        Scope::Wallet(_) => "wallet_external_key = $1",
        Scope::Platform => "wallet_external_key IS NULL AND $1 IS NULL",
    }
}

fn owner(scope: &Scope) -> Option<&WalletKey> {
    match scope {
        Scope::Wallet(w) => Some(w),
        Scope::Platform => None,
    }
}

/// Inserts a channel with its subscriptions; returns the row id.
///
/// # Errors
/// Database failure, including the unique violation of a duplicate name.
pub async fn insert(tx: &mut Tx, row: &ChannelRow, event_types: &[String]) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO integration_channel (channel_external_key, wallet_external_key, name, description, \
                       channel_type, enabled, config, secrets, created_at, updated_at, created_by, updated_by, ordering, \
                       rate_per_sec, rate_burst, max_in_flight, validation_state) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id";
    let id: i64 = with_tx!(&mut *tx, c => sqlx::query_scalar(SQL)
        .bind(&row.channel_external_key)
        .bind(&row.wallet_external_key)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.channel_type)
        .bind(row.enabled)
        .bind(&row.config)
        .bind(&row.secrets)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.created_by)
        .bind(&row.updated_by)
        .bind(&row.ordering)
        .bind(row.rate_per_sec)
        .bind(row.rate_burst)
        .bind(row.max_in_flight)
        .bind(&row.validation_state)
        .fetch_one(c)
        .await)?;
    replace_subscriptions(tx, id, event_types).await?;
    Ok(id)
}

/// Replaces a channel's subscriptions.
///
/// # Errors
/// Database failure.
pub async fn replace_subscriptions(tx: &mut Tx, channel_id: i64, event_types: &[String]) -> Result<(), sqlx::Error> {
    with_tx!(&mut *tx, c => sqlx::query("DELETE FROM integration_channel_subscription WHERE channel_id = $1")
        .bind(channel_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for event_type in event_types {
        with_tx!(&mut *tx, c => sqlx::query("INSERT INTO integration_channel_subscription (channel_id, event_type) VALUES ($1, $2)")
            .bind(channel_id)
            .bind(event_type)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Rewrites every mutable column of a channel (full replace).
///
/// # Errors
/// Database failure, including the unique violation of a duplicate name.
pub async fn update(tx: &mut Tx, row: &ChannelRow, event_types: &[String]) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE integration_channel SET name = $2, description = $3, channel_type = $4, enabled = $5, \
                       config = $6, secrets = $7, updated_at = $8, updated_by = $9, ordering = $10, \
                       rate_per_sec = $11, rate_burst = $12, max_in_flight = $13, validation_state = $14, \
                       validation_checked_at = $15, validation_error = $16, allowed_rate_per_sec = $17 WHERE id = $1";
    with_tx!(&mut *tx, c => sqlx::query(SQL)
        .bind(row.id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.channel_type)
        .bind(row.enabled)
        .bind(&row.config)
        .bind(&row.secrets)
        .bind(row.updated_at)
        .bind(&row.updated_by)
        .bind(&row.ordering)
        .bind(row.rate_per_sec)
        .bind(row.rate_burst)
        .bind(row.max_in_flight)
        .bind(&row.validation_state)
        .bind(row.validation_checked_at)
        .bind(&row.validation_error)
        .bind(row.allowed_rate_per_sec)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    replace_subscriptions(tx, row.id, event_types).await
}

/// Deletes a channel (its subscriptions and deliveries go with it). Returns whether it existed.
///
/// # Errors
/// Database failure.
pub async fn delete(tx: &mut Tx, id: i64) -> Result<bool, sqlx::Error> {
    // Attempts and deliveries reference the channel; remove them explicitly so the statement
    // does not depend on each backend's cascade settings.
    with_tx!(&mut *tx, c => sqlx::query(
        "DELETE FROM integration_delivery_attempt WHERE delivery_id IN (SELECT id FROM integration_delivery WHERE channel_id = $1)")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    with_tx!(&mut *tx, c => sqlx::query("DELETE FROM integration_delivery WHERE channel_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    with_tx!(&mut *tx, c => sqlx::query("DELETE FROM integration_channel_subscription WHERE channel_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let deleted = with_tx!(&mut *tx, c => sqlx::query("DELETE FROM integration_channel WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(deleted == 1)
}

/// The channel of the scope with this key, inside a transaction (for updates).
///
/// # Errors
/// Database failure.
pub async fn find_in(tx: &mut Tx, scope: &Scope, key: &ChannelKey) -> Result<Option<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integration_channel WHERE {} AND channel_external_key = $2",
        owner_clause(scope)
    );
    with_tx!(tx, c => sqlx::query_as::<_, ChannelRow>(&sql).bind(owner(scope)).bind(key).fetch_optional(c).await)
}

/// The channel of the scope with this key.
///
/// # Errors
/// Database failure.
pub async fn find(db: &Db, scope: &Scope, key: &ChannelKey) -> Result<Option<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integration_channel WHERE {} AND channel_external_key = $2",
        owner_clause(scope)
    );
    with_reader!(db, p => sqlx::query_as::<_, ChannelRow>(&sql).bind(owner(scope)).bind(key).fetch_optional(p).await)
}

/// The channels of the scope, oldest first.
///
/// # Errors
/// Database failure.
pub async fn list(db: &Db, scope: &Scope) -> Result<Vec<ChannelRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integration_channel WHERE {} ORDER BY id",
        owner_clause(scope)
    );
    with_reader!(db, p => sqlx::query_as::<_, ChannelRow>(&sql).bind(owner(scope)).fetch_all(p).await)
}

/// The subscriptions of the given channels, as (channel id, event type) pairs.
///
/// # Errors
/// Database failure.
pub async fn subscriptions(db: &Db, scope: &Scope) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT s.channel_id, s.event_type FROM integration_channel_subscription s \
         JOIN integration_channel c ON c.id = s.channel_id WHERE {} ORDER BY s.event_type",
        owner_clause(scope).replace("wallet_external_key", "c.wallet_external_key")
    );
    with_reader!(db, p => sqlx::query_as::<_, (i64, String)>(&sql).bind(owner(scope)).fetch_all(p).await)
}

/// Whether another channel of the scope already has this name.
///
/// # Errors
/// Database failure.
pub async fn name_taken(tx: &mut Tx, scope: &Scope, name: &str, except_id: Option<i64>) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "SELECT COUNT(*) FROM integration_channel WHERE {} AND name = $2 AND ($3 IS NULL OR id <> $3)",
        owner_clause(scope)
    );
    let count: i64 = with_tx!(tx, c => sqlx::query_scalar(&sql)
        .bind(owner(scope))
        .bind(name)
        .bind(except_id)
        .fetch_one(c)
        .await)?;
    Ok(count > 0)
}

/// Stores new sealed secrets.
///
/// # Errors
/// Database failure.
pub async fn update_secrets(tx: &mut Tx, id: i64, sealed: &[u8], now: i64, actor: &str) -> Result<(), sqlx::Error> {
    with_tx!(tx, c => sqlx::query("UPDATE integration_channel SET secrets = $2, updated_at = $3, updated_by = $4 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .bind(now)
        .bind(actor)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The type blocks of the webhook channels (of every wallet and the platform) that have TLS
/// settings: what the certificate expiry gauge reads at scrape time.
///
/// # Errors
/// Database failure.
pub async fn webhook_tls_configs(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT config FROM integration_channel WHERE channel_type = 'WEBHOOK' AND config LIKE '%\"tls\"%'";
    with_reader!(db, p => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await)
}
