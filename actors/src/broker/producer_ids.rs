//! `ProducerIdManager`: hands out the producer ids that InitProducerId gives
//! idempotent producers, unique in the cluster across restarts and crashes.
//!
//! A producer id names a producer in every partition's producer state
//! ([`crate::storage::producer_state`]); handing one out twice would let two
//! producers pass for each other — one's batches taken for the other's retries.
//! Kafka's controller allocates ids in blocks of 1000 (`ProducerIdsRecord`, its
//! `nextProducerId` in the metadata log) and each broker hands out the ids of its
//! block. Here the `Broker`, the controller's part on one node, owns this struct and
//! does both: before the first id of a block is handed out, the end of the block is
//! persisted as the next block's start, so after any restart the ids handed out
//! continue past every id that may have been handed out before (the rest of a
//! block in use at a crash is skipped, never reused).
//!
//! The file, `<log.dirs>/producer-ids`, is a checkpoint (`storage::checkpoint`'s
//! text format, replaced atomically):
//!
//! ```text
//! 0                       format version
//! 1                       number of entries
//! next_producer_id 2000   the first id of the next block
//! ```
//!
//! A file that cannot be read or does not parse refuses every allocation (an error
//! naming it) rather than guess: an operator can fix or remove it.
//!
//! **In a cluster** every broker hands out ids, and a producer may meet a partition
//! through any of them: the ids of broker `n` are `n << 32` plus its own counter, so
//! no two brokers ever hand out the same id, without asking the controller (Kafka
//! asks its controller for each block; this spends the id space instead, 2³² ids per
//! broker). A data dir written before kept its counter, and its earlier ids (below
//! 2³²) stay distinct from the new ones of every broker but node 0.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{BrokerError, BrokerResult};
use crate::storage::checkpoint::{read_checkpoint, write_checkpoint};

/// The file in `log.dirs` holding the next block's first id.
pub const PRODUCER_IDS_FILE: &str = "producer-ids";

/// Ids claimed at a time (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`): one
/// file write per thousand producers.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Bits of an id that are the broker's own counter; the bits above are its node id.
const NODE_SHIFT: u32 = 32;

const NEXT_PRODUCER_ID_KEY: &str = "next_producer_id";

#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    /// This broker's share of the id space: `node id << 32`.
    base: i64,
    /// The ids of the claimed block not yet handed out; empty before the first claim.
    block: Range<i64>,
}

impl ProducerIdManager {
    /// Broker `node_id`'s manager over `<log_dir>/producer-ids`; nothing is read until
    /// the first id.
    pub fn new(log_dir: &Path, node_id: crate::ids::NodeId) -> Self {
        ProducerIdManager {
            path: log_dir.join(PRODUCER_IDS_FILE),
            base: i64::from(node_id.get().max(0)) << NODE_SHIFT,
            block: 0..0,
        }
    }

    /// The next producer id: from the block in hand, or from a new block, persisted
    /// before any of its ids is handed out.
    pub fn next_id(&mut self) -> BrokerResult<i64> {
        if self.block.is_empty() {
            self.block = self.claim_block()?;
        }
        let id = self.block.start;
        self.block.start += 1;
        Ok(self.base + id)
    }

    /// Claims the next block: reads where it starts, persists where it ends.
    fn claim_block(&self) -> BrokerResult<Range<i64>> {
        let start = self.read_next_id()?;
        let end = start
            .checked_add(PRODUCER_ID_BLOCK_SIZE)
            .filter(|end| *end <= 1 << NODE_SHIFT)
            .ok_or_else(|| BrokerError::storage(&self.path, "no producer ids are left"))?;
        write_checkpoint(&self.path, &[(NEXT_PRODUCER_ID_KEY, end)])
            .map_err(|e| BrokerError::storage(&self.path, e))?;
        log::info!(
            "producer ids {start}..{end} claimed ({} holds {end})",
            self.path.display()
        );
        Ok(start..end)
    }

    /// The first id of the next block: 0 when there is no file yet.
    fn read_next_id(&self) -> BrokerResult<i64> {
        let entries =
            read_checkpoint(&self.path).map_err(|e| BrokerError::storage(&self.path, e))?;
        let Some(entries) = entries else {
            return Ok(0);
        };
        match entries.as_slice() {
            [(key, next)] if key == NEXT_PRODUCER_ID_KEY && *next >= 0 => Ok(*next),
            _ => Err(BrokerError::storage(
                &self.path,
                format!("expected one entry '{NEXT_PRODUCER_ID_KEY} <id>', found {entries:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    #[test]
    fn ids_are_unique_across_restarts_and_skip_the_rest_of_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = ProducerIdManager::new(dir.path(), NodeId::new(0));
        let ids: Vec<i64> = (0..3).map(|_| first.next_id().unwrap()).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        // A crash: whatever the rest of the block was, a restart starts after it.
        drop(first);
        let mut second = ProducerIdManager::new(dir.path(), NodeId::new(0));
        assert_eq!(second.next_id().unwrap(), PRODUCER_ID_BLOCK_SIZE);
        let more: Vec<i64> = (0..PRODUCER_ID_BLOCK_SIZE)
            .map(|_| second.next_id().unwrap())
            .collect();
        assert_eq!(more.last(), Some(&(2 * PRODUCER_ID_BLOCK_SIZE)));
        let text = std::fs::read_to_string(dir.path().join(PRODUCER_IDS_FILE)).unwrap();
        assert_eq!(text, "0\n1\nnext_producer_id 3000\n");
    }

    #[test]
    fn a_damaged_file_refuses_ids_rather_than_reuse_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PRODUCER_IDS_FILE);
        for bad in [
            "garbage",
            "0\n1\nsomething_else 5\n",
            "0\n1\nnext_producer_id -4\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = ProducerIdManager::new(dir.path(), NodeId::new(1))
                .next_id()
                .unwrap_err();
            assert!(
                matches!(&e, BrokerError::StorageFailure { path: p, .. } if p.ends_with(PRODUCER_IDS_FILE)),
                "{bad:?}: {e:?}"
            );
        }
        std::fs::write(&path, format!("0\n1\nnext_producer_id {}\n", i64::MAX - 10)).unwrap();
        assert!(ProducerIdManager::new(dir.path(), NodeId::new(1))
            .next_id()
            .is_err());
        // The counter is a broker's 2³² ids: past them, none rather than another's.
        std::fs::write(
            &path,
            format!("0\n1\nnext_producer_id {}\n", (1i64 << 32) - 10),
        )
        .unwrap();
        assert!(ProducerIdManager::new(dir.path(), NodeId::new(1))
            .next_id()
            .is_err());
    }

    #[test]
    fn brokers_hand_out_ids_no_other_broker_does() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut seen = std::collections::HashSet::new();
        for (n, dir) in dirs.iter().enumerate() {
            let mut ids = ProducerIdManager::new(dir.path(), NodeId::new(n as i32 + 1));
            for _ in 0..1500 {
                let id = ids.next_id().unwrap();
                assert!(id >= 0);
                assert_eq!(id >> 32, n as i64 + 1, "broker {}'s share", n + 1);
                assert!(seen.insert(id), "{id} handed out twice");
            }
        }
    }
}
