//! Request extractors that answer malformed input with our JSON error shape (never axum's
//! plain-text rejections), and the correlation id of a request.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body, parsed with the path of the first problem reported (`address.city: invalid
/// type ...`). Malformed JSON, wrong types, unknown fields and unknown enum values are a 400,
/// a body over the limit a 413.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::bad_request(
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(AppJson)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than the configured limit".into())
    } else {
        ApiError::bad_request(format!("the request body could not be read: {}", rejection.body_text()))
    }
}

/// Parses JSON with a precise location for errors.
///
/// # Errors
/// 400 for malformed JSON or a body that does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would accept `["a", "b"]` for a struct (fields by position); a body is an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::bad_request("invalid type: the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        // An unknown key with an empty name at the top level has an empty path: there is no
        // field to name beyond what the message says.
        let at_root = path == "." || path.is_empty();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest {
                message: format!("malformed JSON: {inner}"),
                details: None,
            }
        } else {
            let location = if at_root { String::new() } else { format!("{path}: ") };
            ApiError::BadRequest {
                message: format!("{location}{inner}"),
                details: (!at_root).then(|| serde_json::json!({ "field": path })),
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Path parameters, with a JSON 400 when they do not parse.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid path: {}", rejection.body_text()))
    }
}

/// Query parameters, with a JSON 400 when they do not parse.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!("invalid query: {}", rejection.body_text()))
    }
}

/// Checks that an external key in a path is a UUID and returns it in canonical form.
///
/// # Errors
/// 400 naming the parameter.
pub fn external_key(name: &str, value: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::invalid_field(name, format!("`{value}` is not a UUID")))
}

/// The correlation id of the current request: the caller's `X-Correlation-Id` when it is a
/// reasonable token, else a new UUID. Every event of one request carries it.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    /// Header that carries it, in and out.
    pub const HEADER: &'static str = "x-correlation-id";

    /// Takes the caller's id when it is 1 to 128 visible ASCII characters, else makes one.
    pub fn from_header(value: Option<&str>) -> CorrelationId {
        match value.map(str::trim) {
            Some(v) if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) => {
                CorrelationId(v.to_string())
            }
            _ => CorrelationId(uuid::Uuid::new_v4().to_string()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<CorrelationId>().cloned().unwrap_or_else(|| {
            CorrelationId::from_header(parts.headers.get(Self::HEADER).and_then(|v| v.to_str().ok()))
        }))
    }
}
