//! A connection's send buffer, and the response body that writes it to the socket.
//!
//! Everything the broker sends a client is queued here, and the connection's HTTP
//! response body ([`OutboxBody`]) takes frames from the queues as fast as the socket
//! takes bytes: the body *is* the writer, so a frame leaves the buffer only when the
//! HTTP layer has taken it for the socket (which then holds at most
//! `h1 write buffer` (32 KiB) plus one frame of it).
//!
//! Records frames take room in a byte budget (`websocket.send.buffer.bytes`) from the
//! moment they are queued until the body hands their last byte over; when it is spent,
//! the subscription that wants to send waits (paused — and the client is told so with
//! a `paused` frame, then `resumed`). A subscription also waits for room *before* it
//! reads from the log for the client, so a slow client costs the broker at most the
//! budget and nothing upstream waits on it: the partitions keep committing and the
//! subscription later catches up from the log.
//!
//! A records frame is a few parts: its own small head (`sub`, `topic`, `partition`)
//! around a rendering of the records that every subscriber sending the same records
//! shares (`Bytes`, reference-counted): a frame queued for a hundred connections is one
//! copy of the records, not a hundred. The budget counts the whole frame for each
//! connection, so a slow client that keeps old renderings alive pays for them.
//!
//! Control frames (acks, errors, notices, pings) go ahead of records frames through a
//! short queue of their own; produce acks, which can be large, also take room in the
//! byte budget. A control frame that finds the queue full marks the connection
//! overflowed (the client is not reading), and the session drops it. The queue notes
//! since when frames have been waiting for the socket; when that passes
//! `websocket.slow.client.timeout.ms` the client has stopped reading, and the session
//! drops it too. Nothing the session does waits on the client.
//!
//! Closing follows RFC 6455 §7.1.1: after the close frame has been handed over and the
//! client's close received (or, when the client closed first, answered), the server
//! closes the TCP connection at once — the body ends and shuts the socket's read side,
//! so the HTTP layer sends FIN right after flushing instead of lingering for the client
//! to hang up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::web::Bytes;
use futures::Stream;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Control frames queued before the connection counts as stalled.
const CONTROL_QUEUE_FRAMES: usize = 1024;
/// RFC 6455 §5.5: a control frame's payload is at most 125 bytes.
const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;

/// WebSocket opcodes (RFC 6455 §5.2).
mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// One WebSocket frame to send: an opcode and its payload in parts (written one after
/// the other, never joined: parts may be shared with other connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    opcode: u8,
    parts: Vec<Bytes>,
}

impl Frame {
    pub fn text(text: String) -> Frame {
        Frame {
            opcode: opcode::TEXT,
            parts: vec![Bytes::from(text)],
        }
    }

    /// A text frame of UTF-8 parts.
    pub fn text_parts(parts: Vec<Bytes>) -> Frame {
        Frame {
            opcode: opcode::TEXT,
            parts,
        }
    }

    pub fn binary_parts(parts: Vec<Bytes>) -> Frame {
        Frame {
            opcode: opcode::BINARY,
            parts,
        }
    }

    pub fn ping(payload: &[u8]) -> Frame {
        Frame::control(opcode::PING, Bytes::copy_from_slice(payload))
    }

    pub fn pong(payload: Bytes) -> Frame {
        Frame::control(opcode::PONG, payload)
    }

    fn control(code: u8, payload: Bytes) -> Frame {
        Frame {
            opcode: code,
            parts: vec![payload.slice(..payload.len().min(MAX_CONTROL_PAYLOAD_BYTES))],
        }
    }

    /// A close frame: the code, and the reason cut to fit a control frame.
    fn close(code: Option<u16>, reason: &str) -> Frame {
        let Some(code) = code else {
            return Frame::control(opcode::CLOSE, Bytes::new());
        };
        let mut end = reason.len().min(MAX_CONTROL_PAYLOAD_BYTES - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        Frame::control(opcode::CLOSE, Bytes::from(payload))
    }

    /// Payload bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// The frame's head (RFC 6455 §5.2: FIN, opcode, unmasked length).
    fn head(&self) -> Bytes {
        let len = self.len();
        let mut head = Vec::with_capacity(10);
        head.push(0x80 | self.opcode);
        if len < 126 {
            head.push(len as u8);
        } else if len <= u16::MAX as usize {
            head.push(126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            head.push(127);
            head.extend_from_slice(&(len as u64).to_be_bytes());
        }
        Bytes::from(head)
    }
}

/// The connection is gone (or closing): nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// The close frame waits to be handed over (nothing is sent after it).
    Queued,
    /// Handed over; the connection ends when the handshake is done.
    Sent,
}

struct Queued {
    frame: Frame,
    /// Its room in the byte budget, given back once the frame is handed over.
    permit: Option<OwnedSemaphorePermit>,
}

/// What the session's handles and the response body share (one connection, one
/// thread: the session, its tasks and the body all run on the connection's worker).
struct Shared {
    control: RefCell<VecDeque<Queued>>,
    data: RefCell<VecDeque<Queued>>,
    close: RefCell<Option<Frame>>,
    closing: Cell<Closing>,
    /// The client's close was received (or will not come): once the close frame is
    /// handed over, the connection ends.
    handshake_done: Cell<bool>,
    /// Since when frames have waited for the socket without the body taking any
    /// (`None`: nothing waiting).
    waiting_since: Cell<Option<Instant>>,
    overflowed: Cell<bool>,
    /// The body is handing a frame over.
    writing: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    budget: Arc<Semaphore>,
    capacity: usize,
    /// The connection's socket (a duplicate descriptor), to end it at once; the body
    /// closes it when it is dropped, so it never outlives the connection.
    socket: RefCell<Option<TcpStream>>,
}

impl Shared {
    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn queue(&self, queue: &RefCell<VecDeque<Queued>>, item: Queued) {
        queue.borrow_mut().push_back(item);
        if self.waiting_since.get().is_none() {
            self.waiting_since.set(Some(Instant::now()));
        }
        self.wake();
    }

    fn pending(&self) -> bool {
        self.writing.get() || !self.control.borrow().is_empty() || !self.data.borrow().is_empty()
    }

    /// The next frame for the socket: control frames first, the close frame last.
    fn next(&self) -> Option<Queued> {
        match self.closing.get() {
            Closing::Sent => return None,
            Closing::Queued => {
                self.closing.set(Closing::Sent);
                return self.close.borrow_mut().take().map(|frame| Queued {
                    frame,
                    permit: None,
                });
            }
            Closing::Open => {}
        }
        let next = self.control.borrow_mut().pop_front();
        next.or_else(|| self.data.borrow_mut().pop_front())
    }

    fn shutdown(&self, how: Shutdown) {
        if let Some(socket) = self.socket.borrow().as_ref() {
            // The peer may be gone already; there is nothing left to do then.
            let _ = socket.shutdown(how);
        }
    }
}

/// A handle to the send buffer; clones share it.
#[derive(Clone)]
pub struct Outbox {
    shared: Rc<Shared>,
}

impl Outbox {
    /// A send buffer of `capacity` bytes and the response body that writes it.
    /// `socket` (a duplicate of the connection's descriptor) lets the connection end
    /// at once after the close handshake; `upgrade_body` is actix-ws's own body, kept
    /// (never polled) as long as this one because its end is what ends actix-ws's
    /// stream of client frames.
    pub fn new(
        capacity: usize,
        socket: Option<TcpStream>,
        upgrade_body: BoxBody,
    ) -> (Outbox, OutboxBody) {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let shared = Rc::new(Shared {
            control: RefCell::new(VecDeque::new()),
            data: RefCell::new(VecDeque::new()),
            close: RefCell::new(None),
            closing: Cell::new(Closing::Open),
            handshake_done: Cell::new(false),
            waiting_since: Cell::new(None),
            overflowed: Cell::new(false),
            writing: Cell::new(false),
            waker: RefCell::new(None),
            budget: Arc::new(Semaphore::new(capacity)),
            capacity,
            socket: RefCell::new(socket),
        });
        let body = OutboxBody {
            shared: shared.clone(),
            current: VecDeque::new(),
            current_permit: None,
            _upgrade_body: upgrade_body,
        };
        (Outbox { shared }, body)
    }

    fn open(&self) -> Result<(), Closed> {
        match self.shared.closing.get() {
            Closing::Open if !self.shared.budget.is_closed() => Ok(()),
            _ => Err(Closed),
        }
    }

    /// Queues a records frame of subscription `sub`, waiting while the budget is spent.
    pub async fn send_records(&self, sub: &str, frame: Frame) -> Result<(), Closed> {
        let permit = self.room(frame.len(), Some(sub)).await?;
        self.open()?;
        self.shared.queue(
            &self.shared.data,
            Queued {
                frame,
                permit: Some(permit),
            },
        );
        Ok(())
    }

    /// Waits until `bytes` of the budget are free (telling the client `sub` is paused
    /// meanwhile), without taking them: a subscription reads no more from the log for
    /// a client than the client has room for.
    pub async fn wait_for_room(&self, sub: &str, bytes: usize) -> Result<(), Closed> {
        self.room(bytes, Some(sub)).await.map(drop)
    }

    /// Bytes of the budget free now.
    pub fn room_now(&self) -> usize {
        self.shared.budget.available_permits()
    }

    /// Room for `len` bytes in the budget, waiting while it is spent (and telling
    /// the client that `sub` is paused meanwhile).
    async fn room(&self, len: usize, sub: Option<&str>) -> Result<OwnedSemaphorePermit, Closed> {
        self.open()?;
        let need = len.clamp(1, self.shared.capacity) as u32;
        match self.shared.budget.clone().try_acquire_many_owned(need) {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::Closed) => Err(Closed),
            Err(TryAcquireError::NoPermits) => {
                let notice = |kind| json!({"type": kind, "sub": sub, "reason": "send_buffer_full"});
                if sub.is_some() {
                    self.send_control(Frame::text(notice("paused").to_string()));
                }
                let permit = self
                    .shared
                    .budget
                    .clone()
                    .acquire_many_owned(need)
                    .await
                    .map_err(|_| Closed)?;
                if sub.is_some() {
                    self.send_control(Frame::text(notice("resumed").to_string()));
                }
                Ok(permit)
            }
        }
    }

    /// Queues a small control frame ahead of records, never waiting: if the queue is
    /// full the connection is marked overflowed (the session then drops it).
    pub fn send_control(&self, frame: Frame) {
        if self.open().is_err() {
            return;
        }
        if self.shared.control.borrow().len() >= CONTROL_QUEUE_FRAMES {
            self.shared.overflowed.set(true);
            return;
        }
        self.shared.queue(
            &self.shared.control,
            Queued {
                frame,
                permit: None,
            },
        );
    }

    /// Queues a control frame that may be large (a produce ack), within the byte
    /// budget: a producer that does not read its acks stops being read from.
    pub async fn send_control_waiting(&self, frame: Frame) -> Result<(), Closed> {
        let permit = self.room(frame.len(), None).await?;
        self.open()?;
        self.shared.queue(
            &self.shared.control,
            Queued {
                frame,
                permit: Some(permit),
            },
        );
        Ok(())
    }

    pub fn text(&self, text: String) {
        self.send_control(Frame::text(text))
    }

    /// Whether a control frame found the queue full.
    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.get()
    }

    /// How long frames have been waiting for the client without it taking any, if
    /// any are.
    pub fn stalled_for(&self) -> Option<Duration> {
        if !self.shared.pending() {
            return None;
        }
        self.shared.waiting_since.get().map(|t| t.elapsed())
    }

    /// Bytes of records frames and acks queued and not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.capacity
            - self
                .shared
                .budget
                .available_permits()
                .min(self.shared.capacity)
    }

    /// Starts the close handshake: what is queued and not yet handed over is
    /// dropped, the close frame (`code` and `reason`; none for a bare close) is sent
    /// next. With `reply_received` (the client closed first) the connection ends as
    /// soon as it is handed over; otherwise once [`Outbox::close_reply_received`] is
    /// called.
    pub fn close(&self, code: Option<u16>, reason: &str, reply_received: bool) {
        if self.shared.closing.get() != Closing::Open {
            return;
        }
        self.shared.control.borrow_mut().clear();
        self.shared.data.borrow_mut().clear();
        *self.shared.close.borrow_mut() = Some(Frame::close(code, reason));
        self.shared.closing.set(Closing::Queued);
        self.shared.handshake_done.set(reply_received);
        // Subscriptions and producers waiting for room give up.
        self.shared.budget.close();
        self.shared.waiting_since.set(Some(Instant::now()));
        self.shared.wake();
    }

    /// Whether the close frame has been handed to the socket.
    pub fn close_sent(&self) -> bool {
        self.shared.closing.get() == Closing::Sent && !self.shared.writing.get()
    }

    /// The client answered the close frame (or will not): the connection ends now if
    /// the close frame went out; if it is still stuck behind what the client never
    /// read, the connection is cut.
    pub fn close_reply_received(&self) {
        self.shared.handshake_done.set(true);
        if self.shared.closing.get() == Closing::Sent && !self.shared.writing.get() {
            self.shared.wake();
        } else {
            log::debug!("websocket close frame not taken by the client: cutting the connection");
            self.shared.shutdown(Shutdown::Both);
            self.shared.wake();
        }
    }
}

/// The connection's response body: the frames of its [`Outbox`], in order, as they
/// are written.
pub struct OutboxBody {
    shared: Rc<Shared>,
    /// The rest of the frame being handed over, and its room in the budget.
    current: VecDeque<Bytes>,
    current_permit: Option<OwnedSemaphorePermit>,
    _upgrade_body: BoxBody,
}

impl Stream for OutboxBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(part) = this.current.pop_front() {
                if this.current.is_empty() {
                    // The whole frame is the HTTP layer's now.
                    this.current_permit = None;
                    this.shared.writing.set(false);
                }
                return Poll::Ready(Some(Ok(part)));
            }
            match this.shared.next() {
                Some(Queued { frame, permit }) => {
                    this.shared.writing.set(true);
                    this.shared.waiting_since.set(Some(Instant::now()));
                    this.current.push_back(frame.head());
                    this.current
                        .extend(frame.parts.into_iter().filter(|p| !p.is_empty()));
                    this.current_permit = permit;
                }
                None => {
                    let shared = &this.shared;
                    if shared.closing.get() == Closing::Sent && shared.handshake_done.get() {
                        return Poll::Ready(None);
                    }
                    if shared.closing.get() == Closing::Open {
                        shared.waiting_since.set(None);
                    }
                    *shared.waker.borrow_mut() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        // The connection is over (handshake done, or the HTTP layer dropped it): no
        // more sends, and no lingering for the client to hang up — the socket's read
        // side ends, so the HTTP layer flushes what it holds, sends FIN and closes.
        self.shared.closing.set(Closing::Sent);
        self.shared.budget.close();
        self.shared.control.borrow_mut().clear();
        self.shared.data.borrow_mut().clear();
        self.shared.shutdown(Shutdown::Read);
        self.shared.socket.borrow_mut().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_heads_carry_the_length_in_the_shortest_form() {
        let head = |len: usize| Frame::binary_parts(vec![Bytes::from(vec![0u8; len])]).head();
        assert_eq!(&head(125)[..], &[0x82, 125]);
        assert_eq!(&head(126)[..], &[0x82, 126, 0, 126]);
        assert_eq!(&head(65_535)[..], &[0x82, 126, 0xff, 0xff]);
        assert_eq!(&head(65_536)[..], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        // Parts count as one payload.
        let parts = Frame::text_parts(vec![
            Bytes::from_static(b"{\"a\":"),
            Bytes::from_static(b"1}"),
        ]);
        assert_eq!(parts.len(), 7);
        assert_eq!(&parts.head()[..], &[0x81, 7]);
    }

    #[test]
    fn close_and_control_frames_fit_125_bytes() {
        let close = Frame::close(Some(4008), &"é".repeat(100));
        assert!(close.len() <= MAX_CONTROL_PAYLOAD_BYTES);
        assert_eq!(&close.parts[0][..2], &4008u16.to_be_bytes());
        assert!(
            std::str::from_utf8(&close.parts[0][2..]).is_ok(),
            "cut on a character boundary"
        );
        assert_eq!(Frame::close(None, "ignored").len(), 0);
        assert_eq!(Frame::pong(Bytes::from(vec![1u8; 300])).len(), 125);
    }
}
