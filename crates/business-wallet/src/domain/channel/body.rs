//! The request bodies of create, replace and test, and their OpenAPI schemas: one variant per
//! channel type on offer.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::super::validate::optional_object;
use crate::channels::webhook::request::WebhookBody;
use crate::channels::ChannelKind;
use crate::events;

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
    /// `BEST_EFFORT` (default) or `PER_WALLET`: one wallet's deliveries go out one at a time,
    /// in event order.
    #[serde(default)]
    pub ordering: Option<String>,
    /// Rate and concurrency limits, over every dispatcher instance together (not for PULL).
    #[serde(default, deserialize_with = "optional_object")]
    pub limits: Option<super::limits::ChannelLimits>,
    /// The webhook block (type WEBHOOK).
    #[serde(default, deserialize_with = "optional_object")]
    pub webhook: Option<WebhookBody>,
    /// The Kafka block (type KAFKA): `{"topic": "...", "contentMode"?: "STRUCTURED" | "BINARY"}`.
    #[serde(default, deserialize_with = "optional_object")]
    pub kafka: Option<Value>,
    /// The JMS block (type JMS): `{"destination": "...", "cloudEventsProperties"?: bool}`.
    #[serde(default, deserialize_with = "optional_object")]
    pub jms: Option<Value>,
    /// A custom adapter's block, validated by the adapter.
    #[serde(default, deserialize_with = "optional_object")]
    pub config: Option<Value>,
    /// The pull block (type PULL): `{"leaseSeconds": 30}` (optional fields).
    #[serde(default, deserialize_with = "optional_object")]
    pub pull: Option<Value>,
}

fn default_true() -> bool {
    true
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

    const BLOCKS: [&str; 5] = ["webhook", "kafka", "jms", "config", "pull"];
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
    // The PEM armour; whether the content inside is a certificate or a key of the kinds taken
    // cannot be said in JSON Schema (a 400 when it is not).
    let pem_of = |pattern: &str, description: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(pattern))
            .description(Some(description))
    };
    const CERTIFICATES: &str =
        r"^\s*(?:-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----\s*)+$";
    const KEY: &str = r"^\s*-----BEGIN (?:PRIVATE|RSA PRIVATE|EC PRIVATE) KEY-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END (?:PRIVATE|RSA PRIVATE|EC PRIVATE) KEY-----\s*$";
    let pem = |description: &str| pem_of(CERTIFICATES, description);
    let client_key = pem_of(
        KEY,
        match usage {
            BodyUse::Create => {
                "The client certificate's private key, PEM, unencrypted: one PKCS#8 `PRIVATE KEY`, PKCS#1 \
             `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY` block (RSA, ECDSA P-256/P-384 or Ed25519). A \
             secret: stored encrypted, never returned. Required with `clientCertificate` (400 \
             without it), not allowed without it (422); a key that is not the certificate's is a 422."
            }
            BodyUse::Replace => {
                "The client certificate's private key, PEM, unencrypted: one PKCS#8 `PRIVATE KEY`, PKCS#1 \
             `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY` block (RSA, ECDSA P-256/P-384 or Ed25519). A \
             secret: stored encrypted, never returned. Left out or null with a `clientCertificate`: \
             the stored key is kept (409 when there is none; 422 when it is not the key of the \
             certificate given). Not allowed without `clientCertificate` (422)."
            }
        },
    );
    let tls = doc::closed_object()
        .property(
            "clientCertificate",
            pem(
                "The client certificate the channel presents to this endpoint, PEM `CERTIFICATE` \
                 blocks only, leaf first (intermediates may follow). Returned, and described in the \
                 channel's `certificates`.",
            ),
        )
        .property("clientKey", client_key)
        .property(
            "caCertificates",
            pem(
                "PEM `CERTIFICATE` blocks: the only roots this endpoint's server certificate may chain \
                 to (the public roots are not used for it; other channels are not affected). The host \
                 name is still checked against the certificate.",
            ),
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
            "standardWebhooks",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
                .description(Some(
                    "Also send the Standard Webhooks headers `webhook-id` (the event id), \
                     `webhook-timestamp` and `webhook-signature` (`v1,` HMAC and `v1a,` Ed25519), \
                     besides the CloudEvents `ce-` headers and `X-Credenco-Signature` (default false).",
                )),
        )
        .property(
            "validationHandshake",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
                .description(Some(
                    "Require the CloudEvents webhook validation handshake (abuse protection) before \
                     the first delivery: the wallet sends `OPTIONS` to the URL with \
                     `WebHook-Request-Origin` (and `WebHook-Request-Rate` when the channel has a rate \
                     limit), and the receiver must answer 2xx with `WebHook-Allowed-Origin` (that \
                     origin or `*`). Until it has, the channel is UNVERIFIED and its deliveries wait \
                     (nothing is dropped); the handshake is tried again every \
                     integration.webhook.validation_retry_secs. A `WebHook-Allowed-Rate` in the answer \
                     (requests per minute) becomes a delivery rate limit of the channel. A receiver \
                     answering 410 Gone to a delivery disables the channel (default false).",
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
        .property(
            "tls",
            nullable(tls).description(Some(
                "Mutual TLS and a private CA for the `url` (not for the OAuth2 token endpoint). The \
                 SSRF gate applies as without it. PEM that does not parse is a 400. Left out or null: \
                 the public roots, no client certificate (and a stored client key is dropped).",
            )),
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
        .property(
            "contentMode",
            doc::optional_one_of_strings(["STRUCTURED", "BINARY"]).description(Some(
                    "CloudEvents content mode of the records. `STRUCTURED` (the default, also when \
                     left out or null): the value is the JSON envelope. `BINARY`: the value is the \
                     data JSON, each attribute a `ce_` header, `content-type: application/json`. \
                     Either way the key (and the `partitionkey` extension) is the wallet's key.",
                )),
        )
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
        .property(
            "cloudEventsProperties",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
                .description(Some(
                    "Also set every CloudEvents attribute as a string message property: \
                     `cloudEvents:type` and so on over AMQP 1.0, `cloudEvents_type` and so on over \
                     STOMP (JMS selector names). Default false (also when left out or null): only \
                     `ce_id`, `ce_type` and `ce_walletexternalkey`.",
                )),
        )
        .build();
    let pull = doc::closed_object()
        .property(
            "leaseSeconds",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .minimum(Some(1))
                .maximum(Some(crate::channels::pull::config::MAX_LEASE_SECONDS))
                .description(Some(
                    "Seconds a fetched batch stays with the receiver before its uncommitted events are \
                     offered again (default 30).",
                )),
        )
        .build();

    let mut variants = OneOfBuilder::new().description(Some(
        "A channel: its name, type, subscriptions, and the block of its type (`webhook`, `kafka`, \
         `jms`, `pull`, or `config` for a custom adapter); the other blocks are left out or null.",
    ));
    for kind in kinds {
        let field = ChannelKind::parse(kind).block_field();
        let block: utoipa::openapi::schema::Object = match field {
            "webhook" => webhook.clone(),
            "kafka" => kafka.clone(),
            "jms" => jms.clone(),
            "pull" => pull.clone(),
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
            .required("eventTypeFilters")
            .property(
                "ordering",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .enum_values(Some(["BEST_EFFORT", "PER_WALLET"]))
                    .description(Some(
                        "BEST_EFFORT (default, also for null): deliveries go out as they come. PER_WALLET: \
                         the channel's deliveries of one wallet go out one at a time, in event order; one \
                         that is retrying or FAILED holds back only the later ones of its wallet, until it \
                         is delivered, replayed or dismissed.",
                    )),
            );
        if kind != crate::channels::kind::PULL {
            variant = variant.property("limits", limits_schema());
        }
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

/// The schema of a body's `limits` (null or an object; every field optional).
fn limits_schema() -> utoipa::openapi::schema::Schema {
    use super::limits::{MAX_BURST, MAX_IN_FLIGHT, MAX_RATE};
    use crate::api::doc;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let integer = |max: u32, what: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(max))
            .description(Some(what))
    };
    doc::closed_object()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property(
            "eventsPerSecond",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                .exclusive_minimum(Some(0))
                .maximum(Some(MAX_RATE))
                .description(Some(
                    "Most deliveries a second, counted over every dispatcher instance together \
                     (fractions allowed: 0.5 is one every two seconds). Null: no rate limit.",
                )),
        )
        .property(
            "burst",
            integer(
                MAX_BURST,
                "Most deliveries sent at once within the rate after a quiet spell (default: a tenth of \
                 a second's worth, at least 1). Without eventsPerSecond it shapes nothing and is not stored.",
            ),
        )
        .property(
            "maxInFlight",
            integer(
                MAX_IN_FLIGHT,
                "Most deliveries in flight at once, over every dispatcher instance together.",
            ),
        )
        .description(Some(
            "Rate and concurrency limits (null or {}: none). A receiver answering 429 or 503 with \
             Retry-After pauses the whole channel for that long, limits or not.",
        ))
        .build()
        .into()
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
