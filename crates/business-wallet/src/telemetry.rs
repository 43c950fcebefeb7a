//! Logging set-up: JSON lines (default) or human-readable ones, filtered by `log.level`.
//!
//! A JSON line is one flat object: `timestamp`, `level`, `target`, the event's fields
//! (`message` among them) and the fields of every span the event happened in, all at the top
//! level. The request span carries `correlation_id` and `traceparent` (with `method` and
//! `route`), so a line logged while serving a request has them in the same place as a delivery
//! attempt's line, which names its event's correlation id and traceparent as fields of its own:
//! one query finds both. tracing-subscriber's own JSON format can flatten the event's fields but nests the
//! span's under `span`, with no option to lift them; hence [`FlatJson`].

use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber, writing to standard error. Calling it again (as tests do)
/// leaves the first one.
pub fn init(settings: &LogSettings) {
    let _ = subscriber(settings, std::io::stderr).try_init();
}

/// The subscriber that [`init`] installs, writing its lines to `writer` (a test installs it for
/// a scope, to read what the server logs).
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match settings.format {
        // Span fields are kept as JSON objects ([`JsonFields`]), which [`FlatJson`] merges.
        LogFormat::Json => Dispatch::new(builder.fmt_fields(JsonFields::new()).event_format(FlatJson).finish()),
        LogFormat::Pretty => Dispatch::new(builder.finish()),
    }
}

/// Log output kept in memory, for an embedding application or a test that reads back what the
/// server logged: a writer for [`subscriber`] (clones share one buffer).
#[derive(Debug, Clone, Default)]
pub struct MemoryLog(Arc<Mutex<Vec<u8>>>);

impl MemoryLog {
    /// The JSON subscriber at `info` (the default log settings), writing here.
    pub fn json_subscriber(&self) -> Dispatch {
        let log = self.clone();
        subscriber(&LogSettings::default(), move || log.clone())
    }

    /// Every line written so far, each parsed as JSON.
    ///
    /// # Panics
    /// When a line is not JSON (the log was not written in the JSON format).
    pub fn json_lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
            .collect()
    }
}

impl std::io::Write for MemoryLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON line format: every field at the top level. Where names meet, the event's own field
/// wins over a span's, and an inner span's over an outer one's; `timestamp`, `level` and
/// `target` are the event's and are never replaced.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        if let Some(scope) = ctx.event_scope() {
            // Outermost first, so that inner spans overwrite.
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        let mut fields = EventFields {
            line: &mut line,
            log_target: None,
        };
        event.record(&mut fields);
        let target = fields
            .log_target
            .take()
            .unwrap_or_else(|| event.metadata().target().to_string());
        let mut timestamp = String::new();
        if SystemTime.format_time(&mut Writer::new(&mut timestamp)).is_ok() {
            line.insert("timestamp".into(), Value::String(timestamp));
        }
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("target".into(), Value::String(target));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Writes an event's fields into the line. Records that came from the `log` crate carry their
/// metadata as `log.*` fields: `log.target` becomes the line's target, the rest is dropped.
struct EventFields<'a> {
    line: &'a mut Map<String, Value>,
    log_target: Option<String>,
}

impl EventFields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if let Some(log_field) = name.strip_prefix("log.") {
            if let (Value::String(target), "target") = (value, log_field) {
                self.log_target = Some(target);
            }
            return;
        }
        self.line.insert(name.to_string(), value);
    }
}

impl Visit for EventFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and the infinities have no JSON number: they become null.
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message`, and fields given with `%` or `?`, arrive here.
        self.put(field, Value::String(format!("{value:?}")));
    }
}

/// The message of a caught panic (`panic!("...")` carries a `&str` or a `String`), for its
/// log line.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` with the JSON subscriber and returns the lines it wrote, parsed.
    fn lines_of(body: impl FnOnce()) -> Vec<Value> {
        let log = MemoryLog::default();
        tracing::dispatcher::with_default(&log.json_subscriber(), body);
        log.json_lines()
    }

    #[test]
    fn span_fields_are_lifted_to_the_top_level() {
        let lines = lines_of(|| {
            let outer = tracing::info_span!("request", correlation_id = "c-1", route = "/outer");
            let _outer = outer.enter();
            let inner = tracing::info_span!("inner", route = "/inner");
            let _inner = inner.enter();
            tracing::info!(status = 201_u64, elapsed_ms = 1.5, ok = true, "request");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["correlation_id"], "c-1", "{line}");
        assert_eq!(line["route"], "/inner", "the inner span wins: {line}");
        assert_eq!(line["message"], "request");
        assert_eq!(line["status"], 201);
        assert_eq!(line["elapsed_ms"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
        assert!(line.get("span").is_none() && line.get("spans").is_none(), "{line}");
    }

    #[test]
    fn an_event_field_wins_over_a_span_field_and_lines_without_spans_stay_flat() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("request", correlation_id = "from-span");
            let _entered = span.enter();
            tracing::info!(correlation_id = "from-event", "delivery attempt");
            drop(_entered);
            tracing::warn!(correlation_id = %"outside", count = -3_i64, "no span");
        });
        assert_eq!(lines[0]["correlation_id"], "from-event");
        assert_eq!(lines[1]["correlation_id"], "outside");
        assert_eq!(lines[1]["count"], -3);
        assert_eq!(lines[1]["level"], "WARN");
    }
}
