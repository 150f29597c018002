//! The frame codec, with no I/O: what a request frame's header says, and a response
//! laid out as Kafka's clients read it. Encoding and decoding of every message body is
//! the `kafka-protocol` crate's (generated from Kafka's own schemas); this file only
//! frames them.
//!
//! ```text
//! Request frame (integers big-endian):
//!   length          int32   bytes that follow (checked against socket.request.max.bytes
//!                           before anything is read into memory)
//!   api_key         int16   which API
//!   api_version     int16   which version of it
//!   correlation_id  int32   echoed in the response
//!   …               the rest of the request header (client id; tagged fields from
//!                   header v2), then the body
//!
//! Response frame:
//!   length          int32
//!   correlation_id  int32   (then tagged fields for response header v1)
//!   …               the body
//! ```

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

/// The fixed start of every request header: api key, version, correlation id.
pub const FIXED_HEADER_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {0} bytes is shorter than a request header")]
    Short(usize),
    #[error("cannot decode {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
}

/// The part of a request header every version shares, read without decoding more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStart {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl FrameStart {
    pub fn read(frame: &[u8]) -> Result<FrameStart, CodecError> {
        if frame.len() < FIXED_HEADER_BYTES {
            return Err(CodecError::Short(frame.len()));
        }
        let mut b = &frame[..FIXED_HEADER_BYTES];
        Ok(FrameStart {
            api_key: b.get_i16(),
            api_version: b.get_i16(),
            correlation_id: b.get_i32(),
        })
    }
}

/// Decodes the whole request header of a frame whose key and version are supported,
/// leaving `frame` at the body.
pub fn decode_header(
    frame: &mut Bytes,
    key: ApiKey,
    version: i16,
) -> Result<RequestHeader, CodecError> {
    let header_version = key.request_header_version(version);
    RequestHeader::decode(frame, header_version).map_err(|e| CodecError::Decode {
        what: "request header".into(),
        reason: e.to_string(),
    })
}

/// Decodes a request body of `version`. Bytes after its end are ignored, as Kafka's
/// broker ignores them: librdkafka 2.16 sends a Metadata v12 with three of them
/// (an `AdminClient.list_topics` would fail otherwise).
pub fn decode_body<T: Decodable>(
    body: &mut Bytes,
    version: i16,
    what: &str,
) -> Result<T, CodecError> {
    let decoded = T::decode(body, version).map_err(|e| CodecError::Decode {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    if body.has_remaining() {
        log::debug!(
            "{what}: {} bytes after the end of the request, ignored",
            body.remaining()
        );
    }
    Ok(decoded)
}

/// A whole response frame (length prefix included) for `correlation_id`.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
    what: &str,
) -> Result<Frame, CodecError> {
    encode_response_sharing(correlation_id, version, response, what, &[])
}

/// [`encode_response`], where the byte fields of `response` that are among `shared`
/// (a fetch's record batches, as the log read them) are referenced in the frame
/// rather than copied into it.
pub fn encode_response_sharing<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
    what: &str,
    shared: &[Bytes],
) -> Result<Frame, CodecError> {
    let failed = |reason: String| CodecError::Encode {
        what: what.to_string(),
        reason,
    };
    let header_version = R::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_bytes = header
        .compute_size(header_version)
        .map_err(|e| failed(e.to_string()))?;
    let body_bytes = response
        .compute_size(version)
        .map_err(|e| failed(e.to_string()))?;
    let length = header_bytes + body_bytes;
    let prefix = i32::try_from(length)
        .map_err(|_| failed(format!("{length} bytes is more than a frame can say")))?;
    let referenced: usize = shared.iter().map(Bytes::len).sum();
    let mut out = Pieces {
        done: VecDeque::new(),
        done_len: 0,
        current: BytesMut::with_capacity((4 + length).saturating_sub(referenced)),
        shared,
    };
    out.put_i32(prefix);
    header
        .encode(&mut out, header_version)
        .map_err(|e| failed(e.to_string()))?;
    response
        .encode(&mut out, version)
        .map_err(|e| failed(e.to_string()))?;
    Ok(out.finish())
}

/// A response frame as the pieces it is written in, in order. Written with
/// vectored writes (it is a [`Buf`] whose chunks are the pieces).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pieces: VecDeque<Bytes>,
}

impl Frame {
    /// The frame in one buffer (a copy when it has several pieces).
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces.len() {
            0 => Bytes::new(),
            1 => self.pieces[0].clone(),
            _ => self.pieces.iter().flatten().copied().collect(),
        }
    }

    /// How many pieces the frame is written in.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }
}

impl Buf for Frame {
    fn remaining(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    fn chunk(&self) -> &[u8] {
        self.pieces.front().map_or(&[], |p| &p[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.pieces.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.pieces.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, piece) in dst.iter_mut().zip(self.pieces.iter()) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        n
    }
}

/// Byte fields this large are referenced, when shared, rather than copied.
const MIN_SHARED_BYTES: usize = 4096;

/// The buffer a response is encoded into: the encoder's writes go to `current`,
/// except a byte field that is one of `shared`, which ends the current piece and
/// becomes a piece of its own.
struct Pieces<'a> {
    done: VecDeque<Bytes>,
    done_len: usize,
    current: BytesMut,
    shared: &'a [Bytes],
}

impl Pieces<'_> {
    fn finish(mut self) -> Frame {
        if !self.current.is_empty() {
            self.done.push_back(self.current.freeze());
        }
        Frame { pieces: self.done }
    }

    /// Makes everything from `offset` on writable in `current`, joining the pieces
    /// into one when `offset` lies in a finished one. Kafka's message encoders never
    /// go back (only record batch encoding does), so this is a safeguard.
    fn writable_from(&mut self, offset: usize) {
        if offset >= self.done_len {
            return;
        }
        let mut all = BytesMut::with_capacity(self.done_len + self.current.len());
        for piece in self.done.drain(..) {
            all.extend_from_slice(&piece);
        }
        all.extend_from_slice(&self.current);
        self.current = all;
        self.done_len = 0;
    }
}

// SAFETY: every method but `put_slice` is `current`'s own, so `chunk_mut` and
// `advance_mut` keep BytesMut's contract; `put_slice` only appends whole pieces.
unsafe impl BufMut for Pieces<'_> {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise about `chunk_mut` is a promise about `current`'s.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= MIN_SHARED_BYTES {
            let same = |b: &&Bytes| b.as_ptr() == src.as_ptr() && b.len() == src.len();
            if let Some(piece) = self.shared.iter().find(same) {
                if !self.current.is_empty() {
                    let before = self.current.split().freeze();
                    self.done_len += before.len();
                    self.done.push_back(before);
                }
                self.done_len += piece.len();
                self.done.push_back(piece.clone());
                return;
            }
        }
        self.current.extend_from_slice(src);
    }
}

impl ByteBufMut for Pieces<'_> {
    fn offset(&self) -> usize {
        self.done_len + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        self.writable_from(offset);
        self.current.resize(offset - self.done_len, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        self.writable_from(r.start);
        let base = self.done_len;
        &mut self.current[r.start - base..r.end - base]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, FetchResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    fn request_frame(version: i16) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        let hv = ApiKey::ApiVersions.request_header_version(version);
        header.encode(&mut buf, hv).unwrap();
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .encode(&mut buf, version)
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn a_request_frame_reads_back_at_every_header_version() {
        for version in [0, 3] {
            let mut frame = request_frame(version);
            let start = FrameStart::read(&frame).unwrap();
            assert_eq!(
                start,
                FrameStart {
                    api_key: 18,
                    api_version: version,
                    correlation_id: 42
                }
            );
            let header = decode_header(&mut frame, ApiKey::ApiVersions, version).unwrap();
            assert_eq!(
                header.client_id.as_deref().map(|s| s.to_string()),
                Some("test".into())
            );
            let body: ApiVersionsRequest = decode_body(&mut frame, version, "ApiVersions").unwrap();
            if version >= 3 {
                assert_eq!(body.client_software_name.as_str(), "t");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_ignored_and_short_frames_refused() {
        assert!(matches!(
            FrameStart::read(&[0, 18, 0]),
            Err(CodecError::Short(3))
        ));
        let mut frame = BytesMut::from(&request_frame(3)[..]);
        frame.put_u8(7);
        let mut frame = frame.freeze();
        decode_header(&mut frame, ApiKey::ApiVersions, 3).unwrap();
        let body = decode_body::<ApiVersionsRequest>(&mut frame, 3, "ApiVersions").unwrap();
        assert_eq!(body.client_software_name.as_str(), "t");
    }

    #[test]
    fn a_response_frame_says_its_length_and_correlation_id() {
        let frame = encode_response(7, 3, &ApiVersionsResponse::default(), "ApiVersions").unwrap();
        let frame = frame.to_bytes();
        let mut b = &frame[..];
        assert_eq!(b.get_i32() as usize, frame.len() - 4);
        assert_eq!(b.get_i32(), 7);
    }

    fn fetch_response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    #[test]
    fn shared_records_are_referenced_in_the_frame_not_copied() {
        let records: Vec<Bytes> = (0..2u8)
            .map(|i| Bytes::from(vec![i; MIN_SHARED_BYTES * 2]))
            .collect();
        let small = Bytes::from_static(b"small batch");
        let mut all = records.clone();
        all.push(small.clone());
        let response = fetch_response(&all);
        for version in [4, 12] {
            let copied = encode_response(9, version, &response, "Fetch").unwrap();
            assert_eq!(copied.pieces(), 1);
            let shared = encode_response_sharing(9, version, &response, "Fetch", &all).unwrap();
            assert_eq!(shared.to_bytes(), copied.to_bytes(), "v{version}");
            // Header, records 0, between, records 1, the rest (the small batch copied).
            assert_eq!(shared.pieces(), 5, "v{version}");
            let pointers: Vec<_> = shared.pieces.iter().map(|p| p.as_ptr()).collect();
            assert_eq!(pointers[1], records[0].as_ptr());
            assert_eq!(pointers[3], records[1].as_ptr());
            assert!(!pointers.contains(&small.as_ptr()));
        }
    }

    #[test]
    fn a_frame_written_in_pieces_comes_out_whole() {
        let records = vec![Bytes::from(vec![7u8; MIN_SHARED_BYTES])];
        let response = fetch_response(&records);
        let mut frame = encode_response_sharing(1, 12, &response, "Fetch", &records).unwrap();
        let whole = frame.to_bytes();
        let mut slots = [IoSlice::new(&[]); 8];
        assert_eq!(frame.chunks_vectored(&mut slots), frame.pieces());
        let mut out = Vec::new();
        while frame.has_remaining() {
            // Advance across piece boundaries in odd steps, as short writes do.
            let step = frame.chunk().len().min(1000);
            out.extend_from_slice(&frame.chunk()[..step]);
            frame.advance(step);
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn going_back_into_a_shared_piece_joins_the_frame_first() {
        let shared = vec![Bytes::from(vec![1u8; MIN_SHARED_BYTES])];
        let mut out = Pieces {
            done: VecDeque::new(),
            done_len: 0,
            current: BytesMut::new(),
            shared: &shared,
        };
        out.put_i32(0);
        out.put_slice(&shared[0]);
        out.put_u8(2);
        out.range(0..4).copy_from_slice(&9i32.to_be_bytes());
        let frame = out.finish();
        assert_eq!(frame.pieces(), 1);
        let bytes = frame.to_bytes();
        assert_eq!(&bytes[..4], &9i32.to_be_bytes());
        assert_eq!(bytes.len(), 4 + MIN_SHARED_BYTES + 1);
    }
}
