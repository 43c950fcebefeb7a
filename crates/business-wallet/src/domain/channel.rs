//! Integration channels as operators manage them: validation of the create/replace body,
//! secrets (generated, kept, rotated, never returned), the audit entries, and test sends.
//!
//! A wallet's channels receive that wallet's events; platform channels (no wallet) receive the
//! events of every wallet. Both are handled here with a [`Scope`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::history::HistoryAction;
use super::validate::{optional_object, optional_text, required_text};
use crate::auth::{Authority, Principal};
use crate::channels::webhook::ssrf::{check_url, NetworkPolicy, UrlRejected};
use crate::channels::{self, ChannelConfig, ChannelKind, ChannelSecrets, TestSendReport};
use crate::config::DeploymentMode;
use crate::domain::Scope;
use crate::error::ApiError;
use crate::events;
use crate::state::AppState;
use crate::store::channels::{self as store_channels, ChannelRow};
use crate::store::{self, rfc3339_ms, Tx};

/// Body of create and of full replace (`PUT`). Its OpenAPI schemas ([`body_schema`]) list one
/// variant per channel type on offer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelBody {
    /// Unique among the wallet's channels (1 to 100 characters).
    pub name: String,
    /// Free text, at most 2048 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// `WEBHOOK`, `KAFKA`, `JMS`, or a registered custom adapter's type.
    #[serde(rename = "type")]
    pub channel_type: String,
    /// Whether the channel receives events (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Exact event types the channel subscribes to (at least one, from the catalog).
    pub event_type_filters: Vec<String>,
    /// The webhook block (type WEBHOOK).
    #[serde(default, deserialize_with = "optional_object")]
    pub webhook: Option<WebhookBody>,
    /// The Kafka block (type KAFKA): `{"topic": "..."}`.
    #[serde(default, deserialize_with = "optional_object")]
    pub kafka: Option<Value>,
    /// The JMS block (type JMS): `{"destination": "..."}`.
    #[serde(default, deserialize_with = "optional_object")]
    pub jms: Option<Value>,
    /// A custom adapter's block, validated by the adapter.
    #[serde(default, deserialize_with = "optional_object")]
    pub config: Option<Value>,
}

fn default_true() -> bool {
    true
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

/// Which body a schema describes: create (and test of a draft), where a secret block comes with
/// its secret, or full replace, where an omitted secret keeps the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyUse {
    /// `POST` of a new channel or a draft to test.
    Create,
    /// `PUT`.
    Replace,
}

/// The schema of [`ChannelBody`] for the channel types `kinds` (as `ChannelRegistry::kinds`
/// names them) and a webhook timeout of at most `max_timeout_ms`: one variant per type, each with
/// its own block required and the other blocks left out or null.
pub(crate) fn body_schema<'k>(
    kinds: impl IntoIterator<Item = &'k str>,
    usage: BodyUse,
    max_timeout_ms: u64,
) -> utoipa::openapi::schema::Schema {
    use crate::api::doc;
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type};

    const BLOCKS: [&str; 4] = ["webhook", "kafka", "jms", "config"];
    let secret = |what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[^\x00-\x1F\x7F-\x9F]+$"))
            .min_length(Some(1))
            .max_length(Some(4096))
            .description(Some(match usage {
                BodyUse::Create => format!("{what} (a secret: never returned), 1 to 4096 characters."),
                BodyUse::Replace => format!(
                    "{what} (a secret: never returned), 1 to 4096 characters. Left out or null: the \
                     stored one is kept (409 when there is none)."
                ),
            }))
    };
    let secret_field = |object: ObjectBuilder, name: &str, what: &str| match usage {
        BodyUse::Create => object.property(name, secret(what)).required(name),
        BodyUse::Replace => object.property(
            name,
            secret(what).schema_type(SchemaType::from_iter([Type::String, Type::Null])),
        ),
    };
    let nullable = |object: ObjectBuilder| object.schema_type(SchemaType::from_iter([Type::Object, Type::Null]));
    let header_name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            r"^[{ws}]*[!#$%&'*+.^_`|~0-9A-Za-z-]+[{ws}]*$",
            ws = doc::WS
        )))
        .description(Some(
            "Header name, e.g. `X-Api-Key` (trimmed); not one the channel sets itself \
             (Content-Type, Content-Length, Host, Authorization, X-Credenco-Signature, ce-*).",
        ));
    let api_key = secret_field(
        doc::closed_object()
            .property("headerName", header_name)
            .required("headerName"),
        "value",
        "The key",
    );
    let oauth2 = secret_field(
        doc::closed_object()
            .property(
                "tokenUrl",
                doc::web_url().description(Some("Token endpoint (passes the SSRF gate like the URL).")),
            )
            .required("tokenUrl")
            .property(
                "clientId",
                doc::required_unbounded_text().description(Some("Client id (trimmed).")),
            )
            .required("clientId")
            .property(
                "scope",
                doc::optional_unbounded_text().description(Some("Scope (trimmed; blank: none).")),
            ),
        "clientSecret",
        "Client secret",
    );
    let webhook = doc::closed_object()
        .property(
            "url",
            doc::web_url().description(Some(
                "The receiver's URL (`https` in SaaS mode). Addresses the SSRF gate refuses \
                 (loopback, private, link-local, ...) are a 400.",
            )),
        )
        .required("url")
        .property(
            "timeoutMs",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .minimum(Some(1))
                .maximum(Some(max_timeout_ms))
                .description(Some(
                    "Request timeout in milliseconds (default integration.webhook.default_timeout_ms).",
                )),
        )
        .property(
            "apiKey",
            nullable(api_key).description(Some("A static API key sent in a header.")),
        )
        .property(
            "oauth2",
            nullable(oauth2).description(Some("OAuth2 client credentials.")),
        )
        .build();
    let kafka = doc::closed_object()
        .property(
            "topic",
            ObjectBuilder::new().schema_type(Type::String).pattern(Some(
                r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,248}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,247}|\.\.[A-Za-z0-9._-]{1,247})$",
            )),
        )
        .required("topic")
        .build();
    let jms = doc::closed_object()
        .property(
            "destination",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^(?:queue://|topic://)?[!-)+\-.0-=?-~]{1,255}$"))
                .description(Some("`queue://NAME`, `topic://NAME` or a bare queue name.")),
        )
        .required("destination")
        .build();

    let mut variants = OneOfBuilder::new().description(Some(
        "A channel: its name, type, subscriptions, and the block of its type (`webhook`, `kafka`, \
         `jms`, or `config` for a custom adapter); the other blocks are left out or null.",
    ));
    for kind in kinds {
        let field = block_field(kind);
        let block: utoipa::openapi::schema::Object = match field {
            "webhook" => webhook.clone(),
            "kafka" => kafka.clone(),
            "jms" => jms.clone(),
            _ => ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("The adapter's own settings; the adapter validates them (400)."))
                .build(),
        };
        let mut variant = doc::closed_object()
            .title(Some(kind))
            .property(
                "name",
                doc::required_text(100).description(Some("Unique in its scope (412 otherwise), 1 to 100 characters.")),
            )
            .required("name")
            .property(
                "description",
                doc::optional_text(2048).description(Some("Free text, at most 2048 characters.")),
            )
            .property("type", doc::one_of_strings([kind]))
            .required("type")
            .property(
                "enabled",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("Whether the channel receives events (default true).")),
            )
            .property(
                "eventTypeFilters",
                ArrayBuilder::new()
                    .items(doc::one_of_strings(events::CATALOG.iter().map(|e| e.type_name)))
                    .min_items(Some(1))
                    .description(Some(
                        "Exact catalog event types the channel subscribes to (at least one).",
                    )),
            )
            .required("eventTypeFilters");
        for other in BLOCKS {
            variant = if other == field {
                variant.property(other, block.clone()).required(other)
            } else {
                variant.property(other, doc::null())
            };
        }
        variants = variants.item(variant);
    }
    variants.build().into()
}

impl utoipa::PartialSchema for ChannelBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        body_schema(
            ChannelKind::BUILT_IN.iter().map(ChannelKind::as_str),
            BodyUse::Create,
            crate::config::WebhookSettings::default().max_timeout_ms,
        )
        .into()
    }
}

impl ToSchema for ChannelBody {}

/// The body of a full replace (`PUT`): a [`ChannelBody`] whose secrets may be left out to keep
/// the stored ones. It exists for the OpenAPI description only.
pub enum ChannelReplaceBody {}

impl utoipa::PartialSchema for ChannelReplaceBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        body_schema(
            ChannelKind::BUILT_IN.iter().map(ChannelKind::as_str),
            BodyUse::Replace,
            crate::config::WebhookSettings::default().max_timeout_ms,
        )
        .into()
    }
}

impl ToSchema for ChannelReplaceBody {}

/// A channel as the API returns it: never a secret, except `hmacSecret` in the answer to
/// create and to rotate-secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// Public key.
    pub channel_external_key: String,
    /// Owning wallet; null for platform channels.
    pub wallet_external_key: Option<String>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub channel_type: String,
    /// Enabled.
    pub enabled: bool,
    /// Subscribed event types.
    pub event_type_filters: Vec<String>,
    /// Webhook block without secrets (`apiKey.headerName`, `oauth2.tokenUrl/clientId/scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub webhook: Option<Value>,
    /// Kafka block.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub kafka: Option<Value>,
    /// JMS block.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jms: Option<Value>,
    /// Custom adapter block.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Until when the previous HMAC secret still signs, after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Creator.
    pub created_by: String,
    /// Last editor.
    pub updated_by: String,
    /// The signing secret: present only in the answer to create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
}

/// The block field a type's settings live in.
fn block_field(channel_type: &str) -> &'static str {
    ChannelKind::parse(channel_type).block_field()
}

fn view(row: &ChannelRow, event_types: Vec<String>, secrets: Option<&ChannelSecrets>) -> ChannelView {
    let config: Value = serde_json::from_str(&row.config).unwrap_or(Value::Null);
    let field = block_field(&row.channel_type);
    let now = store::now_ms();
    ChannelView {
        channel_external_key: row.channel_external_key.clone(),
        wallet_external_key: row.wallet_external_key.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        channel_type: row.channel_type.clone(),
        enabled: row.enabled,
        event_type_filters: event_types,
        webhook: (field == "webhook").then(|| config.clone()),
        kafka: (field == "kafka").then(|| config.clone()),
        jms: (field == "jms").then(|| config.clone()),
        config: (field == "config").then(|| config.clone()),
        previous_secret_valid_until: secrets
            .and_then(|s| s.previous_hmac_secret_expires_at)
            .filter(|t| *t > now)
            .map(rfc3339_ms),
        created_at: rfc3339_ms(row.created_at),
        updated_at: rfc3339_ms(row.updated_at),
        created_by: row.created_by.clone(),
        updated_by: row.updated_by.clone(),
        hmac_secret: None,
    }
}

/// A validated body: the columns to store and the secrets it carried.
struct Validated {
    name: String,
    description: Option<String>,
    channel_type: String,
    enabled: bool,
    event_types: Vec<String>,
    config: Value,
    api_key_value: Option<Option<String>>,
    oauth2_client_secret: Option<Option<String>>,
}

async fn validate_body(state: &AppState, body: ChannelBody) -> Result<Validated, ApiError> {
    let name = required_text("name", &body.name, 100)?;
    let description = optional_text("description", body.description.as_deref(), 2048)?;
    let channel_type = body.channel_type.trim().to_string();
    let settings = &state.settings;
    let channel = state.channels.get(&channel_type).ok_or_else(|| {
        let why = match (settings.mode, ChannelKind::parse(&channel_type).is_built_in()) {
            (DeploymentMode::Saas, _) => format!("only {} channels exist in SaaS mode", ChannelKind::Webhook),
            (_, true) => {
                format!("{channel_type} channels are switched off in this deployment (integration.channels)")
            }
            _ => format!("unknown channel type `{channel_type}`"),
        };
        ApiError::invalid_field("type", why)
    })?;

    if body.event_type_filters.is_empty() {
        return Err(ApiError::invalid_field(
            "eventTypeFilters",
            "must name at least one event type",
        ));
    }
    let mut event_types = Vec::new();
    for event_type in &body.event_type_filters {
        if events::lookup(event_type).is_none() {
            return Err(ApiError::invalid_field(
                "eventTypeFilters",
                format!("unknown event type `{event_type}`"),
            ));
        }
        if !event_types.contains(event_type) {
            event_types.push(event_type.clone());
        }
    }

    let field = block_field(&channel_type);
    let present = [
        ("webhook", body.webhook.is_some()),
        ("kafka", body.kafka.is_some()),
        ("jms", body.jms.is_some()),
        ("config", body.config.is_some()),
    ];
    if let Some((other, _)) = present.iter().find(|(f, set)| *set && *f != field) {
        return Err(ApiError::unprocessable(
            other,
            format!("does not apply to a {channel_type} channel"),
        ));
    }
    let (config, api_key_value, oauth2_client_secret) = match field {
        "webhook" => {
            let webhook = body
                .webhook
                .ok_or_else(|| ApiError::invalid_field("webhook", "is required for a WEBHOOK channel"))?;
            check_webhook_text(&webhook)?;
            let policy = NetworkPolicy::from_settings(settings);
            check_url_and_addresses(&webhook.url, &policy, "webhook.url").await?;
            let mut config = json!({ "url": webhook.url.trim() });
            if let Some(ms) = webhook.timeout_ms {
                config["timeoutMs"] = json!(ms);
            }
            if let Some(api_key) = &webhook.api_key {
                config["apiKey"] = json!({ "headerName": api_key.header_name.trim() });
                if api_key.value.as_deref().is_some_and(|v| v.is_empty() || v.len() > 4096) {
                    return Err(ApiError::invalid_field(
                        "webhook.apiKey.value",
                        "must be 1 to 4096 characters",
                    ));
                }
            }
            if let Some(oauth2) = &webhook.oauth2 {
                check_url_and_addresses(&oauth2.token_url, &policy, "webhook.oauth2.tokenUrl").await?;
                config["oauth2"] = json!({ "tokenUrl": oauth2.token_url.trim(), "clientId": oauth2.client_id.trim() });
                if let Some(scope) = oauth2.scope.as_deref().filter(|s| !s.trim().is_empty()) {
                    config["oauth2"]["scope"] = json!(scope.trim());
                }
                if oauth2
                    .client_secret
                    .as_deref()
                    .is_some_and(|v| v.is_empty() || v.len() > 4096)
                {
                    return Err(ApiError::invalid_field(
                        "webhook.oauth2.clientSecret",
                        "must be 1 to 4096 characters",
                    ));
                }
            }
            (
                config,
                webhook.api_key.map(|k| k.value),
                webhook.oauth2.map(|o| o.client_secret),
            )
        }
        "kafka" => (body.kafka.unwrap_or(Value::Null), None, None),
        "jms" => (body.jms.unwrap_or(Value::Null), None, None),
        _ => (body.config.unwrap_or(Value::Null), None, None),
    };
    if config.is_null() {
        return Err(ApiError::invalid_field(
            field,
            format!("is required for a {channel_type} channel"),
        ));
    }
    channel.validate(&config).map_err(|e| ApiError::BadRequest {
        message: e.0,
        details: Some(json!({ "field": field })),
    })?;
    Ok(Validated {
        name,
        description,
        channel_type,
        enabled: body.enabled,
        event_types,
        config,
        api_key_value,
        oauth2_client_secret,
    })
}

/// Refuses, naming the field, a webhook value that is sent in a request line, a header or the
/// token request and that holds a control character (a line break would end the header early,
/// a NUL cannot be sent at all), and an API key header name that is not a valid header name.
/// Values are checked as they are stored: trimmed, except the secrets.
fn check_webhook_text(webhook: &WebhookBody) -> Result<(), ApiError> {
    let mut values = vec![("webhook.url", webhook.url.trim())];
    if let Some(api_key) = &webhook.api_key {
        let name = api_key.header_name.trim();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::invalid_field(
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
            return Err(ApiError::invalid_field(
                field,
                format!("must not contain control characters (found U+{:04X})", u32::from(c)),
            ));
        }
    }
    Ok(())
}

/// The SSRF gate on save: the URL itself, then every address its host name resolves to now
/// (the dispatcher checks the resolved address again at send time). A name that does not
/// resolve yet is accepted; sending to it will fail until it does.
async fn check_url_and_addresses(url: &str, policy: &NetworkPolicy, field: &str) -> Result<(), ApiError> {
    let parsed = check_url(url.trim(), policy).map_err(|e| {
        let hint = allowed_networks_hint(&e, policy);
        ApiError::invalid_field(field, format!("{e}{hint}"))
    })?;
    if let Some(url::Host::Domain(host)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(443);
        if let Ok(addresses) = tokio::net::lookup_host((host, port)).await {
            for address in addresses {
                policy.check_ip(address.ip()).map_err(|e| {
                    let hint = allowed_networks_hint(&e, policy);
                    ApiError::invalid_field(field, format!("{host} resolves to {}: {e}{hint}", address.ip()))
                })?;
            }
        }
    }
    Ok(())
}

/// For an address the gate refused on premise, how to allow it: the setting, and the network
/// to put in it (all of 127.0.0.0/8 for an IPv4 loopback address, the address alone otherwise).
/// Nothing in SaaS mode, where no network can be allowed.
fn allowed_networks_hint(rejected: &UrlRejected, policy: &NetworkPolicy) -> String {
    let UrlRejected::Address(address, _) = rejected else {
        return String::new();
    };
    if policy.https_only {
        return String::new();
    }
    let network = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) if v4.is_loopback() => "127.0.0.0/8".to_string(),
        Ok(std::net::IpAddr::V4(v4)) => format!("{v4}/32"),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => "127.0.0.0/8".to_string(),
            Some(v4) => format!("{v4}/32"),
            None => format!("{v6}/128"),
        },
        Err(_) => return String::new(),
    };
    format!(
        " (to allow it, e.g. for a receiver on this machine, add its network to the setting \
         `integration.allowed_networks`: BW_INTEGRATION__ALLOWED_NETWORKS='[\"{network}\"]', or \
         allowed_networks = [\"{network}\"] under [integration] in business-wallet.toml)"
    )
}

/// Merges the secrets of a body into stored ones: a block that is gone drops its secret, an
/// omitted value keeps the stored one, and a block new without its secret is an error: a missing
/// field (400) in a new channel, a conflict with the stored channel (409) on replace.
fn merge_secrets(secrets: &mut ChannelSecrets, valid: &Validated, usage: BodyUse) -> Result<(), ApiError> {
    let missing = |field: &str| match usage {
        BodyUse::Create => ApiError::invalid_field(field, "is required"),
        BodyUse::Replace => ApiError::Conflict(format!("{field} is required: the channel has no stored value to keep")),
    };
    match &valid.api_key_value {
        None => secrets.api_key_value = None,
        Some(Some(value)) => secrets.api_key_value = Some(value.clone()),
        Some(None) if secrets.api_key_value.is_some() => {}
        Some(None) => return Err(missing("webhook.apiKey.value")),
    }
    match &valid.oauth2_client_secret {
        None => secrets.oauth2_client_secret = None,
        Some(Some(value)) => secrets.oauth2_client_secret = Some(value.clone()),
        Some(None) if secrets.oauth2_client_secret.is_some() => {}
        Some(None) => return Err(missing("webhook.oauth2.clientSecret")),
    }
    Ok(())
}

fn channel_not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("channel {key} does not exist"))
}

fn duplicate_name(name: &str) -> ApiError {
    ApiError::PreconditionFailed(format!("a channel named `{name}` already exists"))
}

/// Maps the unique violation of a concurrent duplicate name to 412.
fn unique_to_412(name: &str) -> impl FnOnce(sqlx::Error) -> ApiError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => duplicate_name(name),
        _ => ApiError::from(err),
    }
}

fn open_secrets(state: &AppState, row: &ChannelRow) -> Result<ChannelSecrets, ApiError> {
    match &row.secrets {
        Some(sealed) => ChannelSecrets::open(&state.secrets, sealed).map_err(ApiError::internal),
        None => Ok(ChannelSecrets::default()),
    }
}

async fn record(
    tx: &mut Tx,
    scope: &Scope,
    action: HistoryAction,
    actor: &str,
    row: &ChannelRow,
    now: i64,
) -> Result<(), ApiError> {
    let details = json!({ "channelExternalKey": row.channel_external_key, "name": row.name, "type": row.channel_type });
    super::history::record(tx, scope, action, actor, &details, now).await
}

async fn event_types_of(state: &AppState, scope: &Scope) -> Result<Vec<(i64, String)>, ApiError> {
    Ok(store_channels::subscriptions(&state.db, scope).await?)
}

fn types_for(all: &[(i64, String)], id: i64) -> Vec<String> {
    all.iter().filter(|(c, _)| *c == id).map(|(_, t)| t.clone()).collect()
}

/// Creates a channel; the answer carries its new HMAC secret, the only time it is shown.
///
/// # Errors
/// 400 for invalid input or a type that is off; 403/404; 412 for a duplicate name.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    body: ChannelBody,
) -> Result<ChannelView, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let mut secrets = ChannelSecrets::generate();
    merge_secrets(&mut secrets, &valid, BodyUse::Create)?;
    let now = store::now_ms();
    let row = ChannelRow {
        id: 0,
        channel_external_key: Uuid::new_v4().to_string(),
        wallet_external_key: scope.wallet().map(str::to_string),
        name: valid.name.clone(),
        description: valid.description.clone(),
        channel_type: valid.channel_type.clone(),
        enabled: valid.enabled,
        config: valid.config.to_string(),
        secrets: Some(secrets.seal(&state.secrets)),
        created_at: now,
        updated_at: now,
        created_by: principal.sub.clone(),
        updated_by: principal.sub.clone(),
    };
    let mut tx = state.db.begin().await?;
    if store_channels::name_taken(&mut tx, scope, &row.name, None).await? {
        return Err(duplicate_name(&row.name));
    }
    let id = store_channels::insert(&mut tx, &row, &valid.event_types)
        .await
        .map_err(unique_to_412(&row.name))?;
    record(&mut tx, scope, HistoryAction::ChannelCreated, &principal.sub, &row, now).await?;
    tx.commit().await?;
    let row = ChannelRow { id, ..row };
    let mut created = view(&row, valid.event_types, Some(&secrets));
    created.hmac_secret = Some(secrets.hmac_secret.clone());
    Ok(created)
}

/// Lists the channels of the scope.
///
/// # Errors
/// 403/404.
pub async fn list(state: &AppState, principal: &Principal, scope: &Scope) -> Result<Vec<ChannelView>, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelRead).await?;
    let rows = store_channels::list(&state.db, scope).await?;
    let subscriptions = event_types_of(state, scope).await?;
    rows.iter()
        .map(|row| {
            let secrets = open_secrets(state, row)?;
            Ok(view(row, types_for(&subscriptions, row.id), Some(&secrets)))
        })
        .collect()
}

/// Reads one channel (never its secrets).
///
/// # Errors
/// 403/404.
pub async fn get(state: &AppState, principal: &Principal, scope: &Scope, key: &str) -> Result<ChannelView, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelRead).await?;
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let subscriptions = event_types_of(state, scope).await?;
    let secrets = open_secrets(state, &row)?;
    Ok(view(&row, types_for(&subscriptions, row.id), Some(&secrets)))
}

/// Replaces a channel. Secrets omitted from the body keep their value; the HMAC secret never
/// changes here.
///
/// # Errors
/// 400/403/404/412; 422 when the type would change.
pub async fn replace(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &str,
    body: ChannelBody,
) -> Result<ChannelView, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let current = store_channels::find_in(&mut tx, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    if current.channel_type != valid.channel_type {
        return Err(ApiError::unprocessable(
            "type",
            format!(
                "a {} channel cannot become {}; create a new channel",
                current.channel_type, valid.channel_type
            ),
        ));
    }
    if store_channels::name_taken(&mut tx, scope, &valid.name, Some(current.id)).await? {
        return Err(duplicate_name(&valid.name));
    }
    let mut secrets = open_secrets(state, &current)?;
    merge_secrets(&mut secrets, &valid, BodyUse::Replace)?;
    let row = ChannelRow {
        name: valid.name.clone(),
        description: valid.description.clone(),
        enabled: valid.enabled,
        config: valid.config.to_string(),
        secrets: Some(secrets.seal(&state.secrets)),
        updated_at: now,
        updated_by: principal.sub.clone(),
        ..current
    };
    store_channels::update(&mut tx, &row, &valid.event_types)
        .await
        .map_err(unique_to_412(&row.name))?;
    record(&mut tx, scope, HistoryAction::ChannelUpdated, &principal.sub, &row, now).await?;
    tx.commit().await?;
    if row.enabled {
        // Deliveries that waited while the channel was disabled are due again.
        state.outbox.committed();
    }
    Ok(view(&row, valid.event_types, Some(&secrets)))
}

/// Deletes a channel with its deliveries.
///
/// # Errors
/// 403/404.
pub async fn delete(state: &AppState, principal: &Principal, scope: &Scope, key: &str) -> Result<(), ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let row = store_channels::find_in(&mut tx, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    store_channels::delete(&mut tx, row.id).await?;
    record(&mut tx, scope, HistoryAction::ChannelDeleted, &principal.sub, &row, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces the HMAC secret; the previous one keeps signing for the configured grace window.
///
/// # Errors
/// 403/404.
pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &str,
) -> Result<ChannelView, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let now = store::now_ms();
    let grace_ms = i64::try_from(
        state
            .settings
            .integration
            .secret_rotation_grace_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let mut tx = state.db.begin().await?;
    let row = store_channels::find_in(&mut tx, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let mut secrets = open_secrets(state, &row)?;
    let new_secret = secrets.rotate(now, grace_ms);
    let sealed = secrets.seal(&state.secrets);
    store_channels::update_secrets(&mut tx, row.id, &sealed, now, &principal.sub).await?;
    record(
        &mut tx,
        scope,
        HistoryAction::ChannelSecretRotated,
        &principal.sub,
        &row,
        now,
    )
    .await?;
    tx.commit().await?;
    let row = ChannelRow {
        updated_at: now,
        updated_by: principal.sub.clone(),
        ..row
    };
    let subscriptions = event_types_of(state, scope).await?;
    let mut rotated = view(&row, types_for(&subscriptions, row.id), Some(&secrets));
    rotated.hmac_secret = Some(new_secret);
    Ok(rotated)
}

fn pick_event_type(requested: Option<&str>, subscribed: &[String]) -> Result<&'static events::EventType, ApiError> {
    let name = requested
        .map(str::to_string)
        .or_else(|| subscribed.first().cloned())
        .unwrap_or_else(|| events::WALLET_CREATED_V1.type_name.to_string());
    events::lookup(&name).ok_or_else(|| ApiError::invalid_field("eventType", format!("unknown event type `{name}`")))
}

/// Sends the catalog sample of `event_type` through a saved channel once, signed with its
/// secrets; nothing is stored and nothing is retried.
///
/// # Errors
/// 400 for an unknown event type; 403/404.
pub async fn test_saved(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &str,
    event_type: Option<&str>,
) -> Result<TestSendReport, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let subscriptions = event_types_of(state, scope).await?;
    let event_type = pick_event_type(event_type, &types_for(&subscriptions, row.id))?;
    let channel = state.channels.get(&row.channel_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} channels are switched off in this deployment",
            row.channel_type
        ))
    })?;
    let config = ChannelConfig {
        channel_external_key: row.channel_external_key.clone(),
        config: serde_json::from_str(&row.config).map_err(ApiError::internal)?,
        secrets: open_secrets(state, &row)?,
    };
    Ok(channels::test_send(channel.as_ref(), &config, event_type, state.outbox.base_url()).await)
}

/// The same for an unsaved draft, signed with a throwaway secret.
///
/// # Errors
/// 400 for an invalid draft or unknown event type; 403/404.
pub async fn test_draft(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    body: ChannelBody,
    event_type: Option<&str>,
) -> Result<TestSendReport, ApiError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let event_type = pick_event_type(event_type, &valid.event_types)?;
    let mut secrets = ChannelSecrets::generate();
    merge_secrets(&mut secrets, &valid, BodyUse::Create)?;
    let channel = state
        .channels
        .get(&valid.channel_type)
        .ok_or_else(|| ApiError::invalid_field("type", "this channel type is switched off"))?;
    let config = ChannelConfig {
        channel_external_key: format!("draft-{}", Uuid::new_v4()),
        config: valid.config,
        secrets,
    };
    Ok(channels::test_send(channel.as_ref(), &config, event_type, state.outbox.base_url()).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), ApiError>) -> String {
        match result.unwrap_err() {
            ApiError::BadRequest { message, .. } => message,
            other => panic!("expected a 400, got {other:?}"),
        }
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
