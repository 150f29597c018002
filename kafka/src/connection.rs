//! One client connection: frames are read within their limits, handled in the order
//! they came (the apis' first phase), and their responses written in that same order
//! by a writer that awaits each reply in turn — Kafka's ordering guarantee, with up to
//! `max_inflight_requests` requests of a connection being acknowledged at once.
//!
//! What closes a connection rather than answering it, as Kafka does: a declared
//! length below a header or above `socket.request.max.bytes` (refused before any of
//! it is read into memory; a frame's buffer grows only as its bytes arrive), a frame
//! that does not arrive whole within the request timeout, an unknown API key, a
//! version not served (except ApiVersions, which is answered UNSUPPORTED_VERSION with
//! the versions served), a request that does not decode, and no request for
//! `connections.max.idle.ms`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use troupe_actors::peer_client::parse_broker_client_id;
use troupe_actors::requests::{Engine, RequestContext};
use troupe_actors::storage::buffers::POOL;

use crate::apis::{self, api_versions, Reply, Request, Session};
use crate::codec::{decode_header, encode_response, FrameStart, FIXED_HEADER_BYTES};
use crate::ListenerConfig;

/// How much of a frame's buffer is reserved ahead of its bytes arriving.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Serves one connection, given as its reading and writing halves (a TCP stream's
/// own halves, or a TLS stream split); `certificate_user` is the subject of the
/// client's TLS certificate, if it sent one.
pub async fn serve<R, W>(
    (mut reader, mut writer): (R, W),
    peer: SocketAddr,
    certificate_user: Option<String>,
    engine: Engine,
    config: Arc<ListenerConfig>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    log::debug!("kafka: connection from {peer}");
    let (replies, mut pending) = mpsc::channel::<Reply>(config.max_inflight_requests.max(1));
    let write = async move {
        while let Some(reply) = pending.recv().await {
            match reply.await {
                Ok(Some(mut frame)) => {
                    // Vectored: the record batches a fetch read are written from
                    // where they lie.
                    if writer.write_all_buf(&mut frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::warn!("kafka: {peer}: {e}; closing the connection");
                    return;
                }
            }
        }
    };
    let auth = if config.security.uses_sasl() {
        apis::sasl::AuthState::AwaitingHandshake
    } else {
        apis::sasl::AuthState::Authenticated
    };
    let mut context = RequestContext::kafka(Some(peer), None);
    context.inter_broker = config.inter_broker;
    if let Some(user) = &certificate_user {
        log::info!(
            "kafka: {peer} authenticated as User:{user} by its client certificate on {}",
            config.listener_name
        );
    }
    context.user = certificate_user;
    let session = Session {
        engine,
        context,
        config,
        auth,
        mute: Default::default(),
    };
    let read = read_requests(&mut reader, session, replies, peer);
    tokio::join!(read, write);
    log::debug!("kafka: connection from {peer} closed");
}

/// Why the reading side stopped.
enum Closed {
    Quietly,
    Because(String),
}

async fn read_requests<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut session: Session,
    replies: mpsc::Sender<Reply>,
    peer: SocketAddr,
) {
    loop {
        match next_request(reader, &mut session).await {
            Ok(reply) => {
                if replies.send(reply).await.is_err() {
                    return;
                }
            }
            Err(Closed::Quietly) => return,
            Err(Closed::Because(why)) => {
                log::warn!("kafka: closing the connection from {peer}: {why}");
                return;
            }
        }
    }
}

async fn next_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    session: &mut Session,
) -> Result<Reply, Closed> {
    let config = session.config.clone();
    if matches!(session.auth, apis::sasl::AuthState::Failed) {
        return Err(Closed::Because("authentication failed".into()));
    }
    let authenticated = session.auth.authenticated();
    // Before authenticating, a frame is capped at Kafka's 512 KiB rule.
    let max_bytes = if authenticated {
        config.max_request_bytes
    } else {
        config.max_request_bytes.min(config.sasl_max_receive_bytes)
    };
    let mut prefix = [0u8; 4];
    match timeout(config.idle_timeout, reader.read_exact(&mut prefix)).await {
        Err(_) => {
            return Err(Closed::Because(format!(
                "idle for {} ms (connections.max.idle.ms)",
                config.idle_timeout.as_millis()
            )))
        }
        Ok(Err(_)) => return Err(Closed::Quietly),
        Ok(Ok(_)) => {}
    }
    let declared = i32::from_be_bytes(prefix);
    let length = usize::try_from(declared).unwrap_or(0);
    if length < FIXED_HEADER_BYTES || length > max_bytes {
        let limit = if authenticated {
            "socket.request.max.bytes"
        } else {
            "sasl.server.max.receive.size, before authenticating"
        };
        return Err(Closed::Because(format!(
            "a request frame of {declared} bytes ({limit} = {max_bytes})"
        )));
    }
    let mut frame = match timeout(config.request_timeout, read_frame(reader, length)).await {
        Err(_) => {
            return Err(Closed::Because(format!(
                "a {length}-byte request did not arrive within {} ms",
                config.request_timeout.as_millis()
            )))
        }
        Ok(Err(_)) => return Err(Closed::Quietly),
        Ok(Ok(frame)) => frame,
    };
    let start = FrameStart::read(&frame).map_err(|e| Closed::Because(e.to_string()))?;
    let key = ApiKey::try_from(start.api_key)
        .map_err(|_| Closed::Because(format!("unknown API key {}", start.api_key)))?;
    let Some((min, max)) = apis::supported(key) else {
        return Err(Closed::Because(format!("{key:?} is not served")));
    };
    if !(min..=max).contains(&start.api_version) {
        if key == ApiKey::ApiVersions {
            // Answered in version 0, which every client reads.
            let answer = encode_response(
                start.correlation_id,
                0,
                &api_versions::unsupported(),
                "ApiVersions",
            );
            return Ok(Box::pin(async move { answer.map(Some) }));
        }
        return Err(Closed::Because(format!(
            "{key:?} v{} is not served (v{min} to v{max} are)",
            start.api_version
        )));
    }
    let header = decode_header(&mut frame, key, start.api_version)
        .map_err(|e| Closed::Because(e.to_string()))?;
    if session.context.client_id.is_none() {
        let client_id = header.client_id.as_ref().map(|c| c.to_string());
        // Another broker names its cluster: one of another cluster is refused.
        if let Some((cluster, node)) = client_id.as_deref().and_then(parse_broker_client_id) {
            let ours = session.engine.image().cluster_id.clone();
            if cluster != ours {
                return Err(Closed::Because(format!(
                    "broker {node} of cluster {cluster} is not of this cluster ({ours})"
                )));
            }
        }
        session.context.client_id = client_id;
    }
    let request = Request {
        key,
        version: start.api_version,
        correlation_id: start.correlation_id,
        body: frame,
    };
    let sasl = matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
    if !authenticated && !sasl && key != ApiKey::ApiVersions {
        return Err(Closed::Because(format!(
            "{key:?} before authenticating (only ApiVersions, SaslHandshake and SaslAuthenticate are served until then)"
        )));
    }
    // A throttled client's next request waits out its throttle (KIP-219's mute).
    session.mute.wait().await;
    let reply = if sasl {
        apis::handle_sasl(session, request).await
    } else {
        apis::handle(session, request).await
    };
    reply.map_err(|e| Closed::Because(e.to_string()))
}

/// Reads a frame of `length` bytes, its buffer growing as the bytes arrive (a client
/// that declares much and sends little holds little memory). The buffer is a kept one
/// (see `troupe_actors::storage::buffers`) and goes back once the request is done.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, length: usize) -> std::io::Result<Bytes> {
    let mut buf = POOL.take(length.min(READ_CHUNK_BYTES));
    while buf.len() < length {
        let wanted = length - buf.len();
        // Grow geometrically (at most doubling what has arrived), not a chunk at a
        // time: a 1 MiB frame must not be copied sixteen times as it grows.
        buf.reserve(wanted.min(READ_CHUNK_BYTES.max(buf.len())));
        let read = (&mut *reader)
            .take(wanted as u64)
            .read_buf(&mut buf)
            .await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(POOL.shared(buf))
}
