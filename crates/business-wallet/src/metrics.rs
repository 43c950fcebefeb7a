//! Prometheus metrics, served at `GET /metrics`.
//!
//! - `business_wallet_delivery_attempts_total{channel_type, outcome}`: attempts by how they
//!   ended (`DELIVERED`, `RETRYABLE`, `REJECTED`).
//! - `business_wallet_delivery_latency_seconds`: from the publishing commit to the delivered
//!   acknowledgement.
//! - `business_wallet_deliveries_failed`: FAILED deliveries (DISMISSED ones are not counted).
//! - `business_wallet_delivery_backlog`: deliveries still PENDING or DELIVERING.
//! - `business_wallet_oldest_due_delivery_age_seconds`: how long the oldest due delivery has
//!   been waiting.
//! - `business_wallet_channel_certificates_expiring{certificate}`: webhook channels whose
//!   client certificate (`certificate="client"`) or a CA certificate of whose bundle
//!   (`certificate="ca"`) has expired or expires within 30 days.
//!
//! The gauges are read from the database when scraped, so every instance reports the shared
//! truth; counters and the histogram are this process's own. Labels are bounded: channel types
//! and outcome names only.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::store::{self, Db};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The attempts counter.
const ATTEMPTS: &str = "business_wallet_delivery_attempts_total";
/// The commit-to-delivery latency histogram.
const LATENCY: &str = "business_wallet_delivery_latency_seconds";
/// The gauge of channels with a certificate that expires soon.
const CERTIFICATES_EXPIRING: &str = "business_wallet_channel_certificates_expiring";

/// The process's Prometheus recorder, installed on first use. The `metrics` facade has one
/// recorder per process; an embedding application that installed its own keeps it, and this
/// handle then renders only what it recorded itself.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(LATENCY.into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
                ],
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// Gives the counter and the histogram their `# HELP` texts (the gauges get theirs in
/// [`render`]). Descriptions go to whichever recorder is installed, so an embedding
/// application's own recorder gets them too.
fn describe() {
    metrics::describe_counter!(
        ATTEMPTS,
        "Delivery attempts by channel type and outcome (DELIVERED, RETRYABLE, REJECTED)."
    );
    metrics::describe_histogram!(
        LATENCY,
        "Seconds from the commit that published an event to its delivered acknowledgement."
    );
}

/// Counts one attempt.
pub fn attempt(channel_type: &str, outcome: &'static str) {
    metrics::counter!(
        ATTEMPTS,
        "channel_type" => channel_type.to_string(),
        "outcome" => outcome
    )
    .increment(1);
}

/// Records the commit-to-delivery latency of a delivered event.
pub fn delivered(latency_ms: i64) {
    metrics::histogram!(LATENCY).record(latency_ms.max(0) as f64 / 1000.0);
}

/// Renders every metric in the Prometheus text format: this process's counters and histogram,
/// then the gauges, read from the database for this request (so concurrent scrapes of
/// different instances or test applications never mix their figures).
///
/// # Errors
/// The database could not be read.
pub async fn render(db: &Db) -> Result<String, sqlx::Error> {
    let stats = store::deliveries::stats(db, store::now_ms()).await?;
    let mut text = handle().render();
    let gauges = [
        (
            "business_wallet_deliveries_failed",
            "FAILED deliveries (DISMISSED excluded).",
            stats.failed as f64,
        ),
        (
            "business_wallet_delivery_backlog",
            "Deliveries PENDING or DELIVERING.",
            stats.backlog as f64,
        ),
        (
            "business_wallet_oldest_due_delivery_age_seconds",
            "How long the oldest due delivery has been waiting.",
            stats.oldest_due_age_ms as f64 / 1000.0,
        ),
    ];
    for (name, help, value) in gauges {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
    }
    let (client, ca) = expiring_certificates(db).await?;
    let name = CERTIFICATES_EXPIRING;
    text.push_str(&format!(
        "# HELP {name} Webhook channels whose client certificate, or a certificate of whose CA bundle, has expired or expires within 30 days.\n\
         # TYPE {name} gauge\n{name}{{certificate=\"client\"}} {client}\n{name}{{certificate=\"ca\"}} {ca}\n"
    ));
    Ok(text)
}

/// How many webhook channels have a client certificate, and how many a CA certificate, that
/// has expired or expires within 30 days.
async fn expiring_certificates(db: &Db) -> Result<(u64, u64), sqlx::Error> {
    use crate::channels::webhook::config::TlsConfig;
    use crate::channels::webhook::tls::{describe, CertificateUse};
    let now = store::now_ms();
    let (mut client, mut ca) = (0, 0);
    for config in store::channels::webhook_tls_configs(db).await? {
        let Ok(block) = serde_json::from_str::<serde_json::Value>(&config) else {
            continue;
        };
        let Ok(tls) = serde_json::from_value::<TlsConfig>(block["tls"].clone()) else {
            continue;
        };
        let expiring = describe(&tls, now);
        let soon = |usage| expiring.iter().any(|c| c.usage == usage && c.expires_soon);
        client += u64::from(soon(CertificateUse::Client));
        ca += u64::from(soon(CertificateUse::Ca));
    }
    Ok((client, ca))
}
