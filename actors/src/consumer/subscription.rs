//! A consumer instance's subscription state, as Kafka's `SubscriptionState`: what the
//! instance consumes (nothing, named topics, a pattern, or partitions assigned by
//! hand), the partitions it holds now, and the position it fetches next in each.
//!
//! It is plain data with no actors and no I/O, so the consumer's rules are decided and
//! tested here: which kinds of subscription exclude each other, which positions
//! survive a rebalance, where a seek may go, and whether records fetched while the
//! assignment changed still count. The `ConsumerInstance` actor feeds it events.

use std::collections::BTreeMap;

use regex::Regex;

use super::messages::{ConsumerError, ConsumerResult, OffsetAndMetadata, SeekTo};
use crate::broker::{is_internal_topic, validate_topic_name};
use crate::error::BrokerError;
use crate::group::TopicPartition;
use crate::ids::GenerationId;

/// How the instance chose what it consumes. The modes exclude each other, as in
/// Kafka: a subscribed instance cannot also assign partitions by hand, nor the reverse.
#[derive(Debug, Clone)]
pub enum SubscriptionMode {
    /// Neither subscribed nor assigned.
    None,
    /// Subscribed to these topics (sorted, without repeats, never empty); the group
    /// assigns their partitions.
    Topics(Vec<String>),
    /// Subscribed to every non-internal topic whose whole name matches `regex`;
    /// `matched` is the topics that match now (sorted, possibly none).
    Pattern { regex: Regex, matched: Vec<String> },
    /// Partitions assigned by hand, outside group management.
    Manual,
}

/// How the generation an instance joins follows the one it last held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationStep {
    /// The very next generation: the partitions it keeps were nobody else's meanwhile.
    Next,
    /// It missed one or more (a sync that failed): its partitions may have been
    /// another member's, fetched and committed further.
    Skipped,
}

impl GenerationStep {
    pub fn between(held: GenerationId, joined: GenerationId) -> GenerationStep {
        if held.get().checked_add(1) == Some(joined.get()) {
            GenerationStep::Next
        } else {
            GenerationStep::Skipped
        }
    }
}

#[derive(Debug)]
pub struct SubscriptionState {
    mode: SubscriptionMode,
    /// Bumped whenever the subscribed topics change: a join started before is stale.
    subscription_version: u64,
    assignment: Vec<TopicPartition>,
    /// Bumped whenever `assignment` is replaced: a fetch that started before may bring
    /// records of a partition lost and assigned again since.
    assignment_epoch: u64,
    /// The next offset to fetch per assigned partition; absent until first fetched.
    positions: BTreeMap<TopicPartition, i64>,
}

impl Default for SubscriptionState {
    fn default() -> Self {
        SubscriptionState {
            mode: SubscriptionMode::None,
            subscription_version: 0,
            assignment: Vec::new(),
            assignment_epoch: 0,
            positions: BTreeMap::new(),
        }
    }
}

impl SubscriptionState {
    pub fn mode(&self) -> &SubscriptionMode {
        &self.mode
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.mode, SubscriptionMode::Manual)
    }

    /// Neither subscribed (to topics or a pattern) nor assigned partitions: nothing to poll.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, SubscriptionMode::None)
    }

    /// The topics the group is asked for: those named, or those the pattern matches now.
    pub fn subscribed_topics(&self) -> &[String] {
        match &self.mode {
            SubscriptionMode::Topics(topics) => topics,
            SubscriptionMode::Pattern { matched, .. } => matched,
            SubscriptionMode::None | SubscriptionMode::Manual => &[],
        }
    }

    pub fn subscription_version(&self) -> u64 {
        self.subscription_version
    }

    /// Subscribes to `topics`, replacing a topic or pattern subscription. An empty
    /// list leaves the instance unsubscribed (without leaving its group).
    pub fn subscribe_topics(&mut self, mut topics: Vec<String>) -> ConsumerResult<()> {
        self.refuse_if_manual()?;
        topics.sort();
        topics.dedup();
        for t in &topics {
            validate_topic_name(t)?;
        }
        self.subscription_version += 1;
        self.mode = if topics.is_empty() {
            SubscriptionMode::None
        } else {
            SubscriptionMode::Topics(topics)
        };
        Ok(())
    }

    /// Subscribes to the topics whose whole name matches `pattern` (Java's
    /// `Pattern.matches`); none match until [`Self::match_pattern`] is given the topics.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> ConsumerResult<()> {
        self.refuse_if_manual()?;
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            ConsumerError::Broker(BrokerError::InvalidRequest(format!(
                "invalid topic_pattern: {e}"
            )))
        })?;
        self.subscription_version += 1;
        self.mode = SubscriptionMode::Pattern {
            regex,
            matched: Vec::new(),
        };
        Ok(())
    }

    /// Matches a pattern subscription against the topics that exist now (sorted);
    /// true if the matched topics changed. Without a pattern, nothing changes.
    pub fn match_pattern<'a>(&mut self, existing: impl IntoIterator<Item = &'a String>) -> bool {
        let SubscriptionMode::Pattern { regex, matched } = &mut self.mode else {
            return false;
        };
        let now: Vec<String> = existing
            .into_iter()
            .filter(|t| !is_internal_topic(t) && regex.is_match(t))
            .cloned()
            .collect();
        if now == *matched {
            return false;
        }
        *matched = now;
        self.subscription_version += 1;
        true
    }

    /// Drops the subscription or the manual assignment (the partitions are released
    /// separately, once their positions have been committed).
    pub fn unsubscribe(&mut self) {
        self.subscription_version += 1;
        self.mode = SubscriptionMode::None;
    }

    /// Whether partitions may be assigned by hand: not while subscribed.
    pub fn check_assignable(&self) -> ConsumerResult<()> {
        match self.mode {
            SubscriptionMode::Topics(_) | SubscriptionMode::Pattern { .. } => {
                Err(ConsumerError::MixedSubscription {
                    holds: "is subscribed",
                })
            }
            SubscriptionMode::None | SubscriptionMode::Manual => Ok(()),
        }
    }

    /// Assigns `partitions` by hand, replacing an earlier manual assignment; the
    /// partitions kept keep their positions. An empty list leaves nothing assigned.
    pub fn assign(&mut self, mut partitions: Vec<TopicPartition>) -> ConsumerResult<()> {
        self.check_assignable()?;
        partitions.sort();
        partitions.dedup();
        self.mode = if partitions.is_empty() {
            SubscriptionMode::None
        } else {
            SubscriptionMode::Manual
        };
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.replace_assignment(partitions);
        Ok(())
    }

    /// Takes the partitions a group generation gave the instance. Positions carry over
    /// (as in Kafka's cooperative protocol) only into the very next generation.
    pub fn assign_from_group(&mut self, partitions: Vec<TopicPartition>, step: GenerationStep) {
        match step {
            GenerationStep::Next => self.positions.retain(|tp, _| partitions.contains(tp)),
            GenerationStep::Skipped => self.positions.clear(),
        }
        self.replace_assignment(partitions);
    }

    /// The partitions are handed back (the group left, or the pattern matches
    /// nothing): the assignment and every position go.
    pub fn release_all(&mut self) {
        self.replace_assignment(Vec::new());
        self.positions.clear();
    }

    /// A join failed: the instance holds nothing until it joins again, but keeps its
    /// positions, which a join into the next generation resumes.
    pub fn suspend_assignment(&mut self) {
        self.replace_assignment(Vec::new());
    }

    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    pub fn assignment_epoch(&self) -> u64 {
        self.assignment_epoch
    }

    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.assignment.contains(tp)
    }

    pub fn check_assigned(&self, tp: &TopicPartition) -> ConsumerResult<()> {
        if self.is_assigned(tp) {
            return Ok(());
        }
        Err(ConsumerError::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })
    }

    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// Every position, as the offsets to commit (what auto commit and a commit that
    /// names no offsets send), as Kafka's `allConsumed`.
    pub fn all_consumed(&self) -> Vec<OffsetAndMetadata> {
        self.positions
            .iter()
            .map(|(tp, offset)| OffsetAndMetadata {
                partition: tp.clone(),
                offset: *offset,
                metadata: String::new(),
            })
            .collect()
    }

    /// Checks seeks before their offsets are looked up: assigned partitions only, and
    /// no negative offset.
    pub fn check_seeks(&self, seeks: &[(TopicPartition, SeekTo)]) -> ConsumerResult<()> {
        for (tp, to) in seeks {
            self.check_assigned(tp)?;
            if let SeekTo::Offset(o) = to {
                if *o < 0 {
                    return Err(ConsumerError::Broker(BrokerError::InvalidRequest(format!(
                        "offset {o} for {}-{} is negative",
                        tp.topic, tp.partition
                    ))));
                }
            }
        }
        Ok(())
    }

    /// Moves the next fetch of `tp` to `offset`; a partition no longer assigned (lost
    /// while the offset was looked up) is left alone.
    pub fn seek(&mut self, tp: TopicPartition, offset: i64) {
        if self.is_assigned(&tp) {
            self.positions.insert(tp, offset);
        }
    }

    /// Records that a fetch begun at assignment epoch `started` read `tp` from `from`
    /// up to `next`; true if its records still count. They do not if the partition was
    /// lost, if a seek or another poll moved its position meanwhile, or if it was lost
    /// and assigned again (its position then starts over from the committed offset,
    /// which may be past these records).
    pub fn record_fetched(
        &mut self,
        tp: &TopicPartition,
        from: i64,
        next: i64,
        started: u64,
    ) -> bool {
        if !self.is_assigned(tp) {
            return false;
        }
        match self.positions.get(tp) {
            Some(&p) if p != from => return false,
            None if self.assignment_epoch != started => return false,
            _ => {}
        }
        self.positions.insert(tp.clone(), next);
        true
    }

    fn replace_assignment(&mut self, partitions: Vec<TopicPartition>) {
        self.assignment = partitions;
        self.assignment_epoch += 1;
    }

    fn refuse_if_manual(&self) -> ConsumerResult<()> {
        if self.is_manual() {
            return Err(ConsumerError::MixedSubscription {
                holds: "has assigned partitions",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn assigned(state: &mut SubscriptionState, partitions: &[TopicPartition]) {
        state.assign_from_group(partitions.to_vec(), GenerationStep::Skipped);
    }

    #[test]
    fn topics_are_sorted_deduplicated_and_validated() {
        let mut s = SubscriptionState::default();
        s.subscribe_topics(topics(&["b", "a", "b"])).unwrap();
        assert_eq!(s.subscribed_topics(), ["a", "b"]);
        assert!(!s.is_idle());
        let version = s.subscription_version();
        assert!(s.subscribe_topics(topics(&["ok", "not ok"])).is_err());
        assert_eq!(
            s.subscribed_topics(),
            ["a", "b"],
            "a refused subscribe changes nothing"
        );
        assert_eq!(s.subscription_version(), version);
        s.subscribe_topics(Vec::new()).unwrap();
        assert!(s.is_idle());
    }

    #[test]
    fn subscribing_and_assigning_by_hand_exclude_each_other() {
        let mut s = SubscriptionState::default();
        s.assign(vec![tp("t", 1), tp("t", 0), tp("t", 1)]).unwrap();
        assert!(s.is_manual());
        assert_eq!(s.assignment(), [tp("t", 0), tp("t", 1)]);
        assert!(matches!(
            s.subscribe_topics(topics(&["t"])),
            Err(ConsumerError::MixedSubscription { .. })
        ));
        assert!(s.subscribe_pattern("t.*").is_err());

        s.assign(Vec::new()).unwrap();
        assert!(s.is_idle(), "an empty assignment is no assignment");
        s.subscribe_pattern("t.*").unwrap();
        assert!(matches!(
            s.assign(vec![tp("t", 0)]),
            Err(ConsumerError::MixedSubscription { .. })
        ));
        assert!(
            s.check_assignable().is_err(),
            "a pattern matching nothing still counts"
        );
    }

    #[test]
    fn a_pattern_matches_whole_names_and_skips_internal_topics() {
        let mut s = SubscriptionState::default();
        assert!(s.subscribe_pattern("(").is_err());
        s.subscribe_pattern("orders|pay.*").unwrap();
        let existing = topics(&["__consumer_offsets", "orders", "orders-eu", "payments"]);
        let before = s.subscription_version();
        assert!(s.match_pattern(&existing));
        assert_eq!(s.subscribed_topics(), ["orders", "payments"]);
        assert_eq!(s.subscription_version(), before + 1);
        assert!(
            !s.match_pattern(&existing),
            "the same topics change nothing"
        );
        assert_eq!(s.subscription_version(), before + 1);
        s.unsubscribe();
        assert!(!s.match_pattern(&existing), "no pattern, nothing to match");
        assert!(s.subscribed_topics().is_empty());

        let mut all = SubscriptionState::default();
        all.subscribe_pattern(".*").unwrap();
        assert!(all.match_pattern(&existing));
        assert_eq!(all.subscribed_topics(), ["orders", "orders-eu", "payments"]);
    }

    #[test]
    fn positions_carry_over_only_into_the_next_generation() {
        let mut s = SubscriptionState::default();
        assigned(&mut s, &[tp("t", 0), tp("t", 1)]);
        s.seek(tp("t", 0), 5);
        s.seek(tp("t", 1), 7);

        s.assign_from_group(vec![tp("t", 1), tp("t", 2)], GenerationStep::Next);
        assert_eq!(s.positions().get(&tp("t", 0)), None, "lost partitions go");
        assert_eq!(s.positions().get(&tp("t", 1)), Some(&7));

        s.assign_from_group(vec![tp("t", 1)], GenerationStep::Skipped);
        assert!(s.positions().is_empty());

        let between = |held, joined| {
            GenerationStep::between(GenerationId::new(held), GenerationId::new(joined))
        };
        assert_eq!(between(-1, 0), GenerationStep::Next);
        assert_eq!(between(3, 5), GenerationStep::Skipped);
        assert_eq!(between(4, 4), GenerationStep::Skipped);
        assert_eq!(between(i32::MAX, i32::MIN), GenerationStep::Skipped);
    }

    #[test]
    fn a_suspended_assignment_keeps_its_positions_and_a_released_one_does_not() {
        let mut s = SubscriptionState::default();
        assigned(&mut s, &[tp("t", 0)]);
        s.seek(tp("t", 0), 3);
        let epoch = s.assignment_epoch();
        s.suspend_assignment();
        assert!(s.assignment().is_empty());
        assert!(s.assignment_epoch() > epoch);
        assert_eq!(s.all_consumed().len(), 1);
        s.release_all();
        assert!(s.all_consumed().is_empty());
    }

    #[test]
    fn a_manual_reassignment_keeps_the_positions_of_partitions_it_keeps() {
        let mut s = SubscriptionState::default();
        s.assign(vec![tp("a", 0), tp("a", 1)]).unwrap();
        s.seek(tp("a", 0), 10);
        s.seek(tp("a", 1), 20);
        s.assign(vec![tp("a", 1), tp("b", 0)]).unwrap();
        assert_eq!(
            s.all_consumed(),
            [OffsetAndMetadata {
                partition: tp("a", 1),
                offset: 20,
                metadata: String::new(),
            }]
        );
    }

    #[test]
    fn seeks_are_checked_and_only_move_assigned_partitions() {
        let mut s = SubscriptionState::default();
        assigned(&mut s, &[tp("t", 0)]);
        assert!(s.check_seeks(&[(tp("t", 0), SeekTo::Beginning)]).is_ok());
        assert!(matches!(
            s.check_seeks(&[(tp("t", 9), SeekTo::Offset(1))]),
            Err(ConsumerError::NotAssigned { .. })
        ));
        assert!(matches!(
            s.check_seeks(&[(tp("t", 0), SeekTo::Offset(-1))]),
            Err(ConsumerError::Broker(BrokerError::InvalidRequest(_)))
        ));
        s.seek(tp("t", 9), 4);
        assert_eq!(s.positions().get(&tp("t", 9)), None);
        s.seek(tp("t", 0), 4);
        assert_eq!(s.positions().get(&tp("t", 0)), Some(&4));
    }

    #[test]
    fn fetched_records_count_only_if_nothing_moved_meanwhile() {
        let mut s = SubscriptionState::default();
        assigned(&mut s, &[tp("t", 0), tp("t", 1)]);
        let started = s.assignment_epoch();

        // First fetch of a partition: its position comes from the fetch.
        assert!(s.record_fetched(&tp("t", 0), 0, 4, started));
        assert_eq!(s.positions().get(&tp("t", 0)), Some(&4));
        // A seek (or another poll) moved it: a read from the old place is dropped.
        s.seek(tp("t", 0), 10);
        assert!(!s.record_fetched(&tp("t", 0), 4, 8, started));
        assert_eq!(s.positions().get(&tp("t", 0)), Some(&10));
        // Not assigned (any more).
        assert!(!s.record_fetched(&tp("t", 7), 0, 1, started));
        // Lost and assigned again while the fetch ran: it has no position, and the
        // fetch predates the assignment.
        s.assign_from_group(vec![tp("t", 1)], GenerationStep::Skipped);
        s.assign_from_group(vec![tp("t", 1)], GenerationStep::Next);
        assert!(!s.record_fetched(&tp("t", 1), 0, 3, started));
        assert!(s.record_fetched(&tp("t", 1), 0, 3, s.assignment_epoch()));
    }
}
