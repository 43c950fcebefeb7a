//! A PostgreSQL server of one test's own: `initdb` and `pg_ctl` on a free port of 127.0.0.1,
//! run as the `postgres` user, its data in the test's work directory. A test may stop it or
//! kill its postmaster; the shared server on 5432 is never touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{eventually, free_port};

/// A private PostgreSQL server. Dropping it stops it at once (`pg_ctl stop -m immediate`).
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// `bin` of the newest PostgreSQL under `/usr/lib/postgresql`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (scripts/test.sh installs it)")
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("a PostgreSQL with pg_ctl under /usr/lib/postgresql/*/bin")
}

/// Runs `program args` as the `postgres` user (waits without blocking the runtime).
async fn as_postgres(program: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .await
        .expect("runuser -u postgres")
}

impl Postgres {
    /// Creates a cluster under `work` (which must be readable by `postgres`, see
    /// [`super::work_dir`]) and starts it. `fsync` is off: the tests kill processes, not the
    /// machine, and the kernel keeps what a killed server wrote.
    ///
    /// # Panics
    /// Not root, no PostgreSQL installed, or the server does not start.
    pub async fn start(work: &Path) -> Postgres {
        let root = work.join("postgres");
        let data = root.join("data");
        let sockets = root.join("sockets");
        fs::create_dir_all(&data).expect("create the PostgreSQL directories");
        fs::create_dir_all(&sockets).expect("create the PostgreSQL socket directory");
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&root)
            .status()
            .expect("chown");
        assert!(status.success(), "chown of the PostgreSQL directory to postgres failed");
        let pg = Postgres {
            bin: bin_dir(),
            log: root.join("server.log"),
            data,
            sockets,
            port: free_port(),
        };
        let out = as_postgres(
            &pg.bin.join("initdb"),
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .await;
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_again().await;
        pg
    }

    /// `postgres://postgres@127.0.0.1:{port}/{database}`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database.
    ///
    /// # Panics
    /// `createdb` fails.
    pub async fn create_database(&self, name: &str) {
        let out = as_postgres(
            &self.bin.join("createdb"),
            &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name],
        )
        .await;
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the (stopped or killed) server and waits until it accepts connections. After a
    /// killed postmaster its orphaned backends must exit first; the start is tried again until
    /// they have (30 s at most).
    ///
    /// # Panics
    /// It does not start.
    pub async fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=200 \
             -c shared_buffers=32MB",
            self.port,
            self.sockets.display()
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let out = as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "start",
                    "-w",
                    "-t",
                    "30",
                    "-D",
                    &self.data.display().to_string(),
                    "-l",
                    &self.log.display().to_string(),
                    "-o",
                    &options,
                ],
            )
            .await;
            if out.status.success() {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "pg_ctl start failed: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are terminated, as in a planned
    /// restart) and waits until it is down.
    pub async fn stop(&self) {
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &["stop", "-w", "-m", "fast", "-D", &self.data.display().to_string()],
        )
        .await;
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// `kill -9` of the postmaster, as a crash would; its backends notice and exit by
    /// themselves. Waits until it is gone.
    ///
    /// # Panics
    /// The server is not running.
    pub async fn kill_postmaster(&self) {
        let pid = self.postmaster_pid().expect("the server is running");
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -9 {pid} failed");
        let gone = eventually(Duration::from_secs(10), || {
            let gone = !Path::new(&format!("/proc/{pid}")).exists() || zombie(pid);
            async move { gone }
        })
        .await;
        assert!(gone, "the postmaster {pid} did not die");
    }

    /// Whether the server accepts connections now (`pg_isready`).
    pub fn is_ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "1"])
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false)
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Whether `pid` is a zombie (dead, not yet reaped by its parent).
fn zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}
