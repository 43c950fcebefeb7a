//! `business-wallet listen`, run as a user would: the README's quickstart pasted into a shell
//! against the real `serve` and `listen` processes, and the receiver on its own (signatures,
//! the chosen status, structured mode), and the loopback refusal it meets without the setting.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "../../business-wallet/tests/common/postgres.rs"]
mod postgres;

const BINARY: &str = env!("CARGO_BIN_EXE_business-wallet");
const WALLET_CREATED: &str = "com.credenco.businesswallet.wallet.created.v1";
const IDENTIFIER_CREATED: &str = "com.credenco.businesswallet.identifier.created.v1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Everything a process (and its children) writes to stdout and stderr, as it comes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    fn capture(child: &mut Child) -> Output {
        let output = Output::default();
        let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout piped")),
            Box::new(child.stderr.take().expect("stderr piped")),
        ];
        for mut stream in streams {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    output
                        .0
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        output
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the text so far; panics with the text after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; output so far:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A process group (a shell and what it started in the background); ended when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// One event block that listen printed: its `name: value` lines.
type Block = BTreeMap<String, String>;

fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut current: Option<Block> = None;
    for line in text.lines() {
        // A block may start right after a curl answer that had no line break.
        if line.contains("--- #") {
            current = Some(Block::new());
        } else if let Some(block) = current.as_mut() {
            if line.starts_with("    ") || !line.starts_with("  ") {
                continue;
            }
            if let Some((name, value)) = line.trim().split_once(':') {
                block.insert(name.to_string(), value.trim().to_string());
                if name == "answered" {
                    found.push(current.take().unwrap());
                }
            }
        }
    }
    found
}

/// The first `sh` block after the README's quickstart heading.
fn quickstart_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = &readme[readme.find("## Quickstart").expect("the README has a quickstart")..];
    let start = section.find("```sh\n").expect("a shell block") + "```sh\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_string()
}

/// The quickstart as written: on the embedded SQLite database of a fresh clone.
#[test]
fn the_readme_quickstart_shows_both_events_verified_then_a_failed_delivery_replayed() {
    run_quickstart(None);
}

/// The same steps with the server on PostgreSQL (`BW_DATABASE__URL`, as the README says).
#[test]
fn the_readme_quickstart_works_the_same_on_postgres() {
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(postgres::fresh_postgres_database("bwtest"));
    run_quickstart(Some(url));
}

/// The quickstart, taken from the README and pasted into a shell, with two substitutions: the
/// binary the tests built instead of `scripts/run.sh` (which builds it and runs it with the
/// arguments given), and free ports instead of 8080 and 9000. Everything else runs as written.
fn run_quickstart(database_url: Option<String>) {
    let (api_port, listen_port) = (free_port(), free_port());
    let mut script = quickstart_block();
    for (written, used) in [
        ("scripts/run.sh", "\"$BW\"".to_string()),
        ("127.0.0.1:8080", format!("127.0.0.1:{api_port}")),
        ("127.0.0.1:9000", format!("127.0.0.1:{listen_port}")),
        ("--port 9000", format!("--port {listen_port}")),
    ] {
        assert!(
            script.contains(written),
            "the quickstart no longer has `{written}`:\n{script}"
        );
        script = script.replace(written, &used);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quickstart.sh"), &script).unwrap();
    let mut shell = Command::new("bash");
    shell
        .args(["-e", "quickstart.sh"])
        .current_dir(dir.path())
        .env("BW", BINARY)
        // Where the server listens and where listen finds it, both on the free port.
        .env("BW_SERVER__LISTEN", format!("127.0.0.1:{api_port}"))
        .env("BUSINESS_WALLET_API", format!("http://127.0.0.1:{api_port}"))
        .env_remove("BUSINESS_WALLET_WEBHOOK_SECRET")
        .env_remove("BUSINESS_WALLET_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match database_url {
        Some(url) => shell.env("BW_DATABASE__URL", url),
        None => shell.env_remove("BW_DATABASE__URL"),
    };
    let mut child = shell.spawn().unwrap();
    let output = Output::capture(&mut child);
    let mut group = Group(child);
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();

    // The shell runs every line, then leaves the server and listen running.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the quickstart did not finish; output:\n{}\nserver log:\n{}",
            output.text(),
            server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "a quickstart line failed ({status}); output:\n{}\nserver log:\n{}",
        output.text(),
        server_log()
    );

    // The replay arrives after the last line: the failed event, once more, answered 200.
    let text = output.wait_for("the replayed delivery", Duration::from_secs(60), |text| {
        blocks(text)
            .iter()
            .any(|b| b.contains_key("seen before") && b["answered"].starts_with("200"))
    });
    assert!(text.contains("created platform channel"), "{text}");
    assert!(
        text.contains("{\"replayed\":1}"),
        "the bulk replay replays one delivery:\n{text}"
    );
    let events = blocks(&text);
    for event in &events {
        assert!(
            event["signature"].starts_with("verified"),
            "every event verifies with the channel's secret: {event:?}\n{text}"
        );
    }
    let created: Vec<&Block> = events.iter().filter(|b| b["type"] == WALLET_CREATED).collect();
    assert_eq!(created.len(), 1, "{text}");
    assert!(created[0]["answered"].starts_with("200"), "{text}");
    let identifiers: Vec<&Block> = events.iter().filter(|b| b["type"] == IDENTIFIER_CREATED).collect();
    let arrivals: Vec<(&str, &str)> = identifiers
        .iter()
        .map(|b| (b["id"].as_str(), b["answered"].as_str()))
        .collect();
    assert_eq!(arrivals.len(), 4, "{arrivals:?}\n{text}");
    let (first, failed) = (arrivals[0].0, arrivals[1].0);
    assert_ne!(first, failed);
    assert!(arrivals[0].1.starts_with("200"), "{arrivals:?}");
    // The second identifier's event: two attempts answered 500 (FAILED), then the replay.
    assert_eq!(
        arrivals[1..].iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [failed; 3],
        "{arrivals:?}"
    );
    assert!(
        arrivals[1].1.starts_with("500") && arrivals[2].1.starts_with("500"),
        "{arrivals:?}"
    );
    assert!(arrivals[3].1.starts_with("200"), "{arrivals:?}");
    assert!(text.contains("from now on answering 500"), "{text}");

    // A wallet's own channel, beside the platform one: it receives that wallet's events.
    let wallet = created[0]["walletexternalkey"].clone();
    let api = format!("http://127.0.0.1:{api_port}");
    let token = Command::new(BINARY)
        .current_dir(dir.path())
        .env("BW_SERVER__LISTEN", format!("127.0.0.1:{api_port}"))
        .args(["token", "--sub", "admin", "--authority", "GLOBAL_WALLET_CRUD"])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let own = listen(&[
        "--create-channel",
        "wallet",
        "--wallet",
        &wallet,
        "--token",
        &token,
        "--api",
        &api,
    ]);
    let started = own.output.text();
    assert!(
        started.contains(&format!("created wallet {wallet} channel")),
        "{started}"
    );
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(format!("{api}/api/v1/wallets/{wallet}/identifiers"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"identifierType": "JWK", "displayName": "Other", "keyType": "Ed25519"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 201);
    let text = own
        .output
        .wait_for("the wallet channel's event", Duration::from_secs(30), |t| {
            blocks(t).len() == 1
        });
    let event = &blocks(&text)[0];
    assert_eq!(event["type"], IDENTIFIER_CREATED, "{text}");
    assert_eq!(event["walletexternalkey"], wallet, "{text}");
    assert!(event["signature"].starts_with("verified"), "{text}");
    // Stopped, listen deletes the channel it created.
    drop(own.group);
    own.output
        .wait_for("the channel deleted", Duration::from_secs(10), |t| {
            t.contains(&format!("channel {} deleted", channel_key(t)))
        });
    drop(group);
}

/// A `listen` process on a free port; ended when dropped.
struct Listen {
    group: Group,
    output: Output,
    url: String,
}

fn listen(args: &[&str]) -> Listen {
    let mut command = Command::new(BINARY);
    command
        .arg("listen")
        .args(["--port", "0"])
        .args(args)
        .env_remove("BUSINESS_WALLET_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().unwrap();
    let output = Output::capture(&mut child);
    let group = Group(child);
    let text = output.wait_for("listen to start", Duration::from_secs(30), |t| {
        t.contains("listening on")
    });
    let url = text
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    Listen { group, output, url }
}

/// The key of the channel listen created, from its first line.
fn channel_key(text: &str) -> String {
    text.split(" channel ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A binary-mode event as the server sends it, signed with `secret` (unsigned when None).
async fn send_event(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    body: &[u8],
    secret: Option<&str>,
) -> reqwest::StatusCode {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/credenco/wallets")
        .header("ce-type", WALLET_CREATED)
        .header("ce-subject", "wallets/w-1")
        .header("ce-walletexternalkey", "w-1")
        .body(body.to_vec());
    if let Some(secret) = secret {
        request = request.header(
            "X-Credenco-Signature",
            webhook_verify::signature_header(&[secret.as_bytes()], now(), body),
        );
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn listen_verifies_signatures_and_answers_the_status_asked_for() {
    let receiver = listen(&["--secret", "whsec_right", "--status", "202"]);
    let client = reqwest::Client::new();
    let body = br#"{"walletExternalKey":"w-1","displayName":"Acme"}"#;
    let url = &receiver.url;

    assert_eq!(send_event(&client, url, "e-1", body, Some("whsec_right")).await, 202);
    // A wrong secret, or no signature at all, is refused as a real receiver would.
    assert_eq!(send_event(&client, url, "e-2", body, Some("whsec_wrong")).await, 401);
    assert_eq!(send_event(&client, url, "e-3", body, None).await, 401);

    // The status changes while it runs; a bad one is refused.
    let control = format!("{}_listen/status", receiver.url);
    let changed = client.put(&control).body("503").send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(
        client.get(&control).send().await.unwrap().text().await.unwrap(),
        "answering 503\n"
    );
    assert_eq!(client.put(&control).body("abc").send().await.unwrap().status(), 400);
    assert_eq!(client.put(&control).body("100").send().await.unwrap().status(), 400);
    assert_eq!(send_event(&client, url, "e-1", body, Some("whsec_right")).await, 503);

    // Structured mode: the attributes and the data in one JSON body.
    let structured = br#"{"specversion":"1.0","id":"e-4","source":"/credenco/wallets","type":"com.credenco.businesswallet.identifier.created.v1","subject":"wallets/w-1/identifiers/i-1","datacontenttype":"application/json","data":{"identifierExternalKey":"i-1"}}"#;
    let status = client
        .post(url)
        .header("content-type", "application/cloudevents+json; charset=utf-8")
        .header(
            "X-Credenco-Signature",
            webhook_verify::signature_header(&[b"whsec_right"], now(), structured),
        )
        .body(structured.to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 503);
    // Signed, but no CloudEvent: 400.
    let status = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "X-Credenco-Signature",
            webhook_verify::signature_header(&[b"whsec_right"], now(), b"{}"),
        )
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);

    let text = receiver
        .output
        .wait_for("six requests", Duration::from_secs(10), |t| blocks(t).len() == 6);
    let events = blocks(&text);
    assert!(events[0]["signature"].starts_with("verified"), "{text}");
    assert_eq!(events[0]["answered"], "202", "{text}");
    assert_eq!(events[0]["subject"], "wallets/w-1");
    assert_eq!(events[0]["walletexternalkey"], "w-1");
    assert!(
        text.contains("\"displayName\": \"Acme\""),
        "the data, pretty-printed:\n{text}"
    );
    assert!(
        events[1]["signature"].starts_with("FAILED: no v1 signature matches"),
        "{text}"
    );
    assert_eq!(events[1]["answered"], "401");
    assert!(
        events[2]["signature"].contains("no X-Credenco-Signature header"),
        "{text}"
    );
    assert_eq!(events[2]["answered"], "401");
    assert_eq!(events[3]["id"], "e-1");
    assert!(events[3]["seen before"].starts_with("arrival 2"), "{text}");
    assert_eq!(events[3]["answered"], "503");
    assert!(text.contains("from now on answering 503"), "{text}");
    assert_eq!(events[4]["type"], IDENTIFIER_CREATED, "{text}");
    assert!(events[4]["signature"].starts_with("verified"), "{text}");
    assert!(text.contains("(structured mode)"), "{text}");
    assert!(text.contains("\"identifierExternalKey\": \"i-1\""), "{text}");
    assert!(events[5].contains_key("not a CloudEvent"), "{text}");
    assert_eq!(events[5]["answered"], "400");
    drop(receiver.group);
}

#[tokio::test]
async fn without_a_secret_listen_says_signatures_are_not_checked() {
    let receiver = listen(&[]);
    let client = reqwest::Client::new();
    assert_eq!(
        send_event(&client, &receiver.url, "e-1", b"{}", Some("whsec_any")).await,
        200
    );
    let text = receiver
        .output
        .wait_for("the event", Duration::from_secs(10), |t| blocks(t).len() == 1);
    assert!(text.contains("signatures are not checked"), "{text}");
    assert!(blocks(&text)[0]["signature"].starts_with("not checked"), "{text}");
}

/// A server started the way the quickstart does, without the loopback allowance.
#[test]
fn a_loopback_channel_refused_by_the_server_names_the_setting_that_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new(BINARY);
    server
        .arg("serve")
        .current_dir(dir.path())
        .env("BW_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("BW_INTEGRATION__ALLOWED_NETWORKS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = server.spawn().unwrap();
    let server_output = Output::capture(&mut child);
    let _server = Group(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server did not start:\n{}",
            server_output.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let token = Command::new(BINARY)
        .current_dir(dir.path())
        .args(["token", "--sub", "admin", "--authority", "GLOBAL_WALLET_CRUD"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let refused = Command::new(BINARY)
        .args(["listen", "--port", "0", "--create-channel", "platform"])
        .args(["--token", token.trim(), "--api", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("400 Bad Request"), "{stderr}");
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(stderr.contains("`integration.allowed_networks`"), "{stderr}");
    assert!(
        stderr.contains("BW_INTEGRATION__ALLOWED_NETWORKS='[\"127.0.0.0/8\"]'"),
        "{stderr}"
    );
}
