//! The audit log as operators read it: who changed which channel or delivery, and when; its
//! categories and actions, each with the one TEXT value it is stored as.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::Scope;
use crate::auth::{Authority, Principal};
use crate::domain::error::DomainError;
use crate::state::AppState;
use crate::store::{self, history, rfc3339_ms};

/// The categories of audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryEvent {
    /// Channel changes, secret rotations, delivery replays and dismissals, erasures of a
    /// wallet's integration data.
    Integration,
}

impl HistoryEvent {
    /// The name stored in the `history.event` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Integration => "INTEGRATION",
        }
    }
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryAction {
    /// A channel was created.
    ChannelCreated,
    /// A channel was replaced.
    ChannelUpdated,
    /// A channel was deleted with its deliveries.
    ChannelDeleted,
    /// A channel's HMAC secret was rotated.
    ChannelSecretRotated,
    /// One FAILED delivery was replayed.
    DeliveryReplayed,
    /// One FAILED delivery was dismissed.
    DeliveryDismissed,
    /// The FAILED deliveries matching a filter were replayed.
    DeliveriesReplayed,
    /// The FAILED deliveries matching a filter were dismissed.
    DeliveriesDismissed,
    /// A wallet's integration data (event data, stored requests and responses) was erased on
    /// request, and its deliveries still to go out were dismissed.
    IntegrationDataErased,
    /// A channel moved along the failure ladder on its own (ACTIVE, FAILING, PAUSED).
    ChannelStateChanged,
    /// An operator resumed a PAUSED (or FAILING) channel.
    ChannelResumed,
    /// A channel's receiver answered the validation handshake: its deliveries go out.
    ChannelVerified,
    /// A channel's receiver answered a delivery with 410 Gone: the channel was disabled.
    ChannelDisabledByReceiver,
}

impl HistoryAction {
    /// The name stored in the `history.action` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryAction::ChannelCreated => "CHANNEL_CREATED",
            HistoryAction::ChannelUpdated => "CHANNEL_UPDATED",
            HistoryAction::ChannelDeleted => "CHANNEL_DELETED",
            HistoryAction::ChannelSecretRotated => "CHANNEL_SECRET_ROTATED",
            HistoryAction::DeliveryReplayed => "DELIVERY_REPLAYED",
            HistoryAction::DeliveryDismissed => "DELIVERY_DISMISSED",
            HistoryAction::DeliveriesReplayed => "DELIVERIES_REPLAYED",
            HistoryAction::DeliveriesDismissed => "DELIVERIES_DISMISSED",
            HistoryAction::IntegrationDataErased => "INTEGRATION_DATA_ERASED",
            HistoryAction::ChannelStateChanged => "CHANNEL_STATE_CHANGED",
            HistoryAction::ChannelResumed => "CHANNEL_RESUMED",
            HistoryAction::ChannelVerified => "CHANNEL_VERIFIED",
            HistoryAction::ChannelDisabledByReceiver => "CHANNEL_DISABLED_BY_RECEIVER",
        }
    }
}

/// Appends an integration entry inside the caller's transaction, so that it commits with the
/// change it records.
///
/// # Errors
/// Database failure.
pub(crate) async fn record(
    tx: &mut store::Tx,
    scope: &Scope,
    action: HistoryAction,
    actor: &str,
    details: &serde_json::Value,
    now: i64,
) -> Result<(), DomainError> {
    history::append(
        tx,
        scope.wallet(),
        HistoryEvent::Integration.as_str(),
        action.as_str(),
        actor,
        details,
        now,
    )
    .await?;
    Ok(())
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Category.
    pub event: String,
    /// What happened: CHANNEL_CREATED, CHANNEL_UPDATED, CHANNEL_DELETED, CHANNEL_SECRET_ROTATED,
    /// DELIVERY_REPLAYED, DELIVERY_DISMISSED, DELIVERIES_REPLAYED, DELIVERIES_DISMISSED,
    /// INTEGRATION_DATA_ERASED, CHANNEL_STATE_CHANGED (the failure ladder, actor `dispatcher`),
    /// CHANNEL_RESUMED, CHANNEL_VERIFIED (the receiver answered the validation handshake, actor
    /// `dispatcher`), CHANNEL_DISABLED_BY_RECEIVER (it answered a delivery with 410 Gone, actor
    /// `dispatcher`).
    pub action: String,
    /// `sub` of who did it.
    pub actor: String,
    /// What it was done to.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When.
    pub created_at: String,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// Newest first.
    pub items: Vec<HistoryEntry>,
    /// For the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which entries to read: a category (all when `None`), entries older than a previous page's
/// cursor, and a page size of 1 to 200.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery {
    /// Only entries of this category.
    pub event: Option<HistoryEvent>,
    /// From a previous page's `nextCursor`.
    pub cursor: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Checks that the principal may read the audit log of the scope: on a wallet, either
/// integration read authority (channels or deliveries) and a wallet that exists; on the
/// platform, GLOBAL_WALLET_CRUD.
///
/// # Errors
/// 403 without the authority; 404 for an unknown wallet.
async fn authorize_read(state: &AppState, principal: &Principal, scope: &Scope) -> Result<(), DomainError> {
    let Scope::Wallet(wallet) = scope else {
        return principal.require_global();
    };
    if !principal.has(Authority::WalletIntegrationChannelRead, wallet)
        && !principal.has(Authority::WalletIntegrationDeliveryRead, wallet)
    {
        return Err(DomainError::Forbidden(format!(
            "this requires {} or {} on wallet {wallet}",
            Authority::WalletIntegrationChannelRead,
            Authority::WalletIntegrationDeliveryRead
        )));
    }
    if store::wallets::find(&state.db, wallet).await?.is_none() {
        return Err(super::wallet::not_found(wallet));
    }
    Ok(())
}

/// One page of the audit log of the scope, newest first.
///
/// # Errors
/// 403/404 as [`authorize_read`]; then 400 for a page size out of range; database failure.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    query: HistoryQuery,
) -> Result<HistoryPage, DomainError> {
    authorize_read(state, principal, scope).await?;
    if !(1..=200).contains(&query.limit) {
        return Err(DomainError::invalid_field("limit", "must be a number from 1 to 200"));
    }
    let rows = history::list(
        &state.db,
        scope.wallet(),
        query.event.map(HistoryEvent::as_str),
        query.cursor,
        query.limit + 1,
    )
    .await?;
    let (rows, next_cursor) = super::page::split(rows, query.limit, |r| r.id);
    Ok(HistoryPage {
        next_cursor,
        items: rows
            .into_iter()
            .map(|r| HistoryEntry {
                event: r.event,
                action: r.action,
                actor: r.actor,
                details: r
                    .details
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_default(),
                created_at: rfc3339_ms(r.created_at),
            })
            .collect(),
    })
}
