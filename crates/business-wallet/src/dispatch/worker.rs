//! One claimed delivery from start to end: open the channel's secrets, hand the message to the
//! channel, let the retry policy decide, and record the outcome under the lease.
//!
//! Nothing here knows HTTP or a broker: the channel returns an [`Attempt`] whose [`Outcome`] the
//! retry policy turns into a [`Resolution`], and the store turns that into the delivery's state.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::FutureExt as _;
use tokio::sync::oneshot;

use super::retry;
use crate::channels::{Attempt, ChannelConfig, ChannelRegistry, ChannelSecrets, OutboundMessage, Outcome};
use crate::config::Settings;
use crate::crypto::SecretBox;
use crate::domain::channel::ladder::{self, ChannelState, Ladder};
use crate::domain::delivery::Resolution;
use crate::events::CloudEvent;
use crate::outbox::Outbox;
use crate::store::deliveries::{self, AttemptRow, ClaimedDelivery, OutcomeRecord};
use crate::store::{now_ms, Db};

/// What the dispatcher needs to work a delivery; shared by all tasks.
#[derive(Debug)]
pub(crate) struct WorkerContext {
    pub(crate) db: Db,
    pub(crate) secret_box: Arc<SecretBox>,
    pub(crate) channels: ChannelRegistry,
    pub(crate) settings: Arc<Settings>,
    pub(crate) recorder: Recorder,
    /// The outbox the failure ladder publishes its events through.
    pub(crate) outbox: Outbox,
    /// Bookkeeping that could not be stored (the database was unreachable), retried by the
    /// dispatcher's heartbeat rounds while the leases are still ours.
    pub(crate) unsaved: Mutex<Vec<Unsaved>>,
}

/// A statement the dispatcher still owes the database.
#[derive(Debug)]
pub(crate) enum Unsaved {
    /// An attempt's outcome.
    Outcome(OutcomeRecord),
    /// A lease to give back without an attempt.
    Release {
        /// Delivery row id.
        id: i64,
        /// The lease.
        lease_token: String,
    },
}

/// Most outcomes stored by one transaction.
const MAX_OUTCOMES_PER_COMMIT: usize = 256;

/// Stores outcomes by group commit: the first task with an outcome to store writes it together
/// with every outcome that arrived while the previous transaction was running, so concurrent
/// deliveries share one commit instead of paying one each.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    queue: Mutex<RecorderQueue>,
}

#[derive(Debug, Default)]
struct RecorderQueue {
    waiting: Vec<(OutcomeRecord, oneshot::Sender<Result<bool, String>>)>,
    /// A task is writing; the others wait for their answer.
    writing: bool,
}

/// Clears the writing flag however the writing task ends (a dispatcher aborted at shutdown
/// included), failing the outcomes still queued so that no task waits forever; their leases
/// run out as after any storage failure.
struct WritingGuard<'a>(&'a Recorder, bool);

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            return;
        }
        let mut queue = self.0.queue.lock().expect("recorder lock is never poisoned");
        queue.writing = false;
        queue.waiting.clear();
    }
}

impl Recorder {
    /// Stores one outcome (with others queued meanwhile); `Ok(false)` when the lease was lost.
    async fn record(&self, db: &Db, record: OutcomeRecord) -> Result<bool, String> {
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().expect("recorder lock is never poisoned");
            queue.waiting.push((record, answer));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            let mut guard = WritingGuard(self, true);
            loop {
                let batch: Vec<_> = {
                    let mut queue = self.queue.lock().expect("recorder lock is never poisoned");
                    if queue.waiting.is_empty() {
                        // Handing over under the lock: whoever queues next writes.
                        queue.writing = false;
                        guard.1 = false;
                        break;
                    }
                    let take = queue.waiting.len().min(MAX_OUTCOMES_PER_COMMIT);
                    queue.waiting.drain(..take).collect()
                };
                let (records, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match deliveries::record_outcomes(db, &records).await {
                    Ok(applied) => {
                        for (answer, applied) in answers.into_iter().zip(applied) {
                            let _ = answer.send(Ok(applied));
                        }
                    }
                    Err(err) => {
                        let message = err.to_string();
                        for answer in answers {
                            let _ = answer.send(Err(message.clone()));
                        }
                    }
                }
            }
            drop(guard);
        }
        answered
            .await
            .unwrap_or_else(|_| Err("the outcome was not written (dispatcher stopping)".into()))
    }
}

/// Why an attempt's [`Resolution`] did not become its delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Another dispatcher took the delivery over meanwhile; the result was dropped.
    LeaseLost,
    /// The database could not be reached; the outcome is stored by a later heartbeat round
    /// while the lease lasts, and otherwise the delivery comes back when the lease runs out.
    DatabaseError,
}

/// How working one delivery ended: the resolution now stored, or why it is not.
pub(crate) type Worked = Result<Resolution, NotStored>;

/// Works one claimed delivery to its recorded outcome; `attempt_over` runs once the channel
/// has been tried, before the outcome is stored.
pub(crate) async fn work(ctx: &WorkerContext, delivery: ClaimedDelivery, attempt_over: impl FnOnce()) -> Worked {
    let started_at = now_ms();
    let clock = Instant::now();
    let attempt_number = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
    let attempt = attempt(ctx, &delivery, attempt_number, started_at).await;
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    attempt_over();

    if let Some(pause) = retry::channel_pause(&attempt.outcome, &ctx.settings.integration.retry) {
        // The receiver asked for a pause: the whole channel waits, on every instance.
        let pause_ms = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX);
        match crate::store::limits::throttle(&ctx.db, delivery.channel_id, pause_ms).await {
            Ok(()) => {
                tracing::info!(channel = %delivery.channel_external_key, pause_ms, "receiver asked for a pause; the channel waits")
            }
            Err(err) => {
                tracing::warn!(channel = %delivery.channel_external_key, error = %err, "could not store the pause the receiver asked for")
            }
        }
    }
    let max_attempts = u32::try_from(delivery.max_attempts).unwrap_or(u32::MAX);
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    let mut resolution = retry::next(
        attempt_number,
        max_attempts,
        &attempt.outcome,
        &ctx.settings.integration.retry,
        jitter,
    );
    if gone_from_a_verified_receiver(&delivery, &attempt) {
        // The receiver says it no longer takes events (the webhook specification's 410 Gone):
        // the channel is disabled first, then the delivery waits PENDING with the others, to go
        // out when an operator enables the channel again.
        crate::domain::channel::validation::disable_by_receiver(
            &ctx.db,
            delivery.channel_id,
            delivery.delivery_external_key.as_ref(),
            GONE,
        )
        .await;
        resolution = Resolution::Retry {
            delay: std::time::Duration::ZERO,
        };
    }
    let row = attempt_row(&attempt, delivery.attempts, started_at, duration_ms);
    let response_status = row.response_status;
    let error = row.error.clone();
    let record = OutcomeRecord {
        id: delivery.id,
        lease_token: delivery.lease_token.clone(),
        resolution,
        attempt: row,
    };
    let recorded = ctx.recorder.record(&ctx.db, record.clone()).await;
    let worked = match recorded {
        Ok(true) => {
            // A failure may move the channel down the failure ladder, and a success of a
            // FAILING channel back up; a success of an ACTIVE one changes nothing.
            if resolution != Resolution::Delivered
                || ChannelState::parse(&delivery.channel_delivery_state) != ChannelState::Active
            {
                let rules = &ctx.settings.integration.failure;
                ladder::advance(
                    Ladder {
                        db: &ctx.db,
                        outbox: &ctx.outbox,
                        rules,
                    },
                    &[delivery.channel_id],
                )
                .await;
            }
            // The next delivery of the wallet may go now that this one is out of the way
            // (delivered, or FAILED: then it waits for a replay or a dismissal).
            if delivery.channel_ordering == crate::store::events::PER_WALLET {
                ctx.outbox.committed();
            }
            Ok(resolution)
        }
        Ok(false) => Err(NotStored::LeaseLost),
        Err(err) => {
            tracing::error!(delivery = %delivery.delivery_external_key, error = %err, "delivery outcome could not be stored; retrying with the next heartbeat");
            ctx.unsaved
                .lock()
                .expect("unsaved lock is never poisoned")
                .push(Unsaved::Outcome(record));
            return Err(NotStored::DatabaseError);
        }
    };
    let outcome = attempt.outcome.name();
    crate::metrics::attempt(&delivery.channel_type, outcome);
    if worked == Ok(Resolution::Delivered) {
        crate::metrics::delivered(now_ms() - delivery.created_at);
    }
    tracing::info!(
        delivery = %delivery.delivery_external_key,
        channel = %delivery.channel_external_key,
        event_id = %delivery.event.event_id,
        event_type = %delivery.event.event_type,
        correlation_id = %delivery.event.correlation_id,
        traceparent = delivery.event.traceparent.as_deref().unwrap_or(""),
        attempt = attempt_number,
        outcome,
        status = response_status,
        error = error.as_deref().unwrap_or(""),
        duration_ms,
        result = %result_label(worked),
        "delivery attempt"
    );
    worked
}

/// The status with which a receiver says it no longer takes events.
const GONE: u16 = 410;

/// Whether the receiver of a webhook channel with `validationHandshake` answered 410 Gone.
fn gone_from_a_verified_receiver(delivery: &ClaimedDelivery, attempt: &Attempt) -> bool {
    attempt.outcome.response().is_some_and(|r| r.status == GONE)
        && serde_json::from_str::<serde_json::Value>(&delivery.channel_config)
            .is_ok_and(|config| crate::domain::channel::validation::required(&delivery.channel_type, &config))
}

/// The `result` of an attempt's log line.
fn result_label(worked: Worked) -> &'static str {
    match worked {
        Ok(Resolution::Delivered) => "Delivered",
        Ok(Resolution::Retry { .. }) => "Retried",
        Ok(Resolution::Failed) => "Failed",
        Err(NotStored::LeaseLost) => "LeaseLost",
        Err(NotStored::DatabaseError) => "NotRecorded",
    }
}

/// Builds the message and lets the channel send it. Problems found before sending become
/// outcomes too, so they are logged in the deliveries view like any other attempt.
async fn attempt(ctx: &WorkerContext, delivery: &ClaimedDelivery, number: u32, now: i64) -> Attempt {
    let Some(channel) = ctx.channels.get(&delivery.channel_type) else {
        // Another instance, built with that type, may still deliver it.
        return Attempt::without_request(Outcome::Retryable {
            error: format!(
                "channel type {} is not available on this instance",
                delivery.channel_type
            ),
            retry_after: None,
            response: None,
        });
    };
    let secrets = match ChannelSecrets::open_stored(&ctx.secret_box, delivery.channel_secrets.as_deref()) {
        Ok(secrets) => secrets,
        // A wrong encryption key is an operator error that can be fixed: keep retrying.
        Err(err) => {
            return Attempt::without_request(Outcome::Retryable {
                error: format!("channel secrets cannot be opened: {err}"),
                retry_after: None,
                response: None,
            })
        }
    };
    let config = match serde_json::from_str(&delivery.channel_config) {
        Ok(config) => config,
        Err(err) => return Attempt::rejected_before_request(format!("channel configuration is not JSON: {err}")),
    };
    let envelope = match CloudEvent::from_row(&delivery.event) {
        Ok(envelope) => envelope,
        Err(err) => return Attempt::rejected_before_request(format!("stored event data is not JSON: {err}")),
    };
    let channel_config = ChannelConfig {
        channel_external_key: delivery.channel_external_key.to_string(),
        config,
        secrets,
    };
    let message = OutboundMessage {
        envelope: &envelope,
        body: delivery.event.data.as_bytes(),
        signing_secrets: channel_config.secrets.signing_secrets(now),
        attempt: number,
    };
    // A panicking adapter (custom adapters are the embedding application's code) must not take
    // the delivery or the dispatcher with it. The attempt is caught here, logged with its
    // channel and delivery, and recorded as a retryable failure, so the delivery is tried again
    // after its back-off like after any other (within its attempt limit) and its lease is not
    // left to run out; the dispatcher goes on with the other deliveries. Unwind safety: the
    // adapter only borrows the message and the configuration built above, dropped afterwards.
    let sent = std::panic::AssertUnwindSafe(async { channel.deliver(&message, &channel_config).await })
        .catch_unwind()
        .await;
    sent.unwrap_or_else(|panic| {
        let reason = crate::telemetry::panic_message(&*panic);
        tracing::error!(
            delivery = %delivery.delivery_external_key,
            channel = %delivery.channel_external_key,
            channel_type = %delivery.channel_type,
            panic = %reason,
            "the channel adapter panicked during a delivery attempt"
        );
        Attempt::without_request(Outcome::Retryable {
            error: format!("the channel adapter panicked: {reason}"),
            retry_after: None,
            response: None,
        })
    })
}

fn attempt_row(attempt: &Attempt, number: i64, started_at: i64, duration_ms: i64) -> AttemptRow {
    let response = attempt.outcome.response();
    AttemptRow {
        attempt: number,
        started_at,
        duration_ms,
        outcome: attempt.outcome.kind(),
        request: attempt
            .request
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("a request record serialises")),
        response_status: response.map(|r| i64::from(r.status)),
        response_headers: response.map(|r| serde_json::to_string(&r.headers).expect("headers serialise")),
        response_body: response.map(|r| r.body_excerpt.clone()),
        error: attempt.outcome.error().map(str::to_string),
    }
}
