//! Rendering consumed records for REST clients, in the embedded format the `Accept`
//! header names: `application/vnd.kafka.binary.v2+json` (keys and values base64, the
//! default) or `application/vnd.kafka.json.v2+json` (embedded JSON; a value that is not
//! JSON is rendered as a JSON string of its UTF-8 text, so nothing is hidden).

use actix_web::HttpRequest;
use base64::Engine;
use serde_json::Value;
use troupe_actors::storage::StoredRecord;

use crate::error::{codes, ApiError, ApiResult};

pub const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";
pub const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
pub const V2: &str = "application/vnd.kafka.v2+json";
/// Troupe's: keys and values as UTF-8 text (consumer instances created with
/// `"format": "string"`).
pub const STRING_V2: &str = "application/vnd.kafka.string.v2+json";

fn accept_header(req: &HttpRequest) -> String {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedFormat {
    Binary,
    Json,
    String,
}

impl EmbeddedFormat {
    /// From a consume request's `Accept` header.
    pub fn from_accept(req: &HttpRequest) -> ApiResult<EmbeddedFormat> {
        let accept = accept_header(req);
        if accept.is_empty()
            || accept.contains("*/*")
            || accept.contains("binary")
            || accept.contains("application/json")
            || accept.contains(V2)
        {
            return Ok(EmbeddedFormat::Binary);
        }
        if accept.contains("vnd.kafka.json") {
            return Ok(EmbeddedFormat::Json);
        }
        Err(ApiError::new(
            actix_web::http::StatusCode::NOT_ACCEPTABLE,
            codes::NOT_ACCEPTABLE,
            format!("Cannot produce '{accept}': use {BINARY_V2} or {JSON_V2}"),
        ))
    }

    /// From a consumer's `format` setting (Confluent's names, and Troupe's `string`).
    pub fn from_name(name: &str) -> Option<EmbeddedFormat> {
        match name {
            "binary" => Some(EmbeddedFormat::Binary),
            "json" => Some(EmbeddedFormat::Json),
            "string" => Some(EmbeddedFormat::String),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => "binary",
            EmbeddedFormat::Json => "json",
            EmbeddedFormat::String => "string",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            EmbeddedFormat::Binary => BINARY_V2,
            EmbeddedFormat::Json => JSON_V2,
            EmbeddedFormat::String => STRING_V2,
        }
    }

    /// Whether a request's `Accept` header takes this format: any header that does
    /// not name another embedded format does.
    pub fn accepted_by(self, req: &HttpRequest) -> bool {
        let accept = accept_header(req);
        let names_other = [BINARY_V2, JSON_V2, STRING_V2]
            .iter()
            .any(|t| *t != self.content_type() && accept.contains(t));
        let names_this = accept.contains(self.content_type());
        names_this || !names_other
    }

    pub fn render_bytes(self, bytes: Option<&[u8]>) -> Value {
        let Some(bytes) = bytes else {
            return Value::Null;
        };
        match self {
            EmbeddedFormat::Binary => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            EmbeddedFormat::Json => serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
            EmbeddedFormat::String => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

/// Writes records as the v2 consume APIs (Confluent's and Redpanda's) show them — a
/// JSON array of `{topic, key, value, partition, offset, timestamp}` — straight into a
/// byte buffer: no `Value` per record and no intermediate strings, which is most of
/// what a REST read costs (base64 is encoded in place).
#[derive(Default)]
pub struct RecordsWriter {
    out: Vec<u8>,
    count: usize,
}

impl RecordsWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        RecordsWriter {
            out: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    pub fn push(&mut self, topic: &str, partition: i32, r: &StoredRecord, format: EmbeddedFormat) {
        let out = &mut self.out;
        out.push(if self.count == 0 { b'[' } else { b',' });
        self.count += 1;
        out.extend_from_slice(b"{\"topic\":");
        write_json_str(out, topic);
        out.extend_from_slice(b",\"key\":");
        format.write_bytes(out, r.record.key.as_deref());
        out.extend_from_slice(b",\"value\":");
        format.write_bytes(out, r.record.value.as_deref());
        out.extend_from_slice(
            format!(
                ",\"partition\":{partition},\"offset\":{},\"timestamp\":{}}}",
                r.offset, r.record.timestamp_ms
            )
            .as_bytes(),
        );
    }

    /// The finished JSON array.
    pub fn finish(mut self) -> Vec<u8> {
        if self.count == 0 {
            self.out.push(b'[');
        }
        self.out.push(b']');
        self.out
    }
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

impl EmbeddedFormat {
    /// [`EmbeddedFormat::render_bytes`], written as JSON text into `out`.
    fn write_bytes(self, out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        let Some(bytes) = bytes else {
            out.extend_from_slice(b"null");
            return;
        };
        match self {
            EmbeddedFormat::Binary => {
                let start = out.len();
                out.resize(
                    start + base64::encoded_len(bytes.len(), true).unwrap_or(0) + 2,
                    0,
                );
                out[start] = b'"';
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(bytes, &mut out[start + 1..])
                    .unwrap_or(0);
                out.truncate(start + 1 + written);
                out.push(b'"');
            }
            EmbeddedFormat::Json => {
                // A stored JSON document goes out as it is; anything else as its text.
                // The parser skips strings without checking their UTF-8: check it first.
                let is_json = std::str::from_utf8(bytes).is_ok()
                    && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
                if is_json {
                    out.extend_from_slice(bytes);
                } else {
                    write_json_str(out, &String::from_utf8_lossy(bytes));
                }
            }
            EmbeddedFormat::String => write_json_str(out, &String::from_utf8_lossy(bytes)),
        }
    }
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use troupe_actors::storage::Record;

    fn stored(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> StoredRecord {
        StoredRecord {
            offset,
            record: Record {
                timestamp_ms: 1_700_000_000_000 + offset,
                key: key.map(<[u8]>::to_vec),
                value: value.map(<[u8]>::to_vec),
                headers: vec![],
            },
        }
    }

    #[test]
    fn the_writer_renders_what_render_bytes_says_in_every_format() {
        let records = [
            stored(0, None, Some(b"{\"a\": [1, 2.5, \"\\u00e9\"]}")),
            stored(1, Some(b"k\"ey"), Some(b"not json \xff")),
            stored(2, Some(b""), None),
            stored(3, Some(b"\x00\x01\x02\xfe"), Some(b"42")),
            stored(4, None, Some(b"  ")),
            stored(5, None, Some(b"\"\xff\"")),
        ];
        let topic = "t\u{e9}\"q";
        for format in [
            EmbeddedFormat::Binary,
            EmbeddedFormat::Json,
            EmbeddedFormat::String,
        ] {
            let mut w = RecordsWriter::default();
            for r in &records {
                w.push(topic, 7, r, format);
            }
            let written: Value = serde_json::from_slice(&w.finish()).expect("valid JSON");
            let expected: Vec<Value> = records
                .iter()
                .map(|r| {
                    json!({
                        "topic": topic,
                        "key": format.render_bytes(r.record.key.as_deref()),
                        "value": format.render_bytes(r.record.value.as_deref()),
                        "partition": 7,
                        "offset": r.offset,
                        "timestamp": r.record.timestamp_ms,
                    })
                })
                .collect();
            assert_eq!(written, Value::Array(expected), "{format:?}");
        }
        let empty: Value = serde_json::from_slice(&RecordsWriter::default().finish()).unwrap();
        assert_eq!(empty, json!([]));
    }
}
