//! A full disk at the storage layer, on a small tmpfs the test mounts: an index entry
//! that would land in a page the file system cannot back is refused with ENOSPC
//! before anything is written (it used to be a store into a sparse mmap hole: SIGBUS,
//! the process gone without a word), the log stays readable, and appends work again
//! once space is freed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use troupe_actors::storage::{Log, LogConfig};

use crate::common::{read_all, record};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
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

const PAGE_BYTES: u64 = 4096;

/// Fills the file system, then gives back exactly `pages` pages.
fn fill_leaving(path: &Path, pages: u64) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let buf = vec![1u8; PAGE_BYTES as usize];
    while file.write_all(&buf).is_ok() {}
    let len = file.metadata().unwrap().len();
    file.set_len(len - len % PAGE_BYTES - pages * PAGE_BYTES)
        .unwrap();
}

#[test]
fn an_index_entry_on_a_full_disk_is_enospc_not_sigbus() {
    let root = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(root.path(), "1m");
    let config = LogConfig {
        // Every batch after a segment's first gets an index entry.
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = Log::open(root.path().join("t-0"), config).unwrap();
    log.append_records(&[record(1, "k", "first")], 0).unwrap();
    // A fresh active segment: its index files are sized but hold no blocks yet.
    log.roll().unwrap();

    let filler = root.path().join("filler");
    // One page left: the next batch's log bytes take it, so the index entry of the
    // batch after has none.
    fill_leaving(&filler, 1);
    log.append_records(&[record(2, "k", "second")], 0).unwrap();
    let refused = log
        .append_records(&[record(3, "k", "third")], 0)
        .expect_err("no room for the index entry");
    assert!(refused.is_disk_full(), "{refused}");
    let values: Vec<_> = read_all(&log, 4096)
        .into_iter()
        .map(|r| r.record.value)
        .collect();
    assert_eq!(values, [Some(b"first".to_vec()), Some(b"second".to_vec())]);

    std::fs::remove_file(&filler).unwrap();
    log.append_records(&[record(3, "k", "third")], 0).unwrap();
    assert_eq!(read_all(&log, 4096).len(), 3);
    log.close().unwrap();
    let log = Log::open(root.path().join("t-0"), LogConfig::default()).unwrap();
    assert_eq!(read_all(&log, 4096).len(), 3);
}
