//! Erasure of a wallet's integration data on request (a data-protection erasure): the
//! statements that remove the event data and the stored requests and responses of a wallet's
//! events, and stop the deliveries that could still send them.
//!
//! What stays is the audit trail: every event row with its ids, type, subject (external keys
//! only), times and schema, every delivery row with its key, state, counts, last status and
//! error, and every attempt row with its number, times, outcome, status and error.

use super::{with_tx, Tx};
use crate::domain::delivery::DeliveryState;
use crate::domain::WalletKey;

/// What one erasure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Events whose data was removed (events erased before are not counted again).
    pub events: u64,
    /// Attempts whose stored request or response was removed.
    pub attempts: u64,
    /// PENDING, DELIVERING and FAILED deliveries of those events moved to DISMISSED.
    pub dismissed: u64,
}

/// Erases the integration data of every event of `wallet` (its own channels' deliveries and
/// the platform channels'), inside the caller's transaction, at `now` (epoch ms).
///
/// The events are marked first, and the other two statements act on the deliveries of the
/// marked events only: an event that another transaction commits meanwhile is not erased, and
/// its deliveries go out as usual, with their data.
///
/// The deliveries are dismissed before their attempts are erased, so that none can go out again
/// with the erased payload: a PENDING or FAILED one would be sent (or replayed) with `null`
/// data. A DELIVERING one loses its lease, so the outcome of the attempt in flight is not
/// stored (every outcome statement names the lease, see `store::deliveries`): its request,
/// which holds the payload, is never written. On PostgreSQL an outcome committed before the
/// dismissal is visible to the statement on the attempts after it, and one that waits on the
/// dismissal's row lock then finds the lease gone; on SQLite the one writer runs them one after
/// the other.
///
/// # Errors
/// Database failure; the caller's transaction then changes nothing.
pub async fn erase_wallet(tx: &mut Tx, wallet: &WalletKey, now: i64) -> Result<Erased, sqlx::Error> {
    // `data` is NOT NULL (a CloudEvent always has the member): the JSON null takes its place.
    const EVENTS: &str = "UPDATE integration_event SET data = 'null', erased_at = $1 \
                          WHERE wallet_external_key = $2 AND erased_at IS NULL";
    const ERASED: &str = "SELECT id FROM integration_event WHERE wallet_external_key = $1 AND erased_at IS NOT NULL";
    let dismiss = format!(
        "UPDATE integration_delivery SET state = $2, updated_at = $3, lease_token = NULL, lease_owner = NULL \
         WHERE state IN ($4, $5, $6) AND event_id IN ({ERASED})"
    );
    let attempts = format!(
        "UPDATE integration_delivery_attempt SET request = NULL, response_headers = NULL, response_body = NULL \
         WHERE (request IS NOT NULL OR response_headers IS NOT NULL OR response_body IS NOT NULL) \
         AND delivery_id IN (SELECT id FROM integration_delivery WHERE event_id IN ({ERASED}))"
    );
    let events = with_tx!(tx, c => sqlx::query(EVENTS)
        .bind(now)
        .bind(wallet)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let dismissed = with_tx!(tx, c => sqlx::query(&dismiss)
        .bind(wallet)
        .bind(DeliveryState::Dismissed)
        .bind(now)
        .bind(DeliveryState::Pending)
        .bind(DeliveryState::Delivering)
        .bind(DeliveryState::Failed)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let attempts = with_tx!(tx, c => sqlx::query(&attempts)
        .bind(wallet)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(Erased {
        events,
        attempts,
        dismissed,
    })
}
