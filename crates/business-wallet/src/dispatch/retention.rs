//! The retention job: removes DELIVERED and FAILED deliveries (and their attempts) once they
//! are older than configured, then events that no delivery refers to any more. DISMISSED
//! deliveries are kept. Runs in batches so that no statement holds locks for long. It also
//! drops the channel health intervals older than two days (the pages read one).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RetentionSettings;
use crate::domain::delivery::DeliveryState;
use crate::store::{self, deliveries, Db};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What one run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// DELIVERED deliveries removed.
    pub delivered: u64,
    /// FAILED deliveries removed.
    pub failed: u64,
    /// Events removed.
    pub events: u64,
}

/// One complete clean-up at time `now` (epoch ms).
///
/// # Errors
/// Database failure; what was removed before it stays removed.
pub async fn run_once(db: &Db, settings: &RetentionSettings, now: i64) -> Result<Purged, sqlx::Error> {
    let batch = i64::from(settings.batch_size);
    let delivered_before = now - i64::from(settings.delivered_days) * DAY_MS;
    let failed_before = now - i64::from(settings.failed_days) * DAY_MS;
    let mut purged = Purged::default();
    loop {
        let n = deliveries::purge_finished(db, DeliveryState::Delivered, delivered_before, batch).await?;
        purged.delivered += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let n = deliveries::purge_finished(db, DeliveryState::Failed, failed_before, batch).await?;
        purged.failed += n;
        if n < batch as u64 {
            break;
        }
    }
    let events_before = delivered_before.min(failed_before);
    loop {
        let n = deliveries::purge_orphan_events(db, events_before, batch).await?;
        purged.events += n;
        if n < batch as u64 {
            break;
        }
    }
    store::health::purge_activity(db, now - 2 * DAY_MS).await?;
    Ok(purged)
}

/// Runs [`run_once`] every `interval_secs` until `shutdown`.
pub async fn run(db: Db, settings: RetentionSettings, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(settings.interval_secs));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        match run_once(&db, &settings, store::now_ms()).await {
            Ok(purged) if purged != Purged::default() => tracing::info!(?purged, "old deliveries removed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "retention run failed; trying again later"),
        }
    }
}
