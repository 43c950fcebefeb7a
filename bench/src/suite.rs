//! The whole run: ceilings, then every scenario on each backend, then the table.
//!
//! Times are taken on one clock (the bench process's monotonic clock) by the driver and the
//! receiver, which run in this process. **Latency** is commit to receipt: from the moment the
//! API's `201` response reaches the driver (the publishing transaction committed just before
//! the response was written) to the moment the webhook request reaches the receiver. A
//! delivery can beat the response home; such samples are negative and kept. The table also
//! gives the p99 from the moment the request was sent, an upper bound.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::load::{Driver, LoadPlan};
use crate::procstat::{self, CpuSample};
use crate::receiver::{self, Receiver};
use crate::report::{table, targets};
use crate::server::{Backend, Instance, Role};
use crate::stats;
use crate::{ceiling, db};

/// Sizes and places; every size has an environment variable, with the target scenarios' figures as
/// defaults.
#[derive(Args, Debug, Clone)]
pub struct Options {
    /// The release `business-wallet` binary.
    #[arg(long, env = "BENCH_SERVER")]
    server: PathBuf,
    /// Directory for configurations, data and logs (recreated).
    #[arg(long, env = "BENCH_WORK_DIR")]
    work: Option<PathBuf>,
    /// PostgreSQL server to create the bench databases on (as a superuser).
    #[arg(
        long,
        env = "BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub(crate) pg_url: String,
    /// Backends to run: sqlite, postgres.
    #[arg(
        long,
        env = "BENCH_BACKENDS",
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    backends: Vec<String>,
    /// Scenarios to run: ceilings, ingest, e2e, closed, drain, claim, churn.
    #[arg(
        long,
        env = "BENCH_SCENARIOS",
        value_delimiter = ',',
        default_value = "ceilings,ingest,e2e,closed,drain,claim,churn"
    )]
    scenarios: Vec<String>,
    /// Seconds of load per measurement point.
    #[arg(long, env = "BENCH_DURATION_S", default_value_t = 10)]
    pub(crate) duration_s: u64,
    /// Concurrent API clients.
    #[arg(long, env = "BENCH_CLIENTS", default_value_t = 16)]
    pub(crate) clients: usize,
    /// Offered rates of the end-to-end scenario (wallets per second); the maximum follows.
    #[arg(long, env = "BENCH_RATES", value_delimiter = ',', default_value = "100,500,1000")]
    rates: Vec<u64>,
    /// Deliveries in the backlog to drain.
    #[arg(long, env = "BENCH_BACKLOG", default_value_t = 100_000)]
    backlog: u64,
    /// Pending deliveries for the claim-cost measurements.
    #[arg(
        long,
        env = "BENCH_CLAIM_SIZES",
        value_delimiter = ',',
        default_value = "10000,1000000"
    )]
    claim_sizes: Vec<u64>,
    /// Concurrent requests of the raw HTTP ceiling.
    #[arg(long, env = "BENCH_HTTP_CLIENTS", default_value_t = 16)]
    pub(crate) http_clients: usize,
    /// Client counts of the closed-loop scenario.
    #[arg(long, env = "BENCH_CLOSED_CLIENTS", value_delimiter = ',', default_value = "1,16,64")]
    pub closed_clients: Vec<usize>,
    /// Wallets created per closed-loop point (a fifth of them with one client).
    #[arg(long, env = "BENCH_CLOSED_EVENTS", default_value_t = 20_000)]
    pub closed_events: u64,
    /// Deliveries taken through their whole life before the claim cost is measured again
    /// (the churn scenario).
    #[arg(long, env = "BENCH_CHURN", default_value_t = 200_000)]
    pub churn: u64,
    /// Where to write the results as JSON (default: results.json in the work directory).
    #[arg(long, env = "BENCH_JSON")]
    json: Option<PathBuf>,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Row {
    pub(crate) backend: String,
    pub(crate) scenario: String,
    /// Events (or wallets, or requests) per second.
    pub(crate) rate: Option<f64>,
    /// Unit of `rate`.
    pub(crate) unit: String,
    /// Server + database CPU per event, ms.
    pub(crate) cpu_ms: Option<f64>,
    /// Server CPU seconds / database CPU seconds over the run.
    pub(crate) cpu_split: Option<(f64, f64)>,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    /// p99 from the request's start (upper bound).
    pub(crate) p99_from_send_ms: Option<f64>,
    /// Peak RSS of the server, MiB.
    pub(crate) rss_mib: Option<f64>,
    /// Ratio to the relevant ceiling.
    pub(crate) ratio: Option<f64>,
    pub(crate) note: String,
}

pub(crate) struct Ctx {
    pub(crate) options: Options,
    pub(crate) work: PathBuf,
    pub(crate) epoch: Instant,
    pub(crate) receiver: Arc<Receiver>,
    pub(crate) receiver_url: String,
    pub(crate) hz: f64,
    token: Option<String>,
    pub(crate) ceilings: HashMap<&'static str, f64>,
    rows: Vec<Row>,
    pub(crate) closed: Vec<crate::closed::ClosedRow>,
}

impl Ctx {
    pub(crate) fn say(&self, message: &str) {
        eprintln!("[{:>6.1}s] {message}", self.epoch.elapsed().as_secs_f64());
    }

    pub(crate) async fn instance(&mut self, name: &str, backend: Backend) -> anyhow::Result<Instance> {
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(db::fresh_pg_database(&self.options.pg_url, &format!("bwbench_{name}")).await?),
        };
        let name = format!("{name}-{}", backend.name().to_lowercase());
        let instance = Instance::prepare(&self.options.server, &self.work, &name, url)?;
        if self.token.is_none() {
            self.token = Some(instance.token()?);
        }
        Ok(instance)
    }

    /// Keeps a row and shows it at once.
    pub(crate) fn push(&mut self, row: Row) {
        let line = table(std::slice::from_ref(&row));
        eprint!("{}", line.lines().nth(2).map(|l| format!("{l}\n")).unwrap_or_default());
        self.rows.push(row);
    }

    pub(crate) fn token(&self) -> &str {
        self.token.as_deref().unwrap_or_default()
    }
}

/// Runs the suite.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let work = options.work.clone().unwrap_or_else(crate::default_work_dir);
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("cleaning {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let work = work.canonicalize()?;
    let epoch = Instant::now();
    let receiver = Receiver::new(epoch, 100);
    let bound = receiver::serve(receiver.clone(), "127.0.0.1:0".parse()?).await?;
    let mut ctx = Ctx {
        options: options.clone(),
        work,
        epoch,
        receiver,
        receiver_url: format!("http://{bound}/hook"),
        hz: procstat::clock_ticks(),
        token: None,
        ceilings: HashMap::new(),
        rows: Vec::new(),
        closed: Vec::new(),
    };
    let load_at_start = procstat::load_average();
    ctx.say(&format!("load average at start: {load_at_start:.2}"));
    let wants = |s: &str| options.scenarios.iter().any(|x| x == s);
    let backends: Vec<Backend> = options
        .backends
        .iter()
        .filter_map(|b| match b.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        })
        .collect();

    if wants("ceilings") {
        ceiling::measure(&mut ctx, &backends).await?;
    }
    for &backend in &backends {
        if wants("ingest") {
            ingestion(&mut ctx, backend).await?;
        }
        if wants("e2e") {
            end_to_end(&mut ctx, backend).await?;
        }
        if wants("closed") {
            crate::closed::run(&mut ctx, backend).await?;
        }
        if wants("drain") {
            drain(&mut ctx, backend).await?;
        }
        if wants("claim") {
            claim(&mut ctx, backend).await?;
        }
        if wants("churn") {
            churn(&mut ctx, backend).await?;
        }
    }
    let closed_names = options.closed_clients.iter().map(|c| format!("closed{c}"));
    for name in ["ingest", "e2e", "drain", "claim", "ceiling", "churn"]
        .into_iter()
        .map(String::from)
        .chain(closed_names)
    {
        let _ = db::drop_pg_database(&options.pg_url, &format!("bwbench_{name}")).await;
    }
    let load_at_end = procstat::load_average();
    ctx.say(&format!(
        "load average at end: {load_at_end:.2}; total {:.0} s",
        epoch.elapsed().as_secs_f64()
    ));
    let table = table(&ctx.rows);
    println!("{table}");
    if !ctx.closed.is_empty() {
        println!("Closed loop (C clients creating wallets while the dispatcher delivers):\n");
        println!("{}", crate::closed::table(&ctx.closed));
    }
    let mut targets = targets(&ctx.rows);
    crate::closed::targets(&ctx.closed, &mut targets);
    println!("{targets}");
    let json = options.json.clone().unwrap_or_else(|| ctx.work.join("results.json"));
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&serde_json::json!({
            "rows": ctx.rows,
            "closed": ctx.closed,
            "ceilings": ctx.ceilings,
            "load_average": {"start": load_at_start, "end": load_at_end},
            "seconds": epoch.elapsed().as_secs_f64(),
        }))?,
    )?;
    eprintln!("results: {}", json.display());
    Ok(())
}

async fn ingestion(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    ctx.say(&format!(
        "{}: ingestion, {} clients",
        backend.name(),
        ctx.options.clients
    ));
    let instance = ctx.instance("ingest", backend).await?;
    let server = instance.start(Role::ApiOnly).await?;
    instance.create_channel(ctx.token(), &ctx.receiver_url).await?;
    let driver = Driver::new(&instance.base_url, ctx.token(), ctx.epoch)?;
    let with_pg = backend == Backend::Postgres;
    let before = CpuSample::take(server.pid(), ctx.hz, with_pg);
    let result = driver
        .run(LoadPlan {
            clients: ctx.options.clients,
            rate: None,
            duration: Duration::from_secs(ctx.options.duration_s),
            total: None,
        })
        .await;
    let (server_cpu, db_cpu) = CpuSample::take(server.pid(), ctx.hz, with_pg).since(&before);
    let rss = procstat::peak_rss_mib(server.pid());
    server.stop().await?;
    let n = result.created.len() as f64;
    let rate = n / result.elapsed.as_secs_f64();
    let latencies: Vec<f64> = result
        .created
        .iter()
        .map(|c| (c.answered - c.sent).as_secs_f64() * 1000.0)
        .collect();
    let p = stats::percentiles(&latencies);
    let ratio = ctx.ceilings.get(ceiling::key(backend)).map(|c| rate / c);
    ctx.push(Row {
        backend: backend.name().into(),
        scenario: format!("(a) ingestion, {} clients, API only", ctx.options.clients),
        rate: Some(rate),
        unit: "wallets/s".into(),
        cpu_ms: Some((server_cpu + db_cpu) * 1000.0 / n.max(1.0)),
        cpu_split: Some((server_cpu, db_cpu)),
        p50_ms: Some(p.p50),
        p95_ms: Some(p.p95),
        p99_ms: Some(p.p99),
        rss_mib: Some(rss),
        ratio,
        note: format!(
            "latency = API response time; {} errors{}",
            result.errors,
            result.first_error.map(|e| format!(" (first: {e})")).unwrap_or_default()
        ),
        ..Row::default()
    });
    Ok(())
}

async fn end_to_end(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    let instance = ctx.instance("e2e", backend).await?;
    let server = instance.start(Role::Both).await?;
    let secret = instance.create_channel(ctx.token(), &ctx.receiver_url).await?;
    ctx.receiver.set_secret(Some(secret));
    let driver = Driver::new(&instance.base_url, ctx.token(), ctx.epoch)?;
    let with_pg = backend == Backend::Postgres;
    let mut points: Vec<Option<u64>> = ctx.options.rates.iter().copied().map(Some).collect();
    points.push(None);
    for rate in points {
        let label = rate.map_or(format!("max, {} clients", ctx.options.clients), |r| {
            format!("{r}/s offered")
        });
        ctx.say(&format!("{}: end to end, {label}", backend.name()));
        ctx.receiver.reset();
        let before = CpuSample::take(server.pid(), ctx.hz, with_pg);
        let t0 = ctx.epoch.elapsed();
        let result = driver
            .run(LoadPlan {
                clients: ctx.options.clients,
                rate,
                duration: Duration::from_secs(ctx.options.duration_s),
                total: None,
            })
            .await;
        let expected = result.created.len() as u64;
        let got = ctx.receiver.wait_for(expected, Duration::from_secs(120)).await;
        let (server_cpu, db_cpu) = CpuSample::take(server.pid(), ctx.hz, with_pg).since(&before);
        let arrivals = ctx.receiver.arrivals();
        let last = arrivals.iter().map(|a| a.at).max().unwrap_or(t0);
        let window = (last.saturating_sub(t0))
            .as_secs_f64()
            .max(result.elapsed.as_secs_f64());
        let sent: HashMap<&str, (Duration, Duration)> = result
            .created
            .iter()
            .map(|c| (c.wallet.as_str(), (c.sent, c.answered)))
            .collect();
        let mut from_commit = Vec::with_capacity(arrivals.len());
        let mut from_send = Vec::with_capacity(arrivals.len());
        for arrival in &arrivals {
            if let Some((sent_at, answered)) = sent.get(arrival.wallet.as_str()) {
                from_commit.push((arrival.at.as_secs_f64() - answered.as_secs_f64()) * 1000.0);
                from_send.push((arrival.at.as_secs_f64() - sent_at.as_secs_f64()) * 1000.0);
            }
        }
        let p = stats::percentiles(&from_commit);
        let ps = stats::percentiles(&from_send);
        let delivered_rate = got as f64 / window;
        let ratio = if rate.is_none() {
            ctx.ceilings.get(ceiling::key(backend)).map(|c| delivered_rate / c)
        } else {
            None
        };
        let bad = ctx.receiver.bad_signatures.load(std::sync::atomic::Ordering::Relaxed);
        let checked = ctx.receiver.verified.load(std::sync::atomic::Ordering::Relaxed);
        ctx.push(Row {
            backend: backend.name().into(),
            scenario: format!("(b) end to end, {label}"),
            rate: Some(delivered_rate),
            unit: "delivered/s".into(),
            cpu_ms: Some((server_cpu + db_cpu) * 1000.0 / (got as f64).max(1.0)),
            cpu_split: Some((server_cpu, db_cpu)),
            p50_ms: Some(p.p50),
            p95_ms: Some(p.p95),
            p99_ms: Some(p.p99),
            p99_from_send_ms: Some(ps.p99),
            rss_mib: Some(procstat::peak_rss_mib(server.pid())),
            ratio,
            note: format!(
                "{got}/{expected} delivered, {} API errors, {checked} signatures checked, {bad} bad",
                result.errors
            ),
        });
    }
    server.stop().await?;
    ctx.receiver.set_secret(None);
    Ok(())
}

async fn drain(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    let n = ctx.options.backlog;
    ctx.say(&format!(
        "{}: drain of {n} deliveries (writing the backlog)",
        backend.name()
    ));
    let instance = ctx.instance("drain", backend).await?;
    // The API creates the channel; then the backlog is written with no dispatcher running.
    let server = instance.start(Role::ApiOnly).await?;
    let secret = instance.create_channel(ctx.token(), &ctx.receiver_url).await?;
    server.stop().await?;
    let written = db::backlog_for_server(&instance.database_url, &instance.data_dir, n).await?;
    ctx.say(&format!(
        "backlog written in {:.1} s; starting the dispatcher",
        written.as_secs_f64()
    ));
    ctx.receiver.reset();
    ctx.receiver.set_secret(Some(secret));
    let with_pg = backend == Backend::Postgres;
    let pg_before = if with_pg {
        procstat::postgres_cpu_seconds(ctx.hz)
    } else {
        0.0
    };
    let t0 = ctx.epoch.elapsed();
    let server = instance.start(Role::Both).await?;
    let got = ctx.receiver.wait_for(n, Duration::from_secs(600)).await;
    let server_cpu = procstat::cpu_seconds(server.pid(), ctx.hz);
    let db_cpu = if with_pg {
        procstat::postgres_cpu_seconds(ctx.hz) - pg_before
    } else {
        0.0
    };
    let rss = procstat::peak_rss_mib(server.pid());
    server.stop().await?;
    let arrivals = ctx.receiver.arrivals();
    let first = arrivals.iter().map(|a| a.at).min().unwrap_or(t0);
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(t0);
    let window = last.saturating_sub(t0).as_secs_f64();
    let rate = got as f64 / window.max(1e-9);
    ctx.receiver.set_secret(None);
    ctx.push(Row {
        backend: backend.name().into(),
        scenario: format!("(c) drain of a {n}-delivery backlog"),
        rate: Some(rate),
        unit: "delivered/s".into(),
        cpu_ms: Some((server_cpu + db_cpu) * 1000.0 / (got as f64).max(1.0)),
        cpu_split: Some((server_cpu, db_cpu)),
        rss_mib: Some(rss),
        ratio: ctx.ceilings.get("http").map(|c| rate / c),
        note: format!(
            "{got}/{n} delivered in {window:.1} s from the server's start (first after {:.2} s); ratio to the raw HTTP ceiling",
            first.saturating_sub(t0).as_secs_f64()
        ),
        ..Row::default()
    });
    Ok(())
}

async fn claim(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    let mut base: Option<f64> = None;
    for &pending in &ctx.options.claim_sizes.clone() {
        ctx.say(&format!(
            "{}: claim cost with {pending} pending (writing them)",
            backend.name()
        ));
        let dir = ctx.work.join(format!("claim-{}-{pending}", ceiling::key(backend)));
        std::fs::create_dir_all(&dir)?;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("claim.db").display()),
            Backend::Postgres => db::fresh_pg_database(&ctx.options.pg_url, "bwbench_claim").await?,
        };
        let repeats = usize::try_from(pending / 64)
            .unwrap_or(usize::MAX)
            .saturating_sub(1)
            .clamp(1, 30);
        let cost = db::claim_cost(&url, &dir, pending, repeats, 64).await?;
        if backend == Backend::Sqlite {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let ratio = base.map(|b| cost.median_ms / b);
        base.get_or_insert(cost.median_ms);
        ctx.push(Row {
            backend: backend.name().into(),
            scenario: format!("(d) claim of {} with {pending} pending", cost.batch),
            p50_ms: Some(cost.median_ms),
            p95_ms: Some(cost.p95_ms),
            ratio,
            unit: "ms/claim".into(),
            note: format!(
                "the dispatcher's claim through the store (update + load); backlog written in {:.1} s{}",
                cost.setup_s,
                if ratio.is_some() {
                    "; ratio to the smallest size"
                } else {
                    ""
                }
            ),
            ..Row::default()
        });
    }
    Ok(())
}

/// The claim cost on a fresh table, on the same table after `churn` deliveries went through
/// their life on it, and on a second fresh table right after; autovacuum off for the delivery
/// tables, both ways a delivery can live.
async fn churn(ctx: &mut Ctx, backend: Backend) -> anyhow::Result<()> {
    let pending = 10_000;
    for (how, label) in [
        (db::Churn::HandedOff, "handed off at publishing"),
        (db::Churn::Claimed, "claimed from PENDING"),
    ] {
        let n = ctx.options.churn;
        ctx.say(&format!(
            "{}: claim cost before and after {n} deliveries {label}",
            backend.name()
        ));
        let dir = ctx.work.join(format!("churn-{}", ceiling::key(backend)));
        std::fs::create_dir_all(&dir)?;
        let (url, control_url) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.join("churn.db").display()),
                format!("sqlite://{}", dir.join("control.db").display()),
            ),
            Backend::Postgres => (
                db::fresh_pg_database(&ctx.options.pg_url, "bwbench_churn").await?,
                db::fresh_pg_database(&ctx.options.pg_url, "bwbench_churn_control").await?,
            ),
        };
        let (fresh, after, control) = db::churn_claim_cost(&url, &control_url, &dir, n, pending, how).await?;
        if backend == Backend::Sqlite {
            let _ = std::fs::remove_dir_all(&dir);
        }
        // The churned table is compared with the mean of two fresh tables, one measured before
        // the churn and one right after it, so that a drift of the machine over the minutes of
        // the churn (what a commit costs on this disk, say) is not taken for the table's growth.
        let baseline = (fresh.median_ms + control.median_ms) / 2.0;
        ctx.push(Row {
            backend: backend.name().into(),
            scenario: format!(
                "(e) claim of {} with {pending} pending, after {n} delivered ({label})",
                after.batch
            ),
            p50_ms: Some(after.median_ms),
            p95_ms: Some(after.p95_ms),
            ratio: Some(after.median_ms / baseline),
            unit: "ms/claim".into(),
            note: format!(
                "fresh tables: {:.2} ms before the churn, {:.2} ms right after it; ratio to their mean; \
                 autovacuum off for the table; churn took {:.0} s",
                fresh.median_ms, control.median_ms, after.setup_s
            ),
            ..Row::default()
        });
    }
    Ok(())
}
