//! How a page request fails: [`PageError`], what every handler returns with `?`, rendered as the
//! error page (with the page's navigation when the user is known), and [`Rejection`], why the
//! extractors send a request elsewhere before its handler runs.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Redirect, Response};

use super::extract::Ctx;
use super::wallets::WalletPicker;
use crate::error::{ApiError, InternalError};
use crate::web::session::SignedOut;
use crate::web::HtmlTemplate;

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The signed-in context, when known.
    pub ctx: Option<Ctx>,
    /// HTTP status.
    pub status: u16,
    /// Reason phrase.
    pub title: String,
    /// What went wrong.
    pub message: String,
}

/// A failed page request: the API's error, shown on the error page with the API's status code
/// (a 401 goes back to sign-in instead), inside the navigation of the page's context when
/// there is one.
#[derive(Debug)]
pub struct PageError {
    ctx: Option<Box<Ctx>>,
    err: ApiError,
}

impl PageError {
    /// The error `err`, shown with the navigation of `ctx` when given.
    pub fn new(ctx: Option<&Ctx>, err: ApiError) -> PageError {
        PageError {
            ctx: ctx.map(|ctx| Box::new(ctx.clone())),
            err,
        }
    }

    /// The answer to a form post whose CSRF token is missing or wrong (403).
    pub fn csrf_refused() -> PageError {
        PageError::new(
            None,
            ApiError::Forbidden(
                "this form is no longer valid (missing or wrong CSRF token); reload the page and try again".into(),
            ),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError { ctx, err } = self;
        if matches!(err, ApiError::Unauthorized(_)) {
            return Redirect::to("/ui/sign-in").into_response();
        }
        let status = err.status_code();
        let body = err.body();
        let mut response = HtmlTemplate(ErrorPage {
            ctx: ctx.map(|ctx| *ctx),
            status: status.as_u16(),
            title: body.error,
            message: body.message,
        })
        .into_response();
        *response.status_mut() = status;
        // The request middleware logs the hidden cause with the correlation id, as for the API.
        if let ApiError::Internal(cause) = &err {
            response
                .extensions_mut()
                .insert(InternalError(std::sync::Arc::new(format!("{cause:#}"))));
        }
        response
    }
}

/// Shows a failure on the error page of the page it happened on, inside its navigation.
pub trait InPage<T> {
    /// The error, if any, as a [`PageError`] with `ctx`.
    ///
    /// # Errors
    /// The error of `self`, converted to the API's error.
    fn in_page(self, ctx: &Ctx) -> Result<T, PageError>;
}

impl<T, E: Into<ApiError>> InPage<T> for Result<T, E> {
    fn in_page(self, ctx: &Ctx) -> Result<T, PageError> {
        self.map_err(|err| PageError::new(Some(ctx), err.into()))
    }
}

/// Why an extractor of the pages answers before the handler runs.
#[derive(Debug)]
pub enum Rejection {
    /// No session, or its token is no longer valid: back to sign-in.
    SignedOut(SignedOut),
    /// A form body that does not decode: axum's own answer.
    Form(FormRejection),
    /// A GLOBAL holder who has not chosen a wallet: the wallet picker, whose choices come back
    /// to the page it was shown for.
    ChooseWallet(Box<WalletPicker>),
    /// The request cannot be served (a bad wallet, a wrong CSRF token).
    Failed(PageError),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::SignedOut(signed_out) => signed_out.into_response(),
            Rejection::Form(rejection) => rejection.into_response(),
            Rejection::ChooseWallet(picker) => HtmlTemplate(*picker).into_response(),
            Rejection::Failed(err) => err.into_response(),
        }
    }
}

impl From<SignedOut> for Rejection {
    fn from(signed_out: SignedOut) -> Self {
        Rejection::SignedOut(signed_out)
    }
}

impl From<FormRejection> for Rejection {
    fn from(rejection: FormRejection) -> Self {
        Rejection::Form(rejection)
    }
}

impl From<PageError> for Rejection {
    fn from(err: PageError) -> Self {
        Rejection::Failed(err)
    }
}
