//! The webhook block of a create or replace request, secrets included: its text checked for
//! what cannot be sent, its URLs through the SSRF gate on save (and the addresses their names
//! resolve to now), and the block to store split from the secrets it carried.

use serde::Deserialize;
use serde_json::{json, Value};

use super::ssrf::{allowed_networks_hint, check_url_on_save, NetworkPolicy};
use super::tls;
use crate::domain::validate::optional_object;

/// A value of the block that cannot be stored, named by its field (`webhook.url`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    /// The field, as a path in the request body.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
    /// The value is well-formed, but cannot go with the rest of the block (a client key
    /// without its certificate, or of another certificate): a 422 rather than a 400.
    pub impossible: bool,
}

impl InvalidField {
    fn new(field: &'static str, message: impl Into<String>) -> InvalidField {
        InvalidField {
            field,
            message: message.into(),
            impossible: false,
        }
    }

    fn impossible(field: &'static str, message: impl Into<String>) -> InvalidField {
        InvalidField {
            impossible: true,
            ..InvalidField::new(field, message)
        }
    }
}

/// A checked block: the JSON to store (no secrets), and the secrets it carried, each `None`
/// when its block is absent and `Some(None)` when the block leaves the secret out (keep the
/// stored one).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The block as stored.
    pub config: Value,
    /// The API key's value.
    pub api_key_value: Option<Option<String>>,
    /// The OAuth2 client secret.
    pub oauth2_client_secret: Option<Option<String>>,
    /// The client certificate's private key (`None` also when the block has no client
    /// certificate).
    pub client_key_pem: Option<Option<String>>,
}

/// The webhook block of a request, secrets included.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookBody {
    /// The receiver's URL (`https` in SaaS mode).
    pub url: String,
    /// Request timeout in milliseconds.
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub timeout_ms: Option<u64>,
    /// A static API key sent in a header.
    #[serde(default, deserialize_with = "optional_object")]
    pub api_key: Option<ApiKeyBody>,
    /// OAuth2 client-credentials.
    #[serde(default, deserialize_with = "optional_object")]
    pub oauth2: Option<OAuth2Body>,
    /// Also send the Standard Webhooks headers (default false).
    #[serde(default)]
    pub standard_webhooks: Option<bool>,
    /// Mutual TLS and a private CA for this endpoint.
    #[serde(default, deserialize_with = "optional_object")]
    pub tls: Option<TlsBody>,
    /// Require the validation handshake before the first delivery (default false).
    #[serde(default)]
    pub validation_handshake: Option<bool>,
}

/// Mutual TLS and a private CA. On replace, an omitted `clientKey` keeps the stored one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsBody {
    /// The client certificate, PEM, leaf first (intermediates may follow).
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// Its private key, PEM, unencrypted (a secret: stored encrypted, never returned).
    #[serde(default)]
    pub client_key: Option<String>,
    /// PEM CA certificates: the only roots the endpoint's certificate may chain to.
    #[serde(default)]
    pub ca_certificates: Option<String>,
}

/// A whole number that JSON may write with a zero fraction (`1000.0`), as JSON Schema's
/// `integer` allows.
fn optional_whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole.map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "invalid value: `{number}`, expected a whole number of milliseconds"
        ))
    })
}

/// API key header. On replace, an omitted `value` keeps the stored one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBody {
    /// Header name, e.g. `X-Api-Key`.
    pub header_name: String,
    /// The key (a secret: never returned).
    #[serde(default)]
    pub value: Option<String>,
}

/// OAuth2 client. On replace, an omitted `clientSecret` keeps the stored one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Body {
    /// Token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (never returned).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scope.
    #[serde(default)]
    pub scope: Option<String>,
}

/// Checks a webhook block and returns the JSON to store (no secrets) with the API key value and
/// the OAuth2 client secret it carried: each `None` when its block is absent, `Some(None)` when
/// the block leaves the secret out (keep the stored one).
///
/// # Errors
/// 400 naming the field: a control character, an invalid header name, a secret of the wrong
/// length, or a URL or address the gate refuses.
pub async fn prepare(webhook: WebhookBody, policy: &NetworkPolicy) -> Result<Prepared, InvalidField> {
    check_webhook_text(&webhook)?;
    check_url_and_addresses(&webhook.url, policy, "webhook.url").await?;
    let mut config = json!({ "url": webhook.url.trim() });
    if let Some(ms) = webhook.timeout_ms {
        config["timeoutMs"] = json!(ms);
    }
    if webhook.standard_webhooks == Some(true) {
        config["standardWebhooks"] = json!(true);
    }
    if webhook.validation_handshake == Some(true) {
        config["validationHandshake"] = json!(true);
    }
    if let Some(api_key) = &webhook.api_key {
        config["apiKey"] = json!({ "headerName": api_key.header_name.trim() });
        if api_key.value.as_deref().is_some_and(|v| v.is_empty() || v.len() > 4096) {
            return Err(InvalidField::new(
                "webhook.apiKey.value",
                "must be 1 to 4096 characters",
            ));
        }
    }
    if let Some(oauth2) = &webhook.oauth2 {
        check_url_and_addresses(&oauth2.token_url, policy, "webhook.oauth2.tokenUrl").await?;
        config["oauth2"] = json!({ "tokenUrl": oauth2.token_url.trim(), "clientId": oauth2.client_id.trim() });
        if let Some(scope) = oauth2.scope.as_deref().filter(|s| !s.trim().is_empty()) {
            config["oauth2"]["scope"] = json!(scope.trim());
        }
        if oauth2
            .client_secret
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.len() > 4096)
        {
            return Err(InvalidField::new(
                "webhook.oauth2.clientSecret",
                "must be 1 to 4096 characters",
            ));
        }
    }
    let mut client_key_pem = None;
    if let Some(body) = &webhook.tls {
        let (block, key) = prepare_tls(body)?;
        if let Some(block) = block {
            config["tls"] = block;
        }
        client_key_pem = key;
    }
    Ok(Prepared {
        api_key_value: webhook.api_key.map(|k| k.value),
        oauth2_client_secret: webhook.oauth2.map(|o| o.client_secret),
        client_key_pem,
        config,
    })
}

/// Checks a `tls` block: its PEM texts parse, a key comes only with a certificate and
/// belongs to it. Returns the block to store (`None` when it sets nothing) and the key as
/// [`Prepared::client_key_pem`] has it.
fn prepare_tls(body: &TlsBody) -> Result<(Option<Value>, Option<Option<String>>), InvalidField> {
    let mut block = serde_json::Map::new();
    let mut chain = None;
    if let Some(pem) = &body.client_certificate {
        chain = Some(tls::parse_certificates(pem).map_err(|e| InvalidField::new("webhook.tls.clientCertificate", e))?);
        block.insert("clientCertificate".into(), json!(normalised_pem(pem)));
    }
    let key = match &body.client_key {
        Some(pem) => Some(tls::parse_private_key(pem).map_err(|e| InvalidField::new("webhook.tls.clientKey", e))?),
        None => None,
    };
    match (&chain, &key) {
        (Some(chain), Some(key)) => {
            tls::check_key_matches(chain, key).map_err(|e| InvalidField::impossible("webhook.tls.clientKey", e))?;
        }
        (None, Some(_)) => {
            return Err(InvalidField::impossible(
                "webhook.tls.clientKey",
                "is given without webhook.tls.clientCertificate",
            ))
        }
        _ => {}
    }
    if let Some(pem) = &body.ca_certificates {
        tls::parse_certificates(pem).map_err(|e| InvalidField::new("webhook.tls.caCertificates", e))?;
        block.insert("caCertificates".into(), json!(normalised_pem(pem)));
    }
    let key = chain.map(|_| body.client_key.as_deref().map(normalised_pem));
    Ok(((!block.is_empty()).then_some(Value::Object(block)), key))
}

/// A PEM text as stored: without surrounding blank space, ending in one line break.
fn normalised_pem(pem: &str) -> String {
    format!("{}\n", pem.trim())
}

/// Refuses, naming the field, a webhook value that is sent in a request line, a header or the
/// token request and that holds a control character (a line break would end the header early,
/// a NUL cannot be sent at all), and an API key header name that is not a valid header name.
/// Values are checked as they are stored: trimmed, except the secrets.
fn check_webhook_text(webhook: &WebhookBody) -> Result<(), InvalidField> {
    let mut values = vec![("webhook.url", webhook.url.trim())];
    if let Some(api_key) = &webhook.api_key {
        let name = api_key.header_name.trim();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(InvalidField::new(
                "webhook.apiKey.headerName",
                format!("`{}` is not a valid header name", name.escape_default()),
            ));
        }
        if let Some(value) = &api_key.value {
            values.push(("webhook.apiKey.value", value.as_str()));
        }
    }
    if let Some(oauth2) = &webhook.oauth2 {
        values.push(("webhook.oauth2.tokenUrl", oauth2.token_url.trim()));
        values.push(("webhook.oauth2.clientId", oauth2.client_id.trim()));
        if let Some(secret) = &oauth2.client_secret {
            values.push(("webhook.oauth2.clientSecret", secret.as_str()));
        }
        if let Some(scope) = &oauth2.scope {
            values.push(("webhook.oauth2.scope", scope.trim()));
        }
    }
    for (field, value) in values {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(InvalidField::new(
                field,
                format!("must not contain control characters (found U+{:04X})", u32::from(c)),
            ));
        }
    }
    Ok(())
}

/// The SSRF gate on save ([`check_url_on_save`]), its refusal named by `field` and followed by
/// how to allow the address when a setting can.
async fn check_url_and_addresses(url: &str, policy: &NetworkPolicy, field: &'static str) -> Result<(), InvalidField> {
    check_url_on_save(url.trim(), policy)
        .await
        .map(|_| ())
        .map_err(|refusal| {
            let hint = allowed_networks_hint(refusal.reason(), policy);
            InvalidField::new(field, format!("{refusal}{hint}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), InvalidField>) -> String {
        result.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn an_on_premise_refusal_names_the_setting_that_allows_the_address() {
        let on_premise = NetworkPolicy::default();
        for (url, network) in [
            ("http://127.0.0.1:9000/", "127.0.0.0/8"),
            ("http://[::ffff:127.0.0.1]/", "127.0.0.0/8"),
            ("http://[::1]:9000/", "::1/128"),
            ("http://10.1.2.3/hooks", "10.1.2.3/32"),
        ] {
            let text = message(check_url_and_addresses(url, &on_premise, "webhook.url").await);
            assert!(text.starts_with("webhook.url: address not allowed"), "{text}");
            assert!(text.contains("`integration.allowed_networks`"), "{text}");
            assert!(
                text.contains(&format!("BW_INTEGRATION__ALLOWED_NETWORKS='[\"{network}\"]'")),
                "{text}"
            );
        }
        // Not an address problem, or SaaS mode (where no network can be allowed): no such hint.
        let text = message(check_url_and_addresses("ftp://a.example/", &on_premise, "webhook.url").await);
        assert!(!text.contains("allowed_networks"), "{text}");
        let saas = NetworkPolicy {
            https_only: true,
            allowed: Vec::new(),
        };
        let text = message(check_url_and_addresses("https://127.0.0.1/", &saas, "webhook.url").await);
        assert!(!text.contains("allowed_networks"), "{text}");
    }
}
