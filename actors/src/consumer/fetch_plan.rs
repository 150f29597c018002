//! Fetch planning for one poll, the deciding half of Kafka's consumer `Fetcher`: which
//! assigned partitions to read, from which offsets, when the poll parks to wait for
//! data, and how its byte budget cuts what came back.
//!
//! Pure, so those choices are tested here; `fetcher.rs` carries a plan out against the
//! partition actors, and the instance's `SubscriptionState` then decides which of the
//! records still count.

use std::collections::BTreeMap;

use super::messages::ConsumedRecord;
use crate::group::TopicPartition;

/// What one poll may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchBudget {
    /// Keys and values returned at most (but always at least one record).
    pub max_bytes: usize,
    /// How long the poll may wait for data when none is there.
    pub max_wait_ms: u64,
}

/// One partition read from one offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRead {
    pub partition: TopicPartition,
    pub offset: i64,
}

/// What a read of one partition brought: records from `from` (the offset asked
/// for, or where `auto.offset.reset` moved it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecords {
    pub partition: TopicPartition,
    pub from: i64,
    pub records: Vec<ConsumedRecord>,
}

impl PartitionRecords {
    /// The position after these records (`from` when there are none).
    pub fn next_offset(&self) -> i64 {
        self.records
            .last()
            .map_or(self.from, |r| r.record.offset + 1)
    }
}

/// A poll's reads: every assigned partition from its position, first without waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    pub reads: Vec<PartitionRead>,
    pub budget: FetchBudget,
}

impl FetchPlan {
    /// The assigned partitions with no position yet: fetched for the first time, they
    /// start at the group's committed offset, else per `auto.offset.reset`.
    pub fn unpositioned(
        assignment: &[TopicPartition],
        positions: &BTreeMap<TopicPartition, i64>,
    ) -> Vec<TopicPartition> {
        assignment
            .iter()
            .filter(|tp| !positions.contains_key(*tp))
            .cloned()
            .collect()
    }

    /// One read per assigned partition, in assignment order, from its position
    /// (offset 0 for one that has none).
    pub fn new(
        assignment: &[TopicPartition],
        positions: &BTreeMap<TopicPartition, i64>,
        budget: FetchBudget,
    ) -> FetchPlan {
        let reads = assignment
            .iter()
            .map(|tp| PartitionRead {
                partition: tp.clone(),
                offset: positions.get(tp).copied().unwrap_or(0),
            })
            .collect();
        FetchPlan { reads, budget }
    }

    /// After the first pass: if it brought nothing and the poll may wait, the reads to
    /// park (one per partition, from where the first pass read; the first to bring
    /// data answers). Empty when the poll answers now.
    pub fn long_poll(&self, first_pass: &[PartitionRecords]) -> Vec<PartitionRead> {
        let nothing = first_pass.iter().all(|p| p.records.is_empty());
        if !nothing || self.budget.max_wait_ms == 0 {
            return Vec::new();
        }
        first_pass
            .iter()
            .map(|p| PartitionRead {
                partition: p.partition.clone(),
                offset: p.from,
            })
            .collect()
    }
}

/// Keeps records, partition by partition in order, up to `max_bytes` of keys and
/// values, and always at least one, so a large record cannot stall a consumer. Every
/// partition stays in the answer (possibly with no records), so its `from` is known.
pub fn trim_to_budget(fetched: Vec<PartitionRecords>, max_bytes: usize) -> Vec<PartitionRecords> {
    let mut total_bytes = 0usize;
    let mut any = false;
    let mut out = Vec::with_capacity(fetched.len());
    for mut part in fetched {
        let mut kept = 0;
        for r in &part.records {
            let size_bytes = r.record.record.key.as_ref().map_or(0, Vec::len)
                + r.record.record.value.as_ref().map_or(0, Vec::len);
            if any && total_bytes + size_bytes > max_bytes {
                break;
            }
            total_bytes += size_bytes;
            any = true;
            kept += 1;
        }
        part.records.truncate(kept);
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Record, StoredRecord};

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn record(partition: i32, offset: i64, value_bytes: usize) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition,
            record: StoredRecord {
                offset,
                record: Record {
                    timestamp_ms: 0,
                    key: Some(vec![b'k']),
                    value: Some(vec![0; value_bytes]),
                    headers: Vec::new(),
                },
            },
        }
    }

    fn part(partition: i32, from: i64, sizes: &[usize]) -> PartitionRecords {
        PartitionRecords {
            partition: tp(partition),
            from,
            records: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| record(partition, from + i as i64, size))
                .collect(),
        }
    }

    const BUDGET: FetchBudget = FetchBudget {
        max_bytes: 100,
        max_wait_ms: 500,
    };

    #[test]
    fn reads_every_assigned_partition_from_its_position() {
        let assignment = [tp(0), tp(1), tp(2)];
        let positions = BTreeMap::from([(tp(1), 7), (tp(5), 9)]);
        assert_eq!(
            FetchPlan::unpositioned(&assignment, &positions),
            [tp(0), tp(2)]
        );
        let plan = FetchPlan::new(&assignment, &positions, BUDGET);
        let offsets: Vec<(i32, i64)> = plan
            .reads
            .iter()
            .map(|r| (r.partition.partition, r.offset))
            .collect();
        assert_eq!(offsets, [(0, 0), (1, 7), (2, 0)]);
    }

    #[test]
    fn parks_only_when_nothing_came_and_the_poll_may_wait() {
        let plan = FetchPlan::new(&[tp(0), tp(1)], &BTreeMap::new(), BUDGET);
        // Nothing came: park at both, from where each was read (a reset may have
        // moved the first).
        let empty = [part(0, 12, &[]), part(1, 3, &[])];
        assert_eq!(
            plan.long_poll(&empty),
            [
                PartitionRead {
                    partition: tp(0),
                    offset: 12
                },
                PartitionRead {
                    partition: tp(1),
                    offset: 3
                },
            ]
        );
        assert!(plan
            .long_poll(&[part(0, 12, &[]), part(1, 3, &[1])])
            .is_empty());
        let no_wait = FetchPlan::new(
            &[tp(0)],
            &BTreeMap::new(),
            FetchBudget {
                max_wait_ms: 0,
                ..BUDGET
            },
        );
        assert!(no_wait.long_poll(&[part(0, 0, &[])]).is_empty());
    }

    #[test]
    fn the_budget_counts_keys_and_values_across_partitions() {
        // 1-byte keys: records of 40, 40, 40 bytes, then 10.
        let fetched = vec![part(0, 0, &[39, 39]), part(1, 5, &[39, 9])];
        let kept = trim_to_budget(fetched, 100);
        let counts: Vec<usize> = kept.iter().map(|p| p.records.len()).collect();
        assert_eq!(
            counts,
            [2, 0],
            "the third 40-byte record would pass 100 bytes"
        );
        assert_eq!(
            kept[1].from, 5,
            "a partition cut to nothing keeps its place"
        );
        assert_eq!(kept[0].next_offset(), 2);
        assert_eq!(kept[1].next_offset(), 5);
    }

    #[test]
    fn one_record_is_returned_even_past_the_budget() {
        let kept = trim_to_budget(vec![part(0, 0, &[500, 1]), part(1, 0, &[1])], 100);
        let counts: Vec<usize> = kept.iter().map(|p| p.records.len()).collect();
        assert_eq!(counts, [1, 0]);
        let none = trim_to_budget(vec![part(0, 4, &[])], 0);
        assert_eq!(none[0].next_offset(), 4);
    }
}
