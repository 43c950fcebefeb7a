//! The closed-loop scenario: `C` clients create `N` wallets as fast as the API answers, while
//! the dispatcher delivers each `wallet.created.v1` to the receiver. It measures whether
//! delivery keeps pace with ingestion: what was delivered *while* the API was busy, the
//! commit-to-receipt latency, and how long after the last accepted wallet the last delivery
//! arrived. Each point runs on a fresh server and database.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use crate::load::{Driver, LoadPlan};
use crate::procstat::{self, CpuSample};
use crate::server::{Backend, Role};
use crate::stats;
use crate::suite::Ctx;

/// One point of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedRow {
    pub backend: String,
    pub clients: usize,
    /// Wallets accepted (201).
    pub accepted: u64,
    /// Accepted per second, first request to last response.
    pub accepted_per_s: f64,
    /// Distinct events received per second while the API was busy (first request to last
    /// accepted response).
    pub delivered_during_per_s: f64,
    /// Distinct events received per second, first request to last arrival.
    pub delivered_per_s: f64,
    /// Commit-to-receipt percentiles, ms.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// API response time (request sent to response), p50, ms.
    pub api_p50_ms: f64,
    /// Last arrival minus last accepted response, ms (0 when the last delivery came first).
    pub drain_ms: f64,
    /// Server + database CPU per event, ms.
    pub cpu_ms: f64,
    pub rss_mib: f64,
    /// Accepted wallets whose event never arrived.
    pub lost: u64,
    /// Requests the receiver got beyond the first for an event id.
    pub duplicates: u64,
    pub api_errors: u64,
}

/// Runs the points for every client count on `backend`.
pub async fn run(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    for &clients in &ctx.options.closed_clients.clone() {
        // One client alone is slow: a fifth of the events keeps the point short.
        let total = if clients == 1 {
            (ctx.options.closed_events / 5).max(1)
        } else {
            ctx.options.closed_events
        };
        ctx.say(&format!(
            "{}: closed loop, {clients} clients, {total} wallets",
            backend.name()
        ));
        let instance = ctx.instance(&format!("closed{clients}"), backend).await?;
        let server = instance.start(Role::Both).await?;
        let secret = instance.create_channel(ctx.token(), &ctx.receiver_url).await?;
        ctx.receiver.set_secret(Some(secret));
        ctx.receiver.reset();
        let driver = Driver::new(&instance.base_url, ctx.token(), ctx.epoch)?;
        let with_pg = backend == Backend::Postgres;
        let before = CpuSample::take(server.pid(), ctx.hz, with_pg);
        let t0 = ctx.epoch.elapsed();
        let result = driver
            .run(LoadPlan {
                clients,
                rate: None,
                duration: Duration::from_secs(600),
                total: Some(total),
            })
            .await;
        let accepted = result.created.len() as u64;
        let got = ctx.receiver.wait_for(accepted, Duration::from_secs(120)).await;
        let (server_cpu, db_cpu) = CpuSample::take(server.pid(), ctx.hz, with_pg).since(&before);
        let rss = procstat::peak_rss_mib(server.pid());
        server.stop().await?;

        let last_accept = result.created.iter().map(|c| c.answered).max().unwrap_or(t0);
        let arrivals = ctx.receiver.arrivals();
        let created: std::collections::HashMap<&str, Duration> =
            result.created.iter().map(|c| (c.wallet.as_str(), c.answered)).collect();
        let mut latencies = Vec::with_capacity(arrivals.len());
        let mut during = 0u64;
        let mut arrived: HashSet<&str> = HashSet::new();
        let mut last_arrival = t0;
        for arrival in &arrivals {
            if let Some(answered) = created.get(arrival.wallet.as_str()) {
                latencies.push((arrival.at.as_secs_f64() - answered.as_secs_f64()) * 1000.0);
                arrived.insert(arrival.wallet.as_str());
                last_arrival = last_arrival.max(arrival.at);
                if arrival.at <= last_accept {
                    during += 1;
                }
            }
        }
        let api: Vec<f64> = result
            .created
            .iter()
            .map(|c| (c.answered.as_secs_f64() - c.sent.as_secs_f64()) * 1000.0)
            .collect();
        let busy = (last_accept.saturating_sub(t0)).as_secs_f64().max(1e-9);
        let whole = (last_arrival.max(last_accept).saturating_sub(t0))
            .as_secs_f64()
            .max(1e-9);
        let p = stats::percentiles(&latencies);
        let requests = ctx.receiver.requests.load(Ordering::SeqCst);
        let row = ClosedRow {
            backend: backend.name().into(),
            clients,
            accepted,
            accepted_per_s: accepted as f64 / busy,
            delivered_during_per_s: during as f64 / busy,
            delivered_per_s: got as f64 / whole,
            p50_ms: p.p50,
            p95_ms: p.p95,
            p99_ms: p.p99,
            api_p50_ms: stats::percentiles(&api).p50,
            drain_ms: (last_arrival.as_secs_f64() - last_accept.as_secs_f64()).max(0.0) * 1000.0,
            cpu_ms: (server_cpu + db_cpu) * 1000.0 / (got as f64).max(1.0),
            rss_mib: rss,
            lost: accepted.saturating_sub(arrived.len() as u64),
            duplicates: requests.saturating_sub(ctx.receiver.unique_count()),
            api_errors: result.errors,
        };
        eprintln!(
            "{}",
            table(std::slice::from_ref(&row)).lines().nth(2).unwrap_or_default()
        );
        ctx.closed.push(row);
        ctx.receiver.set_secret(None);
    }
    Ok(())
}

/// The scenario's own table (its columns differ from the main table's).
pub fn table(rows: &[ClosedRow]) -> String {
    let mut out = String::from(
        "| backend | C | accepted | accepted/s | delivered/s during acceptance | delivered/s | p50 ms | p95 ms | p99 ms | API p50 ms | drain ms | CPU ms/event | peak RSS MiB | lost | duplicates | API errors |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} ({:.0} %) | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.3} | {:.0} | {} | {} | {} |\n",
            r.backend,
            r.clients,
            r.accepted,
            r.accepted_per_s,
            r.delivered_during_per_s,
            100.0 * r.delivered_during_per_s / r.accepted_per_s.max(1e-9),
            r.delivered_per_s,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.api_p50_ms,
            r.drain_ms,
            r.cpu_ms,
            r.rss_mib,
            r.lost,
            r.duplicates,
            r.api_errors,
        ));
    }
    out
}

/// The scenario's targets, one line each, in the form of the main target list.
pub fn targets(rows: &[ClosedRow], out: &mut String) {
    let mut check = |name: String, value: f64, ok: bool, decimals: usize| {
        let verdict = if ok { "met" } else { "MISSED" };
        out.push_str(&format!("- {name}: {value:.decimals$} -> {verdict}\n"));
    };
    for r in rows {
        let who = format!("closed loop C={} {}", r.clients, r.backend);
        check(format!("{who}: lost = 0"), r.lost as f64, r.lost == 0, 0);
        check(
            format!("{who}: duplicates = 0 (fault-free run)"),
            r.duplicates as f64,
            r.duplicates == 0,
            0,
        );
        if r.clients >= 16 {
            let share = r.delivered_during_per_s / r.accepted_per_s.max(1e-9);
            check(
                format!("{who}: delivered/s during acceptance >= 95 % of accepted/s"),
                share * 100.0,
                share >= 0.95,
                1,
            );
            let limit = if r.clients >= 64 { 200.0 } else { 50.0 };
            check(
                format!("{who}: commit-to-receipt p99 <= {limit} ms"),
                r.p99_ms,
                r.p99_ms <= limit,
                2,
            );
            check(
                format!("{who}: last delivery <= 100 ms after the last accept"),
                r.drain_ms,
                r.drain_ms <= 100.0,
                0,
            );
        }
        if r.clients == 16 && r.backend == "PostgreSQL" {
            check(
                format!("{who}: >= 1200 delivered/s end to end"),
                r.delivered_per_s,
                r.delivered_per_s >= 1200.0,
                0,
            );
            check(format!("{who}: CPU per event <= 1.2 ms"), r.cpu_ms, r.cpu_ms <= 1.2, 3);
        }
        if r.clients == 1 && r.backend == "PostgreSQL" {
            check(format!("{who}: API p50 <= 2 ms"), r.api_p50_ms, r.api_p50_ms <= 2.0, 2);
            check(
                format!("{who}: commit-to-receipt p99 <= 8 ms"),
                r.p99_ms,
                r.p99_ms <= 8.0,
                2,
            );
            check(format!("{who}: CPU per event <= 2.5 ms"), r.cpu_ms, r.cpu_ms <= 2.5, 3);
        }
    }
}
