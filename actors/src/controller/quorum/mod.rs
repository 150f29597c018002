//! The metadata quorum: Kafka's KRaft `__cluster_metadata` log, replicated by Raft
//! (openraft 0.9) among the cluster's voters. A committed entry is a batch of
//! [`MetadataRecord`]s; every voter applies committed batches, in log order, to its
//! [`ClusterState`], and publishes the result ([`Applied`]) on a watch, so the rest of
//! the node reacts to committed metadata and never to a proposal.
//!
//! This module is glue: openraft does the consensus, [`ClusterState`] the meaning.
//! What is ours:
//!
//! - [`log_store`]: the Raft log and vote on disk (length + CRC-32C framed JSON
//!   entries, fsynced before Raft hears they are durable).
//! - [`state_machine`]: `ClusterState` as Raft's state machine, and its snapshots.
//! - [`network`]: the transport — Raft's RPCs as JSON over HTTP POST to the voters'
//!   controller listeners (`/raft/append`, `/raft/vote`, `/raft/snapshot`), client and
//!   server side.
//! - [`Quorum`], here: the handle the node holds — start, propose, watch what is
//!   applied and who leads, status, shutdown.
//!
//! Raft runs on a tokio runtime of its own (one worker thread, named
//! `quorum-<node id>`): its heartbeats and elections are never late because an actor
//! on the caller's arbiter is busy, and the handle works from any runtime (actix's
//! arbiters, tests). Membership is static: the voters are configuration, and every
//! voter initialises the quorum with all of them on a fresh directory.

pub mod log_store;
pub mod network;
pub mod state_machine;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::records::MetadataRecord;
use super::state::ClusterState;
use log_store::LogStore;
use network::HttpNetwork;
use state_machine::StateMachine;

pub use network::{PeerHeaders, RpcRefusal, CLUSTER_ID_HEADER, NODE_ID_HEADER};

openraft::declare_raft_types!(
    /// The quorum's Raft types: a log entry carries a [`MetadataBatch`], applying it
    /// answers a [`BatchOutcome`]; voters are `u64` ids with their controller
    /// listener's `host:port` as [`BasicNode::addr`].
    pub TypeConfig:
        D = MetadataBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Raft over our types.
pub type Raft = openraft::Raft<TypeConfig>;

/// What one log entry proposes: records that apply together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

/// What applying a committed batch did. A refused batch is still in the log (it was
/// committed) but changed nothing, on every voter alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOutcome {
    Applied,
    /// The state refused the batch: the [`MetadataError`](super::MetadataError)'s text.
    Refused(String),
}

/// The committed metadata as applied up to a log index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The last log entry applied (any kind: a batch, a leader's blank entry, a
    /// membership); 0 before anything is. A proposal whose `propose` answered index
    /// `i` is in `state` once `index >= i`.
    pub index: u64,
    pub state: ClusterState,
}

/// Who leads the quorum as this node last heard, and in which term: the Controller
/// starts when `leader` becomes this node, and stops when it is not (or the term
/// changes under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Leadership {
    pub leader: Option<u64>,
    pub term: u64,
}

/// A voter's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumRole {
    Leader,
    Follower,
    Candidate,
    Learner,
    ShutDown,
}

/// One voter as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoterStatus {
    /// Its controller listener, `host:port`.
    pub addr: String,
    /// On the leader: the last log index known to be on that voter (`None` until it
    /// answers). `None` on other nodes.
    pub matched_index: Option<u64>,
    /// On the leader: how many entries that voter is behind the leader's log.
    pub lag_entries: Option<u64>,
}

/// The quorum as this node sees it, from openraft's metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumStatus {
    pub node_id: u64,
    pub role: QuorumRole,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub voters: BTreeMap<u64, VoterStatus>,
}

/// How a quorum member runs. [`QuorumConfig::new`] gives the defaults; every limit
/// is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    pub node_id: u64,
    /// TLS to the voters' CONTROLLER listeners (`https://`), when they are SSL.
    pub tls: Option<crate::peer_client::PeerTls>,
    /// Every voter (this node too): id → its controller listener's `host:port`.
    pub voters: BTreeMap<u64, String>,
    /// `<data dir>/__cluster_metadata-0`: the log, vote and snapshot.
    pub dir: PathBuf,
    /// Sent with every RPC and checked on receipt: voters of another cluster are
    /// refused.
    pub cluster_id: String,
    /// A follower that hears no leader for a random time in [min, max) stands for
    /// election (Kafka's `controller.quorum.election.timeout.ms` is 1000).
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// How often the leader replicates or heartbeats; also each AppendEntries RPC's
    /// time limit (openraft's rule), so it must cover a follower's fsync.
    pub heartbeat_interval_ms: u64,
    /// How long `propose` waits for its batch to commit before answering
    /// `QuorumUnavailable`.
    pub propose_timeout_ms: u64,
    /// The time limit of one snapshot chunk's RPC (the last includes installing it).
    pub install_snapshot_timeout_ms: u64,
    /// A snapshot is built every this many applied entries, and the log behind it
    /// purged.
    pub snapshot_every_entries: u64,
    /// Entries kept behind the snapshot when purging, so a follower a little behind
    /// catches up from the log rather than a whole snapshot.
    pub entries_kept_after_snapshot: u64,
    /// The largest batch `propose` accepts, JSON-encoded.
    pub max_batch_bytes: usize,
    /// The largest RPC body sent or accepted (requests and answers).
    pub max_rpc_bytes: usize,
    /// Snapshot bytes per InstallSnapshot RPC (JSON-encoded, a chunk takes up to 4×).
    pub snapshot_chunk_bytes: u64,
    /// The most entries one AppendEntries RPC carries.
    pub max_entries_per_append: u64,
    /// This node is not a voter but an observer (a broker-only node): it never
    /// initialises the quorum or stands for election; the leader adds it as a
    /// learner when it registers, and replicates the log to it.
    pub observer: bool,
}

/// Room an RPC body needs beyond its payload (vote, log ids, membership).
const RPC_ENVELOPE_BYTES: usize = 64 << 10;

/// Blocking threads of the quorum's runtime: file I/O and one HTTP request per RPC
/// in flight (a few per peer).
const QUORUM_BLOCKING_THREADS: usize = 16;

impl QuorumConfig {
    pub fn new(
        node_id: u64,
        voters: BTreeMap<u64, String>,
        dir: PathBuf,
        cluster_id: impl Into<String>,
    ) -> Self {
        QuorumConfig {
            node_id,
            voters,
            dir,
            cluster_id: cluster_id.into(),
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            heartbeat_interval_ms: 250,
            propose_timeout_ms: 5000,
            install_snapshot_timeout_ms: 5000,
            snapshot_every_entries: 1000,
            entries_kept_after_snapshot: 100,
            max_batch_bytes: 8 << 20,
            max_rpc_bytes: 32 << 20,
            snapshot_chunk_bytes: 1 << 20,
            max_entries_per_append: 300,
            observer: false,
            tls: None,
        }
    }

    fn check(&self) -> Result<(), QuorumError> {
        let invalid = |reason: String| Err(QuorumError::InvalidConfig(reason));
        if self.observer && self.voters.contains_key(&self.node_id) {
            return invalid(format!("node {} is a voter, not an observer", self.node_id));
        }
        if !self.observer && !self.voters.contains_key(&self.node_id) {
            return invalid(format!(
                "node {} is not among the voters {:?}",
                self.node_id,
                self.voters.keys().collect::<Vec<_>>()
            ));
        }
        if let Some((id, _)) = self.voters.iter().find(|(_, addr)| addr.trim().is_empty()) {
            return invalid(format!("voter {id} has no address"));
        }
        if self.cluster_id.is_empty() {
            return invalid("the cluster id is empty".into());
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_min_ms
        {
            return invalid(format!(
                "the heartbeat interval ({} ms) must be above 0 and below the election timeout ({} ms)",
                self.heartbeat_interval_ms, self.election_timeout_min_ms
            ));
        }
        if self.propose_timeout_ms == 0 || self.install_snapshot_timeout_ms == 0 {
            return invalid("timeouts must be above 0".into());
        }
        if self.snapshot_every_entries == 0 || self.max_entries_per_append == 0 {
            return invalid("snapshot and append entry counts must be above 0".into());
        }
        if self.max_batch_bytes + RPC_ENVELOPE_BYTES > self.max_rpc_bytes {
            return invalid(format!(
                "max_rpc_bytes ({}) must hold a batch of max_batch_bytes ({}) and its envelope",
                self.max_rpc_bytes, self.max_batch_bytes
            ));
        }
        let chunk_rpc_bytes = (self.snapshot_chunk_bytes as usize)
            .saturating_mul(4)
            .saturating_add(RPC_ENVELOPE_BYTES);
        if self.snapshot_chunk_bytes == 0 || chunk_rpc_bytes > self.max_rpc_bytes {
            return invalid(format!(
                "a snapshot chunk of {} bytes does not fit an RPC of max_rpc_bytes ({})",
                self.snapshot_chunk_bytes, self.max_rpc_bytes
            ));
        }
        Ok(())
    }

    fn raft_config(&self) -> Result<openraft::Config, QuorumError> {
        let config = openraft::Config {
            cluster_name: self.cluster_id.clone(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_interval_ms,
            install_snapshot_timeout: self.install_snapshot_timeout_ms,
            max_payload_entries: self.max_entries_per_append,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            // A follower further behind than a snapshot's worth gets the snapshot.
            replication_lag_threshold: self
                .snapshot_every_entries
                .saturating_add(self.entries_kept_after_snapshot)
                .saturating_mul(2),
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::InvalidConfig(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("invalid quorum configuration: {0}")]
    InvalidConfig(String),
    #[error("quorum storage at {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("quorum storage at {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the quorum could not start: {0}")]
    Start(String),
}

impl QuorumError {
    pub(crate) fn storage(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| QuorumError::Storage { path, source }
    }
}

/// Why a proposal did not commit (or committed and was refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes; `leader` is whom this node believes leads (`None`
    /// during an election).
    #[error("this node is not the quorum leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// Committed, but the state refused the batch: it changed nothing anywhere.
    #[error("the metadata batch was refused: {0}")]
    Refused(String),
    /// Before appending, the leader heard from no majority of voters (for up to
    /// `CHECK_ROUNDS` heartbeat intervals): the batch was never written anywhere, so it
    /// can never commit. `answered` counts the leader itself.
    #[error("only voters {answered:?} of {voters} are reachable; nothing was proposed")]
    NoMajority { answered: Vec<u64>, voters: usize },
    /// Appended, but no commit within the timeout: the majority went away after the
    /// leader heard from it. The batch may still commit later; watch `applied()`.
    #[error("the quorum did not commit within {timeout_ms} ms; the batch may still commit")]
    QuorumUnavailable { timeout_ms: u64 },
    #[error("the metadata batch is {bytes} bytes, above the limit of {max_bytes}")]
    TooLarge { bytes: usize, max_bytes: usize },
    /// Raft stopped: shut down, or a storage failure made it stop.
    #[error("the quorum has stopped: {0}")]
    Stopped(String),
}

/// A running quorum member. Clones share it.
#[derive(Clone)]
pub struct Quorum {
    inner: Arc<Inner>,
}

struct Inner {
    config: QuorumConfig,
    raft: Raft,
    applied: watch::Receiver<Arc<Applied>>,
    leadership: watch::Receiver<Leadership>,
    handle: tokio::runtime::Handle,
    /// Connections to the other voters' controller listeners for requests that are
    /// not Raft's (a broker asking the active controller).
    agent: ureq::Agent,
    /// Taken by `shutdown` (or the last drop).
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let runtime = match self.runtime.get_mut() {
            Ok(runtime) => runtime.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        // Not `drop`: dropping a runtime inside another one's task panics.
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Quorum {
    /// Opens the directory (replaying the snapshot and the log's committed entries),
    /// starts Raft on the quorum's runtime and, on a fresh directory, initialises the
    /// quorum with every voter (voters doing so at once agree; a refusal because the
    /// quorum already is initialised is expected and ignored).
    pub async fn start(config: QuorumConfig) -> Result<Quorum, QuorumError> {
        config.check()?;
        let raft_config = Arc::new(config.raft_config()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(QUORUM_BLOCKING_THREADS)
            .thread_name(format!("quorum-{}", config.node_id))
            .enable_all()
            .build()
            .map_err(QuorumError::storage(&config.dir))?;
        let handle = runtime.handle().clone();
        let started = handle
            .spawn(start_raft(config.clone(), raft_config))
            .await
            .map_err(|e| QuorumError::Start(e.to_string()))
            .and_then(|started| started);
        let (raft, applied, leadership) = match started {
            Ok(started) => started,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        log::info!(
            "quorum: node {} started in {} with voters {:?}",
            config.node_id,
            config.dir.display(),
            config.voters
        );
        let agent = crate::peer_client::http_agent(config.tls.as_ref(), 1);
        Ok(Quorum {
            inner: Arc::new(Inner {
                config,
                raft,
                applied,
                leadership,
                handle,
                agent,
                runtime: Mutex::new(Some(runtime)),
            }),
        })
    }

    pub fn node_id(&self) -> u64 {
        self.inner.config.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.config.cluster_id
    }

    /// The largest RPC body the controller listener should accept.
    pub fn max_rpc_bytes(&self) -> usize {
        self.inner.config.max_rpc_bytes
    }

    /// Proposes `records` as one batch and waits, at most `propose_timeout_ms`, for it
    /// to commit and apply here. Answers the batch's log index.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, ProposeError> {
        let batch = MetadataBatch { records };
        let bytes = serde_json::to_vec(&batch)
            .map(|b| b.len())
            .map_err(|e| ProposeError::Refused(format!("the batch does not encode: {e}")))?;
        let max_bytes = self.inner.config.max_batch_bytes;
        if bytes > max_bytes {
            return Err(ProposeError::TooLarge { bytes, max_bytes });
        }
        let raft = self.inner.raft.clone();
        let timeout_ms = self.inner.config.propose_timeout_ms;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let retry = Duration::from_millis(self.inner.config.heartbeat_interval_ms);
        let (me, voters) = (self.node_id(), self.inner.config.voters.len());
        // The timers run on the quorum's runtime, so callers need none of their own.
        let written = self
            .inner
            .handle
            .spawn(async move {
                // A leader that has lost its majority must not append: the entry would
                // stay in its log and commit whenever the majority returns, long after
                // the caller was told the change failed. So it first confirms it still
                // hears a majority (Raft's leadership check), until the deadline.
                confirm_majority(&raft, deadline, retry, me, voters).await?;
                match tokio::time::timeout_at(deadline, raft.client_write(batch)).await {
                    Ok(written) => written.map_err(write_refused),
                    Err(_elapsed) => Err(ProposeError::QuorumUnavailable { timeout_ms }),
                }
            })
            .await;
        match written {
            Err(e) => Err(ProposeError::Stopped(e.to_string())),
            Ok(Ok(response)) => match response.data {
                BatchOutcome::Applied => Ok(response.log_id.index),
                BatchOutcome::Refused(reason) => Err(ProposeError::Refused(reason)),
            },
            Ok(Err(e)) => Err(e),
        }
    }

    /// The committed metadata, republished after every apply, snapshot install and at
    /// start; its index never goes backwards.
    pub fn applied(&self) -> watch::Receiver<Arc<Applied>> {
        self.inner.applied.clone()
    }

    /// Who leads, republished when the leader or the term changes.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.inner.leadership.clone()
    }

    pub fn status(&self) -> QuorumStatus {
        let metrics = self.inner.raft.metrics().borrow().clone();
        status_of(&metrics)
    }

    /// Stops Raft (its RPC handlers then answer 503) and the quorum's runtime.
    /// Idempotent.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            log::warn!(
                "quorum: node {}: Raft did not stop cleanly: {e}",
                self.node_id()
            );
        }
        let runtime = match self.inner.runtime.lock() {
            Ok(mut runtime) => runtime.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
            log::info!("quorum: node {} stopped", self.node_id());
        }
    }

    /// POSTs `body` to `path` on voter `target`'s controller listener (with this
    /// node's cluster and node id), within `ttl`: the 200's body, or why not.
    pub(crate) async fn call_voter(
        &self,
        target: u64,
        path: &str,
        body: Vec<u8>,
        ttl: Duration,
    ) -> Result<Vec<u8>, String> {
        let config = &self.inner.config;
        let addr = config
            .voters
            .get(&target)
            .ok_or_else(|| format!("node {target} is not a voter"))?;
        let call = network::Call {
            agent: self.inner.agent.clone(),
            tls: config.tls.is_some(),
            addr: addr.clone(),
            path: path.to_string(),
            cluster_id: Arc::from(config.cluster_id.as_str()),
            node_id: config.node_id.to_string(),
            max_bytes: config.max_rpc_bytes,
            ttl,
        };
        self.inner
            .handle
            .spawn_blocking(move || call.post(&body).map_err(|e| e.to_string()))
            .await
            .map_err(|e| format!("the request's thread: {e}"))?
    }

    /// Whether this node votes (else it observes, as a learner).
    pub fn is_voter(&self) -> bool {
        !self.inner.config.observer
    }

    /// The voters' ids.
    pub fn voter_ids(&self) -> Vec<u64> {
        self.inner.config.voters.keys().copied().collect()
    }

    /// On the leader: makes node `id` a learner reached at `addr` (an observer's
    /// controller listener), so the log is replicated to it; nothing to do when it
    /// already is one at that address. Answers once the membership change is
    /// committed.
    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<(), ProposeError> {
        if self.inner.config.voters.contains_key(&id) {
            return Ok(());
        }
        let known = self
            .inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .nodes()
            .any(|(n, node)| *n == id && node.addr == addr);
        if known {
            return Ok(());
        }
        let raft = self.inner.raft.clone();
        let node = BasicNode::new(addr);
        let timeout = Duration::from_millis(self.inner.config.propose_timeout_ms);
        let added =
            self.inner
                .handle
                .spawn(async move {
                    tokio::time::timeout(timeout, raft.add_learner(id, node, false)).await
                })
                .await;
        match added {
            Err(e) => Err(ProposeError::Stopped(e.to_string())),
            Ok(Err(_elapsed)) => Err(ProposeError::QuorumUnavailable {
                timeout_ms: timeout.as_millis() as u64,
            }),
            Ok(Ok(Ok(_))) => {
                log::info!("quorum: node {id} (at {addr}) added as a learner");
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(write_refused(e)),
        }
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub(crate) fn config(&self) -> &QuorumConfig {
        &self.inner.config
    }
}

type Started = (
    Raft,
    watch::Receiver<Arc<Applied>>,
    watch::Receiver<Leadership>,
);

/// On the quorum's runtime: opens storage, starts Raft, initialises a fresh quorum.
async fn start_raft(
    config: QuorumConfig,
    raft_config: Arc<openraft::Config>,
) -> Result<Started, QuorumError> {
    let dir = config.dir.clone();
    let (log_store, (state_machine, applied)) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(QuorumError::storage(&dir))?;
        Ok::<_, QuorumError>((LogStore::open(&dir)?, StateMachine::open(&dir)?))
    })
    .await
    .map_err(|e| QuorumError::Start(e.to_string()))??;
    let network = HttpNetwork::new(&config);
    let raft = Raft::new(
        config.node_id,
        raft_config,
        network,
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| QuorumError::Start(e.to_string()))?;
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| QuorumError::Start(e.to_string()))?;
    if !initialized && !config.observer {
        let members: BTreeMap<u64, BasicNode> = config
            .voters
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => log::info!("quorum: node {} initialised the quorum", config.node_id),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                log::debug!("quorum: already initialised: {e}")
            }
            Err(e) => return Err(QuorumError::Start(e.to_string())),
        }
    }
    let leadership = watch_leadership(&raft);
    Ok((raft, applied, leadership))
}

/// How many heartbeat intervals a proposal spends confirming the leader still hears a
/// majority: a busy follower may miss a round, but a leader without a quorum answers
/// soon, so its callers (and the controller's queue behind them) are not held up.
const CHECK_ROUNDS: u32 = 2;

/// Confirms, before a proposal is appended, that this leader still hears a majority of
/// the voters: one heartbeat round, repeated every `retry` (the heartbeat interval)
/// while too few answer, for `CHECK_ROUNDS` intervals at most and never past the
/// proposal's `deadline`. Nothing is appended when it fails.
async fn confirm_majority(
    raft: &Raft,
    deadline: tokio::time::Instant,
    retry: Duration,
    me: u64,
    voters: usize,
) -> Result<(), ProposeError> {
    let deadline = deadline.min(tokio::time::Instant::now() + retry * CHECK_ROUNDS);
    let mut short = ProposeError::NoMajority {
        answered: vec![me],
        voters,
    };
    loop {
        match tokio::time::timeout_at(deadline, raft.get_read_log_id()).await {
            Err(_elapsed) => return Err(short),
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => match leadership_lost(e, voters) {
                refused @ ProposeError::NoMajority { .. } => short = refused,
                other => return Err(other),
            },
        }
        if tokio::time::Instant::now() + retry >= deadline {
            return Err(short);
        }
        tokio::time::sleep(retry).await;
    }
}

/// Why the leadership check before a proposal failed.
fn leadership_lost(
    e: RaftError<u64, CheckIsLeaderError<u64, BasicNode>>,
    voters: usize,
) -> ProposeError {
    match e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => {
            ProposeError::NotLeader {
                leader: forward.leader_id,
            }
        }
        RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(short)) => {
            ProposeError::NoMajority {
                answered: short.got.into_iter().collect(),
                voters,
            }
        }
        RaftError::Fatal(fatal) => ProposeError::Stopped(fatal.to_string()),
    }
}

/// Why Raft refused a write (a batch, or a membership change adding a learner).
fn write_refused(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ProposeError::NotLeader {
                leader: forward.leader_id,
            }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ProposeError::Refused(e.to_string())
        }
        RaftError::Fatal(fatal) => ProposeError::Stopped(fatal.to_string()),
    }
}

/// Follows Raft's metrics and republishes the leader and term when they change.
fn watch_leadership(raft: &Raft) -> watch::Receiver<Leadership> {
    let mut metrics = raft.metrics();
    let leadership_of = |m: &RaftMetrics<u64, BasicNode>| Leadership {
        leader: m.current_leader,
        term: m.current_term,
    };
    let (tx, rx) = watch::channel(leadership_of(&metrics.borrow_and_update()));
    tokio::spawn(async move {
        // Ends when Raft stops (its metrics sender is dropped).
        while metrics.changed().await.is_ok() {
            let next = leadership_of(&metrics.borrow_and_update());
            tx.send_if_modified(|current| {
                let changed = *current != next;
                *current = next;
                changed
            });
        }
    });
    rx
}

fn status_of(metrics: &RaftMetrics<u64, BasicNode>) -> QuorumStatus {
    let role = match metrics.state {
        ServerState::Leader => QuorumRole::Leader,
        ServerState::Follower => QuorumRole::Follower,
        ServerState::Candidate => QuorumRole::Candidate,
        ServerState::Learner => QuorumRole::Learner,
        ServerState::Shutdown => QuorumRole::ShutDown,
    };
    let last_log_index = metrics.last_log_index;
    let voters = metrics
        .membership_config
        .nodes()
        .map(|(id, node)| {
            let matched_index = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id))
                .and_then(|matched| matched.map(|log_id| log_id.index));
            let lag_entries =
                metrics
                    .replication
                    .as_ref()
                    .map(|_| match (last_log_index, matched_index) {
                        (None, _) => 0,
                        // Entries are numbered from 0: none matched is all of them behind.
                        (Some(last), None) => last.saturating_add(1),
                        (Some(last), Some(matched)) => last.saturating_sub(matched),
                    });
            let status = VoterStatus {
                addr: node.addr.clone(),
                matched_index,
                lag_entries,
            };
            (*id, status)
        })
        .collect();
    QuorumStatus {
        node_id: metrics.id,
        role,
        leader: metrics.current_leader,
        term: metrics.current_term,
        last_log_index,
        applied_index: metrics.last_applied.map(|l| l.index),
        voters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::records::TopicRecord;

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: format!("id-{name}"),
        })
    }

    /// One voter: it elects itself and needs no transport.
    fn single_voter(dir: &std::path::Path) -> QuorumConfig {
        // Never contacted: the voter is alone.
        let voters = BTreeMap::from([(1, "127.0.0.1:9".to_string())]);
        let mut config = QuorumConfig::new(1, voters, dir.join("__cluster_metadata-0"), "c1");
        config.heartbeat_interval_ms = 50;
        config.election_timeout_min_ms = 150;
        config.election_timeout_max_ms = 300;
        config.max_batch_bytes = 1024;
        config
    }

    #[tokio::test]
    async fn a_voter_commits_answers_refusals_and_replays_its_log_at_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = single_voter(dir.path());
        let quorum = Quorum::start(config.clone()).await.unwrap();
        let mut leadership = quorum.leadership();
        tokio::time::timeout(
            Duration::from_secs(10),
            leadership.wait_for(|l| l.leader == Some(1)),
        )
        .await
        .unwrap()
        .unwrap();

        let bootstrap = MetadataRecord::Bootstrap {
            cluster_id: "c1".into(),
        };
        let first = quorum.propose(vec![bootstrap]).await.unwrap();
        let second = quorum.propose(vec![topic("orders")]).await.unwrap();
        assert!(second > first);
        // Answered once applied here.
        assert!(quorum.applied().borrow().index >= second);
        assert!(quorum.applied().borrow().state.topic("orders").is_some());
        assert!(matches!(
            quorum.propose(vec![topic("orders")]).await,
            Err(ProposeError::Refused(m)) if m.contains("already exists")
        ));
        assert!(matches!(
            quorum.propose(vec![topic(&"x".repeat(2000))]).await,
            Err(ProposeError::TooLarge {
                max_bytes: 1024,
                ..
            })
        ));
        let status = quorum.status();
        assert_eq!((status.role, status.leader), (QuorumRole::Leader, Some(1)));
        assert_eq!(status.voters.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(status.applied_index >= Some(second));
        let state = quorum.applied().borrow().state.clone();

        quorum.shutdown().await;
        quorum.shutdown().await;
        assert!(matches!(
            quorum.propose(vec![topic("late")]).await,
            Err(ProposeError::Stopped(_))
        ));

        // From the same directory: the committed entries applied again at start.
        let again = Quorum::start(config).await.unwrap();
        assert!(again.applied().borrow().index >= second);
        assert_eq!(again.applied().borrow().state, state);
        again.shutdown().await;
    }

    #[tokio::test]
    async fn a_configuration_that_cannot_work_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = single_voter(dir.path());
        config.node_id = 2;
        assert!(matches!(
            Quorum::start(config).await,
            Err(QuorumError::InvalidConfig(_))
        ));
        let mut config = single_voter(dir.path());
        config.heartbeat_interval_ms = config.election_timeout_min_ms;
        assert!(matches!(
            Quorum::start(config).await,
            Err(QuorumError::InvalidConfig(_))
        ));
        let mut config = single_voter(dir.path());
        config.max_rpc_bytes = config.max_batch_bytes;
        assert!(Quorum::start(config).await.is_err());
    }
}
