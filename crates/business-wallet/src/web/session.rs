//! Sessions of the Web UI: the bearer token sealed in an HttpOnly cookie, re-validated on every
//! request, and the CSRF token kept inside the same sealed value.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crypto::SecretBox;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "bw_session";
/// Name of the cookie that carries the CSRF token of the sign-in form (before any session).
pub const SIGN_IN_COOKIE: &str = "bw_sign_in";
/// Name of the cookie that carries a freshly generated channel secret to the one page that
/// shows it.
pub const SECRET_COOKIE: &str = "bw_secret";

/// What the session cookie holds, sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    /// The bearer token pasted at sign-in.
    pub token: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

/// A random token, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encrypts a value for a cookie.
pub fn seal<T: Serialize>(secrets: &SecretBox, value: &T) -> String {
    let json = serde_json::to_vec(value).expect("cookie values serialize");
    URL_SAFE_NO_PAD.encode(secrets.encrypt(&json))
}

/// Decrypts a cookie value; `None` when it was not made by [`seal`] with this key.
pub fn open<T: for<'de> Deserialize<'de>>(secrets: &SecretBox, sealed: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let plain = secrets.decrypt(&bytes).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// The value of a cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` header value: HttpOnly, SameSite=Strict, Path=/ui; `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&text).expect("cookie values are URL-safe")
}

/// Adds a `Set-Cookie` header to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

/// A signed-in user: the validated principal and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is signed in, from the token as validated on this request.
    pub principal: Principal,
    /// The CSRF token of this session.
    pub csrf: String,
}

impl Session {
    /// Whether a submitted form carries this session's CSRF token.
    pub fn csrf_matches(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

/// Compares without leaking where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a request without a session (no cookie, one that does not open, or a token
/// that is no longer valid): back to sign-in, and the session cookie removed.
#[derive(Debug, Clone, Copy)]
pub struct SignedOut;

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        with_cookie(
            Redirect::to("/ui/sign-in").into_response(),
            set_cookie(SESSION_COOKIE, "", Some(0)),
        )
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = SignedOut;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let data: SessionData = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|c| open(&state.secrets, c))
            .ok_or(SignedOut)?;
        // Validated again on every request, so an expired token ends the session.
        let principal = state.auth.authenticate(&data.token).await.map_err(|_| SignedOut)?;
        Ok(Session {
            principal,
            csrf: data.csrf,
        })
    }
}
