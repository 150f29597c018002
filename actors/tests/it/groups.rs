//! Group coordinators driven through their messages on a real node (broker, partition
//! actors, `__consumer_offsets` on disk): session expiry of a member that stops
//! heartbeating, Kafka's refusals of stale and foreign commits, assignor
//! negotiation, a coordinator restarted from disk by its supervisor, offset
//! fetches that see every commit accepted before them, and offset deletes that spare
//! the topics members subscribe to.
//!
//! The node runs on a manual clock: time moves only when a test advances it, so a
//! session expires because the test moved time past it, never because a slow
//! machine let it run out.

use std::time::{Duration, Instant};

use actix::prelude::*;
use troupe_actors::broker::{CreateTopic, NewTopic};
use troupe_actors::broker_config::{BrokerConfig, GroupConfig};
use troupe_actors::clock::ManualClock;
use troupe_actors::group::membership::{JoinRequest, JoinResult};
use troupe_actors::group::offsets_topic::MemberOrigin;
use troupe_actors::group::*;
use troupe_actors::ids::GenerationId;
use troupe_actors::node::Node;

const SESSION_MS: i64 = 400;
/// Where the tests' manual clocks start (a plausible "now", in ms since the epoch).
const START_MS: i64 = 1_700_000_000_000;

pub(crate) fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        log_dir: dir.to_path_buf(),
        cleaner_enable: false,
        groups: GroupConfig {
            offsets_topic_partitions: 3,
            min_session_timeout_ms: 100,
            ..GroupConfig::default()
        },
        ..BrokerConfig::default()
    }
}

async fn node_with_topic(dir: &std::path::Path, partitions: i32, time: &ManualClock) -> Node {
    let node = Node::start_with_clock(config(dir), time.clock())
        .await
        .unwrap();
    with_topic(node, partitions).await
}

/// A node started from `config`, with topic `t` of `partitions` partitions.
pub(crate) async fn node_from(config: BrokerConfig, partitions: i32) -> Node {
    with_topic(Node::start(config).await.unwrap(), partitions).await
}

/// `node`, once it has topic `t` of `partitions` partitions.
async fn with_topic(node: Node, partitions: i32) -> Node {
    node.engine
        .broker
        .send(CreateTopic(NewTopic {
            name: "t".into(),
            partitions: Some(partitions),
            ..Default::default()
        }))
        .await
        .unwrap()
        .unwrap();
    node
}

pub(crate) async fn coordinator(node: &Node, group: &str) -> Addr<GroupCoordinator> {
    node.engine
        .groups
        .send(FindCoordinator {
            group_id: group.into(),
            create: true,
        })
        .await
        .unwrap()
        .unwrap()
}

pub(crate) fn join(member_id: Option<&str>, protocols: &[&str]) -> JoinGroup {
    JoinGroup {
        request: JoinRequest {
            member_id: member_id.map(str::to_string),
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
            origin: MemberOrigin::Remote,
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: 5_000,
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            topics: vec!["t".into()],
        },
        notify: None,
    }
}

/// A client's join loop: join, sync, and join again while the group is still
/// rebalancing.
async fn member(
    c: &Addr<GroupCoordinator>,
    protocols: &[&str],
    mut member_id: Option<String>,
) -> (JoinResult, Vec<TopicPartition>) {
    loop {
        let j = c
            .send(join(member_id.as_deref(), protocols))
            .await
            .unwrap()
            .unwrap();
        member_id = Some(j.member_id.clone());
        let synced = c
            .send(SyncGroup {
                member_id: j.member_id.clone(),
                generation_id: j.generation_id,
                assignment: None,
            })
            .await
            .unwrap();
        match synced {
            Ok(p) => return (j, p),
            Err(GroupError::RebalanceInProgress) => continue,
            Err(e) => panic!("sync: {e}"),
        }
    }
}

/// A member that heartbeats until told to rejoin, then rejoins. Each heartbeat is a
/// round trip through the coordinator's mailbox, so the other member's join, sent
/// meanwhile, is seen within a beat or two.
async fn rejoin_when_told(
    c: &Addr<GroupCoordinator>,
    protocols: &[&str],
    j: &JoinResult,
) -> (JoinResult, Vec<TopicPartition>) {
    loop {
        let beat = c
            .send(Heartbeat {
                member_id: j.member_id.clone(),
                generation_id: j.generation_id,
            })
            .await
            .unwrap();
        match beat {
            Ok(()) => {}
            Err(GroupError::RebalanceInProgress) => {
                return member(c, protocols, Some(j.member_id.clone())).await
            }
            Err(e) => panic!("heartbeat: {e}"),
        }
    }
}

/// One member joins, then a second: the first rejoins; both end in one generation.
async fn two_members(
    c: &Addr<GroupCoordinator>,
    protocols: [&[&str]; 2],
) -> [(JoinResult, Vec<TopicPartition>); 2] {
    let (first, _) = member(c, protocols[0], None).await;
    let (a, b) = futures::join!(
        rejoin_when_told(c, protocols[0], &first),
        member(c, protocols[1], None)
    );
    assert_eq!(a.0.generation_id, b.0.generation_id);
    [a, b]
}

/// Two members in one generation, and offset 42 committed by the first for one of its
/// partitions: the group as it stands, and that partition.
pub(crate) async fn two_members_and_a_commit(
    c: &Addr<GroupCoordinator>,
) -> (GroupDescription, TopicPartition) {
    let [(a, _), _] = two_members(c, [&["range"], &["range"]]).await;
    let group = c.send(DescribeGroup).await.unwrap();
    let member = JoinResult {
        member_id: group.members[0].member_id.clone(),
        ..a
    };
    let mine = group.members[0].assignment[0].clone();
    c.send(commit(&member, member.generation_id, mine.partition, 42))
        .await
        .unwrap()
        .unwrap();
    (group, mine)
}

fn commit(
    member: &JoinResult,
    generation_id: GenerationId,
    partition: i32,
    offset: i64,
) -> CommitOffsets {
    CommitOffsets {
        committer: Committer::Member {
            member_id: member.member_id.clone(),
            generation_id,
        },
        offsets: vec![OffsetCommit {
            partition: TopicPartition::new("t", partition),
            offset,
            metadata: "m".into(),
        }],
    }
}

#[actix_rt::test]
async fn a_member_that_stops_heartbeating_is_expired_after_its_session_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 4, &time).await;
    let c = coordinator(&node, "g").await;
    let [(a, pa), (b, pb)] = two_members(&c, [&["range"], &["range"]]).await;
    assert_eq!((pa.len(), pb.len()), (2, 2));
    let silent_since = time.elapsed();
    // Only b heartbeats, every 50 ms of the clock; a goes silent.
    let rebalance_seen = loop {
        time.advance_ms(50);
        let silent_for = time.elapsed() - silent_since;
        match c
            .send(Heartbeat {
                member_id: b.member_id.clone(),
                generation_id: b.generation_id,
            })
            .await
            .unwrap()
        {
            Ok(()) => assert!(silent_for < Duration::from_secs(5), "no expiry"),
            Err(GroupError::RebalanceInProgress) => break silent_for,
            Err(e) => panic!("unexpected {e}"),
        }
    };
    assert!(
        rebalance_seen >= Duration::from_millis(SESSION_MS as u64),
        "expired after {rebalance_seen:?}, before the {SESSION_MS} ms session timeout"
    );
    let (b2, partitions) = member(&c, &["range"], Some(b.member_id.clone())).await;
    assert_eq!(b2.generation_id, b.generation_id.next());
    assert_eq!(partitions.len(), 4, "b takes over a's partitions");
    let group = c.send(DescribeGroup).await.unwrap();
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.state, GroupState::Stable);
    // a is gone: its heartbeats are refused.
    let refused = c
        .send(Heartbeat {
            member_id: a.member_id.clone(),
            generation_id: a.generation_id,
        })
        .await
        .unwrap();
    assert!(matches!(refused, Err(GroupError::UnknownMemberId(_))));
    node.shutdown().await;
}

#[actix_rt::test]
async fn stale_generations_strangers_and_foreign_partitions_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 4, &time).await;
    let c = coordinator(&node, "g").await;
    let [(a, pa), (b, _)] = two_members(&c, [&["roundrobin"], &["roundrobin"]]).await;
    let mine = pa[0].partition;
    let theirs = (0..4)
        .find(|p| !pa.iter().any(|tp| tp.partition == *p))
        .unwrap();
    let stale = GenerationId::new(a.generation_id.get() - 1);
    let refusals = [
        (
            commit(&a, stale, mine, 5),
            GroupError::IllegalGeneration {
                given: stale,
                current: a.generation_id,
            },
            "a stale generation",
        ),
        (
            commit(&a, a.generation_id.next(), mine, 5),
            GroupError::IllegalGeneration {
                given: a.generation_id.next(),
                current: a.generation_id,
            },
            "a generation from the future",
        ),
        (
            commit(&a, a.generation_id, theirs, 5),
            GroupError::PartitionNotAssigned {
                member_id: a.member_id.clone(),
                topic: "t".into(),
                partition: theirs,
            },
            "a partition not assigned",
        ),
        (
            CommitOffsets {
                committer: Committer::Standalone,
                offsets: vec![OffsetCommit {
                    partition: TopicPartition::new("t", mine),
                    offset: 5,
                    metadata: String::new(),
                }],
            },
            GroupError::UnknownMemberId(String::new()),
            "a non-member while the group has members",
        ),
        (
            commit(&a, a.generation_id, mine, -1),
            GroupError::InvalidCommitOffset(format!("offset -1 for t-{mine} is negative")),
            "a negative offset",
        ),
    ];
    for (msg, expected, why) in refusals {
        assert_eq!(
            c.send(msg).await.unwrap(),
            Err(expected),
            "{why} is refused"
        );
    }
    let stranger = JoinResult {
        member_id: "nobody".into(),
        ..a.clone()
    };
    assert_eq!(
        c.send(commit(&stranger, a.generation_id, mine, 5))
            .await
            .unwrap(),
        Err(GroupError::UnknownMemberId("nobody".into()))
    );
    let committed = c
        .send(FetchOffsets { partitions: None })
        .await
        .unwrap()
        .unwrap();
    assert!(committed.is_empty(), "nothing committed: {committed:?}");
    // The right member, generation and partition: committed.
    c.send(commit(&a, a.generation_id, mine, 7))
        .await
        .unwrap()
        .unwrap();
    let committed = c
        .send(FetchOffsets { partitions: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed[&TopicPartition::new("t", mine)].offset, 7);
    assert_eq!(committed[&TopicPartition::new("t", mine)].metadata, "m");
    // Everyone leaves: the group is Empty and takes standalone commits (resets).
    for m in [&a, &b] {
        c.send(LeaveGroup {
            member_id: m.member_id.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    }
    let reset = node
        .engine
        .groups
        .send(ResetOffsets {
            group_id: "g".into(),
            topic: "t".into(),
            partitions: None,
            spec: ResetSpec::Earliest,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reset.len(), 4);
    let committed = c
        .send(FetchOffsets { partitions: None })
        .await
        .unwrap()
        .unwrap();
    assert!(committed.values().all(|o| o.offset == 0));
    node.shutdown().await;
}

#[actix_rt::test]
async fn the_group_negotiates_an_assignor_every_member_offers() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 6, &time).await;
    let c = coordinator(&node, "g").await;
    let [(a, pa), (_, pb)] =
        two_members(&c, [&["sticky", "roundrobin"], &["range", "roundrobin"]]).await;
    assert_eq!(a.protocol, "roundrobin");
    // roundrobin deals t-0..t-5 alternately over the two members.
    let parities: Vec<i32> = pa.iter().map(|tp| tp.partition % 2).collect();
    assert!(parities.windows(2).all(|w| w[0] == w[1]), "{pa:?}");
    assert_eq!(pa.len() + pb.len(), 6);
    // A member offering nothing in common is refused.
    let refused = c.send(join(None, &["range"])).await.unwrap();
    assert_eq!(refused.unwrap_err(), GroupError::InconsistentGroupProtocol);
    node.shutdown().await;
}

#[actix_rt::test]
async fn offsets_of_subscribed_topics_are_deleted_only_once_the_group_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 2, &time).await;
    let c = coordinator(&node, "g").await;
    let (group, mine) = two_members_and_a_commit(&c).await;
    let elsewhere = TopicPartition::new("other", 0);
    let delete = || DeleteOffsets {
        partitions: vec![mine.clone(), elsewhere.clone()],
    };
    let outcomes = c.send(delete()).await.unwrap().unwrap();
    assert_eq!(
        outcomes,
        vec![
            (
                mine.clone(),
                Err(GroupError::GroupSubscribedToTopic("t".into()))
            ),
            (elsewhere.clone(), Ok(())),
        ]
    );
    let kept = c
        .send(FetchOffsets { partitions: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept[&mine].offset, 42);
    for m in &group.members {
        c.send(LeaveGroup {
            member_id: m.member_id.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    }
    let outcomes = c.send(delete()).await.unwrap().unwrap();
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
    let left = c
        .send(FetchOffsets { partitions: None })
        .await
        .unwrap()
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    // Deleted on disk too: a restart replays the tombstone.
    c.do_send(Crash);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Ok(offsets)) = c.send(FetchOffsets { partitions: None }).await {
            assert!(offsets.is_empty(), "{offsets:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_crashed_coordinator_comes_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 2, &time).await;
    let c = coordinator(&node, "g").await;
    let (_, mine) = two_members_and_a_commit(&c).await;
    let generation = c.send(DescribeGroup).await.unwrap().generation_id;
    // A third member's join waits for the others to rejoin (up to 5 s, which the
    // clock never reaches)... The mailbox takes the join before the crash.
    let parked = c.send(join(None, &["range"]));
    c.do_send(Crash);
    // ...until the crash: the restarted coordinator has forgotten it.
    let answered = tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect("the parked join is answered at the restart, not at the rebalance timeout")
        .unwrap();
    assert!(
        matches!(answered, Err(GroupError::CoordinatorNotAvailable(_))),
        "{answered:?}"
    );
    // The supervisor restarts it and it replays __consumer_offsets.
    let deadline = Instant::now() + Duration::from_secs(10);
    let restored = loop {
        if let Ok(g) = c.send(DescribeGroup).await {
            if g.offsets.contains_key(&mine) {
                break g;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(restored.offsets[&mine].offset, 42);
    assert_eq!(restored.generation_id, generation);
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_leave_that_completes_a_rebalance_answers_the_waiting_joins_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 4, &time).await;
    let c = coordinator(&node, "g").await;
    let [(a, _), (b, _)] = two_members(&c, [&["range"], &["range"]]).await;
    // A newcomer starts a rebalance; a rejoins; both wait for b (the mailbox takes
    // them in the order sent)...
    let newcomer = c.send(join(None, &["range"]));
    let a_again = c.send(join(Some(&a.member_id), &["range"]));
    // ...which leaves instead: the join phase is complete, now.
    c.send(LeaveGroup {
        member_id: b.member_id.clone(),
    })
    .await
    .unwrap()
    .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        futures::join!(newcomer, a_again)
    })
    .await
    .expect("the joins are answered when the leave completes the rebalance, not at its timeout");
    let (n, a2) = (answered.0.unwrap().unwrap(), answered.1.unwrap().unwrap());
    assert_eq!(n.generation_id, a.generation_id.next());
    assert_eq!(a2.generation_id, n.generation_id);
    node.shutdown().await;
}

#[actix_rt::test]
async fn an_offset_fetch_waits_for_the_commits_accepted_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(START_MS);
    let node = node_with_topic(dir.path(), 2, &time).await;
    let c = coordinator(&node, "g").await;
    let (a, pa) = member(&c, &["range"], None).await;
    let mine = TopicPartition::new("t", pa[0].partition);
    for offset in 1..=20 {
        // Both are queued at once: the fetch is handled while the commit's append
        // is still on its way to the disk. A member just given the partition must
        // not start before a commit its previous owner already had accepted.
        let committed = c.send(commit(&a, a.generation_id, mine.partition, offset));
        let fetched = c
            .send(FetchOffsets {
                partitions: Some(vec![mine.clone()]),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.get(&mine).map(|o| o.offset), Some(offset));
        committed.await.unwrap().unwrap();
    }
    node.shutdown().await;
}
