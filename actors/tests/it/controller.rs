//! The active controller on a real node (a quorum of one, on disk): a second broker
//! registers through the node's controller channel, as a remote broker's requests
//! would reach it, and heartbeats — or stops heartbeating. Fencing after the session
//! timeout, offline partitions, unfencing, stale epochs and a controlled shutdown,
//! each seen in the committed metadata.

use std::time::Duration;

use troupe_actors::broker::{CreateTopic, NewTopic};
use troupe_actors::broker_config::{BrokerConfig, ClusterConfig};
use troupe_actors::controller::active::{ControllerReply, ControllerRequest};
use troupe_actors::controller::records::NO_LEADER;
use troupe_actors::ids::{NodeId, PartitionId};
use troupe_actors::node::Node;
use troupe_actors::BrokerError;
use uuid::Uuid;

use crate::supervision::eventually;

const SESSION_MS: u64 = 600;

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        log_dir: dir.to_path_buf(),
        cleaner_enable: false,
        groups: troupe_actors::broker_config::GroupConfig {
            offsets_topic_partitions: 1,
            ..Default::default()
        },
        cluster: ClusterConfig {
            broker_session_timeout_ms: SESSION_MS,
            broker_heartbeat_interval_ms: 100,
            ..ClusterConfig::default()
        },
        ..BrokerConfig::default()
    }
}

async fn heartbeat(
    node: &Node,
    epoch: i64,
    want_shut_down: bool,
) -> Result<ControllerReply, BrokerError> {
    // Read before asking: a watch's read guard held across the await would stall
    // the quorum's next publication.
    let applied = node.quorum().applied().borrow().index;
    let request = ControllerRequest::Heartbeat {
        broker_id: NodeId::new(2),
        broker_epoch: epoch,
        current_metadata_offset: applied,
        want_shut_down,
    };
    node.controller().ask(request).await
}

/// The leader of partition `p` of topic `t` in the committed metadata.
fn leader(node: &Node, p: i32) -> NodeId {
    let applied = node.quorum().applied().borrow().clone();
    applied.state.topic("t").unwrap().partitions[&PartitionId::new(p)].leader
}

fn fenced(node: &Node) -> bool {
    let applied = node.quorum().applied().borrow().clone();
    applied.state.brokers[&NodeId::new(2)].fenced
}

#[actix_rt::test]
async fn a_silent_broker_is_fenced_its_partitions_go_offline_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path())).await.unwrap();

    // Broker 2 registers (fenced until it has caught up), then heartbeats.
    let registered = node
        .controller()
        .ask(ControllerRequest::RegisterBroker {
            broker_id: NodeId::new(2),
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            observer_addr: None,
        })
        .await
        .unwrap();
    let epoch = registered.broker.unwrap().broker_epoch;
    assert!(fenced(&node), "a new registration starts fenced");
    heartbeat(&node, epoch, false).await.unwrap();
    assert!(!fenced(&node), "caught up and heartbeating: unfenced");

    // Partition 0 on this node, partition 1 on broker 2.
    let assignment = vec![
        (PartitionId::new(0), vec![NodeId::new(1)]),
        (PartitionId::new(1), vec![NodeId::new(2)]),
    ];
    node.engine
        .broker
        .send(CreateTopic(NewTopic {
            name: "t".into(),
            replicas_assignments: assignment,
            ..Default::default()
        }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (leader(&node, 0), leader(&node, 1)),
        (NodeId::new(1), NodeId::new(2))
    );

    // Silent past its session timeout: fenced, and its partition has no leader.
    // This node keeps heartbeating and keeps its own.
    eventually("broker 2 to be fenced", || {
        let done = fenced(&node);
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(leader(&node, 1), NO_LEADER);
    assert_eq!(leader(&node, 0), NodeId::new(1));
    // The image every request routes by says so too, once the broker has applied
    // the commit (a moment after the quorum).
    eventually("the image to show the partition offline", || {
        let offline = node.engine.image().topic("t").unwrap().partitions[1].leader;
        async move { (offline == NO_LEADER).then_some(()) }
    })
    .await;

    // A heartbeat of another registration is refused; its own brings it back.
    let stale = heartbeat(&node, epoch + 1000, false).await;
    assert!(
        matches!(stale, Err(BrokerError::StaleBrokerEpoch(_))),
        "{stale:?}"
    );
    heartbeat(&node, epoch, false).await.unwrap();
    eventually("broker 2 to lead partition 1 again", || {
        let back = leader(&node, 1) == NodeId::new(2);
        async move { back.then_some(()) }
    })
    .await;
    assert!(!fenced(&node));

    // A controlled shutdown: its leadership goes (nowhere to move, so offline), and
    // the controller then tells it it may stop.
    let mut may_stop = false;
    for _ in 0..50 {
        let reply = heartbeat(&node, epoch, true).await.unwrap();
        if reply.broker.is_some_and(|b| b.should_shut_down) {
            may_stop = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        may_stop,
        "the controller lets a broker that leads nothing stop"
    );
    assert_eq!(leader(&node, 1), NO_LEADER);
    node.shutdown().await;
}
