//! Storage: the connection pools, migrations and transactions, on SQLite or PostgreSQL.
//!
//! Every SQL statement of the product lives under this module, and so does every difference
//! between the two backends. Both backends use the same schema shape: text UUIDs, JSON as text,
//! and times as milliseconds since the Unix epoch, so most statements are written once and run
//! on either pool through the `with_tx!` and `with_reader!` macros.
//!
//! SQLite runs in WAL mode with `synchronous=FULL` and a busy timeout. Writes go through a pool
//! of exactly one connection, so writers queue in-process instead of failing with `SQLITE_BUSY`;
//! reads use a separate pool. Write transactions on that connection are [`SqliteTx`], which
//! begins, commits and rolls back itself so that a failed commit can never leave the one writer
//! inside a transaction (see there).

pub mod channels;
pub mod deliveries;
pub mod delivery_log;
pub mod events;
pub mod history;
pub mod identifiers;
pub mod wallets;

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::config::{Backend, Settings};

/// Runs `$body` with `$c` bound to the transaction's connection (`&mut PgConnection` or
/// `&mut SqliteConnection`). The body is compiled once per backend.
macro_rules! with_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Postgres(tx) => {
                let $c = &mut **tx;
                $body
            }
            $crate::store::Tx::Sqlite(tx) => {
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
    },
}

/// An open transaction on either backend. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub enum Tx {
    /// PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
    /// SQLite transaction (on the writer connection, or an application's own).
    Sqlite(SqliteTx),
}

/// A write transaction on SQLite: on the writer connection from [`Db::begin`], or an
/// application's own sqlx transaction (`SqliteTx::from(tx)`). Dereferences to the connection.
/// Dropping it without [`Tx::commit`] rolls back.
///
/// On the writer connection this does not use sqlx's transaction manager, which counts
/// nesting levels itself and takes a COMMIT as done only when it succeeds. When a COMMIT fails
/// with `SQLITE_FULL`, SQLite has already rolled the whole transaction back, but sqlx still
/// counts one transaction open; its next BEGIN is then a `SAVEPOINT`, which opens a transaction,
/// and when that savepoint's `RELEASE` (the would-be commit) fails too, SQLite stays inside a
/// transaction that nothing ends. Every later "commit" is a `RELEASE` of a nested savepoint
/// that succeeds in memory: writes were acknowledged and never reached the file, even after
/// space came back. So here a transaction is `BEGIN IMMEDIATE` ... `COMMIT` as plain
/// statements, and a connection whose BEGIN, COMMIT or ROLLBACK failed, or whose commit was
/// abandoned half-way, is closed instead of going back to the pool (closing discards whatever it
/// held); the next transaction opens a fresh connection.
///
/// An application's own transaction (the `From` conversion) is committed by sqlx as usual.
#[derive(Debug)]
pub struct SqliteTx {
    held: Option<Held>,
    /// A COMMIT was sent and its answer not seen yet: if dropped now, the outcome is unknown.
    committing: bool,
}

#[derive(Debug)]
enum Held {
    /// The writer connection, inside `BEGIN IMMEDIATE`.
    Writer(PoolConnection<Sqlite>),
    /// A transaction the embedding application began.
    Caller(Transaction<'static, Sqlite>),
}

impl From<Transaction<'static, Sqlite>> for SqliteTx {
    fn from(tx: Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx {
            held: Some(Held::Caller(tx)),
            committing: false,
        }
    }
}

impl SqliteTx {
    /// Begins `BEGIN IMMEDIATE` on a connection of `writer`: the write lock is taken now, so a
    /// database locked by another process is reported here (after the busy timeout), not at
    /// the commit.
    async fn begin(writer: &SqlitePool) -> Result<SqliteTx, sqlx::Error> {
        let mut conn = writer.acquire().await?;
        if let Err(err) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            // Whatever state a failed BEGIN left, the connection is not reused.
            let _ = conn.close().await;
            return Err(err);
        }
        Ok(SqliteTx {
            held: Some(Held::Writer(conn)),
            committing: false,
        })
    }

    async fn commit(mut self) -> Result<(), sqlx::Error> {
        match self.held.as_mut().expect("a transaction is open until it ends") {
            Held::Caller(_) => match self.held.take() {
                Some(Held::Caller(tx)) => tx.commit().await,
                _ => unreachable!("matched above"),
            },
            Held::Writer(conn) => {
                self.committing = true;
                let result = sqlx::query("COMMIT").execute(&mut **conn).await;
                self.committing = false;
                let Some(Held::Writer(conn)) = self.held.take() else {
                    unreachable!("matched above")
                };
                match result {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        // SQLite may have rolled back by itself or kept the transaction open;
                        // either way this connection goes, and with it anything it held.
                        let _ = conn.close().await;
                        Err(err)
                    }
                }
            }
        }
    }

    fn connection(&self) -> &SqliteConnection {
        match self.held.as_ref().expect("a transaction is open until it ends") {
            Held::Writer(conn) => conn,
            Held::Caller(tx) => tx,
        }
    }

    fn connection_mut(&mut self) -> &mut SqliteConnection {
        match self.held.as_mut().expect("a transaction is open until it ends") {
            Held::Writer(conn) => conn,
            Held::Caller(tx) => tx,
        }
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.connection()
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.connection_mut()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(Held::Writer(mut conn)) = self.held.take() else {
            // Not begun here, or already ended; sqlx rolls back an application's transaction.
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // Not committed: roll back before the connection serves anyone else. The pool has
            // one writer, so the next transaction waits for this to finish.
            Ok(runtime) if !self.committing => {
                runtime.spawn(async move {
                    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                        let _ = conn.close().await;
                    }
                });
            }
            // Abandoned during its COMMIT (or no runtime to roll back on): the outcome is
            // unknown, so the connection is closed, which rolls back anything still open.
            _ => drop(conn.detach()),
        }
    }
}

impl Tx {
    /// Commits the transaction.
    ///
    /// # Errors
    /// The database refused or could not be reached.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => SqliteTx::commit(tx).await,
        }
    }

    /// The backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Postgres(_) => Backend::Postgres,
            Tx::Sqlite(_) => Backend::Sqlite,
        }
    }
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
                let options = PgConnectOptions::from_str(&url).context("database.url is not a valid PostgreSQL URL")?;
                let pool = PgPoolOptions::new()
                    .max_connections(settings.database.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
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
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone())
                    .await
                    .context("cannot open the SQLite database (database.url)")?;
                let reader = SqlitePoolOptions::new()
                    .max_connections(settings.database.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.read_only(true))
                    .await
                    .context("cannot open the SQLite database for reading")?;
                Ok(Db::Sqlite { writer, reader })
            }
        }
    }

    /// Brings the schema up to date. Safe to run from several instances at once.
    ///
    /// # Errors
    /// A migration failed or an applied migration was changed.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
            Db::Sqlite { writer, .. } => sqlx::migrate!("./migrations/sqlite").run(writer).await?,
        }
        Ok(())
    }

    /// Starts a write transaction.
    ///
    /// # Errors
    /// No connection could be had.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::Sqlite { writer, .. } => Tx::Sqlite(SqliteTx::begin(writer).await?),
        })
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
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
        }
    }
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
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(1_746_092_537_812), "2025-05-01T09:42:17.812Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
