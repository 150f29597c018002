//! Checkpoint files: small text files of named offsets (the log start offset, the
//! recovery point), replaced atomically so a crash leaves either the old file or the
//! new one, never a torn mix: write `<name>.tmp`, fsync it, rename it over `<name>`,
//! fsync the directory.
//!
//! ```text
//! 0                      format version
//! 2                      number of entries
//! log_start_offset 0     one "<name> <offset>" line per entry
//! recovery_point 1234
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::error::{LogError, LogResult};

const VERSION: u32 = 0;

/// Writes `entries` to `path` atomically.
pub fn write_checkpoint(path: &Path, entries: &[(&str, i64)]) -> LogResult<()> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for (name, offset) in entries {
        debug_assert!(!name.contains(char::is_whitespace));
        text.push_str(&format!("{name} {offset}\n"));
    }
    write_file_atomically(path, text.as_bytes())
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> LogResult<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(LogError::io(&tmp))?;
    file.write_all(bytes).map_err(LogError::io(&tmp))?;
    file.sync_all().map_err(LogError::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(LogError::io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads a checkpoint; `Ok(None)` when there is none. A file that does not parse is a
/// `Corrupt` error (the caller decides whether to fall back to a full recovery).
pub fn read_checkpoint(path: &Path) -> LogResult<Option<Vec<(String, i64)>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path)(e)),
    };
    let corrupt = |line: usize, reason: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        position: line as u64,
        reason: format!("line {}: {reason}", line + 1),
    };
    let mut lines = text.lines();
    let version: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(0, "missing version"))?;
    if version != VERSION {
        return Err(corrupt(0, "unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(1, "missing entry count"))?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| corrupt(2 + i, "missing entry"))?;
        let mut parts = line.split_whitespace();
        let (Some(name), Some(offset), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(corrupt(2 + i, "expected \"<name> <offset>\""));
        };
        let offset: i64 = offset
            .parse()
            .map_err(|_| corrupt(2 + i, "offset is not a number"))?;
        entries.push((name.to_string(), offset));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(corrupt(2 + count, "more lines than the entry count"));
    }
    Ok(Some(entries))
}

/// fsyncs a directory so renames and new files in it survive a power loss.
pub fn sync_dir(dir: &Path) -> LogResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        assert!(read_checkpoint(&path).unwrap().is_none());
        write_checkpoint(&path, &[("a", 1), ("b", -5)]).unwrap();
        write_checkpoint(&path, &[("a", 2)]).unwrap();
        assert_eq!(
            read_checkpoint(&path).unwrap().unwrap(),
            vec![("a".to_string(), 2)]
        );
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn garbage_is_a_corrupt_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for bad in [
            "",
            "0\n",
            "0\n2\na 1\n",
            "1\n0\n",
            "0\n1\na x\n",
            "0\n1\na 1 2\n",
            "0\n1\na 1\nb 2\n",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(
                matches!(read_checkpoint(&path), Err(LogError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }
}
