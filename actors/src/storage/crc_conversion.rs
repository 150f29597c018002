//! Converting partition directories written before record batches carried Kafka's
//! CRC-32C: Troupe's batches once checksummed with CRC-32 (IEEE). The layout was
//! Kafka's v2 otherwise, so a conversion rewrites the 4 CRC bytes of each batch in
//! place and nothing else: no file is copied, no offset, index or timestamp moves.
//!
//! ```text
//! batch (see batch.rs)   pos 0..17 header   17..21 CRC   21..end covered by the CRC
//! before                                    CRC-32  (IEEE) of 21..end
//! after                                     CRC-32C (Castagnoli) of 21..end
//! ```
//!
//! The data dir's format version (in `topics.json`, see `topic_store.rs`) says
//! whether a conversion is due; its owner calls [`convert_partitions`] and bumps the
//! version once it returns. The conversion:
//!
//! 1. **checks every batch first, writing nothing.** A batch is accepted whose stored
//!    CRC is its CRC-32 (not converted yet), its CRC-32C (converted by an earlier,
//!    interrupted run) or a mix of the two split at a byte boundary (that run's 4-byte
//!    write torn across two pages by a crash). A batch matching none of them in
//!    durable data (below the recovery point, or anywhere after a clean shutdown) was
//!    damaged before the upgrade: the conversion refuses with the file and position,
//!    and since nothing was written, the previous version still opens the directory.
//!    Damage past the recovery point is what a crash leaves (a torn write): the
//!    conversion stops there for that partition, and recovery truncates it as it
//!    always has, with the segments after it.
//! 2. **rewrites each CRC that is not CRC-32C yet**, then fsyncs each file it changed.
//!
//! A crash at any point leaves batches each in one of the accepted states, and the
//! version not yet bumped: the next open runs the conversion again, which finishes it.
//! Compaction output already committed (`.cleaning/` with its `SWAP` manifest) is
//! converted too, since the next open renames it into place; an uncommitted pass is
//! dropped at open and left alone.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, ATTRIBUTES_POS, BATCH_HEADER_BYTES, CRC_POS};
use super::compaction::{CLEANING_DIR, SWAP_MANIFEST};
use super::error::{LogError, LogResult};
use super::recovery::{read_log_checkpoint, CLEAN_SHUTDOWN_FILE};
use super::segment::{parse_segment_file_name, LOG_SUFFIX};

/// Bytes hashed at a time: a batch is never read whole, whatever its length says.
const HASH_CHUNK_BYTES: usize = 64 * 1024;

/// What a conversion did, for the log line that reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversionStats {
    pub partitions: usize,
    /// Segment files with at least one CRC rewritten.
    pub files_rewritten: usize,
    pub batches_converted: u64,
    /// Batches already carrying CRC-32C (an earlier run got to them).
    pub batches_already_converted: u64,
    /// Partitions whose unflushed tail was left for recovery to truncate.
    pub torn_tails: usize,
}

/// Converts every batch in `partition_dirs` (missing ones are skipped) from CRC-32 to
/// CRC-32C; see the module doc. Refuses, having written nothing, if a durable batch
/// matches neither checksum.
pub fn convert_partitions(partition_dirs: &[PathBuf]) -> LogResult<ConversionStats> {
    let mut plans = Vec::new();
    for dir in partition_dirs.iter().filter(|d| d.is_dir()) {
        plans.push(plan_partition(dir)?);
    }
    let mut stats = ConversionStats {
        partitions: plans.len(),
        torn_tails: plans.iter().filter(|p| p.torn_tail).count(),
        ..ConversionStats::default()
    };
    for file in plans.iter().flat_map(|p| &p.files) {
        let walked = walk(file, Pass::Rewrite)?;
        stats.batches_converted += walked.converted;
        stats.batches_already_converted += walked.already_converted;
        if walked.converted > 0 {
            stats.files_rewritten += 1;
        }
    }
    Ok(stats)
}

/// A segment file to convert, up to `end_position` (where a torn tail begins, or its
/// length).
#[derive(Debug)]
struct FilePlan {
    path: PathBuf,
    end_position: u64,
    /// The offset the file's first batch has: damage is judged by the offset at it.
    base_offset: i64,
    /// Damage at or past this offset is a torn write; below it, the data was durable.
    durable_below: i64,
}

#[derive(Debug)]
struct PartitionPlan {
    files: Vec<FilePlan>,
    torn_tail: bool,
}

/// Checks one partition directory (writing nothing) and says what to rewrite.
fn plan_partition(dir: &Path) -> LogResult<PartitionPlan> {
    let checkpoint = read_log_checkpoint(dir)?;
    let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists() && checkpoint.is_some();
    // The same rule as recovery's: what it would truncate, a crash may have torn.
    let durable_below = match checkpoint {
        _ if clean => i64::MAX,
        Some(cp) => cp.recovery_point,
        None => 0,
    };
    let mut plan = PartitionPlan {
        files: Vec::new(),
        torn_tail: false,
    };
    // A committed compaction swap is durable output the next open installs.
    let cleaning = dir.join(CLEANING_DIR);
    if cleaning.join(SWAP_MANIFEST).exists() {
        for (base_offset, path) in segment_logs(&cleaning)? {
            let file = FilePlan {
                end_position: 0,
                path,
                base_offset,
                durable_below: i64::MAX,
            };
            let end_position = walk(&file, Pass::Check)?.end_position;
            plan.files.push(FilePlan {
                end_position,
                ..file
            });
        }
    }
    for (base_offset, path) in segment_logs(dir)? {
        let file = FilePlan {
            end_position: 0,
            path,
            base_offset,
            durable_below,
        };
        let walked = walk(&file, Pass::Check)?;
        let torn = walked.end_position < file_len(&file.path)?;
        plan.files.push(FilePlan {
            end_position: walked.end_position,
            ..file
        });
        if torn {
            // Recovery truncates here and removes the later segments.
            plan.torn_tail = true;
            break;
        }
    }
    Ok(plan)
}

/// The `<base offset>.log` files directly in `dir`, by base offset.
fn segment_logs(dir: &Path) -> LogResult<Vec<(i64, PathBuf)>> {
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io(dir))? {
        let path = entry.map_err(LogError::io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((base, LOG_SUFFIX)) = parse_segment_file_name(name) {
            logs.push((base, path));
        }
    }
    logs.sort_unstable();
    Ok(logs)
}

fn file_len(path: &Path) -> LogResult<u64> {
    Ok(fs::metadata(path).map_err(LogError::io(path))?.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Reads every batch, writes nothing; finds where a torn tail begins.
    Check,
    /// Rewrites the CRCs of the batches the check accepted, then fsyncs.
    Rewrite,
}

#[derive(Debug, Default)]
struct Walked {
    end_position: u64,
    converted: u64,
    already_converted: u64,
}

/// What a stored CRC says about its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredCrc {
    /// CRC-32C: converted already.
    Converted,
    /// CRC-32, or a torn write of its replacement: to rewrite.
    ToConvert,
    /// Neither: the batch's bytes are not what was checksummed.
    Damaged,
}

fn classify(stored: u32, crc32: u32, crc32c: u32) -> StoredCrc {
    if stored == crc32c {
        return StoredCrc::Converted;
    }
    if stored == crc32 {
        return StoredCrc::ToConvert;
    }
    // The 4-byte write split between two pages (or sectors), one reaching the disk:
    // the first k bytes of one checksum and the rest of the other (big-endian).
    let torn = (1..4).any(|k: u32| {
        let high = u32::MAX << (8 * (4 - k));
        stored == (crc32c & high) | (crc32 & !high) || stored == (crc32 & high) | (crc32c & !high)
    });
    if torn {
        StoredCrc::ToConvert
    } else {
        StoredCrc::Damaged
    }
}

/// Walks `file`'s batches (in `Rewrite`, up to its planned end). In `Check`, a damaged
/// batch past the file's durable offsets ends the walk (a torn tail); one in durable
/// data is an error.
fn walk(file: &FilePlan, pass: Pass) -> LogResult<Walked> {
    let path = &file.path;
    let handle = match pass {
        Pass::Check => File::open(path),
        Pass::Rewrite => OpenOptions::new().read(true).write(true).open(path),
    }
    .map_err(LogError::io(path))?;
    let end = match pass {
        Pass::Check => file_len(path)?,
        Pass::Rewrite => file.end_position,
    };
    let mut walked = Walked::default();
    let mut position = 0u64;
    let mut next_offset = file.base_offset;
    let mut chunk = vec![0u8; HASH_CHUNK_BYTES];
    while position < end {
        let batch = match read_batch(&handle, path, position, end, &mut chunk)? {
            Ok(batch) => batch,
            Err(reason) => {
                refuse_unless_torn(file, position, next_offset, reason)?;
                break;
            }
        };
        match classify(batch.header.crc, batch.crc32, batch.crc32c) {
            StoredCrc::Converted => walked.already_converted += 1,
            StoredCrc::ToConvert => {
                if pass == Pass::Rewrite {
                    handle
                        .write_all_at(&batch.crc32c.to_be_bytes(), position + CRC_POS as u64)
                        .map_err(LogError::io(path))?;
                }
                walked.converted += 1;
            }
            StoredCrc::Damaged => {
                let reason = format!(
                    "batch at offsets {}..={} matches neither its CRC-32 nor its CRC-32C",
                    batch.header.base_offset,
                    batch.header.last_offset()
                );
                refuse_unless_torn(file, position, next_offset, reason)?;
                break;
            }
        }
        position += batch.header.size_bytes as u64;
        next_offset = batch.header.last_offset() + 1;
    }
    if pass == Pass::Rewrite && walked.converted > 0 {
        handle.sync_data().map_err(LogError::io(path))?;
    }
    walked.end_position = position;
    Ok(walked)
}

/// Damage where a crash may have torn a write is left for recovery to truncate;
/// anywhere else it is an error naming the file and position.
fn refuse_unless_torn(
    file: &FilePlan,
    position: u64,
    next_offset: i64,
    reason: String,
) -> LogResult<()> {
    if next_offset >= file.durable_below {
        log::warn!(
            "{} at byte {position}: {reason}; past the recovery point, left for recovery to truncate",
            file.path.display()
        );
        return Ok(());
    }
    Err(LogError::Corrupt {
        path: file.path.clone(),
        position,
        reason: format!(
            "{reason}, in data that was durable before the upgrade to CRC-32C record \
             batches: the conversion changed nothing, so the previous version still opens \
             this data dir; restore the partition directory from a copy or move it aside"
        ),
    })
}

struct ReadBatch {
    header: BatchHeader,
    crc32: u32,
    crc32c: u32,
}

/// Frames the batch at `position` and computes both checksums of what its CRC covers,
/// reading `chunk`-sized pieces; `Ok(Err(reason))` if it is not a whole batch.
fn read_batch(
    handle: &File,
    path: &Path,
    position: u64,
    end: u64,
    chunk: &mut [u8],
) -> LogResult<Result<ReadBatch, String>> {
    let remaining = end - position;
    if remaining < BATCH_HEADER_BYTES as u64 {
        return Ok(Err(format!("torn batch header ({remaining} bytes)")));
    }
    let mut head = [0u8; BATCH_HEADER_BYTES];
    handle
        .read_exact_at(&mut head, position)
        .map_err(LogError::io(path))?;
    let header = match BatchHeader::parse(&head) {
        Ok(header) => header,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if header.size_bytes as u64 > remaining {
        return Ok(Err(format!(
            "torn batch: {remaining} bytes of {} present",
            header.size_bytes
        )));
    }
    let mut crc32 = crc32fast::Hasher::new();
    let mut crc32c = 0u32;
    let mut at = position + ATTRIBUTES_POS as u64;
    let batch_end = position + header.size_bytes as u64;
    while at < batch_end {
        let n = chunk.len().min((batch_end - at) as usize);
        let piece = &mut chunk[..n];
        handle
            .read_exact_at(piece, at)
            .map_err(LogError::io(path))?;
        crc32.update(piece);
        crc32c = crc32c::crc32c_append(crc32c, piece);
        at += n as u64;
    }
    Ok(Ok(ReadBatch {
        header,
        crc32: crc32.finalize(),
        crc32c,
    }))
}

/// Test support: rewrites every batch of every segment in `dir` (and a committed
/// `.cleaning/`) with the CRC-32 Troupe wrote before the switch, making a partition
/// directory as an earlier version left it.
#[cfg(test)]
pub(crate) fn write_as_before_crc32c(dir: &Path) {
    let mut files = segment_logs(dir).unwrap();
    if dir.join(CLEANING_DIR).is_dir() {
        files.extend(segment_logs(&dir.join(CLEANING_DIR)).unwrap());
    }
    for (_, path) in files {
        let mut bytes = fs::read(&path).unwrap();
        let mut position = 0;
        while position < bytes.len() {
            let Ok(header) = BatchHeader::parse(&bytes[position..]) else {
                break;
            };
            let end = position + header.size_bytes;
            if end > bytes.len() {
                break;
            }
            let crc = crc32fast::hash(&bytes[position + ATTRIBUTES_POS..end]);
            bytes[position + CRC_POS..position + CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
            position = end;
        }
        fs::write(&path, bytes).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::{BatchRef, Record};
    use crate::storage::{Log, LogConfig};

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            ..LogConfig::default()
        }
    }

    fn record(i: usize) -> Record {
        Record {
            timestamp_ms: 1_000 + i as i64,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("value {i}").repeat(4).into_bytes()),
            headers: vec![],
        }
    }

    /// A partition as an earlier version left it after a clean close: `batches` of
    /// three records across several segments, with CRC-32 checksums.
    fn old_partition(dir: &Path, batches: usize) -> Vec<Record> {
        let mut log = Log::open(dir, config()).unwrap();
        let mut all = Vec::new();
        for b in 0..batches {
            let records: Vec<Record> = (0..3).map(|i| record(b * 3 + i)).collect();
            log.append_records(&records, 0).unwrap();
            all.extend(records);
        }
        log.close().unwrap();
        write_as_before_crc32c(dir);
        all
    }

    /// Every batch in every segment file of `dir`, as (file, position, bytes).
    fn batches(dir: &Path) -> Vec<(PathBuf, usize, Vec<u8>)> {
        let mut out = Vec::new();
        for (_, path) in segment_logs(dir).unwrap() {
            let bytes = fs::read(&path).unwrap();
            let mut position = 0;
            while position < bytes.len() {
                let size = BatchHeader::parse(&bytes[position..]).unwrap().size_bytes;
                out.push((
                    path.clone(),
                    position,
                    bytes[position..position + size].to_vec(),
                ));
                position += size;
            }
        }
        out
    }

    fn set_crc(path: &Path, position: usize, crc: u32) {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(&crc.to_be_bytes(), (position + CRC_POS) as u64)
            .unwrap();
    }

    fn read_all(dir: &Path) -> Vec<Record> {
        let log = Log::open(dir, config()).unwrap();
        let records = log
            .read(0, usize::MAX >> 1)
            .unwrap()
            .records_from(0)
            .unwrap();
        assert_eq!(log.corrupt_batches(), 0);
        records.into_iter().map(|r| r.record).collect()
    }

    #[test]
    fn an_old_partition_converts_in_place_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let written = old_partition(dir.path(), 12);
        let before = batches(dir.path());
        assert!(before.len() == 12 && segment_logs(dir.path()).unwrap().len() > 2);
        assert!(before
            .iter()
            .all(|(_, _, b)| BatchRef::parse(b).unwrap().verify_crc().is_err()));

        let stats = convert_partitions(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(stats.batches_converted, 12);
        assert_eq!(stats.batches_already_converted, 0);
        assert_eq!(stats.torn_tails, 0);
        let after = batches(dir.path());
        for ((_, _, old), (_, _, new)) in before.iter().zip(&after) {
            BatchRef::parse(new).unwrap().validate().unwrap();
            // Only the 4 CRC bytes changed.
            assert_eq!(old[..CRC_POS], new[..CRC_POS]);
            assert_eq!(old[ATTRIBUTES_POS..], new[ATTRIBUTES_POS..]);
        }
        assert_eq!(read_all(dir.path()), written);
        // A second run finds nothing to do.
        let again = convert_partitions(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            (again.batches_converted, again.batches_already_converted),
            (0, 12)
        );
    }

    /// A crash in the middle of a run: some batches converted, one CRC half written
    /// (torn across a page boundary) and the rest still CRC-32. The next run finishes.
    #[test]
    fn a_conversion_interrupted_by_a_crash_finishes_on_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let written = old_partition(dir.path(), 9);
        let old = batches(dir.path());
        for (path, position, bytes) in &old[..3] {
            set_crc(path, *position, crc32c::crc32c(&bytes[ATTRIBUTES_POS..]));
        }
        let (path, position, bytes) = &old[3];
        let crc32 = crc32fast::hash(&bytes[ATTRIBUTES_POS..]);
        let crc32c = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
        set_crc(
            path,
            *position,
            (crc32c & 0xffff_0000) | (crc32 & 0x0000_ffff),
        );

        let stats = convert_partitions(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            (stats.batches_converted, stats.batches_already_converted),
            (6, 3)
        );
        assert_eq!(read_all(dir.path()), written);
    }

    #[test]
    fn damage_in_durable_data_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        old_partition(dir.path(), 9);
        let old = batches(dir.path());
        let (path, position, _) = &old[4];
        let mut bytes = fs::read(path).unwrap();
        bytes[position + BATCH_HEADER_BYTES + 3] ^= 0x40;
        fs::write(path, &bytes).unwrap();
        let files_before: Vec<Vec<u8>> = segment_logs(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::read(p).unwrap())
            .collect();

        let err = convert_partitions(&[dir.path().to_path_buf()]).unwrap_err();
        match &err {
            LogError::Corrupt {
                path: p,
                position: at,
                ..
            } => assert_eq!((p, *at), (path, *position as u64)),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(err.to_string().contains("matches neither"), "{err}");
        let files_after: Vec<Vec<u8>> = segment_logs(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::read(p).unwrap())
            .collect();
        assert_eq!(files_before, files_after, "nothing may be written");
    }

    /// Without a clean shutdown, a torn batch past the recovery point is a crash's
    /// leftover: the conversion stops there and recovery truncates it as before.
    #[test]
    fn a_torn_tail_past_the_recovery_point_is_left_for_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        let records: Vec<Record> = (0..3).map(record).collect();
        log.append_records(&records, 0).unwrap();
        log.flush().unwrap();
        log.append_records(&[record(3)], 0).unwrap();
        drop(log); // a crash: no clean shutdown marker
        write_as_before_crc32c(dir.path());
        let (path, position, bytes) = batches(dir.path()).pop().unwrap();
        // The last batch, past the recovery point, half written.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len((position + bytes.len() - 5) as u64).unwrap();

        let stats = convert_partitions(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!((stats.batches_converted, stats.torn_tails), (1, 1));
        assert_eq!(read_all(dir.path()), records);
    }

    #[test]
    fn a_torn_crc_write_is_told_from_damage() {
        let (crc32, crc32c) = (0x1122_3344, 0xaabb_ccdd);
        assert_eq!(classify(crc32c, crc32, crc32c), StoredCrc::Converted);
        assert_eq!(classify(crc32, crc32, crc32c), StoredCrc::ToConvert);
        for torn in [
            0xaa22_3344,
            0xaabb_3344,
            0xaabb_cc44,
            0x11bb_ccdd,
            0x1122_ccdd,
            0x1122_33dd,
        ] {
            assert_eq!(
                classify(torn, crc32, crc32c),
                StoredCrc::ToConvert,
                "{torn:#x}"
            );
        }
        for damaged in [0, 0x11bb_33dd, 0xaa22_cc44, 0x1122_3345] {
            assert_eq!(
                classify(damaged, crc32, crc32c),
                StoredCrc::Damaged,
                "{damaged:#x}"
            );
        }
    }
}
