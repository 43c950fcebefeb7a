//! One `business-wallet serve` instance as a child process: its configuration, its start
//! (waiting for `/health/ready`), its tokens, its memory, and its death by SIGKILL.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;
use super::{eventually, free_port};

/// The binary under test, built by Cargo for this test target.
pub const BINARY: &str = env!("CARGO_BIN_EXE_business-wallet");

/// Which roles a started instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and dispatcher (`serve`).
    Both,
    /// The API only (`serve --api-only`).
    ApiOnly,
    /// The dispatcher only (`serve --dispatcher-only`): no listener; started when its log says
    /// `dispatcher started`.
    DispatcherOnly,
}

/// The configuration of one instance: a TOML file under the scenario's work directory, its data
/// directory, and its port. Instances made in the same work directory share the token key and
/// the secret-encryption key, so that one token works on all of them and each can decrypt the
/// channels the others stored (as instances sharing a PostgreSQL database must).
#[derive(Debug, Clone)]
pub struct Instance {
    /// Name within the scenario (file names).
    pub name: String,
    /// The configuration file.
    pub config: PathBuf,
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// `database.url`.
    pub database_url: String,
    /// The API port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:{port}`.
    pub base_url: String,
    /// Where the process's stdout and stderr go (appended across restarts).
    pub log: PathBuf,
}

/// Builds an [`Instance`]: `Instance::builder(work, "a").database_url(url).set("database",
/// "busy_timeout_ms", "500").build()`.
#[derive(Debug, Clone)]
pub struct InstanceBuilder {
    work: PathBuf,
    name: String,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    /// Section ("" for the top level) -> key -> TOML value text.
    settings: BTreeMap<String, BTreeMap<String, String>>,
}

impl InstanceBuilder {
    /// Uses this data directory instead of `{work}/{name}-data` (e.g. a tmpfs mount point).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets `database.url` (default: SQLite in the data directory).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Sets one setting: `section` is the TOML table (`"integration.dispatch"`, `""` for the
    /// top level) and `value` is TOML text (`"500"`, `"\"amqp\""`, `"[\"127.0.0.0/8\"]"`).
    /// Later calls override earlier ones and the harness's own choices.
    pub fn set(mut self, section: &str, key: &str, value: &str) -> Self {
        self.settings
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Writes the configuration file and returns the instance (not started).
    ///
    /// # Panics
    /// The file or the data directory cannot be written.
    pub fn build(self) -> Instance {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| self.work.join(format!("{}-data", self.name)));
        fs::create_dir_all(&data_dir).expect("create the data directory");
        let port = free_port();
        let database_url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("business-wallet.db").display()));
        let mut settings = BTreeMap::<String, BTreeMap<String, String>>::new();
        let mut put = |section: &str, key: &str, value: String| {
            settings
                .entry(section.to_string())
                .or_default()
                .insert(key.to_string(), value);
        };
        put("", "data_dir", toml_string(&data_dir.display().to_string()));
        put("", "mode", toml_string("on-premise"));
        put("server", "listen", toml_string(&format!("127.0.0.1:{port}")));
        put("server", "shutdown_grace_secs", "5".into());
        put("database", "url", toml_string(&database_url));
        put(
            "auth",
            "local_key_file",
            toml_string(&self.work.join("jwt-hs256.key").display().to_string()),
        );
        put(
            "secrets",
            "key_file",
            toml_string(&self.work.join("secret-encryption.key").display().to_string()),
        );
        put("integration", "allowed_networks", "[\"127.0.0.0/8\"]".into());
        put("log", "format", toml_string("json"));
        put("log", "level", toml_string("info"));
        for (section, entries) in &self.settings {
            for (key, value) in entries {
                put(section, key, value.clone());
            }
        }
        let mut text = format!("# Written by the fault tests for the instance \"{}\".\n", self.name);
        if let Some(top) = settings.get("") {
            for (key, value) in top {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        for (section, entries) in settings.iter().filter(|(section, _)| !section.is_empty()) {
            text.push_str(&format!("\n[{section}]\n"));
            for (key, value) in entries {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        let config = self.work.join(format!("{}.toml", self.name));
        fs::write(&config, text).expect("write the configuration file");
        Instance {
            log: self.work.join(format!("{}.log", self.name)),
            name: self.name,
            config,
            data_dir,
            database_url,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Instance {
    /// Starts describing an instance named `name` whose files live in `work`.
    pub fn builder(work: &Path, name: &str) -> InstanceBuilder {
        InstanceBuilder {
            work: work.to_path_buf(),
            name: name.to_string(),
            data_dir: None,
            database_url: None,
            settings: BTreeMap::new(),
        }
    }

    /// Mints a GLOBAL_WALLET_CRUD token (6 h) with the binary's `token` subcommand.
    ///
    /// # Panics
    /// The subcommand fails.
    pub fn admin_token(&self) -> String {
        self.token("faults", &["GLOBAL_WALLET_CRUD"], None)
    }

    /// Mints a token for `sub` with `authorities` (and the `wallet` claim) with the binary's
    /// `token` subcommand and the instance's local key.
    ///
    /// # Panics
    /// The subcommand fails.
    pub fn token(&self, sub: &str, authorities: &[&str], wallet: Option<&str>) -> String {
        let mut command = Command::new(BINARY);
        command
            .arg("--config")
            .arg(&self.config)
            .args(["token", "--sub", sub, "--ttl", "6h"]);
        for authority in authorities {
            command.args(["--authority", authority]);
        }
        if let Some(wallet) = wallet {
            command.args(["--wallet", wallet]);
        }
        let out = command.output().expect("run business-wallet token");
        assert!(
            out.status.success(),
            "business-wallet token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("a token is text")
            .trim()
            .to_string()
    }

    /// A client of this instance's API with `token`.
    pub fn client(&self, token: &str) -> Client {
        Client::new(&self.base_url, token)
    }

    /// Spawns `serve` in `role` without waiting for it.
    ///
    /// # Panics
    /// The binary cannot be started.
    pub fn spawn(&self, role: Role) -> Server {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the log file");
        let mut command = Command::new(BINARY);
        command.arg("--config").arg(&self.config).arg("serve");
        match role {
            Role::Both => {}
            Role::ApiOnly => {
                command.arg("--api-only");
            }
            Role::DispatcherOnly => {
                command.arg("--dispatcher-only");
            }
        }
        let log_offset = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start business-wallet serve");
        Server {
            pid: child.id(),
            child,
            role,
            base_url: self.base_url.clone(),
            log: self.log.clone(),
            log_offset,
            started: Instant::now(),
        }
    }

    /// Spawns `serve` in `role` and waits (60 s at most) until it is ready: `/health/ready`
    /// answers 200, or for [`Role::DispatcherOnly`] its log says `dispatcher started`.
    ///
    /// # Panics
    /// It exits or is not ready in time; the message holds the end of its log.
    pub async fn start(&self, role: Role) -> Server {
        let mut server = self.spawn(role);
        server.wait_ready(Duration::from_secs(60)).await;
        server
    }
}

/// Memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the highest resident size so far.
    pub peak_kib: u64,
}

impl Memory {
    /// Peak resident size in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB (peak {:.1} MiB)",
            self.rss_kib as f64 / 1024.0,
            self.peak_kib as f64 / 1024.0
        )
    }
}

/// A running `serve` process. Dropping it kills the process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pid: u32,
    role: Role,
    base_url: String,
    log: PathBuf,
    /// Where this process's part of the (shared) log file starts.
    log_offset: u64,
    started: Instant,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The API's base URL (`http://127.0.0.1:port`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How long ago it was spawned.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the instance is ready (see [`Instance::start`]); returns how long that took
    /// from the spawn.
    ///
    /// # Panics
    /// It exits or is not ready within `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Duration {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client");
        let ready_url = format!("{}/health/ready", self.base_url);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited ({status}) before it was ready:\n{}",
                    self.log_tail(40)
                );
            }
            let ready = match self.role {
                Role::DispatcherOnly => self.own_log().contains("dispatcher started"),
                _ => matches!(http.get(&ready_url).send().await, Ok(r) if r.status().is_success()),
            };
            if ready {
                return self.started.elapsed();
            }
            if Instant::now() >= deadline {
                panic!("the server was not ready within {timeout:?}:\n{}", self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Memory of the process now, or None once it has exited.
    pub fn memory(&self) -> Option<Memory> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// SIGKILL, then reaps the process. Returns its memory just before the kill.
    pub fn kill(&mut self) -> Option<Memory> {
        let memory = self.memory();
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
        memory
    }

    /// SIGTERM and waits for a clean exit (SIGKILL after `timeout`); returns whether it exited
    /// by itself.
    pub async fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let exited = eventually(timeout, || {
            let done = !self.is_running();
            async move { done }
        })
        .await;
        if !exited {
            self.kill();
        }
        exited
    }

    /// This process's part of the log file.
    pub fn own_log(&self) -> String {
        let text = fs::read(&self.log).unwrap_or_default();
        let start = (self.log_offset as usize).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// The last `lines` lines of this process's log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.own_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The local ports of the TCP sockets this process has open (from `/proc/<pid>/fd` and
    /// `/proc/net/tcp`): with the peer port a receiver saw, this tells which instance sent a
    /// request.
    pub fn local_tcp_ports(&self) -> HashSet<u16> {
        let mut inodes = HashSet::new();
        if let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", self.pid)) {
            for fd in fds.flatten() {
                if let Ok(target) = fs::read_link(fd.path()) {
                    let target = target.to_string_lossy().into_owned();
                    if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                        inodes.insert(inode.to_string());
                    }
                }
            }
        }
        let mut ports = HashSet::new();
        for table in ["tcp", "tcp6"] {
            let Ok(text) = fs::read_to_string(format!("/proc/{}/net/{table}", self.pid)) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                if fields.len() > 9 && inodes.contains(fields[9]) {
                    if let Some(port) = fields[1]
                        .rsplit(':')
                        .next()
                        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                    {
                        ports.insert(port);
                    }
                }
            }
        }
        ports
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
