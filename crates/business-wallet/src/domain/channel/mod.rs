//! Integration channels as operators manage them: validation of the create/replace body,
//! secrets (generated, kept, rotated, never returned), the audit entries, and test sends.
//!
//! A wallet's channels receive that wallet's events; platform channels (no wallet) receive the
//! events of every wallet. Both are handled here with a [`Scope`].

mod body;
pub mod health;
pub mod ladder;
pub mod limits;
pub mod validation;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::channels::webhook::request::{ApiKeyBody, OAuth2Body, TlsBody, WebhookBody};
pub(crate) use body::{body_schema, BodyUse};
pub use body::{ChannelBody, ChannelReplaceBody};

use super::history::HistoryAction;
use super::ids::{ChannelKey, WalletKey};
use super::validate::{optional_text, required_text};
use crate::auth::{Authority, Principal};
use crate::channels::webhook::request as webhook_request;
use crate::channels::webhook::ssrf::NetworkPolicy;
use crate::channels::webhook::tls as webhook_tls;
use crate::channels::{self, ChannelConfig, ChannelKind, ChannelSecrets, TestSendReport};
use crate::config::DeploymentMode;
use crate::domain::error::{DomainError, FieldErrors};
use crate::domain::Scope;
use crate::events;
use crate::state::AppState;
use crate::store::channels::{self as store_channels, ChannelRow};
use crate::store::{self, rfc3339_ms, Tx};

/// A channel as the API returns it: never a secret, except `hmacSecret` in the answer to
/// create and to rotate-secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// Public key.
    #[schema(value_type = String)]
    pub channel_external_key: ChannelKey,
    /// Owning wallet; null for platform channels.
    #[schema(value_type = Option<String>)]
    pub wallet_external_key: Option<WalletKey>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub channel_type: String,
    /// Enabled.
    pub enabled: bool,
    /// Where the channel stands on the failure ladder: ACTIVE; FAILING (its last attempts in a
    /// row failed, deliveries still go out); PAUSED (no attempts until it is resumed with
    /// `POST .../resume`; its deliveries wait).
    pub delivery_state: ladder::ChannelState,
    /// Since when it is in that state (RFC 3339 UTC); null when ACTIVE since its creation.
    pub delivery_state_since: Option<String>,
    /// Subscribed event types.
    pub event_type_filters: Vec<String>,
    /// BEST_EFFORT, or PER_WALLET: one wallet's deliveries go out one at a time, in event order.
    pub ordering: String,
    /// The channel's rate and concurrency limits, counted over every dispatcher instance (the
    /// burst filled in when it was left out); null when it has none.
    pub limits: Option<limits::ChannelLimits>,
    /// Until when the receiver asked for a pause (it answered 429 or 503 with `Retry-After`):
    /// nothing of the channel is sent before then (RFC 3339 UTC); null when it is not paused so.
    pub throttled_until: Option<String>,
    /// The validation handshake of a webhook channel with `webhook.validationHandshake`: while
    /// UNVERIFIED its deliveries wait for the receiver's answer. Null when the channel does not
    /// require it.
    pub validation: Option<validation::ValidationView>,
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
    /// Pull block (`leaseSeconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub pull: Option<Value>,
    /// Until when the previous HMAC secret still signs, after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
    /// The certificates of `webhook.tls`: the client certificate (`use: CLIENT`), then each CA
    /// certificate (`use: CA`), with subject, issuer, `notAfter` and `expiresSoon` (expired or
    /// expiring within 30 days). Left out when the channel has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<webhook_tls::CertificateInfo>,
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

impl ChannelView {
    /// Whether a certificate of `webhook.tls` has expired or expires within 30 days.
    pub fn certificate_expires_soon(&self) -> bool {
        self.certificates.iter().any(|c| c.expires_soon)
    }

    /// The type block, whichever field holds it (exactly one does).
    fn block(&self) -> Option<&Value> {
        [&self.webhook, &self.kafka, &self.jms, &self.config, &self.pull]
            .into_iter()
            .find_map(Option::as_ref)
    }
}

/// Where a channel sends, as the adapter of its type describes it (the URL, topic or queue);
/// empty for a type that describes none or is switched off.
pub fn destination(state: &AppState, view: &ChannelView) -> String {
    state
        .channels
        .get(&view.channel_type)
        .zip(view.block())
        .and_then(|(channel, block)| channel.destination(block))
        .unwrap_or_default()
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
        delivery_state: ladder::ChannelState::parse(&row.delivery_state),
        delivery_state_since: row.delivery_state_since.map(rfc3339_ms),
        event_type_filters: event_types,
        ordering: row.ordering.clone(),
        limits: limits::ChannelLimits::from_columns(limits::LimitColumns {
            rate_per_sec: row.rate_per_sec,
            rate_burst: row.rate_burst,
            max_in_flight: row.max_in_flight,
        }),
        throttled_until: row.throttled_until.filter(|t| *t > now).map(rfc3339_ms),
        validation: validation::ValidationView::from_columns(
            row.validation_state.as_deref(),
            row.validation_checked_at,
            row.validation_error.as_deref(),
            row.allowed_rate_per_sec,
        ),
        webhook: (field == "webhook").then(|| config.clone()),
        kafka: (field == "kafka").then(|| config.clone()),
        jms: (field == "jms").then(|| config.clone()),
        config: (field == "config").then(|| config.clone()),
        pull: (field == "pull").then(|| config.clone()),
        previous_secret_valid_until: secrets
            .and_then(|s| s.previous_hmac_secret_expires_at)
            .filter(|t| *t > now)
            .map(rfc3339_ms),
        certificates: certificates_of(field, &config, now),
        created_at: rfc3339_ms(row.created_at),
        updated_at: rfc3339_ms(row.updated_at),
        created_by: row.created_by.clone(),
        updated_by: row.updated_by.clone(),
        hmac_secret: None,
    }
}

/// The `webhook.tls` certificates of a stored block, as the view shows them at `now`.
fn certificates_of(field: &str, config: &Value, now: i64) -> Vec<webhook_tls::CertificateInfo> {
    if field != "webhook" {
        return Vec::new();
    }
    serde_json::from_value::<crate::channels::webhook::config::TlsConfig>(config["tls"].clone())
        .map(|tls| webhook_tls::describe(&tls, now))
        .unwrap_or_default()
}

/// A validated body: the columns to store and the secrets it carried.
struct Validated {
    name: String,
    description: Option<String>,
    channel_type: String,
    enabled: bool,
    event_types: Vec<String>,
    ordering: String,
    limits: limits::LimitColumns,
    config: Value,
    secrets: BlockSecrets,
}

/// The secrets a type block carried, each `None` when its block is absent and `Some(None)` when
/// the block leaves the secret out (keep the stored one).
#[derive(Default)]
struct BlockSecrets {
    api_key_value: Option<Option<String>>,
    oauth2_client_secret: Option<Option<String>>,
    client_key_pem: Option<Option<String>>,
}

async fn validate_body(state: &AppState, body: ChannelBody) -> Result<Validated, DomainError> {
    // Every field rule is checked before answering, so that a form can show all that is wrong
    // at once; the type's own block is checked as well when the type is known.
    let mut errors = FieldErrors::default();
    let name = errors.take(required_text("name", &body.name, 100));
    let description = errors.take(optional_text("description", body.description.as_deref(), 2048));
    let channel_type = body.channel_type.trim().to_string();
    let settings = &state.settings;
    let channel = errors.take(state.channels.get(&channel_type).ok_or_else(|| {
        let why = match (settings.mode, ChannelKind::parse(&channel_type).is_built_in()) {
            (DeploymentMode::Saas, _) => format!("only {} channels exist in SaaS mode", ChannelKind::Webhook),
            (_, true) => {
                format!("{channel_type} channels are switched off in this deployment (integration.channels)")
            }
            _ => format!("unknown channel type `{channel_type}`"),
        };
        DomainError::invalid_field("type", why)
    }));
    let event_types = errors.take(subscribed_types(&body.event_type_filters));
    let ordering = errors.take(ordering_of(body.ordering.as_deref()));
    let limits = errors.take(limits_of(&channel_type, body.limits.as_ref()));
    let enabled = body.enabled;
    let (Some(name), Some(description), Some(channel), Some(event_types), Some(ordering), Some(limits)) =
        (name, description, channel, event_types, ordering, limits)
    else {
        if state.channels.get(&channel_type).is_some() {
            if let Err(err) = validate_block(state, &channel_type, body).await {
                errors.push(err);
            }
        }
        return Err(errors.into_error());
    };
    let (config, secrets) = validate_block(state, &channel_type, body).await?;
    channel.validate(&config).map_err(|e| DomainError::Invalid {
        message: e.0,
        details: Some(json!({ "field": block_field(&channel_type) })),
    })?;
    Ok(Validated {
        name,
        description,
        channel_type,
        enabled,
        event_types,
        ordering,
        limits,
        config,
        secrets,
    })
}

/// The `limits` of a body, checked; a PULL channel takes none (its receiver sets the pace).
fn limits_of(channel_type: &str, value: Option<&limits::ChannelLimits>) -> Result<limits::LimitColumns, DomainError> {
    let columns = limits::ChannelLimits::columns(value)?;
    if ChannelKind::parse(channel_type) == ChannelKind::Pull && columns != limits::LimitColumns::default() {
        return Err(DomainError::invalid_field(
            "limits",
            "a PULL channel's receiver fetches at its own pace: it takes no limits",
        ));
    }
    Ok(columns)
}

/// The `ordering` of a body: BEST_EFFORT when left out or null.
fn ordering_of(value: Option<&str>) -> Result<String, DomainError> {
    match value.map(str::trim) {
        None | Some("BEST_EFFORT") => Ok("BEST_EFFORT".into()),
        Some("PER_WALLET") => Ok("PER_WALLET".into()),
        Some(other) => Err(DomainError::invalid_field(
            "ordering",
            format!("`{other}` is not one of BEST_EFFORT, PER_WALLET"),
        )),
    }
}

/// The subscribed event types, each known, duplicates dropped.
fn subscribed_types(filters: &[String]) -> Result<Vec<String>, DomainError> {
    if filters.is_empty() {
        return Err(DomainError::invalid_field(
            "eventTypeFilters",
            "must name at least one event type",
        ));
    }
    let mut event_types = Vec::new();
    for event_type in filters {
        if events::lookup(event_type).is_none() {
            return Err(DomainError::invalid_field(
                "eventTypeFilters",
                format!("unknown event type `{event_type}`"),
            ));
        }
        if !event_types.contains(event_type) {
            event_types.push(event_type.clone());
        }
    }
    Ok(event_types)
}

/// The block of the channel's type (`webhook`, `kafka`, `jms` or a custom type's `config`):
/// present, alone, and for a webhook its request checked; with the secrets it carries.
async fn validate_block(
    state: &AppState,
    channel_type: &str,
    body: ChannelBody,
) -> Result<(Value, BlockSecrets), DomainError> {
    let field = block_field(channel_type);
    let present = [
        ("webhook", body.webhook.is_some()),
        ("kafka", body.kafka.is_some()),
        ("jms", body.jms.is_some()),
        ("config", body.config.is_some()),
        ("pull", body.pull.is_some()),
    ];
    if let Some((other, _)) = present.iter().find(|(f, set)| *set && *f != field) {
        return Err(DomainError::unprocessable(
            other,
            format!("does not apply to a {channel_type} channel"),
        ));
    }
    let (config, secrets) = match field {
        "webhook" => {
            let webhook = body
                .webhook
                .ok_or_else(|| DomainError::invalid_field("webhook", "is required for a WEBHOOK channel"))?;
            let prepared = webhook_request::prepare(webhook, &NetworkPolicy::from_settings(&state.settings)).await?;
            let secrets = BlockSecrets {
                api_key_value: prepared.api_key_value,
                oauth2_client_secret: prepared.oauth2_client_secret,
                client_key_pem: prepared.client_key_pem,
            };
            (prepared.config, secrets)
        }
        "kafka" => (body.kafka.unwrap_or(Value::Null), BlockSecrets::default()),
        "jms" => (body.jms.unwrap_or(Value::Null), BlockSecrets::default()),
        "pull" => (body.pull.unwrap_or(Value::Null), BlockSecrets::default()),
        _ => (body.config.unwrap_or(Value::Null), BlockSecrets::default()),
    };
    if config.is_null() {
        return Err(DomainError::invalid_field(
            field,
            format!("is required for a {channel_type} channel"),
        ));
    }
    Ok((config, secrets))
}

/// Checks a channel body as creating it would, writing nothing: every field error at once (the
/// UI uses it to show them beside its own).
///
/// # Errors
/// 403 without the authority; the body's errors.
pub async fn check(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    body: ChannelBody,
) -> Result<(), DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    validate_body(state, body).await.map(|_| ())
}

/// Merges the secrets of a body into stored ones: a block that is gone drops its secret, an
/// omitted value keeps the stored one, and a block new without its secret is an error: a missing
/// field (400) in a new channel, a conflict with the stored channel (409) on replace.
fn merge_secrets(secrets: &mut ChannelSecrets, valid: &Validated, usage: BodyUse) -> Result<(), DomainError> {
    let missing = |field: &str| match usage {
        BodyUse::Create => DomainError::invalid_field(field, "is required"),
        BodyUse::Replace => {
            DomainError::Conflict(format!("{field} is required: the channel has no stored value to keep"))
        }
    };
    let block = &valid.secrets;
    match &block.api_key_value {
        None => secrets.api_key_value = None,
        Some(Some(value)) => secrets.api_key_value = Some(value.clone()),
        Some(None) if secrets.api_key_value.is_some() => {}
        Some(None) => return Err(missing("webhook.apiKey.value")),
    }
    match &block.oauth2_client_secret {
        None => secrets.oauth2_client_secret = None,
        Some(Some(value)) => secrets.oauth2_client_secret = Some(value.clone()),
        Some(None) if secrets.oauth2_client_secret.is_some() => {}
        Some(None) => return Err(missing("webhook.oauth2.clientSecret")),
    }
    match &block.client_key_pem {
        None => secrets.client_key_pem = None,
        Some(Some(value)) => secrets.client_key_pem = Some(value.clone()),
        Some(None) => {
            let Some(stored) = &secrets.client_key_pem else {
                return Err(missing("webhook.tls.clientKey"));
            };
            // A new certificate for the stored key: it must still be the key's certificate.
            let certificate = valid.config["tls"]["clientCertificate"].as_str().unwrap_or_default();
            webhook_tls::parse_certificates(certificate)
                .and_then(|chain| {
                    let key = webhook_tls::parse_private_key(stored)?;
                    webhook_tls::check_key_matches(&chain, &key)
                })
                .map_err(|problem| {
                    DomainError::unprocessable(
                        "webhook.tls.clientKey",
                        format!("the stored key {problem}; give the certificate's key with it"),
                    )
                })?;
        }
    }
    Ok(())
}

fn channel_not_found(key: &ChannelKey) -> DomainError {
    DomainError::NotFound(format!("channel {key} does not exist"))
}

fn duplicate_name(name: &str) -> DomainError {
    DomainError::Duplicate(format!("a channel named `{name}` already exists"))
}

/// Maps the unique violation of a concurrent duplicate name to 412.
fn unique_to_412(name: &str) -> impl FnOnce(sqlx::Error) -> DomainError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => duplicate_name(name),
        _ => DomainError::from(err),
    }
}

fn open_secrets(state: &AppState, row: &ChannelRow) -> Result<ChannelSecrets, DomainError> {
    ChannelSecrets::open_stored(&state.secrets, row.secrets.as_deref()).map_err(DomainError::internal)
}

async fn record(
    tx: &mut Tx,
    scope: &Scope,
    action: HistoryAction,
    actor: &str,
    row: &ChannelRow,
    now: i64,
) -> Result<(), DomainError> {
    let details = json!({ "channelExternalKey": row.channel_external_key, "name": row.name, "type": row.channel_type });
    super::history::record(tx, scope, action, actor, &details, now).await
}

async fn event_types_of(state: &AppState, scope: &Scope) -> Result<Vec<(i64, String)>, DomainError> {
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
) -> Result<ChannelView, DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let mut secrets = ChannelSecrets::generate();
    merge_secrets(&mut secrets, &valid, BodyUse::Create)?;
    let now = store::now_ms();
    let row = ChannelRow {
        id: 0,
        channel_external_key: ChannelKey::generate(),
        wallet_external_key: scope.wallet().cloned(),
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
        delivery_state: ladder::ChannelState::Active.as_str().to_string(),
        delivery_state_since: None,
        ordering: valid.ordering.clone(),
        rate_per_sec: valid.limits.rate_per_sec,
        rate_burst: valid.limits.rate_burst,
        max_in_flight: valid.limits.max_in_flight,
        throttled_until: None,
        validation_state: validation::state_after_save(&valid.channel_type, &valid.config, None).0,
        validation_checked_at: None,
        validation_error: None,
        allowed_rate_per_sec: None,
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
pub async fn list(state: &AppState, principal: &Principal, scope: &Scope) -> Result<Vec<ChannelView>, DomainError> {
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
pub async fn get(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<ChannelView, DomainError> {
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
    key: &ChannelKey,
    body: ChannelBody,
) -> Result<ChannelView, DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let current = store_channels::find_in(&mut tx, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    if current.channel_type != valid.channel_type {
        return Err(DomainError::unprocessable(
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
    let old_config: Value = serde_json::from_str(&current.config).unwrap_or(Value::Null);
    let (validation_state, reset) = validation::state_after_save(
        &valid.channel_type,
        &valid.config,
        Some((&old_config, current.validation_state.as_deref())),
    );
    let (validation_checked_at, validation_error, allowed_rate_per_sec) = if reset {
        (None, None, None)
    } else {
        (
            current.validation_checked_at,
            current.validation_error.clone(),
            current.allowed_rate_per_sec,
        )
    };
    let row = ChannelRow {
        validation_state,
        validation_checked_at,
        validation_error,
        allowed_rate_per_sec,
        name: valid.name.clone(),
        description: valid.description.clone(),
        enabled: valid.enabled,
        config: valid.config.to_string(),
        secrets: Some(secrets.seal(&state.secrets)),
        ordering: valid.ordering.clone(),
        rate_per_sec: valid.limits.rate_per_sec,
        rate_burst: valid.limits.rate_burst,
        max_in_flight: valid.limits.max_in_flight,
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
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<(), DomainError> {
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
    key: &ChannelKey,
) -> Result<ChannelView, DomainError> {
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

fn pick_event_type(requested: Option<&str>, subscribed: &[String]) -> Result<&'static events::EventType, DomainError> {
    let name = requested
        .map(str::to_string)
        .or_else(|| subscribed.first().cloned())
        .unwrap_or_else(|| events::WALLET_CREATED_V1.type_name.to_string());
    events::lookup(&name).ok_or_else(|| DomainError::invalid_field("eventType", format!("unknown event type `{name}`")))
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
    key: &ChannelKey,
    event_type: Option<&str>,
) -> Result<TestSendReport, DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let row = store_channels::find(&state.db, scope, key)
        .await?
        .ok_or_else(|| channel_not_found(key))?;
    let subscriptions = event_types_of(state, scope).await?;
    let event_type = pick_event_type(event_type, &types_for(&subscriptions, row.id))?;
    let channel = state.channels.get(&row.channel_type).ok_or_else(|| {
        DomainError::bad_request(format!(
            "{} channels are switched off in this deployment",
            row.channel_type
        ))
    })?;
    let config = ChannelConfig {
        channel_external_key: row.channel_external_key.to_string(),
        config: serde_json::from_str(&row.config).map_err(DomainError::internal)?,
        secrets: open_secrets(state, &row)?,
    };
    let handshake = handshake_of(state, &row.channel_type, &config, row.rate_per_sec).await;
    let mut report = channels::test_send(
        channel.as_ref(),
        &config,
        event_type,
        state.outbox.base_url(),
        scope.wallet(),
    )
    .await;
    report.handshake = handshake;
    Ok(report)
}

/// The validation handshake of a test send, for a webhook channel that requires it.
async fn handshake_of(
    state: &AppState,
    channel_type: &str,
    config: &ChannelConfig,
    rate_per_sec: Option<f64>,
) -> Option<crate::channels::webhook::handshake::HandshakeReport> {
    if !validation::required(channel_type, &config.config) {
        return None;
    }
    let webhook = state.channels.webhook()?;
    let rate = rate_per_sec.map(crate::channels::webhook::handshake::request_rate);
    Some(webhook.validate_endpoint(config, rate).await)
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
) -> Result<TestSendReport, DomainError> {
    super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelCrud).await?;
    let valid = validate_body(state, body).await?;
    let event_type = pick_event_type(event_type, &valid.event_types)?;
    let mut secrets = ChannelSecrets::generate();
    merge_secrets(&mut secrets, &valid, BodyUse::Create)?;
    let channel = state
        .channels
        .get(&valid.channel_type)
        .ok_or_else(|| DomainError::invalid_field("type", "this channel type is switched off"))?;
    let config = ChannelConfig {
        channel_external_key: format!("draft-{}", Uuid::new_v4()),
        config: valid.config,
        secrets,
    };
    let handshake = handshake_of(state, &valid.channel_type, &config, valid.limits.rate_per_sec).await;
    let mut report = channels::test_send(
        channel.as_ref(),
        &config,
        event_type,
        state.outbox.base_url(),
        scope.wallet(),
    )
    .await;
    report.handshake = handshake;
    Ok(report)
}
