//! `nats-bridge`: the wallet with its events delivered to NATS JetStream.
//!
//! Settings are the wallet's own (`business-wallet.toml`, `BW_` variables); `NATS_URL` names
//! the NATS server (default `nats://127.0.0.1:4222`).

use business_wallet::Settings;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(None)?;
    business_wallet::telemetry::init(&settings.log);
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let listener = TcpListener::bind(&settings.server.listen).await?;
    tracing::info!(address = %listener.local_addr()?, nats = %nats_url, "nats-bridge listening");
    let wallet = nats_bridge::build(settings, &nats_url).await?;
    let shutdown = business_wallet::app::shutdown_on_signals();
    nats_bridge::run(wallet, listener, shutdown).await
}
