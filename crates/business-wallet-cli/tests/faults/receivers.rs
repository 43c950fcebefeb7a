//! Webhook receivers that misbehave, against the real binary: a receiver that hangs, resets
//! the connection, closes half-way through its answer, trickles it, answers 50 MB, or serves a
//! self-signed certificate, and an OAuth2 token endpoint that answers 100 MB.
//!
//! What a user expects, scenario by scenario:
//! - An attempt never takes much longer than the channel's `timeoutMs`, whatever the receiver
//!   does, and a bad receiver holds up no other channel.
//! - A fault of the receiver or of the network (no answer, a reset, an answer broken off
//!   before its status line, 5xx, a TLS error) is retried; once the receiver behaves again,
//!   every acknowledged event arrives (0 lost), and the only repeats are the same event (same
//!   `ce-id`) whose acceptance the sender could not see.
//! - A complete `2xx` status line is believed even when the body after it breaks off or
//!   trickles: the receiver has said it took the event.
//! - Whatever size an answer has, the server keeps only the configured excerpt
//!   (`integration.dispatch.response_excerpt_bytes`) and its memory does not grow with it.
//! - A receiver that never behaves (a certificate nobody can check) ends FAILED after
//!   `integration.max_attempts`, with the TLS error in the deliveries log, never delivered.
//! - The server keeps running and answering JSON throughout; no restart is needed.
//!
//! These scenarios run on SQLite, the embedded default (the broker scenarios on PostgreSQL).

use std::time::{Duration, Instant};

use crate::harness::serial;
use crate::misbehaving::{Behaviour, FaultReceiver};
use crate::scenario::{
    assert_alive, create_channel, create_wallets, create_webhook, deliveries, delivery, event_ids, peak_growth_mib,
    reset_peak, start, tally, wait_all_in_state, Arrival,
};

/// Default `integration.dispatch.response_excerpt_bytes`.
const EXCERPT_BYTES: usize = 4096;

/// The events a receiver accepted, duplicates included.
fn accepted_ids(receiver: &FaultReceiver) -> Vec<Arrival> {
    receiver
        .seen()
        .into_iter()
        .filter(|s| s.accepted)
        .map(|s| (s.ce_id, s.wallet))
        .collect()
}

/// The attempts of every delivery of `channel`, flattened.
async fn attempts(client: &crate::harness::Client, channel: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for item in deliveries(client, channel).await {
        let detail = delivery(client, item["deliveryExternalKey"].as_str().unwrap()).await;
        all.extend(detail["attempts"].as_array().unwrap().iter().cloned());
    }
    all
}

/// Failed attempts recorded for a delivery (one claimed now is not over yet).
fn failed_attempts(item: &serde_json::Value) -> i64 {
    let claimed = item["attempts"].as_i64().unwrap_or(0);
    if item["state"] == "DELIVERING" {
        claimed - 1
    } else {
        claimed
    }
}

/// Waits until `failing` deliveries of `channel` are not delivered and each has at least
/// `count` failed attempts recorded.
async fn wait_failed_attempts(client: &crate::harness::Client, channel: &str, failing: usize, count: i64) {
    let reached = crate::harness::eventually(Duration::from_secs(60), || async {
        let items = deliveries(client, channel).await;
        let undelivered: Vec<&serde_json::Value> = items.iter().filter(|i| i["state"] != "DELIVERED").collect();
        undelivered.len() == failing && undelivered.iter().all(|i| failed_attempts(i) >= count)
    })
    .await;
    assert!(
        reached,
        "{channel}: not {failing} deliveries with {count} failed attempts each: {:#?}",
        deliveries(client, channel).await
    );
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_holds_up_no_other_channel() {
    let _serial = serial();
    let mut fixture = start("hang", &[]).await;
    let client = fixture.client.clone();
    let hanging = FaultReceiver::start(Behaviour::Hang).await;
    let healthy = FaultReceiver::start(Behaviour::Accept).await;
    let timeout_ms = 4000;
    let slow = create_webhook(&client, "hangs", &hanging.url("/hook"), timeout_ms).await;
    let fine = create_webhook(&client, "healthy", &healthy.url("/hook"), timeout_ms).await;

    // More events than one channel may have in flight (8): the rest wait behind the hang.
    let count = 12;
    let started = Instant::now();
    let wallets = create_wallets(&client, "Hang", count).await;
    healthy
        .wait_for("every event", Duration::from_secs(20), |r| {
            r.accepted_by_id().len() == count
        })
        .await;
    let healthy_done = started.elapsed();
    assert!(
        healthy_done < Duration::from_millis(timeout_ms),
        "the healthy channel took {healthy_done:?}, longer than one hanging attempt ({timeout_ms} ms)"
    );
    assert!(!hanging.seen().is_empty(), "the hanging receiver was sent to meanwhile");

    // Each hanging attempt ends at the channel's timeout, is recorded, and is retried.
    wait_failed_attempts(&client, &slow, count, 1).await;
    let tried = attempts(&client, &slow).await;
    let timed_out: Vec<&serde_json::Value> = tried
        .iter()
        .filter(|a| a["error"].as_str() == Some(&format!("no complete answer within {timeout_ms} ms")))
        .collect();
    assert!(!timed_out.is_empty(), "{tried:#?}");
    let longest = timed_out
        .iter()
        .map(|a| a["durationMs"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(
        (timeout_ms as i64..timeout_ms as i64 + 1500).contains(&longest),
        "a hanging attempt took {longest} ms with a {timeout_ms} ms timeout"
    );

    // The receiver behaves again: everything arrives, nothing twice.
    hanging.set(Behaviour::Accept);
    let healed = Instant::now();
    let recovery = wait_all_in_state(&client, &slow, count, "DELIVERED", Duration::from_secs(60)).await;
    let expected = event_ids(&client, &slow, &wallets).await;
    let slow_tally = tally(&expected, &accepted_ids(&hanging));
    let fine_tally = tally(&event_ids(&client, &fine, &wallets).await, &accepted_ids(&healthy));
    assert_eq!((slow_tally.lost, slow_tally.duplicates), (0, 0), "{slow_tally:?}");
    assert_eq!((fine_tally.lost, fine_tally.duplicates), (0, 0), "{fine_tally:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "hang: {count} events; healthy channel had all in {healthy_done:?} while the other hung; \
         {} hanging attempts timed out (longest {longest} ms); recovered in {recovery:?} \
         ({:?} since the receiver healed); lost 0, duplicates 0",
        timed_out.len(),
        healed.elapsed()
    );
}

#[tokio::test]
async fn a_receiver_that_resets_the_connection_is_retried_until_it_accepts() {
    let _serial = serial();
    let mut fixture = start("reset", &[]).await;
    let client = fixture.client.clone();
    let receiver = FaultReceiver::start(Behaviour::Reset).await;
    let channel = create_webhook(&client, "resets", &receiver.url("/hook"), 2000).await;
    let count = 5;
    let wallets = create_wallets(&client, "Reset", count).await;
    wait_failed_attempts(&client, &channel, count, 3).await;
    let tried = attempts(&client, &channel).await;
    for attempt in &tried {
        let error = attempt["error"].as_str().unwrap_or_default().to_ascii_lowercase();
        assert!(
            attempt["outcome"] == "RETRYABLE" && error.contains("reset"),
            "a reset is a retryable connection error: {attempt:#}"
        );
    }

    receiver.set(Behaviour::Accept);
    let recovery = wait_all_in_state(&client, &channel, count, "DELIVERED", Duration::from_secs(30)).await;
    let result = tally(&event_ids(&client, &channel, &wallets).await, &accepted_ids(&receiver));
    assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "reset: {count} events, {} reset attempts ({:?}), recovered in {recovery:?}; lost 0, duplicates 0",
        tried.len(),
        tried[0]["error"]
    );
}

#[tokio::test]
async fn a_receiver_that_closes_mid_answer_is_retried_before_its_status_and_believed_after() {
    let _serial = serial();
    let mut fixture = start("close", &[]).await;
    let client = fixture.client.clone();
    let mid_head = FaultReceiver::start(Behaviour::CloseMidHeaders).await;
    let mid_body = FaultReceiver::start(Behaviour::CloseMidBody).await;
    let head_channel = create_webhook(&client, "closes in the head", &mid_head.url("/hook"), 2000).await;
    let body_channel = create_webhook(&client, "closes in the body", &mid_body.url("/hook"), 2000).await;
    let count = 4;
    let wallets = create_wallets(&client, "Close", count).await;

    // A 200 status line was sent in full: the receiver took the event, once.
    wait_all_in_state(&client, &body_channel, count, "DELIVERED", Duration::from_secs(30)).await;
    for attempt in attempts(&client, &body_channel).await {
        assert_eq!(attempt["response"]["status"], 200, "{attempt:#}");
        assert_eq!(
            attempt["response"]["body"], "{\"received\":",
            "the excerpt is what came: {attempt:#}"
        );
    }
    let body_tally = tally(
        &event_ids(&client, &body_channel, &wallets).await,
        &accepted_ids(&mid_body),
    );
    assert_eq!((body_tally.lost, body_tally.duplicates), (0, 0), "{body_tally:?}");

    // Broken off before the status line ended: no answer, so retried.
    wait_failed_attempts(&client, &head_channel, count, 1).await;
    let tried = attempts(&client, &head_channel).await;
    for attempt in &tried {
        assert_eq!(attempt["outcome"], "RETRYABLE", "{attempt:#}");
        assert!(
            attempt["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("request failed"),
            "{attempt:#}"
        );
    }
    mid_head.set(Behaviour::Accept);
    let recovery = wait_all_in_state(&client, &head_channel, count, "DELIVERED", Duration::from_secs(30)).await;
    let head_tally = tally(
        &event_ids(&client, &head_channel, &wallets).await,
        &accepted_ids(&mid_head),
    );
    assert_eq!((head_tally.lost, head_tally.duplicates), (0, 0), "{head_tally:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "close: {count} events; closed in the body: delivered once each; closed in the head: {} \
         retried attempts ({:?}), recovered in {recovery:?}; lost 0, duplicates 0",
        tried.len(),
        tried[0]["error"]
    );
}

#[tokio::test]
async fn a_trickling_answer_is_cut_at_the_timeout() {
    let _serial = serial();
    let mut fixture = start("trickle", &[]).await;
    let client = fixture.client.clone();
    let interval = Duration::from_millis(100);
    // The whole answer (about 60 bytes) would take 6 s; its status line alone 1.7 s.
    let trickling = FaultReceiver::start(Behaviour::Trickle(interval)).await;
    // A 200 head at once, then a 100-byte body that would take 10 s.
    let trickling_body = FaultReceiver::start(Behaviour::TrickleBody(interval)).await;
    let timeout_ms = 1000;
    let channel = create_webhook(&client, "trickles", &trickling.url("/hook"), timeout_ms).await;
    let body_channel = create_webhook(&client, "trickles its body", &trickling_body.url("/hook"), timeout_ms).await;
    let count = 3;
    let wallets = create_wallets(&client, "Trickle", count).await;

    wait_failed_attempts(&client, &channel, count, 1).await;
    let tried = attempts(&client, &channel).await;
    let mut longest = 0;
    for attempt in &tried {
        assert_eq!(
            attempt["error"],
            format!("no complete answer within {timeout_ms} ms"),
            "{attempt:#}"
        );
        longest = longest.max(attempt["durationMs"].as_i64().unwrap());
    }
    assert!(
        longest < timeout_ms as i64 + 1000,
        "a trickled attempt took {longest} ms"
    );

    // The status came at once: believed, and the attempt still ends at the timeout.
    wait_all_in_state(&client, &body_channel, count, "DELIVERED", Duration::from_secs(30)).await;
    let mut longest_body = 0;
    for attempt in attempts(&client, &body_channel).await {
        assert_eq!(attempt["response"]["status"], 200, "{attempt:#}");
        longest_body = longest_body.max(attempt["durationMs"].as_i64().unwrap());
    }
    assert!(
        longest_body < timeout_ms as i64 + 1000,
        "a trickled body took {longest_body} ms"
    );

    trickling.set(Behaviour::Accept);
    let recovery = wait_all_in_state(&client, &channel, count, "DELIVERED", Duration::from_secs(30)).await;
    let result = tally(&event_ids(&client, &channel, &wallets).await, &accepted_ids(&trickling));
    assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
    let body_tally = tally(
        &event_ids(&client, &body_channel, &wallets).await,
        &accepted_ids(&trickling_body),
    );
    assert_eq!((body_tally.lost, body_tally.duplicates), (0, 0), "{body_tally:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "trickle: {count} events; {} trickled attempts cut at the {timeout_ms} ms timeout (longest {longest} ms); \
         trickled bodies delivered in at most {longest_body} ms; recovered in {recovery:?}; lost 0, duplicates 0",
        tried.len()
    );
}

#[tokio::test]
async fn fifty_megabyte_answers_are_capped_and_memory_stays_flat() {
    let _serial = serial();
    let mut fixture = start("huge", &[]).await;
    let client = fixture.client.clone();
    let big_ok = FaultReceiver::start(Behaviour::Accept).await;
    let big_error = FaultReceiver::start(Behaviour::Accept).await;
    let ok_channel = create_webhook(&client, "answers 200 with 50 MB", &big_ok.url("/hook"), 5000).await;
    let error_channel = create_webhook(&client, "answers 500 with 50 MB", &big_error.url("/hook"), 5000).await;
    // A first event through both, so that connection pools and buffers exist before measuring.
    let mut wallets = create_wallets(&client, "Warm", 1).await;
    wait_all_in_state(&client, &ok_channel, 1, "DELIVERED", Duration::from_secs(30)).await;
    wait_all_in_state(&client, &error_channel, 1, "DELIVERED", Duration::from_secs(30)).await;

    let fifty_mb = 50 * 1024 * 1024;
    big_ok.set(Behaviour::Huge {
        status: 200,
        bytes: fifty_mb,
        chunked: false,
    });
    big_error.set(Behaviour::Huge {
        status: 500,
        bytes: fifty_mb,
        chunked: true,
    });
    let before = reset_peak(&fixture.server);
    let count = 3;
    wallets.extend(create_wallets(&client, "Huge", count).await);
    wait_all_in_state(&client, &ok_channel, count + 1, "DELIVERED", Duration::from_secs(60)).await;
    wait_failed_attempts(&client, &error_channel, count, 1).await;
    let error_channel_items = deliveries(&client, &error_channel).await;
    let still_failing = error_channel_items.iter().filter(|i| i["state"] == "PENDING").count();
    assert_eq!(still_failing, count, "{error_channel_items:#?}");
    crate::harness::eventually(Duration::from_secs(30), || async {
        big_error
            .seen()
            .iter()
            .filter(|s| s.behaviour != Behaviour::Accept)
            .count()
            >= 2 * count
    })
    .await;
    let after = fixture.server.memory().expect("the server is running");
    let huge_answers = big_ok.seen().len() + big_error.seen().len() - 2;

    for attempt in attempts(&client, &ok_channel)
        .await
        .into_iter()
        .chain(attempts(&client, &error_channel).await)
    {
        let excerpt = attempt["response"]["body"].as_str().unwrap_or_default();
        assert!(excerpt.len() <= EXCERPT_BYTES, "an excerpt of {} bytes", excerpt.len());
        if attempt["response"]["status"] == 500 {
            assert_eq!(attempt["outcome"], "RETRYABLE", "{attempt:#}");
            assert!(
                excerpt.starts_with("{\"access_token\":\"aaa"),
                "the excerpt is the start of the body"
            );
        }
    }
    let growth = peak_growth_mib(before, after);
    assert!(
        growth < 10.0,
        "{huge_answers} answers of 50 MB grew the server's peak memory by {growth:.1} MiB ({before} -> {after})"
    );

    big_error.set(Behaviour::Accept);
    let recovery = wait_all_in_state(&client, &error_channel, count + 1, "DELIVERED", Duration::from_secs(30)).await;
    let ok_tally = tally(&event_ids(&client, &ok_channel, &wallets).await, &accepted_ids(&big_ok));
    let error_tally = tally(
        &event_ids(&client, &error_channel, &wallets).await,
        &accepted_ids(&big_error),
    );
    assert_eq!((ok_tally.lost, ok_tally.duplicates), (0, 0), "{ok_tally:?}");
    assert_eq!((error_tally.lost, error_tally.duplicates), (0, 0), "{error_tally:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "50 MB: {count} events, {huge_answers} answers of 50 MB (200 and 500); peak memory {before} -> {after}, \
         growth {growth:.1} MiB; 500s recovered in {recovery:?}; lost 0, duplicates 0"
    );
}

#[tokio::test]
async fn a_self_signed_receiver_is_never_delivered_to_and_fails_with_a_tls_error() {
    let _serial = serial();
    let max_attempts = 3;
    let mut fixture = start("tls", &[("integration", "max_attempts", &max_attempts.to_string())]).await;
    let client = fixture.client.clone();
    let self_signed = FaultReceiver::start_self_signed_tls(Behaviour::Accept).await;
    let healthy = FaultReceiver::start(Behaviour::Accept).await;
    let tls_channel = create_webhook(&client, "self-signed", &self_signed.url("/hook"), 2000).await;
    let fine = create_webhook(&client, "healthy", &healthy.url("/hook"), 2000).await;
    let count = 3;
    let wallets = create_wallets(&client, "Tls", count).await;

    let failed_after = wait_all_in_state(&client, &tls_channel, count, "FAILED", Duration::from_secs(60)).await;
    let tried = attempts(&client, &tls_channel).await;
    assert_eq!(tried.len(), count * max_attempts, "{tried:#?}");
    for attempt in &tried {
        let error = attempt["error"].as_str().unwrap_or_default();
        assert_eq!(attempt["outcome"], "RETRYABLE", "{attempt:#}");
        assert!(error.contains("certificate"), "the TLS error is named: {error}");
    }
    for item in deliveries(&client, &tls_channel).await {
        assert!(
            item["lastError"].as_str().unwrap_or_default().contains("certificate"),
            "{item:#}"
        );
    }
    assert!(
        self_signed.seen().is_empty(),
        "a request got past the certificate check"
    );
    assert!(
        self_signed.connections() >= count * max_attempts,
        "every attempt tried TLS"
    );

    wait_all_in_state(&client, &fine, count, "DELIVERED", Duration::from_secs(30)).await;
    let fine_tally = tally(&event_ids(&client, &fine, &wallets).await, &accepted_ids(&healthy));
    assert_eq!((fine_tally.lost, fine_tally.duplicates), (0, 0), "{fine_tally:?}");
    assert_alive(&mut fixture).await;
    eprintln!(
        "self-signed: {count} events, {} TLS attempts ({:?}), FAILED after {max_attempts} attempts in {failed_after:?}, \
         0 delivered to it; the healthy channel got all {count}",
        tried.len(),
        tried[0]["error"]
    );
}

#[tokio::test]
async fn a_hundred_megabyte_token_answer_fails_the_attempt_and_memory_stays_flat() {
    let _serial = serial();
    let mut fixture = start("oauth2", &[]).await;
    let client = fixture.client.clone();
    let token_endpoint = FaultReceiver::start(Behaviour::Token).await;
    let receiver = FaultReceiver::start(Behaviour::Accept).await;
    let channel = create_channel(
        &client,
        serde_json::json!({
            "name": "oauth2",
            "type": "WEBHOOK",
            "webhook": {
                "url": receiver.url("/hook"),
                "timeoutMs": 10000,
                "oauth2": {"tokenUrl": token_endpoint.url("/token"), "clientId": "faults", "clientSecret": "s3cret"}
            }
        }),
    )
    .await;
    // A first token and delivery before measuring; then the cached token is revoked (a 401
    // makes the channel fetch a new one), and the token endpoint answers 100 MB.
    let mut wallets = create_wallets(&client, "Warm", 1).await;
    wait_all_in_state(&client, &channel, 1, "DELIVERED", Duration::from_secs(30)).await;
    let hundred_mb = 100 * 1024 * 1024;
    token_endpoint.set(Behaviour::Huge {
        status: 200,
        bytes: hundred_mb,
        chunked: true,
    });
    receiver.set(Behaviour::Huge {
        status: 401,
        bytes: 0,
        chunked: false,
    });
    let before = reset_peak(&fixture.server);
    let count = 2;
    wallets.extend(create_wallets(&client, "Token", count).await);
    let wait = crate::harness::eventually(Duration::from_secs(60), || async {
        let items = deliveries(&client, &channel).await;
        let tried: Vec<&serde_json::Value> = items.iter().filter(|i| i["attempts"].as_i64() > Some(0)).collect();
        tried.len() == items.len()
            && items.iter().filter(|i| i["state"] != "DELIVERED").all(|i| {
                i["lastError"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("OAuth2 token response"))
            })
            && items.iter().filter(|i| i["state"] != "DELIVERED").count() == count
    })
    .await;
    let items = deliveries(&client, &channel).await;
    assert!(wait, "the huge token answer is recorded on every delivery: {items:#?}");
    let after = fixture.server.memory().expect("the server is running");
    let growth = peak_growth_mib(before, after);
    let errors: Vec<String> = items
        .iter()
        .filter(|i| i["state"] != "DELIVERED")
        .map(|i| format!("{}: {}", i["state"], i["lastError"]))
        .collect();
    assert!(
        growth < 10.0,
        "a 100 MB token answer grew the server's peak memory by {growth:.1} MiB ({before} -> {after}); {errors:?}"
    );
    for error in &errors {
        assert!(
            error.contains("larger than"),
            "the error says the answer is too large: {error}"
        );
    }

    // The token endpoint and the receiver behave again: everything arrives with the new token.
    token_endpoint.set(Behaviour::Token);
    receiver.set(Behaviour::Accept);
    let recovery = wait_all_in_state(&client, &channel, count + 1, "DELIVERED", Duration::from_secs(60)).await;
    let result = tally(&event_ids(&client, &channel, &wallets).await, &accepted_ids(&receiver));
    assert_eq!((result.lost, result.duplicates), (0, 0), "{result:?}");
    for seen in receiver.seen().iter().filter(|s| s.accepted) {
        assert_eq!(seen.authorization, "Bearer fault-test-token");
    }
    assert_alive(&mut fixture).await;
    eprintln!(
        "oauth2 100 MB: {count} events; errors {errors:?}; peak memory {before} -> {after}, growth {growth:.1} MiB; \
         recovered in {recovery:?}; lost 0, duplicates 0"
    );
}
