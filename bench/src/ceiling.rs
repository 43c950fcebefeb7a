//! The ceilings a run compares its scenarios with: raw HTTP POSTs to the receiver, and the
//! commit rate of each backend's publishing transaction on this machine.

use std::time::{Duration, Instant};

use crate::db;
use crate::server::Backend;
use crate::suite::{Ctx, Row};

/// Measures every ceiling and keeps each as a row and under its key.
pub(crate) async fn measure(ctx: &mut Ctx, backends: &[Backend]) -> anyhow::Result<()> {
    let duration = Duration::from_secs(ctx.options.duration_s.clamp(1, 5));
    ctx.say("ceiling: raw HTTP POST to the receiver");
    let rate = http_ceiling(ctx, duration).await?;
    ctx.ceilings.insert("http", rate);
    ctx.push(Row {
        backend: "-".into(),
        scenario: format!("ceiling: raw HTTP POST, {} clients", ctx.options.http_clients),
        rate: Some(rate),
        unit: "req/s".into(),
        ..Row::default()
    });
    if backends.contains(&Backend::Sqlite) {
        ctx.say("ceiling: SQLite publishing-transaction commits");
        let dir = ctx.work.join("ceiling-sqlite");
        std::fs::create_dir_all(&dir)?;
        let rate = db::sqlite_commit_ceiling(&dir, duration).await?;
        ctx.ceilings.insert("sqlite", rate);
        ctx.push(Row {
            backend: "SQLite".into(),
            scenario: "ceiling: publishing transaction, 1 writer".into(),
            rate: Some(rate),
            unit: "tx/s".into(),
            ..Row::default()
        });
    }
    if backends.contains(&Backend::Postgres) {
        ctx.say("ceiling: PostgreSQL publishing transaction (pgbench)");
        let duration = Duration::from_secs(ctx.options.duration_s.max(1));
        let (tps, pg_cpu) = db::pgbench_ceiling(&ctx.options.pg_url, &ctx.work, ctx.options.clients, duration).await?;
        ctx.ceilings.insert("postgres", tps);
        ctx.push(Row {
            backend: "PostgreSQL".into(),
            scenario: format!(
                "ceiling: publishing transaction, pgbench {} clients",
                ctx.options.clients
            ),
            rate: Some(tps),
            unit: "tx/s".into(),
            cpu_ms: Some(pg_cpu * 1000.0 / (tps * duration.as_secs_f64())),
            cpu_split: Some((0.0, pg_cpu)),
            note: "CPU: PostgreSQL only (pgbench itself not counted)".into(),
            ..Row::default()
        });
    }
    Ok(())
}

/// The receiver's rate for signed POSTs of the shape the dispatcher sends, from a pooled
/// client with `http_clients` requests in flight.
async fn http_ceiling(ctx: &Ctx, duration: Duration) -> anyhow::Result<f64> {
    ctx.receiver.reset();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let body: &'static [u8] = br#"{"walletExternalKey":"7b0c3a8e-4a0e-4f55-9a53-0d0b5f7a8c11","displayName":"Bench wallet","email":"ops@bench.example","website":"https://bench.example","phoneNumber":null,"address":{"street":"Benchstraat 1","postalCode":"1000 AA","city":"Amsterdam","country":"NL"},"createdAt":"2026-11-26T12:00:00.000Z","createdBy":"bench"}"#;
    let stop_at = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ctx.options.http_clients {
        let client = client.clone();
        let url = ctx.receiver_url.clone();
        tasks.spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < stop_at {
                let id = uuid::Uuid::new_v4().to_string();
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let signature = webhook_verify::signature_header(&[b"whsec_bench".as_slice()], t, body);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("ce-specversion", "1.0")
                    .header("ce-type", "com.credenco.businesswallet.wallet.created.v1")
                    .header("ce-source", "/credenco/wallets")
                    .header("ce-id", &id)
                    .header("ce-time", "2026-11-26T12:00:00.000Z")
                    .header("ce-subject", "wallets/7b0c3a8e-4a0e-4f55-9a53-0d0b5f7a8c11")
                    .header(
                        "ce-dataschema",
                        "http://127.0.0.1:8080/api/public/schemas/integration/wallet-created/v1.json",
                    )
                    .header("ce-datacontenttype", "application/json")
                    .header("ce-walletexternalkey", "7b0c3a8e-4a0e-4f55-9a53-0d0b5f7a8c11")
                    .header("ce-correlationid", &id)
                    .header("x-credenco-signature", signature)
                    .body(body)
                    .send()
                    .await;
                if let Ok(response) = sent {
                    if response.status().is_success() {
                        ok += 1;
                    }
                }
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        ok += done?;
    }
    Ok(ok as f64 / started.elapsed().as_secs_f64())
}

pub(crate) fn key(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}
