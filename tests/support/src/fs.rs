//! Files and processes: a per-test directory, and a process observed reaching a file.

use std::path::{Path, PathBuf};

/// A per-test directory under the temp dir (an IPAM `dataDir`, `IPAM_DB_PATH`'s directory, a
/// scratch area), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "cni-test-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        std::fs::create_dir_all(&p).expect("create a test directory");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as a string, for configs.
    pub fn display(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until `child` has `path` open (one of `/proc/<pid>/fd/*` links to it): a point in
/// the middle of a plugin's work, observed from outside instead of guessed from timing.
/// Panics when the child exits first; the one-minute limit only guards against a hang.
pub fn wait_until_open(child: &mut std::process::Child, path: &Path, what: &str) {
    let fds = format!("/proc/{}/fd", child.id());
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let open = std::fs::read_dir(&fds).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == path))
        });
        if open {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what}: exited ({status}) before opening {}",
                path.display()
            );
        }
        assert!(
            std::time::Instant::now() < limit,
            "{what}: {} not open after a minute (hung?)",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
