//! `GET /ws`: live consumption and streaming produce over one WebSocket (the
//! protocol is documented in `docs/websocket.md`).
//!
//! A connection holds subscriptions — to a topic's partitions from a chosen
//! position, or as a member of a consumer group — and receives records the moment
//! they are committed: each partition's live tail pushes them (no polling loop), and
//! subscribers at the same position share one log read. It may also produce, with
//! one acknowledgement per record.
//!
//! The pieces: [`protocol`] parses client frames and renders server frames;
//! [`outbox`] is the connection's bounded send buffer (backpressure and slow-client
//! detection); [`subscription`] runs the per-partition delivery tasks and their flow
//! control; [`session`] is the connection itself. This module checks the upgrade
//! (allowed origins, the connection limit) and starts the session.

pub mod binary;
mod outbox;
pub mod protocol;
mod session;
mod subscription;

use std::any::Any;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use actix_web::body::{BodyStream, BoxBody};
use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::{codes, ApiError, ApiResult};
use crate::state::AppState;
use crate::ws_hub::ConnectionSlot;
pub use crate::ws_hub::{WsHub, WsLimits};

/// A browser may open a socket from the broker's own origin, from an allowed one, or
/// (for non-browser clients, which send no `Origin`) from anywhere. Everything else
/// is refused before the upgrade: a page on another site must not ride on a user's
/// access to the broker.
fn check_origin(req: &HttpRequest, limits: &WsLimits) -> ApiResult<()> {
    let Some(origin) = req.headers().get("origin") else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
    if limits
        .allowed_origins
        .iter()
        .any(|o| o == "*" || *o == origin)
    {
        return Ok(());
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host == host {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        codes::FORBIDDEN_ORIGIN,
        format!("WebSocket connections from origin '{origin}' are not allowed (websocket.allowed.origins)"),
    ))
}

/// The descriptor of an HTTP connection's socket, noted when the connection is
/// accepted, so that a WebSocket on it can end the TCP connection as soon as its close
/// handshake is done (the HTTP layer would otherwise linger for the client to hang up).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSocket(RawFd);

/// For `HttpServer::on_connect`: notes the socket of each connection, plain TCP or
/// TLS (`https://`) over TCP.
pub fn note_connection(connection: &dyn Any, data: &mut Extensions) {
    type Tcp = actix_web::rt::net::TcpStream;
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<Tcp>;
    if let Some(tcp) = connection.downcast_ref::<Tcp>() {
        data.insert(ConnectionSocket(tcp.as_raw_fd()));
    } else if let Some(tls) = connection.downcast_ref::<Tls>() {
        data.insert(ConnectionSocket(tls.get_ref().0.as_raw_fd()));
        // Mutual TLS: the client certificate's subject is who asks.
        if let Some(subject) = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| troupe_actors::auth::certificate_subject(cert))
        {
            data.insert(crate::auth::CertificateUser(subject));
        }
    }
}

impl ConnectionSocket {
    /// A descriptor of its own for the socket (closed when the WebSocket's body ends).
    fn duplicate(self) -> Option<TcpStream> {
        // SAFETY: called only from a request handler running on the connection this
        // descriptor was noted for: the HTTP layer owns that socket and keeps it open
        // at least until the handler has answered, so the descriptor is open and is
        // this connection's socket.
        let fd = unsafe { BorrowedFd::borrow_raw(self.0) };
        fd.try_clone_to_owned().ok().map(TcpStream::from)
    }
}

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let hub = state.ws.clone();
    check_origin(&req, &hub.limits)?;
    let slot = hub.admit()?;
    // actix-ws makes the handshake answer and parses client frames; what the broker
    // sends goes through its own body (the connection's send buffer), not actix-ws's
    // session, whose queue the send buffer could not count.
    let (response, _, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("Not a WebSocket upgrade request: {e}")))?;
    let stream = stream
        .max_frame_size(hub.limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(hub.limits.max_frame_bytes);
    let socket = req
        .conn_data::<ConnectionSocket>()
        .and_then(|s| s.duplicate());
    if let Some(socket) = &socket {
        // Records are pushed as they commit, in frames written whole: Nagle's
        // algorithm would only hold a small frame back until the client's (delayed)
        // acknowledgement of the previous one.
        let _ = socket.set_nodelay(true);
    }
    let (response, upgrade_body) = response.into_parts();
    let (outbox, body) = outbox::Outbox::new(hub.limits.send_buffer_bytes, socket, upgrade_body);
    let state = state.into_inner();
    let ctx = crate::auth::Caller::of(&req, troupe_actors::requests::Listener::WebSocket).0;
    actix_web::rt::spawn(session::run(outbox, stream, state, ctx, slot));
    Ok(response.set_body(BoxBody::new(BodyStream::new(body))))
}
