//! Reading URL-encoded forms and queries (repeated keys included), and the channel form: its
//! values, the API body it becomes, and the field an error belongs to.

use serde_json::{json, Value};

use crate::channels::ChannelKind;
use crate::domain::channel::{ApiKeyBody, ChannelBody, ChannelView, OAuth2Body, WebhookBody};
use crate::error::ApiError;

/// Decoded `key=value` pairs of a query string or form body, repeated keys included, in their
/// order.
pub type Pairs = Vec<(String, String)>;

/// Decoded `key=value` pairs of a query string or form body.
pub fn pairs(raw: Option<&str>) -> Pairs {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `key`.
pub fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Every value of `key`.
pub fn fields<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The values of the channel form, as typed (re-shown after an error).
#[derive(Debug, Clone, Default)]
pub struct ChannelForm {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Channel type.
    pub channel_type: String,
    /// Enabled checkbox.
    pub enabled: bool,
    /// Checked event types.
    pub events: Vec<String>,
    /// Webhook URL.
    pub url: String,
    /// Webhook timeout in milliseconds.
    pub timeout_ms: String,
    /// API key header name.
    pub api_key_header: String,
    /// API key value (never pre-filled).
    pub api_key_value: String,
    /// OAuth2 token URL.
    pub oauth2_token_url: String,
    /// OAuth2 client id.
    pub oauth2_client_id: String,
    /// OAuth2 client secret (never pre-filled).
    pub oauth2_client_secret: String,
    /// OAuth2 scope.
    pub oauth2_scope: String,
    /// Kafka topic.
    pub kafka_topic: String,
    /// JMS destination.
    pub jms_destination: String,
    /// A custom adapter's settings, as JSON text (the body's `config`).
    pub config: String,
    /// The field the last error is about (API naming, e.g. `webhook.url`), and its message.
    pub error: Option<(String, String)>,
}

fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl ChannelForm {
    /// An empty form for a new webhook channel.
    pub fn new_webhook() -> ChannelForm {
        ChannelForm {
            channel_type: ChannelKind::Webhook.to_string(),
            enabled: true,
            ..ChannelForm::default()
        }
    }

    /// The form as posted.
    pub fn from_pairs(pairs: &[(String, String)]) -> ChannelForm {
        let get = |k: &str| field(pairs, k).unwrap_or_default().to_string();
        ChannelForm {
            name: get("name"),
            description: get("description"),
            channel_type: field(pairs, "type").map_or_else(|| ChannelKind::Webhook.to_string(), str::to_string),
            enabled: field(pairs, "enabled").is_some(),
            events: fields(pairs, "event").into_iter().map(str::to_string).collect(),
            url: get("url"),
            timeout_ms: get("timeout_ms"),
            api_key_header: get("api_key_header"),
            api_key_value: get("api_key_value"),
            oauth2_token_url: get("oauth2_token_url"),
            oauth2_client_id: get("oauth2_client_id"),
            oauth2_client_secret: get("oauth2_client_secret"),
            oauth2_scope: get("oauth2_scope"),
            kafka_topic: get("kafka_topic"),
            jms_destination: get("jms_destination"),
            config: get("config"),
            error: None,
        }
    }

    /// The form of a saved channel (secrets left empty: empty keeps the stored value).
    pub fn from_view(view: &ChannelView) -> ChannelForm {
        let webhook = view.webhook.clone().unwrap_or(Value::Null);
        let kafka = view.kafka.clone().unwrap_or(Value::Null);
        let jms = view.jms.clone().unwrap_or(Value::Null);
        ChannelForm {
            name: view.name.clone(),
            description: view.description.clone().unwrap_or_default(),
            channel_type: view.channel_type.clone(),
            enabled: view.enabled,
            events: view.event_type_filters.clone(),
            url: text(&webhook, "/url"),
            timeout_ms: text(&webhook, "/timeoutMs"),
            api_key_header: text(&webhook, "/apiKey/headerName"),
            oauth2_token_url: text(&webhook, "/oauth2/tokenUrl"),
            oauth2_client_id: text(&webhook, "/oauth2/clientId"),
            oauth2_scope: text(&webhook, "/oauth2/scope"),
            kafka_topic: text(&kafka, "/topic"),
            jms_destination: text(&jms, "/destination"),
            config: view.config.as_ref().map(pretty_json).unwrap_or_default(),
            ..ChannelForm::default()
        }
    }

    /// The create/replace body this form stands for.
    ///
    /// # Errors
    /// 400 for a timeout that is not a number, or a custom type's configuration that is not
    /// JSON.
    pub fn to_body(&self) -> Result<ChannelBody, ApiError> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let channel_type = self.channel_type.trim().to_string();
        let kind = ChannelKind::parse(&channel_type);
        let webhook = if kind == ChannelKind::Webhook {
            let timeout_ms = match some(&self.timeout_ms) {
                None => None,
                Some(t) => Some(t.parse::<u64>().map_err(|_| {
                    ApiError::invalid_field("webhook.timeoutMs", "must be a whole number of milliseconds")
                })?),
            };
            Some(WebhookBody {
                url: self.url.trim().to_string(),
                timeout_ms,
                api_key: some(&self.api_key_header).map(|header_name| ApiKeyBody {
                    header_name,
                    value: some(&self.api_key_value),
                }),
                oauth2: some(&self.oauth2_token_url).map(|token_url| OAuth2Body {
                    token_url,
                    client_id: self.oauth2_client_id.trim().to_string(),
                    client_secret: some(&self.oauth2_client_secret),
                    scope: some(&self.oauth2_scope),
                }),
            })
        } else {
            None
        };
        Ok(ChannelBody {
            name: self.name.clone(),
            description: some(&self.description),
            channel_type: channel_type.clone(),
            enabled: self.enabled,
            event_type_filters: self.events.clone(),
            webhook,
            kafka: (kind == ChannelKind::Kafka).then(|| json!({ "topic": self.kafka_topic.trim() })),
            jms: (kind == ChannelKind::Jms).then(|| json!({ "destination": self.jms_destination.trim() })),
            config: match kind {
                ChannelKind::Custom(_) => self.custom_config()?,
                _ => None,
            },
        })
    }

    /// The custom adapter's block as typed: none when left empty (the service then names the
    /// missing block).
    fn custom_config(&self) -> Result<Option<Value>, ApiError> {
        let raw = self.config.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(raw)
            .map(Some)
            .map_err(|err| ApiError::invalid_field("config", format!("is not valid JSON: {err}")))
    }

    /// Whether an event type is checked.
    pub fn has_event(&self, event_type: &&str) -> bool {
        self.events.iter().any(|e| e == *event_type)
    }

    /// The message of the error about `field` (API naming), for display next to it.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        match &self.error {
            Some((f, message)) if f == field || f.starts_with(&format!("{field}.")) => Some(message.as_str()),
            _ => None,
        }
    }

    /// Records an error from the domain service, attributed to the field it names.
    pub fn set_error(&mut self, err: &ApiError) {
        let body = err.body();
        let field = body
            .details
            .as_ref()
            .and_then(|d| d.get("field"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| match err {
                ApiError::PreconditionFailed(_) => "name".to_string(),
                _ => String::new(),
            });
        self.error = Some((field, body.message));
    }

    /// The message of the error, for the summary at the top of the form.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(|(_, m)| m.as_str())
    }
}

/// Headers recorded as `[[name, value], ...]` or `{name: value}`, as pairs.
pub fn header_pairs(value: &Value) -> Vec<(String, String)> {
    let show = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Array(pair) if pair.len() == 2 => Some((show(&pair[0]), show(&pair[1]))),
                _ => None,
            })
            .collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), show(v))).collect(),
        _ => Vec::new(),
    }
}

/// A `datetime-local` value (UTC) as RFC 3339, or `None` when empty.
///
/// # Errors
/// 400 naming the field for a value that is not a date and time.
pub fn local_to_rfc3339(field_name: &str, value: &str) -> Result<Option<String>, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let full = if value.len() == 16 {
        format!("{value}:00")
    } else {
        value.to_string()
    };
    let rfc = format!("{full}Z");
    chrono::DateTime::parse_from_rfc3339(&rfc)
        .map(|_| Some(rfc))
        .map_err(|_| ApiError::invalid_field(field_name, format!("`{value}` is not a date and time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_becomes_utc_rfc3339() {
        assert_eq!(
            local_to_rfc3339("from", "2026-05-01T09:42").unwrap().as_deref(),
            Some("2026-05-01T09:42:00Z")
        );
        assert_eq!(local_to_rfc3339("from", "").unwrap(), None);
        assert!(local_to_rfc3339("from", "yesterday").is_err());
    }

    #[test]
    fn header_pairs_read_both_shapes() {
        assert_eq!(
            header_pairs(&json!([["a", "1"]])),
            vec![("a".to_string(), "1".to_string())]
        );
        assert_eq!(
            header_pairs(&json!({"b": "2"})),
            vec![("b".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn errors_attach_to_their_field() {
        let mut form = ChannelForm::new_webhook();
        form.set_error(&ApiError::invalid_field("webhook.url", "is not allowed"));
        assert!(form.error_for("webhook.url").is_some());
        assert!(form.error_for("webhook").is_some());
        assert!(form.error_for("name").is_none());
    }
}
