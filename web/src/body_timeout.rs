//! A deadline on request bodies, so a client that trickles a body (or stops sending
//! mid-body) cannot hold a connection, a worker's buffer and a handler forever.
//! A body of known length must arrive whole within `http.request.body.timeout.ms`; a
//! chunked body (Confluent's streamed produce keeps one open on purpose) may stay open,
//! but may not go silent for longer than that between two chunks. WebSocket upgrades
//! are left alone: their "body" is the socket, which has its own idle timeout.
//!
//! The body stream ends with an `io::ErrorKind::TimedOut` error, which the body
//! readers turn into 408 / 40801.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::state::AppState;

pub async fn limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout_ms = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.limits.body_timeout_ms);
    // Only a WebSocket handshake is exempt: any other Upgrade header is ignored here,
    // so it cannot be used to send a slow body.
    let upgrade = req.method() == actix_web::http::Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if let (Some(timeout_ms), false) = (timeout_ms, upgrade) {
        let chunked = req
            .headers()
            .get(header::TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let timeout = Duration::from_millis(timeout_ms);
        let inner = req.take_payload();
        let timed = TimedPayload {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            idle: chunked.then_some(timeout),
            rearm: false,
            expired: false,
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(req).await
}

struct TimedPayload {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    /// For chunked bodies: the deadline moves on with every chunk.
    idle: Option<Duration>,
    /// A chunk was handed out: the idle deadline starts again when the reader next
    /// asks for one (the time the broker spends on a chunk is not the client's).
    rearm: bool,
    expired: bool,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let (true, Some(idle)) = (this.rearm, this.idle) {
            this.rearm = false;
            this.sleep.as_mut().reset(Instant::now() + idle);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.rearm = true;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired = true;
                    let what = if this.idle.is_some() {
                        "no part of the request body arrived within http.request.body.timeout.ms"
                    } else {
                        "the request body did not arrive within http.request.body.timeout.ms"
                    };
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        what,
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Whether a body read failed because of this deadline.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
