//! `bw-bench`: benchmarks of business-wallet on SQLite and PostgreSQL against the machine's own
//! ceilings. `bench/run.sh` builds everything in release mode and runs `bw-bench run`.
//!
//! - `bw-bench run --server PATH`: every scenario and ceiling, then a table.
//! - `bw-bench receiver`: the fast receiver alone (prints a count every second).

mod ceiling;
mod closed;
mod db;
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(options) => suite::run(options).await,
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
