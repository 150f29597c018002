//! Carries a poll's [`FetchPlan`] out against the partition actors, the I/O half of
//! Kafka's consumer `Fetcher`: it looks the partitions up, gives those fetched for the
//! first time a position (the group's committed offset, else `auto.offset.reset`),
//! reads each once without waiting and, if nothing came, parks a read at each and
//! answers with the first that brings data.
//!
//! It works on a copy of the instance's assignment and positions, so the instance's
//! mailbox keeps serving heartbeats and rebalances while a poll waits; the instance
//! decides afterwards which of the records still count.

use std::collections::BTreeMap;

use futures::future::{join_all, select_all};

use super::fetch_plan::{trim_to_budget, FetchBudget, FetchPlan, PartitionRead, PartitionRecords};
use super::messages::{ConsumedRecord, ConsumerResult, ResetPolicy};
use super::metadata::{partition_addresses, PartitionAddresses};
use super::offset_lookup::reset_offset;
use crate::error::BrokerError;
use crate::group::{CoordinatorRef, FetchOffsets, TopicPartition};
use crate::partition::{Fetch, FetchResult};
use crate::requests::{Leader, Routes};

pub(super) struct Fetcher {
    pub routes: Routes,
    /// Where the committed offsets of partitions without a position come from.
    pub coordinator: CoordinatorRef,
    pub reset: ResetPolicy,
}

impl Fetcher {
    /// The records of `assignment` from `positions`, within `budget`; each partition
    /// read says where it read from, so the caller can tell whether it still counts.
    pub async fn fetch(
        self,
        assignment: Vec<TopicPartition>,
        mut positions: BTreeMap<TopicPartition, i64>,
        budget: FetchBudget,
    ) -> ConsumerResult<Vec<PartitionRecords>> {
        if assignment.is_empty() {
            return Ok(Vec::new());
        }
        let addresses = partition_addresses(&self.routes, &assignment)?;
        self.initial_positions(&assignment, &mut positions, &addresses)
            .await?;
        let plan = FetchPlan::new(&assignment, &positions, budget);
        let mut fetched = self
            .read_all(&plan.reads, &addresses, budget.max_bytes)
            .await?;
        let waits = plan.long_poll(&fetched);
        if !waits.is_empty() {
            if let Some(first) = self.first_with_data(&waits, &addresses, budget).await? {
                fetched = vec![first];
            }
        }
        Ok(trim_to_budget(fetched, budget.max_bytes))
    }

    /// Positions for partitions fetched for the first time: the committed offset,
    /// else per `auto.offset.reset`.
    async fn initial_positions(
        &self,
        assignment: &[TopicPartition],
        positions: &mut BTreeMap<TopicPartition, i64>,
        addresses: &PartitionAddresses,
    ) -> ConsumerResult<()> {
        let missing = FetchPlan::unpositioned(assignment, positions);
        if missing.is_empty() {
            return Ok(());
        }
        let committed = self
            .coordinator
            .send(FetchOffsets {
                partitions: Some(missing.clone()),
            })
            .await??;
        for tp in missing {
            let offset = match committed.get(&tp) {
                Some(c) => c.offset,
                None => reset_offset(&tp, addresses.get(&tp), self.reset).await?,
            };
            positions.insert(tp, offset);
        }
        Ok(())
    }

    /// Every read at once, without waiting for data.
    async fn read_all(
        &self,
        reads: &[PartitionRead],
        addresses: &PartitionAddresses,
        max_bytes: usize,
    ) -> ConsumerResult<Vec<PartitionRecords>> {
        let reads = reads.iter().map(|r| {
            let addr = addresses.get(&r.partition).cloned();
            read(r.clone(), addr, max_bytes, 0, self.reset)
        });
        join_all(reads).await.into_iter().collect()
    }

    /// Parks a read at every partition; the first to bring data answers (`None` if
    /// every one timed out empty).
    async fn first_with_data(
        &self,
        waits: &[PartitionRead],
        addresses: &PartitionAddresses,
        budget: FetchBudget,
    ) -> ConsumerResult<Option<PartitionRecords>> {
        let mut waits: Vec<_> = waits
            .iter()
            .map(|r| {
                let addr = addresses.get(&r.partition).cloned();
                Box::pin(read(
                    r.clone(),
                    addr,
                    budget.max_bytes,
                    budget.max_wait_ms,
                    self.reset,
                ))
            })
            .collect();
        while !waits.is_empty() {
            let (first, _, rest) = select_all(waits).await;
            let first = first?;
            if !first.records.is_empty() {
                return Ok(Some(first));
            }
            waits = rest;
        }
        Ok(None)
    }
}

/// Reads one partition; an offset retention has passed is reset per the policy (and
/// the records from there returned). A partition with no address has nothing to read.
async fn read(
    at: PartitionRead,
    addr: Option<Leader>,
    max_bytes: usize,
    max_wait_ms: u64,
    reset: ResetPolicy,
) -> ConsumerResult<PartitionRecords> {
    let PartitionRead { partition, offset } = at;
    let Some(addr) = addr else {
        return Ok(PartitionRecords {
            partition,
            from: offset,
            records: Vec::new(),
        });
    };
    let fetch = |offset| Fetch {
        offset,
        max_bytes,
        max_wait_ms,
    };
    let (from, result): (i64, FetchResult) = match addr.fetch(fetch(offset)).await {
        Ok(r) => (offset, r),
        Err(BrokerError::OffsetOutOfRange { .. }) if reset != ResetPolicy::None => {
            let from = reset_offset(&partition, Some(&addr), reset).await?;
            (from, addr.fetch(fetch(from)).await?)
        }
        Err(e) => return Err(e.into()),
    };
    let records = result
        .data
        .records_from(from)
        .map_err(|e| BrokerError::undecodable(&partition.topic, partition.partition, from, e))?
        .into_iter()
        .map(|record| ConsumedRecord {
            topic: partition.topic.clone(),
            partition: partition.partition,
            record,
        })
        .collect();
    Ok(PartitionRecords {
        partition,
        from,
        records,
    })
}
