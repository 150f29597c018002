//! The WebSocket message schema: JSON text frames, each an object with a `type`.
//! Client frames are parsed here into typed requests, with an error a client can act
//! on for anything malformed; server frames are rendered here. `docs/websocket.md`
//! documents both directions.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use troupe_actors::consumer::ResetPolicy;
use troupe_actors::partition::Acks;
use troupe_actors::storage::StoredRecord;

use crate::error::{codes, ApiError, ApiResult};
use crate::records::{encode_base64, EmbeddedFormat};
use crate::timestamps::record_timestamp as parse_timestamp;

/// Close codes the broker uses (4000-4999 are the application's own range).
pub mod close_codes {
    /// The broker is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The client sent a binary frame: client frames are JSON text.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A frame larger than `websocket.max.frame.bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// Nothing heard from the client for `websocket.idle.timeout.ms`.
    pub const IDLE: u16 = 4001;
    /// The client took nothing from a full send buffer for
    /// `websocket.slow.client.timeout.ms`.
    pub const SLOW_CLIENT: u16 = 4008;
}

/// Where a subscription starts in each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    Beginning,
    End,
    /// An offset per partition (the partitions subscribed are these).
    Offsets(BTreeMap<i32, i64>),
    /// The first offset whose timestamp is at or after this (the end if none is).
    Timestamp(i64),
}

/// How records frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEncoding {
    Text,
    /// The binary layout of [`super::binary`]: raw keys and values, no base64.
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Partitions of one topic (all, when `partitions` is `None`).
    Partitions {
        topic: String,
        partitions: Option<Vec<i32>>,
        from: StartFrom,
    },
    /// As a member of a consumer group: the group assigns partitions of `topics`;
    /// partitions without a committed offset start per `reset`.
    Group {
        group_id: String,
        topics: Vec<String>,
        reset: ResetPolicy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    pub sub: String,
    pub target: Target,
    pub format: EmbeddedFormat,
    pub frames: FrameEncoding,
    /// Records the client allows before it grants more with `credit` frames
    /// (`None`: no limit beyond the send buffer).
    pub credit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Subscribe(SubscribeRequest),
    Unsubscribe {
        sub: String,
    },
    /// Pause or resume one subscription, or (without `sub`) all of them.
    Pause {
        sub: Option<String>,
    },
    Resume {
        sub: Option<String>,
    },
    Credit {
        sub: String,
        records: u64,
    },
    /// Commit these offsets (the next offset to read of each partition). The broker
    /// cannot know what the client has received and processed, so it never commits
    /// on the client's behalf.
    Commit {
        sub: String,
        offsets: Vec<CommitOffset>,
    },
    Produce {
        id: Option<Value>,
        topic: String,
        acks: Acks,
        records: Vec<Value>,
    },
    Ping {
        id: Option<Value>,
    },
}

/// The longest subscription id accepted (it is repeated in every records frame).
const MAX_SUB_ID_BYTES: usize = 128;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn string_field(obj: &Map<String, Value>, name: &str) -> ApiResult<Option<String>> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("'{name}' must be a string"))),
    }
}

fn required_string(obj: &Map<String, Value>, name: &str, frame: &str) -> ApiResult<String> {
    string_field(obj, name)?.ok_or_else(|| bad(format!("A {frame} frame needs '{name}'")))
}

fn sub_id(obj: &Map<String, Value>, frame: &str) -> ApiResult<String> {
    let sub = required_string(obj, "sub", frame)?;
    if sub.is_empty() || sub.len() > MAX_SUB_ID_BYTES {
        return Err(bad(format!(
            "'sub' must be 1 to {MAX_SUB_ID_BYTES} bytes long"
        )));
    }
    Ok(sub)
}

fn u64_field(obj: &Map<String, Value>, name: &str) -> ApiResult<Option<u64>> {
    match field(obj, name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("'{name}' must be a non-negative whole number"))),
    }
}

/// A client frame the broker refused: the error, and the `sub` and `id` the frame
/// carried. They are taken as they are, before the frame's shape is checked, so the
/// answer names what it refuses even when the rest is wrong: a client waiting for the
/// answer to its `sub` or `id` gets one.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: ApiError,
    pub sub: Option<Value>,
    pub id: Option<Value>,
}

impl Refusal {
    /// The `error` frame answering the refused frame.
    pub fn frame(&self) -> String {
        let mut frame = json!({"type": "error", "error_code": self.error.error_code, "message": self.error.message});
        if let Some(sub) = &self.sub {
            frame["sub"] = sub.clone();
        }
        if let Some(id) = &self.id {
            frame["id"] = id.clone();
        }
        frame.to_string()
    }
}

/// Parses one client text frame.
pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
    let value: Value = serde_json::from_str(text).map_err(|e| Refusal {
        error: ApiError::malformed_json(e),
        sub: None,
        id: None,
    })?;
    let Value::Object(obj) = value else {
        return Err(Refusal {
            error: bad("A frame must be a JSON object with a 'type'"),
            sub: None,
            id: None,
        });
    };
    parse_object(&obj).map_err(|error| Refusal {
        error,
        sub: field(&obj, "sub").cloned(),
        id: field(&obj, "id").cloned(),
    })
}

/// The fields each kind of client frame may carry: anything else is refused, so a
/// misspelled field (`"partiton"`, `"credits"`) is an error, not silently ignored.
fn allowed_fields(kind: &str, obj: &Map<String, Value>) -> &'static [&'static str] {
    match kind {
        "subscribe" if obj.contains_key("group") => &[
            "type",
            "sub",
            "group",
            "topics",
            "topic",
            "partitions",
            "from",
            "format",
            "frames",
            "credit",
        ],
        "subscribe" => &[
            "type",
            "sub",
            "topic",
            "partitions",
            "from",
            "format",
            "frames",
            "credit",
        ],
        "unsubscribe" | "pause" | "resume" => &["type", "sub"],
        "credit" => &["type", "sub", "records"],
        "commit" => &["type", "sub", "offsets"],
        "produce" => &["type", "id", "topic", "acks", "records"],
        "ping" => &["type", "id"],
        _ => &[],
    }
}

/// Refuses a field of `obj` not in `allowed`, naming it and what is allowed.
fn only_fields(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> ApiResult<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(bad(format!(
            "Unknown field '{unknown}' in {what}: the fields are {}",
            allowed.join(", ")
        ))),
    }
}

fn parse_object(obj: &Map<String, Value>) -> ApiResult<ClientFrame> {
    let kind = required_string(obj, "type", "")?;
    let allowed = allowed_fields(&kind, obj);
    if !allowed.is_empty() {
        only_fields(obj, allowed, &format!("a {kind} frame"))?;
    }
    match kind.as_str() {
        "subscribe" => parse_subscribe(obj).map(ClientFrame::Subscribe),
        "unsubscribe" => Ok(ClientFrame::Unsubscribe {
            sub: sub_id(obj, "unsubscribe")?,
        }),
        "pause" => Ok(ClientFrame::Pause {
            sub: string_field(obj, "sub")?,
        }),
        "resume" => Ok(ClientFrame::Resume {
            sub: string_field(obj, "sub")?,
        }),
        "credit" => Ok(ClientFrame::Credit {
            sub: sub_id(obj, "credit")?,
            records: u64_field(obj, "records")?
                .ok_or_else(|| bad("A credit frame needs 'records'"))?,
        }),
        "commit" => Ok(ClientFrame::Commit {
            sub: sub_id(obj, "commit")?,
            offsets: parse_commit_offsets(obj)?,
        }),
        "produce" => parse_produce(obj),
        "ping" => Ok(ClientFrame::Ping {
            id: field(obj, "id").cloned(),
        }),
        other => Err(bad(format!(
            "Unknown frame type '{other}': use subscribe, unsubscribe, pause, resume, credit, commit, produce or ping"
        ))),
    }
}

fn parse_subscribe(obj: &Map<String, Value>) -> ApiResult<SubscribeRequest> {
    let sub = sub_id(obj, "subscribe")?;
    let format = match string_field(obj, "format")? {
        None => EmbeddedFormat::Json,
        Some(name) => EmbeddedFormat::from_name(&name).ok_or_else(|| {
            bad(format!(
                "Unknown format '{name}': use json, string or binary"
            ))
        })?,
    };
    let frames = match string_field(obj, "frames")?.as_deref() {
        None | Some("text") => FrameEncoding::Text,
        Some("binary") => FrameEncoding::Binary,
        Some(other) => {
            return Err(bad(format!(
                "Unknown frames encoding '{other}': use text or binary"
            )))
        }
    };
    let credit = u64_field(obj, "credit")?;
    let target = match string_field(obj, "group")? {
        Some(group_id) => parse_group_target(obj, group_id)?,
        None => parse_partition_target(obj)?,
    };
    Ok(SubscribeRequest {
        sub,
        target,
        format,
        frames,
        credit,
    })
}

fn parse_group_target(obj: &Map<String, Value>, group_id: String) -> ApiResult<Target> {
    if group_id.is_empty() {
        return Err(bad("'group' must not be empty"));
    }
    let topics = match (field(obj, "topics"), string_field(obj, "topic")?) {
        (Some(Value::Array(items)), _) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("'topics' must be a list of topic names"))
            })
            .collect::<ApiResult<Vec<String>>>()?,
        (Some(_), _) => return Err(bad("'topics' must be a list of topic names")),
        (None, Some(topic)) => vec![topic],
        (None, None) => return Err(bad("A group subscription needs 'topics' (or 'topic')")),
    };
    if topics.is_empty() {
        return Err(bad("'topics' must name at least one topic"));
    }
    if field(obj, "partitions").is_some() {
        return Err(bad(
            "A group subscription takes no 'partitions': the group assigns them",
        ));
    }
    let reset = match field(obj, "from") {
        None => ResetPolicy::Latest,
        Some(Value::String(s)) if s == "beginning" || s == "earliest" => ResetPolicy::Earliest,
        Some(Value::String(s)) if s == "end" || s == "latest" => ResetPolicy::Latest,
        Some(_) => {
            return Err(bad(
                "In a group subscription 'from' is where partitions without a committed offset start: beginning or end",
            ))
        }
    };
    Ok(Target::Group {
        group_id,
        topics,
        reset,
    })
}

fn parse_partition_target(obj: &Map<String, Value>) -> ApiResult<Target> {
    let topic = required_string(obj, "topic", "subscribe")?;
    let partitions = match field(obj, "partitions") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|p| {
                    p.as_i64()
                        .and_then(|p| i32::try_from(p).ok())
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| bad("'partitions' must be a list of partition numbers"))
                })
                .collect::<ApiResult<Vec<i32>>>()?,
        ),
        Some(_) => return Err(bad("'partitions' must be a list of partition numbers")),
    };
    let from = parse_from(field(obj, "from"))?;
    if let (StartFrom::Offsets(_), Some(_)) = (&from, &partitions) {
        return Err(bad(
            "Give either 'partitions' or per-partition 'from.offsets', not both",
        ));
    }
    Ok(Target::Partitions {
        topic,
        partitions,
        from,
    })
}

fn parse_from(from: Option<&Value>) -> ApiResult<StartFrom> {
    let usage = "'from' must be \"beginning\", \"end\", {\"offsets\": {\"<partition>\": <offset>}} or {\"timestamp\": <ms or ISO-8601>}";
    let Some(from) = from else {
        return Ok(StartFrom::End);
    };
    match from {
        Value::String(s) if s == "beginning" || s == "earliest" => Ok(StartFrom::Beginning),
        Value::String(s) if s == "end" || s == "latest" => Ok(StartFrom::End),
        Value::Object(o) => {
            if o.len() != 1 {
                return Err(bad(usage));
            }
            if let Some(offsets) = field(o, "offsets") {
                let Value::Object(offsets) = offsets else {
                    return Err(bad(usage));
                };
                let mut out = BTreeMap::new();
                for (p, offset) in offsets {
                    let partition = p
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| bad(format!("'{p}' is not a partition number")))?;
                    let offset = offset.as_i64().filter(|o| *o >= 0).ok_or_else(|| {
                        bad(format!(
                            "The offset for partition {p} must be a non-negative whole number"
                        ))
                    })?;
                    out.insert(partition, offset);
                }
                if out.is_empty() {
                    return Err(bad("'from.offsets' names no partition"));
                }
                return Ok(StartFrom::Offsets(out));
            }
            match field(o, "timestamp") {
                Some(t @ (Value::Number(_) | Value::String(_))) => {
                    parse_timestamp(t.clone()).map(StartFrom::Timestamp)
                }
                _ => Err(bad(usage)),
            }
        }
        _ => Err(bad(usage)),
    }
}

fn parse_commit_offsets(obj: &Map<String, Value>) -> ApiResult<Vec<CommitOffset>> {
    let usage = "A commit frame needs 'offsets': a non-empty list of {\"topic\", \"partition\", \"offset\"} (the next offset to read)";
    let Some(Value::Array(items)) = field(obj, "offsets") else {
        return Err(bad(usage));
    };
    if items.is_empty() {
        return Err(bad(usage));
    }
    items
        .iter()
        .map(|item| {
            let Value::Object(o) = item else {
                return Err(bad(usage));
            };
            only_fields(o, &["topic", "partition", "offset"], "a commit offset")?;
            let topic = required_string(o, "topic", "commit offset")?;
            let partition = field(o, "partition")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| bad(usage))?;
            let offset = field(o, "offset")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad(usage))?;
            Ok(CommitOffset {
                topic,
                partition,
                offset,
            })
        })
        .collect::<ApiResult<Vec<_>>>()
}

fn parse_produce(obj: &Map<String, Value>) -> ApiResult<ClientFrame> {
    let topic = required_string(obj, "topic", "produce")?;
    let acks = match field(obj, "acks") {
        None => Acks::All,
        Some(v) => match v
            .as_str()
            .map(str::to_string)
            .or_else(|| v.as_i64().map(|n| n.to_string()))
            .as_deref()
            .and_then(Acks::parse)
        {
            Some(acks) => acks,
            None => return Err(bad("'acks' must be 0, 1 or \"all\"")),
        },
    };
    let records = match field(obj, "records") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
        _ => {
            return Err(bad(
                "A produce frame needs 'records': a non-empty list of records (the REST v3 record schema)",
            ))
        }
    };
    Ok(ClientFrame::Produce {
        id: field(obj, "id").cloned(),
        topic,
        acks,
        records,
    })
}

// ---------------------------------------------------------------------------------
// Server frames

/// `{"type": "error", "error_code", "message"}`, with the subscription or request it
/// concerns when there is one.
pub fn error_frame(e: &ApiError, about: Option<(&str, Value)>) -> String {
    let mut frame = json!({"type": "error", "error_code": e.error_code, "message": e.message});
    if let Some((name, value)) = about {
        frame[name] = value;
    }
    frame.to_string()
}

/// A subscription that does not exist.
pub fn unknown_subscription(sub: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        codes::SUBSCRIPTION_NOT_FOUND,
        format!("No subscription '{sub}' on this connection"),
    )
}

/// One record as a records frame shows it (the REST v2 consume shape, with headers).
pub fn record_json(r: &StoredRecord, format: EmbeddedFormat) -> Value {
    let headers: Vec<Value> = r
        .record
        .headers
        .iter()
        .map(|h| json!({"name": h.key, "value": h.value.as_deref().map(encode_base64)}))
        .collect();
    json!({
        "offset": r.offset,
        "timestamp": r.record.timestamp_ms,
        "key": format.render_bytes(r.record.key.as_deref()),
        "value": format.render_bytes(r.record.value.as_deref()),
        "headers": headers,
    })
}

/// The JSON array of `records`.
pub fn records_json(records: &[StoredRecord], format: EmbeddedFormat) -> String {
    let mut out = String::with_capacity(records.len() * 64 + 2);
    out.push('[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&record_json(r, format).to_string());
    }
    out.push(']');
    out
}

/// The start of `{"type": "records", "sub", "topic", "partition", "records": […]}`, up
/// to the records array; [`RECORDS_FRAME_TAIL`] ends it. The array between is rendered
/// once and shared by every subscriber sending the same records.
pub fn records_frame_head(sub: &str, topic: &str, partition: i32) -> String {
    let mut out = String::with_capacity(sub.len() + topic.len() + 64);
    out.push_str(r#"{"type":"records","sub":"#);
    out.push_str(&Value::from(sub).to_string());
    out.push_str(r#","topic":"#);
    out.push_str(&Value::from(topic).to_string());
    out.push_str(r#","partition":"#);
    out.push_str(&partition.to_string());
    out.push_str(r#","records":"#);
    out
}

/// What follows the records array of a records frame.
pub const RECORDS_FRAME_TAIL: &str = "}";

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(frame: Value) -> Refusal {
        match parse(&frame.to_string()) {
            Err(r) => r,
            Ok(f) => panic!("{frame} parsed as {f:?}"),
        }
    }

    #[test]
    fn refusals_carry_the_sub_and_id_as_sent() {
        let r = refusal(json!({"type": "subscribe", "sub": "a"}));
        assert_eq!(r.sub, Some(json!("a")));
        let frame: Value = serde_json::from_str(&r.frame()).expect("JSON");
        assert_eq!(frame["sub"], "a");
        assert_eq!(frame["error_code"], codes::BAD_REQUEST);
        let r = refusal(
            json!({"type": "produce", "id": [1], "topic": "t", "acks": 2, "records": [{}]}),
        );
        assert_eq!(r.id, Some(json!([1])));
        let r = refusal(json!({"type": "nonsense", "sub": "x", "id": 3}));
        assert_eq!((r.sub, r.id), (Some(json!("x")), Some(json!(3))));
        let r = parse("{oops").expect_err("malformed");
        assert_eq!((r.error.error_code, r.sub, r.id), (400, None, None));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        for (frame, field) in [
            (
                json!({"type": "subscribe", "sub": "a", "topic": "t", "frame": "binary"}),
                "frame",
            ),
            (
                json!({"type": "subscribe", "sub": "a", "topic": "t", "topics": ["t"]}),
                "topics",
            ),
            (
                json!({"type": "subscribe", "sub": "a", "group": "g", "topics": ["t"], "offset": 1}),
                "offset",
            ),
            (
                json!({"type": "unsubscribe", "sub": "a", "force": true}),
                "force",
            ),
            (
                json!({"type": "credit", "sub": "a", "records": 1, "bytes": 5}),
                "bytes",
            ),
            (json!({"type": "ping", "ID": 1}), "ID"),
        ] {
            let r = refusal(frame.clone());
            assert!(
                r.error.message.contains(&format!("'{field}'")),
                "{frame}: {}",
                r.error.message
            );
        }
        // The documented fields all parse.
        assert!(parse(&json!({"type": "subscribe", "sub": "a", "topic": "t", "partitions": [0], "from": "end", "format": "json", "frames": "text", "credit": 5}).to_string()).is_ok());
        assert!(parse(&json!({"type": "subscribe", "sub": "g", "group": "g", "topics": ["t"], "from": "beginning", "format": "binary", "frames": "binary", "credit": 1}).to_string()).is_ok());
        assert!(parse(
            &json!({"type": "produce", "id": 1, "topic": "t", "acks": "all", "records": [{}]})
                .to_string()
        )
        .is_ok());
    }
}
