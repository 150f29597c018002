//! Timestamps as REST and WebSocket clients write them: milliseconds since the epoch
//! or ISO-8601 (RFC 3339). One place for both forms: a record's timestamp in a JSON
//! body (v3 and WebSocket produce, range-checked), and a timestamp to look offsets up
//! by (v2 reads, v2 seeks, v3 offset resets).

use chrono::DateTime;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Latest timestamp a record may carry: the end of year 9999, the last instant
/// ISO-8601 (and so the report) can state.
const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// A record's timestamp in a JSON body, as ms since the epoch or ISO-8601,
/// between the epoch and the end of year 9999: Kafka has no record timestamps before
/// the epoch (-1 means "none"), and a later one could not be reported back.
pub fn record_timestamp(v: Value) -> ApiResult<i64> {
    let ms = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::bad_request("timestamp must be a whole number of milliseconds")
        })?,
        Value::String(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| ApiError::bad_request(format!("timestamp '{s}' is not ISO-8601: {e}")))?,
        _ => {
            return Err(ApiError::bad_request(
                "timestamp must be an ISO-8601 string or milliseconds",
            ))
        }
    };
    if !(0..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(ApiError::bad_request(format!(
            "timestamp {ms} is out of range: from 0 (1970-01-01T00:00:00Z) to {MAX_TIMESTAMP_MS} (9999-12-31T23:59:59.999Z)"
        )));
    }
    Ok(ms)
}

/// A timestamp to look an offset up by, from a query string or a JSON string: digits
/// are milliseconds, anything else ISO-8601.
pub fn lookup_timestamp(s: &str) -> ApiResult<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "timestamp '{s}' is neither milliseconds nor ISO-8601"
            ))
        })
}
