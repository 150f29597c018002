//! The controller listener's routes: where the metadata quorum's voters send each
//! other Raft's RPCs (Kafka's `CONTROLLER` listener, here HTTP with JSON bodies).
//!
//! `POST /raft/append`, `/raft/vote` and `/raft/snapshot` read the body (at most the
//! quorum's `max_rpc_bytes`, else 413), hand it with the sender's `troupe-cluster-id`
//! and `troupe-node-id` headers to the [`Quorum`]'s handler, and answer its JSON, or
//! its refusal as the usual `{"error_code", "message"}` with a 4xx/5xx status. The
//! wire format and the checks are the quorum's (`controller::quorum::network`); this
//! file only moves bytes between actix-web and it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use troupe_actors::controller::channel::{ControllerChannel, DECIDE_PATH};
use troupe_actors::controller::quorum::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use troupe_actors::controller::quorum::{
    PeerHeaders, Quorum, RpcRefusal, CLUSTER_ID_HEADER, NODE_ID_HEADER,
};
use troupe_actors::ErrorKind;

use crate::error::{codes, ApiError, ApiResult};

/// Mounts the brokers' route to the active controller (`POST /controller/decide`:
/// registration, heartbeats, admin changes), served by `channel` — which asks this
/// node's controller only.
pub fn configure_decisions(cfg: &mut web::ServiceConfig, channel: ControllerChannel) {
    cfg.app_data(web::Data::new(channel))
        .route(DECIDE_PATH, web::post().to(decide));
}

async fn decide(
    channel: web::Data<ControllerChannel>,
    quorum: web::Data<Quorum>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_body(body, quorum.max_rpc_bytes()).await?;
    let answered = channel.handle_decide(peer_headers(&req), &body).await;
    reply(&req, answered)
}

fn peer_headers(req: &HttpRequest) -> PeerHeaders<'_> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    PeerHeaders {
        cluster_id: header(CLUSTER_ID_HEADER),
        node_id: header(NODE_ID_HEADER),
    }
}

/// The JSON answer, or the refusal as the usual error body.
fn reply(req: &HttpRequest, answered: Result<Vec<u8>, RpcRefusal>) -> ApiResult<HttpResponse> {
    match answered {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(json)),
        Err(refusal) => {
            log::warn!(
                "controller listener: refused {} from {:?}: {refusal}",
                req.path(),
                req.peer_addr()
            );
            Err(refused(refusal))
        }
    }
}

/// Mounts the Raft RPC routes, served by `quorum`.
pub fn configure(cfg: &mut web::ServiceConfig, quorum: Quorum) {
    cfg.app_data(web::Data::new(quorum))
        .route(APPEND_PATH, web::post().to(append))
        .route(VOTE_PATH, web::post().to(vote))
        .route(SNAPSHOT_PATH, web::post().to(snapshot));
}

#[derive(Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

async fn append(
    quorum: web::Data<Quorum>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    answer(&quorum, &req, body, Rpc::Append).await
}

async fn vote(
    quorum: web::Data<Quorum>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    answer(&quorum, &req, body, Rpc::Vote).await
}

async fn snapshot(
    quorum: web::Data<Quorum>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    answer(&quorum, &req, body, Rpc::Snapshot).await
}

async fn answer(
    quorum: &Quorum,
    req: &HttpRequest,
    body: web::Payload,
    rpc: Rpc,
) -> ApiResult<HttpResponse> {
    let body = read_body(body, quorum.max_rpc_bytes()).await?;
    let peer = peer_headers(req);
    let answered = match rpc {
        Rpc::Append => quorum.handle_append(peer, &body).await,
        Rpc::Vote => quorum.handle_vote(peer, &body).await,
        Rpc::Snapshot => quorum.handle_snapshot(peer, &body).await,
    };
    reply(req, answered)
}

/// The whole body, refused past `max_bytes` without reading further.
async fn read_body(mut body: web::Payload, max_bytes: usize) -> ApiResult<web::BytesMut> {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if bytes.len() + chunk.len() > max_bytes {
            return Err(refused(RpcRefusal::TooLarge(format!(
                "a Raft RPC body above {max_bytes} bytes"
            ))));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn refused(refusal: RpcRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        RpcRefusal::BadRequest(_) => ApiError::bad_request(message),
        RpcRefusal::WrongCluster(_) | RpcRefusal::UnknownPeer(_) => {
            ApiError::new(StatusCode::FORBIDDEN, codes::FOREIGN_VOTER, message)
        }
        RpcRefusal::TooLarge(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            message,
        ),
        RpcRefusal::Unavailable(_) => ApiError::of_kind(ErrorKind::Unavailable, message),
        RpcRefusal::Internal(_) => ApiError::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::{SocketAddr, TcpListener};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use actix_web::dev::{ServerHandle, Service};
    use actix_web::{test, App, HttpServer};
    use troupe_actors::controller::quorum::{ProposeError, QuorumConfig, QuorumRole};
    use troupe_actors::controller::records::{ConfigRecord, ConfigResourceType, TopicRecord};
    use troupe_actors::controller::MetadataRecord;

    const CLUSTER: &str = "quorum-test-cluster";

    /// Fast timings, and snapshots every few entries with nothing kept behind them,
    /// so a voter that was down must be sent a snapshot.
    fn config(node_id: u64, voters: &BTreeMap<u64, String>, dir: &Path) -> QuorumConfig {
        let mut config = QuorumConfig::new(node_id, voters.clone(), dir.to_path_buf(), CLUSTER);
        config.heartbeat_interval_ms = 100;
        config.election_timeout_min_ms = 500;
        config.election_timeout_max_ms = 1000;
        config.propose_timeout_ms = 3000;
        config.snapshot_every_entries = 5;
        config.entries_kept_after_snapshot = 0;
        config
    }

    /// A voter: its quorum, and an actix-web server with the controller listener's
    /// routes (counting the snapshot chunks it receives).
    struct Voter {
        id: u64,
        addr: SocketAddr,
        dir: PathBuf,
        quorum: Quorum,
        server: ServerHandle,
        snapshot_rpcs: Arc<AtomicUsize>,
    }

    impl Voter {
        async fn start(config: QuorumConfig, listener: TcpListener) -> Voter {
            let addr = listener.local_addr().unwrap();
            let (id, dir) = (config.node_id, config.dir.clone());
            let quorum = Quorum::start(config).await.unwrap();
            let snapshot_rpcs = Arc::new(AtomicUsize::new(0));
            let (served, counted) = (quorum.clone(), snapshot_rpcs.clone());
            let server = HttpServer::new(move || {
                let counted = counted.clone();
                App::new()
                    .wrap_fn(move |req, srv| {
                        if req.path() == SNAPSHOT_PATH {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                        srv.call(req)
                    })
                    .configure(|cfg| configure(cfg, served.clone()))
            })
            .workers(1)
            .shutdown_timeout(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            let handle = server.handle();
            actix_web::rt::spawn(server);
            Voter {
                id,
                addr,
                dir,
                quorum,
                server: handle,
                snapshot_rpcs,
            }
        }

        /// As a crash of the node would: Raft and the listener both gone.
        async fn stop(self) -> (u64, SocketAddr, PathBuf) {
            self.quorum.shutdown().await;
            self.server.stop(false).await;
            (self.id, self.addr, self.dir)
        }

        fn applied_index(&self) -> u64 {
            self.quorum.applied().borrow().index
        }
    }

    async fn start_cluster(dirs: &[PathBuf]) -> (BTreeMap<u64, String>, Vec<Voter>) {
        let listeners: Vec<TcpListener> = dirs
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let voters: BTreeMap<u64, String> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string()))
            .collect();
        let mut started = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            started.push(Voter::start(config(id, &voters, &dirs[i]), listener).await);
        }
        (voters, started)
    }

    /// Polls `condition` until it holds, failing the test at `within`.
    async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            assert!(Instant::now() < deadline, "not within {within:?}: {what}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The leader every given voter agrees on, once they do.
    async fn agreed_leader(voters: &[&Voter], within: Duration) -> u64 {
        let mut leader = None;
        wait_until("the voters agree on a leader", within, || {
            let seen: Vec<Option<u64>> = voters.iter().map(|v| v.quorum.status().leader).collect();
            leader = seen[0].filter(|l| {
                seen.iter().all(|s| *s == Some(*l)) && voters.iter().any(|v| v.id == *l)
            });
            leader.is_some()
        })
        .await;
        leader.unwrap()
    }

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: format!("id-{name}"),
        })
    }

    fn broker_config(value: usize) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResourceType::Broker,
            resource_name: String::new(),
            name: "batch".into(),
            value: Some(value.to_string()),
        })
    }

    async fn converged(voters: &[&Voter], index: u64, within: Duration) {
        wait_until(
            &format!("every voter applies up to {index}"),
            within,
            || voters.iter().all(|v| v.applied_index() >= index),
        )
        .await;
        let first = voters[0].quorum.applied().borrow().state.clone();
        for voter in &voters[1..] {
            assert_eq!(
                voter.quorum.applied().borrow().state,
                first,
                "voter {}",
                voter.id
            );
        }
    }

    #[actix_web::test]
    async fn three_voters_elect_commit_fail_over_and_catch_up() {
        let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let dirs: Vec<PathBuf> = tmp
            .iter()
            .map(|t| t.path().join("__cluster_metadata-0"))
            .collect();
        let (voters, mut nodes) = start_cluster(&dirs).await;

        // A leader within a few election timeouts, agreed by all.
        let all: Vec<&Voter> = nodes.iter().collect();
        let leader_id = agreed_leader(&all, Duration::from_secs(10)).await;
        let leader = nodes.iter().find(|v| v.id == leader_id).unwrap();
        let follower = nodes.iter().find(|v| v.id != leader_id).unwrap();
        assert_eq!(leader.quorum.status().role, QuorumRole::Leader);
        assert_eq!(leader.quorum.leadership().borrow().leader, Some(leader_id));

        // Proposals commit on the leader, and only there.
        let bootstrap = MetadataRecord::Bootstrap {
            cluster_id: CLUSTER.into(),
        };
        leader.quorum.propose(vec![bootstrap]).await.unwrap();
        assert_eq!(
            follower.quorum.propose(vec![topic("elsewhere")]).await,
            Err(ProposeError::NotLeader {
                leader: Some(leader_id)
            })
        );
        leader.quorum.propose(vec![topic("orders")]).await.unwrap();
        let refused = leader.quorum.propose(vec![topic("orders")]).await;
        assert!(
            matches!(&refused, Err(ProposeError::Refused(m)) if m.contains("already exists")),
            "{refused:?}"
        );
        let last = leader
            .quorum
            .propose(vec![topic("payments"), broker_config(0)])
            .await
            .unwrap();
        converged(&all, last, Duration::from_secs(10)).await;
        let state = leader.quorum.applied().borrow().state.clone();
        assert_eq!(state.cluster_id.as_deref(), Some(CLUSTER));
        assert!(state.topic("orders").is_some() && state.topic("payments").is_some());

        // The leader sees every voter's progress.
        wait_until(
            "the leader sees every voter matched",
            Duration::from_secs(5),
            || {
                let status = leader.quorum.status();
                status.voters.len() == 3
                    && status
                        .voters
                        .values()
                        .all(|v| v.matched_index >= Some(last) && v.lag_entries == Some(0))
            },
        )
        .await;

        // The leader goes down: another is elected among the two left, and commits.
        let position = nodes.iter().position(|v| v.id == leader_id).unwrap();
        let (old_id, old_addr, old_dir) = nodes.remove(position).stop().await;
        let old_applied = last;
        let left: Vec<&Voter> = nodes.iter().collect();
        let started = Instant::now();
        let new_leader_id = agreed_leader(&left, Duration::from_secs(10)).await;
        assert_ne!(new_leader_id, old_id);
        let new_leader = nodes.iter().find(|v| v.id == new_leader_id).unwrap();
        let mut last = 0;
        // More entries than a snapshot's worth, so the log the old leader lacks is
        // purged behind a snapshot and it must be sent one.
        for i in 1..=12 {
            let records = vec![topic(&format!("after-{i}")), broker_config(i)];
            let proposed = loop {
                match new_leader.quorum.propose(records.clone()).await {
                    // Right after the election, the old leader may still be named.
                    Err(ProposeError::NotLeader { .. })
                    | Err(ProposeError::NoMajority { .. })
                    | Err(ProposeError::QuorumUnavailable { .. })
                        if started.elapsed() < Duration::from_secs(10) =>
                    {
                        actix_web::rt::time::sleep(Duration::from_millis(50)).await
                    }
                    other => break other,
                }
            };
            last = proposed.unwrap();
        }
        converged(&left, last, Duration::from_secs(10)).await;
        let status = new_leader.quorum.status();
        assert!(
            status.voters[&old_id].lag_entries.unwrap_or(0) > 0,
            "{status:?}"
        );

        // The old leader restarts from its directory: its state is what it had
        // applied before, at once, and it catches up from a snapshot.
        let listener = TcpListener::bind(old_addr).unwrap();
        let restarted = Voter::start(config(old_id, &voters, &old_dir), listener).await;
        assert!(restarted.applied_index() >= old_applied);
        assert!(restarted
            .quorum
            .applied()
            .borrow()
            .state
            .topic("orders")
            .is_some());
        nodes.push(restarted);
        let all: Vec<&Voter> = nodes.iter().collect();
        converged(&all, last, Duration::from_secs(15)).await;
        let restarted = nodes.last().unwrap();
        assert!(restarted.snapshot_rpcs.load(Ordering::Relaxed) > 0);
        assert!(restarted
            .quorum
            .applied()
            .borrow()
            .state
            .topic("after-12")
            .is_some());

        // With its two followers gone, the leader cannot commit: the proposal gives
        // up at its timeout rather than hang.
        let all: Vec<&Voter> = nodes.iter().collect();
        let leader_id = agreed_leader(&all, Duration::from_secs(10)).await;
        let position = nodes.iter().position(|v| v.id == leader_id).unwrap();
        let leader = nodes.remove(position);
        for voter in nodes {
            voter.stop().await;
        }
        let asked = Instant::now();
        // Alone, the leader refuses before appending anything...
        match leader.quorum.propose(vec![topic("alone")]).await {
            Err(ProposeError::NoMajority { answered, voters }) => {
                assert_eq!(answered, vec![leader_id]);
                assert_eq!(voters, 3);
            }
            other => panic!("{other:?}"),
        }
        assert!(asked.elapsed() < Duration::from_secs(5));
        // ...so its log holds nothing that could commit later.
        let before = leader.quorum.status().last_log_index;
        assert!(leader.quorum.propose(vec![topic("alone")]).await.is_err());
        assert_eq!(leader.quorum.status().last_log_index, before);
        leader.stop().await;
    }

    #[actix_web::test]
    async fn rpcs_from_another_cluster_or_garbage_are_refused_and_the_voter_goes_on() {
        let tmp: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let dirs: Vec<PathBuf> = tmp.iter().map(|t| t.path().to_path_buf()).collect();
        let (_, nodes) = start_cluster(&dirs).await;
        let all: Vec<&Voter> = nodes.iter().collect();
        let leader_id = agreed_leader(&all, Duration::from_secs(10)).await;
        let leader = nodes.iter().find(|v| v.id == leader_id).unwrap();
        let follower = nodes.iter().find(|v| v.id != leader_id).unwrap();
        let sender = nodes
            .iter()
            .find(|v| v.id != follower.id)
            .unwrap()
            .id
            .to_string();

        // The follower's routes, in process.
        let app =
            test::init_service(App::new().configure(|cfg| configure(cfg, follower.quorum.clone())))
                .await;
        let post = |path: &str, cluster: Option<&str>, node: Option<&str>, body: Vec<u8>| {
            let mut req = test::TestRequest::post().uri(path).set_payload(body);
            if let Some(cluster) = cluster {
                req = req.insert_header((CLUSTER_ID_HEADER, cluster.to_string()));
            }
            if let Some(node) = node {
                req = req.insert_header((NODE_ID_HEADER, node.to_string()));
            }
            req.to_request()
        };
        let vote = br#"{"vote":{"leader_id":{"term":1,"node_id":2},"committed":false},"last_log_id":null}"#;
        // Path, cluster id header, node id header, body, and the status it gets.
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<u8>, u16);
        let cases: Vec<Case> = vec![
            (
                APPEND_PATH,
                Some("another"),
                Some(&sender),
                b"{}".to_vec(),
                403,
            ),
            (
                VOTE_PATH,
                Some("another"),
                Some(&sender),
                vote.to_vec(),
                403,
            ),
            (VOTE_PATH, None, Some(&sender), vote.to_vec(), 400),
            (VOTE_PATH, Some(CLUSTER), None, vote.to_vec(), 400),
            (VOTE_PATH, Some(CLUSTER), Some("x"), vote.to_vec(), 400),
            (VOTE_PATH, Some(CLUSTER), Some("9"), vote.to_vec(), 403),
            (
                APPEND_PATH,
                Some(CLUSTER),
                Some(&sender),
                b"garbage".to_vec(),
                400,
            ),
            (
                APPEND_PATH,
                Some(CLUSTER),
                Some(&sender),
                vec![0xff; 64],
                400,
            ),
            (
                SNAPSHOT_PATH,
                Some(CLUSTER),
                Some(&sender),
                b"{\"vote\":1}".to_vec(),
                400,
            ),
            (VOTE_PATH, Some(CLUSTER), Some(&sender), b"[]".to_vec(), 400),
            (
                APPEND_PATH,
                Some(CLUSTER),
                Some(&sender),
                vec![b' '; follower.quorum.max_rpc_bytes() + 1],
                413,
            ),
        ];
        for (path, cluster, node, body, status) in cases {
            let response = test::call_service(&app, post(path, cluster, node, body)).await;
            assert_eq!(
                response.status().as_u16(),
                status,
                "{path} {cluster:?} {node:?}"
            );
            let body: serde_json::Value = test::read_body_json(response).await;
            assert_eq!(
                body["error_code"].as_i64().unwrap() / 100,
                i64::from(status)
            );
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }

        // The voter goes on: it still takes the leader's entries.
        let index = leader.quorum.propose(vec![topic("after")]).await.unwrap();
        converged(&all, index, Duration::from_secs(10)).await;
        assert_eq!(agreed_leader(&all, Duration::from_secs(1)).await, leader_id);

        for voter in nodes {
            voter.stop().await;
        }
    }
}
