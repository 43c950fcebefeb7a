//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// `GET /health/live`: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, description = "Alive"), (status = 400, response = crate::api::doc::BadRequest)))]
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "UP" }))
}

/// How long readiness waits for the database. A probe wants an answer within a second; a
/// database that takes longer than this for `SELECT 1` is not ready to serve. Without this
/// bound, an unreachable PostgreSQL holds the probe for the pool's whole acquire timeout
/// while the pool keeps trying to connect.
const READY_TIMEOUT: Duration = Duration::from_millis(500);

/// `GET /health/ready`: the database answers (within half a second).
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses((status = 200, description = "Ready"), (status = 400, response = crate::api::doc::BadRequest), (status = 503, description = "The database is unreachable or too slow to answer"))
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let error = match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({ "status": "UP", "database": "UP" }))),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    tracing::warn!(%error, "readiness check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "DOWN", "database": "DOWN" })),
    )
}

/// `GET /metrics`: Prometheus text format (see [`crate::metrics`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain"), (status = 400, response = crate::api::doc::BadRequest), (status = 503, response = crate::api::doc::Unavailable))
)]
pub async fn metrics(
    State(state): State<AppState>,
) -> Result<impl axum::response::IntoResponse, crate::error::ApiError> {
    let body = crate::metrics::render(&state.db).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}
