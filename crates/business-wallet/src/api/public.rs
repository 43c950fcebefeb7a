//! Unauthenticated routes under `/api/public`: the event catalog and its JSON Schemas, the
//! AsyncAPI description of what the channels send, the channel types this instance offers,
//! and the public keys that verify the webhooks' Ed25519 signatures.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::doc;
use crate::api::extract::ApiPath;
use crate::channels;
use crate::error::ApiError;
use crate::events::{self, CATALOG};
use crate::state::AppState;

/// One entry of `GET /api/public/event-types`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeInfo {
    /// CloudEvents `type`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Schema slug.
    pub slug: String,
    /// Major version.
    pub major_version: u32,
    /// Subject pattern.
    pub subject_pattern: String,
    /// What triggers it.
    pub description: String,
    /// URL of the data's JSON Schema (also the events' `dataschema`).
    pub dataschema: String,
    /// A sample of the data.
    #[schema(value_type = Object)]
    pub sample: serde_json::Value,
}

/// Lists the event catalog.
#[utoipa::path(
    get,
    path = "/api/public/event-types",
    tag = "events",
    responses((status = 200, description = "The catalog", body = Vec<EventTypeInfo>), (status = 400, response = doc::BadRequest))
)]
pub async fn list_event_types(State(state): State<AppState>) -> Json<Vec<EventTypeInfo>> {
    let base = state.outbox.base_url();
    Json(
        CATALOG
            .iter()
            .map(|e| EventTypeInfo {
                type_name: e.type_name.into(),
                slug: e.slug.into(),
                major_version: e.major,
                subject_pattern: e.subject_pattern.into(),
                description: e.description.into(),
                dataschema: e.schema_url(base),
                sample: e.sample_data(),
            })
            .collect(),
    )
}

/// Serves the JSON Schema (2020-12) of an event's data, e.g.
/// `/api/public/schemas/integration/wallet-created/v1.json`.
#[utoipa::path(
    get,
    path = "/api/public/schemas/integration/{slug}/{file}",
    tag = "events",
    params(
        ("slug" = String, Path, description = "Event slug, e.g. wallet-created"),
        ("file" = String, Path, description = "v<major>.json, e.g. v1.json"),
    ),
    responses(
        (status = 200, description = "The JSON Schema", content_type = "application/schema+json"),
        (status = 400, response = doc::BadRequest),
        (status = 404, response = doc::NotFound),
    )
)]
pub async fn get_schema(
    State(state): State<AppState>,
    ApiPath((slug, file)): ApiPath<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no schema {slug}/{file}"));
    let major = file
        .strip_prefix('v')
        .and_then(|f| f.strip_suffix(".json"))
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(not_found)?;
    let entry = events::lookup_schema(&slug, major).ok_or_else(not_found)?;
    let body = entry.schema(state.outbox.base_url()).to_string();
    Ok((
        [
            (header::CONTENT_TYPE, "application/schema+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    ))
}

/// The AsyncAPI 3.0 description of what this instance's channels send.
///
/// One channel and one `send` operation per channel type on offer (webhook, Kafka, JMS), and
/// in each channel one message per catalog event type with its payload schema, its headers
/// (the CloudEvents attributes, the webhook signature) and an example.
#[utoipa::path(
    get,
    path = "/api/public/asyncapi.json",
    tag = "events",
    responses(
        (status = 200, description = "The AsyncAPI 3.0 document", body = Object),
        (status = 400, response = doc::BadRequest),
    )
)]
pub async fn asyncapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(events::asyncapi::document(
        state.outbox.base_url(),
        &state.channels.transports(),
    ))
}

/// The public halves of the deployment's webhook signing keys, as a JWKS (RFC 7517): every
/// key that signs now or will sign later, and those that stopped signing within the grace
/// period (`integration.webhook.signing.grace_secs`). The `kid` of each is the one that the
/// `v1a=<kid>:<signature>` entry of `X-Credenco-Signature` names. Cacheable for 5 minutes; a
/// new key is published well before it signs (`integration.webhook.signing.publish_lead_secs`).
#[utoipa::path(
    get,
    path = "/api/public/webhook-signing-keys.json",
    tag = "channels",
    responses(
        (status = 200, description = "The JWKS: `{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"alg\": \"EdDSA\", \"use\": \"sig\", \"kid\": ..., \"x\": ...}]}` (no keys when the webhook type is off)", content_type = "application/jwk-set+json", body = Object),
        (status = 400, response = doc::BadRequest),
    )
)]
pub async fn webhook_signing_keys(State(state): State<AppState>) -> impl IntoResponse {
    let jwks = state
        .channels
        .signing_keys()
        .map_or_else(|| serde_json::json!({ "keys": [] }), |keys| keys.jwks());
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        jwks.to_string(),
    )
}

/// One entry of `GET /api/public/channel-types`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTypeInfo {
    /// The value of a channel's `type`, e.g. `WEBHOOK` or a custom adapter's type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The body field that holds the type's own settings: `webhook`, `kafka`, `jms`, or
    /// `config` for a custom adapter.
    pub config_field: String,
    /// Whether the type is built into the product (false for an embedding application's
    /// adapter).
    pub built_in: bool,
}

/// Lists the channel types this instance offers: the built-in types switched on in its
/// configuration and the adapters an embedding application registered.
#[utoipa::path(
    get,
    path = "/api/public/channel-types",
    tag = "channels",
    responses((status = 200, description = "The channel types on offer", body = Vec<ChannelTypeInfo>), (status = 400, response = doc::BadRequest))
)]
pub async fn list_channel_types(State(state): State<AppState>) -> Json<Vec<ChannelTypeInfo>> {
    Json(
        state
            .channels
            .kinds()
            .map(|kind| {
                let kind = channels::ChannelKind::parse(kind);
                ChannelTypeInfo {
                    type_name: kind.to_string(),
                    config_field: kind.block_field().to_string(),
                    built_in: kind.is_built_in(),
                }
            })
            .collect(),
    )
}
