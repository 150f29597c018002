//! How a node's broker reaches the active controller: the [`Controller`] actor of
//! whichever node leads the metadata quorum. A request waits a bounded time for
//! there to be one (a leadership moving, the quorum electing), then fails with a
//! clear, retriable error; a controller that loses the lead as it is asked answers
//! NOT_CONTROLLER, and the request goes to the next one.
//!
//! This node's controller runs while it leads (`run_while_leading`); requests for
//! another node's go over the controller listener (not served by this build yet:
//! a multi-node voter list is refused at startup).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use super::active::{Controller, ControllerReply, ControllerRequest, ControllerSettings, Decide};
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
        loop {
            let leader = leadership.borrow_and_update().leader;
            let controller = local.borrow_and_update().clone();
            let last_error = match (leader, controller) {
                (Some(l), Some(controller)) if l == me => {
                    match controller.send(Decide(request.clone())).await {
                        Ok(Err(BrokerError::NotController(why))) => BrokerError::NotController(why),
                        Ok(answer) => return answer,
                        Err(_) => BrokerError::NotController("this node's controller stopped".into()),
                    }
                }
                (Some(l), _) if l != me => BrokerError::NotController(format!(
                    "node {l} is the active controller, and asking another node is not served by this build"
                )),
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
