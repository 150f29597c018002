//! A partition's producer state (Kafka's `ProducerStateManager`, `ProducerStateEntry`
//! and `ProducerAppendInfo`): for each idempotent producer that wrote to the
//! partition, its epoch and the last [`BATCHES_RETAINED`] batches it appended, with
//! their sequence ranges and the offsets the log gave them. It is what lets the log
//! answer a producer's retry of a batch it already holds with the offsets it gave the
//! first time, instead of writing the records twice, and refuse a batch that would
//! leave a hole or a reordering in the producer's sequence.
//!
//! Pure: no files and no clock. The [`Log`](crate::storage::Log) owns one, checks each
//! client batch against it before writing ([`ProducerStateManager::check`]) and
//! records it after ([`ProducerStateManager::update`]); the same `update` replays the
//! log at open, after the last snapshot ([`crate::storage::producer_snapshot`]), so
//! the state after a restart is the state before it.
//!
//! The rules are Kafka's (3.x, for a batch from a client; transactions are not
//! supported yet, so transactional and control batches are refused):
//!
//! - `producer_id == -1`: not idempotent; nothing is checked or kept.
//! - An epoch lower than the producer's current one: `InvalidEpoch` (Kafka's
//!   INVALID_PRODUCER_EPOCH, which replaced PRODUCER_FENCED on produce in 2.7).
//! - The same epoch, and the same first and last sequence as one of the last five
//!   batches: a duplicate, answered with that batch's offsets and timestamp.
//! - The same epoch: the batch must start right after the last sequence
//!   (`last + 1`, wrapping from `i32::MAX` to 0); anything else is
//!   `OutOfOrderSequence` — including a retry of a batch older than the last five.
//! - A newer epoch (the producer bumped it, KIP-360): the batch must start at
//!   sequence 0; the old epoch's batches are forgotten.
//! - A producer id the partition holds no state for is accepted at any sequence.
//!   That is Kafka's behaviour since 2.5 (KIP-360): before, it answered
//!   UNKNOWN_PRODUCER_ID when the sequence was not 0, but a producer whose batches
//!   retention removed (or whose state expired) is not doing anything wrong, and
//!   clients since then treat the error as a reason to reset. So this module never
//!   answers UNKNOWN_PRODUCER_ID, and neither does Kafka's broker today.

use std::collections::{BTreeMap, VecDeque};

use super::batch::BatchRef;

/// A batch's producer id when the producer is not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`): a producer
/// has at most five requests in flight per partition when idempotent
/// (`max.in.flight.requests.per.connection` ≤ 5), so any retry it can send is of one
/// of its last five batches.
pub const BATCHES_RETAINED: usize = 5;

/// One batch a producer appended: its sequence range and where the log put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp as stored (the append time under LogAppendTime).
    pub timestamp_ms: i64,
}

/// What the partition knows of one producer: its epoch, and its last batches in that
/// epoch, oldest first (never empty, at most [`BATCHES_RETAINED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    producer_epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    /// An entry from its parts (a snapshot being read); `None` unless there is at
    /// least one batch and at most [`BATCHES_RETAINED`].
    pub fn new(producer_epoch: i16, batches: Vec<BatchMetadata>) -> Option<Self> {
        if batches.is_empty() || batches.len() > BATCHES_RETAINED {
            return None;
        }
        Some(ProducerStateEntry {
            producer_epoch,
            batches: batches.into(),
        })
    }

    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// The remembered batches, oldest first.
    pub fn batches(&self) -> impl ExactSizeIterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    fn last(&self) -> &BatchMetadata {
        // Never empty: an entry is made with its first batch (see `update`, `new`).
        self.batches.back().expect("a producer entry holds a batch")
    }

    pub fn last_sequence(&self) -> i32 {
        self.last().last_sequence
    }

    /// The newest batch's timestamp: what expiry measures (Kafka's `lastTimestamp`).
    pub fn last_timestamp_ms(&self) -> i64 {
        self.last().timestamp_ms
    }

    fn find_duplicate(&self, first_sequence: i32, last_sequence: i32) -> Option<BatchMetadata> {
        self.batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
            .copied()
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.batches.len() == BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

/// The producer fields of one batch, with the offsets the log gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub timestamp_ms: i64,
    /// Transactional data, or a transaction marker: not supported yet.
    pub transactional: bool,
}

impl ProducerBatch {
    /// The batch's producer fields; `None` when its producer is not idempotent.
    pub fn of(batch: &BatchRef<'_>) -> Option<ProducerBatch> {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return None;
        }
        let first_sequence = batch.base_sequence();
        Some(ProducerBatch {
            producer_id,
            producer_epoch: batch.producer_epoch(),
            first_sequence,
            last_sequence: increment_sequence(first_sequence, batch.last_offset_delta()),
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            timestamp_ms: batch.max_timestamp(),
            transactional: batch.is_transactional() || batch.is_control(),
        })
    }

    fn metadata(&self) -> BatchMetadata {
        BatchMetadata {
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            base_offset: self.base_offset,
            last_offset: self.last_offset,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// `sequence + delta`, wrapping past `i32::MAX` to 0 as Kafka's producers number
/// their records (`DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(sequence: i32, delta: i32) -> i32 {
    // In i64, so that no header, however odd, can overflow it.
    let sum = i64::from(sequence) + i64::from(delta);
    if sum > i64::from(i32::MAX) {
        (sum - i64::from(i32::MAX) - 1) as i32
    } else {
        sum as i32
    }
}

/// Whether `next` is the sequence that follows `last`.
fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

/// What to do with a client's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendCheck {
    /// Write it (and then [`ProducerStateManager::update`]).
    Append,
    /// The log holds it already: answer with the earlier append's offsets and
    /// timestamp, and write nothing.
    Duplicate(BatchMetadata),
}

/// Why a client's batch is refused. Nothing of it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// Kafka's INVALID_PRODUCER_EPOCH: the producer has been superseded by a newer
    /// epoch of itself.
    #[error("producer {producer_id} sent epoch {producer_epoch}, older than its current epoch {current_epoch}")]
    InvalidEpoch {
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },
    /// Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER: the batch does not continue the
    /// producer's sequence and is not a retry of one of its last batches.
    #[error("producer {producer_id} (epoch {producer_epoch}) sent a batch starting at sequence {first_sequence}, where sequence {expected_sequence} comes next")]
    OutOfOrderSequence {
        producer_id: i64,
        producer_epoch: i16,
        first_sequence: i32,
        expected_sequence: i32,
    },
    /// A batch with a producer id but no epoch or sequence (Kafka's INVALID_RECORD).
    #[error("producer {producer_id} sent a batch with epoch {producer_epoch} and base sequence {base_sequence}: an idempotent batch needs both")]
    InvalidSequence {
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    },
    /// A transactional batch or a transaction marker: transactions are not supported.
    #[error("producer {producer_id} sent a transactional batch: transactions are not supported")]
    Transactional { producer_id: i64 },
}

/// Every idempotent producer's state in one partition, by producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerStateEntry>,
}

impl ProducerStateManager {
    /// Decides what to do with a client's batch before it is written (Kafka's
    /// duplicate check, then `ProducerAppendInfo`'s epoch and sequence checks).
    pub fn check(&self, batch: &ProducerBatch) -> Result<AppendCheck, ProducerError> {
        let producer_id = batch.producer_id;
        if batch.transactional {
            return Err(ProducerError::Transactional { producer_id });
        }
        if batch.first_sequence < 0 || batch.producer_epoch < 0 {
            return Err(ProducerError::InvalidSequence {
                producer_id,
                producer_epoch: batch.producer_epoch,
                base_sequence: batch.first_sequence,
            });
        }
        // No state: never seen, expired, or its batches gone with retention. Kafka
        // (since 2.5) accepts any sequence here; see the module doc.
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(AppendCheck::Append);
        };
        let current_epoch = entry.producer_epoch;
        if batch.producer_epoch < current_epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id,
                producer_epoch: batch.producer_epoch,
                current_epoch,
            });
        }
        let out_of_order = |expected_sequence| ProducerError::OutOfOrderSequence {
            producer_id,
            producer_epoch: batch.producer_epoch,
            first_sequence: batch.first_sequence,
            expected_sequence,
        };
        if batch.producer_epoch > current_epoch {
            // A new epoch starts its sequence again.
            return match batch.first_sequence {
                0 => Ok(AppendCheck::Append),
                _ => Err(out_of_order(0)),
            };
        }
        if let Some(earlier) = entry.find_duplicate(batch.first_sequence, batch.last_sequence) {
            return Ok(AppendCheck::Duplicate(earlier));
        }
        let last = entry.last_sequence();
        if !in_sequence(last, batch.first_sequence) {
            return Err(out_of_order(increment_sequence(last, 1)));
        }
        Ok(AppendCheck::Append)
    }

    /// Records a batch the log now holds: after a checked client append, and
    /// unchecked when replaying the log or copying a leader's batches (Kafka's
    /// `ProducerStateEntry.addBatch`). A different epoch starts the producer's
    /// batches afresh.
    pub fn update(&mut self, batch: &ProducerBatch) {
        let metadata = batch.metadata();
        match self.producers.get_mut(&batch.producer_id) {
            Some(entry) => {
                if entry.producer_epoch != batch.producer_epoch {
                    entry.producer_epoch = batch.producer_epoch;
                    entry.batches.clear();
                }
                entry.push(metadata);
            }
            None => {
                self.producers.insert(
                    batch.producer_id,
                    ProducerStateEntry {
                        producer_epoch: batch.producer_epoch,
                        batches: VecDeque::from([metadata]),
                    },
                );
            }
        }
    }

    /// Forgets producers whose newest batch is `expiration_ms` or more older than
    /// `now_ms` (Kafka's `producer.id.expiration.ms`; like Kafka it measures the
    /// batch's own timestamp). Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp_ms()) < expiration_ms);
        before - self.producers.len()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer, by id.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (i64, &ProducerStateEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Adds a producer read from a snapshot.
    pub(crate) fn insert(&mut self, producer_id: i64, entry: ProducerStateEntry) {
        self.producers.insert(producer_id, entry);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PID: i64 = 7;

    /// A batch of `count` records from sequence `first` in `epoch`, at `base_offset`.
    fn batch(epoch: i16, first: i32, count: i32, base_offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: PID,
            producer_epoch: epoch,
            first_sequence: first,
            last_sequence: increment_sequence(first, count - 1),
            base_offset,
            last_offset: base_offset + count as i64 - 1,
            timestamp_ms: 1_000 + base_offset,
            transactional: false,
        }
    }

    /// Checks and, when it is to be written, records `b`: what a log does.
    fn append(
        state: &mut ProducerStateManager,
        b: ProducerBatch,
    ) -> Result<AppendCheck, ProducerError> {
        let check = state.check(&b)?;
        if check == AppendCheck::Append {
            state.update(&b);
        }
        Ok(check)
    }

    #[test]
    fn in_order_batches_are_appended_and_remembered_five_at_a_time() {
        let mut state = ProducerStateManager::default();
        for i in 0..8 {
            assert_eq!(
                append(&mut state, batch(0, i * 3, 3, i as i64 * 3)),
                Ok(AppendCheck::Append)
            );
        }
        let entry = state.get(PID).unwrap();
        assert_eq!(entry.batches().len(), BATCHES_RETAINED);
        assert_eq!(entry.batches().next().unwrap().first_sequence, 9);
        assert_eq!(entry.last_sequence(), 23);
    }

    #[test]
    fn a_retry_of_each_of_the_last_five_batches_is_a_duplicate_with_its_first_offsets() {
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut state, batch(0, i * 2, 2, 100 + i as i64 * 2)).unwrap();
        }
        for i in 2..7 {
            let retry = batch(0, i * 2, 2, 999);
            let Ok(AppendCheck::Duplicate(earlier)) = state.check(&retry) else {
                panic!("batch {i} is one of the last five");
            };
            assert_eq!(earlier.base_offset, 100 + i as i64 * 2);
            assert_eq!(earlier.last_offset, 101 + i as i64 * 2);
            assert_eq!(earlier.timestamp_ms, 1_000 + 100 + i as i64 * 2);
        }
        // Older than the last five: it cannot be told from a reordering.
        for i in 0..2 {
            assert_eq!(
                state.check(&batch(0, i * 2, 2, 999)),
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: PID,
                    producer_epoch: 0,
                    first_sequence: i * 2,
                    expected_sequence: 14,
                })
            );
        }
    }

    #[test]
    fn a_batch_overlapping_an_earlier_one_without_matching_it_is_out_of_order() {
        let mut state = ProducerStateManager::default();
        append(&mut state, batch(0, 0, 4, 0)).unwrap();
        assert!(matches!(
            state.check(&batch(0, 0, 2, 4)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            state.check(&batch(0, 2, 2, 4)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn a_gap_is_out_of_order_and_changes_nothing() {
        let mut state = ProducerStateManager::default();
        append(&mut state, batch(0, 0, 1, 0)).unwrap();
        let before = state.clone();
        assert_eq!(
            state.check(&batch(0, 2, 1, 1)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: PID,
                producer_epoch: 0,
                first_sequence: 2,
                expected_sequence: 1,
            })
        );
        assert_eq!(state, before);
        assert_eq!(
            append(&mut state, batch(0, 1, 1, 1)),
            Ok(AppendCheck::Append)
        );
    }

    #[test]
    fn an_older_epoch_is_fenced_and_a_newer_one_starts_at_sequence_zero() {
        let mut state = ProducerStateManager::default();
        append(&mut state, batch(3, 0, 5, 0)).unwrap();
        assert_eq!(
            state.check(&batch(2, 5, 1, 5)),
            Err(ProducerError::InvalidEpoch {
                producer_id: PID,
                producer_epoch: 2,
                current_epoch: 3,
            })
        );
        // A retry in an older epoch is no duplicate either.
        assert!(matches!(
            state.check(&batch(2, 0, 5, 5)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        assert_eq!(
            state.check(&batch(4, 5, 1, 5)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: PID,
                producer_epoch: 4,
                first_sequence: 5,
                expected_sequence: 0,
            })
        );
        assert_eq!(
            append(&mut state, batch(4, 0, 1, 5)),
            Ok(AppendCheck::Append)
        );
        let entry = state.get(PID).unwrap();
        assert_eq!((entry.producer_epoch(), entry.batches().len()), (4, 1));
        // The old epoch's batches are forgotten: its retry is fenced, not a duplicate.
        assert!(matches!(
            state.check(&batch(3, 0, 5, 6)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_zero() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 0), 5);
        let mut state = ProducerStateManager::default();
        let near_end = batch(0, i32::MAX - 2, 3, 0);
        assert_eq!(near_end.last_sequence, i32::MAX);
        append(&mut state, near_end).unwrap();
        assert_eq!(
            append(&mut state, batch(0, 0, 2, 3)),
            Ok(AppendCheck::Append)
        );
        // A batch that itself crosses the wrap.
        let mut state = ProducerStateManager::default();
        append(&mut state, batch(0, i32::MAX - 9, 9, 0)).unwrap();
        let crossing = batch(0, i32::MAX, 3, 9);
        assert_eq!(crossing.last_sequence, 1);
        assert_eq!(append(&mut state, crossing), Ok(AppendCheck::Append));
        assert!(matches!(
            state.check(&batch(0, i32::MAX, 3, 99)),
            Ok(AppendCheck::Duplicate(b)) if b.base_offset == 9
        ));
        assert_eq!(
            append(&mut state, batch(0, 2, 1, 12)),
            Ok(AppendCheck::Append)
        );
    }

    #[test]
    fn an_unknown_producer_is_accepted_at_any_sequence() {
        let state = ProducerStateManager::default();
        assert_eq!(state.check(&batch(0, 0, 1, 0)), Ok(AppendCheck::Append));
        assert_eq!(state.check(&batch(5, 42, 1, 0)), Ok(AppendCheck::Append));
    }

    #[test]
    fn batches_without_sequence_or_in_a_transaction_are_refused() {
        let state = ProducerStateManager::default();
        let mut no_sequence = batch(0, 0, 1, 0);
        no_sequence.first_sequence = -1;
        assert!(matches!(
            state.check(&no_sequence),
            Err(ProducerError::InvalidSequence { .. })
        ));
        let mut no_epoch = batch(0, 0, 1, 0);
        no_epoch.producer_epoch = -1;
        assert!(matches!(
            state.check(&no_epoch),
            Err(ProducerError::InvalidSequence { .. })
        ));
        let mut transactional = batch(0, 0, 1, 0);
        transactional.transactional = true;
        assert_eq!(
            state.check(&transactional),
            Err(ProducerError::Transactional { producer_id: PID })
        );
    }

    #[test]
    fn producers_expire_by_their_newest_batch() {
        let mut state = ProducerStateManager::default();
        append(&mut state, batch(0, 0, 1, 0)).unwrap(); // timestamp 1000
        let mut other = batch(0, 0, 1, 500); // timestamp 1500
        other.producer_id = PID + 1;
        append(&mut state, other).unwrap();
        assert_eq!(state.remove_expired(1_999, 1_000), 0);
        assert_eq!(state.remove_expired(2_000, 1_000), 1);
        assert!(state.get(PID).is_none());
        assert_eq!(state.len(), 1);
        assert_eq!(state.remove_expired(2_500, 1_000), 1);
        assert!(state.is_empty());
    }

    /// A producer's possible next sends: the next batch, a retry of one of its
    /// last batches, a retry of an older one, a gap, an older or newer epoch.
    #[derive(Debug, Clone)]
    enum Send {
        Next { records: i32 },
        Retry { back: usize },
        Gap { by: i32 },
        OlderEpoch,
        NewEpoch { first: i32 },
    }

    fn send_strategy() -> impl Strategy<Value = Send> {
        prop_oneof![
            4 => (1..5i32).prop_map(|records| Send::Next { records }),
            2 => (0..8usize).prop_map(|back| Send::Retry { back }),
            1 => (1..4i32).prop_map(|by| Send::Gap { by }),
            1 => Just(Send::OlderEpoch),
            1 => (0..2i32).prop_map(|first| Send::NewEpoch { first }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Against a model that remembers every batch ever appended: a retry is a
        /// duplicate exactly when it is of one of the last five batches of the
        /// current epoch (with that batch's offsets), the next batch is always
        /// taken, and nothing else ever is.
        #[test]
        fn the_rules_match_a_model_of_the_producer(
            start in prop_oneof![Just(0i32), Just(i32::MAX - 6)],
            sends in proptest::collection::vec(send_strategy(), 1..60),
        ) {
            let mut state = ProducerStateManager::default();
            let mut epoch: i16 = 5;
            // The current epoch's batches, in order: (first, count, base offset).
            let mut appended: Vec<(i32, i32, i64)> = Vec::new();
            let mut next_sequence = start;
            let mut log_end = 0i64;
            for send in sends {
                let first_of_epoch = appended.is_empty() && state.get(PID).is_none();
                match send {
                    Send::Next { records } => {
                        let b = batch(epoch, next_sequence, records, log_end);
                        prop_assert_eq!(append(&mut state, b), Ok(AppendCheck::Append));
                        appended.push((next_sequence, records, log_end));
                        next_sequence = increment_sequence(next_sequence, records);
                        log_end += records as i64;
                    }
                    Send::Retry { back } => {
                        let Some(&(first, records, base)) = appended.iter().rev().nth(back) else {
                            continue;
                        };
                        let got = append(&mut state, batch(epoch, first, records, log_end));
                        if back < BATCHES_RETAINED {
                            let Ok(AppendCheck::Duplicate(earlier)) = got else {
                                return Err(TestCaseError::fail(format!("{got:?} for a recent retry")));
                            };
                            prop_assert_eq!(earlier.base_offset, base);
                        } else {
                            let is_out_of_order = matches!(got, Err(ProducerError::OutOfOrderSequence { .. }));
                            prop_assert!(is_out_of_order);
                        }
                    }
                    Send::Gap { by } => {
                        let b = batch(epoch, increment_sequence(next_sequence, by), 1, log_end);
                        let got = append(&mut state, b);
                        if first_of_epoch {
                            prop_assert_eq!(got, Ok(AppendCheck::Append));
                            appended.push((b.first_sequence, 1, log_end));
                            next_sequence = increment_sequence(b.first_sequence, 1);
                            log_end += 1;
                        } else {
                            let is_out_of_order = matches!(got, Err(ProducerError::OutOfOrderSequence { .. }));
                            prop_assert!(is_out_of_order);
                        }
                    }
                    Send::OlderEpoch => {
                        let got = append(&mut state, batch(epoch - 1, next_sequence, 1, log_end));
                        if first_of_epoch {
                            prop_assert_eq!(got, Ok(AppendCheck::Append));
                            epoch -= 1;
                            appended = vec![(next_sequence, 1, log_end)];
                            next_sequence = increment_sequence(next_sequence, 1);
                            log_end += 1;
                        } else {
                            let is_fenced = matches!(got, Err(ProducerError::InvalidEpoch { .. }));
                            prop_assert!(is_fenced);
                        }
                    }
                    Send::NewEpoch { first } => {
                        let got = append(&mut state, batch(epoch + 1, first, 1, log_end));
                        if first == 0 || first_of_epoch {
                            prop_assert_eq!(got, Ok(AppendCheck::Append));
                            epoch += 1;
                            appended = vec![(first, 1, log_end)];
                            next_sequence = first + 1;
                            log_end += 1;
                        } else {
                            let is_out_of_order = matches!(got, Err(ProducerError::OutOfOrderSequence { .. }));
                            prop_assert!(is_out_of_order);
                        }
                    }
                }
            }
        }
    }
}
