//! The harness itself: a started server delivers what it acknowledges to the receiver.

use std::time::Duration;

use crate::harness::{self, Instance, Load, Receiver, Role, WALLET_CREATED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_server_delivers_every_acknowledged_wallet() {
    let _serial = harness::serial();
    let work = harness::work_dir("smoke");
    let instance = Instance::builder(work.path(), "smoke").build();
    let server = instance.start(Role::Both).await;
    let client = instance.client(&instance.admin_token());
    let receiver = Receiver::start().await;
    let channel = client
        .create_platform_webhook("smoke", &receiver.url("hook"), &[WALLET_CREATED], 5000)
        .await
        .expect("an answer");
    assert_eq!(channel.status, 201, "{}", channel.describe());

    let load = Load::start(client.clone(), 2);
    assert!(load.wait_acknowledged(20, Duration::from_secs(30)).await);
    let report = load.stop().await;
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    let missing = receiver
        .wait_for_wallets(&report.acknowledged, Duration::from_secs(30))
        .await;
    assert!(
        missing.is_empty(),
        "{} acknowledged wallets not delivered",
        missing.len()
    );
    println!("smoke: {}; {}", report.summary(), server.memory().expect("running"));
}
