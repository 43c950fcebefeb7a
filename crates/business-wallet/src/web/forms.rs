//! Reading URL-encoded forms and queries (repeated keys included), and the channel form: its
//! values, the API body it becomes, and the field an error belongs to.

use serde_json::{json, Value};

use crate::channels::ChannelKind;
use crate::domain::channel::limits::ChannelLimits;
use crate::domain::channel::{ApiKeyBody, ChannelBody, ChannelView, OAuth2Body, TlsBody, WebhookBody};
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
    /// `BEST_EFFORT` or `PER_WALLET` (blank: the default, BEST_EFFORT).
    pub ordering: String,
    /// Rate limit, deliveries a second (blank: none).
    pub limit_rate: String,
    /// Burst of the rate limit (blank: the default).
    pub limit_burst: String,
    /// In-flight limit (blank: none).
    pub limit_in_flight: String,
    /// Webhook URL.
    pub url: String,
    /// Webhook timeout in milliseconds.
    pub timeout_ms: String,
    /// The Standard Webhooks headers checkbox.
    pub standard_webhooks: bool,
    /// The validation handshake checkbox.
    pub validation_handshake: bool,
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
    /// Client certificate, PEM.
    pub tls_client_certificate: String,
    /// Its private key, PEM (never pre-filled).
    pub tls_client_key: String,
    /// CA bundle, PEM.
    pub tls_ca_certificates: String,
    /// Kafka topic.
    pub kafka_topic: String,
    /// Kafka binary content mode checkbox (`kafka.contentMode: BINARY`).
    pub kafka_binary: bool,
    /// JMS destination.
    pub jms_destination: String,
    /// JMS checkbox: every attribute as a property (`jms.cloudEventsProperties`).
    pub jms_cloud_events_properties: bool,
    /// Pull lease in seconds (empty: the default).
    pub pull_lease_seconds: String,
    /// A custom adapter's settings, as JSON text (the body's `config`).
    pub config: String,
    /// Every error of the last save: the field it is about (API naming, e.g. `webhook.url`;
    /// empty when none) and its message.
    pub errors: Vec<(String, String)>,
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
            ordering: get("ordering"),
            limit_rate: get("limit_rate"),
            limit_burst: get("limit_burst"),
            limit_in_flight: get("limit_in_flight"),
            url: get("url"),
            timeout_ms: get("timeout_ms"),
            standard_webhooks: field(pairs, "standard_webhooks").is_some(),
            validation_handshake: field(pairs, "validation_handshake").is_some(),
            api_key_header: get("api_key_header"),
            api_key_value: get("api_key_value"),
            oauth2_token_url: get("oauth2_token_url"),
            oauth2_client_id: get("oauth2_client_id"),
            oauth2_client_secret: get("oauth2_client_secret"),
            oauth2_scope: get("oauth2_scope"),
            tls_client_certificate: get("tls_client_certificate"),
            tls_client_key: get("tls_client_key"),
            tls_ca_certificates: get("tls_ca_certificates"),
            kafka_topic: get("kafka_topic"),
            kafka_binary: field(pairs, "kafka_binary").is_some(),
            jms_destination: get("jms_destination"),
            jms_cloud_events_properties: field(pairs, "jms_cloud_events_properties").is_some(),
            pull_lease_seconds: get("pull_lease_seconds"),
            config: get("config"),
            errors: Vec::new(),
        }
    }

    /// The form of a saved channel (secrets left empty: empty keeps the stored value).
    pub fn from_view(view: &ChannelView) -> ChannelForm {
        let webhook = view.webhook.clone().unwrap_or(Value::Null);
        let kafka = view.kafka.clone().unwrap_or(Value::Null);
        let jms = view.jms.clone().unwrap_or(Value::Null);
        let pull = view.pull.clone().unwrap_or(Value::Null);
        ChannelForm {
            name: view.name.clone(),
            description: view.description.clone().unwrap_or_default(),
            channel_type: view.channel_type.clone(),
            enabled: view.enabled,
            events: view.event_type_filters.clone(),
            ordering: view.ordering.clone(),
            limit_rate: view
                .limits
                .and_then(|l| l.events_per_second)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            limit_burst: view
                .limits
                .and_then(|l| l.burst)
                .map(|b| b.to_string())
                .unwrap_or_default(),
            limit_in_flight: view
                .limits
                .and_then(|l| l.max_in_flight)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            url: text(&webhook, "/url"),
            timeout_ms: text(&webhook, "/timeoutMs"),
            standard_webhooks: webhook["standardWebhooks"] == Value::Bool(true),
            validation_handshake: webhook["validationHandshake"] == Value::Bool(true),
            api_key_header: text(&webhook, "/apiKey/headerName"),
            oauth2_token_url: text(&webhook, "/oauth2/tokenUrl"),
            oauth2_client_id: text(&webhook, "/oauth2/clientId"),
            oauth2_scope: text(&webhook, "/oauth2/scope"),
            tls_client_certificate: text(&webhook, "/tls/clientCertificate"),
            tls_ca_certificates: text(&webhook, "/tls/caCertificates"),
            kafka_topic: text(&kafka, "/topic"),
            kafka_binary: kafka.pointer("/contentMode") == Some(&json!("BINARY")),
            jms_destination: text(&jms, "/destination"),
            jms_cloud_events_properties: jms.pointer("/cloudEventsProperties") == Some(&json!(true)),
            pull_lease_seconds: text(&pull, "/leaseSeconds"),
            config: view.config.as_ref().map(pretty_json).unwrap_or_default(),
            ..ChannelForm::default()
        }
    }

    /// The create/replace body this form stands for.
    ///
    /// # Errors
    /// 400 for a timeout that is not a number, or a custom type's configuration that is not
    /// JSON (the first of them).
    pub fn to_body(&self) -> Result<ChannelBody, ApiError> {
        let (body, mut errors) = self.body_and_errors();
        if errors.is_empty() {
            Ok(body)
        } else {
            Err(errors.remove(0))
        }
    }

    /// The create/replace body this form stands for, and the errors the form itself finds (a
    /// timeout that is not a number, a custom type's configuration that is not JSON); a value in
    /// error is left out of the body, so that the service can still report on the rest.
    pub fn body_and_errors(&self) -> (ChannelBody, Vec<ApiError>) {
        let mut errors = Vec::new();
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let channel_type = self.channel_type.trim().to_string();
        let kind = ChannelKind::parse(&channel_type);
        let webhook = if kind == ChannelKind::Webhook {
            let timeout_ms = some(&self.timeout_ms).and_then(|t| match t.parse::<u64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    errors.push(ApiError::invalid_field(
                        "webhook.timeoutMs",
                        "must be a whole number of milliseconds",
                    ));
                    None
                }
            });
            Some(WebhookBody {
                url: self.url.trim().to_string(),
                timeout_ms,
                standard_webhooks: self.standard_webhooks.then_some(true),
                validation_handshake: self.validation_handshake.then_some(true),
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
                tls: self.tls_block(),
            })
        } else {
            None
        };
        let config = match kind {
            ChannelKind::Custom(_) => self.custom_config().unwrap_or_else(|err| {
                errors.push(err);
                None
            }),
            _ => None,
        };
        let pull = (kind == ChannelKind::Pull).then(|| match some(&self.pull_lease_seconds) {
            None => json!({}),
            Some(raw) => match raw.parse::<u64>() {
                Ok(seconds) => json!({ "leaseSeconds": seconds }),
                Err(_) => {
                    errors.push(ApiError::invalid_field(
                        "pull.leaseSeconds",
                        "must be a whole number of seconds",
                    ));
                    json!({})
                }
            },
        });
        let limits = self.limits(&mut errors);
        let body = ChannelBody {
            name: self.name.clone(),
            description: some(&self.description),
            channel_type: channel_type.clone(),
            enabled: self.enabled,
            event_type_filters: self.events.clone(),
            ordering: some(&self.ordering),
            limits,
            webhook,
            kafka: (kind == ChannelKind::Kafka).then(|| self.kafka_block()),
            jms: (kind == ChannelKind::Jms).then(|| self.jms_block()),
            config,
            pull,
        };
        (body, errors)
    }

    /// The limits as typed: each blank field unset, none at all when every one is blank.
    fn limits(&self, errors: &mut Vec<ApiError>) -> Option<ChannelLimits> {
        fn number<T: std::str::FromStr>(raw: &str, field: &str, what: &str, errors: &mut Vec<ApiError>) -> Option<T> {
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            raw.parse()
                .map_err(|_| errors.push(ApiError::invalid_field(field, what)))
                .ok()
        }
        let limits = ChannelLimits {
            events_per_second: number(&self.limit_rate, "limits.eventsPerSecond", "must be a number", errors),
            burst: number(&self.limit_burst, "limits.burst", "must be a whole number", errors),
            max_in_flight: number(
                &self.limit_in_flight,
                "limits.maxInFlight",
                "must be a whole number",
                errors,
            ),
        };
        (limits != ChannelLimits::default()).then_some(limits)
    }

    /// The TLS block: present when any of its fields is filled (an empty key keeps the stored
    /// one).
    fn tls_block(&self) -> Option<TlsBody> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let tls = TlsBody {
            client_certificate: some(&self.tls_client_certificate),
            client_key: some(&self.tls_client_key),
            ca_certificates: some(&self.tls_ca_certificates),
        };
        let empty = tls.client_certificate.is_none() && tls.client_key.is_none() && tls.ca_certificates.is_none();
        (!empty).then_some(tls)
    }

    /// The Kafka block: the topic, and the content mode only when binary is checked (a channel
    /// saved without it keeps the block it always had).
    fn kafka_block(&self) -> Value {
        let mut block = json!({ "topic": self.kafka_topic.trim() });
        if self.kafka_binary {
            block["contentMode"] = json!("BINARY");
        }
        block
    }

    /// The JMS block: the destination, and the properties option only when checked.
    fn jms_block(&self) -> Value {
        let mut block = json!({ "destination": self.jms_destination.trim() });
        if self.jms_cloud_events_properties {
            block["cloudEventsProperties"] = json!(true);
        }
        block
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

    /// The messages of the errors about `field` (API naming) or a part of it, for display next
    /// to it.
    pub fn error_for(&self, field: &str) -> Option<String> {
        let part = format!("{field}.");
        self.messages_where(|f| f == field || f.starts_with(&part))
    }

    /// The messages of the errors about `field` itself (not its parts).
    pub fn error_at(&self, field: &str) -> Option<String> {
        self.messages_where(|f| f == field)
    }

    fn messages_where(&self, about: impl Fn(&str) -> bool) -> Option<String> {
        let messages: Vec<&str> = self
            .errors
            .iter()
            .filter(|(f, _)| about(f))
            .map(|(_, m)| m.as_str())
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }

    /// Records the errors of a save, each attributed to the field it names (an error that lists
    /// several, as the service's does, gives each of them).
    pub fn set_errors(&mut self, errs: &[ApiError]) {
        for err in errs {
            let body = err.body();
            let listed: Vec<(String, String)> = body
                .details
                .as_ref()
                .and_then(|d| d.get("errors"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                            (text("field"), text("message"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if listed.is_empty() {
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
                self.errors.push((field, body.message));
            } else {
                self.errors.extend(listed);
            }
        }
    }

    /// Every error's message, for the summary at the top of the form.
    pub fn error_messages(&self) -> Vec<&str> {
        self.errors.iter().map(|(_, m)| m.as_str()).collect()
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

/// A date and time typed in UTC, `YYYY-MM-DD HH:MM` with optional seconds (a `T` instead of the
/// blank and a trailing `Z` are taken too), or a date alone (its midnight), as RFC 3339;
/// `None` when empty.
///
/// # Errors
/// 400 naming the field for a value that is not a date and time in that form.
pub fn utc_to_rfc3339(field_name: &str, value: &str) -> Result<Option<String>, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bare = value
        .strip_suffix(['Z', 'z'])
        .unwrap_or(value)
        .trim_end()
        .replacen('T', " ", 1);
    let parsed = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(&bare, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(&bare, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    match parsed {
        Some(t) => Ok(Some(t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string())),
        None => Err(ApiError::invalid_field(
            field_name,
            format!("`{value}` is not a date and time in UTC such as 2026-05-01 09:42"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utc_date_and_time_becomes_rfc3339() {
        for typed in [
            "2026-05-01 09:42",
            "2026-05-01T09:42",
            "2026-05-01 09:42:00Z",
            " 2026-05-01T09:42:00 ",
        ] {
            assert_eq!(
                utc_to_rfc3339("from", typed).unwrap().as_deref(),
                Some("2026-05-01T09:42:00Z"),
                "{typed}"
            );
        }
        assert_eq!(
            utc_to_rfc3339("from", "2026-05-01").unwrap().as_deref(),
            Some("2026-05-01T00:00:00Z")
        );
        assert_eq!(utc_to_rfc3339("from", "").unwrap(), None);
        for bad in [
            "yesterday",
            "01/05/2026 09:42",
            "2026-13-01 09:42",
            "2026-05-01 09:42+02:00",
        ] {
            assert!(utc_to_rfc3339("from", bad).is_err(), "{bad}");
        }
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
    fn the_broker_options_round_trip_and_are_left_out_when_unchecked() {
        let pairs = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            [
                ("name", "n"),
                ("type", "KAFKA"),
                ("kafka_topic", " t "),
                ("jms_destination", "q"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let plain = ChannelForm::from_pairs(&pairs(&[])).to_body().unwrap();
        assert_eq!(plain.kafka, Some(json!({"topic": "t"})));
        let binary = ChannelForm::from_pairs(&pairs(&[("kafka_binary", "on")]))
            .to_body()
            .unwrap();
        assert_eq!(binary.kafka, Some(json!({"topic": "t", "contentMode": "BINARY"})));

        let mut jms = pairs(&[("jms_cloud_events_properties", "on")]);
        jms[1].1 = "JMS".into();
        let body = ChannelForm::from_pairs(&jms).to_body().unwrap();
        assert_eq!(
            body.jms,
            Some(json!({"destination": "q", "cloudEventsProperties": true}))
        );
        assert_eq!(body.kafka, None);
    }

    #[test]
    fn errors_attach_to_their_field() {
        let mut form = ChannelForm::new_webhook();
        form.set_errors(&[ApiError::invalid_field("webhook.url", "is not allowed")]);
        assert!(form.error_for("webhook.url").is_some());
        assert!(form.error_for("webhook").is_some());
        assert!(form.error_for("name").is_none());
    }

    #[test]
    fn a_form_reports_its_own_errors_together_and_keeps_the_rest_of_the_body() {
        let form = ChannelForm {
            name: "Orders".into(),
            timeout_ms: "soon".into(),
            url: "https://example.com/hook".into(),
            ..ChannelForm::new_webhook()
        };
        let (body, errors) = form.body_and_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(body.name, "Orders");
        assert_eq!(
            body.webhook.as_ref().map(|w| w.url.as_str()),
            Some("https://example.com/hook")
        );
        assert_eq!(body.webhook.and_then(|w| w.timeout_ms), None);
        assert!(form.to_body().is_err());

        let mut shown = ChannelForm::new_webhook();
        let listed = ApiError::BadRequest {
            message: "name: must not be empty; eventTypeFilters: must name at least one event type".into(),
            details: Some(json!({
                "field": "name",
                "errors": [
                    {"field": "name", "message": "name: must not be empty"},
                    {"field": "eventTypeFilters", "message": "eventTypeFilters: must name at least one event type"},
                ],
            })),
        };
        shown.set_errors(&[errors.into_iter().next().unwrap(), listed]);
        assert_eq!(shown.error_messages().len(), 3);
        assert!(shown.error_for("name").is_some());
        assert!(shown.error_for("eventTypeFilters").is_some());
        assert!(shown.error_for("webhook.timeoutMs").is_some());
    }
}
