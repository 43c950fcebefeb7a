//! The retry policy: one pure function from an attempt's outcome to its [`Resolution`].
//!
//! The dispatcher feeds it the attempt number, the channel's [`Outcome`] (with the receiver's
//! `Retry-After`, if any), the configuration and a jitter value; nothing here reads a clock or
//! a random generator, so every schedule can be unit-tested exactly.

use std::time::Duration;

use crate::channels::Outcome;
use crate::config::RetrySettings;
use crate::domain::delivery::Resolution;

/// Decides what follows attempt number `attempt` (1-based) of at most `max_attempts`.
///
/// A delivered outcome is done. A retryable failure waits `base * 2^(attempt-1)`, capped at the
/// maximum delay, moved by `jitter * settings.jitter` of itself (`jitter` is a value in
/// `[-1, 1]`, drawn by the caller). A `Retry-After` from the receiver replaces that delay,
/// clamped to `[base, max]` so that a receiver can neither make us hammer it nor park a
/// delivery for days. When no attempt is left, or the failure is not retryable, the delivery
/// fails.
pub fn next(attempt: u32, max_attempts: u32, outcome: &Outcome, settings: &RetrySettings, jitter: f64) -> Resolution {
    match outcome {
        Outcome::Delivered { .. } => Resolution::Delivered,
        Outcome::Rejected { .. } => Resolution::Failed,
        Outcome::Retryable { .. } if attempt >= max_attempts => Resolution::Failed,
        Outcome::Retryable { retry_after, .. } => Resolution::Retry {
            delay: delay(attempt, *retry_after, settings, jitter),
        },
    }
}

/// How long the whole channel pauses after `outcome`: when the receiver answered `429 Too Many
/// Requests` or `503 Service Unavailable` with a `Retry-After`, for that long (at most
/// `max_delay_ms`); otherwise not at all. Other statuses' `Retry-After` only delays the one
/// delivery.
pub fn channel_pause(outcome: &Outcome, settings: &RetrySettings) -> Option<Duration> {
    match outcome {
        Outcome::Retryable {
            retry_after: Some(asked),
            response: Some(response),
            ..
        } if matches!(response.status, 429 | 503) => Some((*asked).min(Duration::from_millis(settings.max_delay_ms))),
        _ => None,
    }
}

/// The wait after failed attempt `attempt`.
fn delay(attempt: u32, retry_after: Option<Duration>, settings: &RetrySettings, jitter: f64) -> Duration {
    let base = settings.base_delay_ms;
    let cap = settings.max_delay_ms.max(base);
    if let Some(asked) = retry_after {
        let asked = u64::try_from(asked.as_millis()).unwrap_or(u64::MAX);
        return Duration::from_millis(asked.clamp(base, cap));
    }
    let exponent = attempt.saturating_sub(1).min(63);
    let backoff = base.saturating_mul(1u64 << exponent).min(cap);
    let spread = jitter.clamp(-1.0, 1.0) * settings.jitter.clamp(0.0, 1.0);
    let jittered = (backoff as f64 * (1.0 + spread)).round() as u64;
    Duration::from_millis(jittered.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings {
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            jitter: 0.2,
        }
    }

    fn secs(s: u64) -> Resolution {
        Resolution::Retry {
            delay: Duration::from_secs(s),
        }
    }

    fn retryable(retry_after: Option<Duration>) -> Outcome {
        Outcome::Retryable {
            error: "503".into(),
            retry_after,
            response: None,
        }
    }

    /// The policy for a retryable failure without `Retry-After`.
    fn after_failure(attempt: u32, max_attempts: u32, s: &RetrySettings, jitter: f64) -> Resolution {
        next(attempt, max_attempts, &retryable(None), s, jitter)
    }

    #[test]
    fn delays_double_until_the_cap() {
        let s = settings();
        let got: Vec<Resolution> = (1..=8).map(|a| after_failure(a, 15, &s, 0.0)).collect();
        assert_eq!(
            got,
            vec![
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(32),
                secs(60),
                secs(60)
            ]
        );
        // Large attempt numbers do not overflow.
        assert_eq!(after_failure(200, 500, &s, 0.0), secs(60));
    }

    #[test]
    fn jitter_moves_the_delay_within_its_bounds() {
        let s = settings();
        let low = after_failure(3, 15, &s, -1.0);
        let high = after_failure(3, 15, &s, 1.0);
        assert_eq!(
            low,
            Resolution::Retry {
                delay: Duration::from_millis(3_200)
            }
        );
        assert_eq!(
            high,
            Resolution::Retry {
                delay: Duration::from_millis(4_800)
            }
        );
        // Out-of-range jitter values are clamped, not trusted.
        assert_eq!(after_failure(3, 15, &s, 7.0), high);
    }

    #[test]
    fn only_429_and_503_with_retry_after_pause_the_channel() {
        let settings = RetrySettings::default();
        let answered = |status: u16, retry_after: Option<Duration>| Outcome::Retryable {
            error: String::new(),
            retry_after,
            response: Some(crate::channels::ResponseRecord {
                status,
                headers: Vec::new(),
                body_excerpt: String::new(),
            }),
        };
        let two = Some(Duration::from_secs(2));
        assert_eq!(channel_pause(&answered(429, two), &settings), two);
        assert_eq!(channel_pause(&answered(503, two), &settings), two);
        assert_eq!(channel_pause(&answered(500, two), &settings), None);
        assert_eq!(channel_pause(&answered(429, None), &settings), None);
        let long = Some(Duration::from_secs(86_400));
        assert_eq!(
            channel_pause(&answered(429, long), &settings),
            Some(Duration::from_millis(settings.max_delay_ms))
        );
    }

    #[test]
    fn retry_after_is_honoured_but_clamped() {
        let s = settings();
        let asked = |d| next(1, 15, &retryable(Some(d)), &s, 1.0);
        assert_eq!(asked(Duration::from_secs(3)), secs(3));
        assert_eq!(asked(Duration::from_millis(10)), secs(1));
        assert_eq!(asked(Duration::from_secs(86_400)), secs(60));
    }

    #[test]
    fn last_attempt_and_rejections_fail_and_successes_deliver() {
        let s = settings();
        let rejected = Outcome::Rejected {
            error: "404".into(),
            response: None,
        };
        let delivered = Outcome::Delivered { response: None };
        assert_eq!(after_failure(15, 15, &s, 0.0), Resolution::Failed);
        // A lease taken over after a crash can push the count past the limit.
        assert_eq!(after_failure(16, 15, &s, 0.0), Resolution::Failed);
        assert_eq!(next(1, 15, &rejected, &s, 0.0), Resolution::Failed);
        assert_eq!(next(15, 15, &delivered, &s, 0.0), Resolution::Delivered);
        assert_eq!(after_failure(1, 1, &s, 0.0), Resolution::Failed);
    }

    #[test]
    fn defaults_cover_about_a_day() {
        let s = RetrySettings::default();
        let attempts = crate::config::IntegrationSettings::default().max_attempts;
        let total: Duration = (1..attempts)
            .map(|a| match after_failure(a, attempts, &s, 0.0) {
                Resolution::Retry { delay } => delay,
                other => panic!("attempt {a}: {other:?}"),
            })
            .sum();
        assert_eq!(total, Duration::from_secs(87_330));
        assert_eq!(after_failure(attempts, attempts, &s, 0.0), Resolution::Failed);
    }
}
