//! The compression codecs a record batch's records section may be stored in: Kafka's
//! `compression.type` ids 0-4 (none, gzip, snappy, lz4, zstd), in attributes bits 0-2.
//! A batch a producer compressed is stored as it came (header plain, records section
//! compressed); the broker decompresses only where it must look at records
//! (validation, reads for REST and WebSocket, compaction), always within
//! [`MAX_DECOMPRESSED_BATCH_BYTES`], and compresses only when compaction rewrites a
//! batch, with the codec the batch had (as Kafka's cleaner does).
//!
//! Each codec's container is the one Kafka's clients write:
//!
//! ```text
//! gzip    RFC 1952 member(s): 1f 8b 08 … deflate … crc32 isize
//! lz4     LZ4 frame (magic 04 22 4d 18, FLG BD, independent blocks, no content
//!         checksum: Kafka's KafkaLZ4BlockOutputStream), blocks up to 64 KiB
//! zstd    zstd frame(s) (magic 28 b5 2f fd)
//! snappy  xerial-snappy framing (snappy-java's SnappyOutputStream), all ints big-endian:
//!           pos size
//!             0    8  magic 82 'S' 'N' 'A' 'P' 'P' 'Y' 00
//!             8    4  version 1
//!            12    4  minimum compatible version 1
//!            16    …  blocks: i32 compressed length, then a raw snappy block
//!                     (of at most 32 KiB uncompressed when we write it)
//!         A stream without the magic is one raw snappy block (snappy-java's fallback).
//! ```

use std::io::{Read, Write};

use super::batch::BatchError;

/// The most bytes a batch's records may decompress to. A batch that would inflate
/// past it is refused (a typed error, after at most this much memory), whatever its
/// compressed size: compressed batches are bounded by `max.message.bytes` (1 MiB by
/// default) and a realistic ratio stays far below this, while a crafted one (a
/// "zip bomb") could otherwise take all the broker's memory.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Decompressed bytes read at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// zstd: the largest window a frame may ask the decoder to allocate (2^26 = the cap).
const ZSTD_WINDOW_LOG_MAX: u32 = 26;
/// xerial-snappy's stream header, and the uncompressed size of the blocks we write
/// (snappy-java's default).
const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;
/// More than snappy's densest element (a 3-byte copy of 64 bytes) can expand to.
const SNAPPY_MAX_RATIO: usize = 32;

/// A batch's codec, attributes bits 0-2 (Kafka's `CompressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    pub const ALL: [CompressionType; 5] = [
        CompressionType::None,
        CompressionType::Gzip,
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd,
    ];

    /// The codec with Kafka's id `id` (5-7 are unassigned).
    pub fn from_id(id: u16) -> Result<Self, BatchError> {
        match id {
            0 => Ok(CompressionType::None),
            1 => Ok(CompressionType::Gzip),
            2 => Ok(CompressionType::Snappy),
            3 => Ok(CompressionType::Lz4),
            4 => Ok(CompressionType::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    pub fn id(self) -> u16 {
        self as u16
    }

    /// Kafka's name for it (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::None => "none",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// Decompresses `input`, refusing output past `max_bytes`
    /// ([`BatchError::DecompressedTooLarge`]) and damaged or truncated input
    /// ([`BatchError::Decompression`]). `None` copies.
    pub fn decompress(self, input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
        let failed = |e: std::io::Error| self.failed(e);
        match self {
            CompressionType::None if input.len() > max_bytes => Err(self.too_large(max_bytes)),
            CompressionType::None => Ok(input.to_vec()),
            CompressionType::Gzip => {
                // Concatenated members read as one stream, as Java's GZIPInputStream does.
                read_bounded(self, flate2::bufread::MultiGzDecoder::new(input), max_bytes)
            }
            CompressionType::Lz4 => {
                let mut decoder = lz4::Decoder::new(input).map_err(failed)?;
                let out = read_bounded(self, &mut decoder, max_bytes)?;
                // A truncated frame reads as a short one: only `finish` tells.
                decoder.finish().1.map_err(failed)?;
                Ok(out)
            }
            CompressionType::Zstd => {
                let mut decoder =
                    zstd::stream::read::Decoder::with_buffer(input).map_err(failed)?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(failed)?;
                read_bounded(self, decoder, max_bytes)
            }
            CompressionType::Snappy => snappy_decompress(input, max_bytes),
        }
    }

    /// Compresses `input` as Kafka's clients do for this codec. `None` copies.
    pub fn compress(self, input: &[u8]) -> Result<Vec<u8>, BatchError> {
        let failed = |e: std::io::Error| self.failed(e);
        match self {
            CompressionType::None => Ok(input.to_vec()),
            CompressionType::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(input).map_err(failed)?;
                encoder.finish().map_err(failed)
            }
            CompressionType::Lz4 => {
                let mut encoder = lz4::EncoderBuilder::new()
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Independent)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(Vec::new())
                    .map_err(failed)?;
                encoder.write_all(input).map_err(failed)?;
                let (out, finished) = encoder.finish();
                finished.map_err(failed)?;
                Ok(out)
            }
            CompressionType::Zstd => zstd::stream::encode_all(input, 0).map_err(failed),
            CompressionType::Snappy => snappy_compress(input),
        }
    }

    fn failed(self, e: impl std::fmt::Display) -> BatchError {
        BatchError::Decompression {
            codec: self.name(),
            reason: e.to_string(),
        }
    }

    fn too_large(self, limit_bytes: usize) -> BatchError {
        BatchError::DecompressedTooLarge {
            codec: self.name(),
            limit_bytes,
        }
    }
}

/// Reads `reader` to its end, refusing output past `max_bytes` before holding it:
/// the buffer never grows beyond `max_bytes` (plus one read chunk).
fn read_bounded(
    codec: CompressionType,
    mut reader: impl Read,
    max_bytes: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(codec.failed(e)),
        };
        if n > max_bytes - out.len() {
            return Err(codec.too_large(max_bytes));
        }
        reserve_within(&mut out, n, max_bytes);
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Makes room for `additional` more bytes in `out`, growing it as a `Vec` does
/// (doubling) but never past `max_bytes` in all (`out.len() + additional` must fit).
fn reserve_within(out: &mut Vec<u8>, additional: usize, max_bytes: usize) {
    if out.capacity() - out.len() >= additional {
        return;
    }
    let target = (out.capacity() * 2)
        .max(out.len() + additional)
        .min(max_bytes);
    out.reserve_exact(target - out.len());
}

fn snappy_decompress(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let codec = CompressionType::Snappy;
    let Some(mut rest) = input.strip_prefix(&SNAPPY_MAGIC[..]) else {
        let mut out = Vec::new();
        snappy_block(input, max_bytes, &mut out)?;
        return Ok(out);
    };
    // Version and minimum compatible version: every writer since 2011 writes 1 and 1.
    rest = rest
        .get(8..)
        .ok_or_else(|| codec.failed("truncated xerial header"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (length, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| codec.failed("truncated block length"))?;
        let length = u32::from_be_bytes(*length) as usize;
        let block = after
            .get(..length)
            .ok_or_else(|| codec.failed("block runs past the end"))?;
        snappy_block(block, max_bytes - out.len(), &mut out)?;
        rest = &after[length..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, refusing one that says it is larger than
/// `room` before allocating for it.
fn snappy_block(block: &[u8], room: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let codec = CompressionType::Snappy;
    let length = snap::raw::decompress_len(block).map_err(|e| codec.failed(e))?;
    if length > room {
        return Err(codec.too_large(out.len() + room));
    }
    // No snappy element yields more than 64 bytes for 3 of input: a block that says
    // otherwise is damaged, found before its claimed size is allocated.
    if length > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(codec.failed("block claims more bytes than it can hold"));
    }
    let start = out.len();
    reserve_within(out, length, start + room);
    out.resize(start + length, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| codec.failed(e))?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_compress(input: &[u8]) -> Result<Vec<u8>, BatchError> {
    let codec = CompressionType::Snappy;
    let mut out = Vec::with_capacity(SNAPPY_HEADER.len() + input.len() / 2);
    out.extend_from_slice(&SNAPPY_HEADER);
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(SNAPPY_BLOCK_BYTES) {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        out.resize(start + snap::raw::max_compress_len(block.len()), 0);
        let written = encoder
            .compress(block, &mut out[start..])
            .map_err(|e| codec.failed(e))?;
        out.truncate(start + written);
        let length = u32::try_from(written).map_err(|e| codec.failed(e))?;
        out[length_at..start].copy_from_slice(&length.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips_and_kafka_protocol_reads_what_we_write() {
        use kafka_protocol::compression as kp;
        use kafka_protocol::compression::Decompressor;
        let data = sample();
        for codec in CompressionType::ALL {
            let packed = codec.compress(&data).unwrap();
            assert_eq!(
                codec.decompress(&packed, data.len()).unwrap(),
                data,
                "{codec:?}"
            );
            let mut bytes = bytes::Bytes::from(packed);
            let theirs = |buf: &mut bytes::Bytes| Ok(buf.to_vec());
            let read = match codec {
                CompressionType::None => kp::None::decompress(&mut bytes, theirs),
                CompressionType::Gzip => kp::Gzip::decompress(&mut bytes, theirs),
                CompressionType::Snappy => kp::Snappy::decompress(&mut bytes, theirs),
                CompressionType::Lz4 => kp::Lz4::decompress(&mut bytes, theirs),
                CompressionType::Zstd => kp::Zstd::decompress(&mut bytes, theirs),
            };
            assert_eq!(read.unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn kafka_protocols_compressed_bytes_decompress() {
        use kafka_protocol::compression as kp;
        use kafka_protocol::compression::Compressor;
        let data = sample();
        for codec in CompressionType::ALL {
            let mut packed = bytes::BytesMut::new();
            let fill = |buf: &mut bytes::BytesMut| {
                buf.extend_from_slice(&data);
                Ok(())
            };
            match codec {
                CompressionType::None => kp::None::compress(&mut packed, fill),
                CompressionType::Gzip => kp::Gzip::compress(&mut packed, fill),
                CompressionType::Snappy => kp::Snappy::compress(&mut packed, fill),
                CompressionType::Lz4 => kp::Lz4::compress(&mut packed, fill),
                CompressionType::Zstd => kp::Zstd::compress(&mut packed, fill),
            }
            .unwrap();
            assert_eq!(codec.decompress(&packed, usize::MAX >> 1).unwrap(), data);
        }
    }

    #[test]
    fn a_raw_snappy_block_without_the_xerial_header_decompresses() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            CompressionType::Snappy
                .decompress(&raw, data.len())
                .unwrap(),
            data
        );
    }

    /// A small compressed input that inflates past the cap is refused, not inflated.
    #[test]
    fn decompression_stops_at_the_cap() {
        let zeros = vec![0u8; 4 << 20];
        for codec in CompressionType::ALL {
            let packed = codec.compress(&zeros).unwrap();
            let limit = (1 << 20) + 3;
            assert_eq!(
                codec.decompress(&packed, limit),
                Err(BatchError::DecompressedTooLarge {
                    codec: codec.name(),
                    limit_bytes: limit
                }),
                "{codec:?}"
            );
            assert!(codec.decompress(&packed, 4 << 20).is_ok());
        }
    }

    #[test]
    fn truncated_or_damaged_input_is_an_error() {
        let data = sample();
        for codec in CompressionType::ALL.into_iter().skip(1) {
            let packed = codec.compress(&data).unwrap();
            for cut in [0, 1, 5, packed.len() / 2, packed.len() - 1] {
                assert!(
                    codec.decompress(&packed[..cut], data.len()).is_err(),
                    "{codec:?} cut at {cut}"
                );
            }
            let mut flipped = packed.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0xff;
            if let Ok(out) = codec.decompress(&flipped, data.len()) {
                // Codecs without a checksum may decode damage into other bytes; the
                // batch CRC is what catches it.
                assert_ne!(out, data, "{codec:?}");
            }
        }
        assert_eq!(
            CompressionType::from_id(5),
            Err(BatchError::UnknownCompression(5))
        );
    }
}
