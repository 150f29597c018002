//! A Kafka-protocol client to another broker: what this broker forwards a produce or
//! a read to the partition's leader with (and, with replication, what followers fetch
//! with) — Kafka's inter-broker network client, in small.
//!
//! One connection per peer, requests pipelined on it, at most `max_inflight` at once
//! (a semaphore: callers past it wait their turn, bounded by their timeout), each
//! answer matched to its request by correlation id. A peer answers a connection's
//! requests in order (Kafka's rule), so a call that may wait at the peer — a
//! long-polling fetch, a join waiting for its rebalance — goes
//! [`PeerClient::call_waiting`]: on a connection of its own from a small pool, at most
//! `max_inflight` of them, so nothing queues behind its wait. Every call has a timeout. A
//! broken connection fails the calls waiting on it, and the next call connects
//! again. Requests carry the client id `troupe-broker/<cluster id>/<node id>`, so the
//! peer knows which node asks and refuses one of another cluster.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};

/// The prefix of the client id brokers send each other.
pub const BROKER_CLIENT_ID_PREFIX: &str = "troupe-broker/";
/// The largest response accepted from a peer (Kafka's `socket.request.max.bytes`
/// default): a larger declared length is a broken peer, not a buffer to allocate.
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("cannot reach broker at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to broker at {address}: {reason}")]
    NotConnected { address: String, reason: String },
    #[error("broker at {address} did not answer within {timeout_ms} ms")]
    Timeout { address: String, timeout_ms: u128 },
    #[error("broker at {address} answered what cannot be read: {reason}")]
    Protocol { address: String, reason: String },
}

/// `troupe-broker/<cluster id>/<node id>`: who a request between brokers is from.
pub fn broker_client_id(cluster_id: &str, node_id: i32) -> String {
    format!("{BROKER_CLIENT_ID_PREFIX}{cluster_id}/{node_id}")
}

/// The cluster id and node id of a client id made by [`broker_client_id`].
pub fn parse_broker_client_id(client_id: &str) -> Option<(&str, i32)> {
    let rest = client_id.strip_prefix(BROKER_CLIENT_ID_PREFIX)?;
    let (cluster, node) = rest.rsplit_once('/')?;
    Some((cluster, node.parse().ok()?))
}

#[derive(Clone)]
pub struct PeerClient {
    inner: Arc<Inner>,
}

/// TLS to other brokers (an inter-broker or CONTROLLER listener that is SSL): the
/// client side's config — the CAs a peer's certificate must chain to, and this
/// broker's own certificate when peers ask for one.
#[derive(Clone)]
pub struct PeerTls(pub Arc<rustls::ClientConfig>);

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PartialEq for PeerTls {
    fn eq(&self, other: &PeerTls) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PeerTls {}

/// An HTTP client of other nodes (the voters' controller listeners, the brokers'
/// HTTP listeners): over TLS with `tls` (their certificates checked against its CAs,
/// its own shown when they ask), keeping `idle` connections per node.
pub fn http_agent(tls: Option<&PeerTls>, idle: usize) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new().max_idle_connections_per_host(idle);
    match tls {
        Some(tls) => builder.tls_config(tls.0.clone()).build(),
        None => builder.build(),
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

struct Inner {
    address: String,
    tls: Option<PeerTls>,
    client_id: StrBytes,
    slots: Semaphore,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// Connections free for the next call that waits at the peer.
    idle: Mutex<Vec<Arc<Connection>>>,
    /// Calls waiting at the peer, each on its own connection.
    waiting_calls: Semaphore,
    next_correlation_id: AtomicI32,
}

/// The connection a call went out on, so a call that times out breaks it, as Kafka
/// closes a connection whose request timed out (its answer would come late).
type Used = Mutex<Option<Arc<Connection>>>;

type Waiting = Mutex<HashMap<i32, oneshot::Sender<Bytes>>>;

struct Connection {
    writer: tokio::sync::Mutex<Writer>,
    waiting: Arc<Waiting>,
    broken: Arc<AtomicBool>,
}

impl PeerClient {
    /// A client of the broker at `address` (`host:port`), over TLS with `tls`;
    /// nothing connects until the first call.
    pub fn new(
        address: &str,
        client_id: &str,
        max_inflight: usize,
        timeout: Duration,
        tls: Option<PeerTls>,
    ) -> Self {
        PeerClient {
            inner: Arc::new(Inner {
                address: address.to_string(),
                tls,
                client_id: StrBytes::from_string(client_id.to_string()),
                slots: Semaphore::new(max_inflight.max(1)),
                timeout,
                connection: tokio::sync::Mutex::new(None),
                idle: Mutex::new(Vec::new()),
                waiting_calls: Semaphore::new(max_inflight.max(1)),
                next_correlation_id: AtomicI32::new(0),
            }),
        }
    }

    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Sends `request` in `version` and answers its response, within the timeout.
    pub async fn call<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, PeerError> {
        self.call_within(request, version, self.inner.timeout).await
    }

    /// [`PeerClient::call`] with its own time limit.
    pub async fn call_within<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let used = Used::default();
        let work = async {
            let _slot = self.turn(&self.inner.slots).await?;
            let connection = self.connection().await?;
            self.exchange(&connection, &used, request, version).await
        };
        self.timed(timeout, &used, work).await
    }

    /// A call that may wait at the peer (a long-polling fetch, a join waiting for its
    /// rebalance), on a connection no other call shares meanwhile.
    pub async fn call_waiting<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let used = Used::default();
        let work = async {
            let _turn = self.turn(&self.inner.waiting_calls).await?;
            let idle = self.inner.idle.lock().ok().and_then(|mut idle| {
                idle.retain(|c| !c.broken.load(Ordering::Relaxed));
                idle.pop()
            });
            let connection = match idle {
                Some(c) => c,
                None => self.connect().await?,
            };
            let answer = self.exchange(&connection, &used, request, version).await;
            if answer.is_ok() && !connection.broken.load(Ordering::Relaxed) {
                if let Ok(mut idle) = self.inner.idle.lock() {
                    idle.push(connection);
                }
            }
            answer
        };
        self.timed(timeout, &used, work).await
    }

    /// A permit of `limit`, once one is free.
    async fn turn<'a>(
        &self,
        limit: &'a Semaphore,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, PeerError> {
        limit
            .acquire()
            .await
            .map_err(|_| self.unreachable("client closed"))
    }

    /// `work` within `timeout`; past it, the connection it used is broken.
    async fn timed<T>(
        &self,
        timeout: Duration,
        used: &Used,
        work: impl std::future::Future<Output = Result<T, PeerError>>,
    ) -> Result<T, PeerError> {
        match tokio::time::timeout(timeout, work).await {
            Ok(answer) => answer,
            Err(_) => {
                if let Some(connection) = used.lock().ok().and_then(|mut u| u.take()) {
                    connection.broken.store(true, Ordering::Relaxed);
                }
                Err(PeerError::Timeout {
                    address: self.inner.address.clone(),
                    timeout_ms: timeout.as_millis(),
                })
            }
        }
    }

    /// Sends `request` on `connection` (noted in `used`) and decodes its answer.
    async fn exchange<R: Request>(
        &self,
        connection: &Arc<Connection>,
        used: &Used,
        request: &R,
        version: i16,
    ) -> Result<R::Response, PeerError> {
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, correlation_id)?;
        if let Ok(mut used) = used.lock() {
            *used = Some(connection.clone());
        }
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = connection.waiting.lock() {
            waiting.insert(correlation_id, tx);
        }
        let written = {
            let mut writer = connection.writer.lock().await;
            writer.write_all(&frame).await
        };
        if let Err(e) = written {
            connection.broken.store(true, Ordering::Relaxed);
            return Err(self.unreachable(&e.to_string()));
        }
        let mut body = rx
            .await
            .map_err(|_| self.unreachable("the connection closed before the answer"))?;
        let header_version = R::Response::header_version(version);
        ResponseHeader::decode(&mut body, header_version)
            .and_then(|_| R::Response::decode(&mut body, version))
            .map_err(|e| PeerError::Protocol {
                address: self.inner.address.clone(),
                reason: e.to_string(),
            })
    }

    fn unreachable(&self, reason: &str) -> PeerError {
        PeerError::Unreachable {
            address: self.inner.address.clone(),
            reason: reason.to_string(),
        }
    }

    fn encode<R: Request>(
        &self,
        request: &R,
        version: i16,
        correlation_id: i32,
    ) -> Result<Bytes, PeerError> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.inner.client_id.clone()));
        let mut body = BytesMut::new();
        body.put_i32(0);
        header
            .encode(&mut body, R::header_version(version))
            .and_then(|_| request.encode(&mut body, version))
            .map_err(|e| PeerError::Protocol {
                address: self.inner.address.clone(),
                reason: format!("cannot encode the request: {e}"),
            })?;
        let length = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&length.to_be_bytes());
        Ok(body.freeze())
    }

    /// The shared connection, or a new one if there is none or it broke.
    async fn connection(&self) -> Result<Arc<Connection>, PeerError> {
        let mut current = self.inner.connection.lock().await;
        if let Some(c) = current
            .as_ref()
            .filter(|c| !c.broken.load(Ordering::Relaxed))
        {
            return Ok(c.clone());
        }
        let connection = self.connect().await?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// The connection's halves: the TCP stream's own, or after a TLS handshake with
    /// the peer (whose certificate must name its host).
    async fn secure(&self, stream: TcpStream) -> Result<(Reader, Writer), PeerError> {
        let Some(tls) = &self.inner.tls else {
            let (reader, writer) = stream.into_split();
            return Ok((Box::new(reader), Box::new(writer)));
        };
        let refused = |reason: String| PeerError::NotConnected {
            address: self.inner.address.clone(),
            reason,
        };
        let host = self
            .inner
            .address
            .rsplit_once(':')
            .map_or(self.inner.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| refused(format!("not a TLS server name: {e}")))?;
        let connected = tokio_rustls::TlsConnector::from(tls.0.clone())
            .connect(name, stream)
            .await
            .map_err(|e| refused(format!("TLS handshake: {e}")))?;
        let (reader, writer) = tokio::io::split(connected);
        Ok((Box::new(reader), Box::new(writer)))
    }

    /// A new connection, its responses read by a task of its own.
    async fn connect(&self) -> Result<Arc<Connection>, PeerError> {
        let stream =
            TcpStream::connect(&self.inner.address)
                .await
                .map_err(|e| PeerError::NotConnected {
                    address: self.inner.address.clone(),
                    reason: e.to_string(),
                })?;
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = self.secure(stream).await?;
        let waiting: Arc<Waiting> = Arc::default();
        let broken = Arc::new(AtomicBool::new(false));
        let connection = Arc::new(Connection {
            writer: tokio::sync::Mutex::new(writer),
            waiting: waiting.clone(),
            broken: broken.clone(),
        });
        let address = self.inner.address.clone();
        tokio::spawn(async move {
            if let Err(e) = read_responses(&mut reader, &waiting).await {
                log::debug!("connection to broker {address} ended: {e}");
            }
            broken.store(true, Ordering::Relaxed);
            // Dropping the senders fails the calls still waiting.
            if let Ok(mut waiting) = waiting.lock() {
                waiting.clear();
            }
        });
        Ok(connection)
    }
}

/// Reads response frames and hands each to the call waiting for its correlation id.
async fn read_responses(reader: &mut Reader, waiting: &Waiting) -> std::io::Result<()> {
    loop {
        let length = reader.read_i32().await?;
        let length = usize::try_from(length)
            .ok()
            .filter(|l| (4..=MAX_RESPONSE_BYTES).contains(l))
            .ok_or_else(|| std::io::Error::other(format!("a response frame of {length} bytes")))?;
        let mut frame = vec![0u8; length];
        reader.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let correlation_id = frame.clone().get_i32();
        let waiter = waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&correlation_id));
        match waiter {
            // The header (correlation id first) is decoded by the caller, who knows
            // its version.
            Some(tx) => {
                let _ = tx.send(std::mem::take(&mut frame));
            }
            None => log::warn!("a response for unknown correlation id {correlation_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_client_ids_name_the_cluster_and_node() {
        let id = broker_client_id("c-1/x", 3);
        assert_eq!(parse_broker_client_id(&id), Some(("c-1/x", 3)));
        assert_eq!(parse_broker_client_id("rdkafka"), None);
        assert_eq!(parse_broker_client_id("troupe-broker/c/x"), None);
    }

    /// A peer that answers each connection's requests in order, as Kafka's brokers
    /// do, holding an ApiVersions v0 for `hold` first (a stand-in for a long poll).
    async fn in_order_peer(hold: Duration) -> String {
        use kafka_protocol::messages::{ApiVersionsResponse, RequestHeader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    while let Ok(length) = stream.read_i32().await {
                        let mut frame = vec![0u8; length as usize];
                        if stream.read_exact(&mut frame).await.is_err() {
                            return;
                        }
                        let mut frame = Bytes::from(frame);
                        let version = i16::from_be_bytes([frame[2], frame[3]]);
                        let header_version =
                            kafka_protocol::messages::ApiVersionsRequest::header_version(version);
                        let header = RequestHeader::decode(&mut frame, header_version).unwrap();
                        if version == 0 {
                            tokio::time::sleep(hold).await;
                        }
                        let mut body = BytesMut::new();
                        body.put_i32(0);
                        ResponseHeader::default()
                            .with_correlation_id(header.correlation_id)
                            .encode(&mut body, 0)
                            .unwrap();
                        ApiVersionsResponse::default()
                            .encode(&mut body, version)
                            .unwrap();
                        let n = (body.len() - 4) as i32;
                        body[..4].copy_from_slice(&n.to_be_bytes());
                        if stream.write_all(&body).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    #[actix_rt::test]
    async fn a_call_that_waits_at_the_peer_holds_up_no_other_call() {
        use kafka_protocol::messages::ApiVersionsRequest;
        let address = in_order_peer(Duration::from_secs(3)).await;
        let client = PeerClient::new(&address, "t", 4, Duration::from_secs(10), None);
        let held = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_waiting(&ApiVersionsRequest::default(), 0, Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let quick = client
            .call_within(&ApiVersionsRequest::default(), 3, Duration::from_secs(1))
            .await;
        assert!(quick.is_ok(), "{quick:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!held.is_finished(), "the held call is still waiting");
        assert!(held.await.unwrap().is_ok());
        // Its connection is reused by the next waiting call.
        let again = client
            .call_waiting(&ApiVersionsRequest::default(), 3, Duration::from_secs(1))
            .await;
        assert!(again.is_ok(), "{again:?}");
        assert_eq!(client.inner.idle.lock().unwrap().len(), 1);
    }

    #[actix_rt::test]
    async fn an_unreachable_peer_fails_fast_and_a_silent_one_times_out() {
        use kafka_protocol::messages::ApiVersionsRequest;
        // A port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        let client = PeerClient::new(&address, "t", 4, Duration::from_secs(5), None);
        let answer = client.call(&ApiVersionsRequest::default(), 3).await;
        assert!(
            matches!(answer, Err(PeerError::NotConnected { .. })),
            "{answer:?}"
        );
        // One that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let client = PeerClient::new(&address, "t", 4, Duration::from_millis(200), None);
        let answer = client.call(&ApiVersionsRequest::default(), 3).await;
        assert!(
            matches!(answer, Err(PeerError::Timeout { .. })),
            "{answer:?}"
        );
    }
}
