//! The memory-mapped base that the offset index and the time index share (Kafka's
//! `AbstractIndex`): a file of fixed-size entries, preallocated to
//! `segment.index.bytes` while its segment is active, mapped with memmap2, appended to
//! in place, searched by binary search, and trimmed to the entries in use when the
//! segment is sealed so that a sealed index is exactly `entries * entry_bytes` long.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use super::error::{LogError, LogResult};

#[derive(Debug)]
pub(crate) struct MmapIndex {
    path: PathBuf,
    file: File,
    /// `None` while the file is empty: a zero-length mapping is not portable.
    mmap: Option<MmapMut>,
    entry_bytes: usize,
    entries: usize,
    /// Entries the current file length can hold.
    capacity_entries: usize,
}

impl MmapIndex {
    /// Creates (or empties) the file and preallocates room for `max_index_bytes`.
    pub(crate) fn create(
        path: &Path,
        entry_bytes: usize,
        max_index_bytes: usize,
    ) -> LogResult<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(LogError::io(path))?;
        let mut index = MmapIndex {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_bytes,
            entries: 0,
            capacity_entries: 0,
        };
        index.resize(max_index_bytes)?;
        Ok(index)
    }

    /// Opens a sealed index as written: every whole entry in the file counts. A length
    /// that is not a multiple of the entry size means the file is damaged.
    pub(crate) fn open(path: &Path, entry_bytes: usize) -> LogResult<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(LogError::io(path))?;
        let len = file.metadata().map_err(LogError::io(path))?.len() as usize;
        if !len.is_multiple_of(entry_bytes) {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                position: len as u64,
                reason: format!("index length {len} is not a multiple of {entry_bytes}"),
            });
        }
        let entries = len / entry_bytes;
        let mut index = MmapIndex {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_bytes,
            entries,
            capacity_entries: 0,
        };
        index.map(len)?;
        Ok(index)
    }

    /// Grows (preallocates, for an active segment) or shrinks the file to hold
    /// `max_index_bytes` rounded down to whole entries, never below the used entries.
    pub(crate) fn resize(&mut self, max_index_bytes: usize) -> LogResult<()> {
        let capacity = (max_index_bytes / self.entry_bytes).max(self.entries);
        let len = capacity * self.entry_bytes;
        // Unmap before changing the length: touching a mapping past the end of its file
        // is a SIGBUS.
        self.mmap = None;
        self.file
            .set_len(len as u64)
            .map_err(LogError::io(&self.path))?;
        self.map(len)
    }

    /// Trims the file to the entries in use (on roll and on close).
    pub(crate) fn trim(&mut self) -> LogResult<()> {
        self.resize(self.entries * self.entry_bytes)
    }

    fn map(&mut self, len: usize) -> LogResult<()> {
        self.capacity_entries = len / self.entry_bytes;
        if len == 0 {
            self.mmap = None;
            return Ok(());
        }
        // SAFETY: the index file is private to this partition directory and this process
        // is its only writer; the mapping is dropped before every length change above.
        let mmap = unsafe { MmapOptions::new().len(len).map_mut(&self.file) }
            .map_err(LogError::io(&self.path))?;
        self.mmap = Some(mmap);
        Ok(())
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity_entries
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_bytes;
        match &self.mmap {
            Some(m) => &m[start..start + self.entry_bytes],
            None => &[],
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        assert_eq!(
            bytes.len(),
            self.entry_bytes,
            "index entry of the wrong size"
        );
        assert!(
            !self.is_full(),
            "append to a full index: the segment should have rolled"
        );
        let start = self.entries * self.entry_bytes;
        if let Some(m) = &mut self.mmap {
            m[start..start + self.entry_bytes].copy_from_slice(bytes);
            self.entries += 1;
        }
    }

    /// Keeps the first `entries` entries.
    pub(crate) fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    /// The largest `i` whose key is `<= target` under a key that rises with `i`.
    pub(crate) fn floor<K: Ord>(&self, target: &K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(self.entry(mid)) <= *target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// A second handle on the file so an fsync can run away from the owner's thread.
    pub(crate) fn sync_handle(&self) -> LogResult<File> {
        self.file.try_clone().map_err(LogError::io(&self.path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

pub(crate) fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}
