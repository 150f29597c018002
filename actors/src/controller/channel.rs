//! How a node's broker reaches the active controller: the [`Controller`] actor of
//! whichever node leads the metadata quorum. A request waits a bounded time for
//! there to be one (a leadership moving, the quorum electing), then fails with a
//! clear, retriable error; a controller that loses the lead as it is asked answers
//! NOT_CONTROLLER, and the request goes to the next one.
//!
//! This node's controller runs while it leads (`run_while_leading`); requests for
//! another node's go over the controller listener:
//!
//! ```text
//! POST http://{active controller's CONTROLLER listener}/controller/decide
//!      troupe-cluster-id: <cluster id>   troupe-node-id: <sender's node id>
//!      ControllerRequest (JSON)  →  200 Result<ControllerReply, BrokerError> (JSON)
//! ```
//!
//! The receiving node asks only its own controller ([`ControllerChannel::handle_decide`]):
//! not leading, it answers NOT_CONTROLLER and the sender looks again, so a request
//! never travels in a circle. A broker's registration, heartbeat and ISR change must come from
//! the broker they name.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use super::active::{Controller, ControllerReply, ControllerRequest, ControllerSettings, Decide};
use super::quorum::network::{decode, PeerHeaders, RpcRefusal};
use super::quorum::Quorum;
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;

/// Stops the controller (its node lost the lead, or is stopping).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopController;

impl Handler<StopController> for Controller {
    type Result = ();

    fn handle(&mut self, _: StopController, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Where the controller listener takes a request for the active controller.
pub const DECIDE_PATH: &str = "/controller/decide";

/// The time limit of one request to another node's controller: a decision commits
/// through the quorum (`propose_timeout_ms`, 5 s) before it is answered.
const REMOTE_ASK_TTL: Duration = Duration::from_secs(8);
/// A heartbeat's time limit at another node's controller.
const HEARTBEAT_ASK_TTL: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct ControllerChannel {
    node_id: NodeId,
    quorum: Quorum,
    local: watch::Receiver<Option<Addr<Controller>>>,
    /// How long a request waits for an active controller.
    wait: Duration,
}

impl ControllerChannel {
    /// Runs a [`Controller`] on this node whenever it leads `quorum` (started on the
    /// current arbiter), and answers the channel to whichever controller is active.
    pub fn run_while_leading(
        quorum: Quorum,
        settings: ControllerSettings,
        clock: Clock,
        wait: Duration,
    ) -> ControllerChannel {
        let node_id = settings.node_id;
        let (tx, local) = watch::channel(None::<Addr<Controller>>);
        let tx = Arc::new(tx);
        let mut leadership = quorum.leadership();
        let watched = quorum.clone();
        actix::spawn(async move {
            let me = node_id.get() as u64;
            loop {
                let leads = leadership.borrow_and_update().leader == Some(me);
                let running = tx.borrow().clone();
                match (leads, running) {
                    (true, None) => {
                        let controller =
                            Controller::new(watched.clone(), settings.clone(), clock.clone())
                                .start();
                        tx.send_replace(Some(controller));
                    }
                    (false, Some(controller)) => {
                        controller.do_send(StopController);
                        tx.send_replace(None);
                    }
                    _ => {}
                }
                if leadership.changed().await.is_err() {
                    // The quorum is gone: so is this node's controller.
                    if let Some(controller) = tx.send_replace(None) {
                        controller.do_send(StopController);
                    }
                    return;
                }
            }
        });
        ControllerChannel {
            node_id,
            quorum,
            local,
            wait,
        }
    }

    /// Asks the active controller, waiting up to the channel's bound for one.
    pub fn ask(
        &self,
        request: ControllerRequest,
    ) -> impl std::future::Future<Output = BrokerResult<ControllerReply>> + 'static {
        let channel = self.clone();
        async move { channel.ask_now(request).await }
    }

    async fn ask_now(&self, request: ControllerRequest) -> BrokerResult<ControllerReply> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut local = self.local.clone();
        let mut leadership = self.quorum.leadership();
        let me = self.node_id.get() as u64;
        let mut attempt = 0usize;
        loop {
            let leader = leadership.borrow_and_update().leader;
            let controller = local.borrow_and_update().clone();
            let last_error = match (leader, controller) {
                (Some(l), Some(controller)) if l == me => {
                    match controller.send(Decide(request.clone())).await {
                        Ok(Err(BrokerError::NotController(why))) => BrokerError::NotController(why),
                        Ok(answer) => return answer,
                        Err(_) => {
                            BrokerError::NotController("this node's controller stopped".into())
                        }
                    }
                }
                (Some(l), _) if l != me => match self.ask_remote(l, &request).await {
                    Ok(Err(BrokerError::NotController(why))) => BrokerError::NotController(why),
                    Ok(answer) => return answer,
                    Err(why) => BrokerError::Unavailable(format!(
                        "the active controller, node {l}, did not answer: {why}"
                    )),
                },
                // An observer hears of the leader only once it is a learner: until
                // then it asks the voters in turn.
                _ if !self.quorum.is_voter() => {
                    let voters = self.quorum.voter_ids();
                    let target = voters[attempt % voters.len().max(1)];
                    attempt += 1;
                    match self.ask_remote(target, &request).await {
                        Ok(Err(BrokerError::NotController(why))) => BrokerError::NotController(why),
                        Ok(answer) => return answer,
                        Err(why) => BrokerError::Unavailable(format!(
                            "voter {target} did not answer: {why}"
                        )),
                    }
                }
                _ => BrokerError::NotController("the metadata quorum has no leader".into()),
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(BrokerError::Unavailable(format!(
                    "no active controller answered within {} ms: {last_error}",
                    self.wait.as_millis()
                )));
            }
            // Wait for the leadership or this node's controller to change, a little
            // at most, then look again.
            let step = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(step, async {
                tokio::select! {
                    _ = leadership.changed() => {}
                    _ = local.changed() => {}
                }
            })
            .await;
        }
    }

    /// Asks node `target`'s controller over its controller listener: its answer, or
    /// why there is none.
    async fn ask_remote(
        &self,
        target: u64,
        request: &ControllerRequest,
    ) -> Result<BrokerResult<ControllerReply>, String> {
        let body = serde_json::to_vec(request).map_err(|e| format!("encoding: {e}"))?;
        // A heartbeat that waits long for a frozen controller would let the next
        // one fence its broker: it gives up soon and asks again.
        let ttl = match request {
            ControllerRequest::Heartbeat { .. } => HEARTBEAT_ASK_TTL,
            _ => REMOTE_ASK_TTL,
        };
        let answer = self
            .quorum
            .call_voter(target, DECIDE_PATH, body, ttl)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| format!("the answer does not decode: {e}"))
    }

    /// A request from another node (the controller listener's `DECIDE_PATH`): asks
    /// this node's controller only, and answers the JSON of its answer — or
    /// NOT_CONTROLLER when this node does not lead.
    pub async fn handle_decide(
        &self,
        peer: PeerHeaders<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, RpcRefusal> {
        let sender = self.quorum.check_sender(peer)?;
        let request: ControllerRequest = decode(body)?;
        let speaks_for = match &request {
            ControllerRequest::RegisterBroker { broker_id, .. }
            | ControllerRequest::Heartbeat { broker_id, .. } => Some(*broker_id),
            ControllerRequest::AlterIsr(change) => Some(change.leader),
            _ => None,
        };
        if let Some(broker_id) = speaks_for.filter(|b| b.get() as u64 != sender) {
            return Err(RpcRefusal::BadRequest(format!(
                "node {sender} sent a request for broker {broker_id}"
            )));
        }
        let controller = self.local.borrow().clone();
        let answer = match controller {
            Some(controller) => match controller.send(Decide(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(BrokerError::NotController(
                    "this node's controller stopped".into(),
                )),
            },
            None => Err(BrokerError::NotController(match self.active_controller() {
                Some(active) => format!("node {active} is the active controller"),
                None => "the metadata quorum has no leader".into(),
            })),
        };
        serde_json::to_vec(&answer).map_err(|e| RpcRefusal::Internal(e.to_string()))
    }

    /// The active controller's node, as this node last heard.
    pub fn active_controller(&self) -> Option<NodeId> {
        self.quorum
            .leadership()
            .borrow()
            .leader
            .and_then(|l| i32::try_from(l).ok())
            .map(NodeId::new)
    }
}
