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
    /// Check a webhook signature header against a body (read from stdin or --body-file): its
    /// HMAC `v1` values with --secret, its Ed25519 `v1a` value with --jwks-url or --key-file.
    Verify {
        /// A channel secret (repeat during a rotation).
        #[arg(long = "secret", required_unless_present_any = ["jwks_url", "key_file"])]
        secrets: Vec<String>,
        /// The deployment's published signing keys, e.g.
        /// https://wallet.example/api/public/webhook-signing-keys.json.
        #[arg(long, conflicts_with = "key_file")]
        jwks_url: Option<String>,
        /// A saved copy of that JWKS (or a single JWK).
        #[arg(long)]
        key_file: Option<PathBuf>,
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
    /// Manage the Ed25519 keys that sign webhooks.
    SigningKey {
        #[command(subcommand)]
        action: SigningKeyAction,
    },
    /// Receive webhooks on this machine: print each CloudEvent, check its signature, answer a
    /// chosen status; optionally create the channel that points here.
    Listen(listen::ListenArgs),
}

#[derive(Subcommand)]
enum SigningKeyAction {
    /// Add the next key to the generated key file (the embedded default): published at once,
    /// signing after --lead; the oldest keys past their grace period are dropped. Running
    /// instances pick it up within a second.
    Rotate {
        /// How long the new key is published before it signs (default
        /// integration.webhook.signing.publish_lead_secs).
        #[arg(long, value_parser = humantime::parse_duration)]
        lead: Option<Duration>,
    },
    /// Print a new key as an entry for integration.webhook.signing.keys (production).
    Generate {
        /// When it starts signing, RFC 3339 (default: publish_lead_secs from now).
        #[arg(long)]
        signs_from: Option<String>,
    },
}

fn signing_key(settings: &Settings, action: SigningKeyAction) -> anyhow::Result<()> {
    use business_wallet::channels::webhook::keys;
    match action {
        SigningKeyAction::Rotate { lead } => {
            let lead = lead.unwrap_or(Duration::from_secs(
                settings.integration.webhook.signing.publish_lead_secs,
            ));
            let rotated = keys::rotate_key_file(settings, lead)?;
            println!(
                "added key {}: published now, signing from {} ({} keys in {})",
                rotated.kid,
                rotated.signs_from.to_rfc3339(),
                rotated.keys,
                settings.signing_key_file().display()
            );
        }
        SigningKeyAction::Generate { signs_from } => {
            let (entry, kid) = keys::generate_key_setting(settings, signs_from.as_deref())?;
            eprintln!("kid {kid}; add this entry to integration.webhook.signing.keys (it holds the private key):");
            println!("{entry}");
        }
    }
    Ok(())
}

/// Checks the HMAC values against `secrets` and the Ed25519 value against the key set, each
/// when given; prints one line per check.
async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let body = match &args.body_file {
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body)?;
            body
        }
    };
    let mut all_valid = true;
    if !args.secrets.is_empty() {
        let keys: Vec<&[u8]> = args.secrets.iter().map(|s| s.as_bytes()).collect();
        match webhook_verify::verify_now(&args.header, &body, &keys, args.tolerance) {
            Ok(verified) => println!(
                "valid: signed at {} with secret #{}",
                verified.timestamp,
                verified.secret_index + 1
            ),
            Err(err) => {
                eprintln!("invalid: {err}");
                all_valid = false;
            }
        }
    }
    let key_set = match (&args.jwks_url, &args.key_file) {
        (Some(url), _) => Some(
            reqwest::get(url)
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("cannot fetch {url}"))?
                .text()
                .await
                .with_context(|| format!("cannot read {url}"))?,
        ),
        (None, Some(path)) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        (None, None) => None,
    };
    if let Some(text) = key_set {
        let keys = webhook_verify::PublicKeys::from_jwks(&text)?;
        match webhook_verify::verify_ed25519(&args.header, &body, &keys, args.tolerance, std::time::SystemTime::now()) {
            Ok(verified) => println!(
                "valid: signed at {} with Ed25519 key {}",
                verified.timestamp, verified.kid
            ),
            Err(err) => {
                eprintln!("invalid: {err}");
                all_valid = false;
            }
        }
    }
    Ok(all_valid)
}

struct VerifyArgs {
    secrets: Vec<String>,
    jwks_url: Option<String>,
    key_file: Option<PathBuf>,
    header: String,
    body_file: Option<PathBuf>,
    tolerance: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Listen(args) => listen::run(args).await,
        Command::Verify {
            secrets,
            jwks_url,
            key_file,
            header,
            body_file,
            tolerance,
        } => {
            let args = VerifyArgs {
                secrets,
                jwks_url,
                key_file,
                header,
                body_file,
                tolerance,
            };
            if verify(args).await? {
                Ok(())
            } else {
                std::process::exit(1);
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
                Command::SigningKey { action } => signing_key(&settings, action),
                Command::Verify { .. } | Command::Listen(_) => unreachable!("handled above"),
            }
        }
    }
}
