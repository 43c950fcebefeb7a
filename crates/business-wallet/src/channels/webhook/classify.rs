//! The one place a webhook attempt's result becomes an [`Outcome`]: the receiver's HTTP status
//! (with its `Retry-After`), or the transport error when no answer came.

use std::time::{Duration, SystemTime};

use super::ssrf::AddressNotAllowed;
use crate::channels::{Outcome, ResponseRecord};

/// The one place HTTP statuses become outcomes: 2xx delivered; 408, 429, 3xx and 5xx (and
/// anything else) retryable; every other 4xx rejected.
pub fn classify_status(status: u16, retry_after: Option<Duration>, response: Option<ResponseRecord>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { response },
        408 | 429 => Outcome::Retryable {
            error: format!("receiver answered {status}"),
            retry_after,
            response,
        },
        400..=499 => Outcome::Rejected {
            error: format!("receiver answered {status}"),
            response,
        },
        300..=399 => {
            let location = response
                .as_ref()
                .and_then(|r| r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("location")))
                .map(|(_, v)| format!(" to {v}"))
                .unwrap_or_default();
            Outcome::Retryable {
                error: format!("receiver answered {status}; redirect{location} not followed"),
                retry_after,
                response,
            }
        }
        _ => Outcome::Retryable {
            error: format!("receiver answered {status}"),
            retry_after,
            response,
        },
    }
}

/// The one place transport errors become outcomes: a refused address is rejected; timeouts,
/// connection, TLS and other transport errors are retryable.
pub fn classify_error(err: &reqwest::Error, timeout: Duration) -> Outcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<AddressNotAllowed>() {
            return rejected(refused.to_string());
        }
        source = current.source();
    }
    if err.is_builder() {
        return rejected(format!("request could not be built: {}", error_chain(err)));
    }
    let error = if err.is_timeout() {
        format!("no complete answer within {} ms", timeout.as_millis())
    } else if let Some(hint) = tls_hint(err) {
        format!("TLS failed, {hint}: {}", error_chain(err))
    } else if err.is_connect() {
        format!("connection failed: {}", error_chain(err))
    } else {
        format!("request failed: {}", error_chain(err))
    };
    retryable(error, None)
}

/// What a TLS failure most likely means for the channel's settings, when the error chain holds
/// one (rustls reports it inside I/O errors, whose [`std::error::Error::source`] skips it).
fn tls_hint(err: &reqwest::Error) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = rustls_error(current) {
            return Some(match tls {
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                    "the receiver requires a client certificate (webhook.tls.clientCertificate)"
                }
                rustls::Error::AlertReceived(
                    AlertDescription::UnknownCA | AlertDescription::BadCertificate | AlertDescription::AccessDenied,
                ) => "the receiver refused the client certificate",
                rustls::Error::AlertReceived(AlertDescription::CertificateExpired) => {
                    "the receiver found the client certificate expired"
                }
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
                    "the receiver's certificate is not issued by a trusted CA (webhook.tls.caCertificates)"
                }
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                ) => "the receiver's certificate is not valid for the URL's host",
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "the receiver's certificate has expired",
                _ => "the handshake with the receiver did not complete",
            });
        }
        source = current.source();
    }
    None
}

/// The rustls error `err` is, or holds inside (nested) I/O errors.
fn rustls_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

/// Parses `Retry-After`: delta seconds, or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(super) fn rejected(error: String) -> Outcome {
    Outcome::Rejected { error, response: None }
}

pub(super) fn retryable(error: String, retry_after: Option<Duration>) -> Outcome {
    Outcome::Retryable {
        error,
        retry_after,
        response: None,
    }
}

pub(super) fn prefix_error(outcome: Outcome, prefix: &str) -> Outcome {
    match outcome {
        Outcome::Retryable { error, retry_after, .. } => retryable(format!("{prefix}: {error}"), retry_after),
        Outcome::Rejected { error, .. } => rejected(format!("{prefix}: {error}")),
        delivered => delivered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_specification_says() {
        use crate::domain::delivery::AttemptOutcome;
        let class = |s| classify_status(s, None, None).kind();
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(class(s), AttemptOutcome::Delivered, "{s}");
        }
        for s in [400, 401, 403, 404, 410, 422] {
            assert_eq!(class(s), AttemptOutcome::Rejected, "{s}");
        }
        for s in [408, 429, 301, 302, 307, 500, 502, 503, 504, 100] {
            assert_eq!(class(s), AttemptOutcome::Retryable, "{s}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_746_094_937);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
