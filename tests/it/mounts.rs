//! Mounts for tests that need a real file-system condition: a small tmpfs to fill, a
//! bind mount that makes a rename fail. The tests run as root; each guard unmounts
//! lazily on drop (the broker may still hold files under it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on `dir` (a small disk to fill, or one where thousands
/// of fsyncs cost nothing). Unmounted on drop. Mounting needs root: a test that
/// cannot mount fails and says why, it never skips.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A bind mount of a directory on itself makes renaming it fail (EBUSY): a real
/// rename failure, with nothing faked in the broker.
pub struct BindMount(PathBuf);

impl BindMount {
    pub fn on_itself(dir: &Path) -> BindMount {
        let out = Command::new("mount")
            .args(["--bind"])
            .arg(dir)
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test needs to bind-mount a directory (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BindMount(dir.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        // Lazily: the broker holds files open under the mount point.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
