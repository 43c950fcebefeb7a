//! Entry points for the fuzz targets in `fuzz/` (Cargo feature `fuzzing`, off by default): the
//! crate-private request extractor, reached the way the HTTP server reaches it. Everything
//! else the targets exercise (settings, the SSRF gate, the CloudEvents envelope) is public
//! already. Not a stable API.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{header, HeaderValue, Method, Request};

use crate::api::extract::AppJson;
use crate::domain::channel::ChannelBody;
use crate::domain::identifier::CreateIdentifier;
use crate::domain::wallet::CreateWallet;

/// The request bodies the API reads with its JSON extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// `POST /api/v1/wallets`.
    CreateWallet,
    /// `POST /api/v1/wallets/{walletExternalKey}/identifiers`.
    CreateIdentifier,
    /// Create, replace and test-send of an integration channel.
    Channel,
}

/// An extractor refusal as the client would see it.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON error body (`{status, error, message, details?}`).
    pub body: serde_json::Value,
}

/// Runs the API's JSON extractor on a `POST` with this `Content-Type` (none when `None`) and
/// body, deserialising into the type the route uses. `Ok` means the route would have received
/// the parsed body.
///
/// # Errors
/// The refusal the client would get.
pub fn extract_json(
    target: RequestBody,
    content_type: Option<HeaderValue>,
    body: Vec<u8>,
) -> Result<(), Rejection> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime without drivers can be built")
    });
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = Method::POST;
    if let Some(value) = content_type {
        request.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    let result = runtime.block_on(async {
        match target {
            RequestBody::CreateWallet => AppJson::<CreateWallet>::from_request(request, &()).await.map(drop),
            RequestBody::CreateIdentifier => AppJson::<CreateIdentifier>::from_request(request, &())
                .await
                .map(drop),
            RequestBody::Channel => AppJson::<ChannelBody>::from_request(request, &()).await.map(drop),
        }
    });
    result.map_err(|err| Rejection {
        status: err.status_code().as_u16(),
        body: serde_json::to_value(err.body()).expect("an error body is plain JSON"),
    })
}
