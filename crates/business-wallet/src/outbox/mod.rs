//! The write side of delivery: publishing a catalog event inside the caller's transaction.
//!
//! [`Outbox::publish`] writes the event and one PENDING delivery per enabled subscribed channel
//! with the same transaction as the domain change, so either all of it commits or none of it
//! does. The commit ([`Tx::commit`]) wakes the dispatcher in this process when deliveries were
//! written to be claimed (and only then: a wake-up costs a claim statement); PostgreSQL
//! instances are woken by a `NOTIFY` sent with the transaction itself. The
//! notification carries the publishing outbox's id, so that a dispatcher skips the ones its own
//! process sent (it was woken in-process already) instead of claiming twice per event.
//!
//! **Hand-off.** While a dispatcher runs in this process and has room, the deliveries are
//! written already claimed by it (DELIVERING, under a lease it owns) and handed to it in memory
//! when the transaction commits: no claim statement, no wait for a wake-up, and the row is
//! written twice (insert, outcome) instead of three times. Nobody else needs waking then, so
//! no `NOTIFY` is sent. If the process dies before the outcome is stored, the deliveries come
//! back like any other in-flight work of a dead dispatcher (see [`crate::store::instances`]).

use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::WalletKey;
use crate::events::{EventType, TraceContext, SOURCE};
use crate::store::events::{EventRow, FanOut};
use crate::store::{self, HandoffSender, Tx};

/// The channel PostgreSQL instances `LISTEN` on for new deliveries.
pub const NOTIFY_CHANNEL: &str = "business_wallet_deliveries";

/// Publishes events; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    base_url: Arc<str>,
    max_attempts: i64,
    wake: Arc<Notify>,
    /// Sent as the `NOTIFY` payload; the dispatcher of this outbox ignores its own.
    id: Arc<str>,
    /// The dispatcher of this process that takes deliveries straight from the publishing
    /// transaction, while it runs.
    taker: Arc<RwLock<Option<Taker>>>,
}

/// A running dispatcher that takes deliveries from the outbox (see the module documentation).
#[derive(Clone)]
pub(crate) struct Taker {
    /// The dispatcher instance, owner of the leases.
    pub(crate) owner: Arc<str>,
    /// Lease length, in milliseconds.
    pub(crate) lease_ms: i64,
    /// Where the deliveries go after the commit.
    pub(crate) to: HandoffSender,
    /// Whether the dispatcher has room for more; when not, deliveries are written PENDING.
    pub(crate) has_room: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for Taker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taker")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// An event to publish.
#[derive(Debug)]
pub struct NewEvent<'a> {
    /// The catalog entry.
    pub event_type: &'static EventType,
    /// The wallet the event belongs to.
    pub wallet_external_key: &'a WalletKey,
    /// Values for the catalog's subject pattern.
    pub subject_values: &'a [(&'a str, &'a str)],
    /// The data (must validate against the type's schema).
    pub data: Value,
    /// Correlation id of the request that caused the event.
    pub correlation_id: &'a str,
    /// Trace context of the request that caused the event (the distributed-tracing extension).
    pub trace: &'a TraceContext,
    /// Event time, epoch milliseconds.
    pub time: i64,
}

/// What [`Outbox::publish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The CloudEvents `id`.
    pub event_id: String,
    /// Deliveries created.
    pub deliveries: u64,
}

impl Outbox {
    /// An outbox whose events point their `dataschema` under `base_url`.
    pub fn new(base_url: &str, max_attempts: u32) -> Outbox {
        Outbox {
            base_url: base_url.trim_end_matches('/').into(),
            max_attempts: i64::from(max_attempts),
            wake: Arc::new(Notify::new()),
            id: Uuid::new_v4().simple().to_string().into(),
            taker: Arc::default(),
        }
    }

    /// Writes the event and its deliveries in `tx`. Nothing is visible until the caller
    /// commits; the commit hands the deliveries over or wakes the dispatcher.
    ///
    /// # Errors
    /// Database failure; the caller's transaction should then be dropped (rolled back).
    pub async fn publish(&self, tx: &mut Tx, event: NewEvent<'_>) -> Result<Published, sqlx::Error> {
        let sequence = store::events::next_sequence(tx, event.wallet_external_key).await?;
        let row = EventRow {
            event_id: Uuid::new_v4().to_string(),
            event_type: event.event_type.type_name.to_string(),
            source: SOURCE.to_string(),
            subject: event.event_type.subject(event.subject_values),
            wallet_external_key: event.wallet_external_key.clone(),
            time: event.time,
            dataschema: event.event_type.schema_url(&self.base_url),
            correlation_id: event.correlation_id.to_string(),
            traceparent: Some(event.trace.traceparent().to_string()),
            tracestate: event.trace.tracestate().map(str::to_string),
            sequence,
            data: event.data.to_string(),
        };
        let taker = self
            .taker
            .read()
            .expect("taker lock is never poisoned")
            .clone()
            .filter(|taker| (taker.has_room)());
        let lease_token = Uuid::new_v4().to_string();
        let fan_out = match &taker {
            Some(taker) => FanOut::Leased {
                owner: &taker.owner,
                lease_token: &lease_token,
                lease_ms: taker.lease_ms,
            },
            None => FanOut::Pending,
        };
        let store::events::Written {
            deliveries: written,
            held,
            to_claim,
        } = store::events::insert_with_deliveries(tx, &row, self.max_attempts, store::now_ms(), fan_out).await?;
        let deliveries = (written.len() + held) as u64;
        // Deliveries left for a claim (all of them without a taker; an ordered channel's with
        // one) wake the dispatchers; leased ones are handed over.
        let waiting = if taker.is_some() { to_claim } else { written.len() };
        if let Some(taker) = &taker {
            if !written.is_empty() {
                tx.hand_off(&taker.to, written);
            }
        }
        if waiting > 0 {
            store::events::notify_dispatchers(tx, &self.id).await?;
            tx.wake_after_commit(&self.wake);
        }
        Ok(Published {
            event_id: row.event_id,
            deliveries,
        })
    }

    /// Wakes the dispatcher of this process: for changes that make deliveries due outside
    /// publishing (a replay, a channel enabled again). Publishing needs no call: its commit
    /// wakes the dispatcher when there is something to claim.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// Lets `taker` take the deliveries of every later publishing transaction (the dispatcher
    /// of this process, while it runs), or stops that (`None`).
    pub(crate) fn set_taker(&self, taker: Option<Taker>) {
        *self.taker.write().expect("taker lock is never poisoned") = taker;
    }

    /// The in-process wake-up the dispatcher waits on.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// The payload of this outbox's `NOTIFY`s (unique per outbox).
    pub(crate) fn notify_id(&self) -> Arc<str> {
        self.id.clone()
    }

    /// The public base URL used in `dataschema`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}
