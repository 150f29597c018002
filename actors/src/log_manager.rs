//! `LogManager`: the log directory and what lives in it at the level of whole
//! partitions, as Kafka's `LogManager`: where a partition's directory is, finishing
//! deletions a crash interrupted, moving a deleted topic's directories aside (durably,
//! whole or not at all) and removing them in the background, and the open-file budget
//! that bounds how many partitions the process can carry. It holds no actor and opens
//! no log: the partition actors do that.

use std::path::{Path, PathBuf};

use crate::error::{BrokerError, BrokerResult};
use crate::file_limits::{raise_open_files_limit, FileBudget, FDS_PER_PARTITION};

/// Suffix of a partition directory that is being deleted.
const DELETE_SUFFIX: &str = "-delete";
/// The longest file name Linux file systems take (NAME_MAX).
const MAX_FILE_NAME_BYTES: usize = 255;

pub struct LogManager {
    log_dir: PathBuf,
    files: FileBudget,
}

/// A partition directory moved aside: where it was, and its `-delete` name.
pub type MovedDir = (PathBuf, PathBuf);

impl LogManager {
    /// Creates `log_dir` if needed, removes what interrupted deletions left, and raises
    /// the open-file limit.
    pub fn open(log_dir: &Path, reserved_file_descriptors: u64) -> BrokerResult<Self> {
        std::fs::create_dir_all(log_dir)
            .map_err(|e| BrokerError::storage(log_dir, format!("cannot create it: {e}")))?;
        remove_deleted_dirs(log_dir);
        Ok(LogManager {
            log_dir: log_dir.to_path_buf(),
            files: open_files_budget(reserved_file_descriptors),
        })
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    pub fn files(&self) -> &FileBudget {
        &self.files
    }

    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        partition_dir(&self.log_dir, topic, partition)
    }

    /// Renames the existing directories of `topic`'s `partitions` to unique
    /// `-delete` names, durably. On failure, renames back what it had moved and
    /// answers the error.
    pub fn move_to_delete(
        &self,
        topic: &str,
        partitions: std::ops::Range<i32>,
    ) -> BrokerResult<Vec<MovedDir>> {
        let mut moved = Vec::new();
        for p in partitions {
            let dir = self.partition_dir(topic, p);
            let doomed = self.log_dir.join(delete_dir_name(topic, p));
            match std::fs::rename(&dir, &doomed) {
                Ok(()) => moved.push((dir, doomed)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.move_back(&moved);
                    log::error!(
                        "cannot delete topic {topic}: renaming {} failed: {e}",
                        dir.display()
                    );
                    return Err(BrokerError::storage(
                        &dir,
                        format!(
                            "cannot rename it to {} to delete topic '{topic}' ({e}); the topic is unchanged",
                            doomed.display()
                        ),
                    ));
                }
            }
        }
        if !moved.is_empty() {
            if let Err(e) = crate::storage::checkpoint::sync_dir(&self.log_dir) {
                self.move_back(&moved);
                return Err(BrokerError::storage(
                    &self.log_dir,
                    format!("cannot delete topic '{topic}' ({e}); the topic is unchanged"),
                ));
            }
        }
        Ok(moved)
    }

    pub fn move_back(&self, moved: &[MovedDir]) {
        for (dir, doomed) in moved {
            if let Err(e) = std::fs::rename(doomed, dir) {
                log::error!(
                    "cannot rename {} back to {}: {e}",
                    doomed.display(),
                    dir.display()
                );
            }
        }
    }

    /// Moves aside partition directories a new topic (or new partitions) would
    /// inherit: left by a crash in the middle of a delete, they must not be served as
    /// the new topic's records. Refuses the create if they cannot be moved.
    pub fn clear_stale_dirs(
        &self,
        topic: &str,
        partitions: std::ops::Range<i32>,
    ) -> BrokerResult<()> {
        let stale: Vec<i32> = partitions
            .filter(|p| self.partition_dir(topic, *p).exists())
            .collect();
        for p in stale {
            log::warn!(
                "{} belongs to no topic; removing it before creating {topic}-{p}",
                self.partition_dir(topic, p).display()
            );
            let moved = self.move_to_delete(topic, p..p + 1)?;
            remove_dirs_later(moved);
        }
        Ok(())
    }
}

/// The file in each partition directory naming the topic id it belongs to (Kafka's).
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

impl LogManager {
    /// The directory of `topic`-`partition` for the topic with `topic_id`, ready to
    /// open: a directory of another topic of that name (one deleted whose directory
    /// could not be moved away then) is moved away now, never served as this one;
    /// one from before partition metadata existed is adopted. Its
    /// `partition.metadata` names `topic_id` (Kafka's format):
    ///
    /// ```text
    /// version: 0
    /// topic_id: <the topic id>
    /// ```
    pub fn claim_partition_dir(
        &self,
        topic: &str,
        partition: i32,
        topic_id: &str,
    ) -> BrokerResult<PathBuf> {
        let dir = self.partition_dir(topic, partition);
        let file = dir.join(PARTITION_METADATA_FILE);
        if let Some(owner) = read_topic_id(&file) {
            if owner == topic_id {
                return Ok(dir);
            }
            log::warn!(
                "{} holds topic id {owner}, not {topic_id}: a deleted topic's; moving it away",
                dir.display()
            );
            remove_dirs_later(self.move_to_delete(topic, partition..partition + 1)?);
        }
        std::fs::create_dir_all(&dir).map_err(|e| BrokerError::storage(&dir, e))?;
        let text = format!("version: 0\ntopic_id: {topic_id}\n");
        crate::storage::checkpoint::write_file_atomically(&file, text.as_bytes())
            .map_err(|e| BrokerError::storage(&file, e))?;
        Ok(dir)
    }
}

/// The topic id a `partition.metadata` file names, if it can be read.
fn read_topic_id(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(|id| id.trim().to_string())
}

/// `<log_dir>/<topic>-<partition>`, as Kafka names a partition's directory.
pub fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{partition}"))
}

/// Kafka's `LocalLog.logDeleteDirName`: `<topic>-<partition>.<uuid>-delete`, unique per
/// delete, with the topic part cut so the name fits in 255 bytes (topic names are
/// ASCII, so characters are bytes).
pub fn delete_dir_name(topic: &str, partition: i32) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let suffix = format!("-{partition}.{unique}{DELETE_SUFFIX}");
    let keep = topic.len().min(MAX_FILE_NAME_BYTES - suffix.len());
    format!("{}{suffix}", &topic[..keep])
}

/// Removes moved-aside directories off the caller's thread (the next start removes
/// any that are left).
pub fn remove_dirs_later(moved: Vec<MovedDir>) {
    if moved.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        for (_, dir) in moved {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                log::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    });
}

/// Raises the soft open-file limit to the hard one and says what it allows.
fn open_files_budget(reserved: u64) -> FileBudget {
    match raise_open_files_limit(reserved) {
        Ok(files) => {
            log::info!(
                "open files: RLIMIT_NOFILE {} (hard {}), {} reserved, {} per partition: room for {} partitions (sealed segments hold no files)",
                files.soft_limit,
                files.hard_limit,
                files.reserved,
                FDS_PER_PARTITION,
                files.max_partitions()
            );
            files
        }
        Err(e) => {
            log::warn!("cannot read the open-file limit (RLIMIT_NOFILE): {e}; not bounding partitions by it");
            FileBudget {
                soft_limit: u64::MAX,
                hard_limit: u64::MAX,
                reserved,
            }
        }
    }
}

/// Finishes deletions a crash interrupted.
fn remove_deleted_dirs(log_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let doomed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(DELETE_SUFFIX));
        if doomed && path.is_dir() {
            log::info!("removing {} (deleted topic)", path.display());
            if let Err(e) = std::fs::remove_dir_all(&path) {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_dir_names_fit_in_255_bytes_and_are_unique() {
        let long = "x".repeat(crate::broker::MAX_TOPIC_NAME_CHARS);
        let name = delete_dir_name(&long, 12345);
        assert_eq!(name.len(), MAX_FILE_NAME_BYTES, "{name}");
        assert!(
            name.ends_with("-delete") && name.contains("-12345."),
            "{name}"
        );
        assert_ne!(name, delete_dir_name(&long, 12345));
        let short = delete_dir_name("orders", 0);
        assert!(
            short.starts_with("orders-0.") && short.len() == 6 + 3 + 32 + 7,
            "{short}"
        );
    }
}
