//! Request extractors that answer malformed input with our JSON error shape (never axum's
//! plain-text rejections), and the correlation id of a request.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::events::TraceContext;

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

/// The error for a body that could not be read: 413 past the limit, else 400.
pub(crate) fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is larger than the configured limit".into())
    } else {
        ApiError::bad_request(format!("the request body could not be read: {}", rejection.body_text()))
    }
}

/// Parses JSON with a precise location for errors.
///
/// # Errors
/// 400 for malformed JSON, a string or key holding a NUL, or a body that does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul_in_json(bytes)?;
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

/// Refuses JSON text in which a string or an object key holds a NUL character: PostgreSQL
/// cannot store it, and no field of the product has a use for it. A JSON string can carry a NUL
/// only as the escape `\u0000` (a raw one is malformed JSON), so text without that escape is
/// passed at the cost of one scan; text with it is parsed once more to name the field.
fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    if !has_nul_escape(bytes) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        // Malformed JSON: the parse that follows says where.
        return Ok(());
    };
    match nul_location(&value, "") {
        None => Ok(()),
        Some(path) if path.is_empty() => Err(ApiError::bad_request(NUL_MESSAGE)),
        Some(path) => Err(ApiError::invalid_field(&path, NUL_MESSAGE)),
    }
}

const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000)";

/// Whether JSON text holds the escape `\u0000` (an escaped backslash followed by `u0000` is
/// not one).
fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The path (`address.city`, `eventTypeFilters[1]`) of the first string or key that holds a
/// NUL; a key's own path names it with the NUL written as `\u0000`.
fn nul_location(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_location(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let shown = key.replace('\0', "\\u0000");
            let here = if path.is_empty() {
                shown
            } else {
                format!("{path}.{shown}")
            };
            if key.contains('\0') {
                Some(here)
            } else {
                nul_location(item, &here)
            }
        }),
        _ => None,
    }
}

/// Whether a path, a query string or a form body decodes to text with a NUL: it holds a NUL
/// byte or its percent-encoding `%00`.
pub fn encodes_nul(raw: &[u8]) -> bool {
    raw.contains(&0) || raw.windows(3).any(|w| w == b"%00")
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

/// Query parameters, with a JSON 400 naming the parameter when one does not parse (an unknown
/// enum value lists the allowed ones) or is not a known parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a query string into `T`.
///
/// # Errors
/// 400 naming the parameter, with `details.field` set to it.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            ApiError::bad_request(format!("invalid query: {inner}"))
        } else {
            ApiError::invalid_field(&path, inner.to_string())
        }
    })
}

/// The correlation id of the current request: the caller's `X-Correlation-Id`, or a new UUID
/// when the request has none. Every event of one request carries it.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    /// Header that carries it, in and out.
    pub const HEADER: &'static str = "x-correlation-id";

    /// The rule a caller's id must follow, as the API description and the 400 state it.
    pub const RULE: &'static str = "must be 1 to 128 visible ASCII characters (letters, digits and \
                                    punctuation; no spaces or control characters), given once";

    /// A new id, for a request that brought none.
    pub fn fresh() -> CorrelationId {
        CorrelationId(uuid::Uuid::new_v4().to_string())
    }

    /// Takes the caller's id from the request headers: absent gives a new UUID; present, it
    /// must be one header of 1 to 128 visible ASCII characters (`!` to `~`), so that it can be
    /// echoed in a header, written into events and found in logs exactly as it was sent.
    ///
    /// # Errors
    /// 400 naming the header when it breaks that rule.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Result<CorrelationId, ApiError> {
        let mut values = headers.get_all(Self::HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(CorrelationId::fresh());
        };
        let bytes = value.as_bytes();
        let valid =
            values.next().is_none() && (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ApiError::invalid_field("X-Correlation-Id", Self::RULE));
        }
        // Visible ASCII only, checked above.
        Ok(CorrelationId(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// The trace context of the current request (see [`TraceContext::from_headers`]): the one the
/// request middleware gave the request, else the headers read the same way. Never rejects.
impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<TraceContext>() {
            Some(trace) => trace.clone(),
            None => TraceContext::from_headers(&parts.headers),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    /// The id the request middleware gave the request (every route of [`crate::api::router`]
    /// runs behind it); without that middleware, the same rule applied to the headers.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<CorrelationId>() {
            Some(id) => Ok(id.clone()),
            None => CorrelationId::from_headers(&parts.headers),
        }
    }
}

#[cfg(test)]
mod correlation_tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::CorrelationId;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(CorrelationId::HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn a_missing_id_is_made_and_a_valid_one_kept() {
        let made = CorrelationId::from_headers(&HeaderMap::new()).unwrap();
        assert!(uuid::Uuid::parse_str(&made.0).is_ok());
        let max = "x".repeat(128);
        for ok in [b"a".as_slice(), b"corr-123_ABC.~!", max.as_bytes()] {
            let id = CorrelationId::from_headers(&headers(&[ok])).unwrap();
            assert_eq!(id.0.as_bytes(), ok);
        }
    }

    #[test]
    fn an_id_that_breaks_the_rule_is_a_400_naming_the_header() {
        let long = "x".repeat(129);
        for bad in [
            vec![b"a b".as_slice()],
            vec![b"tab\there".as_slice()],
            vec![b"".as_slice()],
            vec![long.as_bytes()],
            vec!["caf\u{e9}".as_bytes()],
            vec![b"\xff".as_slice()],
            vec![b"one".as_slice(), b"two".as_slice()],
        ] {
            let err = CorrelationId::from_headers(&headers(&bad)).unwrap_err();
            let body = err.body();
            assert_eq!(body.status, 400, "{bad:?}");
            assert_eq!(body.details.unwrap()["field"], "X-Correlation-Id", "{bad:?}");
        }
    }
}
