//! What the WebSocket layer shares across HTTP workers, held in `AppState`: its
//! limits (`websocket.*`), the count of open connections (each admitted one holds a
//! [`ConnectionSlot`]) and the broker's "shutting down" signal. Apart from the `ws`
//! adapter so that `AppState` can hold it without the state and the adapter
//! importing each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::StatusCode;

use crate::error::{codes, ApiError, ApiResult};

/// The limits every connection lives within (`websocket.*` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsLimits {
    pub max_connections: usize,
    pub max_subscriptions: usize,
    /// Largest frame (after continuations are joined) a client may send.
    pub max_frame_bytes: usize,
    /// Bytes of frames queued for one connection before its subscriptions pause.
    pub send_buffer_bytes: usize,
    /// About how many bytes of records one records frame carries (a larger record
    /// goes alone). The socket holds a fixed number of frames beyond the send
    /// buffer, so this also bounds what a connection can hold past it.
    pub records_frame_bytes: usize,
    /// A connection whose writes make no progress this long is dropped (4008).
    pub slow_client_timeout_ms: u64,
    pub ping_interval_ms: u64,
    /// A connection that sends nothing this long is closed (4001).
    pub idle_timeout_ms: u64,
    /// Browser origins allowed besides the broker's own; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Largest catch-up read of one partition, in bytes (`fetch.max.bytes`).
    pub fetch_max_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_connections: 1024,
            max_subscriptions: 64,
            max_frame_bytes: 1024 * 1024,
            send_buffer_bytes: 4 * 1024 * 1024,
            records_frame_bytes: 64 * 1024,
            slow_client_timeout_ms: 30_000,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 60_000,
            allowed_origins: Vec::new(),
            fetch_max_bytes: 1024 * 1024,
        }
    }
}

/// What the WebSocket layer shares across workers: its limits, the count of open
/// connections, and the broker's "shutting down" signal.
#[derive(Debug)]
pub struct WsHub {
    pub limits: WsLimits,
    connections: AtomicUsize,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl WsHub {
    pub fn new(limits: WsLimits) -> Self {
        WsHub {
            limits,
            connections: AtomicUsize::new(0),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    /// The broker is stopping: every connection closes with 1001 (going away), so
    /// clients know to reconnect rather than seeing the socket just drop.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn admit(self: &Arc<Self>) -> ApiResult<ConnectionSlot> {
        let max = self.limits.max_connections;
        let admitted = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::TOO_MANY_REQUESTS,
                format!("Too many WebSocket connections: websocket.max.connections = {max}"),
            ));
        }
        metrics::gauge!("troupe_websocket_connections").increment(1.0);
        Ok(ConnectionSlot(self.clone()))
    }
}

/// One admitted connection; the count goes down when it is dropped.
pub(crate) struct ConnectionSlot(Arc<WsHub>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("troupe_websocket_connections").decrement(1.0);
    }
}
