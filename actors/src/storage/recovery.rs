//! Opening a partition directory (Kafka's `LogLoader`): decide how much of the log can
//! be trusted, scan the rest, and hand back the segments ready for use.
//!
//! - A **clean-shutdown marker** (`.clean_shutdown`, written last by `Log::close`) means
//!   every segment was flushed and its indexes trimmed: indexes pass a sanity check and
//!   only the bytes after their last entry are read.
//! - Otherwise the **recovery point** from the checkpoint says up to which offset the
//!   log was known to be on disk. Segments wholly below it are loaded like the clean
//!   case; the segment holding it and every later one are scanned batch by batch
//!   (framing, CRC, record structure, offset order), their indexes rebuilt, and the
//!   first bad batch truncates the log there: later segments are removed, so the log
//!   is always the longest valid prefix of what was written.
//! - Damage found in durable data (after a clean shutdown, or below the recovery
//!   point) is not a torn write: the batch is kept, skipped and reported, and the
//!   records after it stay (see [`crate::storage::corruption`]).
//! - Missing or damaged index files are rebuilt from the `.log` in every case.
//! - Leftovers of interrupted work (`*.deleted`, `*.tmp`) are removed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::checkpoint::{read_checkpoint, sync_dir, write_checkpoint};
use super::error::{LogError, LogResult};
use super::log_config::LogConfig;
use super::segment::{
    parse_segment_file_name, Continuity, IndexTrust, LogSegment, DELETED_SUFFIX, INDEX_SUFFIX,
    LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// Written by a clean close, removed at open.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";
/// Holds the log start offset and the recovery point.
pub const CHECKPOINT_FILE: &str = "log.checkpoint";

const LOG_START_OFFSET_KEY: &str = "log_start_offset";
const RECOVERY_POINT_KEY: &str = "recovery_point";
const CLEANER_OFFSET_KEY: &str = "cleaner_offset";

pub(crate) struct LoadedLog {
    pub segments: BTreeMap<i64, LogSegment>,
    pub log_start_offset: i64,
    pub recovery_point: i64,
    pub cleaner_offset: i64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Checkpoint {
    pub log_start_offset: i64,
    pub recovery_point: i64,
    /// The log cleaner's first dirty offset.
    pub cleaner_offset: i64,
}

pub(crate) fn write_log_checkpoint(dir: &Path, cp: Checkpoint) -> LogResult<()> {
    write_checkpoint(
        &dir.join(CHECKPOINT_FILE),
        &[
            (LOG_START_OFFSET_KEY, cp.log_start_offset),
            (RECOVERY_POINT_KEY, cp.recovery_point),
            (CLEANER_OFFSET_KEY, cp.cleaner_offset),
        ],
    )
}

/// The checkpoint, or `None` when there is none or it cannot be trusted (then the
/// whole log is scanned).
pub(crate) fn read_log_checkpoint(dir: &Path) -> LogResult<Option<Checkpoint>> {
    let entries = match read_checkpoint(&dir.join(CHECKPOINT_FILE)) {
        Ok(Some(entries)) => entries,
        Ok(None) => return Ok(None),
        Err(LogError::Corrupt { path, reason, .. }) => {
            log::warn!(
                "ignoring {}: {reason}; recovering the whole log",
                path.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let find = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    match (find(LOG_START_OFFSET_KEY), find(RECOVERY_POINT_KEY)) {
        (Some(log_start_offset), Some(recovery_point))
            if log_start_offset >= 0 && recovery_point >= 0 =>
        {
            Ok(Some(Checkpoint {
                log_start_offset,
                recovery_point,
                cleaner_offset: find(CLEANER_OFFSET_KEY).unwrap_or(0).max(0),
            }))
        }
        _ => {
            log::warn!(
                "checkpoint in {} lacks its offsets; recovering the whole log",
                dir.display()
            );
            Ok(None)
        }
    }
}

pub(crate) fn load(dir: &Path, config: &LogConfig) -> LogResult<LoadedLog> {
    let created = !dir.exists();
    if created {
        fs::create_dir_all(dir).map_err(LogError::io(dir))?;
        // Make the new partition directory itself durable.
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let finished_swap = super::compaction::recover_cleaning(dir)?;
    let bases = scan_directory(dir)?;
    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let checkpoint = read_log_checkpoint(dir)?;
    // Without a checkpoint the marker proves nothing about which segments it covers.
    let clean = marker.exists() && checkpoint.is_some();
    if marker.exists() {
        fs::remove_file(&marker).map_err(LogError::io(&marker))?;
        sync_dir(dir)?;
    }
    let mut checkpoint = checkpoint.unwrap_or_default();
    if let Some(swap) = &finished_swap {
        checkpoint.cleaner_offset = checkpoint.cleaner_offset.max(swap.first_dirty_offset);
    }
    // Gaps are legitimate wherever the cleaner has ever run (a cleaner offset is
    // recorded), even if the topic is no longer compacted.
    let allow_gaps = config.allow_offset_gaps || checkpoint.cleaner_offset > 0;
    // Segments from the one holding the recovery point onwards may hold unflushed data.
    let first_unsafe_base = bases
        .iter()
        .copied()
        .filter(|b| *b <= checkpoint.recovery_point)
        .max()
        .unwrap_or(i64::MIN);
    // A partition created just now has nothing to recover.
    if !clean && !created {
        log::info!(
            "{}: no clean shutdown; recovering segments from offset {} (recovery point {})",
            dir.display(),
            first_unsafe_base.max(0),
            checkpoint.recovery_point
        );
    }

    let mut segments: BTreeMap<i64, LogSegment> = BTreeMap::new();
    let mut iter = bases.iter().copied();
    let mut scanned = false;
    for base in iter.by_ref() {
        let trust = if clean || base < first_unsafe_base {
            IndexTrust::SanityCheck
        } else {
            scanned = true;
            IndexTrust::Rebuild {
                recovery_point: checkpoint.recovery_point,
            }
        };
        // Only the last (active) segment is sure to be gap-free; compaction may have
        // rewritten the others.
        let continuity = if Some(&base) != bases.last() && allow_gaps {
            Continuity::Gaps
        } else {
            Continuity::Contiguous
        };
        let (segment, dropped) = LogSegment::open(dir, base, config, trust, continuity)?;
        // A damaged batch that ends the previous segment ends where this one begins.
        if let Some(previous) = segments.values_mut().next_back() {
            previous.settle_corrupt_tail(segment.base_offset())?;
        }
        if let Some(previous) = segments.values().next_back() {
            let gap = segment.base_offset() > previous.next_offset() && !allow_gaps;
            if segment.base_offset() < previous.next_offset() || gap {
                log::warn!(
                    "segment {} overlaps the previous one (which ends at {}); removing it and the rest",
                    base,
                    previous.next_offset()
                );
                segment.delete()?;
                break;
            }
        }
        // Only the last segment stays open: sealing each one as the next arrives keeps
        // the descriptors a load holds to one segment's, however many there are.
        if let Some(previous) = segments.values_mut().next_back() {
            previous.seal()?;
        }
        segments.insert(base, segment);
        if dropped > 0 {
            break;
        }
    }
    let rest: Vec<i64> = iter.collect();
    if !rest.is_empty() {
        log::warn!(
            "{}: removing {} segment(s) after the truncation point: {:?}",
            dir.display(),
            rest.len(),
            rest
        );
        for base in rest {
            remove_segment_files(dir, base)?;
        }
        sync_dir(dir)?;
    }

    if segments.is_empty() {
        let base = checkpoint.log_start_offset;
        segments.insert(base, LogSegment::create(dir, base, config)?);
    }
    // Rebuilt indexes of sealed segments come back preallocated: trim them again.
    let sealed = segments.len().saturating_sub(1);
    for segment in segments.values_mut().take(sealed) {
        segment.seal()?;
    }
    let mut active_base = 0;
    if let Some(active) = segments.values_mut().next_back() {
        // Offsets below the recovery point were durable (after a clean close it is
        // the log end offset): a damaged batch ending the log holds the offsets up to it.
        active.settle_corrupt_tail(checkpoint.recovery_point)?;
        active.activate(config)?;
        active_base = active.base_offset();
    }
    let first_base = segments.keys().next().copied().unwrap_or(0);
    let log_end_offset = segments
        .values()
        .next_back()
        .map_or(0, LogSegment::next_offset);
    let log_start_offset = checkpoint
        .log_start_offset
        .max(first_base)
        .min(log_end_offset);

    // What was scanned is now known good; make it durable before calling it recovered.
    if scanned {
        for segment in segments
            .range(first_unsafe_base.max(first_base)..)
            .map(|(_, s)| s)
        {
            for (path, file) in segment.sync_handles()? {
                file.sync_all().map_err(LogError::io(path))?;
            }
        }
    }
    if log_end_offset < checkpoint.recovery_point {
        log::error!(
            "{}: log end offset {} is below the recovery point {}: flushed data was damaged",
            dir.display(),
            log_end_offset,
            checkpoint.recovery_point
        );
    }
    // 0 means "never compacted" (see allow_gaps); keep it so.
    let cleaner_offset = match checkpoint.cleaner_offset {
        0 => 0,
        o => o.clamp(log_start_offset.max(1), log_end_offset.max(1)),
    };
    let checkpoint = Checkpoint {
        log_start_offset,
        recovery_point: log_end_offset,
        cleaner_offset,
    };
    match write_log_checkpoint(dir, checkpoint) {
        // A full disk must not keep the log from opening (and serving reads): the
        // previous checkpoint only means a longer recovery next time.
        Err(e) if e.is_disk_full() => {
            log::warn!("{}: keeping the previous checkpoint: {e}", dir.display())
        }
        other => other?,
    }
    log::debug!(
        "{}: opened {} segment(s), log start {}, log end {}, active segment {}",
        dir.display(),
        segments.len(),
        log_start_offset,
        log_end_offset,
        active_base
    );
    Ok(LoadedLog {
        segments,
        log_start_offset,
        recovery_point: log_end_offset,
        cleaner_offset,
    })
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftovers of interrupted
/// deletes and checkpoint writes, and index files whose log is gone.
fn scan_directory(dir: &Path) -> LogResult<Vec<i64>> {
    let mut bases = Vec::new();
    let mut orphans = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let path = entry.map_err(LogError::io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(".tmp") {
            // Set-aside files may be going already (the cleaner removes its own in the
            // background): gone is as good as removed.
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&path)(e)),
            }
            continue;
        }
        let Some((base, suffix)) = parse_segment_file_name(name) else {
            continue;
        };
        match suffix {
            LOG_SUFFIX => bases.push(base),
            INDEX_SUFFIX | TIME_INDEX_SUFFIX => orphans.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in orphans {
        if !bases.contains(&base) {
            log::warn!("removing index {} whose segment is gone", path.display());
            fs::remove_file(&path).map_err(LogError::io(&path))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn remove_segment_files(dir: &Path, base: i64) -> LogResult<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let path = super::segment::segment_file(dir, base, suffix);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(&path)(e)),
        }
    }
    Ok(())
}
