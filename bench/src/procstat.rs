//! CPU time and peak memory of processes, from `/proc`.

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`; 100 on Linux everywhere
/// that matters here, checked against `getconf CLK_TCK` at start).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// `(utime + stime, cutime + cstime)` of a process, in ticks.
fn ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let num = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((num(14)? + num(15)?, num(16)? + num(17)?))
}

/// CPU seconds used so far by one process (its threads included).
pub fn cpu_seconds(pid: u32, hz: f64) -> f64 {
    ticks(pid).map_or(0.0, |(own, _)| own as f64 / hz)
}

/// CPU seconds used so far by every PostgreSQL server process on this machine, including
/// backends that have already exited (counted in the postmaster's children time).
pub fn postgres_cpu_seconds(hz: f64) -> f64 {
    let Ok(dir) = fs::read_dir("/proc") else { return 0.0 };
    let mut total = 0u64;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        if let Some((own, children)) = ticks(pid) {
            total += own + children;
        }
    }
    total as f64 / hz
}

/// Peak resident set size (`VmHWM`) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// CPU seconds of the server process and of PostgreSQL, sampled together.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    server: f64,
    postgres: f64,
}

impl CpuSample {
    /// Samples now.
    pub fn take(server_pid: u32, hz: f64, with_postgres: bool) -> CpuSample {
        CpuSample {
            server: cpu_seconds(server_pid, hz),
            postgres: if with_postgres { postgres_cpu_seconds(hz) } else { 0.0 },
        }
    }

    /// CPU seconds (server, database) spent since `earlier`.
    pub fn since(&self, earlier: &CpuSample) -> (f64, f64) {
        (
            (self.server - earlier.server).max(0.0),
            (self.postgres - earlier.postgres).max(0.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(ticks(pid).is_some());
        assert!(peak_rss_mib(pid) > 0.0);
    }
}
