//! Rendering consumed records for REST clients, in the embedded format the `Accept`
//! header names: `application/vnd.kafka.binary.v2+json` (keys and values base64, the
//! default) or `application/vnd.kafka.json.v2+json` (embedded JSON; a value that is not
//! JSON is rendered as a JSON string of its UTF-8 text, so nothing is hidden).

use actix_web::HttpRequest;
use base64::Engine;
use serde_json::{json, Value};
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

/// One record as the v2 consume APIs (Confluent's and Redpanda's) show it.
pub fn render_record(
    topic: &str,
    partition: i32,
    r: &StoredRecord,
    format: EmbeddedFormat,
) -> Value {
    json!({
        "topic": topic,
        "key": format.render_bytes(r.record.key.as_deref()),
        "value": format.render_bytes(r.record.value.as_deref()),
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.record.timestamp_ms,
    })
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
