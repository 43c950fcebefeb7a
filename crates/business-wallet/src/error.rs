//! The API error type and the JSON body every error response carries:
//! `{"status": 400, "error": "Bad Request", "message": "...", "details": {...}}`.
//!
//! Server-side failures are logged where they happen and answered with an opaque 500; nothing
//! internal (SQL, paths, driver messages) reaches a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
    /// 503: a dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
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
    /// Structured detail, such as the JSON path of a bad field.
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
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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

/// The cause of a 500, carried in the response extensions to the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalError(pub std::sync::Arc<String>);

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable("the database is not reachable; try again".into())
            }
            _ => ApiError::Internal(err.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::Internal(err) = &self {
            // The request middleware logs this with the correlation id; the client sees only
            // "internal error".
            response
                .extensions_mut()
                .insert(InternalError(std::sync::Arc::new(format!("{err:#}"))));
        }
        response
    }
}
