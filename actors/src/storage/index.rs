//! The memory-mapped base that the offset index and the time index share (Kafka's
//! `AbstractIndex`): a file of fixed-size entries, sized to `segment.index.bytes`
//! while its segment is active, mapped with memmap2, appended to in place, searched by
//! binary search, and trimmed to the entries in use when the segment is sealed so that
//! a sealed index is exactly `entries * entry_bytes` long.
//!
//! **Blocks are reserved before they are written.** The file is grown with `set_len`,
//! which leaves a sparse hole; a store through the mapping into a hole on a full disk
//! is not an error the program can see but a SIGBUS that kills the process. So every
//! entry is written only into bytes already reserved with `posix_fallocate`, done a
//! chunk ahead of the entries ([`RESERVE_CHUNK_BYTES`]): a full disk then surfaces as
//! an ordinary `ENOSPC` from the reservation, which the segment turns into a refused
//! append, and the index never takes more disk than its entries plus one chunk.
//!
//! **Sealed indexes hold nothing open.** Once its segment is sealed an index is
//! closed: no file descriptor, no mapping. A lookup maps it read-only for the length
//! of the lookup (Kafka maps the indexes of inactive segments lazily for the same
//! reason), so a partition with thousands of segments costs as many descriptors as
//! one with a single segment.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::error::{LogError, LogResult};

/// How far ahead of the entries blocks are reserved: one fallocate per this many
/// bytes of index (a few hundred entries), and at most this much disk held unused.
pub(crate) const RESERVE_CHUNK_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct MmapIndex {
    path: PathBuf,
    /// The file and its mapping while the index is open (its segment is active, or
    /// being loaded); `None` once it is sealed and closed.
    open: Option<OpenIndex>,
    entry_bytes: usize,
    entries: usize,
    /// Entries the current file length can hold.
    capacity_entries: usize,
    /// Bytes from the start of the file known to be backed by disk blocks: the only
    /// bytes ever written through the mapping.
    reserved_bytes: usize,
    /// Whether an entry was skipped for want of space (logged once, not per entry).
    skipped_entries: bool,
}

#[derive(Debug)]
struct OpenIndex {
    file: File,
    /// `None` while the file is empty: a zero-length mapping is not portable.
    mmap: Option<MmapMut>,
}

/// The entries of an index for one lookup: borrowed from the live mapping of an open
/// index, or a read-only mapping of a closed one, dropped with the view.
pub(crate) enum IndexView<'a> {
    Mapped(&'a [u8]),
    Loaded(Mmap, usize),
    Empty,
}

impl Deref for IndexView<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            IndexView::Mapped(bytes) => bytes,
            IndexView::Loaded(map, len) => &map[..*len],
            IndexView::Empty => &[],
        }
    }
}

impl MmapIndex {
    /// Creates (or empties) the file and sizes it for `max_index_bytes`.
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
            open: Some(OpenIndex { file, mmap: None }),
            entry_bytes,
            entries: 0,
            capacity_entries: 0,
            reserved_bytes: 0,
            skipped_entries: false,
        };
        index.resize(max_index_bytes)?;
        Ok(index)
    }

    /// Opens a sealed index as written: every whole entry in the file counts. A length
    /// that is not a multiple of the entry size means the file is damaged.
    pub(crate) fn open(path: &Path, entry_bytes: usize) -> LogResult<Self> {
        let file = open_rw(path)?;
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
            open: Some(OpenIndex { file, mmap: None }),
            entry_bytes,
            entries,
            capacity_entries: 0,
            // A sealed index was written entry by entry: all of it is allocated.
            reserved_bytes: len,
            skipped_entries: false,
        };
        index.map(len)?;
        Ok(index)
    }

    /// Opens a closed index again for writing (its segment becomes active).
    fn reopen(&mut self) -> LogResult<&mut OpenIndex> {
        if self.open.is_none() {
            let file = open_rw(&self.path)?;
            let len = file.metadata().map_err(LogError::io(&self.path))?.len() as usize;
            self.open = Some(OpenIndex { file, mmap: None });
            self.map(len)?;
        }
        match self.open.as_mut() {
            Some(open) => Ok(open),
            None => unreachable!("opened above"),
        }
    }

    /// Closes the file and drops the mapping (the segment is sealed).
    pub(crate) fn close(&mut self) {
        self.open = None;
    }

    /// Grows (for an active segment) or shrinks the file to hold `max_index_bytes`
    /// rounded down to whole entries, never below the used entries.
    pub(crate) fn resize(&mut self, max_index_bytes: usize) -> LogResult<()> {
        let capacity = (max_index_bytes / self.entry_bytes).max(self.entries);
        let len = capacity * self.entry_bytes;
        let path = self.path.clone();
        let open = self.reopen()?;
        // Unmap before changing the length: touching a mapping past the end of its file
        // is a SIGBUS.
        open.mmap = None;
        open.file.set_len(len as u64).map_err(LogError::io(&path))?;
        self.reserved_bytes = self.reserved_bytes.min(len);
        self.map(len)
    }

    /// Trims the file to the entries in use (on roll and on close).
    pub(crate) fn trim(&mut self) -> LogResult<()> {
        self.resize(self.entries * self.entry_bytes)
    }

    fn map(&mut self, len: usize) -> LogResult<()> {
        self.capacity_entries = len / self.entry_bytes;
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        if len == 0 {
            open.mmap = None;
            return Ok(());
        }
        // SAFETY: the index file is private to this partition directory and this process
        // is its only writer; the mapping is dropped before every length change above,
        // and only reserved (allocated) bytes are written through it.
        let mmap = unsafe { MmapOptions::new().len(len).map_mut(&open.file) }
            .map_err(LogError::io(&self.path))?;
        open.mmap = Some(mmap);
        Ok(())
    }

    /// Reserves disk blocks for the next entry, a chunk at a time. Nothing to do when
    /// the index is full (no entry will be written). `ENOSPC` on a full disk.
    pub(crate) fn reserve_next(&mut self) -> LogResult<()> {
        let needed = (self.entries + 1) * self.entry_bytes;
        if self.is_full() || needed <= self.reserved_bytes {
            return Ok(());
        }
        let len = self.capacity_entries * self.entry_bytes;
        let chunk = RESERVE_CHUNK_BYTES
            .max(needed - self.reserved_bytes)
            .min(len - self.reserved_bytes);
        let path = self.path.clone();
        let offset = self.reserved_bytes;
        let open = self.reopen()?;
        allocate(&open.file, offset, chunk).map_err(LogError::io(&path))?;
        self.reserved_bytes = offset + chunk;
        Ok(())
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity_entries
    }

    /// Entry `i` of an open index (an index is open while it is written or loaded).
    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_bytes;
        match self.open.as_ref().and_then(|o| o.mmap.as_ref()) {
            Some(m) => &m[start..start + self.entry_bytes],
            None => &[],
        }
    }

    /// The entries in use, for a lookup: the live mapping if the index is open, else
    /// a read-only mapping made for the caller (no descriptor stays open).
    pub(crate) fn view(&self) -> LogResult<IndexView<'_>> {
        let used = self.entries * self.entry_bytes;
        if used == 0 {
            return Ok(IndexView::Empty);
        }
        if let Some(open) = &self.open {
            return Ok(match &open.mmap {
                Some(m) => IndexView::Mapped(&m[..used]),
                None => IndexView::Empty,
            });
        }
        let file = File::open(&self.path).map_err(LogError::io(&self.path))?;
        let len = file.metadata().map_err(LogError::io(&self.path))?.len() as usize;
        let used = used.min(len - len % self.entry_bytes);
        if used == 0 {
            return Ok(IndexView::Empty);
        }
        // SAFETY: a sealed index is never written again while the log is open (only
        // replaced by renames, which leave this mapping on the old inode).
        let map =
            unsafe { MmapOptions::new().len(used).map(&file) }.map_err(LogError::io(&self.path))?;
        Ok(IndexView::Loaded(map, used))
    }

    /// Appends an entry into reserved bytes, reserving first if needed. Returns false
    /// (and writes nothing) if no room could be reserved: the index is only sparser,
    /// and lookups scan a little further.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        assert_eq!(
            bytes.len(),
            self.entry_bytes,
            "index entry of the wrong size"
        );
        assert!(
            !self.is_full(),
            "append to a full index: the segment should have rolled"
        );
        if let Err(e) = self.reserve_next() {
            if !self.skipped_entries {
                log::warn!("skipping index entries (lookups scan further): {e}");
                self.skipped_entries = true;
            }
            return false;
        }
        let start = self.entries * self.entry_bytes;
        debug_assert!(start + self.entry_bytes <= self.reserved_bytes);
        match self.open.as_mut().and_then(|o| o.mmap.as_mut()) {
            Some(m) => {
                m[start..start + self.entry_bytes].copy_from_slice(bytes);
                self.entries += 1;
                true
            }
            None => false,
        }
    }

    /// Keeps the first `entries` entries.
    pub(crate) fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    /// A second handle on the file so an fsync can run away from the owner's thread
    /// (opened afresh for a closed index).
    pub(crate) fn sync_handle(&self) -> LogResult<File> {
        match &self.open {
            Some(open) => open.file.try_clone(),
            None => File::open(&self.path),
        }
        .map_err(LogError::io(&self.path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The largest `i` whose key is `<= target` among the entries in `bytes`, under a key
/// that rises with `i`.
pub(crate) fn floor<K: Ord>(
    bytes: &[u8],
    entry_bytes: usize,
    target: &K,
    key: impl Fn(&[u8]) -> K,
) -> Option<usize> {
    let entry = |i: usize| &bytes[i * entry_bytes..(i + 1) * entry_bytes];
    let (mut lo, mut hi) = (0usize, bytes.len() / entry_bytes);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(entry(mid)) <= *target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

fn open_rw(path: &Path) -> LogResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(LogError::io(path))
}

/// Allocates the blocks of `[offset, offset + len)` (`posix_fallocate`: real blocks,
/// not a hole, so later stores through a mapping cannot fault). Std has no fallocate;
/// the `libc` crate is already in the build through tokio and memmap2.
fn allocate(file: &File, offset: usize, len: usize) -> io::Result<()> {
    // SAFETY: a plain system call on a descriptor this File owns.
    let rc = unsafe {
        libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t)
    };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
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
