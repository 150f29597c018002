//! Consumer instances: the in-broker group members REST v2 clients and WebSocket
//! group subscriptions read through (Confluent REST Proxy's consumer instances).
//! [`create`] and [`find`] answer a [`Consumer`] handle whose methods are the
//! instance's operations — subscribe or assign, poll, commit, seek, close — so the
//! protocols never hold an actor address or name a message.

use actix::Addr;

use super::{Engine, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::consumer::TopicFilter;
use crate::consumer::{
    Assign, AssignmentState, CloseInstance, Commit, Committed, ConsumedRecord, ConsumerError,
    ConsumerInstance, ConsumerResult, CreateInstance, FindInstance, GetAssignment, GetInstanceInfo,
    GetSubscription, InstanceInfo, InstanceSettings, OffsetAndMetadata, Poll, Seek, SeekTo,
    Subscribe, Subscription, Unsubscribe, WatchAssignment,
};
use crate::error::BrokerError;
use crate::group::offsets_topic::CommittedOffset;
use crate::group::GroupError;
use crate::group::TopicPartition;

/// One consumer instance. Cheap to clone; a closed instance answers
/// [`ConsumerError::Closed`]-like errors (its mailbox is gone).
#[derive(Clone)]
pub struct Consumer {
    addr: Addr<ConsumerInstance>,
    /// Who uses it, for the authorizer.
    engine: Engine,
    ctx: RequestContext,
}

fn gone(e: actix::MailboxError) -> ConsumerError {
    ConsumerError::Broker(BrokerError::mailbox(e))
}

/// Creates instance `name` in `group_id` (Read on the group: it joins it).
pub async fn create(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    name: &str,
    settings: InstanceSettings,
) -> ConsumerResult<Consumer> {
    engine
        .authorize_group(ctx, Operation::Read, group_id)
        .map_err(GroupError::from)?;
    let addr = engine
        .consumers
        .send(CreateInstance {
            group_id: group_id.to_string(),
            name: name.to_string(),
            settings,
        })
        .await
        .map_err(gone)??;
    Ok(Consumer {
        addr,
        engine: engine.clone(),
        ctx: ctx.clone(),
    })
}

/// The instance `name` of `group_id`, if it exists (Read on the group).
pub async fn find(
    engine: &Engine,
    ctx: &RequestContext,
    group_id: &str,
    name: &str,
) -> ConsumerResult<Consumer> {
    engine
        .authorize_group(ctx, Operation::Read, group_id)
        .map_err(GroupError::from)?;
    let addr = engine
        .consumers
        .send(FindInstance {
            group_id: group_id.to_string(),
            name: name.to_string(),
        })
        .await
        .map_err(gone)??;
    Ok(Consumer {
        addr,
        engine: engine.clone(),
        ctx: ctx.clone(),
    })
}

impl Consumer {
    /// Read on each topic, or refused with the first that may not be read.
    fn may_read<'a>(&self, topics: impl IntoIterator<Item = &'a String>) -> ConsumerResult<()> {
        for topic in topics {
            self.engine
                .authorize_topic(&self.ctx, Operation::Read, topic)
                .map_err(BrokerError::from)?;
        }
        Ok(())
    }

    /// Read on each topic of the assignment (asked of the instance only when there
    /// is an authorizer).
    async fn may_read_assigned(&self) -> ConsumerResult<()> {
        if self.engine.security.authorizer {
            let assigned = self.assignment().await?;
            self.may_read(assigned.iter().map(|tp| &tp.topic))?;
        }
        Ok(())
    }

    pub async fn info(&self) -> ConsumerResult<InstanceInfo> {
        self.addr.send(GetInstanceInfo).await.map_err(gone)
    }

    /// Leaves the group (committing first with auto commit) and closes.
    pub async fn close(&self) -> ConsumerResult<()> {
        self.addr.send(CloseInstance).await.map_err(gone)
    }

    /// [`Self::close`] without waiting for it (from code that cannot wait).
    pub fn close_soon(&self) {
        self.addr.do_send(CloseInstance);
    }

    /// Subscribes (replacing any earlier subscription): the group assigns partitions.
    /// Every topic named must be readable; a pattern matches only readable ones.
    pub async fn subscribe(&self, to: Subscription) -> ConsumerResult<()> {
        if let Subscription::Topics(topics) = &to {
            self.may_read(topics)?;
        }
        let (engine, ctx) = (self.engine.clone(), self.ctx.clone());
        let visible: TopicFilter = std::sync::Arc::new(move |topic: &str| {
            engine.may(&ctx, Operation::Read, ResourceType::Topic, topic)
        });
        let visible = self.engine.security.authorizer.then_some(visible);
        self.addr
            .send(Subscribe { to, visible })
            .await
            .map_err(gone)?
    }

    pub async fn subscription(&self) -> ConsumerResult<Vec<String>> {
        self.addr.send(GetSubscription).await.map_err(gone)
    }

    pub async fn unsubscribe(&self) -> ConsumerResult<()> {
        self.addr.send(Unsubscribe).await.map_err(gone)?
    }

    /// Assigns partitions by hand, outside group management.
    pub async fn assign(&self, partitions: Vec<TopicPartition>) -> ConsumerResult<()> {
        self.may_read(partitions.iter().map(|tp| &tp.topic))?;
        self.addr.send(Assign { partitions }).await.map_err(gone)?
    }

    pub async fn assignment(&self) -> ConsumerResult<Vec<TopicPartition>> {
        self.addr.send(GetAssignment).await.map_err(gone)
    }

    /// Every change of the assignment, as it happens (the instance does not expire
    /// idle while watched).
    pub async fn watch_assignment(
        &self,
    ) -> ConsumerResult<tokio::sync::watch::Receiver<AssignmentState>> {
        self.addr.send(WatchAssignment).await.map_err(gone)
    }

    /// Records from the instance's positions, waiting up to `timeout_ms`.
    pub async fn poll(
        &self,
        max_bytes: usize,
        timeout_ms: u64,
    ) -> ConsumerResult<Vec<ConsumedRecord>> {
        // Every read is authorized, as Kafka authorizes every Fetch: an ACL revoked
        // after the subscription stops it.
        self.may_read_assigned().await?;
        let records = self
            .addr
            .send(Poll {
                max_bytes,
                timeout_ms,
            })
            .await
            .map_err(gone)??;
        // Over its fetch quota, the client's answer waits (Kafka's throttle).
        let bytes: usize = records.iter().map(ConsumedRecord::size_bytes).sum();
        let throttle =
            self.engine
                .throttle(&self.ctx, crate::quotas::QuotaKind::Consumer, bytes as u64);
        if !throttle.is_zero() {
            self.engine.clock.sleep(throttle).await;
        }
        Ok(records)
    }

    /// Commits `offsets`, or with `None` every position fetched up to.
    pub async fn commit(
        &self,
        offsets: Option<Vec<OffsetAndMetadata>>,
    ) -> ConsumerResult<Vec<OffsetAndMetadata>> {
        match &offsets {
            Some(offsets) => self.may_read(offsets.iter().map(|o| &o.partition.topic))?,
            None => self.may_read_assigned().await?,
        }
        self.addr.send(Commit { offsets }).await.map_err(gone)?
    }

    pub async fn committed(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> ConsumerResult<Vec<(TopicPartition, Option<CommittedOffset>)>> {
        // Kafka's OffsetFetch: Describe on each topic (Read implies it).
        for tp in &partitions {
            self.engine
                .authorize_topic(&self.ctx, Operation::Describe, &tp.topic)
                .map_err(BrokerError::from)?;
        }
        self.addr
            .send(Committed { partitions })
            .await
            .map_err(gone)?
    }

    pub async fn seek(&self, seeks: Vec<(TopicPartition, SeekTo)>) -> ConsumerResult<()> {
        self.may_read(seeks.iter().map(|(tp, _)| &tp.topic))?;
        self.addr.send(Seek { seeks }).await.map_err(gone)?
    }
}
