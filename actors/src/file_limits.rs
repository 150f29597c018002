//! The process's open-file budget. Every partition holds files open (its active
//! segment's `.log`, `.index` and `.timeindex`; sealed segments hold none, see
//! `storage/segment.rs`), and so does everything else: sockets, the actor threads'
//! event loops, the topic registry, the cleaner. When `RLIMIT_NOFILE` runs out, the
//! failures land anywhere — a partition cannot roll, a listener cannot accept, a new
//! worker thread panics — so the broker keeps to a budget instead:
//!
//! - at startup it raises its soft limit to the hard limit (as the JVM does for Kafka)
//!   and logs what that allows;
//! - a topic create or partition increase that would take the partition count past
//!   what the limit carries is refused before anything is created;
//! - partitions found on disk beyond the budget start offline (with the reason), so a
//!   restart always comes up and its HTTP listener always has descriptors left.
//!
//! ```text
//! partitions allowed = (soft limit - reserved.file.descriptors) / FDS_PER_PARTITION
//! ```

use std::io;

/// Descriptors one partition may hold at once: the three files of its active
/// segment, two more while a read of a sealed segment opens its `.log` and an index,
/// and three while an fsync runs on handles of its own (a flush ticket).
pub const FDS_PER_PARTITION: u64 = 8;

/// What the process may open, and how much of it partitions may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBudget {
    /// `RLIMIT_NOFILE` as it stands (after raising the soft limit).
    pub soft_limit: u64,
    pub hard_limit: u64,
    /// `reserved.file.descriptors`: kept for connections, threads and everything
    /// that is not a partition.
    pub reserved: u64,
}

impl FileBudget {
    /// How many partitions (of every topic together) the limit carries.
    pub fn max_partitions(&self) -> usize {
        (self.soft_limit.saturating_sub(self.reserved) / FDS_PER_PARTITION) as usize
    }

    /// Words for errors and logs: the numbers behind [`FileBudget::max_partitions`].
    pub fn describe(&self) -> String {
        format!(
            "the open-file limit (RLIMIT_NOFILE {}, {} reserved for connections and the rest, {} per partition) carries at most {} partitions",
            self.soft_limit,
            self.reserved,
            FDS_PER_PARTITION,
            self.max_partitions()
        )
    }
}

/// Reads `RLIMIT_NOFILE`, raises the soft limit to the hard one if it is lower, and
/// returns the budget with `reserved` set aside. A failure to raise is logged and the
/// current limit used.
pub fn raise_open_files_limit(reserved: u64) -> io::Result<FileBudget> {
    let (soft, hard) = get_nofile()?;
    let soft_limit = if soft < hard {
        match set_nofile(hard, hard) {
            Ok(()) => {
                log::info!("raised the open-file limit (RLIMIT_NOFILE) from {soft} to {hard}");
                hard
            }
            Err(e) => {
                log::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    Ok(FileBudget {
        soft_limit,
        hard_limit: hard,
        reserved,
    })
}

// `rlim_t` is u64 here but not on every target.
#[allow(clippy::unnecessary_cast)]
fn get_nofile() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

#[allow(clippy::unnecessary_cast)]
fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_divides_what_is_left_after_the_reserve() {
        let budget = FileBudget {
            soft_limit: 1024,
            hard_limit: 4096,
            reserved: 224,
        };
        assert_eq!(budget.max_partitions(), 100);
        assert!(budget.describe().contains("RLIMIT_NOFILE 1024"));
        let tiny = FileBudget {
            soft_limit: 100,
            hard_limit: 100,
            reserved: 224,
        };
        assert_eq!(tiny.max_partitions(), 0);
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let budget = raise_open_files_limit(0).unwrap();
        assert_eq!(budget.soft_limit, budget.hard_limit);
    }
}
