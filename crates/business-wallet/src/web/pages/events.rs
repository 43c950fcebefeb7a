//! The event catalog page: every event type a channel can subscribe to, with what triggers it,
//! its subject pattern, its JSON Schema (linked where `/api/public/schemas/...` serves it, and
//! shown) and a sample CloudEvents envelope, all read from [`events::CATALOG`]. Each type has
//! its own anchor (its type name), which the channel form's event filters link to.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Ctx, EventsTab, Viewer};
use crate::events;
use crate::state::AppState;
use crate::web::HtmlTemplate;

/// One catalog entry as the page shows it.
struct EventTypeEntry {
    type_name: &'static str,
    description: &'static str,
    subject_pattern: &'static str,
    major: u32,
    /// The public URL of the data's schema (the events' `dataschema`).
    schema_url: String,
    /// The schema, pretty-printed.
    schema: String,
    /// A sample envelope (structured mode), pretty-printed.
    sample: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    ctx: Ctx,
    entries: Vec<EventTypeEntry>,
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// GET the event catalog. Any signed-in user may read it (it is public through the API too).
pub async fn events(State(state): State<AppState>, Viewer { ctx, .. }: Viewer<EventsTab>) -> Response {
    let base = state.outbox.base_url();
    let entries = events::CATALOG
        .iter()
        .map(|e| EventTypeEntry {
            type_name: e.type_name,
            description: e.description,
            subject_pattern: e.subject_pattern,
            major: e.major,
            schema_url: e.schema_url(base),
            schema: pretty(&e.schema(base)),
            sample: pretty(&e.sample_envelope(base)),
        })
        .collect();
    HtmlTemplate(EventsPage { ctx, entries }).into_response()
}
