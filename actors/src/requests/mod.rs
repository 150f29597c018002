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
pub mod remote;
mod route;
pub mod topics;
pub mod users;

use std::net::SocketAddr;

use actix::Addr;

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
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub client_address: Option<SocketAddr>,
}

impl RequestContext {
    /// Kafka's principal of who asks: `User:alice`, or `User:ANONYMOUS`.
    pub fn principal(&self) -> String {
        crate::auth::principal(self.user.as_deref().unwrap_or(crate::auth::ANONYMOUS))
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
}

/// Who may manage users and ACLs until the authorizer decides everything: on a
/// broker with no authentication anywhere (the embedded default) anyone, as anyone
/// may do anything there; otherwise only an authenticated user — one of
/// `super.users` when that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// A listener authenticates (HTTP Basic, a SASL listener, required client
    /// certificates).
    pub authentication: bool,
    /// `super.users`: principals (`User:admin`).
    pub super_users: Vec<String>,
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

    /// Refuses managing users and ACLs to whom [`SecurityPolicy`] does not allow it.
    pub(crate) fn check_admin(&self, ctx: &RequestContext) -> crate::BrokerResult<()> {
        if !self.security.authentication || ctx.listener == Listener::Internal {
            return Ok(());
        }
        let Some(user) = &ctx.user else {
            return Err(BrokerError::ClusterAuthorizationFailed(
                "managing users and ACLs needs an authenticated user".into(),
            ));
        };
        let principal = crate::auth::principal(user);
        if !self.security.super_users.is_empty() && !self.security.super_users.contains(&principal)
        {
            return Err(BrokerError::ClusterAuthorizationFailed(format!(
                "{principal} is not one of super.users, who manage users and ACLs"
            )));
        }
        Ok(())
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
