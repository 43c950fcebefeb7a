//! The validation handshake of the CloudEvents webhook specification ("abuse protection"):
//! before a channel with `webhook.validationHandshake` delivers anything, its receiver must
//! answer an `OPTIONS` request carrying `WebHook-Request-Origin` (and `WebHook-Request-Rate`
//! when the channel has a rate limit) with a 2xx and `WebHook-Allowed-Origin` naming that
//! origin or `*`; a `WebHook-Allowed-Rate` in the answer limits the channel's deliveries.
//! `WebHook-Request-Callback` (an asynchronous answer) is not offered.
//!
//! This module reads the answer; [`WebhookChannel::validate_endpoint`] sends the request.
//!
//! [`WebhookChannel::validate_endpoint`]: super::WebhookChannel::validate_endpoint

use serde::Serialize;
use utoipa::ToSchema;

/// The request header naming who sends the events.
pub const REQUEST_ORIGIN: &str = "webhook-request-origin";
/// The request header with the rate the sender would like, requests per minute.
pub const REQUEST_RATE: &str = "webhook-request-rate";
/// The answer header allowing the origin.
pub const ALLOWED_ORIGIN: &str = "webhook-allowed-origin";
/// The answer header with the rate the receiver allows, requests per minute or `*`.
pub const ALLOWED_RATE: &str = "webhook-allowed-rate";

/// The origin a deployment names when `integration.webhook.request_origin` is not set and it
/// has no public URL.
pub const DEFAULT_ORIGIN: &str = "business-wallet";

/// What one validation handshake found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeReport {
    /// The receiver answered the handshake: deliveries may go.
    pub verified: bool,
    /// The `WebHook-Request-Origin` sent.
    pub origin: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Its `WebHook-Allowed-Origin`, when it sent one.
    pub allowed_origin: Option<String>,
    /// Its `WebHook-Allowed-Rate` in requests per minute; null when it sent none or `*` (any
    /// rate).
    pub allowed_rate: Option<u32>,
    /// Why the receiver is not verified.
    pub error: Option<String>,
}

impl HandshakeReport {
    /// A handshake that failed before or without an answer.
    pub(super) fn failed(origin: &str, error: String) -> HandshakeReport {
        HandshakeReport {
            verified: false,
            origin: origin.to_string(),
            status: None,
            allowed_origin: None,
            allowed_rate: None,
            error: Some(error),
        }
    }

    /// The allowed rate a second, as the channel's limit stores it.
    pub fn allowed_rate_per_sec(&self) -> Option<f64> {
        self.allowed_rate.map(|per_minute| f64::from(per_minute) / 60.0)
    }
}

/// Reads the receiver's answer to the handshake sent with `origin`.
pub(super) fn read_answer(
    origin: &str,
    status: u16,
    allowed_origin: Option<&str>,
    allowed_rate: Option<&str>,
) -> HandshakeReport {
    let mut report = HandshakeReport {
        status: Some(status),
        allowed_origin: allowed_origin.map(|o| o.trim().to_string()),
        ..HandshakeReport::failed(origin, String::new())
    };
    let error = if !(200..=299).contains(&status) {
        Some(format!(
            "the receiver answered the validation handshake (OPTIONS) with {status}, not a 2xx"
        ))
    } else {
        match report.allowed_origin.as_deref() {
            None => Some("the receiver's answer has no WebHook-Allowed-Origin header".to_string()),
            Some(allowed) if allowed != "*" && allowed != origin => Some(format!(
                "the receiver allowed the origin `{allowed}`, not `{origin}` (WebHook-Allowed-Origin)"
            )),
            Some(_) => match parse_rate(allowed_rate) {
                Ok(rate) => {
                    report.allowed_rate = rate;
                    None
                }
                Err(problem) => Some(problem),
            },
        }
    };
    report.verified = error.is_none();
    report.error = error;
    report
}

/// A `WebHook-Allowed-Rate`: `None` when absent or `*`.
fn parse_rate(value: Option<&str>) -> Result<Option<u32>, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value == "*" {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(rate) if rate > 0 => Ok(Some(rate)),
        _ => Err(format!(
            "WebHook-Allowed-Rate `{value}` is neither a positive number of requests per minute nor `*`"
        )),
    }
}

/// The `WebHook-Request-Rate` for a channel limited to `per_sec` deliveries a second: requests
/// per minute, at least 1.
pub fn request_rate(per_sec: f64) -> u64 {
    (per_sec * 60.0).ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_naming_the_origin_or_any_verifies_and_reads_the_rate() {
        let ok = read_answer("wallet.example", 200, Some("wallet.example"), Some("600"));
        assert!(ok.verified, "{ok:?}");
        assert_eq!(ok.allowed_rate, Some(600));
        assert_eq!(ok.allowed_rate_per_sec(), Some(10.0));
        let any = read_answer("wallet.example", 204, Some("*"), Some("*"));
        assert!(any.verified && any.allowed_rate.is_none(), "{any:?}");
        let no_rate = read_answer("wallet.example", 200, Some(" * "), None);
        assert!(no_rate.verified, "{no_rate:?}");
    }

    #[test]
    fn anything_else_says_why_it_does_not_verify() {
        let cases = [
            (read_answer("o", 405, None, None), "405"),
            (read_answer("o", 200, None, None), "no WebHook-Allowed-Origin"),
            (read_answer("o", 200, Some("other"), None), "`other`"),
            (read_answer("o", 200, Some("o"), Some("0")), "WebHook-Allowed-Rate `0`"),
            (
                read_answer("o", 200, Some("o"), Some("fast")),
                "WebHook-Allowed-Rate `fast`",
            ),
        ];
        for (report, says) in cases {
            assert!(!report.verified, "{report:?}");
            assert!(report.error.as_deref().unwrap().contains(says), "{report:?}");
        }
    }

    #[test]
    fn the_request_rate_is_per_minute_rounded_up() {
        assert_eq!(request_rate(10.0), 600);
        assert_eq!(request_rate(0.001), 1);
        assert_eq!(request_rate(0.5), 30);
    }
}
