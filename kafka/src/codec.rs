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

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
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

/// Decodes a request body of `version`; the whole frame must be used.
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
        return Err(CodecError::Decode {
            what: what.to_string(),
            reason: format!("{} bytes after the end of the request", body.remaining()),
        });
    }
    Ok(decoded)
}

/// A whole response frame (length prefix included) for `correlation_id`.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
    what: &str,
) -> Result<Bytes, CodecError> {
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
    let mut out = BytesMut::with_capacity(4 + length);
    out.put_i32(prefix);
    header
        .encode(&mut out, header_version)
        .map_err(|e| failed(e.to_string()))?;
    response
        .encode(&mut out, version)
        .map_err(|e| failed(e.to_string()))?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
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
    fn trailing_bytes_and_short_frames_are_refused() {
        assert!(matches!(
            FrameStart::read(&[0, 18, 0]),
            Err(CodecError::Short(3))
        ));
        let mut frame = BytesMut::from(&request_frame(3)[..]);
        frame.put_u8(7);
        let mut frame = frame.freeze();
        decode_header(&mut frame, ApiKey::ApiVersions, 3).unwrap();
        let body = decode_body::<ApiVersionsRequest>(&mut frame, 3, "ApiVersions");
        assert!(body.is_err());
    }

    #[test]
    fn a_response_frame_says_its_length_and_correlation_id() {
        let frame = encode_response(7, 3, &ApiVersionsResponse::default(), "ApiVersions").unwrap();
        let mut b = &frame[..];
        assert_eq!(b.get_i32() as usize, frame.len() - 4);
        assert_eq!(b.get_i32(), 7);
    }
}
