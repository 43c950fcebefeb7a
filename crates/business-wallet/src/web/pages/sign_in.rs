//! Signing in with a bearer token, and out again.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::{CsrfForm, PageError};
use crate::state::AppState;
use crate::web::forms::{field, Pairs};
use crate::web::session::{self, SessionData};
use crate::web::HtmlTemplate;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    error: Option<String>,
}

/// GET /ui/sign-in: the token form.
pub async fn sign_in_form() -> Response {
    let csrf = session::random_token();
    session::with_cookie(
        HtmlTemplate(SignInPage {
            csrf: csrf.clone(),
            error: None,
        })
        .into_response(),
        session::set_cookie(session::SIGN_IN_COOKIE, &csrf, Some(3600)),
    )
}

/// POST /ui/sign-in: validates the token and opens the session. The form's CSRF token is the
/// one of the sign-in cookie, as there is no session yet.
///
/// # Errors
/// 403 when the CSRF token is missing or is not the sign-in cookie's.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Result<Response, PageError> {
    let expected = session::cookie(&headers, session::SIGN_IN_COOKIE).unwrap_or_default();
    let submitted = field(&form, "_csrf").unwrap_or_default();
    if expected.is_empty() || !session::constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
        return Err(PageError::csrf_refused());
    }
    let token = field(&form, "token").unwrap_or_default().trim().to_string();
    match state.auth.authenticate(&token).await {
        Ok(_) => {
            let data = SessionData {
                token,
                csrf: session::random_token(),
            };
            let sealed = session::seal(&state.secrets, &data);
            let response = session::with_cookie(
                Redirect::to("/ui/integrations/channels").into_response(),
                session::set_cookie(session::SESSION_COOKIE, &sealed, None),
            );
            Ok(session::with_cookie(
                response,
                session::set_cookie(session::SIGN_IN_COOKIE, "", Some(0)),
            ))
        }
        Err(err) => {
            let mut response = HtmlTemplate(SignInPage {
                csrf: expected.to_string(),
                error: Some(err.to_string()),
            })
            .into_response();
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

/// POST /ui/sign-out: ends the session.
pub async fn sign_out(_: CsrfForm) -> Response {
    session::with_cookie(
        Redirect::to("/ui/sign-in").into_response(),
        session::set_cookie(session::SESSION_COOKIE, "", Some(0)),
    )
}
