//! Storage: the connection pools, migrations and transactions, on SQLite or PostgreSQL.
//!
//! Every SQL statement of the product lives under this module, and so does every difference
//! between the two backends. Both backends use the same schema shape: text UUIDs, JSON as text,
//! and times as milliseconds since the Unix epoch, so most statements are written once and run
//! on either pool through the `with_tx!` and `with_reader!` macros.
//!
//! SQLite runs in WAL mode with `synchronous=FULL` and a busy timeout. Writes go through a pool
//! of exactly one connection, so writers queue in-process instead of failing with `SQLITE_BUSY`;
//! reads use a separate pool. Write transactions on that connection begin, commit and roll back
//! as plain statements, so that a failed commit can never leave the one writer inside a
//! transaction (`sqlite_tx.rs` says why).

pub mod channels;
pub mod deliveries;
pub mod delivery_log;
pub mod erasure;
pub mod events;
pub mod health;
pub mod history;
pub mod identifiers;
pub mod instances;
pub mod ladder;
pub mod limits;
pub mod pull;
mod sqlite_tx;
pub mod validation;
pub mod wallets;

pub(crate) use sqlite_tx::SqliteTx;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

use crate::config::{Backend, Settings};

/// Runs `$body` with `$c` bound to the transaction's connection (`&mut PgConnection` or
/// `&mut SqliteConnection`). The body is compiled once per backend.
macro_rules! with_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut ($tx).inner {
            $crate::store::TxInner::Postgres(tx) => {
                let $c = &mut **tx;
                $body
            }
            $crate::store::TxInner::Sqlite(tx) => {
                let $c = &mut **tx;
                $body
            }
        }
    };
}

/// Runs `$body` with `$p` bound to a pool suitable for reads.
macro_rules! with_reader {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Postgres(pool) => {
                let $p = pool;
                $body
            }
            $crate::store::Db::Sqlite { reader, .. } => {
                let $p = reader;
                $body
            }
        }
    };
}

pub(crate) use with_reader;
pub(crate) use with_tx;

/// The database: a PostgreSQL pool, or SQLite's single writer and its readers.
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL; any number of instances may share it.
    Postgres(PgPool),
    /// Embedded SQLite.
    Sqlite {
        /// The one connection that writes.
        writer: SqlitePool,
        /// Connections for reads.
        reader: SqlitePool,
        /// The turn of API transactions at the writer (see [`Db::begin`]); `None` on the
        /// dispatcher's handle, whose statements do not queue behind it.
        api_turn: Option<Arc<Mutex<()>>>,
    },
}

/// An open transaction on either backend. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: TxInner,
    /// Deliveries leased to a dispatcher of this process, handed to it once the commit
    /// succeeded (see [`crate::outbox`]).
    pub(crate) handoff: Option<Handoff>,
    /// The dispatcher of this process to wake once the commit succeeded: set when the
    /// transaction wrote deliveries that wait for a claim (not for hand-offs, which need none).
    wake: Option<Arc<Notify>>,
    /// SQLite: this transaction's turn at the writer, given up after the commit or rollback.
    _turn: Option<OwnedMutexGuard<()>>,
}

/// Where a dispatcher of this process takes deliveries published for it.
pub(crate) type HandoffSender = tokio::sync::mpsc::UnboundedSender<Vec<deliveries::ClaimedDelivery>>;

/// Deliveries written leased to a dispatcher of this process, waiting for the commit.
#[derive(Debug)]
pub(crate) struct Handoff {
    pub(crate) to: HandoffSender,
    pub(crate) deliveries: Vec<deliveries::ClaimedDelivery>,
}

/// The transaction of one backend.
#[derive(Debug)]
pub(crate) enum TxInner {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(SqliteTx),
}

impl From<Transaction<'static, Postgres>> for Tx {
    /// Wraps an application's own PostgreSQL transaction (on the wallet's database).
    fn from(tx: Transaction<'static, Postgres>) -> Tx {
        Tx {
            inner: TxInner::Postgres(tx),
            handoff: None,
            wake: None,
            _turn: None,
        }
    }
}

impl From<Transaction<'static, Sqlite>> for Tx {
    /// Wraps an application's own SQLite transaction (on the wallet's database).
    fn from(tx: Transaction<'static, Sqlite>) -> Tx {
        Tx {
            inner: TxInner::Sqlite(SqliteTx::from(tx)),
            handoff: None,
            wake: None,
            _turn: None,
        }
    }
}

impl Tx {
    /// Commits the transaction, then hands the deliveries it published for this process's
    /// dispatcher to it, or wakes that dispatcher when it published deliveries to be claimed.
    ///
    /// # Errors
    /// The database refused or could not be reached.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Postgres(tx) => tx.commit().await?,
            TxInner::Sqlite(tx) => tx.commit().await?,
        }
        if let Some(handoff) = self.handoff {
            // A dispatcher that stopped meanwhile no longer listens; the deliveries are then
            // taken back from its expired heartbeat by the next dispatcher to look.
            let _ = handoff.to.send(handoff.deliveries);
        }
        if let Some(wake) = self.wake {
            wake.notify_one();
        }
        Ok(())
    }

    /// Wakes `dispatcher` once the commit succeeded (deliveries were written for a claim).
    pub(crate) fn wake_after_commit(&mut self, dispatcher: &Arc<Notify>) {
        self.wake = Some(dispatcher.clone());
    }

    /// Keeps `deliveries` to hand to `to` after the commit.
    pub(crate) fn hand_off(&mut self, to: &HandoffSender, deliveries: Vec<deliveries::ClaimedDelivery>) {
        match &mut self.handoff {
            Some(handoff) => handoff.deliveries.extend(deliveries),
            None => {
                self.handoff = Some(Handoff {
                    to: to.clone(),
                    deliveries,
                })
            }
        }
    }

    /// The backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Postgres(_) => Backend::Postgres,
            TxInner::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// How long a pooled PostgreSQL connection may have been idle and still be handed out without
/// a check first.
const PG_CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The options of a PostgreSQL pool of at most `connections`. A connection that was idle for a
/// while (when the server may have restarted or closed it) is checked with a ping before it is
/// handed out, and replaced when that fails; one that was in use a moment ago is not: the ping
/// is a round trip, and it would come before every transaction under load.
fn pg_pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PG_CHECK_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Db {
    /// Opens the pools the settings describe (creating the SQLite file and its directory).
    ///
    /// # Errors
    /// The URL is malformed, the directory cannot be created, or the server is unreachable.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Db> {
        let url = settings.database_url();
        match settings.backend() {
            Backend::Postgres => {
                let options = loopback_without_tls(
                    &url,
                    PgConnectOptions::from_str(&url).context("database.url is not a valid PostgreSQL URL")?,
                );
                let pool = pg_pool_options(settings.database.max_connections)
                    .connect_with(options)
                    .await
                    .context("cannot connect to PostgreSQL (database.url)")?;
                Ok(Db::Postgres(pool))
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url)
                    .context("database.url is not a valid SQLite URL")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_millis(settings.database.busy_timeout_ms))
                    .foreign_keys(true);
                if let Some(parent) = options.get_filename().parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
                    }
                }
                // An SQLite connection is a file handle in this process: a check before each
                // use would only cost a hop to its worker thread.
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone())
                    .await
                    .context("cannot open the SQLite database (database.url)")?;
                let reader = SqlitePoolOptions::new()
                    .max_connections(settings.database.max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.read_only(true))
                    .await
                    .context("cannot open the SQLite database for reading")?;
                Ok(Db::Sqlite {
                    writer,
                    reader,
                    api_turn: Some(Arc::default()),
                })
            }
        }
    }

    /// Brings the schema up to date, then fills in what a migration added that SQL alone
    /// cannot compute (the folded wallet names of [`wallets::backfill_folded_names`]). Safe to
    /// run from several instances at once.
    ///
    /// # Errors
    /// A migration failed, an applied migration was changed, or the backfill failed.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
            Db::Sqlite { writer, .. } => sqlx::migrate!("./migrations/sqlite").run(writer).await?,
        }
        let filled = wallets::backfill_folded_names(self)
            .await
            .context("cannot fill in the folded wallet names")?;
        if filled > 0 {
            tracing::info!(
                wallets = filled,
                "folded the display names of existing wallets for the name search"
            );
        }
        Ok(())
    }

    /// Starts a write transaction.
    ///
    /// On SQLite, transactions opened through the application's handle take turns before they
    /// ask for the one writer connection, so at most one of them waits at the writer at a time:
    /// the dispatcher's claims and outcomes (on the handle of [`Db::for_dispatcher`]) then wait
    /// behind at most one API transaction, not behind every client's.
    ///
    /// # Errors
    /// No connection could be had.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Postgres(pool) => Tx::from(pool.begin().await?),
            Db::Sqlite { writer, api_turn, .. } => {
                let turn = match api_turn {
                    Some(turn) => Some(turn.clone().lock_owned().await),
                    None => None,
                };
                Tx {
                    inner: TxInner::Sqlite(SqliteTx::begin(writer).await?),
                    handoff: None,
                    wake: None,
                    _turn: turn,
                }
            }
        })
    }

    /// The handle the dispatcher works through, so that delivery never waits behind the API's
    /// transactions: on PostgreSQL a pool of its own of `connections` connections (opened as
    /// they are needed) next to the API's; on SQLite the same writer, reached without taking
    /// the API transactions' turn.
    ///
    /// Everything the dispatcher writes is its own bookkeeping (claims, outcomes, releases,
    /// heartbeats, take-overs), so on PostgreSQL its connections commit without waiting for the
    /// WAL flush (`synchronous_commit = off`): a crash can lose the last few of those commits,
    /// and what they recorded is then done again (a delivery is sent once more), which
    /// at-least-once delivery allows. Publishing goes through the API's pool at full durability.
    pub fn for_dispatcher(&self, connections: u32) -> Db {
        match self {
            Db::Postgres(pool) => Db::Postgres(
                pg_pool_options(connections).connect_lazy_with(
                    (*pool.connect_options())
                        .clone()
                        .options([("synchronous_commit", "off")]),
                ),
            ),
            Db::Sqlite { writer, reader, .. } => Db::Sqlite {
                writer: writer.clone(),
                reader: reader.clone(),
                api_turn: None,
            },
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Checks that the database answers (readiness).
    ///
    /// # Errors
    /// The database is unreachable.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_reader!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes all pools.
    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
        }
    }
}

/// A PostgreSQL server on this machine (loopback address or Unix socket) is reached without
/// TLS unless the URL (or `PGSSLMODE`) asks for it with `sslmode`: the bytes never leave the machine, and the
/// handshake and encryption would cost every connection and statement CPU time for nothing.
/// Elsewhere libpq's default applies (`prefer`).
fn loopback_without_tls(url: &str, options: PgConnectOptions) -> PgConnectOptions {
    let chose = url::Url::parse(url)
        .map(|u| u.query_pairs().any(|(k, _)| k == "sslmode" || k == "ssl-mode"))
        .unwrap_or(true)
        || std::env::var_os("PGSSLMODE").is_some();
    let host = options.get_host();
    let local = host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if chose || !local {
        return options;
    }
    options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Formats stored milliseconds as RFC 3339 UTC with milliseconds, e.g. `2026-05-01T09:42:17.812Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_postgres_is_reached_without_tls_unless_asked() {
        let mode = |url: &str| {
            let options = loopback_without_tls(url, PgConnectOptions::from_str(url).unwrap());
            format!("{:?}", options.get_ssl_mode())
        };
        assert_eq!(mode("postgres://u@127.0.0.1:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@localhost/db"), "Disable");
        assert_eq!(mode("postgres://u@[::1]:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@127.0.0.1/db?sslmode=require"), "Require");
        assert_eq!(mode("postgres://u@db.internal/db"), "Prefer");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(1_746_092_537_812), "2025-05-01T09:42:17.812Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
