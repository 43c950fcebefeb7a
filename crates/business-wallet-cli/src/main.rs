//! The `business-wallet` binary: argument parsing and start-up only; everything else is in the
//! `business-wallet` library.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use business_wallet::{app, auth, telemetry, Application, Settings};
use clap::{Parser, Subcommand};

mod listen;

#[derive(Parser)]
#[command(name = "business-wallet", version, about = "Business Wallet integration core")]
struct Cli {
    /// TOML configuration file (default: business-wallet.toml when present). `BW_` environment
    /// variables override it, e.g. BW_DATABASE__URL.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the dispatcher (or one of them).
    Serve {
        /// Serve the HTTP API only; another instance dispatches.
        #[arg(long, conflicts_with = "dispatcher_only")]
        api_only: bool,
        /// Run the dispatcher only; no HTTP listener.
        #[arg(long)]
        dispatcher_only: bool,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Mint a bearer token signed with the local key.
    Token {
        /// The token's subject.
        #[arg(long)]
        sub: String,
        /// An authority to grant (repeat for several, or separate with commas).
        #[arg(long = "authority", required = true, value_delimiter = ',')]
        authorities: Vec<String>,
        /// The wallet that non-global authorities apply to.
        #[arg(long)]
        wallet: Option<String>,
        /// Lifetime, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Check a webhook signature header against a body (read from stdin or --body-file).
    Verify {
        /// A channel secret (repeat during a rotation).
        #[arg(long = "secret", required = true)]
        secrets: Vec<String>,
        /// The X-Credenco-Signature header value.
        #[arg(long)]
        header: String,
        /// File with the raw body; stdin when absent.
        #[arg(long)]
        body_file: Option<PathBuf>,
        /// Accepted age of the timestamp, e.g. 5m.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        tolerance: Duration,
    },
    /// Receive webhooks on this machine: print each CloudEvent, check its signature, answer a
    /// chosen status; optionally create the channel that points here.
    Listen(listen::ListenArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Listen(args) => listen::run(args).await,
        Command::Verify {
            secrets,
            header,
            body_file,
            tolerance,
        } => {
            let body = match body_file {
                Some(path) => std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
                None => {
                    let mut body = Vec::new();
                    std::io::stdin().read_to_end(&mut body)?;
                    body
                }
            };
            let keys: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
            match webhook_verify::verify_now(&header, &body, &keys, tolerance) {
                Ok(verified) => {
                    println!(
                        "valid: signed at {} with secret #{}",
                        verified.timestamp,
                        verified.secret_index + 1
                    );
                    Ok(())
                }
                Err(err) => {
                    eprintln!("invalid: {err}");
                    std::process::exit(1);
                }
            }
        }
        command => {
            let mut settings = Settings::load(cli.config.as_deref())?;
            match command {
                Command::Serve {
                    api_only,
                    dispatcher_only,
                } => {
                    if api_only {
                        settings.server.dispatcher_enabled = false;
                    }
                    if dispatcher_only {
                        settings.server.api_enabled = false;
                    }
                    telemetry::init(&settings.log);
                    let application = Application::build(settings).await?;
                    application.run_until_stopped(app::shutdown_on_signals()).await
                }
                Command::Migrate => {
                    telemetry::init(&settings.log);
                    let db = business_wallet::store::Db::connect(&settings).await?;
                    db.migrate().await?;
                    db.close().await;
                    println!("migrations applied");
                    Ok(())
                }
                Command::Token {
                    sub,
                    authorities,
                    wallet,
                    ttl,
                } => {
                    let token = auth::mint_local_token(&settings, &sub, &authorities, wallet.as_deref(), ttl)?;
                    println!("{token}");
                    Ok(())
                }
                Command::Verify { .. } | Command::Listen(_) => unreachable!("handled above"),
            }
        }
    }
}
