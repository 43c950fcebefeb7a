//! The real `business-wallet serve` binary as a child process: its configuration, start,
//! readiness, tokens, the bench channel, and a clean stop.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// Which database a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a fresh data directory.
    Sqlite,
    /// A fresh database on the local PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Which roles the instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and dispatcher.
    Both,
    /// API only (ingestion; a backlog is prepared).
    ApiOnly,
}

/// Where one scenario's server keeps its state.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The server binary.
    pub binary: PathBuf,
    /// The configuration file written for it.
    pub config: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// `database.url`.
    pub database_url: String,
    /// The API's base URL.
    pub base_url: String,
    log: PathBuf,
}

/// A free port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Instance {
    /// Writes the configuration of scenario `name` under `work`: a fresh data directory, the
    /// shared key files (so one token serves every scenario), loopback allowed through the SSRF
    /// gate, and `database_url` (None: SQLite in the data directory).
    pub fn prepare(binary: &Path, work: &Path, name: &str, database_url: Option<String>) -> anyhow::Result<Instance> {
        let data_dir = work.join(format!("data-{name}"));
        if data_dir.exists() {
            fs::remove_dir_all(&data_dir)?;
        }
        fs::create_dir_all(&data_dir)?;
        let port = free_port()?;
        let database_url =
            database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("business-wallet.db").display()));
        let config = work.join(format!("{name}.toml"));
        let text = format!(
            r#"# Written by bw-bench for the scenario "{name}".
data_dir = "{data}"
mode = "on-premise"

[server]
listen = "127.0.0.1:{port}"

[database]
url = "{database_url}"

[auth]
local_key_file = "{work}/jwt-hs256.key"

[secrets]
key_file = "{work}/secret-encryption.key"

[integration]
allowed_networks = ["127.0.0.0/8"]
"#,
            data = data_dir.display(),
            work = work.display(),
        );
        fs::write(&config, text)?;
        Ok(Instance {
            binary: binary.to_path_buf(),
            config,
            log: work.join(format!("{name}.log")),
            data_dir,
            database_url,
            base_url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Mints a GLOBAL_WALLET_CRUD token with the local key.
    pub fn token(&self) -> anyhow::Result<String> {
        let out = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args([
                "token",
                "--sub",
                "bench",
                "--authority",
                "GLOBAL_WALLET_CRUD",
                "--ttl",
                "6h",
            ])
            .output()
            .context("running business-wallet token")?;
        if !out.status.success() {
            bail!("token failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Starts `serve` and waits until it is ready (API) or has started (dispatcher only).
    pub async fn start(&self, role: Role) -> anyhow::Result<Server> {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(&self.config).arg("serve");
        if role == Role::ApiOnly {
            command.arg("--api-only");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let server = Server { child };
        let client = reqwest::Client::new();
        let ready = format!("{}/health/ready", self.base_url);
        for _ in 0..600 {
            if let Ok(response) = client.get(&ready).send().await {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("the server did not become ready; see {}", self.log.display())
    }

    /// Creates the platform webhook channel subscribed to wallet.created.v1, pointing at
    /// `receiver_url`; returns its HMAC secret.
    pub async fn create_channel(&self, token: &str, receiver_url: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "name": "bench",
            "type": "WEBHOOK",
            "eventTypeFilters": ["com.credenco.businesswallet.wallet.created.v1"],
            "webhook": {"url": receiver_url, "timeoutMs": 10000},
        });
        let response = reqwest::Client::new()
            .post(format!("{}/api/integration-channels", self.base_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let value: serde_json::Value = response.json().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("creating the channel: {status} {value}");
        }
        Ok(value["hmacSecret"].as_str().unwrap_or_default().to_string())
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait (SIGKILL after 20 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..2000 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
