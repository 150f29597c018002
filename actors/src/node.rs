//! Starting and stopping a broker node's actors, in order: the broker (which loads the
//! topic registry and starts the partition actors, each recovering its log), the log
//! cleaner, then the group manager (which replays `__consumer_offsets`). The web
//! layer is started on top by the binary. Every actor that owns state runs under the
//! one restart policy of [`crate::supervision`], with the budget of
//! [`BrokerConfig::restart_policy`]. Every actor gets the node's one [`Clock`]: the
//! system's, or a test's.

use crate::broker::{Broker, ShutdownBroker};
use crate::broker_config::BrokerConfig;
use crate::cleaner::{CleanerSettings, LogCleaner};
use crate::clock::Clock;
use crate::consumer::ConsumerRegistry;
use crate::error::BrokerResult;
use crate::group::GroupManager;
use crate::requests::Engine;

/// A running node: the request layer's handle, over its actors.
#[derive(Clone)]
pub struct Node {
    pub engine: Engine,
}

impl Node {
    /// Starts the node's actors on the system clock. Must be called inside a running
    /// actix system.
    pub async fn start(config: BrokerConfig) -> BrokerResult<Node> {
        Node::start_with_clock(config, Clock::system()).await
    }

    /// Starts the node's actors, every one reading time and arming timers on
    /// `clock` (tests pass a `ManualClock`'s and advance it).
    pub async fn start_with_clock(config: BrokerConfig, clock: Clock) -> BrokerResult<Node> {
        let restarts = config.restart_policy();
        let settings = CleanerSettings {
            threads: config.cleaner_threads,
            dedupe_buffer_bytes: config.cleaner_dedupe_buffer_bytes,
            backoff: std::time::Duration::from_millis(config.cleaner_backoff_ms.max(1)),
            clock: clock.clone(),
            restarts,
        };
        let enabled = config.cleaner_enable;
        let group_config = config.groups.clone();
        let consumer_config = config.consumers.clone();
        let broker = Broker::open(config, clock.clone())?;
        let routes = broker.routes();
        let broker = crate::supervision::start(broker);
        let cleaner = enabled.then(|| LogCleaner::start(broker.clone(), settings));
        let groups =
            GroupManager::start(routes.clone(), group_config, clock.clone(), restarts).await?;
        let consumers = ConsumerRegistry::new(
            consumer_config,
            routes.clone(),
            groups.clone(),
            clock.clone(),
            restarts,
        )
        .start_supervised();
        Ok(Node {
            engine: Engine::new(routes, broker, groups, consumers, cleaner, clock),
        })
    }

    /// Closes every partition cleanly (flush, trim indexes, clean-shutdown marker).
    pub async fn shutdown(&self) {
        if let Err(e) = self.engine.broker.send(ShutdownBroker).await {
            log::warn!("broker shutdown: {e}");
        }
    }
}
