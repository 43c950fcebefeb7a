//! Erasure of a wallet's integration data on request (a data-protection erasure, GDPR
//! article 17): the data of its events and the stored requests and responses of their
//! deliveries' attempts are removed, while the rows stay for the audit trail.
//!
//! - Kept: each event's ids, type, source, subject (external keys only), times, schema and
//!   correlation id; each delivery's key, channel, state, attempt count, times, last status
//!   and error; each attempt's number, times, duration, outcome, status and error. These
//!   describe that something was sent, when and how it ended, not what it said.
//! - Removed: the event `data` (the JSON `null` takes its place), and every attempt's stored
//!   request (headers and body) and response (headers and body excerpt).
//! - Deliveries that could still send the event (PENDING, DELIVERING) or be replayed into
//!   sending it (FAILED) are DISMISSED in the same transaction: nothing goes out with an
//!   erased payload afterwards. That covers the platform channels' deliveries of the wallet's
//!   events as well as its own channels'.
//!
//! One `INTEGRATION_DATA_ERASED` entry in the wallet's audit log records who asked and the
//! counts. Events published after the erasure are not affected. A repeated erasure counts only
//! what it changed.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::history::{self, HistoryAction};
use super::ids::WalletKey;
use super::scope::Scope;
use crate::auth::Principal;
use crate::domain::error::DomainError;
use crate::state::AppState;
use crate::store;

/// What an erasure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// Events whose data was removed (events erased before are not counted again).
    pub events: u64,
    /// Attempts whose stored request and response were removed.
    pub attempts: u64,
    /// Deliveries (PENDING, DELIVERING or FAILED) moved to DISMISSED so that they never send
    /// the erased payload.
    pub dismissed: u64,
}

/// Erases the integration data of every event of the wallet, dismisses its deliveries still to
/// go out, and records it in the wallet's audit log, in one transaction. Needs
/// GLOBAL_WALLET_CRUD.
///
/// A delivery in flight at that moment may still reach its receiver (it left with the data
/// loaded before), but its outcome and request are not stored.
///
/// # Errors
/// 403 without GLOBAL_WALLET_CRUD; 404 for an unknown wallet; database failure (then nothing
/// was changed).
pub async fn erase(state: &AppState, principal: &Principal, wallet: &WalletKey) -> Result<Erasure, DomainError> {
    principal.require_global()?;
    if store::wallets::find(&state.db, wallet).await?.is_none() {
        return Err(super::wallet::not_found(wallet));
    }
    let now = store::now_ms();
    let mut tx = state.db.begin().await?;
    let erased = store::erasure::erase_wallet(&mut tx, wallet, now).await?;
    let erasure = Erasure {
        events: erased.events,
        attempts: erased.attempts,
        dismissed: erased.dismissed,
    };
    history::record(
        &mut tx,
        &Scope::Wallet(wallet.clone()),
        HistoryAction::IntegrationDataErased,
        &principal.sub,
        &json!(erasure),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        wallet = %wallet,
        events = erasure.events,
        attempts = erasure.attempts,
        dismissed = erasure.dismissed,
        "integration data erased"
    );
    Ok(erasure)
}
