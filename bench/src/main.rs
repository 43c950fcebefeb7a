//! `bw-bench`: benchmarks of business-wallet on SQLite and PostgreSQL against the machine's own
//! ceilings. `bench/run.sh` builds everything in release mode and runs `bw-bench run`.
//!
//! - `bw-bench run --server PATH`: every scenario and ceiling, then a table.
//! - `bw-bench receiver`: the fast receiver alone (prints a count every second).
//! - `bw-bench health`: the channel health and chart queries over a large deliveries log
//!   (no server needed; see `health.rs`).

mod ceiling;
mod closed;
mod db;
mod health;
mod load;
mod procstat;
mod receiver;
mod report;
mod server;
mod stats;
mod suite;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bw-bench", about = "Benchmarks of business-wallet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every scenario and ceiling and prints the table.
    Run(suite::Options),
    /// Runs the fast receiver alone.
    Receiver {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: SocketAddr,
        /// Channel secret to verify a sample of signatures with.
        #[arg(long)]
        secret: Option<String>,
        /// Verify one request in this many.
        #[arg(long, default_value_t = 100)]
        sample_every: u64,
    },
    /// Times the channel health and deliveries chart queries over a large deliveries log.
    Health {
        /// Backends to run: sqlite, postgres.
        #[arg(
            long,
            env = "BENCH_BACKENDS",
            value_delimiter = ',',
            default_value = "sqlite,postgres"
        )]
        backends: Vec<String>,
        /// Deliveries in the log.
        #[arg(long, env = "BENCH_HEALTH_ROWS", default_value_t = 1_000_000)]
        rows: u64,
        /// PostgreSQL server to create the bench database on (as a superuser).
        #[arg(
            long,
            env = "BENCH_PG_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        pg_url: String,
        /// Directory for the SQLite database (recreated).
        #[arg(long, env = "BENCH_WORK_DIR")]
        work: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(options) => suite::run(options).await,
        Command::Health {
            backends,
            rows,
            pg_url,
            work,
        } => health_scenario(&backends, rows, &pg_url, work.unwrap_or_else(default_work_dir)).await,
        Command::Receiver {
            listen,
            secret,
            sample_every,
        } => {
            let receiver = receiver::Receiver::new(Instant::now(), sample_every);
            receiver.set_secret(secret);
            let bound = receiver::serve(receiver.clone(), listen).await?;
            eprintln!("receiving on http://{bound}/");
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = receiver.unique_count();
                if now != last {
                    println!(
                        "{now} events ({}/s), signatures checked {} bad {}",
                        now - last,
                        receiver.verified.load(std::sync::atomic::Ordering::Relaxed),
                        receiver.bad_signatures.load(std::sync::atomic::Ordering::Relaxed)
                    );
                    last = now;
                }
            }
        }
    }
}

/// Where the bench keeps its files when not told.
fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("business-wallet-bench")
}

/// Runs the health scenario on each backend and prints its figures.
async fn health_scenario(backends: &[String], rows: u64, pg_url: &str, work: PathBuf) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for backend in backends {
        let dir = work.join(format!("health-{backend}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let url = match backend.as_str() {
            "sqlite" => format!("sqlite://{}", dir.join("health.db").display()),
            "postgres" | "postgresql" => db::fresh_pg_database(pg_url, "bwbench_health").await?,
            other => anyhow::bail!("unknown backend {other}"),
        };
        eprintln!("{backend}: writing {rows} deliveries and measuring");
        let cost = health::health_cost(&url, &dir, rows).await?;
        if backend != "sqlite" {
            db::drop_pg_database(pg_url, "bwbench_health").await?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let line =
            |what: &str, t: health::Timing| format!("| {backend} | {what} | {:.2} | {:.2} |", t.p50_ms, t.p95_ms);
        lines.push(line("health of all 50 channels (Channels list)", cost.list));
        lines.push(line("health of one channel (channel page)", cost.one));
        lines.push(line("chart of the scope, 24 h (Deliveries page)", cost.chart_scope));
        lines.push(line("chart of one channel, 24 h (channel page)", cost.chart_channel));
        lines.push(line(
            "record_outcomes, 64 outcomes (rollup included)",
            cost.record_batch,
        ));
        lines.push(line(
            "the rollup statements alone, 64 outcomes of 50 channels",
            cost.rollup_batch,
        ));
        lines.push(line(
            "the rollup statements alone, 64 outcomes of one channel",
            cost.rollup_one_channel,
        ));
        eprintln!(
            "{backend}: seeded in {:.1} s; {} rollup intervals",
            cost.seed_s, cost.activity_rows
        );
    }
    println!("| backend | query ({rows} deliveries) | p50 ms | p95 ms |\n|---|---|---|---|");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
