//! Offset resolution for a consumer instance: where `auto.offset.reset` starts a
//! partition, which offset a time means, and where a seek to the beginning, the end
//! or a time lands, each asked of the partition (`ListOffsets`).
//!
//! What an offset means is decided once, in the request layer
//! (`requests/list_offsets.rs`); this file maps the consumer's policies onto it. The
//! WebSocket session uses [`reset_offset`] too.

use super::messages::{ConsumerError, ConsumerResult, ResetPolicy, SeekTo};
use super::metadata::partition_address;
use crate::error::BrokerError;
use crate::group::TopicPartition;
use crate::partition::OffsetSpec;
use crate::requests::list_offsets::resolve;
use crate::requests::{Leader, Routes};

/// Where a partition without a usable committed offset starts, per Kafka's
/// `auto.offset.reset` (`None` is an error). A partition with no address starts at 0.
pub async fn reset_offset(
    tp: &TopicPartition,
    addr: Option<&Leader>,
    reset: ResetPolicy,
) -> ConsumerResult<i64> {
    let spec = match reset {
        ResetPolicy::Earliest => OffsetSpec::Earliest,
        ResetPolicy::Latest => OffsetSpec::Latest,
        ResetPolicy::None => {
            return Err(ConsumerError::NoOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
        }
    };
    let Some(addr) = addr else {
        return Ok(0);
    };
    Ok(resolve(addr, spec).await?)
}

/// The offset of the first record at or after `timestamp_ms`, or the log end when no
/// record is that recent (Kafka's consumer seeks there too: nothing older is wanted).
pub async fn offset_for_time(
    tp: &TopicPartition,
    addr: Option<&Leader>,
    timestamp_ms: i64,
) -> ConsumerResult<i64> {
    let Some(addr) = addr else {
        return Err(ConsumerError::Broker(BrokerError::UnknownPartition {
            topic: tp.topic.clone(),
            partition: tp.partition,
        }));
    };
    Ok(resolve(addr, OffsetSpec::Timestamp(timestamp_ms)).await?)
}

/// The offset each seek lands on, in order; the first failure fails them all.
pub async fn resolve_seeks(
    routes: Routes,
    seeks: Vec<(TopicPartition, SeekTo)>,
) -> ConsumerResult<Vec<(TopicPartition, i64)>> {
    let mut resolved = Vec::with_capacity(seeks.len());
    for (tp, to) in seeks {
        let offset = match to {
            SeekTo::Offset(o) => o,
            SeekTo::Beginning => {
                let addr = partition_address(&routes, &tp)?;
                reset_offset(&tp, addr.as_ref(), ResetPolicy::Earliest).await?
            }
            SeekTo::End => {
                let addr = partition_address(&routes, &tp)?;
                reset_offset(&tp, addr.as_ref(), ResetPolicy::Latest).await?
            }
            SeekTo::Timestamp(ms) => {
                let addr = partition_address(&routes, &tp)?;
                offset_for_time(&tp, addr.as_ref(), ms).await?
            }
        };
        resolved.push((tp, offset));
    }
    Ok(resolved)
}
