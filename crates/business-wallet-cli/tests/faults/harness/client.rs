//! A client of the API for the fault tests. Every call gives an [`Answer`] (whatever the
//! status) or a transport error (no answer: the server is down or cut the connection), so a
//! scenario can count each kind instead of stopping at the first.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, when present.
    pub retry_after: Option<String>,
    /// Whether `Content-Type` is `application/json`.
    pub json_content_type: bool,
    /// The body parsed as JSON, or None when it is not JSON.
    pub body: Option<Value>,
    /// The raw body when it is not JSON (for failure messages; at most 200 bytes).
    pub raw: String,
    /// Time from sending to the whole body.
    pub elapsed: Duration,
}

impl Answer {
    /// A JSON body with a JSON content type.
    pub fn is_json(&self) -> bool {
        self.json_content_type && self.body.is_some()
    }

    /// The error shape `{status, error, message, details?}` with `status` equal to the HTTP
    /// status.
    pub fn has_error_shape(&self) -> bool {
        self.is_json()
            && self.body.as_ref().is_some_and(|body| {
                body["status"].as_u64() == Some(u64::from(self.status))
                    && body["error"].is_string()
                    && body["message"].is_string()
            })
    }

    /// A 503 with a JSON error body and a `Retry-After` of whole seconds: "try again later".
    pub fn is_retry_later(&self) -> bool {
        self.status == 503
            && self.has_error_shape()
            && self
                .retry_after
                .as_deref()
                .is_some_and(|value| value.trim().parse::<u64>().is_ok())
    }

    /// A string field of the JSON body.
    pub fn field(&self, name: &str) -> Option<String> {
        self.body.as_ref()?.get(name)?.as_str().map(str::to_string)
    }

    /// One line for failure messages.
    pub fn describe(&self) -> String {
        match &self.body {
            Some(body) => format!("{} {} (Retry-After: {:?})", self.status, body, self.retry_after),
            None => format!(
                "{} non-JSON body {:?} (Retry-After: {:?})",
                self.status, self.raw, self.retry_after
            ),
        }
    }
}

/// An answer, or the transport error that stood in for one.
pub type Reply = Result<Answer, reqwest::Error>;

/// A client of one instance's API with one bearer token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl Client {
    /// A client of `base_url` (`http://127.0.0.1:port`) sending `token`; each request may take
    /// 30 s at most.
    pub fn new(base_url: &str, token: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("an HTTP client");
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` with an optional JSON body and the bearer token.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header(reqwest::header::RETRY_AFTER);
        let json_content_type =
            header(reqwest::header::CONTENT_TYPE).is_some_and(|v| v.starts_with("application/json"));
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice::<Value>(&bytes).ok();
        let raw = if body.is_none() {
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
        } else {
            String::new()
        };
        Ok(Answer {
            status,
            retry_after,
            json_content_type,
            body,
            raw,
            elapsed: started.elapsed(),
        })
    }

    /// `POST /api/v1/wallets` with a display name; 201 holds `walletExternalKey`.
    pub async fn create_wallet(&self, display_name: &str) -> Reply {
        self.call(
            reqwest::Method::POST,
            "/api/v1/wallets",
            Some(&json!({ "displayName": display_name })),
        )
        .await
    }

    /// `GET /api/v1/wallets/{key}`.
    pub async fn get_wallet(&self, key: &str) -> Reply {
        self.call(reqwest::Method::GET, &format!("/api/v1/wallets/{key}"), None)
            .await
    }

    /// `POST /api/v1/wallets/{key}/identifiers` with a generated did:key (Ed25519).
    pub async fn create_identifier(&self, wallet: &str) -> Reply {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/wallets/{wallet}/identifiers"),
            Some(&json!({
                "identifierType": "DID", "displayName": "faults", "didType": "did:key", "keyType": "Ed25519"
            })),
        )
        .await
    }

    /// `POST /api/integration-channels`: a platform webhook channel named `name` to `url`,
    /// subscribed to `event_types`, with the given request timeout.
    pub async fn create_platform_webhook(&self, name: &str, url: &str, event_types: &[&str], timeout_ms: u64) -> Reply {
        self.call(
            reqwest::Method::POST,
            "/api/integration-channels",
            Some(&json!({
                "name": name,
                "type": "WEBHOOK",
                "eventTypeFilters": event_types,
                "webhook": { "url": url, "timeoutMs": timeout_ms },
            })),
        )
        .await
    }

    /// `GET /api/integration-deliveries?limit=200`: the newest 200 deliveries to platform
    /// channels that are still active (not DELIVERED, not DISMISSED).
    pub async fn active_platform_deliveries(&self) -> Reply {
        self.call(reqwest::Method::GET, "/api/integration-deliveries?limit=200", None)
            .await
    }

    /// `GET /health/ready`.
    pub async fn ready(&self) -> Reply {
        self.call(reqwest::Method::GET, "/health/ready", None).await
    }
}
