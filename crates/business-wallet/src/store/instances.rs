//! Dispatcher instances: heartbeats, and taking back the deliveries of an instance that died.
//!
//! Each running dispatcher has a row in `integration_dispatcher` that it refreshes every few
//! seconds, and every delivery it claims names it in `lease_owner`. Any live instance that
//! finds another one silent for longer than the instance timeout turns that instance's
//! DELIVERING rows back into PENDING (due at once) and removes its row, so the deliveries a
//! killed process had in flight go out again within seconds instead of when their leases end.
//! There is no leader: every instance runs the same statements, and they are idempotent.
//!
//! The lease stays the last safety net: a DELIVERING row whose lease ended is taken back too,
//! whoever owns it, which covers a live instance that lost track of a row (an outcome it could
//! not store, say) and rows claimed before owners were recorded.
//!
//! Times come from the database clock, as for leases.

use super::Db;

/// Runs one writing statement on the backend's writer with the given binds; the rows affected.
macro_rules! write {
    ($db:expr, $sql:expr $(, $arg:expr)*) => {
        match $db {
            Db::Postgres(pool) => sqlx::query($sql)$(.bind($arg))*.execute(pool).await.map(|r| r.rows_affected()),
            Db::Sqlite { writer, .. } => sqlx::query($sql)$(.bind($arg))*.execute(writer).await.map(|r| r.rows_affected()),
        }
    };
}

/// Registers or refreshes `instance` as alive (its `heartbeat_at` is now).
///
/// # Errors
/// Database failure.
pub async fn heartbeat(db: &Db, instance: &str) -> Result<(), sqlx::Error> {
    let sql = super::deliveries::expand(
        db,
        "INSERT INTO integration_dispatcher (instance_id, started_at, heartbeat_at) VALUES ($1, {now}, {now}) \
         ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = {now}",
    );
    write!(db, &sql, instance).map(|_| ())
}

/// Marks `instance` as silent (at shutdown, after it gave its leases back), so that the next
/// dispatcher to look takes back whatever it still holds and removes it, without waiting for
/// the instance timeout.
///
/// # Errors
/// Database failure.
pub async fn sign_off(db: &Db, instance: &str) -> Result<(), sqlx::Error> {
    write!(
        db,
        "UPDATE integration_dispatcher SET heartbeat_at = 0 WHERE instance_id = $1",
        instance
    )
    .map(|_| ())
}

/// What [`take_back`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TakenBack {
    /// Instances found silent for longer than the timeout (and removed).
    pub dead_instances: u64,
    /// Deliveries turned back into PENDING.
    pub deliveries: u64,
}

/// Turns the DELIVERING rows of every instance silent for longer than `timeout_ms` back into
/// PENDING, due now, with the attempt that was in flight counted (it may have reached the
/// receiver), and removes those instances. Rows with no owner (claimed before owners were
/// recorded) are taken back too.
///
/// # Errors
/// Database failure.
pub async fn take_back(db: &Db, timeout_ms: i64) -> Result<TakenBack, sqlx::Error> {
    let find = super::deliveries::expand(
        db,
        "SELECT instance_id FROM integration_dispatcher WHERE heartbeat_at < {now} - $1",
    );
    let dead: Vec<String> =
        super::with_reader!(db, p => sqlx::query_scalar(&find).bind(timeout_ms).fetch_all(p).await)?;
    // The leased index is keyed by owner, so each statement reads only that owner's rows.
    let release = super::deliveries::expand(
        db,
        "UPDATE integration_delivery SET state = {pending}, due_at = {now}, lease_token = NULL, lease_owner = NULL, \
         updated_at = {now} WHERE state = {delivering} AND lease_owner = $1",
    );
    // Only if it is still silent: an instance that came back keeps its row.
    let forget = super::deliveries::expand(
        db,
        "DELETE FROM integration_dispatcher WHERE instance_id = $1 AND heartbeat_at < {now} - $2",
    );
    let mut taken = TakenBack::default();
    for instance in &dead {
        taken.deliveries += write!(db, &release, instance)?;
        taken.dead_instances += write!(db, &forget, instance, timeout_ms)?;
    }
    let unowned = super::deliveries::expand(
        db,
        "UPDATE integration_delivery SET state = {pending}, due_at = {now}, lease_token = NULL, updated_at = {now} \
         WHERE state = {delivering} AND lease_owner IS NULL",
    );
    taken.deliveries += write!(db, &unowned)?;
    Ok(taken)
}

/// Turns DELIVERING rows whose lease has ended back into PENDING, whoever holds them, except
/// those listed in `held` (still being worked by the caller). Returns how many. This reads
/// every leased row, so dispatchers run it seldom (every half lease).
///
/// # Errors
/// Database failure.
pub async fn take_back_expired(db: &Db, held: &[i64]) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE integration_delivery SET state = {pending}, due_at = {now}, lease_token = NULL, \
                       lease_owner = NULL, updated_at = {now} \
                       WHERE state = {delivering} AND due_at <= {now} AND {not_held}";
    match db {
        Db::Postgres(pool) => {
            let sql = super::deliveries::expand(db, &SQL.replace("{not_held}", "NOT (id = ANY($1))"));
            Ok(sqlx::query(&sql).bind(held).execute(pool).await?.rows_affected())
        }
        Db::Sqlite { writer, .. } => {
            let sql = super::deliveries::expand(
                db,
                &SQL.replace("{not_held}", "id NOT IN (SELECT value FROM json_each($1))"),
            );
            let held = serde_json::to_string(held).expect("a list of integers serialises");
            Ok(sqlx::query(&sql).bind(held).execute(writer).await?.rows_affected())
        }
    }
}
