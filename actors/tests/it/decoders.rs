//! Property tests of every decoder of record bytes that come from outside (a producer,
//! an old client, a disk): random bytes, and valid batches and message sets mutated —
//! bits flipped, cut short, length and count fields set to 2³¹-1, -1 and the like,
//! bytes inserted, varints made huge — with their checksums fixed up or not (fixed,
//! the damage reaches the record and decompression code behind the CRC). Each entry
//! point must answer `Ok` or `Err`: never panic, and never take more memory than the
//! input and the decompression cap account for (measured by `allocations.rs`).

use proptest::prelude::*;
use troupe_actors::storage::batch::BatchHeader;
use troupe_actors::storage::legacy::build::{message, message_set};
use troupe_actors::storage::{
    convert_message_set, BatchRef, CompressionType, FetchData, Record, RecordBatch, TimestampType,
    BATCH_HEADER_BYTES, MAX_DECOMPRESSED_BATCH_BYTES,
};

use crate::allocations::peak_bytes_during;
use crate::common::record_strategy;

const MIB: usize = 1024 * 1024;
/// Header positions (see `storage/batch.rs`).
const LENGTH_POS: usize = 8;
const CRC_POS: usize = 17;
const CRC_COVERS_FROM: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const RECORDS_COUNT_POS: usize = 57;

/// Runs every batch entry point on `bytes`; returns whether its records section is
/// compressed (what the memory bound allows for).
fn exercise_batch(bytes: &[u8]) -> bool {
    let _ = BatchHeader::parse(bytes);
    let _ = RecordBatch::from_bytes(bytes.to_vec());
    let fetched = FetchData {
        bytes: bytes.to_vec(),
        ..FetchData::default()
    };
    let _ = fetched.records_from(0);
    let Ok(batch) = BatchRef::parse(bytes) else {
        return false;
    };
    let _ = batch.verify_crc();
    let _ = batch.validate();
    for record in batch.records() {
        let _ = record;
    }
    let compressed = batch.compression_codec() != 0;
    if let Ok(section) = batch.records_section() {
        let kept: Vec<_> = section
            .views()
            .filter_map(Result::ok)
            .map(|v| v.raw)
            .collect();
        // Compaction rewrites only batches it has read whole; an uncompressed copy is
        // cheap enough to try on anything.
        if !compressed && !kept.is_empty() {
            let mut out = Vec::new();
            let _ = section.write_filtered(&kept, 0, &mut out);
        }
    }
    compressed
}

/// What decoding `len` bytes may hold at once: a little per input byte, plus the
/// decompression cap when the records are compressed.
fn memory_bound(len: usize, compressed: bool) -> usize {
    let decompressed = if compressed {
        MAX_DECOMPRESSED_BATCH_BYTES
    } else {
        0
    };
    MIB + 16 * len + decompressed
}

fn check_batch_decoders(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (compressed, peak) = peak_bytes_during(|| exercise_batch(bytes));
    prop_assert!(
        peak <= memory_bound(bytes.len(), compressed),
        "decoding {} bytes took {peak} bytes",
        bytes.len()
    );
    let (_, peak) = peak_bytes_during(|| convert_message_set(bytes));
    prop_assert!(
        peak <= memory_bound(bytes.len(), true),
        "legacy: {peak} bytes"
    );
    for codec in CompressionType::ALL {
        let (_, peak) = peak_bytes_during(|| codec.decompress(bytes, MIB));
        prop_assert!(peak <= 2 * MIB + 4 * bytes.len(), "{codec:?}: {peak} bytes");
    }
    Ok(())
}

fn codec_strategy() -> impl Strategy<Value = CompressionType> {
    proptest::sample::select(CompressionType::ALL.to_vec())
}

fn valid_batch() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(record_strategy(), 1..12),
        codec_strategy(),
    )
        .prop_map(|(records, codec)| {
            RecordBatch::encode(&records, TimestampType::CreateTime)
                .and_then(|b| b.compress(codec))
                .expect("valid records encode")
                .into_bytes()
        })
}

/// Lengths and counts a hostile or damaged input may carry.
fn nasty_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MAX),
        Just(i32::MIN),
        Just(-1),
        Just(0),
        Just(1 << 30),
        0..256i32,
        any::<i32>(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Truncate {
        keep: usize,
    },
    SetI32 {
        field: usize,
        value: i32,
    },
    SetByte {
        at: usize,
        value: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// A zigzag varint of about 2³¹-1 (`ff ff ff ff 0f`) written over the bytes at `at`.
    HugeVarint {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        (0usize..3, nasty_i32()).prop_map(|(field, value)| Mutation::SetI32 { field, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        any::<usize>().prop_map(|at| Mutation::HugeVarint { at }),
    ]
}

/// Applies `m`; `i32_fields` are the positions `SetI32` chooses among.
fn apply(bytes: &mut Vec<u8>, m: &Mutation, i32_fields: &[usize]) {
    let len = bytes.len();
    match m {
        Mutation::FlipBit { at, bit } if len > 0 => bytes[at % len] ^= 1 << bit,
        Mutation::Truncate { keep } => bytes.truncate(keep % (len + 1)),
        Mutation::SetI32 { field, value } => {
            let at = i32_fields[field % i32_fields.len()];
            if at + 4 <= len {
                bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
        Mutation::SetByte { at, value } if len > 0 => bytes[at % len] = *value,
        Mutation::Insert { at, bytes: new } => {
            let at = at % (len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::HugeVarint { at } if len >= 5 => {
            let at = at % (len - 4);
            bytes[at..at + 5].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        _ => {}
    }
}

/// Recomputes a batch's CRC-32C over what its length frames (or all of it), so
/// damage behind the CRC reaches the record and decompression code.
fn fix_batch_crc(bytes: &mut [u8]) {
    if bytes.len() < CRC_COVERS_FROM {
        return;
    }
    let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| l.checked_add(12))
        .filter(|end| *end >= CRC_COVERS_FROM && *end <= bytes.len())
        .unwrap_or(bytes.len());
    let crc = crc32c::crc32c(&bytes[CRC_COVERS_FROM..end]);
    bytes[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A v0 or v1 message set, its messages plain or inside one compressed wrapper.
fn valid_message_set() -> impl Strategy<Value = Vec<u8>> {
    let payload = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64));
    (
        0u8..2,
        // zstd needs magic 2.
        proptest::sample::select(CompressionType::ALL[..4].to_vec()),
        proptest::collection::vec((payload.clone(), payload), 1..8),
    )
        .prop_map(|(magic, codec, fields)| {
            let messages: Vec<Vec<u8>> = fields
                .iter()
                .map(|(k, v)| message(magic, 0, 1_700_000_000_000, k.as_deref(), v.as_deref()))
                .collect();
            let inner = message_set(0, &messages);
            if codec == CompressionType::None {
                return inner;
            }
            let packed = codec.compress(&inner).expect("compresses");
            message_set(
                0,
                &[message(magic, codec.id() as u8, 0, None, Some(&packed))],
            )
        })
}

/// Recomputes the CRC-32 of a message set's first message, where it is framed.
fn fix_first_message_crc(bytes: &mut [u8]) {
    if bytes.len() < 16 {
        return;
    }
    let size = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let Some(end) = usize::try_from(size)
        .ok()
        .map(|s| 12 + s)
        .filter(|end| *end >= 16 && *end <= bytes.len())
    else {
        return;
    };
    let crc = crc32fast::hash(&bytes[16..end]);
    bytes[12..16].copy_from_slice(&crc.to_be_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_or_blow_up(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        magic in 0u8..4,
    ) {
        check_batch_decoders(&bytes)?;
        // The same bytes with a plausible header start: past the first checks.
        let mut framed = bytes.clone();
        if framed.len() > 16 {
            let length = (framed.len() - 12) as i32;
            framed[8..12].copy_from_slice(&length.to_be_bytes());
            framed[16] = magic;
            check_batch_decoders(&framed)?;
            fix_batch_crc(&mut framed);
            check_batch_decoders(&framed)?;
        }
    }

    #[test]
    fn mutated_batches_never_panic_or_blow_up(
        batch in valid_batch(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        fix_crc in any::<bool>(),
    ) {
        let mut bytes = batch;
        for m in &mutations {
            apply(&mut bytes, m, &[LENGTH_POS, LAST_OFFSET_DELTA_POS, RECORDS_COUNT_POS]);
        }
        if fix_crc {
            fix_batch_crc(&mut bytes);
        }
        check_batch_decoders(&bytes)?;
    }

    /// Damage only behind a fixed-up CRC, in the records section (compressed or not).
    #[test]
    fn damaged_records_behind_a_valid_crc_are_errors(
        batch in valid_batch(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = batch;
        let mut records = bytes.split_off(BATCH_HEADER_BYTES);
        for m in &mutations {
            apply(&mut records, m, &[0]);
        }
        bytes.extend_from_slice(&records);
        let length = (bytes.len() - 12) as i32;
        bytes[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&length.to_be_bytes());
        fix_batch_crc(&mut bytes);
        check_batch_decoders(&bytes)?;
    }

    #[test]
    fn mutated_message_sets_never_panic_or_blow_up(
        set in valid_message_set(),
        mutations in proptest::collection::vec(mutation(), 0..4),
        fix_crc in any::<bool>(),
    ) {
        let unmutated = mutations.is_empty();
        let mut bytes = set;
        for m in &mutations {
            // The first entry's size, and its key length for v0.
            apply(&mut bytes, m, &[8, 18]);
        }
        if fix_crc {
            fix_first_message_crc(&mut bytes);
        }
        if unmutated {
            prop_assert!(convert_message_set(&bytes).is_ok());
        }
        check_batch_decoders(&bytes)?;
    }
}

/// Records that inflate past the cap, in a batch whose CRC is right: refused with a
/// typed error, and no decoder holds much more than the cap meanwhile.
#[test]
fn decompression_bombs_are_refused_within_the_cap() {
    let header = RecordBatch::encode(&[Record::default()], TimestampType::CreateTime)
        .unwrap()
        .into_bytes();
    let zeros = vec![0u8; MIB];
    let rounds = MAX_DECOMPRESSED_BATCH_BYTES / MIB + 2;
    let repeated = |unit: Vec<u8>| unit.repeat(rounds);
    // Kafka's codecs all read concatenated frames or blocks but lz4, whose one frame
    // is written streaming.
    let bombs = [
        (
            CompressionType::Gzip,
            repeated(CompressionType::Gzip.compress(&zeros).unwrap()),
        ),
        (
            CompressionType::Zstd,
            repeated(CompressionType::Zstd.compress(&zeros).unwrap()),
        ),
        (CompressionType::Snappy, {
            let mut xerial = CompressionType::Snappy.compress(&zeros).unwrap();
            let blocks = xerial.split_off(16);
            xerial.extend(blocks.repeat(rounds));
            xerial
        }),
        (CompressionType::Lz4, {
            use std::io::Write;
            let mut encoder = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())
                .unwrap();
            for _ in 0..rounds {
                encoder.write_all(&zeros).unwrap();
            }
            let (packed, done) = encoder.finish();
            done.unwrap();
            packed
        }),
    ];
    for (codec, packed) in bombs {
        let mut bytes = header[..BATCH_HEADER_BYTES].to_vec();
        bytes.extend_from_slice(&packed);
        let length = (bytes.len() - 12) as i32;
        bytes[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&length.to_be_bytes());
        bytes[22] |= codec.id() as u8;
        fix_batch_crc(&mut bytes);
        let (result, peak) = peak_bytes_during(|| RecordBatch::from_bytes(bytes.clone()));
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("decompress to more than"),
            "{codec:?}: {err}"
        );
        assert!(
            peak <= MAX_DECOMPRESSED_BATCH_BYTES + 2 * bytes.len() + 4 * MIB,
            "{codec:?}: {peak} bytes held"
        );
        let view = BatchRef::parse(&bytes).unwrap();
        assert!(view.records().next().unwrap().is_err());
    }
}
