//! The request layer: one file per operation every protocol offers (produce, and
//! more to come), each a function over an [`Engine`] handle and a
//! [`RequestContext`], answering typed results. REST v3, REST v2, the WebSocket and
//! the Kafka listener only translate their wire shapes to and from these calls. Only
//! this layer (and the actors themselves) send messages to actors, as Kafka's
//! `KafkaApis` sits over its `ReplicaManager` and coordinators.

pub mod acls;
pub mod configs;
pub mod consumers;
pub mod delete_records;
pub mod fetch;
pub mod groups;
pub mod leader_epochs;
pub mod list_offsets;
pub mod membership;
pub mod metadata;
pub mod produce;
pub mod producer_ids;
pub mod quotas;
pub mod remote;
mod route;
pub mod topics;
pub mod users;

use std::net::SocketAddr;

use actix::Addr;

use crate::auth::acl::{Acls, Asker, Denied, Operation, ResourceType, CLUSTER_RESOURCE};
use crate::broker::Broker;
use crate::cleaner::LogCleaner;
use crate::clock::Clock;
use crate::consumer::ConsumerRegistry;
use crate::error::BrokerError;
use crate::group::GroupManager;

pub use route::{Leader, Routes, TopicRoute, LEADER_WAIT};

/// Which listener a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Listener {
    #[default]
    Http,
    WebSocket,
    /// A Kafka-protocol listener.
    Kafka,
    /// Work the broker does for itself (group coordinators, the cleaner).
    Internal,
}

/// Who asks, and from where: filled by each protocol adapter. `user` is the
/// authenticated user (`None`: Kafka's `User:ANONYMOUS`); authorization reads it here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub listener: Listener,
    /// Came through the inter-broker listener of a multi-node cluster: another
    /// broker, acting for a client it has authorized already, when its principal
    /// is one of `super.users` ([`Engine::is_broker`]).
    pub inter_broker: bool,
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub client_address: Option<SocketAddr>,
}

impl RequestContext {
    /// Kafka's principal of who asks: `User:alice`, or `User:ANONYMOUS`.
    pub fn principal(&self) -> String {
        crate::auth::principal(self.user.as_deref().unwrap_or(crate::auth::ANONYMOUS))
    }

    /// `f` of who asks, as the authorizer knows them.
    fn as_asker<T>(&self, f: impl FnOnce(Asker<'_>) -> T) -> T {
        let principal = self.principal();
        f(Asker {
            principal: &principal,
            host: self.client_address.map(|a| a.ip()),
        })
    }

    pub fn http(client_address: Option<SocketAddr>) -> Self {
        RequestContext {
            listener: Listener::Http,
            client_address,
            ..Default::default()
        }
    }

    pub fn kafka(client_address: Option<SocketAddr>, client_id: Option<String>) -> Self {
        RequestContext {
            listener: Listener::Kafka,
            client_address,
            client_id,
            ..Default::default()
        }
    }

    pub fn websocket(client_address: Option<SocketAddr>) -> Self {
        RequestContext {
            listener: Listener::WebSocket,
            client_address,
            ..Default::default()
        }
    }
}

/// What the request layer works over: the published metadata image and replica
/// table (read, never asked), and the actors that own the rest. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub routes: Routes,
    pub broker: Addr<Broker>,
    pub groups: Addr<GroupManager>,
    pub consumers: Addr<ConsumerRegistry>,
    /// `None` when `log.cleaner.enable` is false.
    pub cleaner: Option<Addr<LogCleaner>>,
    /// The node's clock: produce timestamps, and "now" for whoever serves requests.
    pub clock: Clock,
    sticky: std::sync::Arc<produce::StickyPartitioner>,
    /// Checks passwords against the users in the image, and paces failing addresses.
    pub authenticator: std::sync::Arc<crate::auth::Authenticator>,
    /// Whether the node authenticates anyone, and its super users (set by the server
    /// before it serves).
    pub security: std::sync::Arc<SecurityPolicy>,
    /// Client quotas' rates, per entity.
    pub quotas: std::sync::Arc<crate::quotas::QuotaManager>,
}

/// How the node decides who may do what. With `authorizer` (Kafka's
/// `authorizer.class.name` set) every request is authorized against the ACLs in the
/// image, `super.users` and `allow.everyone.if.no.acl.found`; without it anyone may
/// do anything, except that on a broker that authenticates (`authentication`) only
/// an authenticated user — one of `super.users` when that is set — manages users
/// and ACLs. The broker's own traffic ([`Engine::is_broker`]) is always allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// A listener authenticates (HTTP Basic, a SASL listener, required client
    /// certificates).
    pub authentication: bool,
    /// ACLs decide every request.
    pub authorizer: bool,
    /// `super.users` (principals, `User:admin`) and `allow.everyone.if.no.acl.found`.
    pub acl_config: crate::auth::acl::AuthorizerConfig,
}

impl Engine {
    pub fn new(
        routes: Routes,
        broker: Addr<Broker>,
        groups: Addr<GroupManager>,
        consumers: Addr<ConsumerRegistry>,
        cleaner: Option<Addr<LogCleaner>>,
        clock: Clock,
    ) -> Self {
        Engine {
            routes,
            broker,
            groups,
            consumers,
            cleaner,
            clock,
            sticky: Default::default(),
            authenticator: Default::default(),
            security: Default::default(),
            quotas: Default::default(),
        }
    }

    /// Where a topic's partitions are, for reading or looking (a read of the image).
    pub fn route(&self, topic: &str) -> crate::BrokerResult<TopicRoute> {
        self.routes.topic(topic)
    }

    /// `topic`-`partition`'s leader for a request from `ctx`. A Kafka client is
    /// served only by the leader (else NOT_LEADER_OR_FOLLOWER, and it asks the
    /// leader itself, as Kafka's clients do); anyone else is forwarded to the
    /// leader, waiting a bounded time for one while the leadership moves.
    pub async fn leader(
        &self,
        ctx: &RequestContext,
        topic: &str,
        partition: i32,
    ) -> crate::BrokerResult<Leader> {
        if ctx.listener == Listener::Kafka {
            let route = self.route(topic)?;
            return route.partition(partition).cloned().map(Leader::Local);
        }
        self.routes.leader(topic, partition).await
    }

    /// The broker's own traffic, which neither the authorizer nor quotas check: the
    /// internal listener's, and the inter-broker listener's — with an authorizer,
    /// only from one of `super.users`, as Kafka's brokers are (a client that
    /// reaches that listener as anyone else is authorized like everywhere else).
    pub fn is_broker(&self, ctx: &RequestContext) -> bool {
        ctx.listener == Listener::Internal
            || (ctx.inter_broker
                && (!self.security.authorizer
                    || self
                        .security
                        .acl_config
                        .super_users
                        .contains(&ctx.principal())))
    }

    /// Whether `ctx` may do `operation` on the resource `(kind, name)`: always
    /// without an authorizer and for the broker's own traffic, else as the ACLs say.
    pub fn may(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        if !self.security.authorizer || self.is_broker(ctx) {
            return true;
        }
        ctx.as_asker(|who| {
            self.image()
                .acls
                .authorize(&self.security.acl_config, who, operation, kind, name)
        })
    }

    /// [`Engine::may`], refusing with [`Denied`] (logged at debug) when not.
    pub fn authorize(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        kind: ResourceType,
        name: &str,
    ) -> Result<(), Denied> {
        if self.may(ctx, operation, kind, name) {
            return Ok(());
        }
        let denied = Denied {
            principal: ctx.principal(),
            operation,
            resource_type: kind,
            name: name.to_string(),
        };
        log::debug!("denied: {denied} (from {:?})", ctx.client_address);
        Err(denied)
    }

    /// [`Engine::authorize`] on a topic.
    pub fn authorize_topic(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        topic: &str,
    ) -> Result<(), Denied> {
        self.authorize(ctx, operation, ResourceType::Topic, topic)
    }

    /// [`Engine::authorize`] on a consumer group.
    pub fn authorize_group(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        group: &str,
    ) -> Result<(), Denied> {
        self.authorize(ctx, operation, ResourceType::Group, group)
    }

    /// [`Engine::authorize`] on the cluster.
    pub fn authorize_cluster(
        &self,
        ctx: &RequestContext,
        operation: Operation,
    ) -> Result<(), Denied> {
        self.authorize(ctx, operation, ResourceType::Cluster, CLUSTER_RESOURCE)
    }

    /// An idempotent producer's id: IdempotentWrite on the cluster, or Write on any
    /// topic (Kafka's rule since KIP-679).
    pub fn authorize_idempotent_write(&self, ctx: &RequestContext) -> Result<(), Denied> {
        if !self.security.authorizer || self.is_broker(ctx) {
            return Ok(());
        }
        let writes_somewhere = ctx.as_asker(|who| {
            self.image().acls.authorize_any(
                &self.security.acl_config,
                who,
                Operation::Write,
                ResourceType::Topic,
            )
        });
        if writes_somewhere {
            return Ok(());
        }
        self.authorize_cluster(ctx, Operation::IdempotentWrite)
    }

    /// Creating a topic: Create on the cluster, or on the topic (Kafka's rule).
    pub fn authorize_create_topic(&self, ctx: &RequestContext, topic: &str) -> Result<(), Denied> {
        if self.may(
            ctx,
            Operation::Create,
            ResourceType::Cluster,
            CLUSTER_RESOURCE,
        ) {
            return Ok(());
        }
        self.authorize_topic(ctx, Operation::Create, topic)
    }

    /// Refuses managing users and ACLs (`operation`: Describe to read them, Alter to
    /// change them, on the cluster) to whom [`SecurityPolicy`] does not allow it.
    pub(crate) fn check_admin(
        &self,
        ctx: &RequestContext,
        operation: Operation,
    ) -> crate::BrokerResult<()> {
        if self.security.authorizer {
            return Ok(self.authorize_cluster(ctx, operation)?);
        }
        if !self.security.authentication || self.is_broker(ctx) {
            return Ok(());
        }
        let Some(user) = &ctx.user else {
            return Err(BrokerError::ClusterAuthorizationFailed(
                "managing users and ACLs needs an authenticated user".into(),
            ));
        };
        let principal = crate::auth::principal(user);
        let super_users = &self.security.acl_config.super_users;
        if !super_users.is_empty() && !super_users.contains(&principal) {
            return Err(BrokerError::ClusterAuthorizationFailed(format!(
                "{principal} is not one of super.users, who manage users and ACLs"
            )));
        }
        Ok(())
    }

    /// The delay `bytes` of `kind` earn `ctx`'s client under its quota (zero within
    /// it, without one, and for the broker's own traffic): its answer waits this
    /// long, as Kafka's quota manager throttles.
    pub fn throttle(
        &self,
        ctx: &RequestContext,
        kind: crate::quotas::QuotaKind,
        bytes: u64,
    ) -> std::time::Duration {
        if self.is_broker(ctx) {
            return std::time::Duration::ZERO;
        }
        let image = self.image();
        let client_id = ctx.client_id.as_deref().unwrap_or("");
        self.quotas
            .record(&image.quotas, kind, ctx.user.as_deref(), client_id, bytes)
    }

    /// The metadata image as it is now.
    pub fn image(&self) -> std::sync::Arc<crate::metadata::MetadataImage> {
        self.routes.metadata.image()
    }

    /// Asks the topic registry; an unreachable registry is [`BrokerError::mailbox`].
    pub(crate) async fn ask_broker<M, T>(&self, msg: M) -> crate::BrokerResult<T>
    where
        M: actix::Message<Result = crate::BrokerResult<T>> + Send + 'static,
        T: Send + 'static,
        Broker: actix::Handler<M>,
    {
        ask(&self.broker, msg).await?
    }
}

/// Sends `msg` to `addr`, turning a dead mailbox into [`BrokerError::mailbox`] (503,
/// retriable) — the one place the request layer maps it.
pub(crate) async fn ask<A, M>(addr: &Addr<A>, msg: M) -> crate::BrokerResult<M::Result>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    addr.send(msg).await.map_err(BrokerError::mailbox)
}
