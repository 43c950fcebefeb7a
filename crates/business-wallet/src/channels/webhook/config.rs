//! The webhook type block stored in `integration_channel.config` (secrets excluded; they live
//! in [`ChannelSecrets`](crate::channels::ChannelSecrets)).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channels::InvalidConfig;
use crate::config::WebhookSettings;

/// Where and how to POST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookChannelConfig {
    /// The receiver's URL.
    pub url: String,
    /// Total time allowed for one request, in milliseconds (`integration.webhook.*` gives the
    /// default and the maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Send a static API key in a header (its value is a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyConfig>,
    /// Fetch a bearer token with the OAuth2 client-credentials grant (the client secret is a
    /// secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    /// Also send the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`), so that receivers can use the `standardwebhooks` libraries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standard_webhooks: bool,
    /// Mutual TLS and a private CA for this endpoint (the client key is a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Require the CloudEvents webhook validation handshake (an `OPTIONS` request answered
    /// with `WebHook-Allowed-Origin`) before the first delivery; deliveries wait until the
    /// receiver has answered it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validation_handshake: bool,
}

/// The public part of a channel's TLS settings; the client certificate's private key is in
/// the channel's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// The client certificate the channel presents, PEM, leaf first (intermediates may
    /// follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// PEM CA certificates: the only roots the endpoint's certificate may chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

/// The headers a channel with `standardWebhooks` sets.
pub const STANDARD_WEBHOOKS_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// The API key header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Header name, e.g. `X-Api-Key`.
    pub header_name: String,
}

/// The OAuth2 client-credentials client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Config {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// Requested scope, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Header names the channel sets itself; an API key may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "authorization",
    "x-credenco-signature",
];

impl WebhookChannelConfig {
    /// Reads and checks a stored or submitted type block (the URL's address is checked
    /// separately, by the SSRF gate).
    ///
    /// # Errors
    /// Unknown or missing fields, a timeout out of range, an unusable API key header name.
    pub fn from_value(value: &Value, settings: &WebhookSettings) -> Result<WebhookChannelConfig, InvalidConfig> {
        let config: WebhookChannelConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| InvalidConfig(format!("webhook.{}: {}", e.path(), e.inner())))?;
        if let Some(ms) = config.timeout_ms {
            if ms == 0 || ms > settings.max_timeout_ms {
                return Err(InvalidConfig(format!(
                    "webhook.timeoutMs must be between 1 and {}",
                    settings.max_timeout_ms
                )));
            }
        }
        if let Some(api_key) = &config.api_key {
            let name = api_key.header_name.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(InvalidConfig(
                    "webhook.apiKey.headerName is not a valid header name".into(),
                ));
            }
            let standard = config.standard_webhooks && STANDARD_WEBHOOKS_HEADERS.contains(&name.as_str());
            if RESERVED_HEADERS.contains(&name.as_str()) || name.starts_with("ce-") || standard {
                return Err(InvalidConfig(format!(
                    "webhook.apiKey.headerName `{}` is set by the channel itself",
                    api_key.header_name
                )));
            }
        }
        if let Some(oauth2) = &config.oauth2 {
            if oauth2.client_id.is_empty() {
                return Err(InvalidConfig("webhook.oauth2.clientId must not be empty".into()));
            }
        }
        Ok(config)
    }

    /// The total timeout of one request.
    pub fn timeout(&self, settings: &WebhookSettings) -> Duration {
        Duration::from_millis(
            self.timeout_ms
                .unwrap_or(settings.default_timeout_ms)
                .min(settings.max_timeout_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_contract_shape_parses_and_bad_blocks_are_named() {
        let settings = WebhookSettings::default();
        let config = WebhookChannelConfig::from_value(
            &json!({"url": "https://r.example/h", "timeoutMs": 2000, "apiKey": {"headerName": "X-Api-Key"},
                    "oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "c", "scope": "events"}}),
            &settings,
        )
        .unwrap();
        assert_eq!(config.timeout(&settings), Duration::from_secs(2));
        assert_eq!(config.oauth2.unwrap().scope.as_deref(), Some("events"));

        let err = WebhookChannelConfig::from_value(&json!({"url": "https://r.example", "secret": "x"}), &settings)
            .unwrap_err();
        assert!(err.0.contains("secret"), "{err}");
        let err =
            WebhookChannelConfig::from_value(&json!({"url": "https://r.example", "timeoutMs": 999999}), &settings)
                .unwrap_err();
        assert!(err.0.contains("timeoutMs"), "{err}");
        let err = WebhookChannelConfig::from_value(
            &json!({"url": "https://r.example", "apiKey": {"headerName": "Authorization"}}),
            &settings,
        )
        .unwrap_err();
        assert!(err.0.contains("headerName"), "{err}");
    }

    #[test]
    fn the_standard_webhooks_option_is_off_unless_set_and_reserves_its_headers() {
        let settings = WebhookSettings::default();
        let plain = WebhookChannelConfig::from_value(&json!({"url": "https://r.example"}), &settings).unwrap();
        assert!(!plain.standard_webhooks);
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"url": "https://r.example"})
        );
        // Without the option a channel may name its API key header like a Standard Webhooks one.
        let block = json!({"url": "https://r.example", "apiKey": {"headerName": "webhook-id"}});
        assert!(WebhookChannelConfig::from_value(&block, &settings).is_ok());
        let mut block = block;
        block["standardWebhooks"] = json!(true);
        let err = WebhookChannelConfig::from_value(&block, &settings).unwrap_err();
        assert!(err.0.contains("set by the channel itself"), "{err}");
    }
}
