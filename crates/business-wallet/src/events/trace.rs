//! W3C trace context (<https://www.w3.org/TR/trace-context/>) carried by events as the
//! CloudEvents distributed-tracing extension (`traceparent`, `tracestate`).
//!
//! Every event has a `traceparent`. An API request's own `traceparent` header is kept exactly as
//! sent when it follows the version-00 grammar, `00-<trace-id>-<parent-id>-<flags>` (32, 16 and
//! 2 lowercase hex digits, neither id all zeros), given once. Anything else (absent, malformed,
//! upper-case hex, another version, given twice) is ignored, never refused: tracing is an aid,
//! and a request must not fail because of it. The request then gets a new traceparent, with a
//! random trace id and parent id and the sampled flag set (`01`): the wallet starts the trace,
//! so a receiver whose tracer samples by its parent records what follows from the event.
//!
//! `tracestate` is kept only with a caller's valid traceparent (the W3C rule: it means nothing
//! without its parent), the header values joined by `,`, when the result is at most 512
//! printable ASCII characters; otherwise it is dropped. Its list members are not parsed: it is
//! vendor data we pass on, not read.

use rand::RngCore;

/// The trace context of an event: its `traceparent` and optional `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// Request header of the parent.
    pub const TRACEPARENT: &'static str = "traceparent";
    /// Request header of the vendor state.
    pub const TRACESTATE: &'static str = "tracestate";
    /// The longest `tracestate` kept (the W3C limit a vendor may rely on).
    pub const MAX_TRACESTATE: usize = 512;

    /// A new trace: version 00, random trace id and parent id (never all zeros), sampled.
    pub fn fresh() -> TraceContext {
        TraceContext::generate(&mut rand::rngs::OsRng)
    }

    /// [`TraceContext::fresh`] with the random numbers from `rng`.
    pub fn generate(rng: &mut impl RngCore) -> TraceContext {
        let mut trace_id = [0_u8; 16];
        let mut parent_id = [0_u8; 8];
        // An all-zero id is invalid; with a working generator a redraw never happens.
        while trace_id.iter().all(|b| *b == 0) {
            rng.fill_bytes(&mut trace_id);
        }
        while parent_id.iter().all(|b| *b == 0) {
            rng.fill_bytes(&mut parent_id);
        }
        TraceContext {
            traceparent: format!("00-{}-{}-01", hex::encode(trace_id), hex::encode(parent_id)),
            tracestate: None,
        }
    }

    /// The caller's context from request headers, or [`TraceContext::fresh`] when there is no
    /// valid `traceparent` (see the module documentation). Never fails.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> TraceContext {
        let mut parents = headers.get_all(Self::TRACEPARENT).iter();
        let parent = match (parents.next(), parents.next()) {
            (Some(value), None) => value.to_str().ok(),
            _ => None,
        };
        // A value that is not visible ASCII makes the whole state unreadable: dropped.
        let state = headers
            .get_all(Self::TRACESTATE)
            .iter()
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<Vec<_>, _>>()
            .map(|states| states.join(","))
            .unwrap_or_default();
        parent
            .and_then(|parent| TraceContext::parse(parent, Some(&state)))
            .unwrap_or_else(TraceContext::fresh)
    }

    /// A context from its two values, by the rules of the module documentation: `None` when
    /// `traceparent` is not a valid version-00 value; a `tracestate` that is empty, longer
    /// than [`TraceContext::MAX_TRACESTATE`] or not printable ASCII is dropped.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        if !is_valid_traceparent(traceparent) {
            return None;
        }
        let tracestate = tracestate.filter(|state| {
            !state.is_empty()
                && state.len() <= Self::MAX_TRACESTATE
                && state.bytes().all(|b| (b' '..=b'~').contains(&b))
        });
        Some(TraceContext {
            traceparent: traceparent.to_string(),
            tracestate: tracestate.map(str::to_string),
        })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, when there is one.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

/// Whether `value` is a version-00 `traceparent`: `00-` then 32 lowercase hex digits (not all
/// zero), `-`, 16 lowercase hex digits (not all zero), `-`, 2 lowercase hex digits.
pub fn is_valid_traceparent(value: &str) -> bool {
    fn hex_field(field: &str, len: usize, nonzero: bool) -> bool {
        field.len() == len
            && field.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && !(nonzero && field.bytes().all(|b| b == b'0'))
    }
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    version == "00" && hex_field(trace_id, 32, true) && hex_field(parent_id, 16, true) && hex_field(flags, 2, false)
}

#[cfg(test)]
mod tests {
    use axum::http::{self, HeaderMap, HeaderValue};
    use rand::SeedableRng as _;

    use super::*;

    const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_grammar_is_version_00_with_nonzero_lowercase_ids() {
        for good in [
            GIVEN,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "00-00000000000000000000000000000001-0000000000000001-ff",
        ] {
            assert!(is_valid_traceparent(good), "{good}");
        }
        for bad in [
            "",
            "00",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad}");
        }
    }

    #[test]
    fn generated_contexts_are_valid_sampled_and_distinct() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = TraceContext::generate(&mut rng);
        let b = TraceContext::generate(&mut rng);
        assert!(is_valid_traceparent(a.traceparent()), "{}", a.traceparent());
        assert!(a.traceparent().ends_with("-01"));
        assert_ne!(a.traceparent()[3..35], b.traceparent()[3..35]);
        assert_eq!(a.tracestate(), None);
        assert!(is_valid_traceparent(TraceContext::fresh().traceparent()));
    }

    /// A generator stuck on zeros would give invalid ids; the redraw loop is exercised with one
    /// that gives zeros first.
    #[test]
    fn an_all_zero_draw_is_drawn_again() {
        struct ZerosThenOnes(u32);
        impl RngCore for ZerosThenOnes {
            fn next_u32(&mut self) -> u32 {
                unimplemented!()
            }
            fn next_u64(&mut self) -> u64 {
                unimplemented!()
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                self.0 += 1;
                dest.fill(if self.0 % 2 == 1 { 0 } else { 1 });
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        let made = TraceContext::generate(&mut ZerosThenOnes(0));
        assert_eq!(
            made.traceparent(),
            "00-01010101010101010101010101010101-0101010101010101-01"
        );
    }

    #[test]
    fn a_valid_header_is_kept_exactly_with_its_state() {
        let made = TraceContext::from_headers(&headers(&[
            ("traceparent", GIVEN.as_bytes()),
            ("tracestate", b"congo=t61rcWkgMzE"),
            ("tracestate", b" rojo=00f067aa0ba902b7 "),
        ]));
        assert_eq!(made.traceparent(), GIVEN);
        assert_eq!(made.tracestate(), Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
        let without_state = TraceContext::from_headers(&headers(&[("traceparent", GIVEN.as_bytes())]));
        assert_eq!(without_state.tracestate(), None);
    }

    #[test]
    fn an_absent_invalid_or_repeated_header_gives_a_new_context() {
        let cases: Vec<HeaderMap> = vec![
            HeaderMap::new(),
            headers(&[
                ("traceparent", b"not-a-traceparent"),
                ("tracestate", b"congo=t61rcWkgMzE"),
            ]),
            headers(&[("traceparent", b"00-\xff")]),
            headers(&[("traceparent", GIVEN.as_bytes()), ("traceparent", GIVEN.as_bytes())]),
            headers(&[("tracestate", b"congo=t61rcWkgMzE")]),
        ];
        for case in cases {
            let made = TraceContext::from_headers(&case);
            assert!(is_valid_traceparent(made.traceparent()), "{case:?}");
            assert_ne!(made.traceparent(), GIVEN, "{case:?}");
            assert_eq!(made.tracestate(), None, "{case:?}");
        }
    }

    #[test]
    fn an_oversized_or_unprintable_state_is_dropped() {
        let long = "a=".to_string() + &"b".repeat(TraceContext::MAX_TRACESTATE);
        for state in [long.as_bytes(), b"a=\xe2\x82\xac".as_slice(), b"a=b\tc"] {
            let made =
                TraceContext::from_headers(&headers(&[("traceparent", GIVEN.as_bytes()), ("tracestate", state)]));
            assert_eq!(made.traceparent(), GIVEN);
            assert_eq!(made.tracestate(), None, "{state:?}");
        }
    }

    #[test]
    fn parsing_needs_a_valid_parent_and_drops_a_bad_state() {
        assert_eq!(TraceContext::parse("garbage", Some("a=b")), None);
        let parsed = TraceContext::parse(GIVEN, Some("a=b")).unwrap();
        assert_eq!((parsed.traceparent(), parsed.tracestate()), (GIVEN, Some("a=b")));
        let dropped = TraceContext::parse(GIVEN, Some("a=\u{7f}")).unwrap();
        assert_eq!((dropped.traceparent(), dropped.tracestate()), (GIVEN, None));
    }
}
