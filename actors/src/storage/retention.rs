//! Retention (`cleanup.policy=delete`): which of a log's oldest segments to delete.
//! As in Kafka, only whole non-active segments go, oldest first, and a segment goes
//! when its newest record is older than `retention.ms`, or when the partition would
//! still hold at least `retention.bytes` without it. This module only decides; the
//! log retires the segments (renamed to `*.deleted`, removed after
//! `file.delete.delay.ms`).

use super::segment::SegmentInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// `retention.ms`; `None` is -1, forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes` per partition; `None` is -1, unlimited.
    pub retention_bytes: Option<u64>,
}

/// Why a segment is deleted (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    Time,
    Size,
}

/// How many of the oldest segments (a prefix of `segments`, never the active one)
/// retention deletes at `now_ms`, and why the last of them goes.
pub fn segments_to_delete(
    segments: &[SegmentInfo],
    now_ms: i64,
    policy: RetentionPolicy,
) -> (usize, Option<RetentionReason>) {
    let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let mut excess = policy
        .retention_bytes
        .map(|limit| total.saturating_sub(limit));
    let mut count = 0;
    let mut reason = None;
    for segment in segments.iter().filter(|s| !s.is_active) {
        let expired = match (policy.retention_ms, segment.max_timestamp_ms) {
            (Some(ms), Some(newest)) => now_ms.saturating_sub(newest) > ms,
            _ => false,
        };
        let over_size = excess.is_some_and(|e| e >= segment.size_bytes && segment.size_bytes > 0);
        if !expired && !over_size {
            break;
        }
        if let Some(e) = excess.as_mut() {
            *e = e.saturating_sub(segment.size_bytes);
        }
        reason = Some(if expired {
            RetentionReason::Time
        } else {
            RetentionReason::Size
        });
        count += 1;
    }
    (count, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, size: u64, newest: i64, active: bool) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            next_offset: base + 10,
            size_bytes: size,
            max_timestamp_ms: Some(newest),
            is_active: active,
        }
    }

    #[test]
    fn time_retention_deletes_the_expired_prefix_never_the_active_segment() {
        let segs = [
            seg(0, 100, 1_000, false),
            seg(10, 100, 2_000, false),
            seg(20, 100, 9_000, false),
            seg(30, 100, 1, true),
        ];
        let policy = RetentionPolicy {
            retention_ms: Some(5_000),
            retention_bytes: None,
        };
        assert_eq!(
            segments_to_delete(&segs, 7_001, policy),
            (2, Some(RetentionReason::Time))
        );
        assert_eq!(
            segments_to_delete(&segs, 6_000, policy),
            (0, None),
            "exactly retention.ms old stays"
        );
        assert_eq!(
            segments_to_delete(&segs, 6_001, policy),
            (1, Some(RetentionReason::Time))
        );
        assert_eq!(
            segments_to_delete(&segs, 6_000_000, policy).0,
            3,
            "the old active segment stays"
        );
        assert_eq!(
            segments_to_delete(&segs, 6_000_000, RetentionPolicy::default()).0,
            0
        );
    }

    #[test]
    fn size_retention_keeps_at_least_retention_bytes() {
        let segs = [
            seg(0, 100, 0, false),
            seg(10, 100, 0, false),
            seg(20, 100, 0, false),
            seg(30, 50, 0, true),
        ];
        let by_size = |bytes| RetentionPolicy {
            retention_ms: None,
            retention_bytes: Some(bytes),
        };
        // 350 bytes in all: keeping 200 allows deleting one segment (250 left), not two (150).
        assert_eq!(
            segments_to_delete(&segs, 0, by_size(200)),
            (1, Some(RetentionReason::Size))
        );
        assert_eq!(segments_to_delete(&segs, 0, by_size(150)).0, 2);
        assert_eq!(segments_to_delete(&segs, 0, by_size(0)).0, 3);
        assert_eq!(segments_to_delete(&segs, 0, by_size(1000)).0, 0);
    }
}
