//! One subscription of a connection: a delivery task per partition, each driving a
//! [`PartitionFeed`] (catch up from the log, then the partition's live tail) and
//! sending records frames through the connection's [`Outbox`], and the flow control
//! the client steers with `pause`, `resume` and `credit` frames.
//!
//! A delivery task sends a partition's records strictly in offset order, each once.
//! When credit runs out mid-chunk it sends what the credit allows and rewinds its
//! feed to the first record it held back. Whole chunks from the live tail are
//! rendered once per format and shared by every subscriber that sends them whole:
//! a records frame is the subscription's own head around that shared rendering.
//!
//! A delivery reads from the log for its client only as much as the connection's send
//! buffer has room for, so a slow client's catch-up holds no more than its buffer.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::web::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use troupe_actors::group::TopicPartition;
use troupe_actors::partition::{ChunkRecords, PartitionFeed};
use troupe_actors::requests::consumers::Consumer;
use troupe_actors::storage::StoredRecord;
use troupe_actors::BrokerError;

use super::binary;
use super::outbox::{Frame, Outbox};
use super::protocol::{self, FrameEncoding};
use crate::error::ApiError;
use crate::metrics;
use crate::records::EmbeddedFormat;

/// The client's say over a subscription's pace.
#[derive(Default)]
pub struct Flow {
    paused: Cell<bool>,
    /// Records still allowed; `None`: no limit.
    credit: Cell<Option<u64>>,
    changed: Notify,
}

impl Flow {
    pub fn new(credit: Option<u64>) -> Flow {
        Flow {
            paused: Cell::new(false),
            credit: Cell::new(credit),
            changed: Notify::new(),
        }
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.set(paused);
        self.changed.notify_waiters();
    }

    /// Adds credit to a subscription that has a limit (one without stays without).
    pub fn add_credit(&self, records: u64) {
        if let Some(credit) = self.credit.get() {
            self.credit.set(Some(credit.saturating_add(records)));
            self.changed.notify_waiters();
        }
    }

    fn may_send(&self) -> bool {
        !self.paused.get() && self.credit.get() != Some(0)
    }

    /// Waits until the subscription may send.
    async fn ready(&self) {
        loop {
            // Registered before the check, so a change in between is not missed.
            let changed = self.changed.notified();
            if self.may_send() {
                return;
            }
            changed.await;
        }
    }

    /// Takes credit for up to `wanted` records; returns how many may be sent.
    fn take(&self, wanted: usize) -> usize {
        match self.credit.get() {
            None => wanted,
            Some(credit) => {
                let n = (credit.min(wanted as u64)) as usize;
                self.credit.set(Some(credit - n as u64));
                n
            }
        }
    }
}

/// How a subscription's records frames look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendering {
    pub format: EmbeddedFormat,
    pub frames: FrameEncoding,
}

impl Rendering {
    /// The slot the shared rendering of a whole chunk is kept in.
    fn view_key(self) -> usize {
        match (self.frames, self.format) {
            (FrameEncoding::Binary, _) => 0,
            (FrameEncoding::Text, EmbeddedFormat::Binary) => 1,
            (FrameEncoding::Text, EmbeddedFormat::Json) => 2,
            (FrameEncoding::Text, EmbeddedFormat::String) => 3,
        }
    }

    /// The records part of each frame for `records`, each about `frame_bytes`.
    fn pieces(self, records: &[StoredRecord], frame_bytes: usize) -> Vec<Bytes> {
        let runs = split(records, frame_bytes).into_iter();
        match self.frames {
            FrameEncoding::Text => runs
                .map(|run| Bytes::from(protocol::records_json(run, self.format)))
                .collect(),
            FrameEncoding::Binary => runs
                .map(|run| Bytes::from(binary::encode_records(run)))
                .collect(),
        }
    }

    /// The records parts for a whole chunk: rendered once, by the first subscriber
    /// that asks, and shared (reference-counted, never copied) by every other.
    fn shared_pieces(self, records: &ChunkRecords, frame_bytes: usize) -> Arc<Vec<Bytes>> {
        records.view(self.view_key(), |r| self.pieces(r, frame_bytes))
    }

    /// The head of every records frame of one partition of a subscription.
    fn frame_head(self, sub: &str, tp: &TopicPartition) -> Bytes {
        match self.frames {
            FrameEncoding::Text => {
                Bytes::from(protocol::records_frame_head(sub, &tp.topic, tp.partition))
            }
            FrameEncoding::Binary => {
                Bytes::from(binary::records_frame_head(sub, &tp.topic, tp.partition))
            }
        }
    }

    /// A records frame: the subscription's head around a (shared) records part.
    fn frame(self, head: &Bytes, piece: &Bytes) -> Frame {
        match self.frames {
            FrameEncoding::Text => Frame::text_parts(vec![
                head.clone(),
                piece.clone(),
                Bytes::from_static(protocol::RECORDS_FRAME_TAIL.as_bytes()),
            ]),
            FrameEncoding::Binary => Frame::binary_parts(vec![head.clone(), piece.clone()]),
        }
    }
}

/// Splits `records` into runs of about `max_bytes` (a larger record goes alone), so
/// frames stay small: the send buffer is spent and given back a frame at a time.
fn split(records: &[StoredRecord], max_bytes: usize) -> Vec<&[StoredRecord]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        // Base64 of binary data is 4/3 of it; JSON adds the field names.
        let n = (r.record.key.as_ref().map_or(0, Vec::len)
            + r.record.value.as_ref().map_or(0, Vec::len))
            * 4
            / 3
            + r.record
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len) * 4 / 3 + 24)
                .sum::<usize>()
            + 80;
        if i > start && size + n > max_bytes {
            out.push(&records[start..i]);
            start = i;
            size = 0;
        }
        size += n;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// A group subscription's member and the task forwarding its assignment changes.
pub struct Membership {
    pub instance: Consumer,
    pub watcher: JoinHandle<()>,
    pub reset: troupe_actors::consumer::ResetPolicy,
}

pub struct Subscription {
    pub id: Rc<str>,
    /// Tells this subscription from an earlier one of the same id.
    pub serial: u64,
    pub flow: Rc<Flow>,
    pub rendering: Rendering,
    pub tasks: BTreeMap<TopicPartition, JoinHandle<()>>,
    pub membership: Option<Membership>,
}

impl Subscription {
    pub fn new(id: &str, serial: u64, rendering: Rendering, credit: Option<u64>) -> Subscription {
        Subscription {
            id: Rc::from(id),
            serial,
            flow: Rc::new(Flow::new(credit)),
            rendering,
            tasks: BTreeMap::new(),
            membership: None,
        }
    }

    /// Starts delivering `tp` from `feed`'s position, in frames of about
    /// `frame_bytes` of records.
    pub fn start_partition(
        &mut self,
        tp: TopicPartition,
        feed: PartitionFeed,
        outbox: Outbox,
        frame_bytes: usize,
        throttle: Throttle,
    ) {
        let delivery = Delivery {
            throttle,
            frame_bytes,
            head: self.rendering.frame_head(&self.id, &tp),
            sub: self.id.clone(),
            tp: tp.clone(),
            rendering: self.rendering,
            flow: self.flow.clone(),
            outbox,
        };
        let task = actix_web::rt::spawn(delivery.run(feed));
        if let Some(old) = self.tasks.insert(tp, task) {
            old.abort();
        }
    }

    /// Stops delivering `tp` (revoked by the group).
    pub fn stop_partition(&mut self, tp: &TopicPartition) {
        if let Some(task) = self.tasks.remove(tp) {
            task.abort();
        }
    }

    /// Stops every delivery; the group member, if any, is handed back to close.
    pub fn stop(mut self) -> Option<Membership> {
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.abort();
        }
        if let Some(m) = &self.membership {
            m.watcher.abort();
        }
        self.membership.take()
    }
}

/// The delay a delivery of so many bytes earns the connection's user under its
/// fetch quota (`Engine::throttle`).
pub type Throttle = Rc<dyn Fn(u64) -> std::time::Duration>;

struct Delivery {
    throttle: Throttle,
    sub: Rc<str>,
    /// The head of this partition's records frames, made once.
    head: Bytes,
    tp: TopicPartition,
    rendering: Rendering,
    flow: Rc<Flow>,
    outbox: Outbox,
    frame_bytes: usize,
}

impl Delivery {
    /// An error frame about this partition: its subscription, topic, partition and
    /// the position delivery stands at.
    fn report(&self, e: &ApiError, position: i64) {
        let mut frame = serde_json::json!({
            "type": "error",
            "error_code": e.error_code,
            "message": e.message,
            "sub": &*self.sub,
            "topic": self.tp.topic,
            "partition": self.tp.partition,
        });
        frame["position"] = position.into();
        self.outbox.text(frame.to_string());
    }

    async fn run(self, mut feed: PartitionFeed) {
        let fetch_max_bytes = feed.max_bytes();
        loop {
            self.flow.ready().await;
            // Read from the log no more than the client has room for (at least a
            // frame's worth): what a slow client is sent waits in the log, not here.
            if self
                .outbox
                .wait_for_room(&self.sub, self.frame_bytes)
                .await
                .is_err()
            {
                return;
            }
            feed.set_max_bytes(
                self.outbox
                    .room_now()
                    .clamp(self.frame_bytes.min(fetch_max_bytes), fetch_max_bytes),
            );
            let (chunk, from) = match feed.next().await {
                Ok(next) => next,
                // Retention deleted records before they were delivered: carry on at
                // the log start (Kafka's auto.offset.reset=earliest), and say so.
                Err(BrokerError::OffsetOutOfRange {
                    requested,
                    log_start_offset,
                    ..
                }) if requested < log_start_offset => {
                    let e = ApiError::new(
                        actix_web::http::StatusCode::RANGE_NOT_SATISFIABLE,
                        crate::error::codes::OFFSET_OUT_OF_RANGE,
                        format!("Records {requested} to {} were deleted by retention before they were delivered; continuing at {log_start_offset}", log_start_offset - 1),
                    );
                    self.report(&e, log_start_offset);
                    feed.seek(log_start_offset);
                    continue;
                }
                // Stored records that fail their check are never sent: say which, and
                // carry on after them (a consumer would seek past them the same way).
                Err(e @ BrokerError::CorruptRecord { .. }) => {
                    let next = match &e {
                        BrokerError::CorruptRecord { last_offset, .. } => last_offset + 1,
                        _ => feed.position(),
                    };
                    self.report(&ApiError::from(e), next);
                    feed.seek(next);
                    continue;
                }
                Err(e) => {
                    self.report(&ApiError::from(e), feed.position());
                    return;
                }
            };
            let records = match chunk.records() {
                Ok(records) => records,
                Err(e) => {
                    self.report(&ApiError::from(e), from);
                    return;
                }
            };
            if !self.flow.may_send() {
                // Paused (or out of credit) while waiting: these wait too.
                feed.seek(from);
                continue;
            }
            let first = records.partition_point(|r| r.offset < from);
            let available = &records[first..];
            if available.is_empty() {
                continue;
            }
            let allowed = self.flow.take(available.len());
            if allowed < available.len() {
                feed.seek(available[allowed].offset);
            }
            if allowed == 0 {
                continue;
            }
            let sent = allowed as u64;
            let pieces = if first == 0 && allowed == available.len() {
                self.rendering.shared_pieces(&records, self.frame_bytes)
            } else {
                Arc::new(
                    self.rendering
                        .pieces(&available[..allowed], self.frame_bytes),
                )
            };
            // The rendering is all that is sent: the chunk and its decoded records
            // need not be kept while the frames wait for room.
            drop(records);
            drop(chunk);
            let mut bytes = 0u64;
            for piece in pieces.iter() {
                let frame = self.rendering.frame(&self.head, piece);
                bytes += frame.len() as u64;
                if self.outbox.send_records(&self.sub, frame).await.is_err() {
                    return;
                }
            }
            metrics::record_out(&self.tp.topic, sent, bytes);
            // Over its fetch quota, the next read waits (Kafka's throttle).
            let wait = (self.throttle)(bytes);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}
