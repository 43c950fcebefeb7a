//! [`WebhookChannel`]: builds the signed request, sends it through a pooled client that follows
//! no redirects and resolves names through the SSRF gate, and classifies what happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use webhook_verify::SIGNATURE_HEADER;

use super::body::{read_limited, BodyError};
use super::classify::{
    classify_error, classify_status, error_chain, parse_retry_after, prefix_error, rejected, retryable,
};
use super::config::{OAuth2Config, WebhookChannelConfig};
use super::handshake::{self, HandshakeReport};
use super::keys::{KeyEntry, SigningKeys};
use super::ssrf::{check_url, GatedResolver, NetworkPolicy};
use super::tls::{TlsClients, TlsMaterial};
use crate::channels::prelude::REDACTED;
use crate::channels::{
    Attempt, BoxFuture, Channel, ChannelConfig, InvalidConfig, OutboundMessage, Outcome, RequestRecord, ResponseRecord,
    WEBHOOK,
};
use crate::config::{Settings, WebhookSettings};
use crate::events::asyncapi::{ContentMode, Header, Transport};
use crate::events::CloudEvent;

/// A cached token is refreshed this long before it expires.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed for a token whose response has no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// The largest token endpoint answer read; real ones are well under a few kilobytes.
pub const TOKEN_RESPONSE_LIMIT: usize = 64 * 1024;

/// The built-in `WEBHOOK` channel type. One instance serves every webhook channel; its HTTP
/// connection pool and OAuth2 token cache are shared, except that a channel with `webhook.tls`
/// sends through a client of its own (with its client certificate and CA bundle).
pub struct WebhookChannel {
    client: reqwest::Client,
    tls_clients: TlsClients,
    policy: Arc<NetworkPolicy>,
    settings: WebhookSettings,
    excerpt_bytes: usize,
    tokens: Mutex<HashMap<String, CachedToken>>,
    signing_keys: Option<Arc<SigningKeys>>,
    /// The `WebHook-Request-Origin` of the validation handshake.
    origin: String,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel").field("policy", &self.policy).finish()
    }
}

/// A bearer token and what it was issued for.
struct CachedToken {
    client: OAuth2Config,
    access_token: String,
    refresh_at: Instant,
}

/// A request that was sent (or could not be) and what came back.
struct Exchange {
    request: RequestRecord,
    timeout: Duration,
    result: Result<ResponseRecord, SendError>,
}

/// Why no response came back.
enum SendError {
    /// The request could not be built from the channel's settings; sending again will not help.
    Unsendable(String),
    /// The transport failed.
    Transport(reqwest::Error),
}

impl WebhookChannel {
    /// The channel with the instance's webhook settings and SSRF policy.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<WebhookChannel> {
        let keys = SigningKeys::from_settings(settings).context("cannot load the webhook signing keys")?;
        let mut channel = WebhookChannel::new(
            NetworkPolicy::from_settings(settings),
            settings.integration.webhook.clone(),
            settings.integration.dispatch.response_excerpt_bytes,
        )?
        .with_signing_keys(Arc::new(keys));
        channel.origin = request_origin(settings);
        Ok(channel)
    }

    /// The `WebHook-Request-Origin` this channel sends in the validation handshake.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sends the validation handshake to the channel's URL once: `OPTIONS` with
    /// `WebHook-Request-Origin` (and `WebHook-Request-Rate` when `request_rate_per_minute` is
    /// given), through the same client and SSRF gate as its deliveries (its own TLS client for a
    /// channel with `webhook.tls`), with its API key header when it has one. Never fails: what
    /// went wrong is the report's `error`.
    pub async fn validate_endpoint(
        &self,
        channel: &ChannelConfig,
        request_rate_per_minute: Option<u64>,
    ) -> HandshakeReport {
        let origin = self.origin.as_str();
        let config = match WebhookChannelConfig::from_value(&channel.config, &self.settings) {
            Ok(config) => config,
            Err(err) => return HandshakeReport::failed(origin, format!("invalid channel configuration: {err}")),
        };
        if let Err(err) = check_url(&config.url, &self.policy) {
            return HandshakeReport::failed(origin, err.to_string());
        }
        let client = match self.client_for(&config, channel) {
            Ok(client) => client,
            Err(outcome) => return HandshakeReport::failed(origin, outcome.error().unwrap_or_default().to_string()),
        };
        let mut request = client
            .request(reqwest::Method::OPTIONS, &config.url)
            .timeout(config.timeout(&self.settings))
            .header(handshake::REQUEST_ORIGIN, origin);
        if let Some(rate) = request_rate_per_minute {
            request = request.header(handshake::REQUEST_RATE, rate.to_string());
        }
        if let (Some(api_key), Some(value)) = (&config.api_key, &channel.secrets.api_key_value) {
            request = request.header(api_key.header_name.as_str(), value.as_str());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let timeout = config.timeout(&self.settings);
                let outcome = classify_error(&err, timeout);
                return HandshakeReport::failed(
                    origin,
                    format!("validation handshake: {}", outcome.error().unwrap_or_default()),
                );
            }
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        handshake::read_answer(
            origin,
            response.status().as_u16(),
            header(handshake::ALLOWED_ORIGIN).as_deref(),
            header(handshake::ALLOWED_RATE).as_deref(),
        )
    }

    /// The channel signing every request with the current key of `keys` too (the `v1a`
    /// entries); without keys, requests carry the HMAC signatures only.
    pub fn with_signing_keys(mut self, keys: Arc<SigningKeys>) -> WebhookChannel {
        self.signing_keys = Some(keys);
        self
    }

    /// The Ed25519 keys this channel signs with, when it has them.
    pub fn signing_keys(&self) -> Option<&Arc<SigningKeys>> {
        self.signing_keys.as_ref()
    }

    /// A channel applying `policy`, with the given timeouts and response excerpt size.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        policy: NetworkPolicy,
        settings: WebhookSettings,
        excerpt_bytes: usize,
    ) -> anyhow::Result<WebhookChannel> {
        let policy = Arc::new(policy);
        let client = client_builder(&policy, &settings).build()?;
        Ok(WebhookChannel {
            client,
            tls_clients: TlsClients::default(),
            policy,
            settings,
            excerpt_bytes,
            tokens: Mutex::new(HashMap::new()),
            signing_keys: None,
            origin: handshake::DEFAULT_ORIGIN.to_string(),
        })
    }

    async fn send(&self, message: &OutboundMessage<'_>, channel: &ChannelConfig) -> Attempt {
        let config = match WebhookChannelConfig::from_value(&channel.config, &self.settings) {
            Ok(config) => config,
            Err(err) => return Attempt::without_request(rejected(format!("invalid channel configuration: {err}"))),
        };
        if let Err(err) = check_url(&config.url, &self.policy) {
            return Attempt::without_request(rejected(err.to_string()));
        }
        let timeout = config.timeout(&self.settings);
        let client = match self.client_for(&config, channel) {
            Ok(client) => client,
            Err(outcome) => return Attempt::without_request(outcome),
        };
        let client = &client;
        let Some(oauth2) = &config.oauth2 else {
            return self
                .exchange(client, &config, message, channel, None, timeout)
                .await
                .into_attempt();
        };
        let token = match self.token(channel, oauth2, timeout, false).await {
            Ok(token) => token,
            Err(outcome) => return Attempt::without_request(outcome),
        };
        let exchange = self
            .exchange(client, &config, message, channel, Some(&token), timeout)
            .await;
        let unauthorized = matches!(&exchange.result, Ok(r) if r.status == StatusCode::UNAUTHORIZED.as_u16());
        if !unauthorized {
            return exchange.into_attempt();
        }
        // The receiver may have revoked the token before it expired: fetch a new one, once.
        match self.token(channel, oauth2, timeout, true).await {
            Ok(token) => self
                .exchange(client, &config, message, channel, Some(&token), timeout)
                .await
                .into_attempt(),
            Err(outcome) => Attempt::without_request(outcome),
        }
    }

    /// The client that sends to the channel's URL: the shared one, or for a channel with
    /// `webhook.tls` its own (kept while its TLS material stays the same). A client certificate
    /// without a stored key, or material that `reqwest` refuses, fails the delivery: sending
    /// again will not help until the channel is fixed.
    fn client_for(&self, config: &WebhookChannelConfig, channel: &ChannelConfig) -> Result<reqwest::Client, Outcome> {
        let Some(tls) = &config.tls else {
            return Ok(self.client.clone());
        };
        let material = TlsMaterial::new(tls, channel.secrets.client_key_pem.as_deref())
            .map_err(|problem| rejected(format!("webhook.tls: {problem}")))?;
        self.tls_clients
            .get_or_build(&material, |material| {
                material
                    .apply(client_builder(&self.policy, &self.settings))?
                    .build()
                    .map_err(|err| format!("webhook.tls: the TLS client cannot be built: {}", error_chain(&err)))
            })
            .map_err(rejected)
    }

    /// Sends the request once; signs it now, so every attempt carries a fresh timestamp.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        config: &WebhookChannelConfig,
        message: &OutboundMessage<'_>,
        channel: &ChannelConfig,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Exchange {
        let mut headers = HeaderMap::new();
        let mut shown: Vec<(String, String)> = Vec::new();
        let mut add = |name: HeaderName, value: String, redacted: Option<&str>| {
            shown.push((
                name.as_str().to_string(),
                redacted.map_or_else(|| value.clone(), str::to_string),
            ));
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    headers.append(name, value);
                    Ok(())
                }
                Err(_) => Err(format!("header {name} has a value that cannot be sent")),
            }
        };
        let mut result = Ok(());
        result = result.and(add(CONTENT_TYPE, "application/json".into(), None));
        for (name, value) in message.envelope.binary_mode_headers() {
            let encoded = webhook_verify::percent_encode_header_value(value);
            result = result.and(add(HeaderName::from_static(name), encoded, None));
        }
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let keys: Vec<&[u8]> = message.signing_secrets.iter().map(|s| s.as_bytes()).collect();
        let key_set = self.signing_keys.as_ref().map(|keys| keys.current());
        // The key is chosen by the clock in milliseconds, not by `t`: a key generated in this very
        // second signs at once.
        let signer: Option<&KeyEntry> = key_set.as_ref().and_then(|set| set.signer(crate::store::now_ms()));
        let mut signature = webhook_verify::signature_header(&keys, timestamp, message.body);
        if let Some(signer) = signer {
            signature.push_str(&webhook_verify::ed25519_entry(
                &signer.kid,
                &signer.key,
                timestamp,
                message.body,
            ));
        }
        // The stored copy keeps its shape of before the Ed25519 entry: the HMAC values are
        // secret-derived and redacted, the public-key signature is no help to a reader.
        let signature_shown = format!("t={timestamp},v1={REDACTED}");
        result = result.and(add(
            HeaderName::from_static("x-credenco-signature"),
            signature,
            Some(&signature_shown),
        ));
        if config.standard_webhooks {
            let secrets: Vec<&str> = message.signing_secrets.iter().map(String::as_str).collect();
            let id = &message.envelope.id;
            let signature = webhook_verify::standard_signature_header(
                &secrets,
                signer.map(|s| &s.key),
                id,
                timestamp,
                message.body,
            );
            let shown = signature
                .split(' ')
                .map(|entry| {
                    if entry.starts_with("v1,") {
                        format!("v1,{REDACTED}")
                    } else {
                        entry.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            result = result.and(add(HeaderName::from_static("webhook-id"), id.clone(), None));
            result = result.and(add(
                HeaderName::from_static("webhook-timestamp"),
                timestamp.to_string(),
                None,
            ));
            result = result.and(add(
                HeaderName::from_static("webhook-signature"),
                signature,
                Some(&shown),
            ));
        }
        if let Some(api_key) = &config.api_key {
            match (
                HeaderName::from_bytes(api_key.header_name.as_bytes()),
                &channel.secrets.api_key_value,
            ) {
                (Ok(name), Some(value)) => result = result.and(add(name, value.clone(), Some(REDACTED))),
                (Err(_), _) => result = result.and(Err("webhook.apiKey.headerName is not a valid header name".into())),
                (_, None) => result = result.and(Err("the channel has an API key header but no API key value".into())),
            }
        }
        if let Some(token) = bearer {
            let redacted = format!("Bearer {REDACTED}");
            result = result.and(add(AUTHORIZATION, format!("Bearer {token}"), Some(&redacted)));
        }
        let request = RequestRecord {
            method: "POST".into(),
            url: config.url.clone(),
            headers: shown,
            body: String::from_utf8_lossy(message.body).into_owned(),
        };
        if let Err(problem) = result {
            return Exchange {
                request,
                timeout,
                result: Err(SendError::Unsendable(problem)),
            };
        }
        let sent = client
            .post(&config.url)
            .headers(headers)
            .body(message.body.to_vec())
            .timeout(timeout)
            .send()
            .await;
        let result = match sent {
            Ok(response) => Ok(self.record(response).await),
            Err(err) => Err(SendError::Transport(err)),
        };
        Exchange {
            request,
            timeout,
            result,
        }
    }

    /// Reads the status, the headers and at most `excerpt_bytes` of the body.
    async fn record(&self, mut response: reqwest::Response) -> ResponseRecord {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        // The status decides the outcome; a body that stalls or breaks only shortens the excerpt.
        while body.len() < self.excerpt_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(self.excerpt_bytes);
        ResponseRecord {
            status,
            headers,
            body_excerpt: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A bearer token for the channel's OAuth2 client, from the cache unless `refresh`.
    async fn token(
        &self,
        channel: &ChannelConfig,
        oauth2: &OAuth2Config,
        timeout: Duration,
        refresh: bool,
    ) -> Result<String, Outcome> {
        let key = &channel.channel_external_key;
        if !refresh {
            let tokens = self.tokens.lock().expect("token cache lock is never poisoned");
            if let Some(cached) = tokens.get(key) {
                if cached.client == *oauth2 && Instant::now() < cached.refresh_at {
                    return Ok(cached.access_token.clone());
                }
            }
        }
        let Some(client_secret) = &channel.secrets.oauth2_client_secret else {
            return Err(rejected("the channel has OAuth2 settings but no client secret".into()));
        };
        check_url(&oauth2.token_url, &self.policy).map_err(|e| rejected(format!("OAuth2 token URL: {e}")))?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", oauth2.client_id.as_str()),
            ("client_secret", client_secret.as_str()),
        ];
        if let Some(scope) = &oauth2.scope {
            form.push(("scope", scope.as_str()));
        }
        let started = Instant::now();
        let sent = self
            .client
            .post(&oauth2.token_url)
            .form(&form)
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let outcome = classify_error(&err, timeout);
                return Err(prefix_error(outcome, "OAuth2 token request"));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if !status.is_success() {
            let outcome = classify_status(status.as_u16(), retry_after, None);
            return Err(prefix_error(outcome, "OAuth2 token endpoint"));
        }
        // Like a malformed answer, an oversized one is retryable: the endpoint may be
        // misbehaving for a while, and the operator can fix a wrong URL meanwhile.
        let bytes = match read_limited(response, TOKEN_RESPONSE_LIMIT).await {
            Ok(bytes) => bytes,
            Err(BodyError::Transport(err)) => {
                let outcome = classify_error(&err, timeout);
                return Err(prefix_error(outcome, "OAuth2 token response"));
            }
            Err(too_large) => return Err(retryable(format!("OAuth2 token response: {too_large}"), None)),
        };
        let body: Value = match serde_json::from_slice(&bytes) {
            Ok(body) => body,
            Err(err) => return Err(retryable(format!("OAuth2 token response is not JSON: {err}"), None)),
        };
        let Some(access_token) = body["access_token"].as_str().map(str::to_string) else {
            return Err(rejected("OAuth2 token response has no access_token".into()));
        };
        let lifetime = body["expires_in"]
            .as_u64()
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let refresh_at = started + lifetime.saturating_sub(TOKEN_EXPIRY_MARGIN);
        self.tokens.lock().expect("token cache lock is never poisoned").insert(
            key.clone(),
            CachedToken {
                client: oauth2.clone(),
                access_token: access_token.clone(),
                refresh_at,
            },
        );
        Ok(access_token)
    }
}

impl Exchange {
    fn into_attempt(self) -> Attempt {
        let outcome = match self.result {
            Ok(response) => {
                let retry_after = response
                    .headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(RETRY_AFTER.as_str()))
                    .and_then(|(_, value)| parse_retry_after(value, SystemTime::now()));
                classify_status(response.status, retry_after, Some(response))
            }
            Err(SendError::Unsendable(problem)) => rejected(problem),
            Err(SendError::Transport(err)) => classify_error(&err, self.timeout),
        };
        Attempt {
            request: Some(self.request),
            outcome,
        }
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> &str {
        WEBHOOK
    }

    fn asyncapi(&self) -> Option<Transport> {
        Some(transport())
    }

    fn validate(&self, config: &Value) -> Result<(), InvalidConfig> {
        let config = WebhookChannelConfig::from_value(config, &self.settings)?;
        check_url(&config.url, &self.policy).map_err(|e| InvalidConfig(format!("webhook.url: {e}")))?;
        if let Some(oauth2) = &config.oauth2 {
            check_url(&oauth2.token_url, &self.policy)
                .map_err(|e| InvalidConfig(format!("webhook.oauth2.tokenUrl: {e}")))?;
        }
        Ok(())
    }

    fn deliver<'a>(&'a self, message: &'a OutboundMessage<'a>, channel: &'a ChannelConfig) -> BoxFuture<'a, Attempt> {
        Box::pin(self.send(message, channel))
    }

    fn destination(&self, config: &Value) -> Option<String> {
        WebhookChannelConfig::from_value(config, &self.settings)
            .ok()
            .map(|c| c.url)
    }
}

/// The `WebHook-Request-Origin` of the deployment: `integration.webhook.request_origin`, else
/// the host of its public URL, else [`handshake::DEFAULT_ORIGIN`].
fn request_origin(settings: &Settings) -> String {
    if let Some(origin) = settings.integration.webhook.request_origin.as_deref() {
        return origin.to_string();
    }
    settings
        .public_base_url
        .as_deref()
        .and_then(|base| reqwest::Url::parse(base).ok())
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| handshake::DEFAULT_ORIGIN.to_string())
}

/// The settings every webhook client shares, the per-channel TLS ones included.
fn client_builder(policy: &Arc<NetworkPolicy>, settings: &WebhookSettings) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // A redirect is reported as a retryable failure, never followed: following one
        // would send the signed event to a place nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve names itself, around the gate.
        .no_proxy()
        .dns_resolver(Arc::new(GatedResolver::new(policy.clone())))
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("business-wallet/", env!("CARGO_PKG_VERSION")))
}

/// The secret the AsyncAPI document's examples are signed with.
pub const EXAMPLE_SECRET: &str = "whsec_ZXhhbXBsZS1zZWNyZXQtZm9yLWRvY3M";

/// The Ed25519 private key (hex) the AsyncAPI document's examples are signed with: the
/// secret key of RFC 8032's first test vector.
pub const EXAMPLE_ED25519_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// The key the examples are signed with, and its kid (its JWK thumbprint).
fn example_key() -> (ed25519_dalek::SigningKey, String) {
    let seed: [u8; 32] = hex::decode(EXAMPLE_ED25519_SEED)
        .expect("the example seed is hex")
        .try_into()
        .expect("the example seed is 32 bytes");
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let kid = webhook_verify::jwk_thumbprint(&key.verifying_key());
    (key, kid)
}

/// What a webhook request looks like, for the AsyncAPI document.
pub fn transport() -> Transport {
    Transport {
        name: "webhook",
        title: "Webhook",
        description: format!(
            "A `POST` to the channel's `webhook.url`, in CloudEvents HTTP binary mode: the \
             attributes as `ce-` headers (their values percent-encoded as the binding says), the \
             event's data as the JSON body, `Content-Type: application/json`. Every request is \
             signed with `{SIGNATURE_HEADER}`: HMAC-SHA256 with the channel's secret (`v1`) and \
             Ed25519 with the deployment's signing key (`v1a`), whose public keys are served \
             without authentication at `/api/public/webhook-signing-keys.json`. A channel with \
             `webhook.standardWebhooks` also sends `webhook-id`, `webhook-timestamp` and \
             `webhook-signature` as the Standard Webhooks specification defines them. A channel \
             with `webhook.apiKey` also sends that header with its value; one with \
             `webhook.oauth2` sends `Authorization: Bearer` with a client-credentials token from \
             its `tokenUrl`. A channel with `webhook.tls` presents its `clientCertificate` when \
             the receiver asks for one (mutual TLS), and checks the receiver's certificate against \
             its `caCertificates` only (a private CA) instead of the public roots; both apply to \
             that channel's `url` alone.\n\n\
             A channel with `webhook.validationHandshake` first sends the CloudEvents validation \
             handshake (abuse protection): `OPTIONS` to its `url` with `WebHook-Request-Origin` \
             (the deployment's `integration.webhook.request_origin`) and, when the channel has a \
             rate limit, `WebHook-Request-Rate` (requests per minute). Answer with a 2xx and \
             `WebHook-Allowed-Origin` set to that origin or `*`, and optionally \
             `WebHook-Allowed-Rate` (requests per minute, or `*`): the channel is then VERIFIED \
             and that rate limits its deliveries. Until then the channel is UNVERIFIED and its \
             deliveries wait (none is dropped); the handshake is tried again every \
             `integration.webhook.validation_retry_secs`. On such a channel, answering a delivery \
             with 410 Gone disables the channel (its deliveries wait until it is enabled again) \
             and records it in the history.\n\n\
             Answer with a 2xx once the event is stored: the delivery is then DELIVERED. A 408, a \
             429, a 3xx or a 5xx (with `Retry-After` honoured), no answer within \
             `webhook.timeoutMs`, or a connection or TLS error is retried later; any other 4xx \
             fails the delivery at once (it can be replayed). Redirects are not followed.",
        ),
        address: None,
        parameters: json!({}),
        mode: ContentMode::Binary,
        content_type: "application/json",
        headers: webhook_headers,
        operation_bindings: Some(json!({ "http": { "method": "POST", "bindingVersion": "0.3.0" } })),
        message_bindings: None,
    }
}

/// The headers of a webhook request besides the `ce-` ones; the example is signed with
/// [`EXAMPLE_SECRET`] and [`EXAMPLE_ED25519_SEED`] at the example's `time`.
fn webhook_headers(example: &CloudEvent) -> Vec<Header> {
    let body = serde_json::to_vec(&example.data).expect("the data is JSON");
    let signed_at = chrono::DateTime::parse_from_rfc3339(&example.time).map_or(0, |t| t.timestamp());
    let (key, kid) = example_key();
    let mut signature = webhook_verify::signature_header(&[EXAMPLE_SECRET.as_bytes()], signed_at, &body);
    signature.push_str(&webhook_verify::ed25519_entry(&kid, &key, signed_at, &body));
    let jwk = webhook_verify::public_jwk(&kid, &key.verifying_key());
    let public_x = jwk["x"].as_str().expect("a JWK's x is text");
    vec![
        Header::required(
            "Content-Type",
            json!({ "type": "string", "const": "application/json" }),
            "application/json",
        ),
        Header::required(
            SIGNATURE_HEADER,
            json!({
                "type": "string",
                "pattern": "^t=[0-9]+(,v1=[0-9a-f]{64})+(,v1a=[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{86})?$",
                "description": format!(
                    "`t=<unix seconds>,v1=<hex>[,v1=<hex>],v1a=<kid>:<signature>`: `v1` is the \
                     lowercase hex HMAC-SHA256, keyed with the UTF-8 bytes of the channel's \
                     `hmacSecret` (the `whsec_...` text exactly as it was shown once), of \
                     `<t>.<raw body>`, `t` written in decimal. During a secret rotation's grace \
                     window a second `v1`, made with the previous secret, follows. `v1a` is the \
                     Ed25519 signature (unpadded base64url of its 64 bytes) of the same \
                     `<t>.<raw body>` by the deployment's signing key `kid`, whose public key is \
                     in the JWKS at `/api/public/webhook-signing-keys.json`. A request is \
                     authentic when any `v1` matches a secret the receiver trusts, or when the \
                     `v1a` verifies with the published key it names; verifiers of `v1` (Stripe's \
                     among them) ignore `v1a`. Refuse a `t` too far from your clock (the \
                     `webhook-verify` crate and `business-wallet verify` allow 5 minutes). The \
                     example is signed with the secret `{EXAMPLE_SECRET}` and the Ed25519 key \
                     `{kid}` (private key, hex: `{EXAMPLE_ED25519_SEED}`; public `x`: `{public_x}`) \
                     over the example payload as compact JSON."
                ),
            }),
            signature,
        ),
        Header::optional(
            "Authorization",
            json!({
                "type": "string",
                "pattern": "^Bearer .+$",
                "description": "`Bearer <token>`, on a channel with `webhook.oauth2`: a client-credentials token of its `tokenUrl`, cached until 60 s before it expires and fetched again once when the receiver answers 401.",
            }),
        ),
        Header::optional(
            "webhook-id",
            json!({
                "type": "string",
                "description": "On a channel with `webhook.standardWebhooks`: the event's id (the same as `ce-id`), stable across retries and replays.",
            }),
        ),
        Header::optional(
            "webhook-timestamp",
            json!({
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "On a channel with `webhook.standardWebhooks`: the signing time in Unix seconds (the same as `t` of the signature header).",
            }),
        ),
        Header::optional(
            "webhook-signature",
            json!({
                "type": "string",
                "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*( v1a,[A-Za-z0-9+/=]+)?$",
                "description": "On a channel with `webhook.standardWebhooks`, as the Standard Webhooks specification defines it, over `<webhook-id>.<webhook-timestamp>.<raw body>`: `v1,<base64 HMAC-SHA256>` keyed with the base64-decoded part of the `hmacSecret` after `whsec_` (a second one during a secret rotation), then `v1a,<base64 Ed25519 signature>` by the deployment's current signing key. The `standardwebhooks` libraries verify it given the `hmacSecret` unchanged.",
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_resolving_to_a_forbidden_address_is_rejected_through_the_client() {
        let channel = WebhookChannel::new(NetworkPolicy::default(), WebhookSettings::default(), 64).unwrap();
        // Straight to the client, past `check_url`, so that only the resolver can refuse.
        let err = channel
            .client
            .post("http://localhost:9/hook")
            .send()
            .await
            .expect_err("the resolver refuses loopback");
        match classify_error(&err, Duration::from_secs(1)) {
            Outcome::Rejected { error, .. } => assert!(error.starts_with("address not allowed"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
