//! Channel health and deliveries over time, as the operator console shows them: per channel
//! the attempts of the last hour and the last day with their success rate, the last success,
//! the last failure with its error, the failures in a row and a state badge; and attempt
//! outcomes per hour over the last day, for the chart.
//!
//! Counted are attempts (each try of a delivery), from the rollup the dispatcher keeps where it
//! records their outcomes (`store::health`), so that none of this reads the deliveries log.
//!
//! The windows, with the five-minute intervals of the rollup: "the last hour" is the current
//! interval and the eleven before it (55 to 60 minutes), and "the last 24 hours" is the current
//! clock hour (UTC) and the 23 before it (23 to 24 hours), the same hours as the chart's 24
//! bars, so that a channel's day figures and its chart add up to the same totals.

use std::collections::HashMap;

use serde::Serialize;

use crate::auth::{Authority, Principal};
use crate::domain::error::DomainError;
use crate::domain::{ChannelKey, Scope};
use crate::state::AppState;
use crate::store::health::{self as store_health, HealthRow, HourRow, Windows, BUCKET_MS, HOUR_MS};
use crate::store::{self, rfc3339_ms};

/// The badge of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Enabled, and its latest attempt delivered (or it has not had one yet).
    Healthy,
    /// Enabled, and its latest attempt did not deliver.
    Failing,
    /// Disabled: nothing is sent.
    Disabled,
}

impl HealthState {
    /// The badge rule. A disabled channel is `disabled`, whatever its history. An enabled one is
    /// `failing` as soon as its most recent attempt did not deliver (`consecutive_failures >= 1`,
    /// a retryable failure as well as a rejection), and `healthy` again after the next attempt
    /// that delivers. One failure is enough on purpose: the page is for noticing a receiver that
    /// stopped accepting, and the count of failures in a row beside the badge tells a blip from
    /// an outage. A channel without any attempt yet is `healthy`: nothing has failed.
    pub fn of(enabled: bool, consecutive_failures: i64) -> HealthState {
        match (enabled, consecutive_failures) {
            (false, _) => HealthState::Disabled,
            (true, n) if n >= 1 => HealthState::Failing,
            (true, _) => HealthState::Healthy,
        }
    }

    /// The badge's text, also its CSS class suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Failing => "failing",
            HealthState::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Attempts in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    /// All attempts.
    pub attempts: i64,
    /// Those that delivered.
    pub delivered: i64,
}

impl Window {
    /// The share of attempts that delivered, in whole percent rounded down (so that 100 %
    /// means that none failed); `None` without attempts.
    pub fn success_percent(&self) -> Option<i64> {
        (self.attempts > 0).then(|| self.delivered * 100 / self.attempts)
    }
}

/// The health of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelHealth {
    /// The badge.
    pub state: HealthState,
    /// The last hour.
    pub last_hour: Window,
    /// The last 24 hours.
    pub last_day: Window,
    /// When the last attempt that delivered started (RFC 3339).
    pub last_success_at: Option<String>,
    /// When the last attempt that did not deliver started (RFC 3339).
    pub last_failure_at: Option<String>,
    /// Its error.
    pub last_error: Option<String>,
    /// Attempts in a row that did not deliver, since the last one that did.
    pub consecutive_failures: i64,
}

impl From<&HealthRow> for ChannelHealth {
    fn from(row: &HealthRow) -> Self {
        ChannelHealth {
            state: HealthState::of(row.enabled, row.consecutive_failures),
            last_hour: Window {
                attempts: row.delivered_short + row.failed_short,
                delivered: row.delivered_short,
            },
            last_day: Window {
                attempts: row.delivered_long + row.failed_long,
                delivered: row.delivered_long,
            },
            last_success_at: row.last_success_at.map(rfc3339_ms),
            last_failure_at: row.last_failure_at.map(rfc3339_ms),
            last_error: row.last_error.clone(),
            consecutive_failures: row.consecutive_failures,
        }
    }
}

/// The number of one-hour intervals of the chart.
pub const HOURS: usize = 24;

/// The first hour of the day window at `now`: the start of the current clock hour, less 23.
fn day_from(now: i64) -> i64 {
    now - now.rem_euclid(HOUR_MS) - (HOURS as i64 - 1) * HOUR_MS
}

/// The windows of the health figures at `now` (see the module documentation).
pub fn windows(now: i64) -> Windows {
    Windows {
        short_from: now - now.rem_euclid(BUCKET_MS) - 11 * BUCKET_MS,
        long_from: day_from(now),
    }
}

/// Attempt outcomes of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCount {
    /// The hour's start, epoch ms.
    pub start: i64,
    /// Attempts that delivered.
    pub delivered: i64,
    /// Attempts that did not deliver and will be retried.
    pub retrying: i64,
    /// Attempts after which their delivery failed (rejected, or out of attempts).
    pub failed: i64,
}

/// The last 24 hours, oldest first: always [`HOURS`] entries, the last one the current hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// One entry per hour.
    pub hours: Vec<HourCount>,
}

impl Activity {
    /// The 24 hours ending with the one of `now`, filled from `rows` (hours missing there had no
    /// attempts; rows outside the window are ignored).
    pub fn from_rows(rows: &[HourRow], now: i64) -> Activity {
        let from = day_from(now);
        let hours = (0..HOURS as i64)
            .map(|i| {
                let start = from + i * HOUR_MS;
                rows.iter()
                    .find(|r| r.hour == start)
                    .map(|r| HourCount {
                        start,
                        delivered: r.delivered,
                        retrying: r.retrying,
                        failed: r.failed,
                    })
                    .unwrap_or(HourCount {
                        start,
                        ..HourCount::default()
                    })
            })
            .collect();
        Activity { hours }
    }

    /// The totals of the day: (delivered, retrying, failed).
    pub fn totals(&self) -> (i64, i64, i64) {
        self.hours.iter().fold((0, 0, 0), |(d, r, f), h| {
            (d + h.delivered, r + h.retrying, f + h.failed)
        })
    }
}

/// The health of every channel of the scope, by channel key. Needs what the channel list needs.
///
/// # Errors
/// 403/404 as the channel list; database failure.
pub async fn of_channels(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
) -> Result<HashMap<ChannelKey, ChannelHealth>, DomainError> {
    super::super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelRead).await?;
    let rows = store_health::health(&state.db, scope, None, windows(store::now_ms())).await?;
    Ok(rows
        .iter()
        .map(|row| (row.channel_external_key.clone(), ChannelHealth::from(row)))
        .collect())
}

/// The health of one channel of the scope. Needs what the channel list needs.
///
/// # Errors
/// 403/404 as the channel list; 404 for a channel that is not in the scope; database failure.
pub async fn of_channel(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    key: &ChannelKey,
) -> Result<ChannelHealth, DomainError> {
    super::super::scope::authorize(state, principal, scope, Authority::WalletIntegrationChannelRead).await?;
    let rows = store_health::health(&state.db, scope, Some(key), windows(store::now_ms())).await?;
    rows.first()
        .map(ChannelHealth::from)
        .ok_or_else(|| super::channel_not_found(key))
}

/// Attempt outcomes per hour over the last 24 hours, of the channels of the scope or of one
/// channel. Needs what the deliveries log needs (these are its figures).
///
/// # Errors
/// 403/404 as the deliveries log; database failure.
pub async fn activity(
    state: &AppState,
    principal: &Principal,
    scope: &Scope,
    channel: Option<&ChannelKey>,
) -> Result<Activity, DomainError> {
    super::super::scope::authorize(state, principal, scope, Authority::WalletIntegrationDeliveryRead).await?;
    let now = store::now_ms();
    let rows = store_health::hourly(&state.db, scope, channel, day_from(now)).await?;
    Ok(Activity::from_rows(&rows, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_badge_rule() {
        assert_eq!(HealthState::of(false, 0), HealthState::Disabled);
        assert_eq!(HealthState::of(false, 7), HealthState::Disabled);
        assert_eq!(HealthState::of(true, 0), HealthState::Healthy);
        assert_eq!(HealthState::of(true, 1), HealthState::Failing);
        assert_eq!(HealthState::of(true, 40), HealthState::Failing);
    }

    #[test]
    fn success_rates_round_down_and_need_attempts() {
        let w = |attempts, delivered| Window { attempts, delivered };
        assert_eq!(w(0, 0).success_percent(), None);
        assert_eq!(w(3, 2).success_percent(), Some(66));
        assert_eq!(w(1000, 999).success_percent(), Some(99));
        assert_eq!(w(5, 5).success_percent(), Some(100));
    }

    #[test]
    fn the_windows_are_twelve_intervals_and_twenty_four_clock_hours() {
        let now = 1_764_765_000_000 + 17 * 60_000 + 12_345; // some minutes into an hour
        let w = windows(now);
        assert_eq!(w.short_from % BUCKET_MS, 0);
        assert!(now - w.short_from > 55 * 60_000 && now - w.short_from <= 60 * 60_000);
        assert_eq!(w.long_from % HOUR_MS, 0);
        assert!(now - w.long_from > 23 * HOUR_MS && now - w.long_from <= 24 * HOUR_MS);
    }

    #[test]
    fn activity_has_every_hour_oldest_first_and_ignores_others() {
        let now = 100 * HOUR_MS + 5;
        let rows = [
            HourRow {
                hour: 100 * HOUR_MS,
                delivered: 3,
                retrying: 1,
                failed: 0,
            },
            HourRow {
                hour: 77 * HOUR_MS,
                delivered: 1,
                retrying: 0,
                failed: 2,
            },
            HourRow {
                hour: 76 * HOUR_MS,
                delivered: 50,
                retrying: 50,
                failed: 50,
            },
        ];
        let activity = Activity::from_rows(&rows, now);
        assert_eq!(activity.hours.len(), HOURS);
        assert_eq!(activity.hours[0].start, 77 * HOUR_MS);
        assert_eq!(activity.hours[0].failed, 2);
        assert_eq!(activity.hours[23].start, 100 * HOUR_MS);
        assert_eq!(activity.hours[23].delivered, 3);
        assert_eq!(activity.totals(), (4, 1, 2));
    }
}
