//! A small tmpfs to run out of space on: mounted for one test (root only), filled with a file
//! until the kernel says no space is left, and freed again.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted when dropped (drop the servers using it first).
#[derive(Debug)]
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_mib` MiB at `path` (created when missing).
    ///
    /// # Panics
    /// The mount fails (e.g. not root).
    pub fn mount(path: &Path, size_mib: u32) -> Tmpfs {
        fs::create_dir_all(path).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0755"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` with zeros until the file system is full; returns the bytes written.
    ///
    /// # Panics
    /// A write fails for another reason than "no space left".
    pub fn fill(&self, name: &str) -> u64 {
        let mut file = fs::File::create(self.path.join(name)).expect("create the filler file");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                Err(err) => panic!("filling the tmpfs: {err}"),
            }
        }
        // Whatever is left below one page: SQLite writes whole pages.
        let small = [0u8; 512];
        while let Ok(n) = file.write(&small) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        let _ = file.sync_all();
        written
    }

    /// Removes the filler file `name`, freeing its space.
    pub fn free(&self, name: &str) {
        fs::remove_file(self.path.join(name)).expect("remove the filler file");
    }

    /// Free bytes now (from `df`).
    pub fn available(&self) -> u64 {
        Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .ok()
            .and_then(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .nth(1)
                    .and_then(|l| l.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
