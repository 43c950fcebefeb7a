//! The API error type and the JSON body every error response carries:
//! `{"status": 400, "error": "Bad Request", "message": "...", "details": {...}}`.
//!
//! Server-side failures are logged where they happen and answered with an opaque 500; nothing
//! internal (SQL, paths, driver messages) reaches a client.
//!
//! A database that cannot serve the request *now* (unreachable, restarting, locked past the
//! busy timeout, out of disk space) is a 503 with `Retry-After`, not a 500: the request did
//! not happen and may simply be sent again. [`database_unavailable`] decides which database
//! errors those are, from the error kind and the database's own code (SQLSTATE, SQLite result
//! code), never from message text. Disk full is a 503 too, not WebDAV's 507: to a client it
//! is the same "not now, try again" as any other outage, and its cause is in the server log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::error::DomainError;
use crate::domain::InvalidKey;

/// Every way an API call can fail, each with its documented status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the input is malformed or breaks a field rule.
    #[error("{message}")]
    BadRequest {
        /// Human-readable explanation.
        message: String,
        /// Where in the input the problem is, when known.
        details: Option<Value>,
    },
    /// 401: no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token lacks the authority or is for another wallet.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown wallet, identifier, channel or delivery.
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is not in a state that allows the operation.
    #[error("{0}")]
    Conflict(String),
    /// 412: a channel with that name already exists.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body is larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: each field is fine on its own but the combination is impossible.
    #[error("{message}")]
    Unprocessable {
        /// Human-readable explanation.
        message: String,
        /// Where in the input the problem is, when known.
        details: Option<Value>,
    },
    /// 503: a dependency (such as the token keys' JWKS) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 503: the database cannot serve the request now; the cause is logged, never shown.
    #[error("{message}")]
    DatabaseUnavailable {
        /// What the client is told.
        message: &'static str,
        /// The driver's error.
        #[source]
        cause: sqlx::Error,
    },
    /// 500: something failed on our side; logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// HTTP status code.
    pub status: u16,
    /// HTTP reason phrase, e.g. `Bad Request`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured detail, such as the JSON path of a bad field (`field`), and with several
    /// field errors each of them (`errors: [{field, message}]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    /// A 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: None,
        }
    }

    /// A 400 that names the offending field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest {
            message: format!("{field}: {message}"),
            details: Some(serde_json::json!({ "field": field })),
        }
    }

    /// A 422 that names the offending field.
    pub fn unprocessable(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Unprocessable {
            message: format!("{field}: {message}"),
            details: Some(serde_json::json!({ "field": field })),
        }
    }

    /// A 500 for an unexpected failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        let status = self.status_code();
        let details = match self {
            ApiError::BadRequest { details, .. } | ApiError::Unprocessable { details, .. } => details.clone(),
            _ => None,
        };
        ErrorBody {
            status: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.to_string(),
            details,
        }
    }
}

/// The hidden cause of a 500 (or of a 503 from the database), carried in the response
/// extensions to the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalError(pub std::sync::Arc<String>);

/// The `Retry-After` of every 503, in seconds: long enough not to hammer a database that is
/// restarting, short enough that a client is back soon after it is.
pub const RETRY_AFTER_SECS: u64 = 2;

/// What the client is told when the database is not reachable (down, restarting, connection cut).
const DB_UNREACHABLE: &str = "the database is not reachable; try again later";
/// ... when it is reachable but cannot take the request now (locked, overloaded, conflict).
const DB_BUSY: &str = "the database is busy; try again later";
/// ... when it has no space left to store the change.
const DB_FULL: &str = "the database has no space left to store this change; try again later";

/// SQLite primary result codes (the low byte of the extended code that sqlx reports).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_FULL: i32 = 13;
const SQLITE_PROTOCOL: i32 = 15;

/// The code a database attached to an error.
enum DbCode<'a> {
    /// PostgreSQL's SQLSTATE.
    SqlState(&'a str),
    /// SQLite's primary result code.
    Sqlite(i32),
    /// Not a database error, or one without a code.
    None,
}

impl<'a> DbCode<'a> {
    fn of(err: &'a sqlx::Error) -> DbCode<'a> {
        let Some(db) = err.as_database_error() else {
            return DbCode::None;
        };
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            return DbCode::SqlState(pg.code());
        }
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            if let Some(extended) = db.code().and_then(|code| code.parse::<i32>().ok()) {
                return DbCode::Sqlite(extended & 0xff);
            }
        }
        DbCode::None
    }
}

/// When `err` means the database cannot serve the request now but may soon, the message for the
/// client; None for errors that a retry would not fix (a bug, a constraint, bad SQL).
pub fn database_unavailable(err: &sqlx::Error) -> Option<&'static str> {
    match (err, DbCode::of(err)) {
        // No connection to be had in time: the server is down, or every connection is busy.
        (sqlx::Error::PoolTimedOut, _) => Some(DB_UNREACHABLE),
        // The connection itself failed: refused, reset, cut mid-answer, TLS, or the SQLite
        // worker thread is gone.
        (sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed, _) => {
            Some(DB_UNREACHABLE)
        }
        // Class 08, connection exception.
        (_, DbCode::SqlState(state)) if state.starts_with("08") => Some(DB_UNREACHABLE),
        // admin_shutdown (a stopping server ends the session), crash_shutdown,
        // cannot_connect_now (starting up or shutting down).
        (_, DbCode::SqlState("57P01" | "57P02" | "57P03")) => Some(DB_UNREACHABLE),
        // disk_full.
        (_, DbCode::SqlState("53100")) => Some(DB_FULL),
        // The rest of class 53, insufficient resources (out of memory, too many connections).
        (_, DbCode::SqlState(state)) if state.starts_with("53") => Some(DB_BUSY),
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled
        // (statement timeout): the same request may well succeed the next time.
        (_, DbCode::SqlState("40001" | "40P01" | "55P03" | "57014")) => Some(DB_BUSY),
        // Locked by another connection or process past the busy timeout, or a WAL lock race.
        (_, DbCode::Sqlite(SQLITE_BUSY | SQLITE_LOCKED | SQLITE_PROTOCOL)) => Some(DB_BUSY),
        (_, DbCode::Sqlite(SQLITE_FULL)) => Some(DB_FULL),
        _ => None,
    }
}

/// The one place a domain error becomes an answer: each kind its status, the database's
/// failures classified as for any other request (503 when it cannot serve now, else 500).
impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid { message, details } => ApiError::BadRequest { message, details },
            DomainError::Unprocessable { message, details } => ApiError::Unprocessable { message, details },
            DomainError::Forbidden(message) => ApiError::Forbidden(message),
            DomainError::NotFound(message) => ApiError::NotFound(message),
            DomainError::Conflict(message) => ApiError::Conflict(message),
            DomainError::Duplicate(message) => ApiError::PreconditionFailed(message),
            DomainError::Database(err) => ApiError::from(err),
            DomainError::Internal(err) => ApiError::Internal(err),
        }
    }
}

/// A malformed external key in a path or a query, as the domain words it.
impl From<InvalidKey> for ApiError {
    fn from(err: InvalidKey) -> Self {
        DomainError::from(err).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match database_unavailable(&err) {
            Some(message) => ApiError::DatabaseUnavailable { message, cause: err },
            None => ApiError::Internal(err.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        // The request middleware logs the cause with the correlation id; the client sees only
        // the message.
        let cause = match &self {
            ApiError::Internal(err) => Some(format!("{err:#}")),
            ApiError::DatabaseUnavailable { cause, .. } => Some(format!("database unavailable: {cause}")),
            _ => None,
        };
        if let Some(cause) = cause {
            response
                .extensions_mut()
                .insert(InternalError(std::sync::Arc::new(cause)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions as _, SqliteConnection};

    use super::*;

    async fn open(path: &std::path::Path, busy: Duration) -> SqliteConnection {
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .expect("a SQLite URL")
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(busy)
            .connect()
            .await
            .expect("open the database")
    }

    fn answer(err: sqlx::Error) -> Response {
        ApiError::from(err).into_response()
    }

    fn retry_after(response: &Response) -> Option<&str> {
        response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_database_locked_past_the_busy_timeout_is_503_with_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut holder = open(&path, Duration::from_secs(1)).await;
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut holder).await.unwrap();
        let mut other = open(&path, Duration::from_millis(10)).await;
        let err = sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap_err();
        assert_eq!(database_unavailable(&err), Some(DB_BUSY));
        let response = answer(err);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after(&response), Some("2"));
        assert!(
            response.extensions().get::<InternalError>().is_some(),
            "the cause is logged"
        );
    }

    #[tokio::test]
    async fn a_full_database_is_503_with_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("db.sqlite"), Duration::from_secs(1)).await;
        sqlx::query("CREATE TABLE t (x TEXT)").execute(&mut conn).await.unwrap();
        // No page beyond the current ones: the file is "full" for this connection.
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO t VALUES (?)")
            .bind("x".repeat(100_000))
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert_eq!(database_unavailable(&err), Some(DB_FULL));
        let response = answer(err);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after(&response), Some("2"));
    }

    #[tokio::test]
    async fn errors_a_retry_cannot_fix_stay_500() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("db.sqlite"), Duration::from_secs(1)).await;
        sqlx::query("CREATE TABLE t (x TEXT UNIQUE)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&mut conn)
            .await
            .unwrap();
        let duplicate = sqlx::query("INSERT INTO t VALUES ('a')")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let bad_sql = sqlx::query("SELECT nope FROM t").execute(&mut conn).await.unwrap_err();
        for err in [duplicate, bad_sql, sqlx::Error::RowNotFound] {
            assert_eq!(database_unavailable(&err), None, "{err}");
            let response = answer(err);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(retry_after(&response), None);
        }
    }

    #[test]
    fn a_connection_that_cannot_be_had_or_is_cut_is_503() {
        let errors = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        ];
        for err in errors {
            assert_eq!(database_unavailable(&err), Some(DB_UNREACHABLE), "{err}");
            let body = ApiError::from(err).body();
            assert_eq!(body.status, 503);
            assert_eq!(body.error, "Service Unavailable");
            assert_eq!(body.message, DB_UNREACHABLE);
        }
    }
}
