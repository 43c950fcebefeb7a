//! Times as the pages show them: the UTC date and time to the second (never wrapped, always
//! labelled UTC), with the exact instant in `datetime` and an age relative to now beside it.

use chrono::{DateTime, Utc};

/// One time on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The instant as recorded (RFC 3339), for `<time datetime>`.
    pub iso: String,
    /// `2026-12-03 14:05:09 UTC`.
    pub utc: String,
    /// `5 min ago`, `in 30 s`, `just now`.
    pub age: String,
}

impl Stamp {
    /// The stamp of an RFC 3339 text, ages relative to `now`. A text that does not parse is shown
    /// as it is, without an age.
    pub fn at(text: &str, now: DateTime<Utc>) -> Stamp {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                Stamp {
                    iso: text.to_string(),
                    utc: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    age: age(now.signed_duration_since(t).num_seconds()),
                }
            }
            Err(_) => Stamp {
                iso: text.to_string(),
                utc: text.to_string(),
                age: String::new(),
            },
        }
    }

    /// The stamp of an RFC 3339 text, ages relative to the current time.
    pub fn of(text: &str) -> Stamp {
        Stamp::at(text, Utc::now())
    }
}

/// `seconds` ago (negative: in the future) in the largest unit that fits.
fn age(seconds: i64) -> String {
    let (ahead, s) = (seconds < 0, seconds.unsigned_abs());
    let amount = match s {
        0..=4 => return "just now".to_string(),
        5..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min", s / 60),
        3_600..=86_399 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    };
    if ahead {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_shows_utc_to_the_second_and_an_age() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T14:10:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let stamp = Stamp::at("2026-12-03T14:05:08.750Z", now);
        assert_eq!(stamp.utc, "2026-12-03 14:05:08 UTC");
        assert_eq!(stamp.age, "5 min ago");
        assert_eq!(stamp.iso, "2026-12-03T14:05:08.750Z");
        assert_eq!(Stamp::at("2026-12-03T14:10:39Z", now).age, "in 30 s");
        assert_eq!(Stamp::at("2026-12-03T14:10:08Z", now).age, "just now");
        assert_eq!(Stamp::at("2026-11-30T14:10:09Z", now).age, "3 d ago");
        assert_eq!(Stamp::at("2026-12-03T11:10:09Z", now).age, "3 h ago");
    }

    #[test]
    fn a_text_that_is_no_time_is_shown_as_it_is() {
        let stamp = Stamp::of("soon");
        assert_eq!((stamp.utc.as_str(), stamp.age.as_str()), ("soon", ""));
    }
}
