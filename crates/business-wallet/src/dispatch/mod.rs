//! The dispatcher: claims due deliveries under a lease, hands each to its channel, and records
//! what happened.
//!
//! - [`retry`]: the retry policy, one pure function.
//! - [`worker`]: one delivery from claimed to recorded.
//! - this module: the claim loop, wake-ups, per-channel concurrency and shutdown.
//!
//! **Claim is a lease.** A claim commits before anything is sent and no transaction stays open
//! across a network call. A dispatcher that dies leaves its rows DELIVERING until their lease
//! ends; then any dispatcher claims them again (at-least-once: the receiver may see the event
//! twice, with the same `id`). Outcomes are stored only while the lease is still ours.
//!
//! **Wake-ups.** The outbox wakes this process through a [`Notify`] after each publishing
//! commit; on PostgreSQL a `LISTEN` connection wakes every instance; a poll
//! (`integration.dispatch.poll_interval_ms`) is the safety net for anything missed, and a
//! reconnected listener triggers a catch-up claim.
//!
//! **Fairness.** At most `max_in_flight_per_channel` deliveries per channel are in flight on an
//! instance. Channels at their limit are left out of the next claim, and rows beyond the limit
//! that one claim returned are given back at once, so a slow receiver holds a few slots, never
//! all of them.

pub mod retention;
pub mod retry;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::store::deliveries::{self, ClaimRequest, ClaimedDelivery};
use crate::store::Db;
pub use worker::Handled;
use worker::WorkerContext;

/// Counts of one [`Dispatcher::run_once`] pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Claimed but given back because their channel had its fill in flight.
    pub deferred: usize,
    /// Now DELIVERED.
    pub delivered: usize,
    /// Back to PENDING for a later attempt.
    pub retried: usize,
    /// Now FAILED.
    pub failed: usize,
    /// Taken over by another dispatcher before the outcome was stored.
    pub lease_lost: usize,
    /// Outcome not stored (database failure); the lease will run out.
    pub not_recorded: usize,
}

impl RunOutcome {
    fn count(&mut self, handled: Handled) {
        match handled {
            Handled::Delivered => self.delivered += 1,
            Handled::Retried => self.retried += 1,
            Handled::Failed => self.failed += 1,
            Handled::LeaseLost => self.lease_lost += 1,
            Handled::NotRecorded => self.not_recorded += 1,
        }
    }
}

/// The delivery dispatcher of one instance. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: WorkerContext,
    wake: Arc<Notify>,
    /// Deliveries in flight per channel id.
    per_channel: Mutex<HashMap<i64, u32>>,
    /// Leases held by running tasks (delivery id -> token), to give back at shutdown.
    leases: Mutex<HashMap<i64, String>>,
}

/// A claimed delivery holding one of its channel's in-flight slots; dropping it frees the slot.
struct Slot {
    inner: Arc<Inner>,
    delivery: ClaimedDelivery,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_channel = self.inner.per_channel.lock().expect("slot lock is never poisoned");
        if let Some(count) = per_channel.get_mut(&self.delivery.channel_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_channel.remove(&self.delivery.channel_id);
            }
        }
        drop(per_channel);
        self.inner
            .leases
            .lock()
            .expect("lease lock is never poisoned")
            .remove(&self.delivery.id);
    }
}

impl Dispatcher {
    /// A dispatcher over the application's database, secrets, channel types and settings,
    /// woken by its outbox.
    pub fn new(state: &AppState) -> Dispatcher {
        // Counters recorded before a recorder exists would be lost.
        crate::metrics::handle();
        Dispatcher {
            inner: Arc::new(Inner {
                ctx: WorkerContext {
                    db: state.db.clone(),
                    secret_box: state.secrets.clone(),
                    channels: state.channels.clone(),
                    settings: state.settings.clone(),
                },
                wake: state.outbox.wake_handle(),
                per_channel: Mutex::new(HashMap::new()),
                leases: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Claims the deliveries due now (up to `integration.dispatch.batch_size`), works them
    /// concurrently and waits until every outcome is recorded. Tests drive the dispatcher with
    /// this, one step at a time.
    ///
    /// # Errors
    /// The claim failed (database failure).
    pub async fn run_once(&self) -> anyhow::Result<RunOutcome> {
        let batch = self.inner.ctx.settings.integration.dispatch.batch_size as usize;
        let (slots, mut outcome) = self.claim(batch).await?;
        let mut tasks = JoinSet::new();
        for slot in slots {
            tasks.spawn(work(slot));
        }
        while let Some(joined) = tasks.join_next().await {
            outcome.count(joined?);
        }
        Ok(outcome)
    }

    /// Runs the claim loop until `shutdown` is cancelled; then stops claiming, lets in-flight
    /// deliveries finish for up to `integration.dispatch.shutdown_grace_ms`, and gives the
    /// leases of the rest back so that another instance (or the next start) sends them at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let settings = self.inner.ctx.settings.integration.dispatch.clone();
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let capacity_total = settings.batch_size as usize;
        let listener = match &self.inner.ctx.db {
            Db::Postgres(pool) => Some(tokio::spawn(listen(
                pool.clone(),
                self.inner.wake.clone(),
                shutdown.clone(),
            ))),
            Db::Sqlite { .. } => None,
        };
        let mut tasks: JoinSet<Handled> = JoinSet::new();
        tracing::info!("dispatcher started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let capacity = capacity_total.saturating_sub(tasks.len());
            let mut more_due = false;
            if capacity > 0 {
                match self.claim(capacity).await {
                    Ok((slots, outcome)) => {
                        // A full claim means more may be due: claim again before sleeping.
                        more_due = outcome.claimed == capacity;
                        for slot in slots {
                            tasks.spawn(work(slot));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming deliveries failed; retrying after the poll interval")
                    }
                }
            }
            if more_due {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        self.drain(tasks, Duration::from_millis(settings.shutdown_grace_ms))
            .await;
        if let Some(listener) = listener {
            listener.abort();
        }
        tracing::info!("dispatcher stopped");
    }

    /// Claims up to `limit` deliveries and takes a slot for each; rows whose channel is full are
    /// given back.
    async fn claim(&self, limit: usize) -> anyhow::Result<(Vec<Slot>, RunOutcome)> {
        let ctx = &self.inner.ctx;
        let max_per_channel = ctx.settings.integration.dispatch.max_in_flight_per_channel;
        let skip: Vec<i64> = {
            let per_channel = self.inner.per_channel.lock().expect("slot lock is never poisoned");
            per_channel
                .iter()
                .filter(|(_, count)| **count >= max_per_channel)
                .map(|(id, _)| *id)
                .collect()
        };
        let request = ClaimRequest {
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            lease_ms: i64::try_from(ctx.settings.integration.dispatch.lease_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            skip_channels: &skip,
        };
        let claimed = deliveries::claim(&ctx.db, &request).await?;
        let mut outcome = RunOutcome {
            claimed: claimed.len(),
            ..RunOutcome::default()
        };
        let mut slots = Vec::with_capacity(claimed.len());
        let mut full = Vec::new();
        for delivery in claimed {
            let admitted = {
                let mut per_channel = self.inner.per_channel.lock().expect("slot lock is never poisoned");
                let count = per_channel.entry(delivery.channel_id).or_insert(0);
                if *count < max_per_channel {
                    *count += 1;
                    true
                } else {
                    false
                }
            };
            if admitted {
                self.inner
                    .leases
                    .lock()
                    .expect("lease lock is never poisoned")
                    .insert(delivery.id, delivery.lease_token.clone());
                slots.push(Slot {
                    inner: self.inner.clone(),
                    delivery,
                });
            } else {
                full.push(delivery);
            }
        }
        for delivery in full {
            outcome.deferred += 1;
            if let Err(err) = deliveries::release(&ctx.db, delivery.id, &delivery.lease_token, 0).await {
                tracing::warn!(delivery = %delivery.delivery_external_key, error = %err, "could not give a lease back; it will run out");
            }
        }
        Ok((slots, outcome))
    }

    /// Waits up to `grace` for running deliveries, then stops the rest and releases their leases.
    async fn drain(&self, mut tasks: JoinSet<Handled>, grace: Duration) {
        let finished = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_ok() {
            return;
        }
        let leftovers: Vec<(i64, String)> = self
            .inner
            .leases
            .lock()
            .expect("lease lock is never poisoned")
            .iter()
            .map(|(id, token)| (*id, token.clone()))
            .collect();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let mut released = 0;
        for (id, token) in leftovers {
            match deliveries::release(&self.inner.ctx.db, id, &token, 0).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "could not give a lease back at shutdown; it will run out"),
            }
        }
        tracing::info!(released, "in-flight deliveries given back at shutdown");
    }
}

async fn work(slot: Slot) -> Handled {
    worker::work(&slot.inner.ctx, slot.delivery.clone()).await
}

/// Forwards PostgreSQL notifications on the outbox channel to the in-process wake-up, and wakes
/// once after every (re)connection so that anything published meanwhile is claimed.
async fn listen(pool: sqlx::PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    use sqlx::postgres::PgListener;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(crate::outbox::NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; relying on polling until it is back");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        wake.notify_one();
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(_)) => wake.notify_one(),
                // The connection dropped; the next call reconnects. Catch up on what was missed.
                Ok(None) => wake.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}
