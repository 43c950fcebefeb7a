//! The dispatcher: claims due deliveries under a lease, hands each to its channel, and records
//! what happened.
//!
//! - [`retry`]: the retry policy, one pure function.
//! - [`worker`]: one delivery from claimed to recorded.
//! - `admission`: what this instance holds per channel and per lease, behind one lock.
//! - `listener`: the PostgreSQL `LISTEN` connection that wakes the claim loop.
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
//! **Instances.** Every running dispatcher sends a heartbeat every fifth of
//! `integration.dispatch.instance_timeout_secs` and names itself as the owner of what it
//! claims. Each heartbeat round also gives back the deliveries of instances that went silent
//! (a killed process: its in-flight deliveries go out again within seconds, not after their
//! lease), retries the bookkeeping that failed here (outcomes or releases that could not be
//! stored while the database was away), and now and then ends leases that ran out.
//!
//! **Fairness.** At most `max_in_flight_per_channel` deliveries per channel are in flight on an
//! instance. Channels at their limit are left out of the next claim, and rows beyond the limit
//! that one claim returned are given back at once, so a slow receiver holds a few slots, never
//! all of them.
//!
//! **Validation handshake.** The heartbeat rounds also try the CloudEvents validation handshake
//! of the webhook channels that require it and whose receivers have not answered it yet (their
//! deliveries wait meanwhile; see `domain::channel::validation`).
//!
//! **Limits.** A channel's own rate and in-flight limits, and a pause its receiver asked for,
//! hold for all instances together: the claim counts them in the database, under the channel
//! row's lock (see `store::limits`). When a rate leaves due deliveries behind, the claim says
//! when the channel may send again, and the loop claims then instead of at the next poll.

mod admission;
mod listener;
pub mod retention;
pub mod retry;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::delivery::Resolution;
use crate::outbox::{Outbox, Taker};
use crate::state::AppState;
use crate::store::deliveries::{self, ClaimRequest, ClaimedDelivery};
use crate::store::{instances, Db};
use admission::Admission;
use listener::listen;
use worker::{NotStored, Unsaved, Worked, WorkerContext};

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
    fn count(&mut self, worked: Worked) {
        match worked {
            Ok(Resolution::Delivered) => self.delivered += 1,
            Ok(Resolution::Retry { .. }) => self.retried += 1,
            Ok(Resolution::Failed) => self.failed += 1,
            Err(NotStored::LeaseLost) => self.lease_lost += 1,
            Err(NotStored::DatabaseError) => self.not_recorded += 1,
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
    /// The `NOTIFY` payload of this process's own outbox (already woken in-process).
    notify_id: Arc<str>,
    /// What this instance holds, per channel and per lease.
    admission: Mutex<Admission>,
    /// Signalled when a channel slot is freed (an attempt is over).
    slot_freed: Notify,
    /// This dispatcher's name in `integration_dispatcher` and in the leases it takes.
    instance_id: Arc<str>,
    /// The outbox of this process, which hands deliveries over while the claim loop runs.
    outbox: Outbox,
    /// When the last claim's rate-limited (or receiver-paused) channels may send again: the
    /// claim loop claims then rather than at the next poll.
    limited_wake: Mutex<Option<Instant>>,
    /// A task of this dispatcher is trying validation handshakes.
    verifying: AtomicBool,
}

impl Inner {
    fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock().expect("admission lock is never poisoned")
    }
}

/// Longest a claimed delivery waits in memory for a slot of its channel before it is given back.
const QUEUE_MAX_WAIT: Duration = Duration::from_secs(5);

/// A claimed delivery holding one of its channel's in-flight slots; dropping it frees the slot.
/// The channel's slot is freed as soon as the attempt is over, before its outcome is stored:
/// the limit is on requests to the receiver, and the outcomes of many deliveries are stored
/// together meanwhile.
struct Slot {
    inner: Arc<Inner>,
    delivery: ClaimedDelivery,
    channel_freed: AtomicBool,
}

impl Slot {
    fn new(inner: Arc<Inner>, delivery: ClaimedDelivery) -> Slot {
        Slot {
            inner,
            delivery,
            channel_freed: AtomicBool::new(false),
        }
    }

    /// Gives the channel's in-flight slot back (once).
    fn free_channel(&self) {
        if self.channel_freed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner.admission().free_slot(self.delivery.channel_id);
        self.inner.slot_freed.notify_one();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let free_channel = !self.channel_freed.swap(true, Ordering::SeqCst);
        {
            let mut admission = self.inner.admission();
            if free_channel {
                admission.free_slot(self.delivery.channel_id);
            }
            admission.leases.remove(&self.delivery.id);
        }
        if free_channel {
            self.inner.slot_freed.notify_one();
        }
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
                    db: state.db.for_dispatcher(state.settings.database.dispatcher_connections),
                    secret_box: state.secrets.clone(),
                    channels: state.channels.clone(),
                    settings: state.settings.clone(),
                    recorder: worker::Recorder::default(),
                    outbox: state.outbox.clone(),
                    unsaved: Mutex::default(),
                },
                wake: state.outbox.wake_handle(),
                notify_id: state.outbox.notify_id(),
                admission: Mutex::default(),
                slot_freed: Notify::new(),
                instance_id: uuid::Uuid::new_v4().to_string().into(),
                outbox: state.outbox.clone(),
                limited_wake: Mutex::new(None),
                verifying: AtomicBool::new(false),
            }),
        }
    }

    /// Takes back what silent instances and ended leases hold, then claims the deliveries due
    /// now (up to `integration.dispatch.batch_size`), works them concurrently and waits until
    /// every outcome is recorded. Tests drive the dispatcher with this, one step at a time.
    ///
    /// # Errors
    /// The claim failed (database failure).
    pub async fn run_once(&self) -> anyhow::Result<RunOutcome> {
        self.upkeep(true).await;
        self.verify_endpoints().await;
        let batch = self.inner.ctx.settings.integration.dispatch.batch_size as usize;
        let (slots, mut outcome) = self.claim(batch, false).await?;
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
                self.inner.notify_id.clone(),
                shutdown.clone(),
            ))),
            Db::Sqlite { .. } => None,
        };
        // Before the first claim: say this instance is alive, and take back what dead ones held
        // (after a restart, the deliveries this process had in flight before it was killed).
        self.keep_alive_round(true).await;
        let heartbeat = tokio::spawn(self.clone().keep_alive(shutdown.clone()));
        let mut handed_off = self.take_handoffs();
        let mut tasks: JoinSet<Worked> = JoinSet::new();
        tracing::info!(instance = %self.inner.instance_id, "dispatcher started");
        // A claim is worth making after a wake-up or a poll, after a full claim that queued
        // nothing, and when a channel slot frees up while nothing is queued here. Any other
        // claim would find the channels it took rows of at their limit, and would read past
        // all their due rows to find nothing (the claim leaves such channels out in its
        // WHERE clause, after the index scan).
        let mut claim_due = true;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            for slot in self.start_queued().await {
                tasks.spawn(work(slot));
            }
            let capacity = capacity_total.saturating_sub(tasks.len());
            if capacity > 0 && claim_due {
                claim_due = false;
                match self.claim(capacity, true).await {
                    Ok((slots, outcome)) => {
                        // A full claim means more may be due: claim again before sleeping,
                        // unless its surplus is queued here (then it has its next rows).
                        claim_due = outcome.claimed == capacity && self.nothing_queued();
                        for slot in slots {
                            tasks.spawn(work(slot));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming deliveries failed; retrying after the poll interval")
                    }
                }
                if claim_due {
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => claim_due = true,
                _ = tokio::time::sleep(self.until_next_claim(poll)) => claim_due = true,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                Some(published) = handed_off.recv() => {
                    let (slots, _) = self.admit(published, true);
                    for slot in slots {
                        tasks.spawn(work(slot));
                    }
                }
                _ = self.inner.slot_freed.notified() => claim_due |= self.nothing_queued(),
            }
        }
        // No more hand-offs; what was handed off meanwhile is given back with the queue.
        self.inner.outbox.set_taker(None);
        handed_off.close();
        while let Ok(published) = handed_off.try_recv() {
            self.give_back(published).await;
        }
        self.drain(tasks, Duration::from_millis(settings.shutdown_grace_ms))
            .await;
        if let Some(listener) = listener {
            listener.abort();
        }
        heartbeat.abort();
        self.retry_unsaved().await;
        // Silent from now on: anything still leased here (a hand-off that committed after the
        // loop stopped) is taken back by the next dispatcher to look, without waiting for the
        // instance timeout.
        if let Err(err) = instances::sign_off(&self.inner.ctx.db, &self.inner.instance_id).await {
            tracing::warn!(error = %err, "could not sign this instance off; others take over after the instance timeout");
        }
        tracing::info!("dispatcher stopped");
    }

    /// The poll interval, or less when a limited channel may send again sooner. A time that
    /// has come is used once: the claim it leads to sets the next one, and a loop that cannot
    /// claim now (every slot busy, the database away) must not wake over and over for it.
    fn until_next_claim(&self, poll: Duration) -> Duration {
        let mut wake = self.inner.limited_wake.lock().expect("wake lock is never poisoned");
        match *wake {
            None => poll,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    *wake = None;
                }
                left.min(poll)
            }
        }
    }

    fn nothing_queued(&self) -> bool {
        self.inner.admission().queued.is_empty()
    }

    fn max_per_channel(&self) -> u32 {
        self.inner.ctx.settings.integration.dispatch.max_in_flight_per_channel
    }

    /// Claims up to `limit` deliveries and takes a slot for each. Rows whose channel is full
    /// are queued here until a slot frees up (`queue_surplus`, the claim loop, which would
    /// otherwise claim and give back the same rows over and over), or given back at once.
    async fn claim(&self, limit: usize, queue_surplus: bool) -> anyhow::Result<(Vec<Slot>, RunOutcome)> {
        let ctx = &self.inner.ctx;
        // Channels at their limit (or with deliveries queued here) are left out of the claim.
        let skip = self.inner.admission().full_channels(self.max_per_channel());
        let request = ClaimRequest {
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            lease_ms: i64::try_from(ctx.settings.integration.dispatch.lease_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            skip_channels: &skip,
            owner: &self.inner.instance_id,
        };
        let claimed = deliveries::claim_with_limits(&ctx.db, &request).await?;
        *self.inner.limited_wake.lock().expect("wake lock is never poisoned") =
            claimed.next_in.map(|after| Instant::now() + after);
        let claimed = claimed.deliveries;
        let mut outcome = RunOutcome {
            claimed: claimed.len(),
            ..RunOutcome::default()
        };
        let (slots, full) = self.admit(claimed, queue_surplus);
        for delivery in full {
            outcome.deferred += 1;
            self.release(delivery.id, &delivery.lease_token).await;
        }
        Ok((slots, outcome))
    }

    /// Takes a slot for each delivery whose channel has one free; queues the others (when
    /// `queue_surplus`) or returns them, to be given back.
    fn admit(&self, claimed: Vec<ClaimedDelivery>, queue_surplus: bool) -> (Vec<Slot>, Vec<ClaimedDelivery>) {
        let max_per_channel = self.max_per_channel();
        let mut slots = Vec::with_capacity(claimed.len());
        let mut full = Vec::new();
        let mut admission = self.inner.admission();
        for delivery in claimed {
            if admission.take_slot(delivery.channel_id, max_per_channel) {
                admission.leases.insert(delivery.id, delivery.lease_token.clone());
                slots.push(Slot::new(self.inner.clone(), delivery));
            } else if queue_surplus {
                admission.leases.insert(delivery.id, delivery.lease_token.clone());
                admission
                    .queued
                    .entry(delivery.channel_id)
                    .or_default()
                    .push_back((Instant::now(), delivery));
            } else {
                full.push(delivery);
            }
        }
        (slots, full)
    }

    /// Takes a slot for each queued delivery whose channel has a free one. A delivery that
    /// waited longer than [`QUEUE_MAX_WAIT`] (or half its lease, when that is shorter) is given
    /// back instead: its lease must not run out before it is sent, and it was claimed with the
    /// channel as it was then, so a channel disabled or edited meanwhile is read again by the
    /// next claim rather than long after the change.
    async fn start_queued(&self) -> Vec<Slot> {
        let max_per_channel = self.max_per_channel();
        let max_wait =
            (Duration::from_secs(self.inner.ctx.settings.integration.dispatch.lease_secs) / 2).min(QUEUE_MAX_WAIT);
        let mut slots = Vec::new();
        let mut stale = Vec::new();
        {
            let mut admission = self.inner.admission();
            if admission.queued.is_empty() {
                return slots;
            }
            let Admission { in_flight, queued, .. } = &mut *admission;
            queued.retain(|channel, waiting| {
                let count = in_flight.entry(*channel).or_insert(0);
                while *count < max_per_channel {
                    let Some((since, delivery)) = waiting.pop_front() else {
                        break;
                    };
                    if since.elapsed() > max_wait {
                        stale.push(delivery);
                        continue;
                    }
                    *count += 1;
                    slots.push(Slot::new(self.inner.clone(), delivery));
                }
                if *count == 0 {
                    in_flight.remove(channel);
                }
                !waiting.is_empty()
            });
        }
        self.give_back(stale).await;
        slots
    }

    /// Releases claimed deliveries that were not started (no attempt counted).
    async fn give_back(&self, deliveries: Vec<ClaimedDelivery>) {
        for delivery in deliveries {
            self.inner.admission().leases.remove(&delivery.id);
            self.release(delivery.id, &delivery.lease_token).await;
        }
    }

    /// Lets the outbox of this process hand deliveries over while the claim loop runs, as long
    /// as this dispatcher holds fewer than four claims' worth of deliveries.
    fn take_handoffs(&self) -> tokio::sync::mpsc::UnboundedReceiver<Vec<ClaimedDelivery>> {
        let (to, from) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::downgrade(&self.inner);
        let most = self.inner.ctx.settings.integration.dispatch.batch_size as usize * 4;
        self.inner.outbox.set_taker(Some(Taker {
            owner: self.inner.instance_id.clone(),
            lease_ms: i64::try_from(
                self.inner
                    .ctx
                    .settings
                    .integration
                    .dispatch
                    .lease_secs
                    .saturating_mul(1000),
            )
            .unwrap_or(i64::MAX),
            to,
            has_room: Arc::new(move || {
                inner
                    .upgrade()
                    .is_some_and(|inner| inner.admission().leases.len() < most)
            }),
        }));
        from
    }

    /// Gives one lease back; when the database cannot be reached, the release is kept and
    /// retried by the next heartbeat round.
    async fn release(&self, id: i64, lease_token: &str) {
        if let Err(err) = deliveries::release(&self.inner.ctx.db, id, lease_token, 0).await {
            tracing::warn!(error = %err, "could not give a lease back; retrying with the next heartbeat");
            self.inner
                .ctx
                .unsaved
                .lock()
                .expect("unsaved lock is never poisoned")
                .push(Unsaved::Release {
                    id,
                    lease_token: lease_token.to_string(),
                });
        }
    }

    /// Sends heartbeats until `shutdown`, each followed by the round's upkeep.
    async fn keep_alive(self, shutdown: CancellationToken) {
        let dispatch = &self.inner.ctx.settings.integration.dispatch;
        let every = Duration::from_secs(dispatch.instance_timeout_secs) / 5;
        let lease = Duration::from_secs(dispatch.lease_secs);
        let mut leases_checked = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let check_leases = leases_checked.elapsed() >= lease / 2;
            if check_leases {
                leases_checked = Instant::now();
            }
            self.keep_alive_round(check_leases).await;
        }
    }

    /// One heartbeat round: the heartbeat, then the [`Dispatcher::upkeep`], then (in a task of
    /// its own, so that a slow receiver never delays a heartbeat) the validation handshakes
    /// that are due.
    async fn keep_alive_round(&self, check_leases: bool) {
        if let Err(err) = instances::heartbeat(&self.inner.ctx.db, &self.inner.instance_id).await {
            tracing::warn!(error = %err, "dispatcher heartbeat failed");
            return;
        }
        self.upkeep(check_leases).await;
        if !self.inner.verifying.swap(true, Ordering::SeqCst) {
            let this = self.clone();
            tokio::spawn(async move {
                this.verify_endpoints().await;
                this.inner.verifying.store(false, Ordering::SeqCst);
            });
        }
    }

    /// Tries the validation handshake of the channels waiting for it (see
    /// `domain::channel::validation`); one that verifies wakes the claim loop.
    async fn verify_endpoints(&self) {
        let ctx = &self.inner.ctx;
        crate::domain::channel::validation::verify_due(crate::domain::channel::validation::Verifier {
            db: &ctx.db,
            channels: &ctx.channels,
            secret_box: &ctx.secret_box,
            outbox: &ctx.outbox,
            retry_secs: ctx.settings.integration.webhook.validation_retry_secs,
        })
        .await;
    }

    /// The bookkeeping that could not be stored before, then the deliveries of silent
    /// instances and (when `check_leases`) of ended leases. Anything given back wakes the claim
    /// loop.
    async fn upkeep(&self, check_leases: bool) {
        let ctx = &self.inner.ctx;
        self.retry_unsaved().await;
        let timeout_ms = i64::try_from(
            ctx.settings
                .integration
                .dispatch
                .instance_timeout_secs
                .saturating_mul(1000),
        )
        .unwrap_or(i64::MAX);
        let mut given_back = 0;
        match instances::take_back(&ctx.db, timeout_ms).await {
            Ok(taken) => {
                if taken.deliveries > 0 || taken.dead_instances > 0 {
                    tracing::warn!(
                        dead_instances = taken.dead_instances,
                        deliveries = taken.deliveries,
                        "took back the in-flight deliveries of dispatchers that stopped sending heartbeats"
                    );
                }
                given_back += taken.deliveries;
            }
            Err(err) => tracing::warn!(error = %err, "could not look for silent dispatchers"),
        }
        if check_leases {
            let held: Vec<i64> = self.inner.admission().leases.keys().copied().collect();
            match instances::take_back_expired(&ctx.db, &held).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(deliveries = n, "took back deliveries whose lease ended");
                    given_back += n;
                }
                Err(err) => tracing::warn!(error = %err, "could not look for ended leases"),
            }
        }
        if given_back > 0 {
            self.inner.wake.notify_one();
        }
    }

    /// Stores the outcomes and releases that failed earlier (the database was unreachable),
    /// each still guarded by its lease; keeps those that fail again.
    async fn retry_unsaved(&self) {
        let ctx = &self.inner.ctx;
        let pending = std::mem::take(&mut *ctx.unsaved.lock().expect("unsaved lock is never poisoned"));
        if pending.is_empty() {
            return;
        }
        let mut outcomes = Vec::new();
        let mut still = Vec::new();
        for unsaved in pending {
            match unsaved {
                Unsaved::Outcome(record) => outcomes.push(record),
                Unsaved::Release { id, lease_token } => {
                    if deliveries::release(&ctx.db, id, &lease_token, 0).await.is_err() {
                        still.push(Unsaved::Release { id, lease_token });
                    }
                }
            }
        }
        if !outcomes.is_empty() {
            match deliveries::record_outcomes(&ctx.db, &outcomes).await {
                Ok(applied) => tracing::info!(
                    stored = applied.iter().filter(|a| **a).count(),
                    lease_lost = applied.iter().filter(|a| !**a).count(),
                    "stored delivery outcomes that could not be stored before"
                ),
                Err(_) => still.extend(outcomes.into_iter().map(Unsaved::Outcome)),
            }
        }
        ctx.unsaved
            .lock()
            .expect("unsaved lock is never poisoned")
            .extend(still);
    }

    /// Gives queued deliveries back at once, then waits up to `grace` for running deliveries,
    /// then stops the rest and releases their leases.
    async fn drain(&self, mut tasks: JoinSet<Worked>, grace: Duration) {
        let queued = std::mem::take(&mut self.inner.admission().queued);
        let queued: Vec<ClaimedDelivery> = queued.into_values().flatten().map(|(_, delivery)| delivery).collect();
        self.give_back(queued).await;
        let finished = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_ok() {
            return;
        }
        let leftovers: Vec<(i64, String)> = self
            .inner
            .admission()
            .leases
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
                Err(err) => {
                    tracing::warn!(error = %err, "could not give a lease back at shutdown; another instance takes it back after the instance timeout")
                }
            }
        }
        tracing::info!(released, "in-flight deliveries given back at shutdown");
    }
}

async fn work(slot: Slot) -> Worked {
    worker::work(&slot.inner.ctx, slot.delivery.clone(), || slot.free_channel()).await
}
