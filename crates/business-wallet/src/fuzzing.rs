//! Entry points for the fuzz targets in `fuzz/` (Cargo feature `fuzzing`, off by default; also
//! compiled for the unit tests, which replay the inputs of earlier crashes): the
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
pub fn extract_json(target: RequestBody, content_type: Option<HeaderValue>, body: Vec<u8>) -> Result<(), Rejection> {
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
            RequestBody::CreateIdentifier => AppJson::<CreateIdentifier>::from_request(request, &()).await.map(drop),
            RequestBody::Channel => AppJson::<ChannelBody>::from_request(request, &()).await.map(drop),
        }
    });
    result.map_err(|err| Rejection {
        status: err.status_code().as_u16(),
        body: serde_json::to_value(err.body()).expect("an error body is plain JSON"),
    })
}

/// Inputs that once broke a check of the `json_extract` fuzz target, replayed on every test
/// run. Each file is in that target's format: `<body> <Content-Type>` on the first line, then
/// the request body.
#[cfg(test)]
mod regressions {
    use std::path::Path;

    use super::*;

    fn replay(input: &[u8]) -> Result<(), Rejection> {
        let at = input.iter().position(|b| *b == b'\n').unwrap_or(input.len());
        let first = std::str::from_utf8(&input[..at]).unwrap();
        let body = input.get(at + 1..).unwrap_or_default().to_vec();
        let (kind, content_type) = first.split_once(' ').unwrap_or((first, ""));
        let target = match kind {
            "wallet" => RequestBody::CreateWallet,
            "identifier" => RequestBody::CreateIdentifier,
            "channel" => RequestBody::Channel,
            other => panic!("unknown body {other}"),
        };
        let content_type = (!content_type.is_empty()).then(|| HeaderValue::from_str(content_type).unwrap());
        extract_json(target, content_type, body)
    }

    #[test]
    fn json_extract_inputs_of_earlier_crashes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/json_extract");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let name = path.display();
            if let Err(rejection) = replay(&input) {
                assert_eq!(rejection.status, 400, "{name}");
                let message = rejection.body["message"].as_str().unwrap();
                assert!(!message.is_empty() && !message.starts_with(':'), "{name}: {message}");
                if let Some(details) = rejection.body.get("details") {
                    assert!(
                        details["field"].as_str().is_some_and(|f| !f.is_empty()),
                        "{name}: {details}"
                    );
                }
            }
            replayed += 1;
        }
        assert!(replayed > 0, "no inputs in {}", dir.display());
    }

    #[test]
    fn a_top_level_key_with_an_empty_name_is_refused_without_an_empty_field() {
        let rejection = replay(b"wallet application/json\n{\"\": 1}").unwrap_err();
        assert_eq!(rejection.status, 400);
        let message = rejection.body["message"].as_str().unwrap();
        assert!(message.starts_with("unknown field ``"), "{message}");
        assert!(rejection.body.get("details").is_none(), "{}", rejection.body);

        // One level down the path names the enclosing object.
        let rejection =
            replay(b"wallet application/json\n{\"displayName\": \"x\", \"address\": {\"\": 1}}").unwrap_err();
        let message = rejection.body["message"].as_str().unwrap();
        assert!(message.starts_with("address"), "{message}");
        assert!(rejection.body["details"]["field"]
            .as_str()
            .unwrap()
            .starts_with("address"));
    }
}
