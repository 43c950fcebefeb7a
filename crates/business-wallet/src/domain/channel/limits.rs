//! A channel's rate and concurrency limits: what a body may set, the defaults, and the columns
//! they are stored in. The dispatchers enforce them together, through the database (see
//! `store::limits`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::DomainError;

/// The most deliveries a second a channel may be limited to.
pub const MAX_RATE: f64 = 10_000.0;
/// The largest burst.
pub const MAX_BURST: u32 = 10_000;
/// The largest in-flight limit.
pub const MAX_IN_FLIGHT: u32 = 1_000;

/// How fast and how many at once a channel's deliveries may go out, counted over every
/// dispatcher instance sharing the database. Each field is optional; `{}` and null mean no
/// limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelLimits {
    /// Most deliveries a second (above 0, at most 10000; fractions allowed: 0.5 is one every
    /// two seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<f64>,
    /// Most deliveries sent at once within that rate after a quiet spell (1 to 10000; default
    /// a tenth of a second's worth, at least 1). Without `eventsPerSecond` it has nothing to
    /// shape and is not stored.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_number")]
    pub burst: Option<u32>,
    /// Most deliveries in flight at once (1 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_number")]
    pub max_in_flight: Option<u32>,
}

/// A whole number that JSON may write with a zero fraction (`8.0`), as JSON Schema's `integer`
/// allows; null is none. Anything above `u32::MAX` reads as `u32::MAX`, which the range checks
/// then refuse.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f.min(u64::MAX as f64) as u64)
    });
    whole
        .map(|n| Some(u32::try_from(n).unwrap_or(u32::MAX)))
        .ok_or_else(|| D::Error::custom(format!("invalid value: `{number}`, expected a whole number")))
}

/// The limit columns of a channel row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitColumns {
    /// `rate_per_sec`.
    pub rate_per_sec: Option<f64>,
    /// `rate_burst`.
    pub rate_burst: Option<i32>,
    /// `max_in_flight`.
    pub max_in_flight: Option<i32>,
}

/// The burst of a rate limit that names none: a tenth of a second's worth, at least one.
pub fn default_burst(events_per_second: f64) -> u32 {
    // At most MAX_RATE / 10, so the conversion never saturates.
    ((events_per_second / 10.0).ceil() as u32).max(1)
}

impl ChannelLimits {
    /// Checks a body's limits (`None`: none set) and gives the columns to store, with the
    /// default burst filled in.
    ///
    /// # Errors
    /// A value out of range (400, naming the field).
    pub fn columns(limits: Option<&ChannelLimits>) -> Result<LimitColumns, DomainError> {
        let Some(limits) = limits else {
            return Ok(LimitColumns::default());
        };
        let rate = match limits.events_per_second {
            None => None,
            Some(rate) if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE => Some(rate),
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "limits.eventsPerSecond",
                    format!("must be above 0 and at most {MAX_RATE}"),
                ))
            }
        };
        let burst = match (limits.burst, rate) {
            (Some(burst), Some(_)) if (1..=MAX_BURST).contains(&burst) => Some(burst),
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid_field(
                    "limits.burst",
                    format!("must be between 1 and {MAX_BURST}"),
                ))
            }
            // A burst only shapes a rate: without one there is nothing to store.
            (Some(_), None) => None,
            (None, Some(rate)) => Some(default_burst(rate)),
            (None, None) => None,
        };
        let max_in_flight = match limits.max_in_flight {
            None => None,
            Some(n) if (1..=MAX_IN_FLIGHT).contains(&n) => Some(n),
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "limits.maxInFlight",
                    format!("must be between 1 and {MAX_IN_FLIGHT}"),
                ))
            }
        };
        Ok(LimitColumns {
            rate_per_sec: rate,
            rate_burst: burst.map(|b| b as i32),
            max_in_flight: max_in_flight.map(|n| n as i32),
        })
    }

    /// The limits stored in a row's columns; `None` when it has none.
    pub fn from_columns(columns: LimitColumns) -> Option<ChannelLimits> {
        let limits = ChannelLimits {
            events_per_second: columns.rate_per_sec,
            burst: columns.rate_per_sec.and(columns.rate_burst).map(|b| b.max(1) as u32),
            max_in_flight: columns.max_in_flight.map(|n| n.max(1) as u32),
        };
        (limits != ChannelLimits::default()).then_some(limits)
    }
}

/// A rate limit as the claim applies it: the generic cell rate algorithm, over the channel's
/// theoretical arrival time (TAT, in microseconds). A delivery conforms when the TAT is at most
/// `tolerance` ahead of now; each one taken moves the TAT on by `interval`. Over any span of
/// time, no more than its length's worth of the rate plus one burst go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Microseconds between two deliveries at the rate.
    pub interval_us: i64,
    /// How far ahead of now the TAT may be: the burst less one, in intervals.
    pub tolerance_us: i64,
}

impl Gcra {
    /// The limit of `rate` deliveries a second, `burst` at once.
    pub fn new(rate: f64, burst: i32) -> Gcra {
        let interval_us = (1_000_000.0 / rate.clamp(1e-6, MAX_RATE)).round().max(1.0) as i64;
        Gcra {
            interval_us,
            tolerance_us: interval_us.saturating_mul(i64::from(burst.max(1) - 1)),
        }
    }

    /// How many deliveries may go at `now`, given the stored TAT.
    pub fn available(&self, tat_us: i64, now_us: i64) -> i64 {
        let tat = tat_us.max(now_us);
        let room = now_us + self.tolerance_us - tat;
        if room < 0 {
            0
        } else {
            room / self.interval_us + 1
        }
    }

    /// The TAT once `taken` deliveries went at `now`.
    pub fn take(&self, tat_us: i64, now_us: i64, taken: i64) -> i64 {
        tat_us
            .max(now_us)
            .saturating_add(taken.saturating_mul(self.interval_us))
    }

    /// How long after `now` the next delivery may go, in microseconds (0: now).
    pub fn next_in(&self, tat_us: i64, now_us: i64) -> i64 {
        (tat_us - self.tolerance_us - now_us).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_allows_one_burst_then_one_per_interval() {
        let gcra = Gcra::new(50.0, 5);
        assert_eq!(gcra.interval_us, 20_000);
        let now = 1_000_000_000;
        // A quiet channel may send its burst at once, then nothing until an interval passed.
        assert_eq!(gcra.available(0, now), 5);
        let tat = gcra.take(0, now, 5);
        assert_eq!(gcra.available(tat, now), 0);
        assert_eq!(gcra.next_in(tat, now), 20_000);
        assert_eq!(gcra.available(tat, now + 19_999), 0);
        assert_eq!(gcra.available(tat, now + 20_000), 1);
        // Taking fewer than available keeps the rest for later.
        let tat = gcra.take(tat, now + 60_000, 1);
        assert_eq!(gcra.available(tat, now + 60_000), 2);
    }

    #[test]
    fn taking_everything_available_never_beats_the_rate_plus_one_burst() {
        let gcra = Gcra::new(50.0, 5);
        let (mut tat, mut sent) = (0, 0);
        // Claims every 7 ms for 20 s, each taking all it may.
        for step in 0..=(20_000_000 / 7_000) {
            let now = step * 7_000;
            let n = gcra.available(tat, now);
            tat = gcra.take(tat, now, n);
            sent += n;
        }
        assert!(sent <= 50 * 20 + 5, "{sent}");
        assert!(sent >= 50 * 20, "{sent}");
    }

    fn columns(json: &str) -> Result<LimitColumns, DomainError> {
        let limits: ChannelLimits = serde_json::from_str(json).unwrap();
        ChannelLimits::columns(Some(&limits))
    }

    #[test]
    fn a_rate_without_a_burst_gets_a_tenth_of_a_second() {
        let c = columns(r#"{"eventsPerSecond": 50}"#).unwrap();
        assert_eq!(
            (c.rate_per_sec, c.rate_burst, c.max_in_flight),
            (Some(50.0), Some(5), None)
        );
        assert_eq!(columns(r#"{"eventsPerSecond": 0.5}"#).unwrap().rate_burst, Some(1));
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        for (json, field) in [
            (r#"{"eventsPerSecond": 0}"#, "limits.eventsPerSecond"),
            (r#"{"eventsPerSecond": 10001}"#, "limits.eventsPerSecond"),
            (r#"{"eventsPerSecond": 5, "burst": 0}"#, "limits.burst"),
            (r#"{"maxInFlight": 0}"#, "limits.maxInFlight"),
            (r#"{"maxInFlight": 1001}"#, "limits.maxInFlight"),
        ] {
            let err = columns(json).unwrap_err();
            assert!(err.to_string().contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn stored_columns_read_back_as_set() {
        let c = columns(r#"{"eventsPerSecond": 2.5, "burst": 4, "maxInFlight": 3}"#).unwrap();
        let back = ChannelLimits::from_columns(c).unwrap();
        assert_eq!(
            back,
            ChannelLimits {
                events_per_second: Some(2.5),
                burst: Some(4),
                max_in_flight: Some(3)
            }
        );
        assert_eq!(ChannelLimits::from_columns(columns("{}").unwrap()), None);
        assert_eq!(
            columns(r#"{"burst": 3}"#).unwrap(),
            LimitColumns::default(),
            "a burst alone shapes nothing"
        );
    }

    #[test]
    fn whole_numbers_may_have_a_zero_fraction_and_fields_may_be_null() {
        let c = columns(r#"{"eventsPerSecond": 5, "burst": 3.0, "maxInFlight": 7.0}"#).unwrap();
        assert_eq!((c.rate_burst, c.max_in_flight), (Some(3), Some(7)));
        let c = columns(r#"{"eventsPerSecond": null, "burst": null, "maxInFlight": null}"#).unwrap();
        assert_eq!(c, LimitColumns::default());
        for json in [r#"{"maxInFlight": 2.5}"#, r#"{"maxInFlight": -1}"#, r#"{"burst": "3"}"#] {
            assert!(serde_json::from_str::<ChannelLimits>(json).is_err(), "{json}");
        }
        assert!(columns(r#"{"maxInFlight": 5000000000}"#).is_err());
    }
}
