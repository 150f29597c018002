//! The quorum's transport: Raft's three RPCs as JSON over HTTP POST between the
//! voters' controller listeners, both ends of the wire.
//!
//! ```text
//! POST http://{voter addr}/raft/append     AppendEntriesRequest   → Result<AppendEntriesResponse, RaftError>
//! POST http://{voter addr}/raft/vote       VoteRequest            → Result<VoteResponse, RaftError>
//! POST http://{voter addr}/raft/snapshot   InstallSnapshotRequest → Result<InstallSnapshotResponse, RaftError>
//!      troupe-cluster-id: <cluster id>     troupe-node-id: <sender's node id>
//! ```
//!
//! Bodies are openraft's own types as JSON (its `serde` feature). A Raft-level answer
//! — including Raft's refusals — is a 200 with `{"Ok": …}` or `{"Err": …}`; a request
//! the receiver will not hand to Raft (another cluster, a sender that is not a
//! voter, a body that does not decode, Raft stopped) is a 4xx/5xx with a JSON error
//! (the controller listener's), which the sender takes as the peer being unreachable
//! and backs off. Snapshots travel in chunks of `snapshot_chunk_bytes` (openraft's
//! `Chunked` transport, one InstallSnapshot RPC per chunk).
//!
//! **Client**: openraft's futures must be `Send`, and awc's are not, so each RPC is a
//! blocking `ureq` request on the quorum runtime's blocking pool, one `ureq::Agent`
//! (connection pool) per voter, the RPC's `hard_ttl` its time limit. An AppendEntries
//! body above `max_rpc_bytes` is not sent: openraft hears `PayloadTooLarge` and
//! sends fewer entries.
//!
//! **Server**: [`Quorum::handle_append`], [`Quorum::handle_vote`] and
//! [`Quorum::handle_snapshot`] check the headers, decode (garbage is a 400, never a
//! panic) and call Raft; the web crate's `controller_listener` mounts them.

use crate::peer_client::PeerTls;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Quorum, QuorumConfig, TypeConfig};

pub const CLUSTER_ID_HEADER: &str = "troupe-cluster-id";
pub const NODE_ID_HEADER: &str = "troupe-node-id";
pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

/// How much of a refusal's body is kept for the log.
const REFUSAL_MESSAGE_BYTES: u64 = 4 << 10;

/// Idle connections kept per voter: replication, votes and snapshot chunks.
const IDLE_CONNECTIONS_PER_VOTER: usize = 4;

type NodeId = u64;

/// Makes a [`PeerClient`] per voter, reusing each voter's agent (its connections).
pub(super) struct HttpNetwork {
    node_id: NodeId,
    cluster_id: Arc<str>,
    max_rpc_bytes: usize,
    agents: BTreeMap<NodeId, (String, ureq::Agent)>,
    tls: Option<PeerTls>,
}

impl HttpNetwork {
    pub(super) fn new(config: &QuorumConfig) -> Self {
        HttpNetwork {
            node_id: config.node_id,
            cluster_id: Arc::from(config.cluster_id.as_str()),
            max_rpc_bytes: config.max_rpc_bytes,
            agents: BTreeMap::new(),
            tls: config.tls.clone(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let agent = match self.agents.get(&target) {
            Some((addr, agent)) if *addr == node.addr => agent.clone(),
            _ => {
                let agent =
                    crate::peer_client::http_agent(self.tls.as_ref(), IDLE_CONNECTIONS_PER_VOTER);
                self.agents
                    .insert(target, (node.addr.clone(), agent.clone()));
                agent
            }
        };
        PeerClient {
            target,
            addr: node.addr.clone(),
            tls: self.tls.is_some(),
            agent,
            node_id: self.node_id.to_string(),
            cluster_id: self.cluster_id.clone(),
            max_rpc_bytes: self.max_rpc_bytes,
        }
    }
}

/// Sends RPCs to one voter.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    /// `https://`.
    tls: bool,
    agent: ureq::Agent,
    node_id: String,
    cluster_id: Arc<str>,
    max_rpc_bytes: usize,
}

/// Why an RPC got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("voter at {addr} is unreachable: {message}")]
    Unreachable { addr: String, message: String },
    #[error("voter at {addr} refused the RPC with HTTP {status}: {message}")]
    Refused {
        addr: String,
        status: u16,
        message: String,
    },
    #[error("RPC to the voter at {addr} failed: {message}")]
    Broken { addr: String, message: String },
}

impl TransportError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, BasicNode, E> {
        match self {
            // Both back off: a refusing voter (another cluster, not started) will
            // not change its mind at once.
            TransportError::Unreachable { .. } | TransportError::Refused { .. } => {
                RPCError::Unreachable(Unreachable::new(&self))
            }
            TransportError::Broken { .. } => RPCError::Network(NetworkError::new(&self)),
        }
    }
}

impl PeerClient {
    fn encode(&self, body: &impl Serialize) -> Result<Vec<u8>, TransportError> {
        serde_json::to_vec(body).map_err(|e| TransportError::Broken {
            addr: self.addr.clone(),
            message: format!("encoding: {e}"),
        })
    }

    /// POSTs `body` to `path` within `ttl` and decodes the 200's body.
    async fn post<T>(&self, path: &str, body: Vec<u8>, ttl: Duration) -> Result<T, TransportError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let call = Call {
            agent: self.agent.clone(),
            tls: self.tls,
            addr: self.addr.clone(),
            path: path.to_string(),
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.clone(),
            max_bytes: self.max_rpc_bytes,
            ttl,
        };
        let addr = self.addr.clone();
        let sent = tokio::task::spawn_blocking(move || {
            let bytes = call.post(&body)?;
            serde_json::from_slice(&bytes).map_err(|e| TransportError::Broken {
                addr: call.addr.clone(),
                message: format!("the answer does not decode: {e}"),
            })
        })
        .await;
        sent.map_err(|e| TransportError::Broken {
            addr,
            message: format!("the request's thread: {e}"),
        })?
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

/// One POST to a node's controller listener, as a blocking request (run it on a
/// blocking thread): the sender's headers, a time limit and a cap on the answer.
pub(crate) struct Call {
    pub agent: ureq::Agent,
    /// `https://` rather than `http://`.
    pub tls: bool,
    /// `host:port`.
    pub addr: String,
    pub path: String,
    pub cluster_id: Arc<str>,
    pub node_id: String,
    pub max_bytes: usize,
    pub ttl: Duration,
}

impl Call {
    /// The 200's body, or why there is none.
    pub(crate) fn post(&self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        let broken = |message: String| TransportError::Broken {
            addr: self.addr.clone(),
            message,
        };
        let scheme = if self.tls { "https" } else { "http" };
        let url = format!("{scheme}://{}{}", self.addr, self.path);
        let sent = self
            .agent
            .post(&url)
            .set(CLUSTER_ID_HEADER, &self.cluster_id)
            .set(NODE_ID_HEADER, &self.node_id)
            .set("content-type", "application/json")
            .timeout(self.ttl)
            .send_bytes(body);
        match sent {
            Ok(response) => {
                let bytes = read_limited(response, self.max_bytes as u64)
                    .map_err(|e| broken(format!("reading the answer: {e}")))?;
                if bytes.len() > self.max_bytes {
                    return Err(broken(format!("an answer above {} bytes", self.max_bytes)));
                }
                Ok(bytes)
            }
            Err(ureq::Error::Status(status, response)) => {
                let message = read_limited(response, REFUSAL_MESSAGE_BYTES)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Err(TransportError::Refused {
                    addr: self.addr.clone(),
                    status,
                    message,
                })
            }
            Err(ureq::Error::Transport(t)) => match t.kind() {
                ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => {
                    Err(TransportError::Unreachable {
                        addr: self.addr.clone(),
                        message: t.to_string(),
                    })
                }
                _ => Err(broken(t.to_string())),
            },
        }
    }
}

/// At most `limit + 1` bytes of a response's body (one more tells it was larger).
fn read_limited(response: ureq::Response, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let entries = rpc.entries.len() as u64;
        let body = self.encode(&rpc).map_err(TransportError::into_rpc)?;
        if body.len() > self.max_rpc_bytes && entries > 1 {
            // Fewer entries in proportion, at least one fewer, at least one.
            let fitting = entries * self.max_rpc_bytes as u64 / body.len() as u64;
            let hint = fitting.clamp(1, entries - 1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = self
            .post(APPEND_PATH, body, option.hard_ttl())
            .await
            .map_err(TransportError::into_rpc)?;
        answer.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let body = self.encode(&rpc).map_err(TransportError::into_rpc)?;
        let answer: Result<
            InstallSnapshotResponse<NodeId>,
            RaftError<NodeId, InstallSnapshotError>,
        > = self
            .post(SNAPSHOT_PATH, body, option.hard_ttl())
            .await
            .map_err(TransportError::into_rpc)?;
        answer.map_err(|e| self.remote(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = self.encode(&rpc).map_err(TransportError::into_rpc)?;
        let answer: Result<VoteResponse<NodeId>, RaftError<NodeId>> = self
            .post(VOTE_PATH, body, option.hard_ttl())
            .await
            .map_err(TransportError::into_rpc)?;
        answer.map_err(|e| self.remote(e))
    }
}

/// The headers a Raft RPC arrived with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerHeaders<'a> {
    pub cluster_id: Option<&'a str>,
    pub node_id: Option<&'a str>,
}

/// Why a Raft RPC was not handed to Raft; [`RpcRefusal::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcRefusal {
    /// A header missing or malformed, or a body that does not decode.
    #[error("{0}")]
    BadRequest(String),
    /// The sender belongs to another cluster.
    #[error("{0}")]
    WrongCluster(String),
    /// The sender is not one of this quorum's voters.
    #[error("{0}")]
    UnknownPeer(String),
    /// A body above `max_rpc_bytes` (the listener reading it says so).
    #[error("{0}")]
    TooLarge(String),
    /// Raft has stopped here.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl RpcRefusal {
    pub fn status(&self) -> u16 {
        match self {
            RpcRefusal::BadRequest(_) => 400,
            RpcRefusal::WrongCluster(_) | RpcRefusal::UnknownPeer(_) => 403,
            RpcRefusal::TooLarge(_) => 413,
            RpcRefusal::Unavailable(_) => 503,
            RpcRefusal::Internal(_) => 500,
        }
    }
}

impl Quorum {
    /// An AppendEntries RPC from the leader: answers the JSON of Raft's answer.
    pub async fn handle_append(
        &self,
        peer: PeerHeaders<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, RpcRefusal> {
        self.check_peer(peer)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(body)?;
        answer(self.raft().append_entries(rpc).await)
    }

    /// A RequestVote RPC from a candidate.
    pub async fn handle_vote(
        &self,
        peer: PeerHeaders<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, RpcRefusal> {
        self.check_peer(peer)?;
        let rpc: VoteRequest<NodeId> = decode(body)?;
        answer(self.raft().vote(rpc).await)
    }

    /// One chunk of a snapshot from the leader; the last one installs it.
    pub async fn handle_snapshot(
        &self,
        peer: PeerHeaders<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, RpcRefusal> {
        self.check_peer(peer)?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(body)?;
        answer(self.raft().install_snapshot(rpc).await)
    }

    /// The sender must be another voter of this cluster.
    fn check_peer(&self, peer: PeerHeaders<'_>) -> Result<NodeId, RpcRefusal> {
        let node_id = self.check_sender(peer)?;
        let config = self.config();
        if node_id == config.node_id || !config.voters.contains_key(&node_id) {
            return Err(RpcRefusal::UnknownPeer(format!(
                "node {node_id} is not another voter of this quorum"
            )));
        }
        Ok(node_id)
    }

    /// The sender must name this cluster and itself: answers its node id.
    pub fn check_sender(&self, peer: PeerHeaders<'_>) -> Result<NodeId, RpcRefusal> {
        let config = self.config();
        let cluster_id = peer.cluster_id.ok_or_else(|| {
            RpcRefusal::BadRequest(format!("the {CLUSTER_ID_HEADER} header is missing"))
        })?;
        if cluster_id != config.cluster_id {
            return Err(RpcRefusal::WrongCluster(format!(
                "this is cluster {}, not {cluster_id}",
                config.cluster_id
            )));
        }
        let node_id = peer
            .node_id
            .ok_or_else(|| {
                RpcRefusal::BadRequest(format!("the {NODE_ID_HEADER} header is missing"))
            })?
            .trim()
            .parse::<NodeId>()
            .map_err(|e| RpcRefusal::BadRequest(format!("the {NODE_ID_HEADER} header: {e}")))?;
        Ok(node_id)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcRefusal> {
    serde_json::from_slice(body)
        .map_err(|e| RpcRefusal::BadRequest(format!("the RPC body does not decode: {e}")))
}

/// Raft's answer as the JSON the sender decodes; Raft having stopped is a 503.
fn answer<T, E>(result: Result<T, RaftError<NodeId, E>>) -> Result<Vec<u8>, RpcRefusal>
where
    T: Serialize,
    E: Serialize + std::error::Error,
{
    if let Err(RaftError::Fatal(fatal)) = &result {
        return Err(RpcRefusal::Unavailable(format!(
            "Raft has stopped: {fatal}"
        )));
    }
    serde_json::to_vec(&result).map_err(|e| RpcRefusal::Internal(e.to_string()))
}
