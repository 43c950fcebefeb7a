//! The HTTP side: the router of every route, the middleware every request passes (correlation
//! id, logging, body limit, NUL refusal, panic guard), the generated OpenAPI description, and
//! the connections under the server ([`wire`]).

pub mod doc;
pub mod extract;
pub mod health;
pub mod public;
pub mod v1;
pub mod wire;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequest as _, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, InternalError};
use crate::events::TraceContext;
use crate::state::AppState;
use extract::CorrelationId;

#[derive(OpenApi)]
#[openapi(
    info(title = "business-wallet", description = "Wallets, identifiers and the integration of their events with your systems.\n\n\
        Every request may carry `X-Correlation-Id` (see the 400 response for its rule) and a W3C trace context: \
        `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase, neither id all zeros) with an optional `tracestate`. \
        Both travel with the events the request emits (the `correlationid` extension, and the CloudEvents \
        distributed-tracing extension `traceparent`/`tracestate`) and appear in the log lines of the request \
        and of each delivery attempt. A missing or invalid `traceparent` never fails a request: it is ignored \
        (with its `tracestate`) and the request gets a new one, with random ids and the sampled flag `01`."),
    modifiers(&BearerAuth),
    components(
        schemas(crate::error::ErrorBody),
        responses(
            doc::BadRequest,
            doc::Unauthorized,
            doc::Forbidden,
            doc::NotFound,
            doc::Conflict,
            doc::PreconditionFailed,
            doc::PayloadTooLarge,
            doc::Unprocessable,
            doc::Unavailable,
        )
    ),
    tags(
        (name = "wallets", description = "Business wallets"),
        (name = "identifiers", description = "DID, X509 and JWK identifiers of a wallet"),
        (name = "events", description = "The event catalog and its schemas"),
        (name = "channels", description = "A wallet's integration channels"),
        (name = "deliveries", description = "The deliveries log of a wallet's channels"),
        (name = "pull", description = "Fetching and committing the events of a PULL channel (for receivers that cannot be reached)"),
        (name = "platform", description = "Platform channels and their deliveries (every wallet's events)"),
        (name = "erasure", description = "Erasure of a wallet's integration data on request"),
        (name = "history", description = "The audit log"),
        (name = "operations", description = "Health probes"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Fits the description to this deployment: the channel bodies list the channel types it
/// offers (the built-in ones switched on and the adapters registered) and its webhook timeout
/// limit.
fn describe_deployment(mut openapi: utoipa::openapi::OpenApi, state: &AppState) -> utoipa::openapi::OpenApi {
    use crate::domain::channel::{body_schema, BodyUse};
    let max_timeout_ms = state.settings.integration.webhook.max_timeout_ms;
    if let Some(components) = openapi.components.as_mut() {
        for (name, usage) in [
            ("ChannelBody", BodyUse::Create),
            ("ChannelReplaceBody", BodyUse::Replace),
        ] {
            components.schemas.insert(
                name.into(),
                body_schema(state.channels.kinds(), usage, max_timeout_ms).into(),
            );
        }
    }
    openapi
}

/// The description as this deployment serves it (see [`describe_deployment`]).
#[derive(Clone)]
struct Served(Arc<utoipa::openapi::OpenApi>);

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", body = Object),
        (status = 400, response = doc::BadRequest),
    )
)]
async fn openapi_document(Extension(Served(openapi)): Extension<Served>) -> Response {
    Json(openapi.as_ref()).into_response()
}

/// The routes and their OpenAPI description, built from the same handler list.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(v1::wallets::create_wallet, v1::wallets::list_wallets))
        .routes(routes!(v1::wallets::get_wallet))
        .routes(routes!(
            v1::identifiers::create_identifier,
            v1::identifiers::list_identifiers
        ))
        .routes(routes!(v1::identifiers::get_identifier))
        .routes(routes!(
            v1::channels::wallet_list_channels,
            v1::channels::wallet_create_channel
        ))
        .routes(routes!(v1::channels::wallet_test_draft))
        .routes(routes!(
            v1::channels::wallet_get_channel,
            v1::channels::wallet_replace_channel,
            v1::channels::wallet_delete_channel
        ))
        .routes(routes!(v1::channels::wallet_rotate_secret))
        .routes(routes!(v1::channels::wallet_resume_channel))
        .routes(routes!(v1::channels::wallet_test_channel))
        .routes(routes!(
            v1::channels::platform_list_channels,
            v1::channels::platform_create_channel
        ))
        .routes(routes!(v1::channels::platform_test_draft))
        .routes(routes!(
            v1::channels::platform_get_channel,
            v1::channels::platform_replace_channel,
            v1::channels::platform_delete_channel
        ))
        .routes(routes!(v1::channels::platform_rotate_secret))
        .routes(routes!(v1::channels::platform_resume_channel))
        .routes(routes!(v1::channels::platform_test_channel))
        .routes(routes!(v1::pull::wallet_fetch_events))
        .routes(routes!(v1::pull::wallet_commit_events))
        .routes(routes!(v1::pull::platform_fetch_events))
        .routes(routes!(v1::pull::platform_commit_events))
        .routes(routes!(v1::deliveries::list_wallet_deliveries))
        .routes(routes!(v1::deliveries::get_wallet_delivery))
        .routes(routes!(v1::deliveries::replay_wallet_delivery))
        .routes(routes!(v1::deliveries::dismiss_wallet_delivery))
        .routes(routes!(v1::deliveries::bulk_replay_wallet_deliveries))
        .routes(routes!(v1::deliveries::bulk_dismiss_wallet_deliveries))
        .routes(routes!(v1::deliveries::list_platform_deliveries))
        .routes(routes!(v1::deliveries::get_platform_delivery))
        .routes(routes!(v1::deliveries::replay_platform_delivery))
        .routes(routes!(v1::deliveries::dismiss_platform_delivery))
        .routes(routes!(v1::deliveries::bulk_replay_platform_deliveries))
        .routes(routes!(v1::deliveries::bulk_dismiss_platform_deliveries))
        .routes(routes!(v1::erasure::erase_wallet_integration_data))
        .routes(routes!(v1::history::wallet_history))
        .routes(routes!(v1::history::platform_history))
        .routes(routes!(public::list_event_types))
        .routes(routes!(public::get_schema))
        .routes(routes!(public::list_channel_types))
        .routes(routes!(public::asyncapi))
        .routes(routes!(public::webhook_signing_keys))
        .routes(routes!(openapi_document))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .split_for_parts()
}

/// The OpenAPI 3.1 description of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = routes();
    let openapi = Served(Arc::new(describe_deployment(openapi, &state)));
    let body_limit = state.settings.server.body_limit_bytes;
    routes
        .merge(crate::web::router(&state))
        .layer(Extension(openapi))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // The router adds the `Allow` header listing the route's methods.
        .method_not_allowed_fallback(|| async {
            let status = StatusCode::METHOD_NOT_ALLOWED;
            let body = ErrorBody {
                status: status.as_u16(),
                error: status.canonical_reason().unwrap_or("Method Not Allowed").to_string(),
                message: "this route does not take this method; the Allow header lists those it takes".into(),
                details: None,
            };
            (status, Json(body)).into_response()
        })
        .layer(middleware::from_fn(refuse_nul))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            limit_body(body_limit, req, next)
        }))
        .layer(CatchPanicLayer::custom(|_panic| {
            let mut response = ApiError::internal(anyhow::anyhow!("handler panicked")).into_response();
            response.extensions_mut().remove::<InternalError>();
            tracing::error!("a request handler panicked");
            response
        }))
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// Answers 413 for a body over the limit, in a way clients read: when the declared
/// `Content-Length` is over it, before any handler runs; a body without a declared length is
/// cut off at the limit while a handler reads it. Either way the rest of the body is read and
/// thrown away (within [`wire::DRAIN_BYTES`] and [`wire::DRAIN_TIME`]) before the answer goes
/// out with `Connection: close`: a client that sends its whole body before it reads the answer
/// (Python's `urllib`, `requests`) would otherwise see its connection reset while it sends,
/// and never the 413. A client that sent `Expect: 100-continue` is answered at once and never
/// asked for the body.
async fn limit_body(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit as u64) {
        let waits_for_continue = req
            .headers()
            .get(axum::http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits_for_continue && length <= wire::DRAIN_BYTES {
            drain(req.into_body()).await;
        }
        return closing(too_large());
    }
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let leftover = Arc::new(Mutex::new(None));
    let body = axum::body::Body::new(KeptBody {
        inner: Some(body),
        leftover: leftover.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let rest = leftover.lock().ok().and_then(|mut rest| rest.take());
    if let Some(rest) = rest {
        drain(rest).await;
    }
    closing(response)
}

fn too_large() -> Response {
    ApiError::PayloadTooLarge("the request body is larger than the configured limit".into()).into_response()
}

/// The response, with the connection closed after it.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads and discards a body, within [`wire::DRAIN_BYTES`] and [`wire::DRAIN_TIME`].
async fn drain(mut body: axum::body::Body) {
    let discard = async {
        let mut discarded: u64 = 0;
        while let Some(Ok(frame)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            discarded += frame.data_ref().map_or(0, |data| data.len() as u64);
            if discarded > wire::DRAIN_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(wire::DRAIN_TIME, discard).await;
}

/// A request body that, when dropped before its end (a handler stopped reading at the limit),
/// leaves the unread rest where [`limit_body`] finds it.
struct KeptBody {
    inner: Option<axum::body::Body>,
    leftover: Arc<Mutex<Option<axum::body::Body>>>,
}

impl HttpBody for KeptBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let frame = Pin::new(inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = frame {
            self.inner = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for KeptBody {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take().filter(|rest| !rest.is_end_stream()) {
            if let Ok(mut leftover) = self.leftover.lock() {
                *leftover = Some(rest);
            }
        }
    }
}

/// Refuses a path, a query string or a form body (the Web UI's posts) that decodes to text
/// with a NUL character, before any handler runs: PostgreSQL cannot store NUL and no value of
/// the product has a use for it, so both backends answer the same 400. JSON bodies are checked
/// by their extractor ([`extract::AppJson`]), which names the field. A form body is read here
/// (within the body limit) and handed on unchanged.
async fn refuse_nul(req: Request, next: Next) -> Response {
    const MESSAGE: &str = "must not contain the NUL character (%00)";
    if extract::encodes_nul(req.uri().path().as_bytes()) {
        return ApiError::bad_request(format!("the path {MESSAGE}")).into_response();
    }
    if let Some(query) = req.uri().query().filter(|q| extract::encodes_nul(q.as_bytes())) {
        return nul_in_pairs("the query string", query.as_bytes(), MESSAGE).into_response();
    }
    let is_form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
    if !is_form {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The body limit of the inner layer applies: this request already carries it.
    let limited = Request::from_parts(parts.clone(), body);
    let bytes = match axum::body::Bytes::from_request(limited, &()).await {
        Ok(bytes) => bytes,
        Err(rejection) => return extract::body_rejection(rejection).into_response(),
    };
    if extract::encodes_nul(&bytes) {
        return nul_in_pairs("the form body", &bytes, MESSAGE).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The 400 for URL-encoded pairs holding a NUL, naming the parameter it is in (a key holding
/// one is named with it written as `%00`).
fn nul_in_pairs(whole: &str, raw: &[u8], message: &str) -> ApiError {
    let key = url::form_urlencoded::parse(raw)
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', "%00"));
    match key {
        Some(key) => ApiError::invalid_field(&key, message),
        None => ApiError::bad_request(format!("{whole} {message}")),
    }
}

/// Gives each request its correlation id (echoed in the response) and its trace context (the
/// caller's valid `traceparent`, else a new one: [`TraceContext::from_headers`]; never a
/// refusal), a tracing span that carries both into every log line, one access log line, and
/// the log line of a 500's hidden cause. A request whose `X-Correlation-Id` breaks the rule ([`CorrelationId::from_headers`]) goes no
/// further: it is answered 400, logged and echoed with a new id.
async fn request_context(mut req: Request, next: Next) -> Response {
    let (correlation, refused) = match CorrelationId::from_headers(req.headers()) {
        Ok(correlation) => (correlation, None),
        Err(err) => (CorrelationId::fresh(), Some(err)),
    };
    req.extensions_mut().insert(correlation.clone());
    let trace = TraceContext::from_headers(req.headers());
    req.extensions_mut().insert(trace.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let span = tracing::info_span!("request", correlation_id = %correlation.0, traceparent = %trace.traceparent(), method = %req.method(), route = %route);
    let started = Instant::now();
    let mut response = match refused {
        Some(err) => err.into_response(),
        None => next.run(req).instrument(span.clone()).await,
    };
    span.in_scope(|| {
        if let Some(InternalError(cause)) = response.extensions().get::<InternalError>() {
            tracing::error!(error = %cause, "request failed");
        }
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&correlation.0) {
        response.headers_mut().insert(CorrelationId::HEADER, value);
    }
    response
}
