//! One WebSocket connection: reads client frames and answers them, owns the
//! connection's subscriptions, follows group assignments, and enforces the idle and
//! slow-client limits. Everything it sends goes through the connection's
//! [`Outbox`]; produce frames are handled in order by a task of their own, so a
//! producer waiting for acks never holds up subscriptions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use troupe_actors::consumer::{
    reset_offset, AssignmentState, InstanceSettings, OffsetAndMetadata, ResetPolicy,
    Subscription as GroupSubscription,
};
use troupe_actors::group::TopicPartition;
use troupe_actors::partition::{OffsetSpec, PartitionFeed};
use troupe_actors::requests::consumers::{self, Consumer};
use troupe_actors::requests::list_offsets::{log_bounds, resolve};
use troupe_actors::requests::{RequestContext, TopicRoute};
use troupe_actors::BrokerError;

use super::outbox::{Closed, Frame, Outbox};
use super::protocol::{self, close_codes, ClientFrame, StartFrom, SubscribeRequest, Target};
use super::subscription::{Membership, Rendering, Subscription};
use super::ConnectionSlot;
use crate::error::{codes, ApiError, ApiResult};
use crate::produce_json::{prepare, produce_prepared};
use crate::state::AppState;

/// Produce frames queued before the connection stops reading more.
const PRODUCE_QUEUE_FRAMES: usize = 16;
/// How long the broker waits for the client to answer its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

struct ProduceJob {
    id: Option<Value>,
    topic: String,
    acks: troupe_actors::partition::Acks,
    records: Vec<Value>,
}

struct Connection {
    state: Arc<AppState>,
    /// Who opened the connection (authenticated at the upgrade).
    ctx: RequestContext,
    outbox: Outbox,
    subscriptions: HashMap<String, Subscription>,
    /// Assignment changes of group subscriptions: (sub, its serial, the assignment).
    assignments: mpsc::UnboundedSender<(String, u64, AssignmentState)>,
    /// Numbers subscriptions, so a change meant for an earlier one of the same id is
    /// told apart.
    next_serial: u64,
}

/// Why the session ends, and how the socket is closed.
enum End {
    /// The client closed or went away.
    Client(Option<CloseReason>),
    /// The broker closes with `code`.
    Close(u16, String),
}

pub(super) async fn run(
    outbox: Outbox,
    mut stream: AggregatedMessageStream,
    state: Arc<AppState>,
    ctx: RequestContext,
    slot: ConnectionSlot,
) {
    let limits = state.ws.limits.clone();
    let (assignments, mut assignment_rx) = mpsc::unbounded_channel();
    let (produce_tx, produce_rx) = mpsc::channel(PRODUCE_QUEUE_FRAMES);
    let producer = actix_web::rt::spawn(produce_loop(
        produce_rx,
        state.clone(),
        ctx.clone(),
        outbox.clone(),
    ));
    let mut conn = Connection {
        state,
        ctx,
        outbox,
        subscriptions: HashMap::new(),
        assignments,
        next_serial: 0,
    };
    let tick = Duration::from_millis(limits.ping_interval_ms.clamp(10, 1_000));
    let mut ticker = tokio::time::interval(tick);
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    // A produce frame waiting for room in the produce queue: until it has some, the
    // connection is not read (backpressure to the producer), but timers still run.
    let mut waiting_job: Option<ProduceJob> = None;
    let mut shutdown = conn.state.ws.shutdown_signal();
    let end = loop {
        tokio::select! {
            permit = produce_tx.reserve(), if waiting_job.is_some() => {
                match (permit, waiting_job.take()) {
                    (Ok(permit), Some(job)) => permit.send(job),
                    _ => break End::Close(1011, "produce task ended".into()),
                }
            }
            message = stream.recv(), if waiting_job.is_none() => {
                last_heard = Instant::now();
                match message {
                    None => break End::Client(None),
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        match protocol::parse(&text) {
                            Ok(ClientFrame::Produce { id, topic, acks, records }) => {
                                waiting_job = Some(ProduceJob { id, topic, acks, records });
                            }
                            Ok(frame) => conn.handle(frame).await,
                            Err(refused) => conn.reply(refused.frame()),
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        break End::Close(close_codes::UNSUPPORTED_DATA, "client frames are JSON text".into());
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        conn.outbox.send_control(Frame::pong(bytes));
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(reason))) => break End::Client(reason),
                    Some(Err(ProtocolError::Overflow)) => {
                        break End::Close(close_codes::TOO_BIG, format!(
                            "frame larger than websocket.max.frame.bytes = {}", limits.max_frame_bytes));
                    }
                    Some(Err(e)) => break End::Close(1002, format!("protocol error: {e}")),
                }
            }
            Some((sub, serial, assignment)) = assignment_rx.recv() => conn.on_assignment(&sub, serial, assignment).await,
            _ = shutdown.wait_for(|stopping| *stopping) => {
                break End::Close(close_codes::GOING_AWAY, "the broker is shutting down".into());
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() >= Duration::from_millis(limits.idle_timeout_ms) {
                    break End::Close(close_codes::IDLE, format!(
                        "nothing received for websocket.idle.timeout.ms = {}", limits.idle_timeout_ms));
                }
                let stalled = conn.outbox.stalled_for().is_some_and(|d| d >= Duration::from_millis(limits.slow_client_timeout_ms));
                if stalled || conn.outbox.overflowed() {
                    log::info!("websocket client not reading for {} ms ({} bytes queued): dropping it",
                        limits.slow_client_timeout_ms, conn.outbox.queued_bytes());
                    break End::Close(close_codes::SLOW_CLIENT, format!(
                        "slow client: nothing read for websocket.slow.client.timeout.ms = {}", limits.slow_client_timeout_ms));
                }
                if last_ping.elapsed() >= Duration::from_millis(limits.ping_interval_ms) && conn.outbox.stalled_for().is_none() {
                    last_ping = Instant::now();
                    conn.outbox.send_control(Frame::ping(b"troupe"));
                }
            }
        }
    };
    producer.abort();
    conn.shutdown().await;
    let Connection { outbox, .. } = conn;
    close(outbox, stream, end, &limits).await;
    drop(slot);
}

/// The close handshake (RFC 6455 §7.1.1): the broker answers a client's close with
/// the same code, or sends its own and waits (up to [`CLOSE_WAIT`] once it is out) for
/// the client's answer; either way the TCP connection ends as soon as the handshake is
/// done. A close frame stuck behind frames the client is not reading waits for it up
/// to `websocket.idle.timeout.ms`; then the connection is cut.
async fn close(
    outbox: Outbox,
    mut stream: AggregatedMessageStream,
    end: End,
    limits: &super::WsLimits,
) {
    match end {
        End::Client(reason) => {
            let code = reason.as_ref().map(|r| u16::from(r.code));
            outbox.close(code, "", true);
        }
        End::Close(code, reason) => {
            log::debug!("closing websocket with {code}: {reason}");
            outbox.close(Some(code), &reason, false);
            let answered = async {
                loop {
                    match stream.recv().await {
                        Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => return,
                        // Whatever the client sent before its close is not read any more.
                        Some(Ok(_)) => {}
                    }
                }
            };
            tokio::pin!(answered);
            let started = Instant::now();
            let stuck_limit = Duration::from_millis(limits.idle_timeout_ms).max(CLOSE_WAIT);
            let mut sent_at = None;
            loop {
                let check = Duration::from_millis(100);
                if tokio::time::timeout(check, &mut answered).await.is_ok() {
                    break;
                }
                if outbox.close_sent() {
                    let sent_at = *sent_at.get_or_insert_with(Instant::now);
                    if sent_at.elapsed() >= CLOSE_WAIT {
                        break;
                    }
                } else if started.elapsed() >= stuck_limit {
                    break;
                }
            }
            outbox.close_reply_received();
        }
    }
}

impl Connection {
    fn reply(&self, text: String) {
        self.outbox.text(text);
    }

    fn error(&self, e: &ApiError, sub: Option<&str>) {
        self.reply(protocol::error_frame(
            e,
            sub.map(|s| ("sub", Value::from(s))),
        ));
    }

    async fn handle(&mut self, frame: ClientFrame) {
        match frame {
            ClientFrame::Subscribe(request) => {
                let sub = request.sub.clone();
                if let Err(e) = self.subscribe(request).await {
                    self.error(&e, Some(&sub));
                }
            }
            ClientFrame::Unsubscribe { sub } => match self.subscriptions.remove(&sub) {
                Some(s) => {
                    close_membership(s.stop());
                    self.reply(json!({"type": "unsubscribed", "sub": sub}).to_string());
                }
                None => self.error(&protocol::unknown_subscription(&sub), Some(&sub)),
            },
            ClientFrame::Pause { sub } => self.set_paused(sub, true),
            ClientFrame::Resume { sub } => self.set_paused(sub, false),
            ClientFrame::Credit { sub, records } => match self.subscriptions.get(&sub) {
                Some(s) => s.flow.add_credit(records),
                None => self.error(&protocol::unknown_subscription(&sub), Some(&sub)),
            },
            ClientFrame::Commit { sub, offsets } => {
                if let Err(e) = self.commit(&sub, offsets).await {
                    self.error(&e, Some(&sub));
                }
            }
            ClientFrame::Ping { id } => {
                self.reply(json!({"type": "pong", "id": id}).to_string());
            }
            ClientFrame::Produce { .. } => {}
        }
    }

    fn set_paused(&self, sub: Option<String>, paused: bool) {
        let kind = if paused { "paused" } else { "resumed" };
        match sub {
            Some(sub) => match self.subscriptions.get(&sub) {
                Some(s) => {
                    s.flow.set_paused(paused);
                    self.reply(json!({"type": kind, "sub": sub, "reason": "client"}).to_string());
                }
                None => self.error(&protocol::unknown_subscription(&sub), Some(&sub)),
            },
            None => {
                for (id, s) in &self.subscriptions {
                    s.flow.set_paused(paused);
                    self.reply(json!({"type": kind, "sub": id, "reason": "client"}).to_string());
                }
            }
        }
    }

    async fn subscribe(&mut self, request: SubscribeRequest) -> ApiResult<()> {
        if self.subscriptions.contains_key(&request.sub) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                codes::SUBSCRIPTION_EXISTS,
                format!(
                    "Subscription '{}' already exists on this connection",
                    request.sub
                ),
            ));
        }
        let max = self.state.ws.limits.max_subscriptions;
        if self.subscriptions.len() >= max {
            return Err(ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                codes::TOO_MANY_REQUESTS,
                format!("Too many subscriptions on this connection: websocket.max.subscriptions.per.connection = {max}"),
            ));
        }
        let rendering = Rendering {
            format: request.format,
            frames: request.frames,
        };
        self.next_serial += 1;
        let serial = self.next_serial;
        let mut subscription = Subscription::new(&request.sub, serial, rendering, request.credit);
        match request.target {
            Target::Partitions {
                topic,
                partitions,
                from,
            } => {
                let route = self.route(&topic).await?;
                let starts = start_offsets(&route, partitions, &from).await?;
                let fetch_max_bytes = self.state.ws.limits.fetch_max_bytes;
                let mut answer = Vec::new();
                for (partition, offset) in &starts {
                    let feed = PartitionFeed::routed(
                        self.state.engine.routes.clone(),
                        &topic,
                        *partition,
                        *offset,
                        fetch_max_bytes,
                    );
                    subscription.start_partition(
                        TopicPartition::new(&topic, *partition),
                        feed,
                        self.outbox.clone(),
                        self.state.ws.limits.records_frame_bytes,
                        self.fetch_throttle(),
                    );
                    answer.push(json!({"partition": partition, "offset": offset}));
                }
                self.reply(
                    json!({"type": "subscribed", "sub": request.sub, "topic": topic, "partitions": answer})
                        .to_string(),
                );
            }
            Target::Group {
                group_id,
                topics,
                reset,
            } => {
                for topic in &topics {
                    self.route(topic).await?;
                }
                let membership = self
                    .join_group(
                        &request.sub,
                        serial,
                        &group_id,
                        topics.clone(),
                        reset,
                        request.format,
                    )
                    .await?;
                subscription.membership = Some(membership);
                self.reply(
                    json!({"type": "subscribed", "sub": request.sub, "group": group_id, "topics": topics})
                        .to_string(),
                );
            }
        }
        self.subscriptions.insert(request.sub, subscription);
        Ok(())
    }

    /// What a delivery's bytes cost this connection's user under its fetch quota.
    fn fetch_throttle(&self) -> super::subscription::Throttle {
        let (engine, ctx) = (self.state.engine.clone(), self.ctx.clone());
        std::rc::Rc::new(move |bytes| {
            engine.throttle(&ctx, troupe_actors::quotas::QuotaKind::Consumer, bytes)
        })
    }

    /// A topic to read: Read on it, then its route.
    async fn route(&self, topic: &str) -> ApiResult<TopicRoute> {
        self.state
            .engine
            .authorize_topic(&self.ctx, troupe_actors::auth::acl::Operation::Read, topic)
            .map_err(troupe_actors::BrokerError::from)?;
        self.state.route(topic)
    }

    /// A consumer instance in the broker is the group member; this connection
    /// watches its assignment and delivers the assigned partitions.
    async fn join_group(
        &self,
        sub: &str,
        serial: u64,
        group_id: &str,
        topics: Vec<String>,
        reset: ResetPolicy,
        format: crate::records::EmbeddedFormat,
    ) -> ApiResult<Membership> {
        let instance = consumers::create(
            &self.state.engine,
            &self.ctx,
            group_id,
            &format!("websocket-{}", uuid::Uuid::new_v4()),
            InstanceSettings {
                format: format.name().into(),
                auto_offset_reset: reset,
                auto_commit: false,
                client_id: "troupe-websocket".into(),
            },
        )
        .await?;
        let mut watch = match instance.watch_assignment().await {
            Ok(watch) => watch,
            Err(e) => {
                instance.close_soon();
                return Err(e.into());
            }
        };
        if let Err(e) = instance.subscribe(GroupSubscription::Topics(topics)).await {
            let _ = instance.close().await;
            return Err(e.into());
        }
        let forward = self.assignments.clone();
        let sub = sub.to_string();
        let watcher = actix_web::rt::spawn(async move {
            while watch.changed().await.is_ok() {
                let state = watch.borrow_and_update().clone();
                if forward.send((sub.clone(), serial, state)).is_err() {
                    return;
                }
            }
        });
        Ok(Membership {
            instance,
            watcher,
            reset,
        })
    }

    /// The group changed this subscription's partitions: stop the revoked ones,
    /// start the new ones from their committed offsets, and tell the client.
    async fn on_assignment(&mut self, sub: &str, serial: u64, assignment: AssignmentState) {
        let Some(subscription) = self.subscriptions.get(sub).filter(|s| s.serial == serial) else {
            return;
        };
        let Some(membership) = &subscription.membership else {
            return;
        };
        let instance = membership.instance.clone();
        let reset = membership.reset;
        let new: BTreeSet<TopicPartition> = assignment.partitions.iter().cloned().collect();
        // A delivery that ended (its partition failed) counts as not running: it is
        // started again.
        let current: BTreeSet<TopicPartition> = subscription
            .tasks
            .iter()
            .filter(|(_, task)| !task.is_finished())
            .map(|(tp, _)| tp.clone())
            .collect();
        let revoked: Vec<TopicPartition> = current.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&current).cloned().collect();
        let starts = match self.group_starts(&instance, &added, reset).await {
            Ok(starts) => starts,
            Err(e) => {
                // Say so, and try the same assignment again shortly.
                self.error(&e, Some(sub));
                let again = self.assignments.clone();
                let sub = sub.to_string();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = again.send((sub, serial, assignment));
                });
                return;
            }
        };
        let fetch_max_bytes = self.state.ws.limits.fetch_max_bytes;
        let frame_bytes = self.state.ws.limits.records_frame_bytes;
        let outbox = self.outbox.clone();
        let throttle = self.fetch_throttle();
        let Some(subscription) = self.subscriptions.get_mut(sub) else {
            return;
        };
        for tp in &revoked {
            subscription.stop_partition(tp);
        }
        let generation = assignment.generation_id;
        if !revoked.is_empty() {
            let partitions: Vec<Value> = revoked
                .iter()
                .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
                .collect();
            outbox.text(
                json!({"type": "revoked", "sub": sub, "generation": generation, "partitions": partitions})
                    .to_string(),
            );
        }
        let mut assigned = Vec::new();
        for (tp, offset) in starts {
            let feed = PartitionFeed::routed(
                self.state.engine.routes.clone(),
                &tp.topic,
                tp.partition,
                offset,
                fetch_max_bytes,
            );
            assigned.push(json!({"topic": tp.topic, "partition": tp.partition, "offset": offset}));
            subscription.start_partition(tp, feed, outbox.clone(), frame_bytes, throttle.clone());
        }
        if !assigned.is_empty() {
            outbox.text(
                json!({"type": "assigned", "sub": sub, "generation": generation, "partitions": assigned})
                    .to_string(),
            );
        }
    }

    /// Where newly assigned partitions start: the group's committed offset, else per
    /// the subscription's reset policy.
    async fn group_starts(
        &self,
        instance: &Consumer,
        added: &[TopicPartition],
        reset: ResetPolicy,
    ) -> ApiResult<Vec<(TopicPartition, i64)>> {
        if added.is_empty() {
            return Ok(Vec::new());
        }
        let committed = instance.committed(added.to_vec()).await?;
        let mut routes: BTreeMap<String, TopicRoute> = BTreeMap::new();
        let mut out = Vec::new();
        for (tp, offset) in committed {
            if !routes.contains_key(&tp.topic) {
                routes.insert(tp.topic.clone(), self.route(&tp.topic).await?);
            }
            let Some(route) = routes.get(&tp.topic) else {
                continue;
            };
            if !(0..route.partition_count() as i32).contains(&tp.partition) {
                continue;
            }
            let addr = self
                .state
                .engine
                .routes
                .leader(&tp.topic, tp.partition)
                .await?;
            // A committed offset the log no longer has (retention) or does not have
            // yet resets, as Kafka's auto.offset.reset.
            let (start, end) = log_bounds(&addr).await?;
            let offset = match offset {
                Some(c) if (start..=end).contains(&c.offset) => c.offset,
                _ => reset_offset(&tp, Some(&addr), reset).await?,
            };
            out.push((tp, offset));
        }
        Ok(out)
    }

    async fn commit(&self, sub: &str, offsets: Vec<protocol::CommitOffset>) -> ApiResult<()> {
        let subscription = self
            .subscriptions
            .get(sub)
            .ok_or_else(|| protocol::unknown_subscription(sub))?;
        let Some(membership) = &subscription.membership else {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                codes::ILLEGAL_STATE,
                format!(
                    "Subscription '{sub}' is not a group subscription: only group members commit"
                ),
            ));
        };
        let offsets: Vec<OffsetAndMetadata> = offsets
            .into_iter()
            .map(|o| OffsetAndMetadata {
                partition: TopicPartition::new(&o.topic, o.partition),
                offset: o.offset,
                metadata: String::new(),
            })
            .collect();
        let committed = membership.instance.commit(Some(offsets)).await?;
        let committed: Vec<Value> = committed
            .iter()
            .map(|o| {
                json!({"topic": o.partition.topic, "partition": o.partition.partition, "offset": o.offset})
            })
            .collect();
        self.reply(json!({"type": "committed", "sub": sub, "offsets": committed}).to_string());
        Ok(())
    }

    async fn shutdown(&mut self) {
        for (_, s) in self.subscriptions.drain() {
            if let Some(m) = s.stop() {
                // Leave the group now, so the others get its partitions at once.
                let _ = m.instance.close().await;
            }
        }
    }
}

fn close_membership(membership: Option<Membership>) {
    if let Some(m) = membership {
        m.instance.close_soon();
    }
}

/// The starting offset of each subscribed partition, checked against the log.
async fn start_offsets(
    route: &TopicRoute,
    partitions: Option<Vec<i32>>,
    from: &StartFrom,
) -> ApiResult<BTreeMap<i32, i64>> {
    let count = route.partition_count() as i32;
    let chosen: Vec<i32> = match (from, partitions) {
        (StartFrom::Offsets(offsets), _) => offsets.keys().copied().collect(),
        (_, Some(list)) => list,
        (_, None) => (0..count).collect(),
    };
    let mut out = BTreeMap::new();
    for p in chosen {
        if !(0..count).contains(&p) {
            return Err(BrokerError::UnknownPartition {
                topic: route.name.clone(),
                partition: p,
            }
            .into());
        }
        let addr = &route.leader(p)?;
        let offset = match from {
            StartFrom::Beginning => resolve(addr, OffsetSpec::Earliest).await?,
            StartFrom::End => resolve(addr, OffsetSpec::Latest).await?,
            StartFrom::Timestamp(t) => resolve(addr, OffsetSpec::Timestamp(*t)).await?,
            StartFrom::Offsets(offsets) => {
                let wanted = offsets.get(&p).copied().unwrap_or(0);
                let (start, end) = log_bounds(addr).await?;
                if wanted < start || wanted > end {
                    return Err(BrokerError::OffsetOutOfRange {
                        topic: route.name.clone(),
                        partition: p,
                        requested: wanted,
                        log_start_offset: start,
                        log_end_offset: end,
                    }
                    .into());
                }
                wanted
            }
        };
        out.insert(p, offset);
    }
    Ok(out)
}

async fn produce_loop(
    mut jobs: mpsc::Receiver<ProduceJob>,
    state: Arc<AppState>,
    ctx: RequestContext,
    outbox: Outbox,
) {
    while let Some(job) = jobs.recv().await {
        let Some(answer) = produce_job(&state, &ctx, job).await else {
            continue;
        };
        if outbox.send_control_waiting(Frame::text(answer)).await == Err(Closed) {
            return;
        }
    }
}

/// Produces one frame's records; the answer is an `ack` frame with one result per
/// record, in order (none with acks=0 unless a record failed).
async fn produce_job(state: &AppState, ctx: &RequestContext, job: ProduceJob) -> Option<String> {
    let ProduceJob {
        id,
        topic,
        acks,
        records,
    } = job;
    let route = match state.produce_target(ctx, &topic) {
        Ok(route) => route,
        Err(e) => {
            return Some(protocol::error_frame(
                &e,
                Some(("id", id.unwrap_or(Value::Null))),
            ))
        }
    };
    let prepared: Vec<_> = records.into_iter().map(prepare).collect();
    let mut failed = false;
    let results: Vec<Value> = produce_prepared(state, &route, &prepared, acks)
        .await
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|e| {
                failed = true;
                e.body()
            })
        })
        .collect();
    if acks == troupe_actors::partition::Acks::None && !failed {
        return None;
    }
    Some(json!({"type": "ack", "id": id, "topic": topic, "results": results}).to_string())
}
