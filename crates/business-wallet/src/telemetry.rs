//! Logging set-up: JSON lines (default) or human-readable ones, filtered by `log.level`.
//! Request spans carry the correlation id, so every line logged while serving a request has it.

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. Calling it again (as tests do) leaves the first one.
pub fn init(settings: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
