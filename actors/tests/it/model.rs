//! Model-based property test: random sequences of append, read, timestamp lookup,
//! roll, segment deletion, truncation, clean close/reopen and crash/reopen, checked
//! after every step against an in-memory list of the records the log has acknowledged.

use proptest::prelude::*;
use troupe_actors::storage::{Log, LogError, Record, StoredRecord};

use crate::common::{read_all, record_strategy, small_config};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Record>),
    Read {
        at: u32,
        max_bytes: usize,
    },
    ReadOutOfRange {
        below: bool,
    },
    /// A timestamp near one a record has (`pick`), or an arbitrary one.
    LookupTimestamp {
        pick: Option<u32>,
        delta: i64,
    },
    Roll,
    DeleteOldest(usize),
    /// Truncate to an offset between the log start and the log end (`at` picks it).
    TruncateTo(u32),
    CloseReopen,
    CrashReopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(record_strategy(), 1..6).prop_map(Op::Append),
        4 => (any::<u32>(), 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<bool>().prop_map(|below| Op::ReadOutOfRange { below }),
        3 => (proptest::option::of(any::<u32>()), -20i64..220).prop_map(|(pick, delta)| Op::LookupTimestamp { pick, delta }),
        1 => Just(Op::Roll),
        1 => (1usize..4).prop_map(Op::DeleteOldest),
        1 => any::<u32>().prop_map(Op::TruncateTo),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::CrashReopen),
    ]
}

struct Model {
    records: Vec<StoredRecord>,
    /// The base offset of every batch appended and still in the log.
    batch_bases: Vec<i64>,
    log_start_offset: i64,
    log_end_offset: i64,
}

impl Model {
    fn from(&self, offset: i64) -> impl Iterator<Item = &StoredRecord> {
        self.records.iter().filter(move |r| r.offset >= offset)
    }
}

fn check_invariants(log: &Log, model: &Model) {
    assert_eq!(
        log.log_start_offset(),
        model.log_start_offset,
        "log start offset"
    );
    assert_eq!(log.log_end_offset(), model.log_end_offset, "log end offset");
    assert!(log.recovery_point() <= model.log_end_offset);
    assert!(log
        .leader_epochs()
        .entries()
        .iter()
        .all(|e| e.start_offset <= model.log_end_offset));
    let all = read_all(log, 700);
    assert_eq!(all.len(), model.records.len());
    assert!(
        all.iter().zip(&model.records).all(|(a, b)| a == b),
        "full read differs from the model"
    );
    let segments = log.segments();
    assert!(segments.last().is_some_and(|s| s.is_active));
    for pair in segments.windows(2) {
        assert_eq!(
            pair[0].next_offset, pair[1].base_offset,
            "segments are contiguous"
        );
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config();
    let mut log = Some(Log::open(dir.path(), config.clone()).unwrap());
    let mut model = Model {
        records: Vec::new(),
        batch_bases: Vec::new(),
        log_start_offset: 0,
        log_end_offset: 0,
    };
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append(records) => {
                let info = l.append_records(&records, 3).unwrap();
                assert_eq!(info.base_offset, model.log_end_offset);
                assert_eq!(
                    info.last_offset,
                    model.log_end_offset + records.len() as i64 - 1
                );
                for (i, record) in records.into_iter().enumerate() {
                    model.records.push(StoredRecord {
                        offset: info.base_offset + i as i64,
                        record,
                    });
                }
                model.batch_bases.push(info.base_offset);
                model.log_end_offset = info.last_offset + 1;
                l.flush_if_due().unwrap();
            }
            Op::Read { at, max_bytes } => {
                let span = (model.log_end_offset - model.log_start_offset + 1) as u64;
                let offset = model.log_start_offset + (at as u64 % span) as i64;
                let fetched = l.read(offset, max_bytes).unwrap();
                assert_eq!(fetched.log_start_offset, model.log_start_offset);
                assert_eq!(fetched.log_end_offset, model.log_end_offset);
                let got = fetched.records_from(offset).unwrap();
                if offset < model.log_end_offset {
                    assert!(
                        !got.is_empty(),
                        "read at {offset} below the log end returned nothing"
                    );
                }
                let want: Vec<&StoredRecord> = model.from(offset).take(got.len()).collect();
                assert!(
                    got.iter().eq(want.into_iter()),
                    "read at {offset} differs from the model"
                );
                let batches = fetched.batches().count();
                assert!(
                    fetched.bytes.len() <= max_bytes || batches == 1,
                    "read overshot max_bytes with {batches} batches"
                );
                assert!(fetched
                    .batches()
                    .next()
                    .is_none_or(|b| b.base_offset() <= offset && b.last_offset() >= offset));
            }
            Op::ReadOutOfRange { below } => {
                let requested = if below {
                    model.log_start_offset - 1
                } else {
                    model.log_end_offset + 1
                };
                match l.read(requested, 1000) {
                    Err(LogError::OffsetOutOfRange {
                        requested: r,
                        log_start_offset,
                        log_end_offset,
                    }) => {
                        assert_eq!(
                            (r, log_start_offset, log_end_offset),
                            (requested, model.log_start_offset, model.log_end_offset)
                        );
                    }
                    other => panic!("expected out of range for {requested}, got {other:?}"),
                }
            }
            Op::LookupTimestamp { pick, delta } => {
                let t = match pick {
                    Some(i) if !model.records.is_empty() => {
                        model.records[i as usize % model.records.len()]
                            .record
                            .timestamp_ms
                            + delta.clamp(-1, 1)
                    }
                    _ => delta,
                };
                let want = model
                    .from(model.log_start_offset)
                    .find(|r| r.record.timestamp_ms >= t)
                    .map(|r| (r.offset, r.record.timestamp_ms));
                let got = l
                    .offset_for_timestamp(t)
                    .unwrap()
                    .map(|f| (f.offset, f.timestamp_ms));
                assert_eq!(got, want, "lookup of timestamp {t}");
            }
            Op::Roll => {
                let before = l.segments().len();
                l.roll().unwrap();
                let empty_active = l.segments().last().unwrap().size_bytes == 0;
                assert!(empty_active && l.segments().len() >= before);
            }
            Op::DeleteOldest(n) => {
                let segments = l.segments();
                let deletable = (segments.len() - 1).min(n);
                let expected_start = segments[deletable].base_offset.max(model.log_start_offset);
                let mut count = 0;
                let deleted = l
                    .delete_oldest_segments(|_| {
                        count += 1;
                        count <= n
                    })
                    .unwrap();
                assert_eq!(deleted.len(), deletable);
                model.log_start_offset = expected_start;
                model.records.retain(|r| r.offset >= expected_start);
                model.batch_bases.retain(|b| *b >= expected_start);
            }
            Op::TruncateTo(at) => {
                let span = (model.log_end_offset - model.log_start_offset + 1) as u64;
                let offset = model.log_start_offset + (at as u64 % span) as i64;
                let truncated = l.truncate_to(offset).unwrap();
                assert_eq!(truncated, offset < model.log_end_offset);
                if truncated {
                    // The batch holding the offset goes whole; at the log start, all.
                    let holding = model
                        .batch_bases
                        .iter()
                        .copied()
                        .filter(|b| *b <= offset)
                        .max();
                    let end = holding.unwrap_or(0).max(model.log_start_offset);
                    model.records.retain(|r| r.offset < end);
                    model.batch_bases.retain(|b| *b < end);
                    model.log_end_offset = end;
                }
            }
            Op::CloseReopen => {
                log.take().unwrap().close().unwrap();
                log = Some(Log::open(dir.path(), config.clone()).unwrap());
            }
            Op::CrashReopen => {
                drop(log.take());
                log = Some(Log::open(dir.path(), config.clone()).unwrap());
            }
        }
        check_invariants(log.as_ref().unwrap(), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_behaves_like_the_model(ops in proptest::collection::vec(op_strategy(), 1..60)) {
        run(ops);
    }
}
