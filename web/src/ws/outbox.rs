//! A connection's send buffer. Everything the broker sends a client goes through
//! here to one writer task that owns the socket's sending half.
//!
//! Records frames take room in a byte budget (`websocket.send.buffer.bytes`) until
//! they are written; when it is spent, the subscription that wants to send waits
//! (paused — and the client is told so with a `paused` frame, then `resumed`), so a
//! slow client costs the broker at most the budget, and nothing upstream waits on it:
//! the partitions keep committing and the subscription later catches up from the log.
//!
//! Control frames (acks, errors, notices, pings) go ahead of records frames through a
//! short bounded queue of their own; produce acks, which can be large, also take room
//! in the byte budget. A control frame that finds the queue full marks the connection
//! overflowed (the client is not reading), and the session drops it. The writer
//! notes when a write started; a write that has not finished for
//! `websocket.slow.client.timeout.ms` means the client has stopped reading, and the
//! session drops it too. Nothing the session does waits on the client.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Session};
use serde_json::json;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

/// Control frames queued before the connection counts as stalled.
const CONTROL_QUEUE_FRAMES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

impl Frame {
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
        }
    }
}

/// The connection is gone (or being dropped): nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

#[derive(Default)]
struct Progress {
    /// When the write under way started (`None` when the writer is idle).
    writing_since: Cell<Option<Instant>>,
    /// A control frame found the control queue full.
    overflowed: Cell<bool>,
}

/// A handle to the send buffer; clones share it.
#[derive(Clone)]
pub struct Outbox {
    data: mpsc::UnboundedSender<(Frame, OwnedSemaphorePermit)>,
    control: mpsc::Sender<(Frame, Option<OwnedSemaphorePermit>)>,
    budget: Arc<Semaphore>,
    capacity: usize,
    progress: Rc<Progress>,
}

/// The writer task, for the session to stop.
pub struct Writer {
    task: JoinHandle<()>,
    session: Session,
}

impl Outbox {
    /// Starts the writer for `session` with a budget of `capacity` bytes.
    pub fn start(session: Session, capacity: usize) -> (Outbox, Writer) {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let (data, data_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE_FRAMES);
        let progress = Rc::new(Progress::default());
        let task = actix_web::rt::spawn(write_loop(
            session.clone(),
            control_rx,
            data_rx,
            progress.clone(),
        ));
        let outbox = Outbox {
            data,
            control,
            budget: Arc::new(Semaphore::new(capacity)),
            capacity,
            progress,
        };
        (outbox, Writer { task, session })
    }

    /// Queues a records frame of subscription `sub`, waiting while the budget is spent.
    pub async fn send_records(&self, sub: &str, frame: Frame) -> Result<(), Closed> {
        let permit = self.room(frame.len(), Some(sub)).await?;
        self.data.send((frame, permit)).map_err(|_| Closed)
    }

    /// Room for `len` bytes in the budget, waiting while it is spent (and telling
    /// the client that `sub` is paused meanwhile).
    async fn room(&self, len: usize, sub: Option<&str>) -> Result<OwnedSemaphorePermit, Closed> {
        let need = len.clamp(1, self.capacity) as u32;
        match self.budget.clone().try_acquire_many_owned(need) {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::Closed) => Err(Closed),
            Err(TryAcquireError::NoPermits) => {
                let notice = |kind| json!({"type": kind, "sub": sub, "reason": "send_buffer_full"});
                if sub.is_some() {
                    self.send_control(Frame::Text(notice("paused").to_string()));
                }
                let permit = self
                    .budget
                    .clone()
                    .acquire_many_owned(need)
                    .await
                    .map_err(|_| Closed)?;
                if sub.is_some() {
                    self.send_control(Frame::Text(notice("resumed").to_string()));
                }
                Ok(permit)
            }
        }
    }

    /// Queues a small control frame ahead of records, never waiting: if the queue is
    /// full the connection is marked overflowed (the session then drops it).
    pub fn send_control(&self, frame: Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.control.try_send((frame, None)) {
            self.progress.overflowed.set(true);
        }
    }

    /// Queues a control frame that may be large (a produce ack), within the byte
    /// budget: a producer that does not read its acks stops being read from.
    pub async fn send_control_waiting(&self, frame: Frame) -> Result<(), Closed> {
        let permit = self.room(frame.len(), None).await?;
        self.control
            .send((frame, Some(permit)))
            .await
            .map_err(|_| Closed)
    }

    pub fn text(&self, text: String) {
        self.send_control(Frame::Text(text))
    }

    /// Whether a control frame found the queue full.
    pub fn overflowed(&self) -> bool {
        self.progress.overflowed.get()
    }

    /// How long the write under way has been waiting for the client, if one is.
    pub fn stalled_for(&self) -> Option<Duration> {
        self.progress.writing_since.get().map(|t| t.elapsed())
    }

    /// Bytes of records frames queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.capacity - self.budget.available_permits().min(self.capacity)
    }
}

impl Writer {
    /// Stops writing and closes the socket with `code`: whatever is queued but not yet
    /// handed to the socket is dropped. The close frame itself waits behind what the
    /// socket already holds, up to `wait`; a client that never reads again is cut off.
    pub fn close(self, code: u16, reason: &str, wait: Duration) {
        self.task.abort();
        let reason = CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_string()),
        };
        let session = self.session;
        actix_web::rt::spawn(async move {
            let _ = tokio::time::timeout(wait, session.close(Some(reason))).await;
        });
    }

    /// Sends what is queued, then closes normally (the client closed first, or the
    /// session ended cleanly).
    pub async fn finish(self, reason: Option<CloseReason>, wait: Duration) {
        let Writer { task, session } = self;
        let drained = tokio::time::timeout(wait, async move {
            let _ = task.await;
        });
        let _ = drained.await;
        let _ = tokio::time::timeout(wait, session.close(reason)).await;
    }
}

async fn write_loop(
    mut session: Session,
    mut control: mpsc::Receiver<(Frame, Option<OwnedSemaphorePermit>)>,
    mut data: mpsc::UnboundedReceiver<(Frame, OwnedSemaphorePermit)>,
    progress: Rc<Progress>,
) {
    loop {
        let (frame, permit) = tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(item) => item,
                None => break,
            },
            d = data.recv() => match d {
                Some((frame, permit)) => (frame, Some(permit)),
                None => break,
            },
        };
        progress.writing_since.set(Some(Instant::now()));
        let written = match frame {
            Frame::Text(text) => session.text(text).await,
            Frame::Binary(bytes) => session.binary(bytes).await,
            Frame::Ping(bytes) => session.ping(&bytes).await,
            Frame::Pong(bytes) => session.pong(&bytes).await,
        };
        progress.writing_since.set(None);
        drop(permit);
        if written.is_err() {
            break;
        }
    }
}
