//! SQLite write transactions that a failed commit cannot leave open (see [`SqliteTx`]).

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

/// A write transaction on SQLite: on the writer connection from [`Db::begin`](super::Db::begin),
/// or an application's own sqlx transaction (`Tx::from(tx)`). Dereferences to the connection.
/// Dropping it without [`Tx::commit`](super::Tx::commit) rolls back.
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
/// An application's own transaction is committed by sqlx as usual.
#[derive(Debug)]
pub(crate) struct SqliteTx {
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
    pub(super) async fn begin(writer: &SqlitePool) -> Result<SqliteTx, sqlx::Error> {
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

    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
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

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::*;

    /// A one-connection writer pool and a reader pool on a fresh file, with a parent/child
    /// pair whose foreign key is checked at COMMIT.
    async fn pools(dir: &std::path::Path) -> (SqlitePool, SqlitePool) {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.join("db.sqlite").display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE child (id INTEGER PRIMARY KEY, \
             parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&writer)
        .await
        .unwrap();
        let reader = SqlitePoolOptions::new().connect_with(options).await.unwrap();
        (writer, reader)
    }

    async fn children(reader: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM child ORDER BY id")
            .fetch_all(reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_writer_serves_again() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pools(dir.path()).await;
        let mut tx = SqliteTx::begin(&writer).await.unwrap();
        sqlx::query("INSERT INTO child (id) VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        let mut tx = SqliteTx::begin(&writer).await.unwrap();
        sqlx::query("INSERT INTO child (id) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(children(&reader).await, vec![2]);
    }

    #[tokio::test]
    async fn after_a_failed_commit_the_next_transaction_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pools(dir.path()).await;
        // The foreign key is checked at COMMIT, which fails.
        let mut tx = SqliteTx::begin(&writer).await.unwrap();
        sqlx::query("INSERT INTO child (id, parent) VALUES (1, 42)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = tx.commit().await.unwrap_err();
        assert!(err.as_database_error().is_some(), "{err}");
        // The next transaction is a real one: its commit is on disk, and nothing of the failed
        // one came along.
        let mut tx = SqliteTx::begin(&writer).await.unwrap();
        sqlx::query("INSERT INTO parent (id) VALUES (7)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO child (id, parent) VALUES (2, 7)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(children(&reader).await, vec![2]);
        // And the writer is not left inside a transaction: a plain statement commits by itself.
        sqlx::query("INSERT INTO child (id, parent) VALUES (3, 7)")
            .execute(&writer)
            .await
            .unwrap();
        assert_eq!(children(&reader).await, vec![2, 3]);
    }
}
